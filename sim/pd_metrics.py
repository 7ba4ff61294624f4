"""PD's own Prometheus metrics (`/metrics` on the PD port), the few a bot's PromQL uses.

Names and label values are PD's (reference/tikv-metrics.md §2): `pd_cluster_status` with the
per-store `engine`/`store` labels of v8.5.5, `pd_scheduler_store_status`, `pd_regions_status`
(hyphenated types) and `pd_hotspot_status` (series absent when a store has no hot peers).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sim.model import STATE_OFFLINE, STATE_TOMBSTONE, STATE_UP
from sim.render import store_flow
from sim.schedulers import region_score
from sim.tikv_metrics import TextWriter

if TYPE_CHECKING:
    from sim.cluster import Cluster

_REGION_STATES = (
    "miss-peer",
    "extra-peer",
    "down-peer",
    "pending-peer",
    "offline-peer",
    "learner-peer",
    "empty-region",
    "oversized-region",
    "undersized-region",
)


def render_pd_metrics(cluster: Cluster) -> str:
    out = TextWriter()
    now = cluster.now
    out.family("pd_cluster_status", "gauge", "Status of the cluster.")
    for store in sorted(cluster.stores.values(), key=lambda s: s.id):
        labels = (("engine", "tikv"), ("store", str(store.id)))
        name = cluster.state_name(store)
        down = cluster.down_time(store)
        flags = {
            "store_up_count": name == "Up",
            "store_disconnected_count": name == "Disconnected",
            "store_unhealth_count": store.state == STATE_UP and down > 600,
            "store_down_count": name == "Down",
            "store_low_space_count": cluster.is_low_space(store),
            "store_offline_count": store.state == STATE_OFFLINE,
            "store_tombstone_count": store.state == STATE_TOMBSTONE,
        }
        for kind, flag in flags.items():
            out.sample("pd_cluster_status", (*labels, ("type", kind)), 1 if flag else 0)
        for kind, value in (
            ("region_count", store.region_count),
            ("leader_count", store.leader_count),
            ("storage_size", store.used_bytes()),
            ("storage_capacity", store.capacity),
        ):
            out.sample("pd_cluster_status", (*labels, ("type", kind)), value)
    out.family("pd_scheduler_store_status", "gauge", "Store status for schedule")
    for store in sorted(cluster.stores.values(), key=lambda s: s.id):
        if store.state == STATE_TOMBSTONE:
            continue
        labels = (("address", store.address), ("store", str(store.id)))
        write_bytes, write_keys, write_query = store_flow(cluster, store, "write")
        for kind, amount in (
            ("leader_count", store.leader_count),
            ("region_count", store.region_count),
            ("leader_size", store.leader_size),
            ("region_size", store.region_size),
            ("leader_score", store.leader_count / max(store.leader_weight, 1e-6)),
            ("region_score", round(region_score(cluster, store), 3)),
            ("store_available", store.available_bytes(now)),
            ("store_used", store.used_bytes()),
            ("store_capacity", store.capacity),
            ("store_write_rate_bytes", write_bytes),
            ("store_write_rate_keys", write_keys),
            ("store_write_query_rate", write_query),
        ):
            out.sample("pd_scheduler_store_status", (*labels, ("type", kind)), amount)
    out.family("pd_regions_status", "gauge", "Status of the regions.")
    for state in _REGION_STATES:
        kind = f"{state}-count" if state.endswith("-region") else f"{state}-region-count"
        out.sample("pd_regions_status", (("type", kind),), cluster.check_count(state))
    out.family("pd_hotspot_status", "gauge", "Status of the hotspot.")
    for store in sorted(cluster.stores.values(), key=lambda s: s.id):
        labels = (("address", store.address), ("store", str(store.id)))
        for kind in ("write", "read"):
            as_leader = [
                (rid, hot)
                for rid, hot in cluster.hot.items()
                if hot.kind == kind
                and (region := cluster.regions.get(rid)) is not None
                and region.leader_store == store.id
            ]
            if not as_leader:
                continue
            total = sum(hot.bytes_rate for _, hot in as_leader)
            out.sample(
                "pd_hotspot_status",
                (*labels, ("type", f"hot_{kind}_region_as_leader")),
                len(as_leader),
            )
            out.sample(
                "pd_hotspot_status",
                (*labels, ("type", f"total_{kind}_bytes_as_leader")),
                total,
            )
    out.family("etcd_server_is_leader", "gauge", "Whether or not this member is a leader.")
    out.sample("etcd_server_is_leader", (), 1)
    return out.text()
