"""The terminal surface end to end: `tikvops.cli.main([...])` against a simulator (running on
virtual time that follows the wall clock, 100x faster), reading and writing the same database
the bot would use. Covers a dry run, a refused unsafe drain, an executed drain with its
verification, its undo, the audit log, approvals without `--yes`, JSON output and usage errors
with exit codes 0/1/2."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from storage import Database, Repositories
from tikvops import cli
from tikvops.commands import actions
from tikvops.settings import Settings
from tikvops.wiring import build_policy

FAST_POLLS = {"poll_intervals": {name: 0.05 for name in ("drain", "undrain", "limit")}}


@pytest.fixture
async def terminal(
    sim_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """A 4-store simulator whose clock runs by itself, a database path, and a clean
    environment (no TIKVOPS_* variables, no .env file)."""
    for name in list(__import__("os").environ):
        if name.startswith(("TIKVOPS_", "SLACK_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(actions, "ENGINE_OPTIONS", FAST_POLLS)
    monkeypatch.setattr(actions, "local_identity", lambda: actions.Identity.cli("sre@ops-box"))
    sim = await sim_factory(stores=4, auto_tick=True, speed=100, start_time=time.time())
    return {"sim": sim, "db": tmp_path / "tikvops.db"}


async def tikvops(
    env: dict[str, Any], capsys: pytest.CaptureFixture[str], *words: str
) -> tuple[int, str, str]:
    """Run `tikvops <words> --pd <sim> --db <db>` in a thread (it runs its own event loop)."""
    argv: Sequence[str] = [*words, "--pd", env["sim"].pd_url, "--db", str(env["db"])]
    code = await asyncio.to_thread(cli.main, list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def writes(env: dict[str, Any]) -> list[tuple[str, str, Any]]:
    return [
        (r.method, r.path, r.body)
        for r in env["sim"].requests
        if r.store_id is None and r.method != "GET"
    ]


async def test_dry_run_refusal_drain_undo_and_audit(
    terminal: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    sim = terminal["sim"]

    code, out, _ = await tikvops(terminal, capsys, "drain", "4", "--dry-run")
    assert code == 0
    assert out.startswith("Dry run: Drain store 4: evict all its leaders")
    assert "[ok] enough-leader-stores: 3 other Up store(s) can take leaders (1, 2, 3)" in out
    assert (
        'Would send: POST /pd/api/v1/schedulers {"name": "evict-leader-scheduler", "store_id": 4}'
        in out
    )
    assert writes(terminal) == []

    code, out, _ = await tikvops(terminal, capsys, "drain", "4", "--yes")
    assert code == 0, out
    assert "Proposal P-1 created by sre@ops-box: Drain store 4" in out
    assert "sre@ops-box approved proposal P-1 (approval 1 of 1); executing now." in out
    # The run's start and progress come from the terminal notifier, as `tikvops monitor`
    # prints them: one line per note, none skipped.
    assert "EXECUTING P-1   Drain store 4: evict all its leaders" in out
    assert "(approved by sre@ops-box)" in out
    assert "EXECUTION P-1   verifying: PD accepted" in out
    progress = [line for line in out.splitlines() if "EXECUTION P-1" in line]
    assert sum("leaders on store 4: 250 → " in line for line in progress) >= 2
    assert "P-1 succeeded: leaders on store 4: " in out and "→ 0" in out
    assert 'Undo: `tikvops undo P-1` proposes undrain {"store_id": 4}' in out
    assert writes(terminal) == [
        ("POST", "/pd/api/v1/schedulers", {"name": "evict-leader-scheduler", "store_id": 4})
    ]
    assert sim.cluster.store(4).leader_count == 0

    code, out, _ = await tikvops(terminal, capsys, "drain", "3", "--yes")
    assert code == 1
    assert "[FAIL] drained-stores-limit: 1 store(s) are already drained (4)" in out
    assert out.rstrip().endswith("Nothing was sent to PD.")
    assert len(writes(terminal)) == 1

    code, out, _ = await tikvops(terminal, capsys, "undo", "P-1", "--yes")
    assert code == 0, out
    assert "Proposal P-2 created by sre@ops-box: Undrain store 4" in out
    assert "P-2 succeeded: store 4 is no longer under evict-leader-scheduler" in out
    assert writes(terminal)[1:] == [
        ("DELETE", "/pd/api/v1/schedulers/evict-leader-scheduler-4", None)
    ]

    code, out, _ = await tikvops(terminal, capsys, "audit", "50")
    assert code == 0
    lines = out.splitlines()
    assert any("cli:sre@ops-box" in line and "proposal.approve " in line for line in lines)
    assert any("proposal.create.refused" in line and "[refused]" in line for line in lines)
    assert any("execution.verified" in line and "P-1" in line for line in lines)
    approvals = [line for line in lines if "proposal.approve " in line]
    assert all("cli:sre@ops-box" in line for line in approvals)
    assert "local operator" in approvals[0]

    db = await Database.open(terminal["db"])
    try:
        repos = Repositories.on(db)
        p1 = await repos.proposals.get("P-1")
        p2 = await repos.proposals.get("P-2")
        assert p1 is not None and p1.state.value == "succeeded"
        assert p2 is not None and p2.origin.value == "undo"
        assert p1.requested_by.key == "cli:sre@ops-box"
    finally:
        await db.close()


async def test_without_yes_the_proposal_waits_for_approve_or_reject(
    terminal: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = await tikvops(terminal, capsys, "limit", "leader", "8")
    assert code == 0
    assert "P-1 waits for approval: `tikvops approve P-1` here" in out
    assert writes(terminal) == []

    code, out, _ = await tikvops(terminal, capsys, "proposals", "--json")
    assert code == 0
    listing = json.loads(out)
    assert listing["result"] == "proposals"
    assert [(p["id"], p["state"]) for p in listing["proposals"]] == [("P-1", "proposed")]

    code, out, _ = await tikvops(terminal, capsys, "approve", "p1")
    assert code == 0, out
    assert "P-1 succeeded: leader-schedule-limit is now 8 (was 4)" in out
    assert writes(terminal) == [
        ("POST", "/pd/api/v1/config/schedule", {"leader-schedule-limit": 8})
    ]

    await tikvops(terminal, capsys, "limit", "region", "100")
    code, out, _ = await tikvops(terminal, capsys, "reject", "P-2", "not", "today")
    assert code == 0
    assert out.strip() == "sre@ops-box rejected proposal P-2 (not today); nothing was sent to PD."
    code, out, _ = await tikvops(terminal, capsys, "approve", "P-2")
    assert code == 1
    assert out.startswith("Refused: proposal P-2 was rejected by sre@ops-box")

    code, out, _ = await tikvops(terminal, capsys, "proposal", "P-1")
    assert code == 0
    assert out.startswith("Proposal P-1: Set leader-schedule-limit to 8")
    assert "Execution: succeeded" in out
    assert 'Undo available: limit {"kind": "leader", "value": 4} (`tikvops undo P-1`)' in out


async def test_kill_switch_blocks_a_terminal_drain_and_says_why(
    terminal: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = await tikvops(terminal, capsys, "kill-switch", "on", "maintenance")
    assert code == 0
    assert out.strip() == (
        "The kill switch is ON by sre@ops-box (maintenance): nothing will execute until it is "
        "turned off."
    )
    code, out, _ = await tikvops(terminal, capsys, "drain", "4", "--yes")
    assert code == 1
    assert "but the kill switch is on by sre@ops-box" in out
    assert writes(terminal) == []
    code, out, _ = await tikvops(terminal, capsys, "status")
    assert code == 0
    assert "Kill switch ON by sre@ops-box (maintenance)" in out
    assert "P-1    approved   drain store_id=4" in out


async def test_reads_and_unreachable_pd(
    terminal: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = await tikvops(terminal, capsys, "stores")
    assert code == 0
    assert out.splitlines()[0].split() == [
        "STORE",
        "ADDRESS",
        "STATE",
        "LEADERS",
        "REGIONS",
        "USED",
        "DRAINED",
    ]
    assert len(out.splitlines()) == 5
    code, out, _ = await tikvops(terminal, capsys, "store", "9")
    assert code == 1
    assert out.strip() == (
        "Refused: store 9 does not exist in PD; list the stores with `tikvops stores`"
    )
    terminal["sim"].faults.partition()
    code, out, _ = await tikvops(terminal, capsys, "stores")
    assert code == 1
    assert out.startswith("Refused: PD is unavailable")
    terminal["sim"].faults.heal()


async def test_usage_and_configuration_errors_exit_2(
    terminal: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = await tikvops(terminal, capsys, "drain", "four")
    assert code == 2
    assert err.strip() == (
        "tikvops: store ID must be a whole number, got 'four'. Usage: tikvops drain "
        "<store-id> [--dry-run]"
    )
    code = await asyncio.to_thread(cli.main, ["drain", "4", "--pd"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip() == "tikvops: --pd needs a value. Usage: tikvops drain <store-id> [--dry-run]"
    code = await asyncio.to_thread(cli.main, ["stores", "--db", str(terminal["db"])])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("tikvops: configuration: TIKVOPS_PD_URL: not set")
    code, out, _ = await tikvops(terminal, capsys, "drain", "--help")
    assert code == 0
    assert out.startswith("Usage: tikvops drain <store-id> [--dry-run]")


def test_terminal_policy_lets_the_local_operator_act_directly() -> None:
    settings = Settings(approvers=["U1"], high_risk_approvals=1)
    terminal = build_policy(settings, terminal=True)
    bot = build_policy(settings)
    assert terminal.allow_local_operator and bot.allow_local_operator
    assert terminal.self_approve_high is True
    assert bot.self_approve_high is False
    assert terminal.approvers == bot.approvers == frozenset({"U1"})
