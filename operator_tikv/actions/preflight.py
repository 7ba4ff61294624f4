"""Reusable preflight checks: pure functions from observed cluster state to a `Check`.

Each check has a stable name and, on failure, a sentence naming what was observed and why the
action needs something else ("store 5 is Disconnected (last heartbeat 47 s ago);
transfer-leader needs an Up target"). Actions read the state (`operator_tikv.actions.state`)
and combine these checks; nothing here talks to PD.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from operator_tikv.actions.base import Check, PreflightContext, RegionState
from operator_tikv.actions.state import OperatorView, StoreView


def passed(name: str, observed: str, message: str | None = None) -> Check:
    return Check(name=name, ok=True, observed=observed, message=message or observed)


def failed(name: str, observed: str, message: str) -> Check:
    return Check(name=name, ok=False, observed=observed, message=message)


def region_exists(region_id: int, region: RegionState | None) -> Check:
    if region is None:
        return failed(
            "region-exists",
            f"PD does not know region {region_id}",
            f"region {region_id} does not exist (it may have been merged or split); "
            "look the region up again",
        )
    leader = f"leader on store {region.leader_store_id}" if region.leader_store_id else "no leader"
    stores = ", ".join(str(s) for s in region.peer_store_ids) or "none"
    return passed("region-exists", f"region {region_id}: peers on stores {stores}, {leader}")


def no_running_operator(region_id: int, operator: OperatorView | None) -> Check:
    if operator is not None and operator.running:
        return failed(
            "no-running-operator",
            f"{operator.desc} running on region {region_id} ({operator.brief})",
            f"operator {operator.desc} ({operator.brief}) is already running on region "
            f"{region_id}; wait for it to finish or cancel it",
        )
    return passed("no-running-operator", f"no operator running on region {region_id}")


def store_exists(store_id: int, stores: Mapping[int, StoreView], role: str = "") -> Check:
    name = f"{role}-store-exists" if role else "store-exists"
    if store_id not in stores:
        known = ", ".join(str(s) for s in sorted(stores)) or "none"
        return failed(
            name,
            f"PD does not know store {store_id}",
            f"store {store_id} does not exist (known stores: {known})",
        )
    return passed(name, f"store {store_id} exists ({stores[store_id].state_name})")


def store_up(store: StoreView, action: str, ctx: PreflightContext, role: str = "") -> Check:
    """The store must be Up: not Disconnected, Down, Offline or Tombstone."""
    name = f"{role}-store-up" if role else "store-up"
    observed = store.state_text(ctx.now)
    if store.state_name != "Up":
        needs = f"an Up {role}" if role else "an Up store"
        return failed(name, observed, f"{observed}; {action} needs {needs}")
    return passed(name, observed)


def not_evicted(store_id: int, evicted: Collection[int], action: str, role: str = "") -> Check:
    name = f"{role}-not-evicted" if role else "not-evicted"
    if store_id in evicted:
        return failed(
            name,
            f"store {store_id} is under evict-leader-scheduler",
            f"store {store_id} is drained (under evict-leader-scheduler), so PD refuses it as "
            f"a leader target; undrain it first or pick another store for {action}",
        )
    return passed(name, f"store {store_id} is not under evict-leader-scheduler")


def holds_healthy_voter(region: RegionState, store_id: int) -> Check:
    """transfer-leader's target must hold a voter of the region that is neither down nor
    pending."""
    name = "target-holds-healthy-voter"
    if store_id not in region.voter_store_ids:
        where = ", ".join(str(s) for s in region.voter_store_ids) or "none"
        return failed(
            name,
            f"region {region.id} has no voter on store {store_id} (voters on {where})",
            f"store {store_id} holds no voter of region {region.id} (voters on stores "
            f"{where}); a leader can only move to a store that holds a voter",
        )
    if store_id in region.down_store_ids or store_id in region.pending_store_ids:
        state = "down" if store_id in region.down_store_ids else "pending"
        return failed(
            name,
            f"the peer of region {region.id} on store {store_id} is {state}",
            f"the peer of region {region.id} on store {store_id} is {state}; "
            "a leader can only move to a healthy voter",
        )
    return passed(name, f"store {store_id} holds a healthy voter of region {region.id}")


def not_leader_already(region: RegionState, store_id: int) -> Check:
    if region.leader_store_id == store_id:
        return failed(
            "leader-elsewhere",
            f"store {store_id} already holds the leader of region {region.id}",
            f"store {store_id} already holds the leader of region {region.id}; nothing to do",
        )
    return passed(
        "leader-elsewhere", f"leader of region {region.id} is on store {region.leader_store_id}"
    )


def source_holds_peer(region: RegionState, store_id: int) -> Check:
    if store_id not in region.peer_store_ids:
        where = ", ".join(str(s) for s in region.peer_store_ids) or "none"
        return failed(
            "source-holds-peer",
            f"region {region.id} has no peer on store {store_id} (peers on {where})",
            f"region {region.id} has no peer on store {store_id} to move (peers on stores {where})",
        )
    return passed("source-holds-peer", f"region {region.id} has a peer on store {store_id}")


def target_has_no_peer(region: RegionState, store_id: int) -> Check:
    if store_id in region.peer_store_ids:
        return failed(
            "target-has-no-peer",
            f"region {region.id} already has a peer on store {store_id}",
            f"region {region.id} already has a peer on store {store_id}; pick a store without one",
        )
    return passed("target-has-no-peer", f"region {region.id} has no peer on store {store_id}")


def quorum_safe(region: RegionState, from_store_id: int) -> Check:
    """Moving a peer removes it once the new one is up; never take a healthy peer away from a
    region that already has a down or pending peer (another failure would lose quorum)."""
    unhealthy = sorted(set(region.down_store_ids) | set(region.pending_store_ids))
    moving_unhealthy = from_store_id in unhealthy
    if unhealthy and not moving_unhealthy:
        where = ", ".join(str(s) for s in unhealthy)
        return failed(
            "quorum-safe",
            f"region {region.id} has down or pending peers on stores {where}",
            f"region {region.id} already has a down or pending peer (stores {where}); moving "
            f"its healthy peer on store {from_store_id} risks quorum. Move the unhealthy "
            "peer instead, or wait until it recovers",
        )
    if moving_unhealthy:
        return passed(
            "quorum-safe",
            f"the peer being moved (store {from_store_id}) is the unhealthy one",
        )
    return passed("quorum-safe", f"all peers of region {region.id} are healthy")


def leader_capable_stores(
    store_id: int,
    stores: Mapping[int, StoreView],
    evicted: Collection[int],
    max_replicas: int,
) -> Check:
    """After draining `store_id`, at least max-replicas Up stores must remain able to take
    leaders (not Down, Disconnected or already evicted)."""
    able = leader_targets(store_id, stores, evicted)
    listed = ", ".join(map(str, able)) or "none"
    observed = f"{len(able)} other Up store(s) can take leaders ({listed})"
    if len(able) < max_replicas:
        return failed(
            "enough-leader-stores",
            observed,
            f"draining store {store_id} would leave {len(able)} Up store(s) able to take "
            f"leaders ({listed}), fewer than max-replicas {max_replicas}",
        )
    return passed("enough-leader-stores", observed)


def leader_targets(
    store_id: int, stores: Mapping[int, StoreView], evicted: Collection[int]
) -> list[int]:
    """Stores other than `store_id` that can take leaders: Up and not evicted."""
    return sorted(
        s.id
        for s in stores.values()
        if s.id != store_id and s.state_name == "Up" and s.id not in evicted
    )


def drain_limit(store_id: int, evicted: Collection[int], max_drained: int) -> Check:
    others = sorted(s for s in evicted if s != store_id)
    if len(others) + 1 > max_drained:
        return failed(
            "drained-stores-limit",
            f"{len(others)} store(s) already drained ({', '.join(map(str, others))})",
            f"{len(others)} store(s) are already drained ({', '.join(map(str, others))}) and "
            f"at most {max_drained} may be drained at once; undrain one first or raise "
            "max_drained_stores",
        )
    return passed(
        "drained-stores-limit",
        f"{len(others)} other store(s) drained; the limit is {max_drained}",
    )


def not_drained(store_id: int, evicted: Collection[int]) -> Check:
    if store_id in evicted:
        return failed(
            "not-drained",
            f"store {store_id} is already under evict-leader-scheduler",
            f"store {store_id} is already drained (under evict-leader-scheduler); nothing to do",
        )
    return passed("not-drained", f"store {store_id} is not drained")


def is_drained(store_id: int, evicted: Collection[int]) -> Check:
    if store_id not in evicted:
        return failed(
            "is-drained",
            f"store {store_id} is not under evict-leader-scheduler",
            f"store {store_id} is not drained (not under evict-leader-scheduler); nothing to undo",
        )
    return passed("is-drained", f"store {store_id} is under evict-leader-scheduler")


def store_not_removed(store: StoreView) -> Check:
    if store.state_name == "Tombstone":
        return failed(
            "store-not-removed",
            f"store {store.id} is Tombstone",
            f"store {store.id} is Tombstone (removed from the cluster); it holds nothing to drain",
        )
    return passed("store-not-removed", f"store {store.id} is {store.state_name}")
