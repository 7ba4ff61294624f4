"""The subcommands' option types accept what they say and refuse the rest with a sentence."""

from __future__ import annotations

import argparse

import pytest

from tikvops.commands import argtypes


def test_accepted_values() -> None:
    assert argtypes.seconds("0") == 0.0 and argtypes.seconds("2.5") == 2.5
    assert argtypes.positive_seconds("0.3") == 0.3
    assert argtypes.positive("10") == 10.0
    assert argtypes.port("0") == 0 and argtypes.port("65535") == 65535


@pytest.mark.parametrize(
    ("kind", "text", "message"),
    [
        (argtypes.seconds, "-1", "must be 0 or more seconds, got '-1'"),
        (argtypes.seconds, "soon", "not a number: 'soon'"),
        (argtypes.seconds, "inf", "not a finite number: 'inf'"),
        (argtypes.positive_seconds, "0", "must be more than 0 seconds, got '0'"),
        (argtypes.positive, "0", "must be more than 0, got '0'"),
        (argtypes.port, "70000", "a port is between 0 and 65535, got 70000"),
        (argtypes.port, "http", "not a port number: 'http'"),
    ],
)
def test_refused_values_say_why(kind: object, text: str, message: str) -> None:
    assert callable(kind)
    with pytest.raises(argparse.ArgumentTypeError, match=message.replace("(", r"\(")):
        kind(text)
