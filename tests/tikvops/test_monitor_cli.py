"""`tikvops monitor` (as a real subprocess against the simulator, stopped with SIGTERM),
`tikvops incidents` (table and `--json`), and the terminal notifier's one-line events."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import re
import signal
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from engine.clock import FakeClock
from engine.model import (
    SYSTEM,
    AuditEvent,
    Diagnosis,
    DiagnosisSource,
    Execution,
    ExecutionStatus,
    Incident,
    IncidentStatus,
    NotProposed,
    ProgressNote,
    ProposedAction,
    Severity,
)
from sim.server import SimServer
from storage import Database, Repositories
from tests.plugins.storage import make_incident, make_proposal
from tikvops import cli
from tikvops.commands import monitor as monitor_command
from tikvops.terminal_notifier import TerminalNotifier

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith(("TIKVOPS_", "SLACK_", "ANTHROPIC_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray .env


def run_own(argv: list[str]) -> int:
    """Our subcommands alone (the shared terminal grammar also answers `incidents`)."""
    parser = argparse.ArgumentParser(prog="tikvops")
    parser.add_argument("--config", type=Path)
    parser.add_argument("--env-file", type=Path, default=Path("missing.env"))
    monitor_command.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    code: int = args.handler(args)
    return code


def test_the_cli_lists_monitor_and_builds_without_conflicts() -> None:
    assert "monitor" in cli.COMMAND_MODULES
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert {"monitor", "incidents"} <= set(sub.choices)


# --------------------------------------------------------------------------- incidents


async def seeded(path: Path) -> list[Incident]:
    db = await Database.open(path)
    try:
        repos = Repositories.on(db)
        clock = FakeClock()
        old = make_incident(
            id="I-1",
            kind="store_down",
            subject="store:3",
            at=clock.now() - timedelta(hours=2),
            status=IncidentStatus.RESOLVED,
            resolved_at=clock.now() - timedelta(hours=1),
            clear_since=clock.now() - timedelta(hours=1, minutes=1),
        )
        latency = make_incident(
            id="I-2",
            kind="write_latency",
            subject="store:2",
            at=clock.now() - timedelta(minutes=5),
            severity=Severity.WARNING,
            worst_severity=Severity.CRITICAL,
            title="High write latency on store 2",
            value=250.0,
            threshold=100.0,
            details={"unit": "ms", "message": "Write latency P99 on store 2 is 250 ms"},
        )
        return [await repos.incidents.create(old), await repos.incidents.create(latency)]
    finally:
        await db.close()


def test_incidents_json_shape(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "t.db"
    old, latency = asyncio.run(seeded(db))
    assert run_own(["incidents", "--db", str(db), "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["result"] == "incidents"
    [only] = body["incidents"]
    assert Incident.model_validate(only) == latency
    assert only["fingerprint"] == "write_latency:store:2"
    assert only["status"] == "open" and only["severity"] == "warning"
    assert only["worst_severity"] == "critical" and only["value"] == 250.0
    assert only["details"]["unit"] == "ms"

    assert run_own(["incidents", "--db", str(db), "--json", "--all"]) == 0
    every = json.loads(capsys.readouterr().out)["incidents"]
    assert [i["id"] for i in every] == [latency.id, old.id]  # newest first
    assert every[1]["status"] == "resolved" and every[1]["resolved_at"] is not None


def test_incidents_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "t.db"
    asyncio.run(seeded(db))
    assert run_own(["incidents", "--db", str(db), "--all"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:5] == ["ID", "STATUS", "SEVERITY", "KIND", "SUBJECT"]
    assert lines[1].startswith("I-2") and "High write latency on store 2" in lines[1]
    assert "warning (worst critical)" in lines[1]
    assert lines[2].startswith("I-1") and "resolved" in lines[2]


def test_incidents_without_a_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "none.db"
    assert run_own(["incidents", "--db", str(db), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"result": "incidents", "incidents": []}
    assert run_own(["incidents", "--db", str(db)]) == 0
    assert "does not exist yet" in capsys.readouterr().out
    assert not db.exists()


def test_bad_arguments_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        run_own(["monitor", "--interval", "0"])
    assert exc.value.code == 2
    assert "more than 0 seconds" in capsys.readouterr().err


# --------------------------------------------------------------------------- terminal lines


async def test_terminal_lines() -> None:
    out = io.StringIO()
    clock = FakeClock()
    notifier = TerminalNotifier(out, clock=clock)
    incident = make_incident(
        id="I-7",
        kind="disk_usage",
        subject="store:1",
        at=clock.now(),
        severity=Severity.CRITICAL,
        worst_severity=Severity.CRITICAL,
        title="Disk filling on store 1",
        value=0.85,
        threshold=0.7,
        details={
            "unit": "ratio",
            "message": "Disk on store 1 is 85% used.\nFree space.",
        },
    )
    await notifier.incident_opened(incident)
    await notifier.incident_changed(incident, (), Severity.WARNING)
    diagnosis = Diagnosis(
        incident_id="I-7",
        source=DiagnosisSource.PLAYBOOK,
        model="disk-full",
        summary="Store 1 is filling up.",
        confidence=0.7,
        actions=[ProposedAction(action="drain", params={"store_id": 1})],
        created_at=clock.now(),
    )
    await notifier.diagnosis_ready(incident, diagnosis)
    proposal = make_proposal(id="P-3", incident_id="I-7", created_at=clock.now())
    await notifier.proposal_made(proposal)
    reminder = AuditEvent(
        at=clock.now(),
        actor=SYSTEM,
        action="proposal.reminder",
        subject="P-3",
        reason="P-3 has waited 10 min for a decision",
    )
    await notifier.proposal_changed(proposal, reminder)
    execution = Execution(
        proposal_id="P-3",
        status=ExecutionStatus.VERIFYING,
        started_at=clock.now(),
        updated_at=clock.now(),
        progress=[ProgressNote(at=clock.now(), message="leader of region 12 is on store 2")],
    )
    await notifier.execution_progress(proposal, execution)
    clock.advance(timedelta(minutes=12))
    resolved = incident.model_copy(
        update={
            "status": IncidentStatus.RESOLVED,
            "resolved_at": clock.now(),
            "clear_since": clock.now() - timedelta(minutes=1),
        }
    )
    await notifier.incident_resolved(resolved)

    lines = out.getvalue().splitlines()
    assert [line.split()[1] for line in lines] == [
        "OPENED",
        "UPDATED",
        "DIAGNOSIS",
        "PROPOSAL",
        "REMINDER",
        "EXECUTION",
        "RESOLVED",
    ]
    opened, updated, diag, made, remind, progress, done = lines
    assert re.match(r"\d\d:\d\d:\d\d OPENED\s+I-7 ", opened)
    assert "CRITICAL Disk filling on store 1: 85% (threshold 70%)" in opened
    assert "85% used. Free space." in opened  # newlines folded into one line
    assert "UPDATED   I-7   Severity warning → critical. Now: CRITICAL Disk filling" in updated
    assert "playbook disk-full (70%): Store 1 is filling up. 1 action(s) suggested." in diag
    assert "P-3" in made and "for I-7" in made and "tikvops approve P-3" in made
    assert "Transfer" in made or "transfer" in made
    assert "waited 10 min" in remind
    assert "verifying: leader of region 12 is on store 2" in progress
    assert "after 12 min" in done and "worst critical" in done


async def test_a_suggested_action_not_proposed_is_one_line_with_the_reason() -> None:
    out = io.StringIO()
    clock = FakeClock()
    notifier = TerminalNotifier(out, clock=clock)
    incident = make_incident(id="I-7", kind="disk_usage", subject="store:1", at=clock.now())
    drain = ProposedAction(action="drain", params={"store_id": 1})
    diagnosis = Diagnosis(
        incident_id="I-7",
        source=DiagnosisSource.PLAYBOOK,
        summary="Store 1 is filling up.",
        actions=[drain],
        created_at=clock.now(),
    )
    why = "Refused drain: store 1 is the only Up store. Nothing was sent to PD."
    await notifier.actions_not_proposed(
        incident, diagnosis, [NotProposed(suggested=drain, reason=why)]
    )
    [line] = out.getvalue().splitlines()
    assert re.match(r"\d\d:\d\d:\d\d SKIPPED\s+I-7 +not proposed: Drain store 1", line)
    assert line.endswith(f": {why}")


async def test_a_closed_terminal_does_not_raise() -> None:
    out = io.StringIO()
    out.close()
    await TerminalNotifier(out).incident_opened(make_incident())


# --------------------------------------------------------------------------- the real process


async def read_until(stream: asyncio.StreamReader, pattern: str, seen: list[str]) -> str:
    while True:
        raw = await stream.readline()
        if not raw:
            raise AssertionError(f"output ended before {pattern!r}: {seen}")
        line = raw.decode().rstrip("\n")
        seen.append(line)
        if re.search(pattern, line):
            return line


async def test_monitor_process_prints_an_incident_and_stops_on_sigterm(
    sim_factory: Any, tmp_path: Path
) -> None:
    server: SimServer = await sim_factory(auto_tick=True, speed=1.0, start_time=None)
    server.apply_scenario("slow-store")
    db = tmp_path / "monitor.db"
    env = {
        **os.environ,
        "TIKVOPS_HEALTH_ADDR": "127.0.0.1:0",
        "TIKVOPS_LATENCY_GRACE": "0",
        "TIKVOPS_LOG_LEVEL": "WARNING",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tikvops",
        "--env-file",
        str(tmp_path / "missing.env"),
        "monitor",
        "--pd",
        server.pd_url,
        "--db",
        str(db),
        "--interval",
        "0.3",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=tmp_path,
        env=env,
    )
    assert proc.stdout is not None and proc.stderr is not None
    seen: list[str] = []
    try:
        banner = await asyncio.wait_for(read_until(proc.stdout, r"watching PD", seen), 30)
        match = re.search(r"on (http://127\.0\.0\.1:\d+)", banner)
        assert match, banner
        line = await asyncio.wait_for(read_until(proc.stdout, r" OPENED ", seen), 60)
        assert "High write latency on store 2" in line and "WARNING" in line
        async with httpx.AsyncClient() as http:
            health = await http.get(f"{match.group(1)}/healthz")
            metrics = await http.get(f"{match.group(1)}/metrics")
        assert health.status_code == 200, health.text
        assert "tikvops_monitor_cycle_duration_seconds_count" in metrics.text
        assert 'tikvops_incidents_open{kind="write_latency"} 1.0' in metrics.text
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        rest, err = await asyncio.wait_for(proc.communicate(), 30)
    output = "\n".join(seen) + "\n" + rest.decode()
    assert proc.returncode == 0, err.decode()
    assert output.rstrip().endswith("tikvops monitor: stopped")
    assert "Traceback" not in err.decode()

    # the same database, read back by `tikvops incidents`
    incidents = await monitor_command.read_incidents(db)
    assert [(i.kind, i.subject) for i in incidents] == [("write_latency", "store:2")]


async def test_the_diagnoser_is_claude_only_with_a_key(tmp_path: Path) -> None:
    import contextlib

    from diagnosis.claude import ClaudeDiagnoser
    from engine.playbook_diagnoser import PlaybookDiagnoser
    from tikvops.runtime import open_runtime
    from tikvops.settings import Settings
    from tikvops.wiring import build_diagnoser

    base = Settings(pd_url="http://127.0.0.1:9", db=tmp_path / "d.db", max_drained_stores=2)
    async with open_runtime(base) as runtime, contextlib.AsyncExitStack() as exits:
        plain, name = build_diagnoser(
            base, pd=runtime.pd, repos=runtime.repos, clock=FakeClock(), exits=exits
        )
        assert isinstance(plain, PlaybookDiagnoser) and name == "built-in playbooks"
        keyed = base.model_copy(update={"anthropic_api_key": SecretStr("sk-ant-test-0000")})
        claude, name = build_diagnoser(
            keyed, pd=runtime.pd, repos=runtime.repos, clock=FakeClock(), exits=exits
        )
        assert type(claude).__name__ == "ClaudeDiagnoser"
        assert name.startswith("Claude ")
        # both follow the blast-radius limit the preflight applies
        assert plain.limits.max_drained_stores == 2
        assert isinstance(claude, ClaudeDiagnoser)
        assert claude.limits.max_drained_stores == 2
        assert isinstance(claude.fallback, PlaybookDiagnoser)
        assert claude.fallback.limits.max_drained_stores == 2


# --------------------------------------------------------------------------- one incident per cause

STORE_DOWN_DETAILS: dict[str, Any] = {
    "unit": "s",
    "message": "Store 5 is Down: no heartbeat to PD for 31 min.",
    "consequences": [
        {
            "key": "region_pending_peer/cluster",
            "kind": "region_pending_peer",
            "label": "regions with a pending peer",
            "count": 40,
            "stores": [5],
            "by_presence": False,
            "since": 0.0,
        },
        {
            "key": "region_miss_peer/cluster",
            "kind": "region_miss_peer",
            "label": "regions missing a replica",
            "count": 12,
            "stores": [5],
            "by_presence": True,
            "since": 0.0,
        },
    ],
}


def test_incidents_table_groups_consequences_under_their_cause(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async def seed(path: Path) -> None:
        db = await Database.open(path)
        try:
            repos = Repositories.on(db)
            clock = FakeClock()
            await repos.incidents.create(
                make_incident(
                    id="I-4",
                    kind="store_down",
                    subject="store:5",
                    at=clock.now(),
                    title="Store 5 down",
                    details=STORE_DOWN_DETAILS,
                )
            )
            await repos.incidents.create(
                make_incident(
                    id="I-3",
                    kind="region_pending_peer",
                    subject="cluster",
                    at=clock.now() - timedelta(minutes=1),
                    status=IncidentStatus.RESOLVED,
                    resolved_at=clock.now(),
                    title="Regions with pending peers",
                    details={"merged_into": "I-4"},
                )
            )
        finally:
            await db.close()

    db = tmp_path / "t.db"
    asyncio.run(seed(db))
    assert run_own(["incidents", "--db", str(db), "--all"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("I-4") and "Store 5 down" in lines[1]
    assert lines[2].strip() == "└ 40 regions with a pending peer (peers on store 5)"
    assert lines[3].strip() == "└ 12 regions missing a replica (while store 5 is unhealthy)"
    assert lines[4].startswith("I-3")
    assert lines[5].strip() == "└ merged into I-4 (the same cause)"


async def test_terminal_lines_carry_the_consequences_and_merges() -> None:
    out = io.StringIO()
    clock = FakeClock()
    notifier = TerminalNotifier(out, clock=clock)
    down = make_incident(
        id="I-4",
        kind="store_down",
        subject="store:5",
        at=clock.now(),
        title="Store 5 down",
        value=None,
        details=STORE_DOWN_DETAILS,
    )
    await notifier.incident_updated(down)
    merged = make_incident(
        id="I-3",
        kind="region_pending_peer",
        subject="cluster",
        at=clock.now(),
        status=IncidentStatus.RESOLVED,
        resolved_at=clock.now(),
        title="Regions with pending peers",
        details={"merged_into": "I-4"},
    )
    await notifier.incident_resolved(merged)
    updated, merge = out.getvalue().splitlines()
    assert "UPDATED   I-4   CRITICAL Store 5 down. Consequences: 40 regions with a pending " in (
        updated
    )
    assert "12 regions missing a replica (while store 5 is unhealthy). Store 5 is Down" in updated
    assert merge.endswith("MERGED    I-3   Regions with pending peers: into I-4, the same cause.")
