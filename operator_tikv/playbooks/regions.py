"""Unhealthy regions (down, pending, missing, extra peers): explain PD's own repair and point
at the store that holds the unhealthy peers; no action."""

from __future__ import annotations

from collections.abc import Mapping

from operator_tikv.invariants import ViolationKind
from operator_tikv.observation import Observation, RegionProblem
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

_REGION_PROBLEMS: Mapping[str, RegionProblem] = {
    ViolationKind.REGION_DOWN_PEER.value: RegionProblem.DOWN_PEER,
    ViolationKind.REGION_PENDING_PEER.value: RegionProblem.PENDING_PEER,
    ViolationKind.REGION_MISS_PEER.value: RegionProblem.MISS_PEER,
    ViolationKind.REGION_EXTRA_PEER.value: RegionProblem.EXTRA_PEER,
}

_REGION_WORDING: Mapping[RegionProblem, str] = {
    RegionProblem.DOWN_PEER: "a down peer",
    RegionProblem.PENDING_PEER: "a pending peer",
    RegionProblem.MISS_PEER: "fewer replicas than configured",
    RegionProblem.EXTRA_PEER: "more replicas than configured",
}

_REPAIR: Mapping[RegionProblem, str] = {
    RegionProblem.DOWN_PEER: "A down peer stops counting once its store has been Down for "
    "max-store-down-time ({down}); PD's replica checker then adds a new replica on a healthy "
    "store and removes the down one, at the pace of replica-schedule-limit ({replica}).",
    RegionProblem.PENDING_PEER: "A pending peer is behind on the Raft log; it usually catches "
    "up by itself once its store has I/O to spare, or receives a snapshot.",
    RegionProblem.MISS_PEER: "PD's replica checker adds the missing replicas on healthy stores "
    "with room, at the pace of replica-schedule-limit ({replica}); it needs enough Up stores "
    "for max-replicas.",
    RegionProblem.EXTRA_PEER: "PD's replica checker removes the extra replicas; this is normal "
    "for a short while after a peer move or a store coming back.",
}


def regions(
    problem: Problem, obs: Observation, ctx: PlaybookContext, limits: PlaybookLimits
) -> PlaybookResult:
    region_problem = _REGION_PROBLEMS[problem.kind]
    check = obs.region_checks.get(region_problem)
    count = check.count if check else int(problem.value or 0)
    sample = check.region_ids[:10] if check else problem.region_ids[:10]
    noun = "region has" if count == 1 else "regions have"
    evidence = [
        Fact(
            fact=f"{count:,} {noun} {_REGION_WORDING[region_problem]} (e.g. {facts.ids(sample)})",
            value=float(count),
            unit="regions",
            source=f"pd:/regions/check/{region_problem.value}",
        )
    ]
    causes: list[Cause] = []
    if check and check.peer_stores:
        worst, n = max(check.peer_stores.items(), key=lambda kv: (kv[1], -kv[0]))
        where = ", ".join(f"store {s}: {k}" for s, k in sorted(check.peer_stores.items()))
        evidence.append(Fact(fact=f"those peers are on {where}", source="pd:/regions/check"))
        worst_store = obs.store(worst)
        state = worst_store.state_name.value if worst_store else "not listed"
        causes.append(
            Cause(
                statement=f"Store {worst} ({state}) holds {n} of them: its failure or slowness "
                "is the likely cause",
                confidence=0.7 if state != "Up" else 0.5,
            )
        )
    bad_stores = [s.id for s in obs.live_stores if not facts.is_up(s)]
    if bad_stores and not causes:
        causes.append(
            Cause(
                statement=f"Stores {facts.ids(bad_stores)} are not Up, which leaves their regions "
                "short of replicas",
                confidence=0.6,
            )
        )
    down_after, _ = facts.max_store_down_seconds(ctx)
    replica = str(ctx.schedule.replica_schedule_limit) if ctx.schedule else "64 by default"
    repair = _REPAIR[region_problem].format(down=facts.duration(down_after), replica=replica)
    lost = check.quorum_lost if check else ()
    lost_count = check.quorum_lost_count if check else 0
    summary = f"{count:,} {noun} {_REGION_WORDING[region_problem]}. {repair}"
    if lost:
        summary += (
            f" {lost_count:,} of them lost a majority of their voters and cannot serve writes "
            f"(e.g. {facts.ids(lost[:5])}): PD cannot repair those alone; restore their stores."
        )
    summary += " No action is proposed: PD repairs this itself; watch the count fall."
    return PlaybookResult(
        playbook="unhealthy-regions",
        kind=DiagnosisKind.UNHEALTHY_REGIONS,
        summary=summary,
        causes=tuple(causes),
        evidence=tuple(evidence),
        confidence=0.6,
    )
