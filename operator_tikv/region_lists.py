"""Summaries of PD's unhealthy-region lists, parsed with bounded memory off the event loop.

A `/regions/check/{state}` body lists every affected region in full: with a store down that
is every region with a peer on it, 80 MB of JSON at 120,000 regions. The monitor needs only a
summary of it: how many regions, a few example ids (the smallest), on which stores the down or
pending peers are, and (only when it can happen) which regions lost a majority of their voters.

`summarise_region_list()` walks the body with ijson's C parser one region at a time, keeping
only that summary (memory bounded by `sample` and the number of stores, not the list), and is
meant to run in a worker thread: `read_region_list()` does that. The parser hands control
back to Python between regions, so the event loop's thread gets the GIL at every switch
interval (5 ms) instead of waiting seconds for one `json.loads`.
"""

from __future__ import annotations

import asyncio
import heapq
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import ijson

__all__ = [
    "ListSummary",
    "PeerField",
    "RegionListPD",
    "read_region_list",
    "summarise_region_list",
]

#: How many example ids a summary keeps (the smallest ones, ascending).
DEFAULT_SAMPLE = 20


class PeerField(StrEnum):
    """Which peers of each listed region to count per store."""

    DOWN = "down_peers"
    PENDING = "pending_peers"
    NONE = ""


class RegionListPD(Protocol):
    """The PD read a list summary needs (`operator_tikv.pd.PDClient` provides it)."""

    async def get_region_check_body(self, state: Any) -> bytes: ...


@dataclass(frozen=True)
class ListSummary:
    """One region list, reduced. `quorum_checked` says whether voters were read at all."""

    count: int
    sample_ids: tuple[int, ...]
    peer_stores: Mapping[int, int] = field(default_factory=dict)
    quorum_checked: bool = False
    quorum_lost_count: int = 0
    quorum_lost_ids: tuple[int, ...] = ()


class _Smallest:
    """The `size` smallest ints seen (a bounded max-heap of negated values)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._heap: list[int] = []

    def add(self, value: int) -> None:
        if len(self._heap) < self.size:
            heapq.heappush(self._heap, -value)
        elif value < -self._heap[0]:
            heapq.heapreplace(self._heap, -value)

    def result(self) -> tuple[int, ...]:
        return tuple(sorted(-v for v in self._heap))


def _summarise(regions: Iterable[Any], peers: PeerField, quorum: bool, sample: int) -> ListSummary:
    ids = _Smallest(sample)
    lost_ids = _Smallest(sample)
    peer_stores: dict[int, int] = {}
    count = lost = 0
    count_peers = peers is not PeerField.NONE
    nested = peers is PeerField.DOWN
    key = peers.value
    for region in regions:
        region_id = region["id"]
        if type(region_id) is not int:
            raise ValueError(f"a listed region has id {region_id!r}, not an integer")
        count += 1
        ids.add(region_id)
        if count_peers:
            listed = {(p["peer"] if nested else p)["store_id"] for p in region.get(key) or ()}
            for store_id in listed:
                peer_stores[store_id] = peer_stores.get(store_id, 0) + 1
        if quorum:
            down = {p["peer"]["store_id"] for p in region.get("down_peers") or ()}
            voters = {
                p.get("store_id", 0)
                for p in region.get("peers") or ()
                if not p.get("is_learner") and p.get("role_name") != "Learner"
            }
            if voters and 2 * len(down & voters) >= len(voters):
                lost += 1
                lost_ids.add(region_id)
    if any(type(store_id) is not int for store_id in peer_stores):
        raise ValueError("a listed peer has a store_id that is not an integer")
    return ListSummary(
        count=count,
        sample_ids=ids.result(),
        peer_stores=peer_stores,
        quorum_checked=quorum,
        quorum_lost_count=lost,
        quorum_lost_ids=lost_ids.result(),
    )


def summarise_region_list(
    body: bytes,
    *,
    peers: PeerField = PeerField.NONE,
    quorum: bool = False,
    sample: int = DEFAULT_SAMPLE,
) -> ListSummary:
    """Summarise a `RegionsInfo` body (`{"count": N, "regions": [...]}`) without building it.

    `peers` names the peer list counted per store; with `quorum` the voters of each region
    are read and regions whose down voters are at least half of their voters are counted
    (only meaningful for the down-peer list). Blocking and CPU-bound: run it in a thread.
    Raises ValueError when the body is not JSON or a field it reads has the wrong type.
    """
    if sample < 1:
        raise ValueError("sample must be >= 1")
    regions = ijson.items(io.BytesIO(body), "regions.item", buf_size=256 * 1024, use_float=True)
    try:
        return _summarise(regions, peers, quorum, sample)
    except ijson.JSONError as exc:
        raise ValueError(f"not a region list: {exc}") from exc
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"a listed region lacks a field or has the wrong type: {exc!r}") from exc


async def read_region_list(
    pd: RegionListPD,
    state: Any,
    *,
    peers: PeerField = PeerField.NONE,
    quorum: bool = False,
    sample: int = DEFAULT_SAMPLE,
) -> ListSummary:
    """Read one `/regions/check/{state}` list and summarise it in a worker thread.

    Raises what the PD client raises (`PDError`), and ValueError for a body that is not a
    region list (the caller turns it into a protocol error with the path).
    """
    body = await pd.get_region_check_body(state)
    try:
        return await asyncio.to_thread(
            summarise_region_list, body, peers=peers, quorum=quorum, sample=sample
        )
    finally:
        del body
