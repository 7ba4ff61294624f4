"""Argument types for the subcommands' options (`type=` of argparse): numbers of seconds, a
speed factor, a port. Each refuses a bad value with a sentence argparse prints after the option
name ("argument --interval: must be more than 0 seconds, got '0'")."""

from __future__ import annotations

import argparse
import math


def number(text: str) -> float:
    """A finite number."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return value


def seconds(text: str) -> float:
    """0 or more seconds."""
    value = number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds, got {text!r}")
    return value


def positive_seconds(text: str) -> float:
    """More than 0 seconds."""
    value = number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, got {text!r}")
    return value


def positive(text: str) -> float:
    """A number more than 0 (a factor, not a duration)."""
    value = number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text!r}")
    return value


def port(text: str) -> int:
    """A TCP port, 0 to 65535 (0 picks a free one)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is between 0 and 65535, got {value}")
    return value


__all__ = ["number", "port", "positive", "positive_seconds", "seconds"]
