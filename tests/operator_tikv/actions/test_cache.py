"""`ReadOnce`: each distinct read goes to PD once per view, PD's errors are remembered like
answers, a write goes straight through and forgets everything, and drain's preflight, dry run
and snapshot through one view read the cluster once (checked in the simulator's request log)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import pytest

from operator_tikv.actions import DrainParams, PreflightContext, ReadOnce, get_action
from operator_tikv.errors import PDUnavailableError, StoreNotFoundError
from operator_tikv.models.writes import PDWrite
from operator_tikv.pd import open_pd_client
from sim.server import SimServer

SimFactory = Callable[..., Awaitable[SimServer]]

STORES = "/pd/api/v1/stores"
EVICTED = "/pd/api/v1/scheduler-config/evict-leader-scheduler/list"
REPLICATION = "/pd/api/v1/config/replicate"


def pd_calls(sim: SimServer, since: int = 0) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in sim.requests[since:] if r.store_id is None]


def context(sim: SimServer) -> PreflightContext:
    return PreflightContext(max_drained_stores=2, now=datetime.fromtimestamp(sim.cluster.now, UTC))


async def test_a_read_is_sent_once_and_a_write_forgets_every_answer(
    sim_factory: SimFactory,
) -> None:
    sim = await sim_factory(stores=4)
    async with open_pd_client(sim.pd_url, retries=0) as pd:
        reads = ReadOnce(pd)
        first = await reads.list_stores()
        again = await reads.list_stores()
        assert [s.id for s in again] == [s.id for s in first]
        again.clear()  # a caller changing its list does not change the remembered answer
        assert len(await reads.list_stores()) == len(first)
        assert await reads.evicted_leader_store_ids() == []
        assert await reads.evicted_leader_store_ids() == []
        assert (await reads.get_store(2)).id == 2
        assert (await reads.get_store(3)).id == 3  # another key: another read
        assert (await reads.get_store(2)).id == 2
        assert pd_calls(sim) == [
            ("GET", STORES),
            ("GET", EVICTED),
            ("GET", "/pd/api/v1/store/2"),
            ("GET", "/pd/api/v1/store/3"),
        ]
        assert reads.reads_sent == 4

        mark = len(sim.requests)
        await reads.execute(PDWrite.add_evict_leader(4))
        assert reads.reads_sent == 0
        # After the write every read goes to PD again, and sees the write.
        assert await reads.evicted_leader_store_ids() == [4]
        assert pd_calls(sim, mark) == [("POST", "/pd/api/v1/schedulers"), ("GET", EVICTED)]


async def test_pds_error_for_a_read_is_remembered_like_an_answer(
    sim_factory: SimFactory,
) -> None:
    sim = await sim_factory(stores=3)
    async with open_pd_client(sim.pd_url, retries=0) as pd:
        reads = ReadOnce(pd)
        with pytest.raises(StoreNotFoundError):
            await reads.get_store(99)
        with pytest.raises(StoreNotFoundError):
            await reads.get_store(99)
        assert pd_calls(sim) == [("GET", "/pd/api/v1/store/99")]


class FlakyStores:
    """A PD whose store list fails once, then answers."""

    def __init__(self) -> None:
        self.calls = 0

    async def list_stores(self) -> list[object]:
        self.calls += 1
        if self.calls == 1:
            raise PDUnavailableError("connection refused", from_pd=False)
        return []


async def test_two_views_never_share_answers() -> None:
    """Each execution makes its own view: a failure (or an answer) seen by one run is not
    served to the next."""
    flaky = FlakyStores()
    first = ReadOnce(flaky)  # type: ignore[arg-type]
    with pytest.raises(PDUnavailableError):
        await first.list_stores()
    with pytest.raises(PDUnavailableError):
        await first.list_stores()
    assert await ReadOnce(flaky).list_stores() == []  # type: ignore[arg-type]
    assert flaky.calls == 2


async def test_drain_preflight_dry_run_and_snapshot_read_the_cluster_once(
    sim_factory: SimFactory,
) -> None:
    sim = await sim_factory(stores=4)
    drain = get_action("drain")
    params = drain.validate(DrainParams(store_id=4))
    async with open_pd_client(sim.pd_url, retries=0) as pd:
        reads = ReadOnce(pd)
        dry = await drain.dry_run(params, reads, context(sim))
        before = await drain.snapshot(params, reads)
        assert dry.would_run
        assert before.store_leader_counts[4] == sim.cluster.store(4).leader_count
        assert before.evicted_store_ids == ()
        assert sorted(pd_calls(sim)) == sorted(
            [("GET", STORES), ("GET", EVICTED), ("GET", REPLICATION)]
        )

        # Without the view, the same steps read the store and evict-leader lists again.
        mark = len(sim.requests)
        await drain.dry_run(params, pd, context(sim))
        await drain.snapshot(params, pd)
        assert sorted(pd_calls(sim, mark)).count(("GET", STORES)) == 3


async def test_drain_preflight_still_refuses_an_unknown_store(sim_factory: SimFactory) -> None:
    sim = await sim_factory(stores=3)
    drain = get_action("drain")
    async with open_pd_client(sim.pd_url, retries=0) as pd:
        report = await drain.preflight(
            drain.validate(DrainParams(store_id=9)), ReadOnce(pd), context(sim)
        )
    assert not report.ok
    assert [c.name for c in report.checks] == ["store-exists"]
    assert "store 9 does not exist" in report.refusal()
