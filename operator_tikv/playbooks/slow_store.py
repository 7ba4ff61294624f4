"""Slow store (`write_latency`): drain its leaders when only it is slow, it is Up and leads
regions, no other store is drained, and the drain's own preflight checks pass on the observed
store list (another Up, undrained store can take its leaders, and they have a voter there); the
reason carries the estimated leader load and any warning of the preflight."""

from __future__ import annotations

import math

from operator_tikv.actions import preflight as checks
from operator_tikv.actions import state
from operator_tikv.actions.base import PreflightContext
from operator_tikv.observation import Observation
from operator_tikv.playbooks import facts
from operator_tikv.playbooks.model import (
    Cause,
    DiagnosisKind,
    Fact,
    PlaybookContext,
    PlaybookLimits,
    PlaybookResult,
    Problem,
)
from operator_tikv.playbooks.stores import missing_store
from operator_tikv.sentences import end_sentence


def slow_store(
    problem: Problem, obs: Observation, ctx: PlaybookContext, limits: PlaybookLimits
) -> PlaybookResult:
    sid = problem.store_id
    store = obs.store(sid) if sid is not None else None
    if sid is None or store is None:
        return missing_store("slow-store", DiagnosisKind.SLOW_STORE, problem, obs)
    label = facts.label(sid, obs)
    threshold = problem.threshold or 100.0
    p99 = problem.value if problem.value is not None else facts.p99_ms(obs, sid)
    evidence = []
    if p99 is not None:
        evidence.append(
            Fact(
                fact=f"write P99 on {label} is {facts.ms(p99)} (threshold {threshold:g} ms)",
                value=None if math.isinf(p99) else round(p99, 1),
                unit="ms",
                source="metrics",
            )
        )
    others = [s for s in obs.live_stores if s.id != sid and facts.is_up(s)]
    measured = {s.id: v for s in others if (v := facts.p99_ms(obs, s.id)) is not None}
    slow_others = sorted(i for i, v in measured.items() if v > threshold)
    if measured:
        shown = ", ".join(f"store {i}: {facts.ms(v)}" for i, v in sorted(measured.items()))
        evidence.append(Fact(fact=f"write P99 on the other Up stores: {shown}", source="metrics"))
    evidence.append(
        Fact(
            fact=f"{label} leads {store.leader_count:,} regions and holds "
            f"{store.region_count:,} replicas",
            value=float(store.leader_count),
            unit="leaders",
            source="pd:/stores",
        )
    )
    if store.status.slow_score > 1:
        evidence.append(
            Fact(
                fact=f"PD's slow score for store {sid} is {store.status.slow_score:g} "
                "(1 is healthy, 100 is the slowest)",
                value=store.status.slow_score,
                source="pd:/stores",
            )
        )
    hot = facts.hot_counts(obs)
    hot_total = sum(hot.values())
    hot_here = hot.get(sid, 0)
    hot_led = hot_total >= 2 and hot_here * 2 > hot_total
    if hot_total:
        evidence.append(
            Fact(
                fact=f"store {sid} leads {hot_here} of the {hot_total} hot write regions",
                value=float(hot_here),
                unit="regions",
                source="pd:/hotspot/regions/write",
            )
        )

    cluster_wide = bool(measured) and len(slow_others) >= max(
        1, math.ceil(limits.slow_cluster_share * len(measured))
    )
    causes = []
    if cluster_wide:
        causes.append(
            Cause(
                statement="The load on the whole cluster is too high for its disks or CPU "
                f"(stores {facts.ids([sid, *slow_others])} are all above {threshold:g} ms)",
                confidence=0.6,
            )
        )
    else:
        causes.append(
            Cause(
                statement=f"The disk or host of store {sid} is slow (I/O latency, a write "
                "stall, or a noisy neighbour): only this store is above the threshold",
                confidence=0.5 if hot_led else 0.7,
            )
        )
    if hot_led:
        causes.append(
            Cause(
                statement=f"Hot write regions are concentrated on store {sid} "
                f"({hot_here} of {hot_total}), so it serves more writes than the others",
                confidence=0.4,
            )
        )

    result = facts.answer_with("slow-store", DiagnosisKind.SLOW_STORE, causes, evidence)

    headline = f"Writes on {label} are slow" + (
        f" (P99 {facts.ms(p99)})" if p99 is not None else ""
    )
    if not facts.is_up(store):
        return result(
            f"{headline}, but the store is {store.state_name.value} now: nothing to move while "
            "it is not serving. Watch whether it comes back."
        )
    if cluster_wide:
        return result(
            f"{headline}, and so are stores {facts.ids(slow_others)}: the slowdown is "
            "cluster-wide, so draining one store would only push its load onto slow stores. "
            "Look at the workload and the cluster's capacity instead.",
            conf=0.5,
        )
    if store.leader_count == 0:
        return result(
            f"{headline}, but it leads no regions, so draining it would change nothing. Check "
            "the host's disk and the TiKV log for write stalls."
        )
    evicted = ctx.evicted_store_ids
    if evicted is None or ctx.max_replicas is None:
        return result(
            f"{headline}. Draining its leaders would relieve it, but PD's scheduler list or "
            "replication config could not be read to check that the rest of the cluster can "
            "take them; check with `tikvops check` and propose a drain by hand if it can.",
            conf=0.5,
        )
    if sid in evicted:
        return result(
            f"{headline}. It is already drained (under evict-leader-scheduler) and still leads "
            f"{store.leader_count:,} regions: PD is moving them away; watch the leader count "
            "fall.",
        )
    drained = [s for s in evicted if s != sid]
    if len(drained) >= limits.max_drained_stores:
        return result(
            f"{headline}. Store(s) {facts.ids(drained)} are already drained, and at most "
            f"{limits.max_drained_stores} may be drained at once, so draining store {sid} too "
            "is not proposed. Undrain the other store first if it has recovered.",
        )
    # The drain's own preflight checks, on the observed store list: the playbook proposes a
    # drain exactly when the preflight would let it run.
    views = {s.id: state.store_view(s) for s in obs.live_stores}
    found = checks.drain_checks(
        sid,
        views,
        evicted,
        ctx.max_replicas,
        PreflightContext(max_drained_stores=limits.max_drained_stores),
    )
    refused = [c for c in found if not c.ok]
    if refused:
        reasons = "; ".join(c.message.rstrip(".") for c in refused)
        return result(
            f"{headline}, but a drain would be refused: {reasons}. Check the host's disk and "
            "the TiKV log for write stalls; add a store if this keeps happening.",
        )
    targets = checks.leader_targets(sid, views, evicted)
    warnings = [c for c in found if c.warning]
    load = next((c for c in found if c.name == "leader-load"), None)
    p99_text = (
        f"write P99 is {facts.ms(p99)} (threshold {threshold:g} ms)" if p99 else "writes slow"
    )
    others_text = (
        f" while the other Up stores are at {facts.span(measured.values())}" if measured else ""
    )
    where = f"store {targets[0]}" if len(targets) == 1 else f"stores {facts.ids(targets)}"
    reason = (
        f"Store {sid}'s {p99_text}{others_text}. Evicting its {store.leader_count:,} leaders "
        f"to {where} ({len(targets)} Up, undrained store(s); every region it leads has another "
        f"voter there with max-replicas {ctx.max_replicas}; no other store drained) takes "
        "client reads and writes off it; its data stays in place and undrain reverses it."
    )
    if load is not None and not load.warning:
        reason += f" {_sentence(load.observed)}"
    for warning in warnings:
        reason += f" Warning: {_sentence(warning.message)}"
    advice = " Read the warning in the reason before approving." if warnings else ""
    return result(
        f"{headline}{others_text}. Drain its leaders while the disk or host is investigated."
        + advice,
        actions=(facts.suggest("drain", {"store_id": sid}, reason),),
        conf=0.5 if hot_led or warnings else 0.7,
    )


def _sentence(text: str) -> str:
    """`text` with a capital first letter, ended as a sentence."""
    text = text.strip()
    return end_sentence(text[:1].upper() + text[1:])
