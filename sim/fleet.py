"""SimFleet: several named simulated clusters in one process, each behind its own ports.

Each cluster is an independent `SimServer` (its own PD port, its own store /metrics ports, its
own request log, its own faults), so a test can check that a write reached one cluster and none
reached another. One process serves them all: twenty clusters of ten stores cost one event loop,
not twenty interpreters, which keeps a 2-core machine usable. Seeds differ per cluster so the
layouts differ.

    fleet = SimFleet(["prod", "staging"], stores=3, regions=150, speed=20.0)
    await fleet.start()                 # 127.0.0.1, free ports (or base_port, base_port+1, ...)
    fleet["prod"].pd_url
    fleet.pd_urls()                     # {"prod": "http://127.0.0.1:PORT", ...}
    await fleet.stop()
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from sim.server import SimServer

NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
MAX_CLUSTERS = 100


def fleet_names(count: int, *, first: Sequence[str] = ("prod", "staging")) -> list[str]:
    """`count` cluster names: `first` in order, then `c3`, `c4`, ..."""
    if not 1 <= count <= MAX_CLUSTERS:
        raise ValueError(
            f"the number of clusters must be between 1 and {MAX_CLUSTERS}, got {count}"
        )
    names = list(first[:count])
    names += [f"c{i}" for i in range(len(names) + 1, count + 1)]
    return names


class SimFleet:
    """Named `SimServer`s started and stopped together."""

    def __init__(
        self,
        names: Sequence[str],
        *,
        stores: int = 3,
        regions: int = 300,
        speed: float = 1.0,
        seed: int = 0,
        auto_tick: bool = True,
        tick_interval: float = 0.1,
    ) -> None:
        if not names:
            raise ValueError("a fleet needs at least one cluster name")
        seen: set[str] = set()
        for name in names:
            if not NAME.match(name):
                raise ValueError(
                    f"cluster name {name!r} is not valid: use 1-32 lower-case letters, digits, "
                    "'-' or '_', starting with a letter"
                )
            if name in seen:
                raise ValueError(f"cluster name {name!r} appears twice; names must be unique")
            seen.add(name)
        self.servers: dict[str, SimServer] = {
            name: SimServer(
                stores=stores,
                regions=regions,
                speed=speed,
                seed=seed + index,
                auto_tick=auto_tick,
                tick_interval=tick_interval,
            )
            for index, name in enumerate(names)
        }
        self._started: list[SimServer] = []

    def __getitem__(self, name: str) -> SimServer:
        try:
            return self.servers[name]
        except KeyError:
            known = ", ".join(self.servers)
            raise KeyError(f"no simulated cluster {name!r}; the fleet has {known}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self.servers)

    def __len__(self) -> int:
        return len(self.servers)

    def pd_urls(self) -> dict[str, str]:
        return {name: server.pd_url for name, server in self.servers.items()}

    async def start(self, host: str = "127.0.0.1", base_port: int = 0) -> None:
        """Start every cluster: PD ports `base_port`, `base_port + 1`, ... (0: free ports).
        On a failure the clusters already started are stopped and the error is raised."""
        try:
            for index, server in enumerate(self.servers.values()):
                await server.start(host=host, port=base_port + index if base_port else 0)
                self._started.append(server)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop every started cluster, last started first."""
        while self._started:
            await self._started.pop().stop()

    async def __aenter__(self) -> SimFleet:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


__all__ = ["MAX_CLUSTERS", "SimFleet", "fleet_names"]
