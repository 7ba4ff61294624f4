"""Stores that stopped heartbeating: Disconnected is watched (no action), Down is explained
(its peers are down; PD re-creates them after max-store-down-time) and never acted on."""

from __future__ import annotations

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


def store_down(
    problem: Problem, obs: Observation, ctx: PlaybookContext, limits: PlaybookLimits
) -> PlaybookResult:
    sid = problem.store_id
    store = obs.store(sid) if sid is not None else None
    if sid is None or store is None:
        return missing_store("store-down", DiagnosisKind.STORE_DOWN, problem, obs)
    label = facts.label(sid, obs)
    age = facts.heartbeat_age(store, obs.at)
    down_after, known = facts.max_store_down_seconds(ctx)
    down_regions = facts.down_peer_regions(obs, sid)
    evidence = facts.heartbeat_evidence(label, age, down_after, known)
    if down_regions:
        evidence.append(
            Fact(
                fact=f"{down_regions:,} regions report their peer on store {sid} as down",
                value=float(down_regions),
                unit="regions",
                source="pd:/regions/check/down-peer",
            )
        )
    miss = obs.region_checks.get(RegionProblem.MISS_PEER)
    if miss is not None and miss.count:
        evidence.append(
            Fact(
                fact=f"{miss.count:,} regions have fewer replicas than configured",
                value=float(miss.count),
                unit="regions",
                source="pd:/regions/check/miss-peer",
            )
        )
    down_check = obs.region_checks.get(RegionProblem.DOWN_PEER)
    lost = down_check.quorum_lost if down_check else ()
    lost_count = down_check.quorum_lost_count if down_check else 0
    since = facts.duration(age) if age is not None else "a while"
    summary = (
        f"{label} is Down: no heartbeat for {since}, "
        f"past max-store-down-time ({facts.duration(down_after)}). Its "
        f"{down_regions or store.region_count:,} replicas count as down; the other replicas "
        "of each region keep serving (Raft elected new leaders within seconds), and PD's "
        "replica checker is re-creating the lost replicas on the remaining stores, at the "
        "pace of replica-schedule-limit. Nothing to approve: bring the store back if the host "
        "can be repaired, or take it offline deliberately once it is gone for good."
    )
    if lost:
        summary += (
            f" {lost_count:,} region(s) lost a majority of their voters and cannot serve writes "
            f"(e.g. {facts.ids(lost[:5])}); PD cannot repair those alone: restore the stores, or "
            "use unsafe recovery as a last resort."
        )
    causes = [
        Cause(
            statement=f"The TiKV process on store {sid} stopped, or its host or network failed",
            confidence=0.8,
        )
    ]
    return PlaybookResult(
        playbook="store-down",
        kind=DiagnosisKind.STORE_DOWN,
        summary=summary,
        causes=tuple(causes),
        evidence=tuple(evidence),
        confidence=0.85,
    )


def store_disconnected(
    problem: Problem, obs: Observation, ctx: PlaybookContext, limits: PlaybookLimits
) -> PlaybookResult:
    sid = problem.store_id
    store = obs.store(sid) if sid is not None else None
    if sid is None or store is None:
        return missing_store("store-disconnected", DiagnosisKind.STORE_DISCONNECTED, problem, obs)
    label = facts.label(sid, obs)
    age = facts.heartbeat_age(store, obs.at)
    down_after, known = facts.max_store_down_seconds(ctx)
    evidence = facts.heartbeat_evidence(label, age, down_after, known)
    left = max(0.0, down_after - age) if age is not None else None
    when = f" in about {facts.duration(left)}" if left is not None else " after max-store-down-time"
    summary = (
        f"{label} is Disconnected: PD has had no heartbeat from it for "
        f"{facts.duration(age) if age is not None else 'a short while'}. This is often a restart "
        "or a network blip. Regions it led elect new leaders on other stores within seconds; "
        f"PD only starts replacing its replicas once it is Down{when}. Wait and watch: check "
        "the TiKV process, its host and the network to PD. No action is proposed."
    )
    return PlaybookResult(
        playbook="store-disconnected",
        kind=DiagnosisKind.STORE_DISCONNECTED,
        summary=summary,
        causes=(
            Cause(
                statement=f"The TiKV process on store {sid} is restarting, overloaded, or cut "
                "off from PD by the network",
                confidence=0.6,
            ),
        ),
        evidence=tuple(evidence),
        confidence=0.7,
    )


def missing_store(
    playbook: str, kind: DiagnosisKind, problem: Problem, obs: Observation
) -> PlaybookResult:
    which = f"store {problem.store_id}" if problem.store_id else "the store"
    return PlaybookResult(
        playbook=playbook,
        kind=kind,
        summary=f"PD no longer lists {which} (it may have been removed), so there is nothing "
        "to act on. Check the store list with `tikvops check`.",
        confidence=0.3,
    )
