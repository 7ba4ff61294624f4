"""Run claims on a real PostgreSQL: one holder per proposal across replicas (and within one),
freed when the holder's session ends or it lets go, a holder that lost its session knows it
(and its old claim stays lost after a reconnect), keys apart from every other lock of tikvops;
on SQLite the claims of the one process."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from engine.claims import LocalClaims
from engine.errors import StorageError
from storage.claims import CLAIM_SPACE, PgRunClaims, claim_key, open_run_claims
from storage.leader import LEADER_KEY
from storage.pg import WRITE_LOCK
from tests.plugins.postgres import PostgresServer


async def cut(url: str, pid: int | None) -> None:
    assert pid is not None
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as admin:
        await admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


async def test_one_holder_per_run_across_replicas_and_within_one(postgres_url: str) -> None:
    runner, reconciler = PgRunClaims(postgres_url), PgRunClaims(postgres_url)
    try:
        claim = await runner.claim("P-1")
        assert claim is not None
        assert await runner.claim("P-1") is None  # a second run in the same process
        assert await reconciler.claim("P-1") is None  # another replica
        other = await reconciler.claim("P-2")  # other runs are independent
        assert other is not None
        assert await claim.held() is True

        await claim.release()
        assert await claim.held() is False
        await claim.release()  # again: nothing happens
        taken = await reconciler.claim("P-1")
        assert taken is not None and await taken.held()
        assert await runner.claim("P-1") is None
    finally:
        await runner.close()
        await reconciler.close()


async def test_a_holder_whose_session_ends_loses_its_claims_and_knows_it(
    postgres_url: str,
) -> None:
    runner, reconciler = PgRunClaims(postgres_url), PgRunClaims(postgres_url)
    try:
        claim = await runner.claim("P-7")
        assert claim is not None
        await cut(postgres_url, runner.backend_pid)  # its replica died, or lost the database
        taken = await reconciler.claim("P-7")
        assert taken is not None
        assert await claim.held() is False
        # A new session of the same replica does not bring the old claim back.
        again = await runner.claim("P-8")
        assert again is not None
        assert await claim.held() is False
        assert await runner.claim("P-7") is None
    finally:
        await runner.close()
        await reconciler.close()


async def test_closing_lets_every_claim_go(postgres_url: str) -> None:
    runner, reconciler = PgRunClaims(postgres_url), PgRunClaims(postgres_url)
    try:
        assert await runner.claim("P-1") is not None
        assert await runner.claim("incident-fix-a") is not None
        await runner.close()
        assert await reconciler.claim("P-1") is not None
        assert await reconciler.claim("incident-fix-a") is not None
    finally:
        await reconciler.close()


def test_claim_keys_are_apart_from_the_other_locks() -> None:
    assert claim_key("P-7") == (CLAIM_SPACE << 32) | 7
    assert claim_key("P-7") != claim_key("P-8")
    assert claim_key("x") >> 32 == CLAIM_SPACE
    others = {WRITE_LOCK >> 32, LEADER_KEY >> 32, 0x7431_6B76}
    assert CLAIM_SPACE not in others
    assert claim_key("P-999999999") < 2**63  # a PostgreSQL bigint


async def test_an_unreachable_server_is_a_storage_error_without_the_password(
    postgres_server: PostgresServer,
) -> None:
    url = postgres_server.url().replace(str(postgres_server.port), "1", 1)
    claims = PgRunClaims(url)
    with pytest.raises(StorageError) as info:
        await claims.claim("P-1")
    assert postgres_server.password not in str(info.value)
    assert "check that PostgreSQL is running" in str(info.value)


async def test_the_claims_follow_the_database_setting(postgres_url: str, tmp_path: Path) -> None:
    assert isinstance(open_run_claims(postgres_url), PgRunClaims)
    local = open_run_claims(tmp_path / "tikvops.db")
    assert isinstance(local, LocalClaims)
    claim = await local.claim("P-1")
    assert claim is not None
    assert await local.claim("P-1") is None
    await claim.release()
    assert await local.claim("P-1") is not None
