"""Counts first, lists on demand: how an observation learns about unhealthy regions.

Every observation reads PD's own region counts (`pd_regions_status` on the PD leader's
`/metrics`: one small request whatever the cluster's size). A `/regions/check/{state}` list,
which during a store failure holds every region with a peer on that store, is read only when
it changes what the bot says:

- the first time a category has regions (the examples in the message, and on which stores
  the down or pending peers are);
- for the down-peer list, the quorum analysis, only when it can find something: a region
  loses a majority of its voters only when at least ceil(max-replicas / 2) of its stores are
  unhealthy, so with PD's default of 3 replicas one store Disconnected or Down cannot cost any
  region its quorum, and the message says so instead of reading the list. The list is read
  again as soon as the set of unhealthy stores changes;
- again when the count has changed and the last list is older than `refresh_after` seconds.

Otherwise the last summary is kept (the count in the message is always the fresh one). A list
is read and summarised with a bounded-memory streaming parser in a worker process (the
monitor's, `lists="process"`) or thread (`operator_tikv.region_lists`). An observation waits
for a first list (or a quorum check after the unhealthy stores changed) at most
`list_budget` seconds, and for a refresh not at all: it goes on with the previous summary (or
none) while the read finishes in the background, so a monitor cycle never runs into the next.

When PD's counts cannot be read (an old or unusual PD, a `/metrics` page without the gauge),
they are read from Prometheus when it is configured (`counts_fallback`: the PD leader's
series, as PD's alert rules select it), else the lists are read, as before, and their
lengths are the counts.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from operator_tikv.errors import PDError, PDProtocolError
from operator_tikv.metrics import MetricsError
from operator_tikv.models.cluster import Members
from operator_tikv.models.config import ReplicationConfig
from operator_tikv.models.region import RegionCheckState
from operator_tikv.models.store import StoreInfo, StoreStateName
from operator_tikv.pd_metrics import parse_pd_metrics
from operator_tikv.region_checks import RegionCheck, RegionProblem
from operator_tikv.region_lists import (
    DEFAULT_SAMPLE,
    ListReader,
    ListReadError,
    ListSummary,
    PeerField,
)

__all__ = [
    "RegionCountsSource",
    "RegionReport",
    "RegionWatch",
    "RegionWatchPD",
    "quorum_possible",
]

logger = logging.getLogger(__name__)

UNHEALTHY_STATES = frozenset({StoreStateName.DISCONNECTED, StoreStateName.DOWN})

_PEERS: Mapping[RegionProblem, PeerField] = {
    RegionProblem.DOWN_PEER: PeerField.DOWN,
    RegionProblem.PENDING_PEER: PeerField.PENDING,
    RegionProblem.MISS_PEER: PeerField.NONE,
    RegionProblem.EXTRA_PEER: PeerField.NONE,
}


class RegionWatchPD(Protocol):
    """The PD reads the region watch makes (`operator_tikv.pd.PDClient` provides them)."""

    @property
    def base_url(self) -> str: ...

    async def get_metrics_text(self, base_url: str | None = None) -> bytes: ...

    async def get_members(self) -> Members: ...

    async def get_replication_config(self) -> ReplicationConfig: ...

    async def get_region_check_body(self, state: Any) -> bytes: ...


@runtime_checkable
class RegionCountsSource(Protocol):
    """A second source of PD's counts (`operator_tikv.queries.PrometheusSource`: the PD
    leader's `pd_regions_status` as Prometheus scraped it), by `pd_regions_status` type."""

    async def region_counts(self) -> dict[str, int]: ...


@dataclass(frozen=True)
class RegionReport:
    """What one observation learnt about unhealthy regions."""

    checks: Mapping[RegionProblem, RegionCheck]
    errors: Mapping[RegionProblem, str]
    counts_source: str
    counts_error: str | None = None


@dataclass(frozen=True)
class _Listed:
    summary: ListSummary
    count_at_read: int
    unhealthy: frozenset[int]
    read_at: float


@dataclass(frozen=True)
class _Reading:
    task: asyncio.Task[ListSummary]
    count: int
    unhealthy: frozenset[int]


@dataclass(frozen=True)
class _Key:
    problem: RegionProblem
    quorum: bool


class CountsUnavailable(Exception):
    """PD's region counts could not be read; the reason is the message."""


def majority_needed(max_replicas: int) -> int:
    """Unhealthy stores it takes for a region to lose its majority (half its voters or more)."""
    return max(1, math.ceil(max_replicas / 2))


def quorum_possible(unhealthy: int, max_replicas: int | None) -> bool:
    """Whether `unhealthy` unhealthy stores can cost some region its majority. Unknown
    replicas, or down peers with no unhealthy store (peers down on live stores), are checked."""
    if max_replicas is None or unhealthy == 0:
        return True
    return unhealthy >= majority_needed(max_replicas)


def _stores_word(store_ids: Sequence[int]) -> str:
    names = ", ".join(f"store {s}" for s in store_ids)
    return (
        f"{len(store_ids)} unhealthy store ({names})"
        if len(store_ids) == 1
        else (f"{len(store_ids)} unhealthy stores ({names})")
    )


class RegionWatch:
    """Keep one per monitor (it caches list summaries between observations)."""

    def __init__(
        self,
        *,
        list_budget: float | None = 1.0,
        refresh_after: float = 60.0,
        replicas_ttl: float = 300.0,
        sample: int = DEFAULT_SAMPLE,
        lists: Literal["process", "thread"] = "thread",
        counts_fallback: RegionCountsSource | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.list_budget = list_budget
        self.refresh_after = refresh_after
        self.replicas_ttl = replicas_ttl
        self.sample = sample
        self.reader = ListReader(lists)
        self.counts_fallback = counts_fallback
        self._monotonic = monotonic
        self._listed: dict[_Key, _Listed] = {}
        self._reading: dict[_Key, _Reading] = {}
        self._errors: dict[_Key, str] = {}
        self._replicas: tuple[int | None, float] | None = None
        #: lists read so far, by category (for tests and benchmarks)
        self.lists_read: dict[RegionProblem, int] = {p: 0 for p in RegionProblem}

    # ------------------------------------------------------------------ counts

    async def read_counts(self, pd: RegionWatchPD) -> tuple[dict[RegionProblem, int], str]:
        """PD's `pd_regions_status` counts, from the PD leader. Raises CountsUnavailable."""
        try:
            page = parse_pd_metrics(await pd.get_metrics_text())
            source = "PD's pd_regions_status"
            if page.is_leader is False:
                members = await pd.get_members()
                leader = members.leader
                if leader is None or not leader.client_urls:
                    raise CountsUnavailable("PD has no leader to read pd_regions_status from")
                url = leader.client_urls[0]
                page = parse_pd_metrics(await pd.get_metrics_text(url))
                source = f"PD leader {leader.name or url}'s pd_regions_status"
        except PDError as exc:
            raise CountsUnavailable(f"PD's /metrics could not be read: {exc}") from exc
        except ValueError as exc:
            raise CountsUnavailable(f"PD's /metrics is malformed: {exc}") from exc
        missing = [p.metric_type for p in RegionProblem if p.metric_type not in page.region_counts]
        if missing:
            raise CountsUnavailable(
                "PD's /metrics has no pd_regions_status for " + ", ".join(missing)
            )
        return {p: page.region_counts[p.metric_type] for p in RegionProblem}, source

    async def _fallback_counts(self, reason: str) -> dict[RegionProblem, int] | str:
        """The counts from the second source, or why there are none (PD's reason first)."""
        if self.counts_fallback is None:
            return reason
        try:
            page = await self.counts_fallback.region_counts()
        except MetricsError as exc:
            return f"{reason}; Prometheus: {exc}"
        missing = [p.metric_type for p in RegionProblem if p.metric_type not in page]
        if missing:
            return f"{reason}; Prometheus has no pd_regions_status for " + ", ".join(missing)
        return {p: page[p.metric_type] for p in RegionProblem}

    async def _max_replicas(self, pd: RegionWatchPD) -> int | None:
        now = self._monotonic()
        if self._replicas is not None and now - self._replicas[1] < self.replicas_ttl:
            return self._replicas[0]
        try:
            replicas: int | None = (await pd.get_replication_config()).max_replicas
        except PDError as exc:
            logger.warning("max-replicas unknown (%s): regions' quorum is checked anyway", exc)
            replicas = None
        self._replicas = (replicas, now)
        return replicas

    # ------------------------------------------------------------------ lists

    def _start(
        self, pd: RegionWatchPD, key: _Key, count: int, unhealthy: frozenset[int]
    ) -> asyncio.Task[ListSummary]:
        reading = self._reading.get(key)
        if reading is not None:
            return reading.task
        self.lists_read[key.problem] += 1
        task = asyncio.get_running_loop().create_task(
            self.reader.read(
                pd,
                RegionCheckState(key.problem.value).value,
                peers=_PEERS[key.problem],
                quorum=key.quorum,
                sample=self.sample,
            ),
            name=f"read region list {key.problem.value}",
        )
        self._reading[key] = _Reading(task, count, unhealthy)
        return task

    def _must_wait(self, key: _Key, unhealthy: frozenset[int]) -> bool:
        listed = self._listed.get(key)
        return listed is None or (key.quorum and listed.unhealthy != unhealthy)

    async def _wait(self, tasks: Mapping[_Key, asyncio.Task[ListSummary]]) -> None:
        if tasks:
            pending = set(tasks.values())
            if self.list_budget is None:
                await asyncio.wait(pending)
            else:
                await asyncio.wait(pending, timeout=self.list_budget)
        self._harvest()

    def _harvest(self) -> None:
        """Move every finished read into the cache (or its error into `_errors`)."""
        for key, reading in list(self._reading.items()):
            task = reading.task
            if not task.done():
                continue
            del self._reading[key]
            self._errors.pop(key, None)
            if task.cancelled():
                self._errors[key] = "the read was cancelled"
                continue
            exc = task.exception()
            if exc is None:
                self._listed[key] = _Listed(
                    task.result(), reading.count, reading.unhealthy, self._monotonic()
                )
            elif isinstance(exc, PDError | ListReadError):
                self._errors[key] = str(exc)
            elif isinstance(exc, ValueError):
                self._errors[key] = str(
                    PDProtocolError(
                        f"unexpected /regions/check/{key.problem.value} body: {exc}",
                        method="GET",
                        path=f"/pd/api/v1/regions/check/{key.problem.value}",
                        from_pd=False,
                    )
                )
            else:
                raise exc

    def _stale(self, key: _Key, count: int, unhealthy: frozenset[int]) -> bool:
        listed = self._listed.get(key)
        if listed is None:
            return True
        if key.quorum and listed.unhealthy != unhealthy:
            return True
        age = self._monotonic() - listed.read_at
        return listed.count_at_read != count and age >= self.refresh_after

    def _forget(self, problem: RegionProblem) -> None:
        for key in [k for k in self._listed if k.problem is problem]:
            del self._listed[key]
        for key in [k for k in self._errors if k.problem is problem]:
            del self._errors[key]

    # ------------------------------------------------------------------ one observation

    async def check(self, pd: RegionWatchPD, stores: Sequence[StoreInfo]) -> RegionReport:
        """Counts for every category, with list summaries where they are needed."""
        unhealthy_ids = sorted(s.id for s in stores if s.state_name in UNHEALTHY_STATES)
        unhealthy = frozenset(unhealthy_ids)
        if unhealthy:  # lists will likely be needed soon: have the worker ready
            self.reader.warm()
        self._harvest()
        try:
            counts, source = await self.read_counts(pd)
        except CountsUnavailable as exc:
            fallback = await self._fallback_counts(str(exc))
            if isinstance(fallback, str):
                return await self._from_lists(pd, unhealthy, fallback)
            counts, source = fallback, "Prometheus's pd_regions_status (PD leader)"

        replicas: int | None = None
        if counts[RegionProblem.DOWN_PEER] > 0:
            replicas = await self._max_replicas(pd)
        quorum = quorum_possible(len(unhealthy_ids), replicas)
        keys: dict[RegionProblem, _Key] = {}
        started: dict[_Key, asyncio.Task[ListSummary]] = {}
        for problem, count in counts.items():
            if count == 0:
                self._forget(problem)
                continue
            key = _Key(problem, quorum and problem is RegionProblem.DOWN_PEER)
            keys[problem] = key
            if self._stale(key, count, unhealthy) or key in self._reading:
                started[key] = self._start(pd, key, count, unhealthy)
        # Wait (up to the budget) only for what the message lacks or what may have become
        # critical: a first list, or a quorum check after the unhealthy stores changed. A
        # refresh of examples for a changed count goes on in the background.
        await self._wait(
            {
                key: task
                for key, task in started.items()
                if self.list_budget is None or self._must_wait(key, unhealthy)
            }
        )

        checks: dict[RegionProblem, RegionCheck] = {}
        for problem, count in counts.items():
            wanted = keys.get(problem)
            if wanted is None:
                checks[problem] = RegionCheck(problem=problem, count=0)
                continue
            error = self._errors.get(wanted)
            checks[problem] = self._check(wanted, count, error, unhealthy_ids, replicas)
        return RegionReport(checks=checks, errors={}, counts_source=source)

    def _check(
        self,
        key: _Key,
        count: int,
        error: str | None,
        unhealthy_ids: Sequence[int],
        replicas: int | None,
    ) -> RegionCheck:
        listed = self._listed.get(key)
        notes: list[str] = []
        if key.problem is RegionProblem.DOWN_PEER and not key.quorum and replicas is not None:
            notes.append(
                f"With max-replicas {replicas}, {_stores_word(unhealthy_ids)} cannot cost any "
                f"region a majority of its voters (that takes {majority_needed(replicas)} "
                "unhealthy stores), so no region has lost its quorum."
            )
        if listed is None:
            if error is not None:
                notes.append(f"Examples could not be listed: {error}")
            else:
                notes.append("Examples are still being listed.")
            return RegionCheck(problem=key.problem, count=count, note=" ".join(notes))
        if error is not None:
            notes.append(f"The list could not be read again: {error}")
        summary = listed.summary
        return RegionCheck(
            problem=key.problem,
            count=count,
            region_ids=summary.sample_ids,
            peer_stores=summary.peer_stores,
            quorum_lost=summary.quorum_lost_ids,
            quorum_lost_count=summary.quorum_lost_count,
            listed_count=summary.count,
            listed_age=max(self._monotonic() - listed.read_at, 0.0),
            note=" ".join(notes),
        )

    async def _from_lists(
        self, pd: RegionWatchPD, unhealthy: frozenset[int], reason: str
    ) -> RegionReport:
        """No counts: every list is read, and its length is the count. A read that does not
        finish within the budget goes on in the background; until then the last finished
        read counts (the list is at most one read old), and before any, the category is
        unknown (never "healthy")."""
        keys = {p: _Key(p, p is RegionProblem.DOWN_PEER) for p in RegionProblem}
        started = {key: self._start(pd, key, -1, unhealthy) for key in keys.values()}
        await self._wait(started)
        checks: dict[RegionProblem, RegionCheck] = {}
        errors: dict[RegionProblem, str] = {}
        for problem, key in keys.items():
            listed, error = self._listed.get(key), self._errors.get(key)
            if error is not None:
                errors[problem] = error
            elif listed is not None:
                summary = listed.summary
                checks[problem] = RegionCheck(
                    problem=problem,
                    count=summary.count,
                    region_ids=summary.sample_ids,
                    peer_stores=summary.peer_stores,
                    quorum_lost=summary.quorum_lost_ids,
                    quorum_lost_count=summary.quorum_lost_count,
                    listed_count=summary.count,
                    listed_age=max(self._monotonic() - listed.read_at, 0.0),
                )
            else:
                errors[problem] = (
                    f"PD's region counts are unavailable ({reason}) and the "
                    f"/regions/check/{problem.value} list is still being read"
                )
        return RegionReport(
            checks=checks, errors=errors, counts_source="PD's region lists", counts_error=reason
        )

    async def wait_reads(self) -> None:
        """Wait until every list read in flight has finished (their results are used by the
        next observation)."""
        tasks = [reading.task for reading in self._reading.values()]
        await asyncio.gather(*tasks, return_exceptions=True)

    async def close(self) -> None:
        """Cancel list reads still running."""
        tasks = [reading.task for reading in self._reading.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._reading.clear()
        await self.reader.close()
