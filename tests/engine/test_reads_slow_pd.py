"""Read answers for people never wait long on a slow PD: a live read has a short total deadline,
and when the monitor knows PD is failing the answer comes from what it knows ("as of …",
"PD unreachable since …") without asking PD. PD hangs behind `HostilePD` (loopback)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from engine.knowledge import ClusterKnowledge
from engine.results import RefusalKind, Refused, StatusView
from engine.service import Engine
from operator_tikv.observation import Observation
from operator_tikv.pd import PDClient, open_pd_client
from sim.server import SimServer
from storage import Database, Repositories
from tests.engine.test_service_support import BOB, RecordingNotifier, engine_kwargs
from tests.engine.words import handle_text
from tests.plugins.sim import SimFactory
from tests.reliability.hostile_pd import Hostile, HostilePD

GUARD = 5.0  # the PD client's own deadline here is 10 s: only the live deadline answers sooner


@asynccontextmanager
async def engine_via(
    sim: SimServer, pd: HostilePD, db_path: Path
) -> AsyncIterator[tuple[Engine, PDClient]]:
    db = await Database.open(db_path)
    try:
        async with open_pd_client(pd.url, retries=0, http_timeout=10.0) as client:
            engine = Engine(
                pd=client,
                repos=Repositories.on(db),
                notifier=RecordingNotifier(),
                **engine_kwargs(sim),
            )
            try:
                yield engine, client
            finally:
                await engine.close()
    finally:
        await db.close()


async def test_status_with_a_hung_pd_answers_at_the_live_deadline(
    sim_factory: SimFactory, db_path: Path
) -> None:
    sim = await sim_factory(stores=3)
    async with HostilePD(sim.pd_url) as pd, engine_via(sim, pd, db_path) as (engine, _):
        engine.reads.live_deadline = 0.3
        pd.mode = Hostile.HANG
        async with asyncio.timeout(GUARD):
            status = await handle_text(engine, "status", BOB)
            stores = await handle_text(engine, "stores", BOB)
            store = await handle_text(engine, "store 1", BOB)
    assert isinstance(status, StatusView)
    assert status.stores == []  # no monitor in this process: nothing known to show
    assert status.pd_error is not None
    assert status.pd_error.startswith("PD did not answer within 0.3 s")
    for refused in (stores, store):
        assert isinstance(refused, Refused) and refused.kind is RefusalKind.PD
        assert refused.reason.startswith("PD did not answer within 0.3 s")
        assert "`status` shows the cluster as the monitor last saw it" in refused.reason


async def test_status_falls_back_to_the_monitors_last_good_read_as_of_its_time(
    sim_factory: SimFactory, db_path: Path
) -> None:
    sim = await sim_factory(stores=3)
    async with HostilePD(sim.pd_url) as pd, engine_via(sim, pd, db_path) as (engine, client):
        clock = engine.clock
        knowledge = ClusterKnowledge(clock)
        engine.reads.knowledge = knowledge
        engine.reads.live_deadline = 0.3
        seen_at = clock.now()
        stores = tuple(await client.list_stores())
        knowledge.record(Observation(at=seen_at.timestamp(), pd_url=pd.url, stores=stores), seen_at)
        sim.cluster.advance(40)

        # the monitor has not noticed yet: a live read is tried, and cut short
        pd.mode = Hostile.HANG
        async with asyncio.timeout(GUARD):
            slow = await handle_text(engine, "status", BOB)
        assert isinstance(slow, StatusView)
        assert [s.id for s in slow.stores] == [1, 2, 3]
        assert slow.pd_error is not None
        assert slow.pd_error.startswith("PD did not answer within 0.3 s")
        assert f"Stores as of {seen_at:%H:%M:%S} UTC (40 s ago)" in slow.pd_error

        # the monitor noticed: no PD request at all
        failed_at = clock.now()
        knowledge.record(
            Observation(at=failed_at.timestamp(), pd_url=pd.url, pd_error="timed out."),
            failed_at,
        )
        sim.cluster.advance(90)
        requests = pd.count()
        async with asyncio.timeout(GUARD):
            known = await handle_text(engine, "status", BOB)
            region = await handle_text(engine, "region 2", BOB)
        assert pd.count() == requests
    assert isinstance(known, StatusView)
    assert [s.id for s in known.stores] == [1, 2, 3]
    assert known.pd_error == (
        f"PD unreachable since {failed_at:%H:%M:%S} UTC (90 s ago): timed out. "
        f"Stores as of {seen_at:%H:%M:%S} UTC (2 min ago), the monitor's last good read of PD."
    )
    assert isinstance(region, Refused) and region.kind is RefusalKind.PD
    assert region.reason.startswith(f"PD unreachable since {failed_at:%H:%M:%S} UTC")
