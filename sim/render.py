"""PD's JSON shapes for the simulated cluster: stores, regions, hotspots, statistics, members.

Field order, omitted zero values and value types follow the Go structs of PD v8.5.5 (see
reference/pd-api.md §3-§5). Region bodies are compact strings built by hand (easyjson output);
the static part of each region is cached on the region until it changes, so large region lists
and `/region/id/{id}` stay fast at 200,000 regions.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from sim.gojson import GoMap
from sim.gotext import format_byte_size, format_duration, format_rfc3339
from sim.model import ROLE_NAMES, STATE_UP, VOTER, Peer, Region, Store
from sim.schedulers import region_score

if TYPE_CHECKING:
    from sim.cluster import Cluster

_TEXT_CACHE: dict[tuple[str, float], str] = {}


def _cached(kind: str, value: float) -> str:
    """Time and duration texts repeat for every store on every poll: format each once."""
    key = (kind, value)
    text = _TEXT_CACHE.get(key)
    if text is None:
        if len(_TEXT_CACHE) > 8192:
            _TEXT_CACHE.clear()
        text = format_rfc3339(value) if kind == "time" else format_duration(value)
        _TEXT_CACHE[key] = text
    return text


ZERO_REGION = (
    '{"id":0,"start_key":"","end_key":"","leader":{"role_name":""},"cpu_usage":0,'
    '"written_bytes":0,"read_bytes":0,"written_keys":0,"read_keys":0,"approximate_size":0,'
    '"approximate_keys":0}'
)


# ----- stores --------------------------------------------------------------------------------


def store_json(cluster: Cluster, store: Store) -> dict[str, Any]:
    """PD's StoreInfo {"store": MetaStore, "status": StoreStatus}."""
    now = cluster.now
    meta: dict[str, Any] = {"id": store.id, "address": store.address}
    if store.state:
        meta["state"] = store.state
    if store.labels:
        meta["labels"] = [{"key": k, "value": v} for k, v in store.labels]
    meta["version"] = store.version
    meta["status_address"] = store.status_address
    meta["git_hash"] = store.git_hash
    meta["start_timestamp"] = int(store.start_timestamp)
    meta["deploy_path"] = store.deploy_path
    last_heartbeat = store.last_heartbeat(now)
    meta["last_heartbeat"] = round(last_heartbeat * 1e9)
    if store.physically_destroyed:
        meta["physically_destroyed"] = True
    if store.node_state:
        meta["node_state"] = store.node_state
    meta["state_name"] = cluster.state_name(store)

    by_size = cluster.schedule["leader-schedule-policy"] == "size"
    leader_base = store.leader_size if by_size else store.leader_count
    status: dict[str, Any] = {
        "capacity": format_byte_size(store.capacity),
        "available": format_byte_size(store.available_bytes(now)),
        "used_size": format_byte_size(store.used_bytes()),
        "leader_count": store.leader_count,
        "leader_weight": store.leader_weight,
        "leader_score": leader_base / max(store.leader_weight, 1e-6),
        "leader_size": store.leader_size,
        "region_count": store.region_count,
        "region_weight": store.region_weight,
        "region_score": region_score(cluster, store),
        "region_size": store.region_size,
    }
    if store.learner_count:
        status["learner_count"] = store.learner_count
    pending = cluster.pending_peer_count(store)
    if pending:
        status["pending_peer_count"] = pending
    status["slow_score"] = max(1, min(99, int(1 + max(0.0, store.write_p99_ms - 20.0) / 5.0)))
    if store.running or store.stopped_at:
        queue_us = 500.0 + store.write_p99_ms * 100.0
        qps = 2.0 + store.leader_count * 0.75 if store.running else 0.0
        status["slow_trend"] = {
            "cause_value": queue_us,
            "cause_rate": 0,
            "result_value": qps,
            "result_rate": 0,
        }
    if store.busy:
        status["is_busy"] = True
    status["start_ts"] = _cached("time", store.start_timestamp)
    status["last_heartbeat_ts"] = _cached("time", last_heartbeat)
    uptime = last_heartbeat - store.start_timestamp
    if uptime > 0:
        status["uptime"] = _cached("duration", uptime)
    return {"store": meta, "status": status}


# ----- regions -------------------------------------------------------------------------------


def _peer(peer: Peer) -> str:
    role = peer.role
    if role == VOTER:
        return f'{{"role_name":"Voter","id":{peer.id},"store_id":{peer.store_id}}}'
    learner = ',"is_learner":true' if role == 1 else ""
    return (
        f'{{"role_name":"{ROLE_NAMES[role]}"{learner},"id":{peer.id},'
        f'"store_id":{peer.store_id},"role":{role}}}'
    )


def _head(region: Region) -> str:
    epoch_parts = []
    if region.conf_ver:
        epoch_parts.append(f'"conf_ver":{region.conf_ver}')
    if region.version:
        epoch_parts.append(f'"version":{region.version}')
    peers = ",".join(_peer(p) for p in region.peers)
    leader = region.leader
    leader_text = _peer(leader) if leader is not None else '{"role_name":""}'
    peers_text = f',"peers":[{peers}]' if region.peers else ""
    return (
        f'{{"id":{region.id},"start_key":"{region.start_key.hex().upper()}",'
        f'"end_key":"{region.end_key.hex().upper()}","epoch":{{{",".join(epoch_parts)}}}'
        f'{peers_text},"leader":{leader_text}'
    )


def _tail(region: Region) -> str:
    return (
        f',"cpu_usage":{region.cpu_usage},"written_bytes":{region.written_bytes},'
        f'"read_bytes":{region.read_bytes},"written_keys":{region.written_keys},'
        f'"read_keys":{region.read_keys},"approximate_size":{region.approximate_size},'
        f'"approximate_keys":{region.approximate_keys}}}'
    )


def region_json(cluster: Cluster, region: Region, impaired: frozenset[int]) -> str:
    """Compact RegionInfo (easyjson) of one region."""
    head = region.json_head
    if head is None:
        head = region.json_head = _head(region)
        region.json_tail = _tail(region)
    tail = region.json_tail or _tail(region)
    if not impaired and not region.learning:
        return head + tail
    down, pending = cluster.peer_health(region, impaired)
    middle = ""
    if down:
        items = ",".join(
            f'{{"peer":{_peer(p)},"down_seconds":{secs}}}' if secs else f'{{"peer":{_peer(p)}}}'
            for p, secs in down
        )
        middle += f',"down_peers":[{items}]'
    if pending:
        middle += f',"pending_peers":[{",".join(_peer(p) for p in pending)}]'
    return head + middle + tail


def regions_json(cluster: Cluster, regions: list[Region]) -> str:
    """Compact RegionsInfo {"count": N, "regions": [...]}."""
    return "".join(regions_json_chunks(cluster, regions))


def regions_json_chunks(
    cluster: Cluster, regions: list[Region], chunk: int = 2000
) -> Iterator[str]:
    """RegionsInfo in pieces, so a 200,000-region answer is never one 100 MB string."""
    impaired = cluster.impaired_stores()
    yield f'{{"count":{len(regions)},"regions":['
    for start in range(0, len(regions), chunk):
        part = ",".join(region_json(cluster, r, impaired) for r in regions[start : start + chunk])
        yield ("," + part) if start else part
    yield "]}"


# ----- statistics ----------------------------------------------------------------------------


def region_stats(
    cluster: Cluster, regions: list[Region] | None, count_only: bool
) -> dict[str, Any]:
    """statistics.RegionStats for all regions (None) or a key range."""
    count = len(cluster.regions) if regions is None else len(regions)
    out: dict[str, Any] = {
        "count": count,
        "empty_count": 0,
        "storage_size": 0,
        "user_storage_size": 0,
        "storage_keys": 0,
        "store_leader_count": None,
        "store_peer_count": None,
        "store_leader_size": None,
        "store_leader_keys": None,
        "store_peer_size": None,
        "store_peer_keys": None,
    }
    if count_only:
        return out
    leader_count: GoMap = GoMap()
    peer_count: GoMap = GoMap()
    leader_size: GoMap = GoMap()
    leader_keys: GoMap = GoMap()
    peer_size: GoMap = GoMap()
    peer_keys: GoMap = GoMap()
    empty = size_total = keys_total = 0
    if regions is None:
        for store in cluster.stores.values():
            key = str(store.id)
            if store.leader_count:
                leader_count[key] = store.leader_count
                leader_size[key] = store.leader_size
                leader_keys[key] = store.leader_keys
            if store.region_count:
                peer_count[key] = store.region_count
                peer_size[key] = store.region_size
                peer_keys[key] = store.region_keys
        empty = cluster.check_count("empty-region")
        for region in cluster.regions.values():
            size_total += region.approximate_size
            keys_total += region.approximate_keys
    else:
        for region in regions:
            size_total += region.approximate_size
            keys_total += region.approximate_keys
            empty += region.approximate_size <= 1
            for peer in region.peers:
                key = str(peer.store_id)
                peer_count[key] = peer_count.get(key, 0) + 1
                peer_size[key] = peer_size.get(key, 0) + region.approximate_size
                peer_keys[key] = peer_keys.get(key, 0) + region.approximate_keys
            if region.leader_store:
                key = str(region.leader_store)
                leader_count[key] = leader_count.get(key, 0) + 1
                leader_size[key] = leader_size.get(key, 0) + region.approximate_size
                leader_keys[key] = leader_keys.get(key, 0) + region.approximate_keys
    out.update(
        {
            "empty_count": empty,
            "storage_size": size_total,
            "storage_keys": keys_total,
            "store_leader_count": leader_count,
            "store_peer_count": peer_count,
            "store_leader_size": leader_size,
            "store_leader_keys": leader_keys,
            "store_peer_size": peer_size,
            "store_peer_keys": peer_keys,
        }
    )
    return out


# ----- hotspots ------------------------------------------------------------------------------


def store_flow(cluster: Cluster, store: Store, kind: str) -> tuple[float, float, float]:
    """A store's own (bytes, keys, query) per second for writes or reads, hot regions included."""
    if not store.running:
        return 0.0, 0.0, 0.0
    per_leader = 1024.0 if kind == "write" else 4096.0
    bytes_rate = 65536.0 + store.leader_count * per_leader
    for rid, hot in cluster.hot.items():
        region = cluster.regions.get(rid)
        if region is None or hot.kind != kind:
            continue
        if region.leader_store == store.id or (kind == "write" and region.peer_on(store.id)):
            bytes_rate += hot.bytes_rate
    return round(bytes_rate, 2), round(bytes_rate / 256, 2), round(bytes_rate / 1024, 2)


def hotspot_json(cluster: Cluster, kind: str, store_ids: list[int] | None) -> dict[str, Any]:
    """statistics.StoreHotPeersInfos for write or read."""
    chosen = [
        s
        for s in cluster.stores.values()
        if s.state == STATE_UP and (store_ids is None or s.id in store_ids)
    ]
    as_peer: GoMap = GoMap()
    as_leader: GoMap = GoMap()
    for store in chosen:
        store_bytes, store_keys, store_query = store_flow(cluster, store, kind)
        for bucket, leader_only in ((as_peer, False), (as_leader, True)):
            stats: list[dict[str, Any]] = []
            for rid, hot in sorted(cluster.hot.items()):
                region = cluster.regions.get(rid)
                if region is None or hot.kind != kind:
                    continue
                is_leader = region.leader_store == store.id
                on_store = region.peer_on(store.id) is not None
                if (leader_only and not is_leader) or not on_store:
                    continue
                if kind == "read" and not is_leader:
                    continue
                peer = region.peer_on(store.id)
                stats.append(
                    {
                        "store_id": store.id,
                        "stores": region.store_ids(),
                        "is_leader": is_leader,
                        "is_learner": peer is not None and peer.role == 1,
                        "region_id": rid,
                        "hot_degree": 3 + int((cluster.now - hot.since) // 60),
                        "flow_bytes": hot.bytes_rate,
                        "flow_keys": hot.keys_rate,
                        "flow_query": hot.query_rate,
                        "anti_count": 2,
                        "last_update_time": format_rfc3339(
                            cluster.now - ((cluster.now - hot.since) % 60)
                        ),
                    }
                )
            bucket[str(store.id)] = {
                "store_bytes": store_bytes,
                "store_keys": store_keys,
                "store_query": store_query,
                "total_flow_bytes": sum(s["flow_bytes"] for s in stats),
                "total_flow_keys": sum(s["flow_keys"] for s in stats),
                "total_flow_query": sum(s["flow_query"] for s in stats),
                "regions_count": len(stats),
                "statistics": stats,
            }
    return {"as_peer": as_peer, "as_leader": as_leader}


def hot_stores_json(cluster: Cluster) -> dict[str, Any]:
    out: dict[str, Any] = {}
    names = (
        ("bytes-write-rate", "write", 0),
        ("bytes-read-rate", "read", 0),
        ("keys-write-rate", "write", 1),
        ("keys-read-rate", "read", 1),
        ("query-write-rate", "write", 2),
        ("query-read-rate", "read", 2),
    )
    for name, kind, index in names:
        values = GoMap()
        for store in cluster.stores.values():
            if store.state == STATE_UP:
                values[str(store.id)] = store_flow(cluster, store, kind)[index]
        if values:
            out[name] = values
    return out


# ----- members and status --------------------------------------------------------------------

PD_GIT_HASH = "5a1e7c0d9b3f48e2a6c4d1f0e9b8a7c6d5e4f3a2"
PD_VERSION = "v8.5.5"


def member_json(cluster: Cluster, pd_url: str) -> dict[str, Any]:
    return {
        "name": "pd-1",
        "member_id": cluster.member_id,
        "peer_urls": ["http://127.0.0.1:2380"],
        "client_urls": [pd_url],
        "deploy_path": "/home/tidb/.tiup/components/pd/v8.5.5",
        "binary_version": PD_VERSION,
        "git_hash": PD_GIT_HASH,
    }


def members_json(cluster: Cluster, pd_url: str) -> dict[str, Any]:
    member = member_json(cluster, pd_url)
    return {
        "header": {"cluster_id": cluster.cluster_id},
        "members": [member],
        "leader": member,
        "etcd_leader": member,
    }


def health_json(cluster: Cluster, pd_url: str) -> list[dict[str, Any]]:
    return [
        {"name": "pd-1", "member_id": cluster.member_id, "client_urls": [pd_url], "health": True}
    ]
