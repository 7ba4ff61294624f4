"""Cluster simulator: a TiKV cluster behind a PD-compatible HTTP API, per-store /metrics, and fault
injection. Imports none of our packages.
"""
