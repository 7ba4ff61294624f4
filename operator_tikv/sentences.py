"""Joining sentences written by different layers (PD's errors, the engine, the renderers)
without doubling or dropping their end punctuation: "…then retry." followed by "Approved by
alice." must read "…then retry. Approved by alice.", never "retry.. Approved". Pure; used by
`operator_tikv.errors`, the action registry, the executor and the Slack and terminal renderers.
"""

from __future__ import annotations

_ENDINGS = (".", "!", "?", "…")
_CLOSERS = "'\")]”’*_"


def end_sentence(text: str) -> str:
    """`text` stripped, with a full stop added unless it already ends a sentence ("" stays "").
    Closing quotes, brackets and emphasis marks after the punctuation count: `PD said 'x.'`
    and `*Running.*` (mrkdwn bold) stay as they are."""
    text = text.strip()
    if not text:
        return ""
    core = text.rstrip(_CLOSERS)
    return text if core.endswith(_ENDINGS) else text + "."


def join_sentences(*parts: str | None) -> str:
    """The non-empty `parts`, each ended as a sentence, separated by one space."""
    return " ".join(end_sentence(part) for part in parts if part and part.strip())


__all__ = ["end_sentence", "join_sentences"]
