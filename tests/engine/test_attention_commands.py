"""The attention commands in the shared grammar (`/tikv ack I-3`, `tikvops silence I-3 2h
reason`, `unsilence`): what parses, what is refused with which sentence and usage line, and
the help text."""

from __future__ import annotations

import pytest

from engine.attention_commands import AttentionCommand
from engine.commands import CLI_PROG, CommandError, help_text, parse_command, usage


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ack I-3", AttentionCommand(verb="ack", incident_id="I-3")),
        ("acknowledge i3", AttentionCommand(verb="ack", incident_id="I-3")),
        ("ack #12", AttentionCommand(verb="ack", incident_id="I-12")),
        ("unsilence 7", AttentionCommand(verb="unsilence", incident_id="I-7")),
        ("silence I-3 2h", AttentionCommand(verb="silence", incident_id="I-3", seconds=7200)),
        ("silence I-3 30m", AttentionCommand(verb="silence", incident_id="I-3", seconds=1800)),
        ("silence I-3 1d", AttentionCommand(verb="silence", incident_id="I-3", seconds=86400)),
        ("silence I-3 7d", AttentionCommand(verb="silence", incident_id="I-3", seconds=604800)),
        ("SILENCE I-3 4H", AttentionCommand(verb="silence", incident_id="I-3", seconds=14400)),
        (
            'silence I-3 2h "rolling restart" of store 4',
            AttentionCommand(
                verb="silence",
                incident_id="I-3",
                seconds=7200,
                reason="rolling restart of store 4",
            ),
        ),
    ],
)
def test_attention_commands_parse(text: str, expected: AttentionCommand) -> None:
    assert parse_command(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ack", "missing incident ID"),
        ("ack I-3 I-4", "too many arguments: 'I-4'"),
        ("ack P-3", "incident ID looks like I-3, got 'P-3'"),
        ("silence I-3", "missing silence duration (like 30m, 2h or 1d)"),
        ("silence I-3 2x", "must be a number with m, h or d (like 30m, 2h or 1d), got '2x'"),
        ("silence I-3 2", "got '2'"),
        ("silence I-3 0h", "at least 1 minute, got '0h'"),
        ("silence I-3 8d", "at most 7 days (7d), got '8d'"),
        ("silence I-3 169h", "at most 7 days"),
        ("silence I-3 -1h", "got '-1h'"),
        ("unsilence I-3 now", "too many arguments: 'now'"),
        ("silence I-3 1h --dry-run", "--dry-run only applies to actions, not to silence"),
    ],
)
def test_bad_attention_commands_say_what_was_wrong_with_the_usage(text: str, message: str) -> None:
    parsed = parse_command(text)
    assert isinstance(parsed, CommandError)
    assert message in parsed.message
    name = text.split(maxsplit=1)[0]
    assert parsed.usage == usage(name)
    assert parsed.text().endswith(f"Usage: {usage(name)}")


def test_usage_and_help_name_the_attention_commands() -> None:
    assert usage("silence", CLI_PROG) == "tikvops silence <incident-id> <duration> [reason...]"
    assert usage("ack") == "/tikv ack <incident-id>"
    overview = help_text()
    assert "Attend:" in overview
    assert "/tikv unsilence <incident-id>: end an incident's silence now" in overview
    assert help_text("silence").startswith("Usage: /tikv silence <incident-id> <duration>")
