"""Playbooks: deterministic diagnosis rules per incident kind, as TiKV operators handle them.

Used when there is no Anthropic key or Claude fails, and as the baseline of the evaluation set.
Two steps, so the rules stay pure:

1. `gather(problem, observation, pd)` reads the little the rules need beyond one observation,
   read-only and bounded (at most `MAX_GATHER_REQUESTS` PD requests, none of which lists every
   region of the cluster): the evict-leader list, max-replicas, the schedule config, the hottest
   region's peers, or one store's largest regions and the operators PD is running. A failed
   read becomes a note, never an exception.
2. `run(problem, observation, context)` applies the rules: a summary, likely causes (kept apart
   from the evidence), evidence with numbers, a confidence, and zero or more registered actions
   with typed parameters and the reason for each.

The rules:

- slow store (`write_latency`): drain it (evict its leaders) when only that store is slow, it
  is Up and holds leaders, no other store is drained, and the drain's own preflight checks pass
  on the observed stores (another Up, undrained store can take its leaders and they have a
  voter there: on a 3-store cluster the two others); the reason carries the estimated leader
  load and any warning.
- hot writes (`hot_write_skew`): move the hottest region's leader to the least-loaded store
  holding a healthy voter of it, or split the region when it alone carries most of the store's
  hot writes (moving it would only move the hotspot) or no such store exists.
- disk over threshold (`disk_usage`): move the peer of the store's largest settled region (a
  leader, no down, pending or learner peer, no more peers than max-replicas, no running
  operator) to the emptiest Up store without a peer of it; otherwise explain (add capacity,
  free space).
- store Disconnected: wait and watch, no action. Store Down: explain the effect (down peers,
  PD re-creates them after max-store-down-time) and propose nothing.
- unhealthy regions: explain PD's own repair. PD unreachable, metrics gaps: explain.

`operator_tikv` does not know the engine: `PlaybookResult` is our own plain result, adapted
into `engine.model.Diagnosis` by `engine.playbook_diagnoser`.

Modules: `model` (types), `gather` (the PD reads), `facts` (shared helpers), and one module per
rule family: `slow_store`, `hot_region`, `disk`, `stores`, `regions`, `general`.
"""

from __future__ import annotations

from collections.abc import Mapping

from operator_tikv.invariants import ViolationKind
from operator_tikv.observation import Observation
from operator_tikv.playbooks.disk import disk
from operator_tikv.playbooks.gather import gather
from operator_tikv.playbooks.general import metrics_gap, pd_unreachable, unknown
from operator_tikv.playbooks.hot_region import hot_region
from operator_tikv.playbooks.model import (
    KIND_MEANINGS,
    MAX_GATHER_REQUESTS,
    PLAYBOOKS_VERSION,
    Cause,
    DiagnosisKind,
    Fact,
    PlaybookContext,
    PlaybookLimits,
    PlaybookPD,
    PlaybookResult,
    Problem,
    Rule,
    Suggestion,
)
from operator_tikv.playbooks.regions import regions
from operator_tikv.playbooks.slow_store import slow_store
from operator_tikv.playbooks.stores import store_disconnected, store_down

RULES: Mapping[str, Rule] = {
    ViolationKind.WRITE_LATENCY.value: slow_store,
    ViolationKind.HOT_WRITE_SKEW.value: hot_region,
    ViolationKind.DISK_USAGE.value: disk,
    ViolationKind.STORE_DOWN.value: store_down,
    ViolationKind.STORE_DISCONNECTED.value: store_disconnected,
    ViolationKind.REGION_DOWN_PEER.value: regions,
    ViolationKind.REGION_PENDING_PEER.value: regions,
    ViolationKind.REGION_MISS_PEER.value: regions,
    ViolationKind.REGION_EXTRA_PEER.value: regions,
    ViolationKind.PD_UNREACHABLE.value: pd_unreachable,
    ViolationKind.METRICS_UNAVAILABLE.value: metrics_gap,
    ViolationKind.STORE_METRICS_MISSING.value: metrics_gap,
}
"""The rule for each incident kind; other kinds get `general.unknown`."""


def run(
    problem: Problem,
    observation: Observation,
    context: PlaybookContext | None = None,
    limits: PlaybookLimits | None = None,
) -> PlaybookResult:
    """Apply the playbook for `problem.kind` (pure). While PD is unreachable, every problem
    gets the PD-unreachable explanation: nothing else can be checked."""
    context = context or PlaybookContext()
    limits = limits or PlaybookLimits()
    rule = RULES.get(problem.kind, unknown)
    if not observation.pd_reachable and problem.kind != ViolationKind.PD_UNREACHABLE.value:
        rule = pd_unreachable
    result = rule(problem, observation, context, limits)
    if context.notes:
        result = result.model_copy(update={"notes": result.notes + context.notes})
    return result


async def diagnose(
    problem: Problem,
    observation: Observation,
    pd: PlaybookPD | None,
    limits: PlaybookLimits | None = None,
) -> PlaybookResult:
    """`gather` then `run`."""
    context = await gather(problem, observation, pd, limits)
    return run(problem, observation, context, limits)


__all__ = [
    "KIND_MEANINGS",
    "MAX_GATHER_REQUESTS",
    "PLAYBOOKS_VERSION",
    "RULES",
    "Cause",
    "DiagnosisKind",
    "Fact",
    "PlaybookContext",
    "PlaybookLimits",
    "PlaybookPD",
    "PlaybookResult",
    "Problem",
    "Suggestion",
    "diagnose",
    "gather",
    "run",
]
