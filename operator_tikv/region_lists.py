"""Summaries of PD's unhealthy-region lists, parsed with bounded memory off the event loop.

A `/regions/check/{state}` body lists every affected region in full: with a store down that
is every region with a peer on it, 80 MB of JSON at 120,000 regions. The monitor needs only a
summary of it: how many regions, a few example ids (the smallest), on which stores the down or
pending peers are, and (only when it can happen) which regions lost a majority of their voters.

`summarise_region_list()` walks a body with ijson's C parser one region at a time, keeping
only that summary (memory bounded by `sample` and the number of stores, not the list).

Where it runs (`ListReader`):

- `"process"` (the monitor's default): one worker process (spawned on first use, so it shares
  nothing with the bot) fetches the list itself over plain HTTP and parses it as it streams
  in, 64 KB at a time, within a total deadline and a size cap (`_BoundedStream`: a PD that
  trickles or answers without end cannot hold the worker). An `https://` PD is read in thread
  mode instead: the PD client holds the cluster's TLS context (client certificate, CA).
  Neither the body nor the parsing touches the bot's process: no GIL
  held, no 80 MB body in its memory; only the summary comes back. The worker makes one
  attempt per read (the next observation reads again); its failures come back as
  `ListReadError` with PD's status and message.
- `"thread"`: the bot's PD client reads the body and a worker thread parses it, 16 KB at a
  time (the C parser keeps the GIL for a whole buffer: 256 KB buffers stalled the loop for up
  to 0.8 s here, 16 KB for about 60 ms at worst), one list at a time. Used where PD is an
  in-process test double (respx), and as the fallback when no process can be started.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import heapq
import io
import logging
import multiprocessing
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, Protocol

import ijson

from operator_tikv.json_depth import DepthLimitedStream

__all__ = [
    "ListReadError",
    "ListReader",
    "ListSummary",
    "PeerField",
    "RegionListPD",
    "summarise_region_list",
]

logger = logging.getLogger(__name__)

#: How many example ids a summary keeps (the smallest ones, ascending).
DEFAULT_SAMPLE = 20
#: Bytes the C parser handles per call while it holds the GIL (thread mode).
THREAD_BUFFER = 16 * 1024
#: Bytes read from the socket per parser call in the worker process.
PROCESS_BUFFER = 64 * 1024
#: The largest list the worker reads (PD's client caps region lists the same way).
MAX_LIST_BYTES = 256 * 1024 * 1024


class _BoundedStream:
    """A response read within a total deadline and a size cap (the socket timeout alone bounds
    each wait, so a peer sending a byte a second would never trip it)."""

    def __init__(self, raw: Any, url: str, deadline: float, limit: int) -> None:
        self._raw = raw
        self._url = url
        self._deadline = deadline
        self._limit = limit
        self._read = 0

    def read(self, size: int = -1) -> bytes:
        if time.monotonic() > self._deadline:
            raise ListReadError(f"{self._url} was not read whole within its deadline")
        chunk: bytes = self._raw.read(size)
        self._read += len(chunk)
        if self._read > self._limit:
            raise ListReadError(f"{self._url} is larger than {self._limit // (1024 * 1024)} MiB")
        return chunk


class ListReadError(Exception):
    """The worker process could not read a list (PD's status and message, or the network
    error). Picklable, so it crosses the process boundary."""


class PeerField(StrEnum):
    """Which peers of each listed region to count per store."""

    DOWN = "down_peers"
    PENDING = "pending_peers"
    NONE = ""


class RegionListPD(Protocol):
    """The PD read a list summary needs (`operator_tikv.pd.PDClient` provides it)."""

    @property
    def base_url(self) -> str: ...

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
    buf_size: int = THREAD_BUFFER,
) -> ListSummary:
    """Summarise a `RegionsInfo` body (`{"count": N, "regions": [...]}`) without building it.

    `peers` names the peer list counted per store; with `quorum` the voters of each region
    are read and regions whose down voters are at least half of their voters are counted
    (only meaningful for the down-peer list). Blocking and CPU-bound: run it in a thread.
    Raises ValueError when the body is not JSON, nests deeper than any PD answer (see
    `operator_tikv.json_depth`) or a field it reads has the wrong type.
    """
    return _summarise_stream(io.BytesIO(body), peers, quorum, sample, buf_size)


def _summarise_stream(
    stream: Any, peers: PeerField, quorum: bool, sample: int, buf_size: int
) -> ListSummary:
    if sample < 1:
        raise ValueError("sample must be >= 1")
    limited = DepthLimitedStream(stream)
    regions = ijson.items(limited, "regions.item", buf_size=buf_size, use_float=True)
    try:
        return _summarise(regions, peers, quorum, sample)
    except ijson.JSONError as exc:
        raise ValueError(f"not a region list: {exc}") from exc
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"a listed region lacks a field or has the wrong type: {exc!r}") from exc


def fetch_and_summarise(
    url: str, peers: PeerField, quorum: bool, sample: int, timeout: float
) -> ListSummary:
    """Worker-process side: GET `url` and summarise the list as it streams in.

    `timeout` bounds the whole read, not only each wait for data. Raises ListReadError (an
    HTTP error status, a network failure, too slow, too large) or ValueError (a body that is
    not a region list)."""
    if not url.startswith(("http://", "https://")):
        raise ListReadError(f"not an HTTP URL: {url!r}")
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
    try:
        deadline = time.monotonic() + timeout
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            stream = _BoundedStream(response, url, deadline, MAX_LIST_BYTES)
            return _summarise_stream(stream, peers, quorum, sample, PROCESS_BUFFER)
    except urllib.error.HTTPError as exc:
        body = exc.read(500).decode("utf-8", errors="replace")
        raise ListReadError(f"PD answered {exc.code} to GET {url}: {body}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise ListReadError(f"could not read {url}: {exc}") from None


class ListReader:
    """Reads and summarises lists in a worker process or a worker thread (see the module
    docstring). Keep one per monitor; `close()` it on shutdown."""

    def __init__(
        self, mode: Literal["process", "thread"] = "process", *, timeout: float = 30.0
    ) -> None:
        self.mode: Literal["process", "thread"] = mode
        self.timeout = timeout
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._one_thread: asyncio.Semaphore | None = None

    def _executor(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._pool is None:
            self._pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn")
            )
        return self._pool

    def warm(self) -> None:
        """Start the worker process now, in the background, so that the first list read of an
        incident does not pay for an interpreter's start-up (process mode only)."""
        if self.mode != "process" or self._pool is not None:
            return
        try:
            future = self._executor().submit(int)
        except (concurrent.futures.process.BrokenProcessPool, OSError) as exc:
            logger.warning("the list worker process could not start (%s)", exc)
            return
        future.add_done_callback(lambda done: done.exception())  # retrieved: never logged

    async def read(
        self,
        pd: RegionListPD,
        state: str,
        *,
        peers: PeerField = PeerField.NONE,
        quorum: bool = False,
        sample: int = DEFAULT_SAMPLE,
    ) -> ListSummary:
        """One `/regions/check/{state}` list, summarised. Raises PDError (thread mode),
        ListReadError (process mode) or ValueError (not a region list)."""
        if self.mode == "process" and not pd.base_url.startswith("https://"):
            url = f"{pd.base_url}/pd/api/v1/regions/check/{state}"
            loop = asyncio.get_running_loop()
            try:
                return await loop.run_in_executor(
                    self._executor(), fetch_and_summarise, url, peers, quorum, sample, self.timeout
                )
            except (concurrent.futures.process.BrokenProcessPool, OSError) as exc:
                logger.warning("the list worker process failed (%s); parsing in a thread", exc)
                self.mode = "thread"
                await self.close()
        if self._one_thread is None:
            self._one_thread = asyncio.Semaphore(1)
        async with self._one_thread:
            body = await pd.get_region_check_body(state)
            return await asyncio.to_thread(
                summarise_region_list, body, peers=peers, quorum=quorum, sample=sample
            )

    async def close(self) -> None:
        """Stop the worker process (a read still running is abandoned, not waited for)."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        processes = list(getattr(pool, "_processes", {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.terminate()
        for process in processes:
            await asyncio.to_thread(process.join, 5)
