"""RegionWatch against the simulator over real HTTP: the monitor's worker-process list reads
give the same summaries as the in-process parse, and their failures are reported."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from operator_tikv.models.cluster import Members
from operator_tikv.models.config import ReplicationConfig
from operator_tikv.observation import RegionProblem, RegionWatch, observe
from operator_tikv.pd import PDClient
from sim.server import SimServer
from tests.plugins.sim import SimFactory


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10.0) as client:
        yield client


async def stopped_store_cluster(sim_factory: SimFactory) -> SimServer:
    server = await sim_factory(stores=4, regions=2_000)
    server.faults.stop_store(4)
    server.cluster.advance(700)  # peers on store 4 are down and pending
    return server


@pytest.mark.timeout(180)
async def test_worker_process_summaries_equal_the_thread_ones(
    sim_factory: SimFactory, http: httpx.AsyncClient
) -> None:
    server = await stopped_store_cluster(sim_factory)
    pd = PDClient(http, server.pd_url, retries=0)
    results = {}
    for mode in ("process", "thread"):
        watch = RegionWatch(lists=mode, list_budget=None)
        try:
            obs = await observe(
                pd, None, at=server.cluster.now, pd_url=server.pd_url, regions=watch
            )
        finally:
            await watch.close()
        results[mode] = {
            p: c.model_copy(update={"listed_age": 0.0}) for p, c in obs.region_checks.items()
        }
    down = results["process"][RegionProblem.DOWN_PEER]
    assert down.count == server.cluster.check_count("down-peer") > 0
    assert down.listed_count == down.count
    assert set(down.peer_stores) == {4}
    assert "cannot cost any region a majority" in down.note  # 1 of 4 stores, 3 replicas
    assert results["process"] == results["thread"]


class ListsElsewhere:
    """PD for every read the watch makes, but the worker's lists go to `base_url`."""

    def __init__(self, pd: PDClient, base_url: str) -> None:
        self.pd = pd
        self.base_url = base_url

    async def get_metrics_text(self, base_url: str | None = None) -> bytes:
        return await self.pd.get_metrics_text(base_url)

    async def get_members(self) -> Members:
        return await self.pd.get_members()

    async def get_replication_config(self) -> ReplicationConfig:
        return await self.pd.get_replication_config()

    async def get_region_check_body(self, state: Any) -> bytes:
        return await self.pd.get_region_check_body(state)


@pytest.mark.timeout(180)
async def test_a_worker_read_that_fails_says_why(
    sim_factory: SimFactory, http: httpx.AsyncClient
) -> None:
    server = await stopped_store_cluster(sim_factory)
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    pd = PDClient(http, server.pd_url, retries=0)
    watch = RegionWatch(lists="process", list_budget=None)
    try:
        report = await watch.check(ListsElsewhere(pd, closed), await pd.list_stores())
    finally:
        await watch.close()
    down = report.checks[RegionProblem.DOWN_PEER]
    assert down.count > 0 and not down.listed
    assert f"Examples could not be listed: could not read {closed}" in down.note
