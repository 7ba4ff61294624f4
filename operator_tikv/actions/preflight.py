"""Reusable preflight checks: pure functions from observed cluster state to a `Check`.

Each check has a stable name and, on failure, a sentence naming what was observed and why the
action needs something else ("store 5 is Disconnected (last heartbeat 47 s ago);
transfer-leader needs an Up target"). Actions read the state (`operator_tikv.actions.state`)
and combine these checks; nothing here talks to PD.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from operator_tikv.actions import leader_moves as moves
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
    store_id: int, stores: Mapping[int, StoreView], evicted: Collection[int]
) -> Check:
    """At least one other store must be able to take the drained store's leaders: Up (not
    Disconnected, Down or Offline) and not itself under evict-leader. Evicting leaders moves
    no replica, so max-replicas stores are not needed: TiUP evicts leaders store by store on
    3-store clusters in every rolling restart."""
    able = leader_targets(store_id, stores, evicted)
    if able:
        listed = ", ".join(map(str, able))
        return passed(
            "enough-leader-stores", f"{len(able)} other Up store(s) can take leaders ({listed})"
        )
    others = [s for s in sorted(stores) if s != store_id]
    why = "; ".join(_why_no_leaders(stores[s], evicted) for s in others[:MAX_STORES_LISTED])
    if len(others) > MAX_STORES_LISTED:
        why += f"; and {len(others) - MAX_STORES_LISTED} more"
    why = why or f"store {store_id} is the only store"
    return failed(
        "enough-leader-stores",
        f"no other store can take leaders ({why})",
        f"no other store can take the leaders of store {store_id} ({why}); a leader can move "
        "only to an Up store that is not drained. Bring a store back Up or undrain one first",
    )


def _why_no_leaders(store: StoreView, evicted: Collection[int]) -> str:
    if store.id in evicted:
        return f"store {store.id} is drained"
    if store.state_name == "Up":
        return f"store {store.id} holds learners only"
    return f"store {store.id} is {store.state_name}"


def drain_source_up(store: StoreView, ctx: PreflightContext) -> Check:
    """Only an Up store's leaders are moved by evict-leader; a store that is not serving has
    its leaders re-elected elsewhere by Raft (Disconnected, Down) or is being emptied by PD
    already (Offline)."""
    observed = store.state_text(ctx.now)
    if store.state_name != "Up":
        return failed(
            "store-up",
            observed,
            f"{observed}; a drain moves leaders off a serving store, and a store that is not "
            "Up serves none: Raft re-elects the leaders of a Disconnected or Down store on the "
            "other stores by itself, and PD is already emptying an Offline one. Wait until it is "
            "Up again",
        )
    return passed("store-up", observed)


def healthy_voters_elsewhere(
    source: StoreView,
    stores: Mapping[int, StoreView],
    targets: Sequence[int],
    max_replicas: int,
) -> Check:
    """The store's leaders need another healthy voter on a store that can take them. Checked
    from store counts (`leader_moves.stuck_leaders`): refused when some leaders certainly have
    none, a warning when some may not (the bound is not zero)."""
    name = "healthy-voters-elsewhere"
    est = moves.stuck_leaders(source, stores, targets, max_replicas)
    sid, leaders = source.id, est.leaders
    if leaders == 0:
        return passed(name, f"store {sid} leads no regions; no leader has to move")
    if est.other_voters == 0:
        return failed(
            name,
            f"max-replicas is 1: the {leaders:,} regions store {sid} leads have no other voter",
            f"none of the {leaders:,} leaders of store {sid} can move: with max-replicas 1 no "
            "region has another voter to take its leader. Raise max-replicas (PD then adds "
            "replicas) before draining",
        )
    if est.certain:
        return failed(
            name,
            f"store {sid} leads {leaders:,} regions; the stores that can take leaders "
            f"({_stores(targets)}) hold {est.eligible_voters:,} voters in all",
            f"at least {est.certain:,} of the {leaders:,} leaders of store {sid} cannot move: the "
            f"stores that can take leaders ({_stores(targets)}) hold only "
            f"{est.eligible_voters:,} voters, so "
            f"at least {est.certain:,} of its regions have no voter there and the drain would "
            "never reach zero leaders. Bring the other stores back Up or undrain them first",
        )
    assumed = (
        f"estimated from store counts, assuming every region has its {max_replicas} voters "
        "on distinct stores"
    )
    if est.possible:
        blockers = _blockers(est, stores)
        return Check(
            name=name,
            ok=True,
            warning=True,
            observed=f"up to {est.possible:,} of {leaders:,} leaders may have no healthy voter "
            f"on {_stores(targets)} ({blockers})",
            message=f"up to {est.possible:,} of the {leaders:,} leaders of store {sid} may have "
            f"no healthy voter to move to: {blockers}, and {_all(est.other_voters)} other "
            "voters of a region could be there. PD moves the other leaders; these stay on store "
            f"{sid} until those peers recover, so the drain may not reach zero before its "
            f"deadline ({assumed}; not checked region by region)",
        )
    if est.blocked or est.pending:
        why = (
            f"only {_blockers(est, stores)}: fewer stores than the {est.other_voters} other "
            "voters of a region"
        )
    else:
        why = "no other store is Disconnected, Down, Offline or drained or reports pending peers"
    either = " or ".join(map(str, targets)) if len(targets) <= 3 else ", ".join(map(str, targets))
    store_word = "store" if len(targets) == 1 else "stores"
    text = (
        f"every region store {sid} leads has another voter on {store_word} {either}, able to "
        f"take its leader: each region has {est.other_voters} other voters on distinct stores, "
        f"and {why} ({assumed})"
    )
    return passed(name, text)


def _all(count: int) -> str:
    return "both" if count == 2 else f"all {count}"


def _stores(ids: Sequence[int]) -> str:
    """ "store 2" or "stores 2, 3"."""
    return ("store " if len(ids) == 1 else "stores ") + ", ".join(map(str, ids))


def _blockers(est: moves.StuckLeaders, stores: Mapping[int, StoreView]) -> str:
    """The stores that hold replicas but cannot take leaders, and the pending peers."""
    parts = []
    if est.blocked:
        listed = ", ".join(
            f"{s} ({stores[s].state_name if stores[s].state_name != 'Up' else 'drained'})"
            for s in est.blocked[:MAX_STORES_LISTED]
        )
        if len(est.blocked) > MAX_STORES_LISTED:
            listed += f" and {len(est.blocked) - MAX_STORES_LISTED} more"
        one = len(est.blocked) == 1
        parts.append(
            f"{'store' if one else 'stores'} {listed} cannot take leaders and "
            f"{'holds' if one else 'hold'} {est.blocked_replicas:,} replicas"
        )
    if est.pending:
        listed = ", ".join(
            f"{count:,} on store {s}" for s, count in est.pending[:MAX_STORES_LISTED]
        )
        if len(est.pending) > MAX_STORES_LISTED:
            listed += f" and on {len(est.pending) - MAX_STORES_LISTED} more stores"
        parts.append(f"pending peers: {listed}")
    return "; ".join(parts)


def leader_load(
    source: StoreView, stores: Mapping[int, StoreView], targets: Sequence[int]
) -> Check:
    """The leaders each remaining store would lead after the drain (estimated, see
    `leader_moves.leader_load`); a warning when one would lead more than
    `LEADER_SHARE_WARN` of all leaders."""
    name = "leader-load"
    if source.leader_count == 0:
        return passed(name, f"store {source.id} leads no regions; no store's leader load changes")
    loads = moves.leader_load(source, stores, targets)
    shown = [
        f"store {load.store_id} ≈ {load.after:,} ({_percent(load.share)}, now {load.now:,})"
        for load in loads[:MAX_STORES_LISTED]
    ]
    if len(loads) > MAX_STORES_LISTED:
        shown.append(f"{len(loads) - MAX_STORES_LISTED} more store(s)")
    observed = (
        f"leaders after the drain, estimated (the {source.leader_count:,} of store "
        f"{source.id} spread over {_stores(targets)} by the voters held): " + ", ".join(shown)
    )
    top = moves.concentrated(loads)
    if top is None:
        return passed(name, observed)
    return Check(
        name=name,
        ok=True,
        warning=True,
        observed=observed,
        message=f"{observed}. Store {top.store_id} would lead {_percent(top.share)} of all "
        f"leaders, more than {_percent(moves.LEADER_SHARE_WARN)}: its CPU and disk would set "
        "the latency of most requests. Approve only if it has the headroom; otherwise bring "
        "the other stores back or add one first",
    )


MAX_STORES_LISTED = 5
"""Stores named at most in one drain check (the leader load lists the most loaded first)."""


def _percent(share: float) -> str:
    return f"{share * 100:.0f}%"


def drain_checks(
    store_id: int,
    stores: Mapping[int, StoreView],
    evicted: Collection[int],
    max_replicas: int,
    ctx: PreflightContext,
) -> list[Check]:
    """Every check of a drain, in order, from the store list, the drained stores and
    max-replicas (the drain's preflight and the slow-store playbook share them)."""
    found = [store_exists(store_id, stores)]
    if store_id not in stores:
        return found
    source = stores[store_id]
    found.append(drain_source_up(source, ctx))
    found.append(not_drained(store_id, evicted))
    found.append(drain_limit(store_id, evicted, ctx.max_drained_stores))
    found.append(leader_capable_stores(store_id, stores, evicted))
    targets = leader_targets(store_id, stores, evicted)
    # The estimates need an Up source (its counts are current) and somewhere for leaders to go.
    if targets and source.state_name == "Up":
        found.append(healthy_voters_elsewhere(source, stores, targets, max_replicas))
        found.append(leader_load(source, stores, targets))
    return found


def leader_targets(
    store_id: int, stores: Mapping[int, StoreView], evicted: Collection[int]
) -> list[int]:
    """Stores other than `store_id` that can take leaders: Up, not evicted, and not holding
    learners only (a TiFlash store: every peer on it is a learner, and learners never lead)."""
    return sorted(
        s.id
        for s in stores.values()
        if s.id != store_id
        and s.state_name == "Up"
        and s.id not in evicted
        and not (s.region_count > 0 and s.voter_count == 0)
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
