"""Disk over the threshold (`disk_usage`): move the peer of the store's largest settled region
(a leader, no down, pending or learner peer, no more peers than max-replicas, no operator PD is
running on it; see `facts.move_blocker`) to the emptiest Up store without a peer of it;
otherwise explain (add capacity)."""

from __future__ import annotations

from operator_tikv.models.store import StoreInfo
from operator_tikv.observation import Observation
from operator_tikv.playbooks import facts
from operator_tikv.playbooks.model import (
    DEFAULT_LOW_SPACE_RATIO,
    Cause,
    DiagnosisKind,
    Fact,
    PlaybookContext,
    PlaybookLimits,
    PlaybookResult,
    Problem,
    Suggestion,
)
from operator_tikv.playbooks.stores import missing_store


def disk(
    problem: Problem, obs: Observation, ctx: PlaybookContext, limits: PlaybookLimits
) -> PlaybookResult:
    sid = problem.store_id
    store = obs.store(sid) if sid is not None else None
    if sid is None or store is None:
        return missing_store("disk-full", DiagnosisKind.DISK_FULL, problem, obs)
    label = facts.label(sid, obs)
    ratio = problem.value if problem.value is not None else facts.used_ratio(obs, store)
    threshold = problem.threshold or 0.7
    low_space = ctx.schedule.low_space_ratio if ctx.schedule else DEFAULT_LOW_SPACE_RATIO
    evidence = []
    if ratio is not None:
        evidence.append(
            Fact(
                fact=f"disk on {label} is {ratio:.0%} used (threshold {threshold:.0%}, PD's "
                f"low-space-ratio {low_space:.0%})",
                value=round(ratio, 4),
                unit="ratio",
                source="metrics" if obs.metrics else "pd:/stores",
            )
        )
    if store.capacity_bytes:
        evidence.append(
            Fact(
                fact=f"store {sid}: {facts.gib(store.available_bytes)} free of "
                f"{facts.gib(store.capacity_bytes)}, {store.region_count:,} replicas",
                value=float(store.available_bytes),
                unit="bytes",
                source="pd:/stores",
            )
        )
    if store.status.receiving_snap_count:
        evidence.append(
            Fact(
                fact=f"store {sid} is receiving {store.status.receiving_snap_count} snapshots",
                value=float(store.status.receiving_snap_count),
                source="pd:/stores",
            )
        )
    causes = [
        Cause(
            statement=f"Data on store {sid} grew faster than the cluster rebalanced it (write "
            "volume, or replicas moved onto it)",
            confidence=0.5,
        )
    ]
    critical = ratio is not None and ratio >= low_space
    effect = (
        "PD treats it as low on space: it stops placing replicas there, and writes fail if "
        "the disk fills completely"
        if critical
        else "PD weighs its free space in region scores and moves regions away slowly"
    )

    result = facts.answer_with("disk-full", DiagnosisKind.DISK_FULL, causes, evidence)

    used = f" is {ratio:.0%} full" if ratio is not None else " is filling"
    headline = f"Disk on {label}{used}; {effect}"
    advice = "Add capacity or free space (drop unused tables, check GC), or add a store."
    if store.status.receiving_snap_count:
        advice += " Data is still arriving: lowering region-schedule-limit slows the moves onto it."
    # Targets: Up stores other than the full one, with room, emptiest first.
    targets: list[tuple[float, int, StoreInfo]] = []
    for other in obs.live_stores:
        if other.id == sid or not facts.is_up(other):
            continue
        other_ratio = facts.used_ratio(obs, other)
        if other_ratio is None or other_ratio >= min(low_space, threshold):
            continue
        if ratio is not None and other_ratio >= ratio:
            continue
        targets.append((other_ratio, other.region_count, other))
    targets.sort(key=lambda t: (t[0], t[1], t[2].id))
    if not targets:
        return result(
            f"{headline}. No other Up store has room below the {threshold:.0%} threshold, so "
            f"moving data is not proposed. {advice}",
        )
    if ctx.largest_regions is None:
        return result(
            f"{headline}. The store's regions could not be read to pick one to move. {advice}",
            conf=0.5,
        )
    moves: list[Suggestion] = []
    blocked: list[str] = []
    covered = 0
    for region in ctx.largest_regions:
        if len(moves) >= limits.disk_moves:
            break
        if sid not in region.store_ids:
            continue
        blocker = facts.move_blocker(region, ctx)
        if blocker is not None:
            # moving a peer of a region that is unhealthy or mid-change risks its quorum
            blocked.append(f"region {region.id}: {blocker}")
            continue
        free = [(r, t) for r, _, t in targets if t.id not in region.store_ids]
        if not free:
            covered += 1
            continue
        other_ratio, target = free[0]
        size = f"{region.approximate_size:,} MiB"
        used_now = f" is {ratio:.0%} used" if ratio is not None else " is filling"
        operators = (
            "no operator PD is running on it"
            if ctx.operator_region_ids is not None
            else "PD's running operators could not be read (preflight checks again)"
        )
        reason = (
            f"Store {sid}{used_now}; region {region.id} is among its largest ({size}, "
            f"{region.approximate_keys:,} keys). Its {len(region.peers)} peers (stores "
            f"{facts.ids(region.store_ids)}, max-replicas {facts.max_replicas(ctx)}) are "
            f"healthy voters with a leader, and {operators}. Store {target.id} is the emptiest "
            f"Up store without a peer of it ({other_ratio:.0%} used). Moving the peer frees "
            f"about {size} on store {sid}; it copies the region's data, and can be moved back."
        )
        params = {"region_id": region.id, "from_store_id": sid, "to_store_id": target.id}
        moves.append(facts.suggest("transfer-peer", params, reason))
    if not moves:
        room = facts.ids([t.id for _, _, t in targets])
        why = []
        if covered:
            why.append(f"{covered} already have a peer on every store with room ({room})")
        if blocked:
            shown = "; ".join(blocked[:3]) + ("; …" if len(blocked) > 3 else "")
            why.append(f"{len(blocked)} are unhealthy or mid-change ({shown})")
        detail = f" ({'; '.join(why)})" if why else ""
        return result(
            f"{headline}. None of its {len(ctx.largest_regions)} largest regions can be moved "
            f"safely now{detail}, so nothing is proposed. {advice}",
        )
    names = ", ".join(str(m.params["region_id"]) for m in moves)
    return result(
        f"{headline}. Move region {names} off it to free space while capacity is added.",
        actions=tuple(moves),
    )
