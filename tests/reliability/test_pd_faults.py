"""PD faults: connection refused, requests that hang past the timeout, 5xx answers, slow
answers, and 200 answers whose JSON is cut short or is not JSON at all, put between the bot and
the simulator by a proxy (`pd_proxy.PDProxy`).

- The monitor (as `tikvops run` builds it) opens a `pd_unreachable` incident, keeps ticking
  without raising, opens nothing else from the missing data, and resolves the incident when PD
  answers again; a slow PD within the timeout is not an incident.
- An approved action meets the fault in its preflight reads or in its write: it ends in a
  final state with PD's problem as the reason, the audit log pairs its start with its end, and
  PD received the write only when the proxy let it through.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.clock import SystemClock
from engine.model import ExecutionStatus, Identity, IncidentStatus, ProposalState
from engine.monitor import ClusterSource, Monitor
from engine.results import ProposalCreated, RefusalKind, Refused
from sim.server import SimServer
from tests.engine.test_service_support import RecordingNotifier
from tests.engine.words import handle_text
from tests.plugins.sim import SimFactory
from tests.reliability.pd_proxy import Mode, PDProxy
from tests.reliability.support import clock_running, pd_writes
from tikvops.runtime import Runtime, build_monitor, open_runtime
from tikvops.settings import Settings

ALICE = Identity.slack("U0ALICE", name="alice")
BOB = Identity.slack("U0BOB", name="bob")
FAST_ENGINE = {
    "poll_intervals": {"drain": 0.05},
    "deadlines": {"drain": 20.0},
}
TERMINAL = (ProposalState.SUCCEEDED, ProposalState.FAILED)


@dataclass
class Bot:
    runtime: Runtime
    monitor: Monitor
    notifier: RecordingNotifier


@asynccontextmanager
async def bot_via(proxy: PDProxy, db: Path) -> AsyncIterator[Bot]:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        pd_url=proxy.url,
        db=db,
        pd_timeout=0.5,
        pd_retries=1,
        resolve_after=0,
        region_health_grace=600,
        approvers=["U0ALICE"],
        approvers_high=["U0ALICE"],
        anthropic_api_key=None,
    )
    notifier = RecordingNotifier()
    async with open_runtime(settings, notifier=notifier, engine_options=FAST_ENGINE) as runtime:
        source = ClusterSource(runtime.pd, None, pd_url=proxy.url)
        monitor = build_monitor(runtime, source, clock=SystemClock(), diagnoser=None)
        try:
            yield Bot(runtime, monitor, notifier)
        finally:
            await monitor.close()
            await runtime.engine.wait_idle()


async def apply(proxy: PDProxy, mode: Mode) -> None:
    if mode is Mode.REFUSED:
        await proxy.refuse()
    else:
        proxy.mode = mode
        proxy.delay = 1.5 if mode is Mode.SLOW else 0.0


@pytest.mark.parametrize(
    "mode", [Mode.REFUSED, Mode.HANG, Mode.ERROR_5XX, Mode.SLOW, Mode.MALFORMED, Mode.GARBAGE]
)
async def test_monitor_reports_pd_unreachable_keeps_running_and_recovers(
    sim_factory: SimFactory, tmp_path: Path, mode: Mode
) -> None:
    sim = await sim_factory(stores=4)
    async with PDProxy(sim.pd_url) as proxy, bot_via(proxy, tmp_path / "db.sqlite") as bot:
        healthy = await bot.monitor.tick()
        assert healthy.pd_reachable and healthy.open_incidents == ()

        await apply(proxy, mode)
        seen = [await bot.monitor.tick() for _ in range(3)]  # never raises
        assert all(not report.pd_reachable for report in seen)
        assert {i.kind for i in seen[-1].open_incidents} == {"pd_unreachable"}
        await bot.runtime.engine.wait_idle()  # the notifier hears the events from the log
        opened = [i for name, i in bot.notifier.calls if name == "incident_opened"]
        assert [i.kind for i in opened] == ["pd_unreachable"]
        reason = opened[0].title + " " + str(opened[0].details)
        assert proxy.url.removeprefix("http://") in reason or "PD" in reason

        await proxy.restore()
        for _ in range(5):
            report = await bot.monitor.tick()
            if not report.open_incidents:
                break
        assert report.pd_reachable and report.open_incidents == ()
        incidents = await bot.runtime.repos.incidents.list_open()
        assert incidents == []
        await bot.runtime.engine.wait_idle()
        resolved = [i for name, i in bot.notifier.calls if name == "incident_resolved"]
        assert [(i.kind, i.status) for i in resolved] == [
            ("pd_unreachable", IncidentStatus.RESOLVED)
        ]


async def test_a_slow_pd_within_the_timeout_is_not_an_incident(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    sim = await sim_factory(stores=4)
    async with PDProxy(sim.pd_url) as proxy, bot_via(proxy, tmp_path / "db.sqlite") as bot:
        proxy.mode, proxy.delay = Mode.SLOW, 0.1
        report = await bot.monitor.tick()
        assert report.pd_reachable and report.open_incidents == ()


async def run_drain(bot: Bot, sim: SimServer, proxy: PDProxy, mode: Mode) -> str:
    """Propose while PD is healthy, then approve with the fault in place."""
    engine = bot.runtime.engine
    created = await handle_text(engine, "drain 4", BOB)
    assert isinstance(created, ProposalCreated)
    proposal_id = created.proposal.id
    await apply(proxy, mode)
    async with clock_running(sim, step=2.0):
        await engine.approve(proposal_id, ALICE)
        await engine.wait_idle()
    return proposal_id


@pytest.mark.parametrize("mode", [Mode.REFUSED, Mode.ERROR_5XX, Mode.GARBAGE, Mode.MALFORMED])
async def test_a_proposal_is_refused_with_the_reason_when_pd_cannot_be_read(
    sim_factory: SimFactory, tmp_path: Path, mode: Mode
) -> None:
    sim = await sim_factory(stores=4)
    async with PDProxy(sim.pd_url) as proxy, bot_via(proxy, tmp_path / "db.sqlite") as bot:
        await apply(proxy, mode)
        refused = await handle_text(bot.runtime.engine, "drain 4", BOB)
        assert isinstance(refused, Refused) and refused.kind is RefusalKind.PD
        assert "PD" in refused.reason
        assert await bot.runtime.repos.proposals.list(limit=10) == []
    assert pd_writes(sim) == []


@pytest.mark.parametrize(
    ("mode", "methods", "pd_applied"),
    [
        (Mode.REFUSED, {"GET", "POST"}, False),
        (Mode.ERROR_5XX, {"GET"}, False),  # the preflight cannot read the cluster
        (Mode.GARBAGE, {"GET"}, False),
        (Mode.MALFORMED, {"GET"}, False),
        (Mode.ERROR_5XX, {"POST"}, False),  # PD refuses the write
        (Mode.HANG, {"POST"}, False),  # the write's answer never comes (not forwarded)
        (Mode.MALFORMED, {"POST"}, True),  # PD applied it; its answer is cut short
    ],
)
async def test_actions_fail_cleanly_and_nothing_is_half_recorded(
    sim_factory: SimFactory, tmp_path: Path, mode: Mode, methods: set[str], pd_applied: bool
) -> None:
    sim = await sim_factory(stores=4)
    async with PDProxy(sim.pd_url) as proxy, bot_via(proxy, tmp_path / "db.sqlite") as bot:
        proxy.methods = frozenset(methods)
        proposal_id = await run_drain(bot, sim, proxy, mode)
        await proxy.restore()
        repos = bot.runtime.repos
        proposal = await repos.proposals.get(proposal_id)
        execution = await repos.executions.get(proposal_id)
        audit = [e.action for e in reversed(await repos.audit.list_recent(limit=100))]

    applied = 4 in sim.cluster.schedulers.evicted_stores()
    assert applied is pd_applied
    assert len(pd_writes(sim)) == (1 if pd_applied else 0)
    assert proposal is not None and proposal.state in TERMINAL
    # the recorded outcome matches what PD did, and says why when it failed
    assert (proposal.state is ProposalState.SUCCEEDED) is applied, proposal.outcome
    if not applied:
        assert proposal.outcome and "PD" in proposal.outcome
    assert execution is not None
    assert execution.status in (ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED)
    assert audit.count("proposal.start") == 1
    ends = [a for a in audit if a in ("proposal.succeed", "proposal.fail")]
    assert len(ends) == 1, audit


async def test_a_write_that_lands_after_the_timeout_is_reported_as_unknown(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    """The answer to the write is lost (PD is slower than the client's timeout) and PD applies
    the write only after the bot looked again: the bot cannot know, records the run as failed
    with "answer was lost", and tells the user to check the cluster; it never sends again."""
    sim = await sim_factory(stores=4)
    async with PDProxy(sim.pd_url) as proxy, bot_via(proxy, tmp_path / "db.sqlite") as bot:
        proxy.methods = frozenset({"POST"})
        proposal_id = await run_drain(bot, sim, proxy, Mode.SLOW)
        await bot.runtime.engine.wait_idle()
        # the delayed write reaches PD after the run ended
        await wait_until(lambda: bool(pd_writes(sim)))
        proposal = await bot.runtime.repos.proposals.get(proposal_id)
    assert len(pd_writes(sim)) == 1
    assert proposal is not None and proposal.state is ProposalState.FAILED
    assert proposal.outcome is not None
    assert "answer was lost" in proposal.outcome and "Check the cluster" in proposal.outcome


async def wait_until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.02)
