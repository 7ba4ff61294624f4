"""The monitor cycle's deadline on observing the cluster.

Every PD request has a total deadline of its own (`operator_tikv.pd`), but a cycle makes
several, plus the metrics reads; `observe_within` bounds the whole observation. When it does
not finish in time the cycle goes on with an observation that says so (`pd_error`), exactly
as if PD were unreachable: a `pd_unreachable` incident opens, nothing else is concluded from
missing data, and the next cycle starts on time instead of waiting behind this one.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from operator_tikv.observation import Observation


class _Source(Protocol):
    async def observe(self, at: float) -> Observation: ...


async def observe_within(source: _Source, at: float, deadline: float | None) -> Observation:
    """`source.observe(at)`, or, past `deadline` seconds, an observation recording that PD
    (and the metrics) did not answer in time."""
    if deadline is None:
        return await source.observe(at)
    try:
        async with asyncio.timeout(deadline):
            return await source.observe(at)
    except TimeoutError:
        pd_url = getattr(source, "pd_url", None)
        return Observation(
            at=at,
            pd_url=pd_url if isinstance(pd_url, str) else "PD",
            pd_error=(
                f"the monitor's reads of PD and the store metrics did not finish within the "
                f"cycle's {deadline:g} s deadline (PD, the metrics source, or something in "
                "between is answering too slowly or not at all)."
            ),
            metrics_source=getattr(getattr(source, "metrics", None), "name", None),
        )


__all__ = ["observe_within"]
