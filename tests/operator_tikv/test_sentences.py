"""Joining sentences from different layers never doubles or drops their end punctuation."""

from __future__ import annotations

import pytest

from operator_tikv.sentences import end_sentence, join_sentences


@pytest.mark.parametrize(
    ("text", "ended"),
    [
        ("then retry", "then retry."),
        ("then retry.", "then retry."),
        ("  then retry.  ", "then retry."),
        ("is it?", "is it?"),
        ("done!", "done!"),
        ("more…", "more…"),
        ("PD said 'x.'", "PD said 'x.'"),
        ("PD said 'x'", "PD said 'x'."),
        ("(HTTP 500)", "(HTTP 500)."),
        ("*Running.*", "*Running.*"),
        ("", ""),
        ("   ", ""),
    ],
)
def test_end_sentence(text: str, ended: str) -> None:
    assert end_sentence(text) == ended


def test_join_sentences_skips_empty_parts_and_ends_each_once() -> None:
    assert join_sentences("Failed: then retry.", "Approved by alice", None, "", "Details.") == (
        "Failed: then retry. Approved by alice. Details."
    )
    assert join_sentences() == ""
