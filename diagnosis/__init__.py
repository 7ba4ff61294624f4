"""Incident diagnosis with Claude (anthropic SDK), constrained to the action registry; implements
engine.ports.Diagnoser.
"""
