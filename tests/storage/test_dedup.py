"""`SqliteDedupRepo.seen_any`: the several IDs of one request (a Slack envelope ID and the
request key) checked and marked in one transaction."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from storage import PostgresUrl, Repositories, SqlDatabase, open_database
from tests.plugins.storage import T0

TTL = timedelta(minutes=10)


async def test_a_repeat_of_any_id_is_a_repeat_and_the_new_ones_are_marked(
    repos: Repositories,
) -> None:
    dedup = repos.dedup
    assert await dedup.seen_any(["env-1", "req-1"], now=T0, ttl=TTL) is False
    # a redelivered envelope (same envelope ID) carrying the same request
    assert await dedup.seen_any(["env-1", "req-1"], now=T0, ttl=TTL) is True
    # a new envelope for a request already handled (Slack retried with a new envelope)
    assert await dedup.seen_any(["env-2", "req-1"], now=T0, ttl=TTL) is True
    # ...and its envelope ID was marked all the same
    assert await dedup.seen("env-2", now=T0, ttl=TTL) is True
    # the single-ID form shares the same records
    assert await dedup.seen("req-1", now=T0, ttl=TTL) is True
    assert await dedup.seen_any(["env-3"], now=T0, ttl=TTL) is False


async def test_expired_ids_count_as_new_and_are_marked_again(repos: Repositories) -> None:
    dedup = repos.dedup
    assert await dedup.seen_any(["env-1", "req-1"], now=T0, ttl=TTL) is False
    later = T0 + TTL
    assert await dedup.seen_any(["env-1", "req-1"], now=later, ttl=TTL) is False
    assert await dedup.seen_any(["env-1"], now=later + TTL / 2, ttl=TTL) is True
    # one ID expired, the other fresh: still a repeat
    assert await dedup.seen("req-2", now=later, ttl=TTL) is False
    assert await dedup.seen_any(["env-old", "req-2"], now=later, ttl=TTL) is True


async def test_no_ids_and_the_same_id_twice(repos: Repositories) -> None:
    assert await repos.dedup.seen_any([], now=T0, ttl=TTL) is False
    assert await repos.dedup.seen_any(["x", "x"], now=T0, ttl=TTL) is False
    assert await repos.dedup.seen_any(["x"], now=T0, ttl=TTL) is True


async def test_concurrent_deliveries_on_two_connections_leave_exactly_one_new(
    db: SqlDatabase, db_target: Path | PostgresUrl
) -> None:
    other = await open_database(db_target)
    try:
        stores = [Repositories.on(db).dedup, Repositories.on(other).dedup]
        results = await asyncio.gather(
            *(stores[i % 2].seen_any([f"env-{i}", "req-x"], now=T0, ttl=TTL) for i in range(20))
        )
        assert results.count(False) == 1
        # every envelope ID was marked, whichever delivery won
        for i in range(20):
            assert await stores[0].seen(f"env-{i}", now=T0, ttl=TTL) is True
    finally:
        await other.close()
