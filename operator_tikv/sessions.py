"""The one factory for the aiohttp client sessions the product opens: towards the cluster (PD,
TiKV status ports, Prometheus) and towards Slack (`bot.client` builds its shared Web API
session here). Every session: no cookies, idle connections kept `keepalive` seconds so a poller
reuses them cycle after cycle; proxy variables from the environment only when asked (never for
the cluster, whose addresses are internal).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp


def new_session(
    *,
    keepalive: float = 60.0,
    connections: int = 0,
    per_host: int = 0,
    timeout: float | None = None,
    trust_env: bool = False,
) -> aiohttp.ClientSession:
    """An aiohttp session (must be created inside the running loop; the caller closes it).
    `connections` caps the open connections (0: no limit), `per_host` caps them per host (0: no
    limit), `timeout` is a total deadline per request (None: none, the caller sets its own)."""
    connector = aiohttp.TCPConnector(
        limit=connections, limit_per_host=per_host, keepalive_timeout=keepalive
    )
    return aiohttp.ClientSession(
        connector=connector,
        trust_env=trust_env,
        cookie_jar=aiohttp.DummyCookieJar(),
        timeout=aiohttp.ClientTimeout(total=timeout),
    )


@asynccontextmanager
async def open_session(
    *, keepalive: float = 60.0, connections: int = 0, per_host: int = 0
) -> AsyncIterator[aiohttp.ClientSession]:
    """A cluster session (see `new_session`), closed on exit."""
    async with new_session(
        keepalive=keepalive, connections=connections, per_host=per_host
    ) as session:
        yield session


__all__ = ["new_session", "open_session"]
