"""PDClient: the async PD HTTP client. Typed models in, typed models out, our errors on failure.

- Runs over an injected ``httpx.AsyncClient`` (the transport is the test seam: respx, or the
  simulator's handler). :func:`open_pd_client` builds one with sane timeouts and closes it.
- Only GETs are retried, with exponential backoff, on transport errors and on 5xx answers that
  are not a recognised PD refusal. Writes (POST/DELETE) are sent exactly once.
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
from typing import Any, Literal, TypeVar

import httpx
from pydantic import TypeAdapter, ValidationError

from operator_tikv.errors import (
    PDNotFoundError,
    PDProtocolError,
    PDUnavailableError,
    RegionNotFoundError,
    SchedulerNotFoundError,
    classify,
    match_rule,
    parse_error_body,
    truncate,
)
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

__all__ = ["DEFAULT_TIMEOUT", "PDClient", "RequestHook", "open_pd_client"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: ``on_request(method, path_template, status_code_or_error_name, seconds)``.
RequestHook = Callable[[str, str, int | str, float], None]
Sleep = Callable[[float], Awaitable[None]]
Params = tuple[tuple[str, str], ...]

#: Timeouts for the client :func:`open_pd_client` builds: PD answers reads in milliseconds,
#: but a large ``/regions/store/{id}`` can take seconds.
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=3.0)

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
        raise ValueError(f"PD URL must start with http:// or https://, got {base_url!r}")
    return url


def _too_deep(response: httpx.Response, method: str, path: str) -> PDProtocolError:
    """PD's body nests deeper than Python's JSON parser can follow (``[[[[...``)."""
    return PDProtocolError(
        "response nests too deeply to be read as JSON",
        status=response.status_code,
        method=method,
        path=path,
        body=response.content[:2000].decode("utf-8", errors="replace"),
        from_pd=False,
    )


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
        base_url: str,
        *,
        retries: int = 2,
        backoff: float = 0.2,
        on_request: RequestHook | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if retries < 0 or backoff < 0:
            raise ValueError("retries and backoff must be >= 0")
        self._http = http
        self.base_url = _normalise_base_url(base_url)
        self.retries = retries
        self.backoff = backoff
        self.on_request = on_request
        self._sleep = sleep
        #: HTTP attempts by (method, path template, outcome).
        self.stats: Counter[tuple[str, str, str]] = Counter()

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
    ) -> httpx.Response:
        """Send one request (GETs with retries) and return a 2xx response, else raise.

        With ``expected_404`` a 404 response is returned instead of raised.
        """
        url = self.base_url + path
        attempts = self.retries + 1 if method == "GET" else 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            started = time.perf_counter()
            try:
                response = await self._http.request(
                    method, url, params=httpx.QueryParams(params or ()), json=body
                )
            except httpx.TransportError as exc:
                self._record(method, template, type(exc).__name__, started)
                if not last:
                    await self._sleep(self.backoff * 2**attempt)
                    continue
                raise PDUnavailableError(
                    f"{type(exc).__name__}: {exc}",
                    method=method,
                    path=path,
                    from_pd=False,
                    outcome_unknown=method != "GET" and not isinstance(exc, _NOT_SENT),
                ) from exc
            except httpx.HTTPError as exc:
                self._record(method, template, type(exc).__name__, started)
                raise PDUnavailableError(
                    f"{type(exc).__name__}: {exc}",
                    method=method,
                    path=path,
                    from_pd=False,
                    outcome_unknown=method != "GET",
                ) from exc
            self._record(method, template, response.status_code, started)
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

    @staticmethod
    def _decode(response: httpx.Response, method: str, path: str) -> Any:
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
        adapter: TypeAdapter[T], data: Any, response: httpx.Response, method: str, path: str
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
    base_url: str,
    *,
    http_timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
    retries: int = 2,
    backoff: float = 0.2,
    on_request: RequestHook | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> AsyncIterator[PDClient]:
    """A PDClient over its own ``httpx.AsyncClient``, closed on exit.

    ``transport`` plugs in a test or simulator transport instead of the network.
    """
    async with httpx.AsyncClient(timeout=http_timeout, transport=transport) as http:
        yield PDClient(http, base_url, retries=retries, backoff=backoff, on_request=on_request)
