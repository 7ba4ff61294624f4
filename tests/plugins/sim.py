"""Pytest fixtures for the cluster simulator (`sim`).

- `sim`: a started SimServer with 3 stores and 1,000 regions, seed 0, `auto_tick=False` and a
  fixed start time, so virtual time moves only when the test calls `sim.cluster.advance(seconds)`.
  Everything it answers is therefore deterministic.
- `sim_factory`: `await sim_factory(stores=10, regions=5000, speed=30, auto_tick=True, ...)`
  starts another SimServer with any SimServer keyword arguments (defaults as above).

Both stop their servers at teardown. Everything listens on 127.0.0.1 with free ports.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from sim.server import SimServer

SIM_START_TIME = 1_795_400_000.0  # 2026-11-23 02:13:20 UTC, fixed for deterministic answers

SimFactory = Callable[..., Awaitable[SimServer]]


@pytest.fixture
async def sim_factory() -> AsyncIterator[SimFactory]:
    servers: list[SimServer] = []

    async def make(**kwargs: Any) -> SimServer:
        options: dict[str, Any] = {
            "stores": 3,
            "regions": 1000,
            "seed": 0,
            "auto_tick": False,
            "start_time": SIM_START_TIME,
        }
        options.update(kwargs)
        server = SimServer(**options)
        await server.start(host="127.0.0.1", port=0)
        servers.append(server)
        return server

    yield make
    for server in reversed(servers):
        await server.stop()


@pytest.fixture
async def sim(sim_factory: SimFactory) -> SimServer:
    return await sim_factory()
