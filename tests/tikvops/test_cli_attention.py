"""`tikvops ack|silence|unsilence` and `tikvops incidents` showing the owner and the silence,
end to end through `tikvops.cli.main` on the database the bot uses (a simulator as PD), and
the terminal notifier's line for an attention change."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from engine.clock import FakeClock
from engine.model import AuditEvent, Identity
from storage import Database, Repositories
from tests.plugins.storage import make_incident
from tests.tikvops.test_cli_actions import terminal, tikvops
from tikvops import cli
from tikvops.terminal_notifier import TerminalNotifier

__all__ = ["terminal"]  # the fixture, shared with the action commands' tests


async def seed_incident(db_path: Path) -> str:
    db = await Database.open(db_path)
    try:
        repos = Repositories.on(db)
        incident = make_incident(id=await repos.incidents.next_id(), at=datetime.now(UTC))
        await repos.incidents.create(incident)
        return incident.id
    finally:
        await db.close()


async def incidents(env: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> str:
    """`tikvops incidents --db <db>` (it reads the database only)."""
    code = await asyncio.to_thread(cli.main, ["incidents", "--db", str(env["db"])])
    assert code == 0
    return capsys.readouterr().out


async def test_ack_silence_unsilence_and_the_incidents_list(
    terminal: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    incident_id = await seed_incident(terminal["db"])

    code, out, _ = await tikvops(terminal, capsys, "ack", incident_id)
    assert code == 0 and f"You own {incident_id} now" in out
    code, out, _ = await tikvops(terminal, capsys, "ack", incident_id)
    assert code == 0 and "already own" in out

    code, out, _ = await tikvops(
        terminal, capsys, "silence", incident_id, "2h", "rolling", "restart"
    )
    assert code == 0, out
    assert f"{incident_id} is silenced until" in out and "(for 2 h)" in out

    out = await incidents(terminal, capsys)
    [line] = [row for row in out.splitlines() if row.startswith(incident_id)]
    assert "owner sre@ops-box since" in line
    assert "silenced until" in line and "by sre@ops-box: rolling restart" in line

    code, _, err = await tikvops(terminal, capsys, "silence", incident_id, "2x")
    assert code == 2 and "like 30m, 2h or 1d" in err
    code, _, err = await tikvops(terminal, capsys, "silence", incident_id, "8d")
    assert code == 2 and "at most 7 days" in err
    code, out, _ = await tikvops(terminal, capsys, "ack", "I-42")
    assert code == 1 and "no incident I-42" in out

    code, out, _ = await tikvops(terminal, capsys, "unsilence", incident_id)
    assert code == 0 and f"The silence of {incident_id} is over" in out
    out = await incidents(terminal, capsys)
    [line] = [row for row in out.splitlines() if row.startswith(incident_id)]
    assert "owner sre@ops-box" in line and "silenced" not in line

    db = await Database.open(terminal["db"])
    try:
        actions = [
            e.action for e in await Repositories.on(db).audit.list_recent(action_prefix="incident.")
        ]
    finally:
        await db.close()
    assert actions == ["incident.unsilence", "incident.silence", "incident.acknowledge"]


async def test_a_local_operator_who_may_not_decide_may_not_silence(
    terminal: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIKVOPS_ALLOW_LOCAL_OPERATOR", "false")
    incident_id = await seed_incident(terminal["db"])
    code, out, _ = await tikvops(terminal, capsys, "silence", incident_id, "1h")
    assert code == 1 and "command line" in out
    code, out, _ = await tikvops(terminal, capsys, "ack", incident_id)
    assert code == 0 and "You own" in out


async def test_the_monitor_prints_one_line_per_attention_change() -> None:
    clock = FakeClock(datetime(2024, 5, 1, 14, 0, tzinfo=UTC))
    out = io.StringIO()
    notifier = TerminalNotifier(out, clock=clock)
    bob = Identity.slack("U2BOB", name="bob")
    incident = make_incident(id="I-3")
    await notifier.incident_attention(
        incident,
        AuditEvent(
            at=clock.now(),
            actor=bob,
            action="incident.acknowledge",
            subject="I-3",
            detail={"taken_from": "slack:U1ALICE"},
        ),
    )
    silenced = incident.model_copy(
        update={
            "attention": incident.attention.model_copy(
                update={"silenced_until": clock.now() + timedelta(hours=1), "silenced_by": bob}
            )
        }
    )
    await notifier.incident_attention(
        silenced,
        AuditEvent(
            at=clock.now(), actor=bob, action="incident.silence", subject="I-3", reason="deploy"
        ),
    )
    lines = out.getvalue().splitlines()
    assert lines[0].endswith("OWNER     I-3   bob is on it (taken over from slack:U1ALICE).")
    assert lines[1].endswith("SILENCE   I-3   silenced by bob until 15:00 UTC: deploy.")
