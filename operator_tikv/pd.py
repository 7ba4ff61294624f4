"""PDClient: the async PD HTTP client. Typed models in, typed models out, our errors on failure.

- Runs over an injected ``httpx.AsyncClient`` (the transport is the test seam: respx, or the
  simulator's handler). :func:`open_pd_client` builds one with sane timeouts and closes it.
- How one request is made (members, GET-only retries, the total deadline, per-endpoint body
  caps, ``stats`` and ``on_request``) is :mod:`operator_tikv.pd_requests`, its base class.
- ``list_stores()`` refuses an answer that cannot be true of a bootstrapped cluster (no stores,
  or a ``count`` that does not match the list) with
  :class:`~operator_tikv.errors.PDUntrustworthyError`.
- Every response goes through a model; one that does not validate raises
  :class:`~operator_tikv.errors.PDProtocolError` with the cause chained. Bodies are parsed by
  content, never by Content-Type (region endpoints answer JSON as application/octet-stream).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

import httpx
from pydantic import TypeAdapter

from operator_tikv.errors import (
    PDNotFoundError,
    PDUntrustworthyError,
    RegionNotFoundError,
    SchedulerNotFoundError,
    parse_error_body,
)
from operator_tikv.members import PDMembers
from operator_tikv.models import (
    API_PREFIX,
    EVICT_LEADER_SCHEDULER,
    EvictLeaderConfig,
    HotspotInfo,
    Members,
    OperatorInfo,
    OperatorKindFilter,
    PDWrite,
    Region,
    RegionCheckState,
    RegionsInfo,
    ReplicationConfig,
    ScheduleConfig,
    StoreInfo,
    StoreRegionType,
    StoresInfo,
    StoreState,
)
from operator_tikv.pd_requests import (
    DEADLINE_OUTCOME,
    DEFAULT_DEADLINE,
    DEFAULT_TIMEOUT,
    TOO_LARGE_OUTCOME,
    BodyLimits,
    PDRequests,
    RequestHook,
    _too_deep,
)

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


_STORES = TypeAdapter(StoresInfo)
_STORE = TypeAdapter(StoreInfo)
_REGION = TypeAdapter(Region | None)
_REGIONS = TypeAdapter(RegionsInfo)
_HOTSPOT = TypeAdapter(HotspotInfo)
_OPERATORS = TypeAdapter(list[OperatorInfo] | None)
_OPERATOR = TypeAdapter(OperatorInfo)
_EVICT = TypeAdapter(EvictLeaderConfig)
_SCHEDULE = TypeAdapter(ScheduleConfig)
_REPLICATION = TypeAdapter(ReplicationConfig)
_MEMBERS = TypeAdapter(Members)


def _positive_id(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


class PDClient(PDRequests):
    """Async client for PD's HTTP API (``/pd/api/v1``), v6.5 to v8.5 and later.

    Read methods return models; :meth:`execute` sends one `PDWrite` and returns PD's message
    (``""`` when PD answers ``null``), never retried. Failures raise
    :class:`~operator_tikv.errors.PDError` subclasses carrying PD's message and status.
    """

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

    async def check_regions(self, state: RegionCheckState | str) -> RegionsInfo:
        """``GET /regions/check/{state}`` (down-peer, pending-peer, miss-peer, extra-peer...)."""
        check = RegionCheckState(state)
        return await self._get(
            _REGIONS,
            f"{API_PREFIX}/regions/check/{{state}}",
            f"{API_PREFIX}/regions/check/{check.value}",
        )

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

    async def _evict_leader_config(self) -> EvictLeaderConfig | None:
        """``GET /scheduler-config/evict-leader-scheduler/list``; None when the scheduler is
        not running (PD answers a plain 404)."""
        path = f"{API_PREFIX}/scheduler-config/{EVICT_LEADER_SCHEDULER}/list"
        response = await self._send("GET", path, path, expected_404=True)
        if response.status_code == 404:
            return None
        return self._validate(_EVICT, self._decode(response, "GET", path), response, "GET", path)

    async def evicted_leader_store_ids(self) -> list[int]:
        """Stores currently under evict-leader-scheduler (empty when it is not running)."""
        config = await self._evict_leader_config()
        return config.store_ids if config else []

    # ------------------------------------------------------------------ config

    async def get_schedule_config(self) -> ScheduleConfig:
        template = f"{API_PREFIX}/config/schedule"
        return await self._get(_SCHEDULE, template, template)

    async def get_replication_config(self) -> ReplicationConfig:
        template = f"{API_PREFIX}/config/replicate"
        return await self._get(_REPLICATION, template, template)

    # ------------------------------------------------------------------ cluster

    async def get_members(self) -> Members:
        template = f"{API_PREFIX}/members"
        return await self._get(_MEMBERS, template, template)

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
