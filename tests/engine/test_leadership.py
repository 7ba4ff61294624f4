"""Leader election over a shared in-memory lock (the PostgreSQL lock itself is tested in
tests/storage/test_leader.py): one leader at a time, a follower takes over when the leader's
connection is lost or it stops, and the old leader has stepped down before the new one leads.
Intervals are short; assertions are on order and counts, never on durations."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from engine.leadership import Leadership, SoleLeader

POLL = 0.05


class LockServer:
    """Where the lock lives (PostgreSQL in production): at most one session holds it."""

    def __init__(self) -> None:
        self.holder: SessionLock | None = None
        self.down = False


class SessionLock:
    """One replica's lock handle; `cut()` loses its connection (the server frees the lock)."""

    def __init__(self, server: LockServer, name: str) -> None:
        self.server = server
        self.name = f"test lock ({name})"
        self.connected = True
        self.confirms = 0

    async def acquire(self) -> bool:
        if self.server.down:
            raise ConnectionError("the lock server is down")
        self.connected = True
        if self.server.holder is None:
            self.server.holder = self
        return self.server.holder is self

    async def confirm(self) -> bool:
        self.confirms += 1
        return self.connected and self.server.holder is self

    async def release(self) -> None:
        if self.server.holder is self:
            self.server.holder = None

    def cut(self) -> None:
        self.connected = False
        if self.server.holder is self:
            self.server.holder = None


class Replica:
    def __init__(self, server: LockServer, name: str, log: list[str]) -> None:
        self.lock = SessionLock(server, name)
        self.name = name

        async def promoted() -> None:
            log.append(f"{name} leads")

        async def demoted() -> None:
            log.append(f"{name} steps down")

        self.leadership = Leadership(self.lock, poll=POLL, on_promoted=promoted, on_demoted=demoted)


async def until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(POLL / 5)


async def test_alone_it_leads_before_start_returns() -> None:
    promoted: list[str] = []

    async def hook() -> None:
        promoted.append("now")

    leadership = Leadership(SoleLeader(), poll=POLL, takeover_delay=0, on_promoted=hook)
    await leadership.start()
    try:
        assert leadership.is_leader
        assert promoted == ["now"]
        assert leadership.describe().startswith("leader:")
    finally:
        await leadership.stop()
    assert not leadership.is_leader


async def test_one_leader_among_three_and_a_lost_connection_hands_over() -> None:
    server = LockServer()
    log: list[str] = []
    replicas = [Replica(server, f"r{n}", log) for n in (1, 2, 3)]
    for replica in replicas:
        await replica.leadership.start()
        await until(lambda: server.holder is not None)  # r1 first: the test knows who leads
    try:
        await until(lambda: sum(r.leadership.is_leader for r in replicas) == 1)
        [first] = [r for r in replicas if r.leadership.is_leader]
        assert first.name == "r1"
        # Followers keep polling and never lead while the leader holds the lock.
        confirms = first.lock.confirms
        await until(lambda: first.lock.confirms >= confirms + 3)
        assert sum(r.leadership.is_leader for r in replicas) == 1

        first.lock.cut()
        await until(lambda: any(r.leadership.is_leader for r in replicas if r is not first))
        [second] = [r for r in replicas if r.leadership.is_leader]
        assert second is not first
        assert not first.leadership.is_leader
        assert log.index(f"{first.name} steps down") < log.index(f"{second.name} leads")
        assert first.leadership.last_demotion == (
            "lost the test lock (r1): the lock's connection was lost"
        )
        assert first.leadership.describe().startswith("follower:")
    finally:
        for replica in replicas:
            await replica.leadership.stop()
    assert [line for line in log if line.endswith("leads")] == [
        f"{first.name} leads",
        f"{second.name} leads",
    ]


async def test_a_stopping_leader_hands_over() -> None:
    server = LockServer()
    log: list[str] = []
    one, two = Replica(server, "r1", log), Replica(server, "r2", log)
    await one.leadership.start()
    await until(lambda: one.leadership.is_leader)
    await two.leadership.start()
    try:
        await one.leadership.stop()
        assert log[-1] == "r1 steps down"
        await until(lambda: two.leadership.is_leader)
    finally:
        await two.leadership.stop()
    assert log == ["r1 leads", "r1 steps down", "r2 leads", "r2 steps down"]


async def test_an_unreachable_lock_server_leaves_it_a_follower_saying_why() -> None:
    server = LockServer()
    server.down = True
    log: list[str] = []
    replica = Replica(server, "r1", log)
    await replica.leadership.start()
    try:
        await until(lambda: "cannot reach" in replica.leadership.describe())
        assert not replica.leadership.is_leader
        assert "the lock server is down" in replica.leadership.describe()
        server.down = False
        await until(lambda: replica.leadership.is_leader)
    finally:
        await replica.leadership.stop()
    assert log == ["r1 leads", "r1 steps down"]


async def test_a_leader_whose_confirmation_is_stale_does_not_claim_to_lead() -> None:
    now = [100.0]
    leadership = Leadership(SoleLeader(), poll=10.0, takeover_delay=0, now=lambda: now[0])
    await leadership.start()
    try:
        assert leadership.is_leader
        now[0] += 10.5  # the loop has not confirmed for longer than a poll interval
        assert not leadership.is_leader
    finally:
        await leadership.stop()


def test_a_nonsense_poll_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="must be positive"):
        Leadership(SoleLeader(), poll=0)
