"""The one factory for the aiohttp sessions we open towards the cluster (PD, TiKV status ports,
Prometheus): no proxy variables from the environment (the addresses are cluster-internal), no
cookies, idle connections kept `keepalive` seconds so a poller reuses them cycle after cycle.
Slack's session is slack_sdk's own (`bot.client`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp


@asynccontextmanager
async def open_session(
    *, keepalive: float = 60.0, connections: int = 0, per_host: int = 0
) -> AsyncIterator[aiohttp.ClientSession]:
    """An aiohttp session closed on exit. `connections` caps the open connections (0: no
    limit), `per_host` caps them per host (0: no limit)."""
    connector = aiohttp.TCPConnector(
        limit=connections, limit_per_host=per_host, keepalive_timeout=keepalive
    )
    async with aiohttp.ClientSession(
        connector=connector, trust_env=False, cookie_jar=aiohttp.DummyCookieJar()
    ) as session:
        yield session


__all__ = ["open_session"]
