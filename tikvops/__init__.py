"""Composition root: settings, wiring, scheduling and the `tikvops` command line. The only package
that knows every other one.
"""
