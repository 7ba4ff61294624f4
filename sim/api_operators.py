"""PD HTTP endpoints that change scheduling: operators, schedulers and scheduler configs.

Validation order, status codes and texts follow PD v8.5.5 `HandleOperatorCreation`, the scheduler
handlers and the evict-leader config handler (reference/pd-api.md §1-§2, pd-errors.json).
"""

from __future__ import annotations

import binascii
from collections.abc import Callable
from typing import Any

from aiohttp import web

from sim import builders, pderrors
from sim.api_cluster import PREFIX, path_uint_string, read_object
from sim.builders import BuildError
from sim.cluster import UNHEALTHY_SECONDS, Cluster
from sim.gojson import encode_indent, go_kind
from sim.gotext import format_rfc3339
from sim.model import LEARNER, STATE_TOMBSTONE, VOTER, Region
from sim.operators import ADMIN, LEADER, REGION, Operator
from sim.pderrors import SimError
from sim.responses import ErrcodeError, RawError, json_body, not_found_text
from sim.schedulers import EVICT_LEADER, GRANT_LEADER, SCHEDULER_TYPES, LeaderStoresScheduler

SPLIT_POLICIES = ("SCAN", "APPROXIMATE", "USEKEY")


def _number(value: Any) -> int | None:
    """A JSON number as Go's `input[key].(float64)` then uint64() sees it; None if not one."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


class OperatorApi:
    def __init__(self, cluster: Cluster, mono_base: Callable[[], float]) -> None:
        self.cluster = cluster
        self.mono_base = mono_base

    def routes(self) -> list[web.RouteDef]:
        p = PREFIX
        return [
            web.get(f"{p}/operators", self.list_operators),
            web.post(f"{p}/operators", self.create_operator),
            web.delete(f"{p}/operators", self.cancel_all),
            web.get(f"{p}/operators/records", self.records),
            web.get(f"{p}/operators/{{region_id}}", self.operator_status),
            web.delete(f"{p}/operators/{{region_id}}", self.cancel_operator),
            web.get(f"{p}/schedulers", self.list_schedulers),
            web.post(f"{p}/schedulers", self.create_scheduler),
            web.delete(f"{p}/schedulers/{{name}}", self.delete_scheduler),
            web.post(f"{p}/schedulers/{{name}}", self.pause_scheduler),
            web.get(f"{p}/scheduler-config/{{name}}/list", self.scheduler_config_list),
            web.post(f"{p}/scheduler-config/{{name}}/config", self.scheduler_config_update),
            web.delete(
                f"{p}/scheduler-config/{{name}}/delete/{{store_id}}", self.scheduler_config_delete
            ),
        ]

    # ----- operators: reading ----------------------------------------------------------------

    async def list_operators(self, request: web.Request) -> web.Response:
        controller = self.cluster.operators
        kinds = request.query.getall("kind", [])
        ops: list[Operator] | None
        if not kinds:
            ops = controller.operators()
        else:
            found: list[Operator] = []
            for kind in kinds:
                mask = {"admin": ADMIN, "leader": LEADER, "region": REGION}.get(kind)
                if mask is not None:
                    found += controller.of_kind(mask)
            ops = found or None
        if ops is None:
            return json_body(None)
        if "object" in request.query:
            return json_body([op.to_object() for op in ops])
        base = self.mono_base()
        return json_body([op.to_string(base) for op in ops])

    async def operator_status(self, request: web.Request) -> web.Response:
        region_id = path_uint_string(request, "region_id")
        op = self.cluster.operators.status_of(region_id)
        if op is None:
            raise SimError(500, pderrors.OPERATOR_NOT_FOUND)
        return json_body(op.status_string(self.mono_base()))

    async def cancel_operator(self, request: web.Request) -> web.Response:
        region_id = path_uint_string(request, "region_id")
        if not self.cluster.operators.cancel(region_id):
            raise SimError(500, pderrors.OPERATOR_NOT_FOUND)
        return json_body("The pending operator is canceled.")

    async def cancel_all(self, request: web.Request) -> web.Response:
        self.cluster.operators.cancel_all()
        return json_body("All pending operators are canceled.")

    async def records(self, request: web.Request) -> web.Response:
        since = 0.0
        if "from" in request.query:
            text = request.query["from"]
            try:
                since = float(pderrors.atoi(text))
            except ValueError:
                raise SimError(400, f'strconv.ParseInt: parsing "{text}": invalid syntax') from None
        records = self.cluster.operators.records_since(since)
        if not records:
            raise SimError(500, pderrors.OPERATOR_NOT_FOUND)
        base = self.mono_base()
        return json_body([op.record_string(base) for op in records])

    # ----- operators: creating ---------------------------------------------------------------

    def _region(self, region_id: int) -> Region:
        region = self.cluster.regions.get(region_id)
        if region is None:
            raise SimError(500, pderrors.region_not_found(region_id))
        return region

    def _check_store_state(self, store_id: int) -> None:
        cluster = self.cluster
        store = cluster.stores.get(store_id)
        if store is None:
            raise SimError(500, pderrors.store_not_found(store_id))
        if store.state == STATE_TOMBSTONE:
            raise SimError(500, pderrors.store_removed(store_id))
        if cluster.down_time(store) > UNHEALTHY_SECONDS:
            raise SimError(500, pderrors.store_unhealthy(store_id))

    def _add(self, *ops: Operator) -> None:
        if not self.cluster.operators.add(*ops):
            raise SimError(500, pderrors.ADD_OPERATOR)

    def _build(self, build: Callable[[], Operator]) -> Operator:
        try:
            op = build()
        except BuildError as exc:
            raise SimError(500, str(exc)) from None
        op.priority = 3  # admin operators are Urgent
        return op

    async def create_operator(self, request: web.Request) -> web.Response:
        body = await read_object(request)
        name = body.get("name")
        if not isinstance(name, str):
            raise SimError(400, "missing operator name")
        handler = {
            "transfer-leader": self._transfer_leader,
            "transfer-region": self._transfer_region,
            "transfer-peer": self._transfer_peer,
            "add-peer": self._add_peer,
            "add-learner": self._add_learner,
            "remove-peer": self._remove_peer,
            "merge-region": self._merge_region,
            "split-region": self._split_region,
            "scatter-region": self._scatter_region,
            "scatter-regions": self._scatter_regions,
        }.get(name)
        if handler is None:
            raise SimError(400, "unknown operator")
        result = handler(body)
        if result is not None:
            return json_body(result)
        return json_body("The operator is created.")

    def _region_id(self, body: dict[str, Any], key: str = "region_id") -> int:
        region_id = _number(body.get(key))
        if region_id is None:
            raise SimError(400, "missing region id")
        return region_id

    def _transfer_leader(self, body: dict[str, Any]) -> None:
        region_id = self._region_id(body)
        to_store = _number(body.get("to_store_id"))
        if to_store is None:
            raise SimError(400, "missing store id to transfer leader to")
        region = self._region(region_id)
        if region.voter_on(to_store) is None:
            raise SimError(500, f"region has no voter in store {to_store}")
        cluster = self.cluster
        self._add(
            self._build(
                lambda: builders.transfer_leader(
                    cluster, "admin-transfer-leader", region, to_store, ADMIN
                )
            )
        )

    def _transfer_region(self, body: dict[str, Any]) -> None:
        region_id = self._region_id(body)
        ids = body.get("to_store_ids")
        if not isinstance(ids, list) or any(_number(i) is None for i in ids):
            raise SimError(400, "invalid store ids to transfer region to")
        store_ids = [int(i) for i in ids]
        roles_raw = body.get("peer_roles")
        roles: dict[int, str] = dict.fromkeys(store_ids, "")
        if isinstance(roles_raw, list) and len(roles_raw) == len(store_ids):
            for sid, role in zip(store_ids, roles_raw, strict=True):
                if isinstance(role, str):
                    roles[sid] = role
        if not roles:
            raise SimError(400, "missing store ids to transfer region to")
        region = self._region(region_id)
        if self.cluster.replication["enable-placement-rules"] and any(
            not r for r in roles.values()
        ):
            raise SimError(
                500,
                "transfer region without peer role is not supported when placement rules enabled",
            )
        for sid in roles:
            self._check_store_state(sid)
        wanted = {sid: LEARNER if r == "learner" else VOTER for sid, r in roles.items()}
        leader = next((sid for sid, r in roles.items() if r == "leader"), 0)
        current = set(region.store_ids())
        add = {sid: role for sid, role in wanted.items() if sid not in current}
        remove = [sid for sid in current if sid not in wanted]
        kept = {sid: role for sid, role in wanted.items() if sid in current}
        if not leader and roles.get(region.leader_store) == "follower":
            leader = next(
                (sid for sid, r in roles.items() if r in ("voter", "") and wanted[sid] == VOTER), 0
            )
        cluster = self.cluster
        self._add(
            self._build(
                lambda: builders.change_peers(
                    cluster,
                    "admin-move-region",
                    region,
                    ADMIN,
                    add=add,
                    remove=remove,
                    roles=kept,
                    leader=leader,
                )
            )
        )

    def _transfer_peer(self, body: dict[str, Any]) -> None:
        region_id = self._region_id(body)
        from_store = _number(body.get("from_store_id"))
        if from_store is None:
            raise SimError(400, "invalid store id to transfer peer from")
        to_store = _number(body.get("to_store_id"))
        if to_store is None:
            raise SimError(400, "invalid store id to transfer peer to")
        region = self._region(region_id)
        old = region.peer_on(from_store)
        if old is None:
            raise SimError(500, f"region has no peer in store {from_store}")
        self._check_store_state(to_store)
        cluster = self.cluster
        role = LEARNER if old.role == LEARNER else VOTER
        if from_store == to_store:
            raise SimError(500, pderrors.NO_OPERATOR_STEP)
        self._add(
            self._build(
                lambda: builders.change_peers(
                    cluster,
                    "admin-move-peer",
                    region,
                    ADMIN,
                    add={to_store: role},
                    remove=[from_store],
                )
            )
        )

    def _store_id(self, body: dict[str, Any]) -> int:
        store_id = _number(body.get("store_id"))
        if store_id is None:
            raise SimError(400, "invalid store id to transfer peer to")
        return store_id

    def _add_peer(self, body: dict[str, Any], learner: bool = False) -> None:
        region_id = self._region_id(body)
        store_id = self._store_id(body)
        region = self._region(region_id)
        if region.peer_on(store_id) is not None:
            raise SimError(500, f"region already has peer in store {store_id}")
        self._check_store_state(store_id)
        cluster = self.cluster
        desc = "admin-add-learner" if learner else "admin-add-peer"
        role = LEARNER if learner else VOTER
        self._add(
            self._build(
                lambda: builders.change_peers(cluster, desc, region, ADMIN, add={store_id: role})
            )
        )

    def _add_learner(self, body: dict[str, Any]) -> None:
        self._add_peer(body, learner=True)

    def _remove_peer(self, body: dict[str, Any]) -> None:
        region_id = self._region_id(body)
        store_id = self._store_id(body)
        region = self._region(region_id)
        if region.peer_on(store_id) is None:
            raise SimError(500, f"region has no peer in store {store_id}")
        cluster = self.cluster
        self._add(
            self._build(
                lambda: builders.change_peers(
                    cluster, "admin-remove-peer", region, ADMIN, remove=[store_id]
                )
            )
        )

    def _merge_region(self, body: dict[str, Any]) -> None:
        source_id = self._region_id(body, "source_region_id")
        target_id = _number(body.get("target_region_id"))
        if target_id is None:
            raise SimError(400, "invalid target region id to merge to")
        source = self._region(source_id)
        target = self._region(target_id)
        for region in (source, target):
            if not self._healthy_and_replicated(region):
                raise SimError(500, pderrors.region_abnormal_peer(region.id))
        adjacent = (source.start_key == target.end_key and source.start_key) or (
            source.end_key == target.start_key and source.end_key
        )
        if not adjacent:
            raise SimError(500, pderrors.REGION_NOT_ADJACENT)
        active, passive = builders.merge("admin-merge-region", source, target, ADMIN)
        active.priority = passive.priority = 3
        self._add(active, passive)

    def _healthy_and_replicated(self, region: Region) -> bool:
        cluster = self.cluster
        if cluster.unhealthy_peer_stores(region):
            return False
        voters = [p for p in region.peers if p.role == VOTER]
        return len(voters) == cluster.replication.max_replicas and len(voters) == len(region.peers)

    def _split_region(self, body: dict[str, Any]) -> None:
        region_id = self._region_id(body)
        policy = body.get("policy")
        if not isinstance(policy, str):
            raise SimError(400, "missing split policy")
        keys: list[str] = []
        if "keys" in body:
            raw_keys = body["keys"]
            if not isinstance(raw_keys, list) or not all(isinstance(k, str) for k in raw_keys):
                raise SimError(400, "bad format keys")
            keys = list(raw_keys)
        region = self._region(region_id)
        upper = policy.upper()
        if upper not in SPLIT_POLICIES:
            raise SimError(500, f"check policy {policy} is not supported")
        split_keys: list[bytes] = []
        if upper == "USEKEY":
            for key in keys:
                try:
                    split_keys.append(binascii.unhexlify(key))
                except (binascii.Error, ValueError):
                    raise SimError(500, f"split key {key} is not in hex format") from None
        if region.in_joint_state():
            raise SimError(500, "cannot split region which is in joint state")
        op = builders.split("admin-split-region", region, ADMIN, upper, split_keys)
        op.priority = 3
        self._add(op)

    def _scatter_region(self, body: dict[str, Any]) -> None:
        region_id = self._region_id(body)
        self._region(region_id)
        if region_id in self.cluster.hot:
            raise SimError(500, f"region {region_id} is a hot region")

    def _scatter_regions(self, body: dict[str, Any]) -> dict[str, Any]:
        ids = body.get("region_ids")
        if not isinstance(ids, list) or any(_number(i) is None for i in ids):
            raise SimError(400, "region_ids is invalid")
        found = sum(1 for i in ids if int(i) in self.cluster.regions)
        failures = len(ids) - found
        percentage = 100 if not failures else 100 - 100 * failures // (found + failures)
        return {"processed-percentage": percentage, "error": ""}

    # ----- schedulers ------------------------------------------------------------------------

    async def list_schedulers(self, request: web.Request) -> web.Response:
        status = request.query.get("status", "")
        controller = self.cluster.schedulers
        names = controller.names(status if status in ("paused", "disabled") else "")
        if status == "paused" and "timestamp" in request.query:
            return json_body(
                [
                    {
                        "name": name,
                        "paused_at": format_rfc3339(
                            float(int(controller.schedulers[name].paused_at))
                        ),
                        "resume_at": format_rfc3339(
                            float(int(controller.schedulers[name].paused_until))
                        ),
                    }
                    for name in names
                ]
            )
        return json_body(names)

    async def create_scheduler(self, request: web.Request) -> web.Response:
        body = await read_object(request)
        name = body.get("name")
        if not isinstance(name, str):
            raise SimError(400, "missing scheduler name")
        if name not in SCHEDULER_TYPES:
            raise SimError(400, "unknown scheduler")
        controller = self.cluster.schedulers
        if name in (EVICT_LEADER, GRANT_LEADER):
            store_id = _number(body.get("store_id"))
            if store_id is None:
                raise SimError(400, "missing store id")
            if controller.get(name) is not None:
                try:
                    controller.add_leader_store(name, store_id)
                except SimError as exc:
                    # PD forwards to scheduler-config/<name>/config and wraps the inner body
                    raise SimError(500, encode_indent(exc.message)) from None
                return json_body("The scheduler has been applied to the store.")
            controller.add_leader_store(name, store_id)
            return json_body("The scheduler is created.")
        controller.create(name)
        return json_body("The scheduler is created.")

    async def delete_scheduler(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        controller = self.cluster.schedulers
        for base in (EVICT_LEADER, GRANT_LEADER):
            if name.startswith(base) and name != base:
                suffix = name.rsplit("-", 1)[-1]
                try:
                    store_id = pderrors.parse_uint(suffix)
                except ValueError:
                    raise RawError(json_body(None, 400)) from None
                try:
                    controller.remove_leader_store(base, store_id)
                except SimError as exc:
                    raise RawError(json_body(None, exc.status)) from None
                return json_body(None)
        controller.remove(name)
        return json_body("The scheduler is removed.")

    async def pause_scheduler(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = await read_object(request)
        if "delay" not in body:
            raise SimError(400, "missing pause time")
        delay = body["delay"]
        if isinstance(delay, bool) or not isinstance(delay, int):
            kind = go_kind(delay)
            shown = f"number {delay}" if kind == "number" else kind
            msg = f"json: cannot unmarshal {shown} into Go value of type int"
            data = {"Value": shown, "Type": {}, "Offset": 0, "Struct": "", "Field": ""}
            raise ErrcodeError(400, "input", msg, data)
        self.cluster.schedulers.pause(name, delay)
        return json_body("Pause or resume the scheduler successfully.")

    def _config_scheduler(self, request: web.Request) -> Any:
        scheduler = self.cluster.schedulers.get(request.match_info["name"])
        if scheduler is None or scheduler.config_json() is None:
            raise RawError(not_found_text())
        return scheduler

    async def scheduler_config_list(self, request: web.Request) -> web.Response:
        scheduler = self._config_scheduler(request)
        return json_body(scheduler.config_json())

    async def scheduler_config_update(self, request: web.Request) -> web.Response:
        scheduler = self._config_scheduler(request)
        if not isinstance(scheduler, LeaderStoresScheduler):
            raise RawError(not_found_text())
        body = await read_object(request)
        store_id = _number(body.get("store_id"))
        batch = _number(body.get("batch")) if scheduler.name == EVICT_LEADER else None
        if batch is not None and not 1 <= body["batch"] <= 10:
            raise SimError(400, "batch is invalid, it should be in [1, 10]")
        if store_id is not None:
            self.cluster.schedulers.add_leader_store(scheduler.name, store_id)
        if batch is not None:
            scheduler.batch = batch
        return json_body("The scheduler has been applied to the store.")

    async def scheduler_config_delete(self, request: web.Request) -> web.Response:
        scheduler = self._config_scheduler(request)
        store_id = path_uint_string(request, "store_id")
        last = self.cluster.schedulers.remove_leader_store(scheduler.name, store_id)
        return json_body("The last store has been deleted" if last else None)
