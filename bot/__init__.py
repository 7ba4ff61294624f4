"""Slack edge: the only package that imports slack_bolt and slack_sdk. It renders and routes; it
decides nothing about safety.
"""
