"""The leader lock on a real PostgreSQL: one holder at a time, freed when the holder's session
ends (a killed process, a connection the server cut), and a holder notices that it lost it.
Elections over it: one of three `Leadership`s leads, and another leads after the leader's
connection is cut (the old one stepping down first)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from engine.errors import StorageError
from engine.leadership import Leadership, SoleLeader
from storage.leader import PgLeaderLock, is_postgres, open_leader_lock
from tests.plugins.postgres import PostgresServer

POLL = 0.2


async def terminate(url: str, pid: int | None) -> None:
    """End a server session from outside (what a lost connection looks like to the server)."""
    assert pid is not None
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as admin:
        await admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


async def until(condition: Callable[[], Any], within: float = 20.0) -> None:
    async with asyncio.timeout(within):
        while not condition():
            await asyncio.sleep(POLL / 5)


async def test_one_holder_at_a_time_and_a_cut_session_frees_it(postgres_url: str) -> None:
    first, second = PgLeaderLock(postgres_url), PgLeaderLock(postgres_url)
    try:
        assert await first.acquire() is True
        assert await first.acquire() is True  # again: still ours
        assert await second.acquire() is False
        assert await first.confirm() is True
        assert await second.confirm() is False

        await terminate(postgres_url, first.backend_pid)
        assert await first.confirm() is False  # it notices
        assert await second.acquire() is True
        assert await first.acquire() is False
    finally:
        await first.release()
        await second.release()


async def test_release_frees_it_at_once(postgres_url: str) -> None:
    first, second = PgLeaderLock(postgres_url), PgLeaderLock(postgres_url)
    try:
        assert await first.acquire()
        await first.release()
        assert await first.confirm() is False
        assert await second.acquire()
    finally:
        await second.release()


async def test_an_unreachable_server_is_a_storage_error_without_the_password(
    postgres_server: PostgresServer,
) -> None:
    url = postgres_server.url().replace(str(postgres_server.port), "1", 1)
    lock = PgLeaderLock(url)
    with pytest.raises(StorageError) as info:
        await lock.acquire()
    assert postgres_server.password not in str(info.value)
    assert "cannot take the PostgreSQL advisory lock" in str(info.value)
    assert "check that PostgreSQL is running" in str(info.value)
    assert postgres_server.password not in lock.name


def test_the_lock_follows_the_database_setting(postgres_url: str, tmp_path: Any) -> None:
    assert isinstance(open_leader_lock(postgres_url), PgLeaderLock)
    assert isinstance(open_leader_lock(tmp_path / "tikvops.db"), SoleLeader)
    assert is_postgres(postgres_url) and not is_postgres(str(tmp_path / "tikvops.db"))


async def test_three_replicas_elect_one_and_hand_over_when_its_connection_is_lost(
    postgres_url: str,
) -> None:
    log: list[str] = []
    locks = [PgLeaderLock(postgres_url) for _ in range(3)]
    elections: list[Leadership] = []
    for number, lock in enumerate(locks, start=1):

        async def promoted(n: int = number) -> None:
            log.append(f"r{n} leads")

        async def demoted(n: int = number) -> None:
            log.append(f"r{n} steps down")

        elections.append(Leadership(lock, poll=POLL, on_promoted=promoted, on_demoted=demoted))
    try:
        for election in elections:
            await election.start()
        await until(lambda: sum(e.is_leader for e in elections) == 1)
        old = next(i for i, e in enumerate(elections) if e.is_leader)
        await terminate(postgres_url, locks[old].backend_pid)
        await until(lambda: any(e.is_leader for i, e in enumerate(elections) if i != old))
        new = next(i for i, e in enumerate(elections) if e.is_leader)
        assert sum(e.is_leader for e in elections) == 1
        assert log.index(f"r{old + 1} steps down") < log.index(f"r{new + 1} leads")
        assert "lost the PostgreSQL advisory lock" in (elections[old].last_demotion or "")
    finally:
        for election in elections:
            await election.stop()
    assert [line for line in log if line.endswith("leads")] == [
        f"r{old + 1} leads",
        f"r{new + 1} leads",
    ]
