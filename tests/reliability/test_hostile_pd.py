"""The running bot (`open_stack`: scheduler, monitor, engine, `/healthz`) in front of a hostile
PD (`hostile_pd.HostilePD`, a loopback server in front of the simulator):

- PD trickles its answers (headers, then one byte at a time, each within the per-read idle
  timeout, as a byte every 2 s is against the default 5 s): monitor cycles keep starting, a
  `pd_unreachable` incident opens, `/healthz` says why, `/tikv status` answers at once from what
  the monitor knows ("PD unreachable since …", stores "as of …") without asking PD, and when PD
  recovers `/healthz` and the incident follow within a few cycles;
- an approved drain whose verification reads trickle does not stay "executing";
- PD answers an empty or shrunken store list: the open incidents stay open (no resolve, no
  re-open afterwards), one `pd_unreachable` incident says the answer is not trustworthy, and
  `/healthz` is not 200 until PD answers believably again;
- PD answers its store list with a 50 MB body: the read fails with the size it was refused at.

Nothing here asserts wall-clock durations: each wait is for a condition, with a bound.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.render.views import status_view
from engine.model import Identity, Incident, ProposalState
from engine.results import ProposalCreated, StatusView
from sim.server import SimServer
from tests.engine.test_service_support import RecordingNotifier
from tests.engine.words import handle_text
from tests.plugins.sim import SimFactory
from tests.reliability.hostile_pd import Hostile, HostilePD
from tests.reliability.support import clock_running, pd_writes
from tikvops.settings import Settings
from tikvops.stack import Stack, open_stack

ALICE = Identity.slack("U0ALICE", name="alice")
BOB = Identity.slack("U0BOB", name="bob")
WAIT = 30.0
EVICT_CONFIG = "/pd/api/v1/scheduler-config/evict-leader-scheduler/list"


@dataclass
class Running:
    stack: Stack
    notifier: RecordingNotifier
    pd: HostilePD
    health: httpx.AsyncClient

    async def healthz(self) -> tuple[int, dict[str, Any]]:
        response = await self.health.get("/healthz")
        return response.status_code, response.json()

    def opened(self, kind: str | None = None) -> list[Incident]:
        return [
            i
            for name, i in self.notifier.calls
            if name == "incident_opened" and (kind is None or i.kind == kind)
        ]

    def resolved(self, kind: str | None = None) -> list[Incident]:
        return [
            i
            for name, i in self.notifier.calls
            if name == "incident_resolved" and (kind is None or i.kind == kind)
        ]

    async def open_kinds(self) -> set[str]:
        return {i.kind for i in await self.stack.runtime.repos.incidents.list_open()}

    def runs(self) -> int:
        return self.stack.scheduler.stats("monitor").runs


@asynccontextmanager
async def running(sim: SimServer, db: Path, **values: Any) -> AsyncIterator[Running]:
    async with HostilePD(sim.pd_url) as pd:
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            **{
                "pd_url": pd.url,
                "db": db,
                "poll_interval": 0.3,
                "pd_timeout": 0.5,
                "pd_retries": 1,
                "resolve_after": 0,
                "health_addr": "127.0.0.1:0",
                "slack_bot_token": None,
                "slack_app_token": None,
                "anthropic_api_key": None,
                "approvers": ["U0ALICE"],
                "approvers_high": ["U0ALICE"],
                **values,
            },
        )
        notifier = RecordingNotifier()
        engine = {"poll_intervals": {"drain": 0.05}, "deadlines": {"drain": 3.0}}
        async with (
            open_stack(settings, notifier=notifier, engine_options=engine) as stack,
            httpx.AsyncClient(base_url=stack.health_url or "", timeout=5.0) as health,
        ):
            yield Running(stack, notifier, pd, health)


async def until(condition: Callable[[], Any], what: str, within: float = WAIT) -> None:
    try:
        async with asyncio.timeout(within):
            while True:
                result = condition()
                if asyncio.iscoroutine(result):
                    result = await result
                if result:
                    return
                await asyncio.sleep(0.05)
    except TimeoutError:
        pytest.fail(f"within {within:g} s: {what}")


async def healthz_is(bot: Running, status: int) -> bool:
    return (await bot.healthz())[0] == status


# --------------------------------------------------------------------------- item 1 and 6


async def test_a_trickling_pd_opens_pd_unreachable_and_status_answers_from_what_is_known(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    sim = await sim_factory(stores=4)
    async with running(sim, tmp_path / "db.sqlite") as bot:
        await until(lambda: healthz_is(bot, 200), "/healthz is 200 while PD answers")
        await until(lambda: bot.stack.monitor.ticks >= 1, "a first cycle saw the stores")

        # every request: headers, then a byte every 0.1 s, so the 0.5 s per-read idle timeout
        # never fires (as with a byte every 2 s against the default 5 s)
        bot.pd.trickle_every = 0.1
        bot.pd.mode = Hostile.TRICKLE
        runs_before = bot.runs()
        await until(lambda: bot.opened("pd_unreachable"), "a pd_unreachable incident opens")
        (incident,) = bot.opened("pd_unreachable")
        assert "no complete answer within" in json.dumps(incident.details)

        # cycles keep starting: a hung one does not block the next
        await until(lambda: bot.runs() >= runs_before + 3, "monitor cycles keep running")
        status, body = await bot.healthz()
        assert status == 503
        assert "no complete answer within" in body["failing"]["pd"]

        # /tikv status answers from the monitor's knowledge, without asking PD anything
        evict_reads = bot.pd.seen[("GET", EVICT_CONFIG, "trickle")]
        async with asyncio.timeout(WAIT):
            answer = await handle_text(bot.stack.engine, "status", ALICE)
        assert isinstance(answer, StatusView)
        assert bot.pd.seen[("GET", EVICT_CONFIG, "trickle")] == evict_reads
        assert answer.pd_error is not None
        assert answer.pd_error.startswith("PD unreachable since ")
        assert "no complete answer within" in answer.pd_error
        assert "Stores as of " in answer.pd_error
        assert "the monitor's last good read of PD" in answer.pd_error
        assert [s.id for s in answer.stores] == [1, 2, 3, 4]
        assert [i.kind for i in answer.open_incidents] == ["pd_unreachable"]
        shown = json.dumps(status_view(answer, bot.stack.clock.now()).blocks)
        assert "PD unreachable since" in shown and "Stores as of" in shown
        for other in ("stores", "store 2", "region 2"):
            refused = await handle_text(bot.stack.engine, other, ALICE)
            assert "PD unreachable since" in getattr(refused, "reason", ""), other
        assert bot.pd.seen[("GET", EVICT_CONFIG, "trickle")] == evict_reads

        # PD recovers: /healthz and the incident follow within a few cycles
        bot.pd.mode = Hostile.PASS
        await until(lambda: healthz_is(bot, 200), "/healthz is 200 again")
        await until(lambda: bot.resolved("pd_unreachable"), "pd_unreachable resolves")
        assert len(bot.opened("pd_unreachable")) == 1
        answer = await handle_text(bot.stack.engine, "status", ALICE)
        assert isinstance(answer, StatusView) and answer.pd_error is None


async def test_a_drain_whose_verification_reads_trickle_does_not_stay_executing(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    sim = await sim_factory(stores=4)
    async with running(sim, tmp_path / "db.sqlite") as bot:
        engine = bot.stack.engine
        created = await handle_text(engine, "drain 4", BOB)
        assert isinstance(created, ProposalCreated)
        pd = bot.pd
        # the write goes through; every read after it trickles
        pd.only = lambda method, path: method == "GET" and pd.count("POST") > 0
        pd.trickle_every = 0.1  # within the per-read idle timeout (0.5 s): only a total ends it
        pd.mode = Hostile.TRICKLE
        async with clock_running(sim, step=2.0):
            await engine.approve(created.proposal.id, ALICE)
            async with asyncio.timeout(WAIT):
                await engine.wait_idle()
        proposal = await bot.stack.runtime.repos.proposals.get(created.proposal.id)
        assert proposal is not None
        assert proposal.state not in (ProposalState.EXECUTING, ProposalState.APPROVED)
        assert proposal.outcome and "PD" in proposal.outcome
        assert pd.count("POST") == 1
        assert pd.count("GET", "trickle") >= 1
    assert len(pd_writes(sim)) == 1


# --------------------------------------------------------------------------- item 3


@pytest.mark.parametrize(
    ("mode", "setup", "says"),
    [
        (Hostile.EMPTY_STORES, {"empty_count": 1}, "count 1 but lists 0 stores"),
        (Hostile.EMPTY_STORES, {"empty_count": 0}, "lists no stores at all"),
        (Hostile.DROP_STORES, {"dropped": {3}}, "store 3 (Up in its last believable answer)"),
    ],
)
async def test_an_unbelievable_store_list_freezes_incidents_instead_of_resolving_them(
    sim_factory: SimFactory,
    tmp_path: Path,
    mode: Hostile,
    setup: dict[str, Any],
    says: str,
) -> None:
    sim = await sim_factory(stores=4)
    sim.faults.stop_store(4)
    sim.cluster.advance(1900)  # past max-store-down-time: store 4 is Down
    async with running(sim, tmp_path / "db.sqlite") as bot:

        async def down_with_its_regions() -> bool:
            # one incident per cause: the down-peer regions are a consequence on the store's
            return any(
                i.kind == "store_down"
                and "region_down_peer"
                in {c.get("kind") for c in i.details.get("consequences") or []}
                for i in await bot.stack.runtime.repos.incidents.list_open()
            )

        await until(down_with_its_regions, "the Down store's incident opens with its regions")
        before = {i.id: i.kind for i in await bot.stack.runtime.repos.incidents.list_open()}
        subjects = {
            (i.kind, i.subject) for i in await bot.stack.runtime.repos.incidents.list_open()
        }
        assert "store_down" in before.values()

        for name, value in setup.items():
            setattr(bot.pd, name, value)
        bot.pd.mode = mode
        await until(lambda: bot.opened("pd_unreachable"), "one incident says PD is not believed")
        (untrusted,) = bot.opened("pd_unreachable")
        reason = json.dumps(untrusted.details)
        assert "PD answer not trustworthy" in reason and says in reason
        runs = bot.runs()
        await until(lambda: bot.runs() >= runs + 3, "more cycles with the same answer")
        # frozen: every incident still open, none resolved
        still = {i.id: i.kind for i in await bot.stack.runtime.repos.incidents.list_open()}
        assert set(before.items()) <= set(still.items())
        assert bot.resolved() == []
        status, body = await bot.healthz()
        assert status == 503
        assert body["failing"]["pd"].startswith("PD answer not trustworthy")

        bot.pd.mode = Hostile.PASS
        await until(lambda: bot.resolved("pd_unreachable"), "pd_unreachable resolves")
        runs = bot.runs()
        await until(lambda: bot.runs() >= runs + 3, "more cycles with real answers")
        await until(lambda: healthz_is(bot, 200), "/healthz is 200 again")
        after = {i.id: i.kind for i in await bot.stack.runtime.repos.incidents.list_open()}
    # the same incidents, never resolved and never opened again (the sim may add new ones)
    assert set(before.items()) <= set(after.items())
    assert [i.kind for i in bot.resolved()] == ["pd_unreachable"]
    for kind, subject in subjects:
        assert [(i.kind, i.subject) for i in bot.opened(kind)].count((kind, subject)) == 1
    assert len(bot.opened("pd_unreachable")) == 1  # the one saying why


# --------------------------------------------------------------------------- item 4


async def test_a_huge_store_list_is_refused_with_its_size(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    sim = await sim_factory(stores=4)
    async with running(sim, tmp_path / "db.sqlite") as bot:
        await until(lambda: bot.stack.monitor.ticks >= 1, "a first cycle")
        bot.pd.only = lambda method, path: path == "/pd/api/v1/stores"
        bot.pd.mode = Hostile.HUGE  # 50 MB, chunked
        await until(lambda: bot.opened("pd_unreachable"), "a pd_unreachable incident opens")
        (incident,) = bot.opened("pd_unreachable")
        reason = json.dumps(incident.details)
        assert "larger than the 16 MiB accepted" in reason
        assert "TIKVOPS_PD_URL" in reason
        answer = await handle_text(bot.stack.engine, "stores", ALICE)
        assert "PD unreachable since" in getattr(answer, "reason", "")
        metrics = (await bot.health.get("/metrics")).text
        assert 'endpoint="/pd/api/v1/stores",outcome="too_large"' in metrics
        bot.pd.mode = Hostile.PASS
        await until(lambda: bot.resolved("pd_unreachable"), "pd_unreachable resolves")
    assert bot.pd.sent_bytes and all(sent < 50 * 1024 * 1024 for sent in bot.pd.sent_bytes)
