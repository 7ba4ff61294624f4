"""PD HTTP endpoints about the cluster itself: health, members, status, config, stores, regions,
statistics and hotspots (`/pd/api/v1/...`). Answers follow reference/pd-api.md §3-§6.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_to_bytes

from aiohttp import web

from sim import pderrors, render
from sim.cluster import Cluster
from sim.config import ConfigError, FieldConfig, decode_body_object
from sim.gojson import GoJSONError, parse_object
from sim.gotext import format_rfc3339
from sim.pd_metrics import render_pd_metrics
from sim.pderrors import SimError
from sim.responses import (
    DATA_TYPE,
    ErrcodeError,
    RawError,
    data_body,
    errcode_body,
    json_body,
    not_found_text,
    raw_param,
)

PREFIX = "/pd/api/v1"
STORE_CHECK_STATES = ("up", "offline", "tombstone", "down", "disconnected")
REGION_LIMIT_DEFAULT = 16
REGION_LIMIT_MAX = 10240
STREAM_ABOVE = 5000  # region lists longer than this are written in chunks


async def read_object(request: web.Request) -> dict[str, Any]:
    """ReadJSONRespondError into map[string]any: errcode 400 on malformed JSON; null -> {}."""
    body = await request.read()
    try:
        value = parse_object(body)
    except GoJSONError as exc:
        raise ErrcodeError(400, "input", exc.msg, exc.data) from None
    return value or {}


def path_uint_errcode(request: web.Request, name: str = "id") -> int:
    """A uint64 path id; non-numeric gives 400 with an errcode object (store endpoints)."""
    text = request.match_info[name]
    try:
        return pderrors.parse_uint(text)
    except ValueError as exc:
        raise ErrcodeError(400, "input", str(exc), {}) from None


def path_uint_string(request: web.Request, name: str) -> int:
    """A uint64 path id; non-numeric gives 400 with a JSON string body."""
    text = request.match_info[name]
    try:
        return pderrors.parse_uint(text)
    except ValueError as exc:
        raise SimError(400, str(exc)) from None


def config_error_response(exc: ConfigError) -> web.Response:
    if exc.errcode is not None:
        return errcode_body(exc.status, exc.code, exc.errcode["msg"], exc.errcode["data"])
    return json_body(exc.message, exc.status)


class ClusterApi:
    """Handlers bound to one cluster; `pd_url` is read lazily (known after the port is bound)."""

    def __init__(self, cluster: Cluster, pd_url: Callable[[], str]) -> None:
        self.cluster = cluster
        self.pd_url = pd_url

    def routes(self) -> list[web.RouteDef]:
        p = PREFIX
        return [
            web.get(f"{p}/ping", self.ping),
            web.get(f"{p}/health", self.health),
            web.get(f"{p}/members", self.members),
            web.get(f"{p}/cluster", self.cluster_meta),
            web.get(f"{p}/cluster/status", self.cluster_status),
            web.get(f"{p}/version", self.version),
            web.get(f"{p}/status", self.status),
            web.get(f"{p}/config", self.get_config),
            web.post(f"{p}/config", self.post_config),
            web.get(f"{p}/config/schedule", self.get_schedule),
            web.post(f"{p}/config/schedule", self.post_schedule),
            web.get(f"{p}/config/replicate", self.get_replicate),
            web.post(f"{p}/config/replicate", self.post_replicate),
            web.get(f"{p}/stores", self.stores),
            web.get(f"{p}/stores/check", self.stores_check),
            web.get(f"{p}/store/{{id}}", self.store),
            web.delete(f"{p}/store/{{id}}", self.delete_store),
            web.post(f"{p}/store/{{id}}/state", self.store_state),
            web.post(f"{p}/store/{{id}}/weight", self.store_weight),
            web.get(f"{p}/region/id/{{id}}", self.region_by_id),
            web.get(f"{p}/region/key/{{key:.*}}", self.region_by_key),
            web.get(f"{p}/regions", self.regions_all),
            web.get(f"{p}/regions/count", self.regions_count),
            web.get(f"{p}/regions/key", self.regions_by_key),
            web.get(f"{p}/regions/store/{{id}}", self.regions_by_store),
            web.get(f"{p}/regions/check/{{state}}", self.regions_check),
            web.get(f"{p}/stats/region", self.stats_region),
            web.get(f"{p}/hotspot/regions/write", self.hot_write),
            web.get(f"{p}/hotspot/regions/read", self.hot_read),
            web.get(f"{p}/hotspot/stores", self.hot_stores),
            web.get("/metrics", self.metrics),
        ]

    # ----- health, members, status -----------------------------------------------------------

    async def ping(self, request: web.Request) -> web.Response:
        return web.Response(body=b"", status=200)

    async def health(self, request: web.Request) -> web.Response:
        return json_body(render.health_json(self.cluster, self.pd_url()))

    async def members(self, request: web.Request) -> web.Response:
        return json_body(render.members_json(self.cluster, self.pd_url()))

    async def cluster_meta(self, request: web.Request) -> web.Response:
        return json_body(
            {"id": self.cluster.cluster_id, "max_peer_count": self.cluster.replication.max_replicas}
        )

    async def cluster_status(self, request: web.Request) -> web.Response:
        return json_body(
            {
                "raft_bootstrap_time": format_rfc3339(self.cluster.pd_started_at - 86400 * 30),
                "is_initialized": True,
                "replication_status": "",
            }
        )

    async def version(self, request: web.Request) -> web.Response:
        return json_body({"version": render.PD_VERSION, "build_time": "", "hash": "", "branch": ""})

    async def status(self, request: web.Request) -> web.Response:
        return json_body(
            {
                "build_ts": "2025-12-22 08:05:41",
                "version": render.PD_VERSION,
                "git_hash": render.PD_GIT_HASH,
                "start_timestamp": int(self.cluster.pd_started_at),
            }
        )

    async def metrics(self, request: web.Request) -> web.Response:
        text = render_pd_metrics(self.cluster)
        return web.Response(
            body=text.encode(), headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}
        )

    # ----- config ----------------------------------------------------------------------------

    async def get_config(self, request: web.Request) -> web.Response:
        url = self.pd_url()
        return json_body(
            {
                "client-urls": url,
                "peer-urls": "http://127.0.0.1:2380",
                "advertise-client-urls": url,
                "advertise-peer-urls": "http://127.0.0.1:2380",
                "name": "pd-1",
                "data-dir": "/home/tidb/.tiup/data/pd-1",
                "schedule": self.cluster.schedule.to_json(),
                "replication": self.cluster.replication.to_json(),
                "cluster-version": "8.5.5",
            }
        )

    async def get_schedule(self, request: web.Request) -> web.Response:
        return json_body(self.cluster.schedule.to_json())

    async def get_replicate(self, request: web.Request) -> web.Response:
        return json_body(self.cluster.replication.to_json())

    def _apply(self, config: FieldConfig, patch: dict[str, Any], body: bytes | None) -> None:
        decoded = config.decode_patch(patch, body)
        before = self.cluster.schedule.max_store_down_time
        config.apply(decoded)
        self.cluster.config_changed(before)

    async def post_schedule(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            patch = decode_body_object(body)
            self._apply(self.cluster.schedule, patch, body)
        except ConfigError as exc:
            return config_error_response(exc)
        return json_body("The config is updated.")

    async def post_replicate(self, request: web.Request) -> web.Response:
        patch = await read_object(request)
        body = await request.read()
        try:
            self._apply(self.cluster.replication, patch, body)
        except ConfigError as exc:
            return config_error_response(exc)
        return json_body("The config is updated.")

    async def post_config(self, request: web.Request) -> web.Response:
        """The generic endpoint (pd-ctl `config set`): validates key names, 400 on any error."""
        body = await request.read()
        try:
            patch = decode_body_object(body)
        except ConfigError as exc:
            return json_body(exc.message, 400)
        schedule, replication = self.cluster.schedule, self.cluster.replication
        for key, value in patch.items():
            parts = key.split(".")
            item = parts[-1]
            target: FieldConfig | None
            if len(parts) > 1:
                prefix = parts[0]
                if prefix == "schedule":
                    target = schedule
                elif prefix == "replication":
                    target = replication
                else:
                    return json_body(f"config prefix {prefix} not found", 400)
                if not target.has(item):
                    return json_body(f"config item {item} not found", 400)
            elif schedule.has(item):
                target = schedule
            elif replication.has(item):
                target = replication
            else:
                return json_body(f"config item {key} not found", 400)
            try:
                self._apply(target, {item: value}, None)
            except ConfigError as exc:
                return json_body(exc.message, 400)
        return json_body("The config is updated.")

    # ----- stores ----------------------------------------------------------------------------

    def _stores_body(self, stores: list[Any]) -> web.Response:
        cluster = self.cluster
        items = [render.store_json(cluster, s) for s in stores]
        return json_body({"count": len(items), "stores": items})

    async def stores(self, request: web.Request) -> web.Response:
        wanted = {0, 1}
        values = request.query.getall("state", [])
        if values:
            wanted = set()
            for value in values:
                try:
                    wanted.add(pderrors.atoi(value))
                except ValueError as exc:
                    raise SimError(500, str(exc)) from None
        stores = [s for s in self.cluster.stores.values() if s.state in wanted]
        return self._stores_body(stores)

    async def stores_check(self, request: web.Request) -> web.Response:
        values = request.query.getall("state", [])
        wanted = set()
        for value in values:
            if value.lower() not in STORE_CHECK_STATES:
                raise SimError(400, f"unknown StoreState: {value}")
            wanted.add(value.lower())
        cluster = self.cluster
        stores = [
            s
            for s in cluster.stores.values()
            if not wanted or cluster.state_name(s).lower() in wanted
        ]
        return self._stores_body(stores)

    async def store(self, request: web.Request) -> web.Response:
        store_id = path_uint_errcode(request)
        store = self.cluster.store(store_id)
        return json_body(render.store_json(self.cluster, store))

    async def delete_store(self, request: web.Request) -> web.Response:
        store_id = path_uint_errcode(request)
        self.cluster.set_store_offline(store_id, force="force" in request.query)
        return json_body("The store is set as Offline.")

    async def store_state(self, request: web.Request) -> web.Response:
        store_id = path_uint_errcode(request)
        state = request.query.get("state", "")
        if state.lower() == "up":
            self.cluster.store(store_id)
            self.cluster.set_store_up(store_id)
        elif state.lower() == "offline":
            self.cluster.set_store_offline(store_id, force=False)
        else:
            raise SimError(400, f"invalid state {state}")
        return json_body("The store's state is updated.")

    async def store_weight(self, request: web.Request) -> web.Response:
        store_id = path_uint_errcode(request)
        body = await read_object(request)
        if "leader" not in body:
            raise SimError(400, "leader weight unset")
        if "region" not in body:
            raise SimError(400, "region weight unset")
        leader, region = body["leader"], body["region"]
        if not _is_number(leader) or leader < 0:
            raise SimError(400, "bad format leader weight")
        if not _is_number(region) or region < 0:
            raise SimError(400, "bad format region weight")
        store = self.cluster.stores.get(store_id)
        if store is None:
            raise SimError(500, pderrors.store_not_found(store_id))
        store.leader_weight = float(leader)
        store.region_weight = float(region)
        self.cluster.touch()
        return json_body("The store's weight is updated.")

    # ----- regions ---------------------------------------------------------------------------

    async def region_by_id(self, request: web.Request) -> web.Response:
        region_id = path_uint_string(request, "id")
        region = self.cluster.regions.get(region_id)
        if region is None:
            return data_body(render.ZERO_REGION)
        return data_body(render.region_json(self.cluster, region, self.cluster.impaired_stores()))

    async def region_by_key(self, request: web.Request) -> web.Response:
        encoded = request.rel_url.raw_path.split("/region/key/", 1)[-1]
        key = unquote_to_bytes(encoded)
        if request.query.get("format") == "hex":
            key = _unhex(key.decode("latin-1"))
        region = self.cluster.region_by_key(key)
        if region is None:
            return data_body(render.ZERO_REGION)
        return data_body(render.region_json(self.cluster, region, self.cluster.impaired_stores()))

    async def regions_all(self, request: web.Request) -> web.StreamResponse:
        return await self._regions(request, self.cluster.ordered_regions())

    async def _regions(self, request: web.Request, regions: list[Any]) -> web.StreamResponse:
        if len(regions) <= STREAM_ABOVE:
            return data_body(render.regions_json(self.cluster, regions))
        response = web.StreamResponse(headers={"Content-Type": DATA_TYPE})
        await response.prepare(request)
        for piece in render.regions_json_chunks(self.cluster, regions):
            await response.write(piece.encode())
        await response.write_eof()
        return response

    async def regions_count(self, request: web.Request) -> web.Response:
        return json_body({"count": len(self.cluster.regions), "regions": None})

    async def regions_by_key(self, request: web.Request) -> web.StreamResponse:
        key = raw_param(request, "key") or b""
        end_key = raw_param(request, "end_key") or b""
        if request.query.get("format") == "hex":
            key = _unhex(key.decode("latin-1"))
            end_key = _unhex(end_key.decode("latin-1"))
        limit = REGION_LIMIT_DEFAULT
        if "limit" in request.query:
            try:
                limit = pderrors.atoi(request.query["limit"])
            except ValueError as exc:
                raise SimError(400, str(exc)) from None
        limit = min(limit, REGION_LIMIT_MAX)
        regions = self.cluster.regions_from_key(key, end_key, max(limit, 0))
        return await self._regions(request, regions)

    async def regions_by_store(self, request: web.Request) -> web.StreamResponse:
        store_id = path_uint_string(request, "id")
        kind = request.query.get("type", "all") or "all"
        if kind not in ("all", "leader", "follower", "learner", "witness", "pending"):
            raise SimError(400, f"unknown sub tree region type {kind}")
        cluster = self.cluster
        store = cluster.stores.get(store_id)
        ids = sorted(store.peers.items()) if store is not None else []
        regions = [cluster.regions[rid] for rid in ids]
        if kind == "leader":
            regions = [r for r in regions if r.leader_store == store_id]
        elif kind == "follower":
            regions = [
                r
                for r in regions
                if r.leader_store != store_id and (p := r.peer_on(store_id)) and p.role != 1
            ]
        elif kind == "learner":
            regions = [r for r in regions if (p := r.peer_on(store_id)) and p.role == 1]
        elif kind == "witness":
            regions = []
        elif kind == "pending":
            regions = [
                r for r in regions if any(p.store_id == store_id for p in cluster.peer_health(r)[1])
            ]
        return data_body(render.regions_json(cluster, regions))

    async def regions_check(self, request: web.Request) -> web.StreamResponse:
        state = request.match_info["state"]
        if state in ("hist-size", "hist-keys"):
            return self._histogram(request, state)
        regions = self.cluster.check_regions(state)
        if regions is None:
            raise RawError(not_found_text())
        return await self._regions(request, regions)

    def _histogram(self, request: web.Request, state: str) -> web.Response:
        default = 10 if state == "hist-size" else 100_000
        bound = default
        if "bound" in request.query:
            try:
                bound = pderrors.atoi(request.query["bound"])
            except ValueError as exc:
                raise SimError(400, str(exc)) from None
        bound = max(bound, 1)
        counts: dict[int, int] = {}
        for region in self.cluster.regions.values():
            value = region.approximate_size if state == "hist-size" else region.approximate_keys
            start = (value // bound) * bound
            counts[start] = counts.get(start, 0) + 1
        items = [{"start": s, "end": s + bound, "count": n} for s, n in sorted(counts.items())]
        return json_body(items)

    async def stats_region(self, request: web.Request) -> web.Response:
        count_only = "count" in request.query
        start = raw_param(request, "start_key")
        end = raw_param(request, "end_key")
        regions = None
        if start or end:
            regions = self.cluster.regions_from_key(start or b"", end or b"", 1 << 62)
        return json_body(render.region_stats(self.cluster, regions, count_only))

    # ----- hotspots --------------------------------------------------------------------------

    def _hot_stores(self, request: web.Request) -> list[int] | None:
        values = request.query.getall("store_id", [])
        if not values:
            return None
        ids = []
        for value in values:
            try:
                store_id = pderrors.parse_uint(value)
            except ValueError:
                raise SimError(400, f"invalid store id: {value}") from None
            if store_id not in self.cluster.stores:
                raise SimError(500, pderrors.store_not_found(store_id))
            ids.append(store_id)
        return ids

    async def hot_write(self, request: web.Request) -> web.Response:
        return json_body(render.hotspot_json(self.cluster, "write", self._hot_stores(request)))

    async def hot_read(self, request: web.Request) -> web.Response:
        return json_body(render.hotspot_json(self.cluster, "read", self._hot_stores(request)))

    async def hot_stores(self, request: web.Request) -> web.Response:
        return json_body(render.hot_stores_json(self.cluster))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _unhex(text: str) -> bytes:
    try:
        return binascii.unhexlify(text)
    except (binascii.Error, ValueError):
        raise SimError(400, f"encoding/hex: invalid byte in {text!r}") from None
