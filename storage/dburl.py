"""Where the database is: a SQLite file path, or a PostgreSQL URL (`postgresql://...`).

`PostgresUrl` keeps the whole URL for connecting (`.dsn`) but shows itself without the
password (`str()`, `repr()`, `.safe`), so logging or printing the setting never leaks it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from pydantic_core import core_schema

SCHEMES = ("postgresql", "postgres")


def is_postgres_url(value: object) -> bool:
    return (
        isinstance(value, str) and value.split("://", 1)[0].lower() in SCHEMES and ("://" in value)
    )


class PostgresUrl:
    """A PostgreSQL connection URL whose password never reaches a log or a message."""

    __slots__ = ("_dsn",)

    def __init__(self, dsn: str) -> None:
        if not is_postgres_url(dsn):
            raise ValueError(
                "a PostgreSQL database must be given as postgresql://user:password@host:port/dbname"
            )
        parts = urlsplit(dsn)
        if not parts.hostname:
            raise ValueError(
                f"the PostgreSQL URL {_masked(dsn)} names no host; write it as "
                "postgresql://user:password@host:port/dbname"
            )
        self._dsn = dsn

    @property
    def dsn(self) -> str:
        """The full URL, password included: only for connecting."""
        return self._dsn

    @property
    def password(self) -> str | None:
        """The password alone (to scrub it from driver messages), from the user part or a
        `password=` query parameter."""
        parts = urlsplit(self._dsn)
        if parts.password is not None:
            return unquote(parts.password)
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key == "password":
                return value
        return None

    @property
    def safe(self) -> str:
        """The URL with the password replaced by `***`."""
        return _masked(self._dsn)

    @property
    def where(self) -> str:
        """`host:port/dbname`, for messages."""
        parts = urlsplit(self._dsn)
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.hostname}{port}{parts.path or '/'}"

    def __str__(self) -> str:
        return self.safe

    def __repr__(self) -> str:
        return f"PostgresUrl({self.safe!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PostgresUrl) and other._dsn == self._dsn

    def __hash__(self) -> int:
        return hash(self._dsn)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            cls._validate,
            serialization=core_schema.plain_serializer_function_ser_schema(str, when_used="json"),
        )

    @classmethod
    def _validate(cls, value: object) -> PostgresUrl:
        if isinstance(value, PostgresUrl):
            return value
        if not isinstance(value, str) or not is_postgres_url(value):
            raise ValueError("not a postgresql:// URL")
        return cls(value)


def _masked(dsn: str) -> str:
    parts = urlsplit(dsn)
    if parts.password is not None:
        user = parts.username or ""
        host = parts.netloc.rsplit("@", 1)[1]
        parts = parts._replace(netloc=f"{user}:***@{host}")
    if "password" in parts.query:
        query = [
            (key, "***" if key == "password" else value)
            for key, value in parse_qsl(parts.query, keep_blank_values=True)
        ]
        parts = parts._replace(query=urlencode(query, safe="*"))
    return urlunsplit(parts)


DatabaseTarget = Path | PostgresUrl


def database_target(value: str | Path | PostgresUrl) -> DatabaseTarget:
    """A path stays a path (SQLite); a `postgresql://` string becomes a `PostgresUrl`."""
    if isinstance(value, PostgresUrl | Path):
        return value
    return PostgresUrl(value) if is_postgres_url(value) else Path(value)


__all__ = ["DatabaseTarget", "PostgresUrl", "database_target", "is_postgres_url"]
