"""Hot writes on one store (`hot_write_skew`): move the hottest region's leader to the
least-loaded store with a healthy voter of it, or split the region when it alone carries most
of the store's hot writes (moving it would only move the hotspot) or no such store exists."""

from __future__ import annotations

from operator_tikv.observation import Observation
from operator_tikv.playbooks import facts
from operator_tikv.playbooks.general import unknown
from operator_tikv.playbooks.model import (
    Cause,
    DiagnosisKind,
    Fact,
    PlaybookContext,
    PlaybookLimits,
    PlaybookResult,
    Problem,
)


def hot_region(
    problem: Problem, obs: Observation, ctx: PlaybookContext, limits: PlaybookLimits
) -> PlaybookResult:
    sid = problem.store_id
    if sid is None:
        return unknown(problem, obs, ctx, limits)
    label = facts.label(sid, obs)
    hot = facts.hot_counts(obs)
    total = sum(hot.values())
    peers = facts.hot_peers(obs, sid)
    evidence = [
        Fact(
            fact=f"{label} leads {hot.get(sid, 0)} of the {total} hot write regions",
            value=float(hot.get(sid, 0)),
            unit="regions",
            source="pd:/hotspot/regions/write",
        )
    ]
    causes = [
        Cause(
            statement=f"The workload writes to a narrow key range whose regions are led by "
            f"store {sid} (e.g. a sequential key or a small, hot table)",
            confidence=0.6,
        )
    ]

    result = facts.answer_with("hot-region", DiagnosisKind.HOT_REGION, causes, evidence)

    if not peers:
        return result(
            f"Hot writes are concentrated on {label}, but PD's hot-region list shows no region "
            "to act on now. PD's hot-region scheduler balances this on its own; watch it.",
            conf=0.4,
        )
    top = peers[0]
    stat = obs.hot_write.as_leader[sid] if obs.hot_write else None
    store_flow = (stat.total_flow_bytes if stat else 0.0) or sum(p.flow_bytes for p in peers)
    share = top.flow_bytes / store_flow if store_flow > 0 else 1.0
    evidence.append(
        Fact(
            fact=f"region {top.region_id} is the hottest: {facts.rate(top.flow_bytes)} written, "
            f"{share:.0%} of store {sid}'s hot write flow",
            value=round(top.flow_bytes, 1),
            unit="B/s",
            source="pd:/hotspot/regions/write",
        )
    )
    region = ctx.regions.get(top.region_id)
    if region is not None and region.leader_store_id not in (None, sid):
        return result(
            f"Region {top.region_id}, the hottest on {label}, is now led by store "
            f"{region.leader_store_id}: the hotspot is already moving. Watch it.",
            conf=0.5,
        )
    voters = region.voter_store_ids if region is not None else list(top.stores)
    unhealthy = set(region.down_store_ids) | set(region.pending_store_ids) if region else set()
    evicted = set(ctx.evicted_store_ids or ())
    candidates = [
        v
        for v in voters
        if v != sid and v not in unhealthy and v not in evicted and facts.is_up(obs.store(v))
    ]
    can_move = region is not None and ctx.evicted_store_ids is not None and bool(candidates)

    def load(store_id: int) -> tuple[int, int, int]:
        info = obs.store(store_id)
        return (hot.get(store_id, 0), info.leader_count if info else 0, store_id)

    if can_move and share < limits.hot_split_share:
        target = min(candidates, key=load)
        evidence.append(
            Fact(
                fact=f"store {target} holds a healthy voter of region {top.region_id} and leads "
                f"{hot.get(target, 0)} hot write regions",
                value=float(hot.get(target, 0)),
                unit="regions",
                source="pd:/region",
            )
        )
        reason = (
            f"Region {top.region_id} writes {facts.rate(top.flow_bytes)} ({share:.0%} of store "
            f"{sid}'s hot write flow). Store {target} holds a healthy voter of it and is the "
            f"least loaded candidate ({hot.get(target, 0)} hot write leaders vs "
            f"{hot.get(sid, 0)} on store {sid}); moving the leader spreads the writes without "
            "copying data, and can be moved back."
        )
        return result(
            f"Hot writes are concentrated on {label}. Move the leader of its hottest region, "
            f"{top.region_id}, to store {target}.",
            actions=(
                facts.suggest(
                    "transfer-leader", {"region_id": top.region_id, "to_store_id": target}, reason
                ),
            ),
        )
    if share >= limits.hot_split_share:
        why = (
            f"it alone carries {share:.0%} of store {sid}'s hot write flow, so moving its "
            "leader would only move the hotspot"
        )
    elif region is None or ctx.evicted_store_ids is None:
        why = "its peers or the drained stores could not be read to pick a leader target"
    else:
        why = "no other Up, undrained store holds a healthy voter of it to take the leader"
    reason = (
        f"Region {top.region_id} writes {facts.rate(top.flow_bytes)}; {why}. Splitting it in two "
        "lets PD's hot-region scheduler place the halves on different stores; no data moves "
        "between stores."
    )
    return result(
        f"Hot writes are concentrated on {label}. Split its hottest region, {top.region_id}.",
        actions=(facts.suggest("split", {"region_id": top.region_id}, reason),),
        conf=0.55,
    )
