"""The PostgreSQL test fixture itself: a real server, an empty database per test, and the
server stays up across tests of the session."""

from __future__ import annotations

import psycopg

from tests.plugins.postgres import PostgresServer


def test_each_test_gets_an_empty_database_on_a_real_server(postgres_url: str) -> None:
    with psycopg.connect(postgres_url) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
        version = conn.execute("SHOW server_version_num").fetchone()
    assert tables == (0,)
    assert version is not None and int(version[0]) >= 130000


def test_the_server_refuses_a_wrong_password(postgres_server: PostgresServer) -> None:
    url = postgres_server.url().replace(postgres_server.password, "wrong")
    try:
        psycopg.connect(url, connect_timeout=5).close()
    except psycopg.OperationalError as exc:
        assert "password authentication failed" in str(exc)
    else:
        raise AssertionError("a wrong password was accepted")
