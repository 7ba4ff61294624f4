"""PDClient: the async PD HTTP client. Typed models in, typed models out, our errors on failure.

- Runs over an injected ``httpx.AsyncClient`` (the transport is the test seam: respx, or the
  simulator's handler). :func:`open_pd_client` builds one with sane timeouts and closes it.
- Only GETs are retried, with exponential backoff, on transport errors and on 5xx answers that
  are not a recognised PD refusal. Writes (POST/DELETE) are sent exactly once.
- Every call has a **total deadline** (``deadline`` seconds, retries and back-off included;
  region lists get ``large_deadline``), not only the transport's per-read idle timeout: a PD
  (or a proxy) that sends its answer one byte at a time fails the call with
  :class:`~operator_tikv.errors.PDUnavailableError` when the deadline passes.
- Every answer's body is **capped per endpoint** (:class:`BodyLimits`: generous for region
  lists, small for everything else) and read in chunks; a larger one fails the call with
  :class:`~operator_tikv.errors.PDResponseTooLargeError` without being buffered, and is not
  retried.
- ``list_stores()`` refuses an answer that cannot be true of a bootstrapped cluster (no stores,
  or a ``count`` that does not match the list) with
  :class:`~operator_tikv.errors.PDUntrustworthyError`.
- Every response goes through a model; one that does not validate raises
  :class:`~operator_tikv.errors.PDProtocolError` with the cause chained. Bodies are parsed by
  content, never by Content-Type (region endpoints answer JSON as application/octet-stream).
- ``stats`` counts every HTTP attempt by ``(method, path template, outcome)``, where outcome is
  the status code (``"200"``) or the transport error's name (``"ConnectError"``), so callers can
  show what a monitor cycle costs. ``on_request(method, template, status_or_error, seconds)``
  is called after every attempt (for Prometheus metrics later).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import httpx
from pydantic import TypeAdapter, ValidationError

from operator_tikv.errors import (
    PDNotFoundError,
    PDProtocolError,
    PDResponseTooLargeError,
    PDUnavailableError,
    PDUntrustworthyError,
    RegionNotFoundError,
    SchedulerNotFoundError,
    classify,
    match_rule,
    parse_error_body,
    truncate,
)
from operator_tikv.limits import MIB, BodyTooLarge, human_size, read_capped
from operator_tikv.members import PDMembers, split_members
from operator_tikv.models import (
    API_PREFIX,
    EVICT_LEADER_SCHEDULER,
    ClusterInfo,
    ClusterStatus,
    EvictLeaderConfig,
    HotspotInfo,
    MemberHealth,
    Members,
    OperatorInfo,
    OperatorKindFilter,
    PDStatus,
    PDWrite,
    Region,
    RegionCheckState,
    RegionsInfo,
    RegionStats,
    ReplicationConfig,
    ScheduleConfig,
    SplitPolicy,
    StoreInfo,
    StoreRegionType,
    StoresInfo,
    StoreState,
    VersionInfo,
)
from operator_tikv.models.region import RegionsBrief, parse_regions_brief
from operator_tikv.transport import TLSConnectError, TLSDisconnectError
from operator_tikv.urls import has_credentials, redact_url

__all__ = [
    "DEADLINE_OUTCOME",
    "DEFAULT_DEADLINE",
    "DEFAULT_TIMEOUT",
    "TOO_LARGE_OUTCOME",
    "BodyLimits",
    "PDClient",
    "RequestHook",
    "open_pd_client",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: ``on_request(method, path_template, status_code_or_error_name, seconds)``.
RequestHook = Callable[[str, str, int | str, float], None]
Sleep = Callable[[float], Awaitable[None]]
Params = tuple[tuple[str, str], ...]

#: Timeouts for the client :func:`open_pd_client` builds: PD answers reads in milliseconds,
#: but a large ``/regions/store/{id}`` can take seconds.
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=3.0)

#: Seconds one call may take in total (every attempt, back-off and the whole body included).
DEFAULT_DEADLINE = 10.0
#: Region lists may take this many times the deadline (they can be long during a failure).
LARGE_DEADLINE_FACTOR = 4.0

#: Outcome recorded for an attempt cut short by the call's total deadline.
DEADLINE_OUTCOME = "DeadlineTimeout"
#: Outcome recorded for an answer abandoned because its body passed the endpoint's cap.
TOO_LARGE_OUTCOME = "TooLarge"


@dataclass(frozen=True, slots=True)
class BodyLimits:
    """The largest body (bytes) accepted per kind of endpoint.

    ``region_lists``: ``/regions/check/*``, ``/regions/store/*`` (every region of a failed store
    can be listed: about 0.5 kB a region, so 256 MiB is ~500,000 regions). ``lists``:
    ``/stores``, ``/operators``, ``/hotspot/*``, ``/stats/region`` (grow with stores and
    running operators). ``other``: one object, a config, a message."""

    region_lists: int = 256 * MIB
    lists: int = 16 * MIB
    other: int = 1 * MIB

    def for_template(self, template: str) -> int:
        if _is_region_list(template):
            return self.region_lists
        tail = template.removeprefix(API_PREFIX)
        if tail.startswith(("/stores", "/operators", "/hotspot/", "/stats/region")):
            return self.lists
        return self.other


def _is_region_list(template: str) -> bool:
    """``/regions/check/{state}``, ``/regions/store/{id}`` and the like (not the count)."""
    tail = template.removeprefix(API_PREFIX)
    return tail.startswith("/regions") and tail != "/regions/count"


@dataclass(frozen=True, slots=True)
class _Answer:
    """A PD answer, its body read whole (within the endpoint's limit)."""

    status_code: int
    content: bytes

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")


_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)

_STORES = TypeAdapter(StoresInfo)
_STORE = TypeAdapter(StoreInfo)
_REGION = TypeAdapter(Region | None)
_REGIONS = TypeAdapter(RegionsInfo)
_REGION_STATS = TypeAdapter(RegionStats)
_HOTSPOT = TypeAdapter(HotspotInfo)
_OPERATORS = TypeAdapter(list[OperatorInfo] | None)
_OPERATOR = TypeAdapter(OperatorInfo)
_NAMES = TypeAdapter(list[str] | None)
_EVICT = TypeAdapter(EvictLeaderConfig)
_SCHEDULE = TypeAdapter(ScheduleConfig)
_REPLICATION = TypeAdapter(ReplicationConfig)
_HEALTH = TypeAdapter(list[MemberHealth] | None)
_MEMBERS = TypeAdapter(Members)
_CLUSTER_STATUS = TypeAdapter(ClusterStatus)
_VERSION = TypeAdapter(VersionInfo)
_STATUS = TypeAdapter(PDStatus)
_CLUSTER = TypeAdapter(ClusterInfo)


def _normalise_base_url(base_url: str) -> str:
    url = base_url.strip().rstrip("/")
    if url.endswith(API_PREFIX):
        url = url[: -len(API_PREFIX)]
    if not url.startswith(("http://", "https://")):
        raise ValueError(
            f"PD URL must start with http:// or https://, got {redact_url(base_url)!r}"
        )
    if has_credentials(url):
        raise ValueError(
            f"PD URL must not contain a user name or password ({redact_url(url)}): PD's API "
            "has no password authentication"
        )
    return url


def _too_deep(response: _Answer, method: str, path: str) -> PDProtocolError:
    """PD's body nests deeper than Python's JSON parser can follow (``[[[[...``)."""
    return PDProtocolError(
        "response nests too deeply to be read as JSON",
        status=response.status_code,
        method=method,
        path=path,
        body=response.content[:2000].decode("utf-8", errors="replace"),
        from_pd=False,
    )


def _request_of(exc: httpx.TransportError) -> httpx.Request | None:
    try:
        return exc.request
    except RuntimeError:  # raised without one (a test transport)
        return None


def _no_leader(response: _Answer) -> bool:
    """A member that cannot serve now: 503, or PD's ErrRedirectNoLeader (leader election)."""
    return response.status_code == 503 or (
        response.status_code >= 500 and b"ErrRedirectNoLeader" in response.content[:500]
    )


def _transport_reason(exc: httpx.TransportError) -> str:
    """A TLS failure is its own sentence (`operator_tikv.tls`); others name their type."""
    if isinstance(exc, TLSConnectError | TLSDisconnectError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _positive_id(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


class PDClient:
    """Async client for PD's HTTP API (``/pd/api/v1``), v6.5 to v8.5 and later.

    Read methods return models; write methods return PD's message (``""`` when PD answers
    ``null``) and are never retried. Failures raise :class:`~operator_tikv.errors.PDError`
    subclasses carrying PD's message and status.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str | PDMembers,
        *,
        retries: int = 2,
        backoff: float = 0.2,
        on_request: RequestHook | None = None,
        sleep: Sleep = asyncio.sleep,
        deadline: float = DEFAULT_DEADLINE,
        large_deadline: float | None = None,
        limits: BodyLimits | None = None,
    ) -> None:
        if retries < 0 or backoff < 0:
            raise ValueError("retries and backoff must be >= 0")
        if deadline <= 0 or (large_deadline is not None and large_deadline <= 0):
            raise ValueError("deadlines must be positive")
        self._http = http
        # Several PD members (`http://a:2379,http://b:2379` or a PDMembers): see _over_members.
        self.members = (
            base_url
            if isinstance(base_url, PDMembers)
            else PDMembers([_normalise_base_url(u) for u in split_members(base_url)])
        )
        self.retries = retries
        self.backoff = backoff
        self.on_request = on_request
        self._sleep = sleep
        #: Seconds one call may take in total; region lists get ``large_deadline``.
        self.deadline = deadline
        self.large_deadline = (
            large_deadline if large_deadline is not None else deadline * LARGE_DEADLINE_FACTOR
        )
        self.limits = limits or BodyLimits()
        #: HTTP attempts by (method, path template, outcome).
        self.stats: Counter[tuple[str, str, str]] = Counter()

    @property
    def base_url(self) -> str:
        """The PD member that answered last (the first given, at start)."""
        return self.members.current

    # ------------------------------------------------------------------ accounting

    def request_count(self, method: str | None = None, template: str | None = None) -> int:
        """Attempts made so far, optionally only for one method and/or path template."""
        return sum(
            count
            for (m, t, _outcome), count in self.stats.items()
            if (method is None or m == method) and (template is None or t == template)
        )

    def reset_stats(self) -> None:
        self.stats.clear()

    def _record(self, method: str, template: str, outcome: int | str, started: float) -> None:
        self.stats[(method, template, str(outcome))] += 1
        if self.on_request is None:
            return
        try:
            self.on_request(method, template, outcome, time.perf_counter() - started)
        except Exception:
            logger.exception("on_request hook failed for %s %s", method, template)

    # ------------------------------------------------------------------ transport

    def deadline_for(self, template: str) -> float:
        """Seconds a call to this endpoint may take in total."""
        return self.large_deadline if _is_region_list(template) else self.deadline

    async def _send(
        self,
        method: str,
        template: str,
        path: str,
        *,
        params: Params | None = None,
        body: Mapping[str, Any] | None = None,
        not_found: type[PDNotFoundError] = PDNotFoundError,
        expected_404: bool = False,
    ) -> _Answer:
        """Send one request (GETs with retries) within the endpoint's total deadline and
        return a 2xx answer, else raise.

        With ``expected_404`` a 404 answer is returned instead of raised.
        """
        deadline = self.deadline_for(template)
        limit = self.limits.for_template(template)
        attempt_started: list[float] = []
        try:
            async with asyncio.timeout(deadline):
                return await self._attempts(
                    method,
                    template,
                    path,
                    params=params,
                    body=body,
                    not_found=not_found,
                    expected_404=expected_404,
                    limit=limit,
                    attempt_started=attempt_started,
                )
        except TimeoutError as exc:
            if attempt_started:
                self._record(method, template, DEADLINE_OUTCOME, attempt_started[-1])
            raise PDUnavailableError(
                f"no complete answer within {deadline:g} s (PD, or something between the bot "
                "and PD, is answering too slowly or not at all)",
                method=method,
                path=path,
                from_pd=False,
                outcome_unknown=method != "GET",
            ) from exc

    async def _attempts(
        self,
        method: str,
        template: str,
        path: str,
        *,
        params: Params | None,
        body: Mapping[str, Any] | None,
        not_found: type[PDNotFoundError],
        expected_404: bool,
        limit: int,
        attempt_started: list[float],
    ) -> _Answer:
        attempts = self.retries + 1 if method == "GET" else 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            started = time.perf_counter()
            attempt_started.append(started)
            try:
                response = await self._over_members(
                    method, template, path, params=params, body=body, limit=limit
                )
            except BodyTooLarge as exc:
                self._record(method, template, TOO_LARGE_OUTCOME, started)
                attempt_started.clear()
                raise PDResponseTooLargeError(
                    f"{exc}; the limit for this endpoint is {human_size(limit)}",
                    method=method,
                    path=path,
                    from_pd=False,
                ) from exc
            except httpx.TransportError as exc:
                self._record(method, template, type(exc).__name__, started)
                attempt_started.clear()
                if not last:
                    await self._sleep(self.backoff * 2**attempt)
                    continue
                raise PDUnavailableError(
                    _transport_reason(exc),
                    method=method,
                    path=path,
                    from_pd=False,
                    outcome_unknown=method != "GET" and not isinstance(exc, _NOT_SENT),
                ) from exc
            except httpx.HTTPError as exc:
                self._record(method, template, type(exc).__name__, started)
                attempt_started.clear()
                raise PDUnavailableError(
                    f"{type(exc).__name__}: {exc}",
                    method=method,
                    path=path,
                    from_pd=False,
                    outcome_unknown=method != "GET",
                ) from exc
            self._record(method, template, response.status_code, started)
            attempt_started.clear()
            if response.is_success or (expected_404 and response.status_code == 404):
                return response
            try:
                if (
                    response.status_code >= 500
                    and not last
                    and match_rule(parse_error_body(response.content)) is None
                ):
                    await self._sleep(self.backoff * 2**attempt)
                    continue
                error = classify(
                    response.status_code,
                    response.content,
                    method=method,
                    path=path,
                    not_found=not_found,
                )
            except RecursionError as exc:
                raise _too_deep(response, method, path) from exc
            raise error
        raise AssertionError("unreachable")  # pragma: no cover

    async def _request(
        self,
        method: str,
        url: str,
        params: Params | None,
        body: Mapping[str, Any] | None,
        limit: int,
    ) -> _Answer:
        """One HTTP exchange; the body is streamed and read only up to `limit` bytes."""
        request = self._http.build_request(
            method, url, params=httpx.QueryParams(params or ()), json=body
        )
        response = await self._http.send(request, stream=True)
        try:
            content = await read_capped(response, limit)
        finally:
            await response.aclose()
        return _Answer(response.status_code, content)

    async def _over_members(
        self,
        method: str,
        template: str,
        path: str,
        *,
        params: Params | None,
        body: Mapping[str, Any] | None,
        limit: int,
    ) -> _Answer:
        """One request, to the member that answered last, passing on to the next member when
        one is unreachable or (for reads) has no leader (503, ErrRedirectNoLeader). A write
        moves on only when no connection was made: one that may have reached PD is never sent
        again. The member that answers is remembered. When every member failed, the error
        names each member's failure; the caller backs off and retries reads."""
        members = self.members.in_order()
        failures: list[str] = []
        for index, member in enumerate(members):
            more = index < len(members) - 1
            started = time.perf_counter()
            try:
                response = await self._request(method, member + path, params, body, limit)
            except httpx.TransportError as exc:
                movable = method == "GET" or isinstance(exc, _NOT_SENT)
                if not (more and movable):
                    if failures:
                        failures.append(f"{member}: {_transport_reason(exc)}")
                        text = "no PD member answered: " + "; ".join(failures)
                        raise type(exc)(text, request=_request_of(exc)) from exc
                    raise
                self._record(method, template, type(exc).__name__, started)
                failures.append(f"{member}: {_transport_reason(exc)}")
                continue
            if more and method == "GET" and _no_leader(response):
                self._record(method, template, response.status_code, started)
                failures.append(f"{member}: HTTP {response.status_code} (no PD leader)")
                continue
            if not _no_leader(response):
                self.members.answered(member)
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _decode(response: _Answer, method: str, path: str) -> Any:
        try:
            return json.loads(response.content)
        except RecursionError as exc:
            raise _too_deep(response, method, path) from exc
        except ValueError as exc:
            raise PDProtocolError(
                f"response is not JSON: {exc}",
                status=response.status_code,
                method=method,
                path=path,
                body=response.text,
                from_pd=False,
            ) from exc

    @staticmethod
    def _validate(
        adapter: TypeAdapter[T], data: Any, response: _Answer, method: str, path: str
    ) -> T:
        try:
            return adapter.validate_python(data)
        except (ValidationError, ValueError) as exc:
            raise PDProtocolError(
                truncate(f"unexpected response shape: {exc}", 400),
                status=response.status_code,
                method=method,
                path=path,
                body=response.text,
                from_pd=False,
            ) from exc

    async def _get(
        self,
        adapter: TypeAdapter[T],
        template: str,
        path: str,
        *,
        params: Params | None = None,
        not_found: type[PDNotFoundError] = PDNotFoundError,
    ) -> T:
        response = await self._send("GET", template, path, params=params, not_found=not_found)
        data = self._decode(response, "GET", path)
        return self._validate(adapter, data, response, "GET", path)

    # ------------------------------------------------------------------ stores

    async def list_stores(
        self, states: Iterable[StoreState | int] | None = None
    ) -> list[StoreInfo]:
        """``GET /stores``. PD's default shows Up and Offline stores; pass ``states`` (for
        example ``[StoreState.UP, StoreState.OFFLINE, StoreState.TOMBSTONE]``) to change it.
        Down and Disconnected are ``state_name`` values of Up stores."""
        template = f"{API_PREFIX}/stores"
        params = tuple(("state", str(int(StoreState(s)))) for s in states) if states else None
        info = await self._get(_STORES, template, template, params=params)
        problem = None
        if info.count != len(info.stores):
            problem = (
                f"its store list says count {info.count} but lists {len(info.stores)} "
                f"store{'' if len(info.stores) == 1 else 's'}"
            )
        elif not info.stores and not states:
            problem = (
                "it lists no stores at all, which a bootstrapped cluster never has (an "
                "unbootstrapped PD answers 'cluster not bootstrapped' instead)"
            )
        if problem is not None:
            raise PDUntrustworthyError(
                problem, status=200, method="GET", path=template, from_pd=False
            )
        return info.stores

    async def get_store(self, store_id: int) -> StoreInfo:
        """``GET /store/{id}``; raises StoreNotFoundError."""
        sid = _positive_id("store_id", store_id)
        return await self._get(
            _STORE, f"{API_PREFIX}/store/{{store_id}}", f"{API_PREFIX}/store/{sid}"
        )

    # ------------------------------------------------------------------ regions

    async def get_region(self, region_id: int) -> Region:
        """``GET /region/id/{id}``. A 404, a ``null`` body or PD v8.5's zero region (``id`` 0)
        all raise RegionNotFoundError."""
        rid = _positive_id("region_id", region_id)
        template = f"{API_PREFIX}/region/id/{{region_id}}"
        path = f"{API_PREFIX}/region/id/{rid}"
        response = await self._send("GET", template, path, not_found=RegionNotFoundError)
        region = self._validate(_REGION, self._decode(response, "GET", path), response, "GET", path)
        if region is None or region.id == 0:
            answer = "null" if region is None else "an empty region (id 0)"
            raise RegionNotFoundError(
                f"region {rid} not found (PD answered {answer})",
                status=response.status_code,
                method="GET",
                path=path,
                from_pd=False,
            )
        return region

    async def get_region_count(self) -> int:
        """``GET /regions/count``: the number of regions, without listing them."""
        template = f"{API_PREFIX}/regions/count"
        return (await self._get(_REGIONS, template, template)).count

    async def get_region_stats(
        self,
        *,
        start_key: str | None = None,
        end_key: str | None = None,
        count_only: bool = False,
    ) -> RegionStats:
        """``GET /stats/region`` over raw keys (whole key space by default)."""
        template = f"{API_PREFIX}/stats/region"
        params: list[tuple[str, str]] = []
        if start_key is not None:
            params.append(("start_key", start_key))
        if end_key is not None:
            params.append(("end_key", end_key))
        if count_only:
            params.append(("count", ""))
        return await self._get(_REGION_STATS, template, template, params=tuple(params))

    async def check_regions(self, state: RegionCheckState | str) -> RegionsInfo:
        """``GET /regions/check/{state}`` (down-peer, pending-peer, miss-peer, extra-peer...)."""
        check = RegionCheckState(state)
        return await self._get(
            _REGIONS,
            f"{API_PREFIX}/regions/check/{{state}}",
            f"{API_PREFIX}/regions/check/{check.value}",
        )

    async def check_regions_brief(
        self, state: RegionCheckState | str, *, peers: bool = True
    ) -> RegionsBrief:
        """``GET /regions/check/{state}``, reduced to what the monitor reads of each region
        (id, voter/down/pending/leader stores). Far cheaper than :meth:`check_regions` on long
        lists: only those fields are validated, in pydantic-core, and no ``Region`` is built.
        ``peers=False`` skips the peer list and the leader (see `parse_regions_brief`)."""
        check = RegionCheckState(state)
        path = f"{API_PREFIX}/regions/check/{check.value}"
        response = await self._send("GET", f"{API_PREFIX}/regions/check/{{state}}", path)
        try:
            return parse_regions_brief(response.content, peers=peers)
        except ValueError as exc:
            raise PDProtocolError(
                truncate(f"unexpected response shape: {exc}", 400),
                status=response.status_code,
                method="GET",
                path=path,
                body=response.content[:2000].decode("utf-8", errors="replace"),
                from_pd=False,
            ) from exc

    async def get_store_regions(
        self, store_id: int, region_type: StoreRegionType | str | None = None
    ) -> RegionsInfo:
        """``GET /regions/store/{id}``: every region with a peer on the store. Can be large;
        not for the monitor loop. ``region_type`` (v8.5+) narrows it, e.g. to leaders."""
        sid = _positive_id("store_id", store_id)
        params = (("type", StoreRegionType(region_type).value),) if region_type else None
        return await self._get(
            _REGIONS,
            f"{API_PREFIX}/regions/store/{{store_id}}",
            f"{API_PREFIX}/regions/store/{sid}",
            params=params,
        )

    async def _hotspot(self, kind: str, store_ids: Iterable[int] | None) -> HotspotInfo:
        template = f"{API_PREFIX}/hotspot/regions/{kind}"
        params = (
            tuple(("store_id", str(_positive_id("store_id", s))) for s in store_ids)
            if store_ids
            else None
        )
        return await self._get(_HOTSPOT, template, template, params=params)

    async def get_hotspot_write(self, store_ids: Iterable[int] | None = None) -> HotspotInfo:
        """``GET /hotspot/regions/write``, optionally only for some stores."""
        return await self._hotspot("write", store_ids)

    async def get_hotspot_read(self, store_ids: Iterable[int] | None = None) -> HotspotInfo:
        """``GET /hotspot/regions/read``, optionally only for some stores."""
        return await self._hotspot("read", store_ids)

    # ------------------------------------------------------------------ operators

    async def list_operators(
        self, kinds: Iterable[OperatorKindFilter | str] | None = None
    ) -> list[OperatorInfo]:
        """``GET /operators`` (running operators; ``status`` is None on each)."""
        template = f"{API_PREFIX}/operators"
        params = tuple(("kind", OperatorKindFilter(k).value) for k in kinds) if kinds else None
        return await self._get(_OPERATORS, template, template, params=params) or []

    async def get_operator(self, region_id: int) -> OperatorInfo:
        """``GET /operators/{region_id}``: the running operator, or the record of one that
        ended in the last 10 minutes. Raises OperatorNotFoundError otherwise."""
        rid = _positive_id("region_id", region_id)
        return await self._get(
            _OPERATOR, f"{API_PREFIX}/operators/{{region_id}}", f"{API_PREFIX}/operators/{rid}"
        )

    # ------------------------------------------------------------------ schedulers

    async def list_schedulers(
        self, status: Literal["paused", "disabled"] | None = None
    ) -> list[str]:
        """``GET /schedulers``: scheduler names (v8.1+: enabled ones only by default)."""
        template = f"{API_PREFIX}/schedulers"
        params = (("status", str(status)),) if status else None
        names = await self._get(_NAMES, template, template, params=params)
        return names or []

    async def get_evict_leader_config(self) -> EvictLeaderConfig | None:
        """``GET /scheduler-config/evict-leader-scheduler/list``; None when the scheduler is
        not running (PD answers a plain 404)."""
        path = f"{API_PREFIX}/scheduler-config/{EVICT_LEADER_SCHEDULER}/list"
        response = await self._send("GET", path, path, expected_404=True)
        if response.status_code == 404:
            return None
        return self._validate(_EVICT, self._decode(response, "GET", path), response, "GET", path)

    async def evicted_leader_store_ids(self) -> list[int]:
        """Stores currently under evict-leader-scheduler (empty when it is not running)."""
        config = await self.get_evict_leader_config()
        return config.store_ids if config else []

    # ------------------------------------------------------------------ config

    async def get_schedule_config(self) -> ScheduleConfig:
        template = f"{API_PREFIX}/config/schedule"
        return await self._get(_SCHEDULE, template, template)

    async def get_replication_config(self) -> ReplicationConfig:
        template = f"{API_PREFIX}/config/replicate"
        return await self._get(_REPLICATION, template, template)

    # ------------------------------------------------------------------ cluster

    async def get_health(self) -> list[MemberHealth]:
        template = f"{API_PREFIX}/health"
        return await self._get(_HEALTH, template, template) or []

    async def get_members(self) -> Members:
        template = f"{API_PREFIX}/members"
        return await self._get(_MEMBERS, template, template)

    async def get_cluster_status(self) -> ClusterStatus:
        template = f"{API_PREFIX}/cluster/status"
        return await self._get(_CLUSTER_STATUS, template, template)

    async def get_version(self) -> VersionInfo:
        template = f"{API_PREFIX}/version"
        return await self._get(_VERSION, template, template)

    async def get_status(self) -> PDStatus:
        template = f"{API_PREFIX}/status"
        return await self._get(_STATUS, template, template)

    async def get_cluster(self) -> ClusterInfo:
        template = f"{API_PREFIX}/cluster"
        return await self._get(_CLUSTER, template, template)

    async def ping(self) -> None:
        """``GET /ping``: returns when PD answers 200; raises PDUnavailableError otherwise."""
        template = f"{API_PREFIX}/ping"
        await self._send("GET", template, template)

    # ------------------------------------------------------------------ writes

    async def execute(self, write: PDWrite) -> str:
        """Send one write exactly once and return PD's message (``""`` for a ``null`` body)."""
        not_found: type[PDNotFoundError] = (
            SchedulerNotFoundError
            if write.template.startswith(f"{API_PREFIX}/schedulers/")
            else PDNotFoundError
        )
        response = await self._send(
            write.method,
            write.template,
            write.path,
            params=tuple(write.query.items()),
            body=write.body,
            not_found=not_found,
        )
        try:
            return parse_error_body(response.content).message
        except RecursionError as exc:
            raise _too_deep(response, write.method, write.path) from exc

    async def transfer_leader(self, region_id: int, to_store_id: int) -> str:
        return await self.execute(PDWrite.transfer_leader(region_id, to_store_id))

    async def transfer_peer(self, region_id: int, from_store_id: int, to_store_id: int) -> str:
        return await self.execute(PDWrite.transfer_peer(region_id, from_store_id, to_store_id))

    async def add_peer(self, region_id: int, store_id: int) -> str:
        return await self.execute(PDWrite.add_peer(region_id, store_id))

    async def remove_peer(self, region_id: int, store_id: int) -> str:
        return await self.execute(PDWrite.remove_peer(region_id, store_id))

    async def split_region(
        self,
        region_id: int,
        policy: SplitPolicy = "approximate",
        keys: Sequence[str] | None = None,
    ) -> str:
        return await self.execute(PDWrite.split_region(region_id, policy, keys))

    async def merge_region(self, source_region_id: int, target_region_id: int) -> str:
        return await self.execute(PDWrite.merge_region(source_region_id, target_region_id))

    async def cancel_operator(self, region_id: int) -> str:
        return await self.execute(PDWrite.cancel_operator(region_id))

    async def add_scheduler(self, name: str, store_id: int | None = None) -> str:
        return await self.execute(PDWrite.add_scheduler(name, store_id))

    async def add_evict_leader(self, store_id: int) -> str:
        """Add the store to evict-leader-scheduler (creating it if needed). Idempotent."""
        return await self.execute(PDWrite.add_evict_leader(store_id))

    async def remove_evict_leader_store(self, store_id: int) -> str:
        """Remove one store from evict-leader-scheduler. Raises SchedulerNotFoundError when the
        store is not in it or the scheduler does not run (PD: 404 ``null``)."""
        return await self.execute(PDWrite.remove_evict_leader_store(store_id))

    async def remove_scheduler(self, name: str) -> str:
        return await self.execute(PDWrite.remove_scheduler(name))

    async def set_schedule_config(self, changes: Mapping[str, object]) -> str:
        return await self.execute(PDWrite.set_schedule_config(changes))

    async def set_replication_config(self, changes: Mapping[str, object]) -> str:
        return await self.execute(PDWrite.set_replication_config(changes))

    async def set_store_state(self, store_id: int, state: Literal["Up", "Offline"]) -> str:
        return await self.execute(PDWrite.set_store_state(store_id, state))

    async def set_store_weight(self, store_id: int, leader: float, region: float) -> str:
        return await self.execute(PDWrite.set_store_weight(store_id, leader, region))

    # ------------------------------------------------------------------ raw reads (counts first)

    async def get_metrics_text(self, base_url: str | None = None) -> bytes:
        """``GET /metrics`` on a PD client port (this PD, or ``base_url``, e.g. the leader's
        client URL): PD's own Prometheus text, unparsed (`operator_tikv.pd_metrics` reads it)."""
        client = self if base_url is None else self._sibling(base_url)
        return (await client._send("GET", "/metrics", "/metrics")).content

    async def get_region_check_body(self, state: RegionCheckState | str) -> bytes:
        """``GET /regions/check/{state}``, the body unparsed: `operator_tikv.region_lists`
        summarises it off the event loop with a bounded-memory streaming parser."""
        check = RegionCheckState(state)
        path = f"{API_PREFIX}/regions/check/{check.value}"
        return (await self._send("GET", f"{API_PREFIX}/regions/check/{{state}}", path)).content

    def _sibling(self, base_url: str) -> PDClient:
        """A client of another PD member over the same connection pool and settings."""
        sibling = PDClient(
            self._http,
            base_url,
            retries=self.retries,
            backoff=self.backoff,
            on_request=self.on_request,
            sleep=self._sleep,
        )
        sibling.stats = self.stats
        return sibling


@asynccontextmanager
async def open_pd_client(
    base_url: str | PDMembers,
    *,
    http_timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
    retries: int = 2,
    backoff: float = 0.2,
    on_request: RequestHook | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    deadline: float | None = None,
    large_deadline: float | None = None,
    limits: BodyLimits | None = None,
) -> AsyncIterator[PDClient]:
    """A PDClient over its own ``httpx.AsyncClient``, closed on exit.

    ``transport`` plugs in a test or simulator transport instead of the network. ``deadline``
    (total seconds per call) defaults to ``http_timeout`` when that is a number, else to
    :data:`DEFAULT_DEADLINE`.
    """
    if deadline is None:
        deadline = (
            float(http_timeout) if isinstance(http_timeout, int | float) else DEFAULT_DEADLINE
        )
    async with httpx.AsyncClient(timeout=http_timeout, transport=transport) as http:
        yield PDClient(
            http,
            base_url,
            retries=retries,
            backoff=backoff,
            on_request=on_request,
            deadline=deadline,
            large_deadline=large_deadline,
            limits=limits,
        )
