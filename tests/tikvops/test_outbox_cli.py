"""`tikvops outbox`: lists what the bot owes Slack with the last error, puts given-up messages
back in line (audited), refuses unclear requests with exit code 2, and says when there is
nothing to retry."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path

import pytest

from engine.model import OutboxStatus
from storage import Database, Repositories
from tests.plugins.storage import T0
from tikvops import cli


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(__import__("os").environ):
        if name.startswith(("TIKVOPS_", "SLACK_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path / "tikvops.db"


async def _seed(path: Path) -> dict[str, int]:
    """One delivered, one pending (failing), two dead items."""
    db = await Database.open(path)
    try:
        outbox = Repositories.on(db).outbox
        ids = {}
        for name in ("delivered", "pending", "dead1", "dead2"):
            ids[name] = await outbox.enqueue("slack", f"incident:{name}", {"op": "post"}, now=T0)
        await outbox.mark_delivered(ids["delivered"], now=T0)
        await outbox.mark_failed(
            ids["pending"], "slack: ratelimited (HTTP 429)", next_attempt_at=T0 + timedelta(1)
        )
        for name in ("dead1", "dead2"):
            await outbox.mark_failed(ids[name], "slack: not_in_channel", next_attempt_at=None)
        return ids
    finally:
        await db.close()


async def _state(path: Path) -> tuple[dict[int, OutboxStatus], list[str]]:
    db = await Database.open(path)
    try:
        repos = Repositories.on(db)
        items = await repos.outbox.list(limit=100)
        audit = await repos.audit.list_recent(action_prefix="outbox.")
        return {i.id: i.status for i in items}, [str(e.detail["items"]) for e in audit]
    finally:
        await db.close()


def test_list_shows_what_is_owed_and_the_last_error(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = asyncio.run(_seed(env))
    assert cli.main(["outbox", "--db", str(env)]) == 0
    out = capsys.readouterr().out
    assert "not_in_channel" in out and "ratelimited" in out
    assert f"{ids['delivered']:>6}  delivered" not in out  # only with --all
    assert "2 given up" in out and "tikvops outbox retry --dead" in out
    assert cli.main(["outbox", "--db", str(env), "--all", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert sorted(i["id"] for i in listed) == sorted(ids.values())


def test_retry_puts_given_up_messages_back_in_line_and_audits_it(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = asyncio.run(_seed(env))
    assert cli.main(["outbox", "--db", str(env), "retry", str(ids["dead1"]), "999"]) == 0
    out = capsys.readouterr().out
    assert f"back in line: {ids['dead1']}" in out and "Not retried: 999" in out
    statuses, audit = asyncio.run(_state(env))
    assert statuses[ids["dead1"]] is OutboxStatus.PENDING
    assert statuses[ids["dead2"]] is OutboxStatus.DEAD  # not named: untouched
    assert statuses[ids["delivered"]] is OutboxStatus.DELIVERED
    assert audit == [str([ids["dead1"]])]

    assert cli.main(["outbox", "--db", str(env), "retry", "--dead"]) == 0
    statuses, audit = asyncio.run(_state(env))
    assert statuses[ids["dead2"]] is OutboxStatus.PENDING
    assert cli.main(["outbox", "--db", str(env), "retry", "--dead"]) == 1
    assert "nothing to retry" in capsys.readouterr().out


def test_retry_without_saying_what_is_refused(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    asyncio.run(_seed(env))
    assert cli.main(["outbox", "--db", str(env), "retry"]) == 2
    assert "say which messages" in capsys.readouterr().err
    assert cli.main(["outbox", "--db", str(env), "list", "3"]) == 2
    statuses, audit = asyncio.run(_state(env))
    assert list(statuses.values()).count(OutboxStatus.DEAD) == 2 and audit == []


def test_a_database_that_cannot_be_opened_is_a_clear_error(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env.write_bytes(b"this is not sqlite" * 100)
    assert cli.main(["outbox", "--db", str(env)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tikvops outbox: the database file") and "Traceback" not in err
