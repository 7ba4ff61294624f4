"""PD unreachable, metrics gaps and kinds no playbook covers: explain, never act."""

from __future__ import annotations

from operator_tikv.observation import Observation
from operator_tikv.playbooks.model import (
    Cause,
    DiagnosisKind,
    Fact,
    PlaybookContext,
    PlaybookLimits,
    PlaybookResult,
    Problem,
)


def pd_unreachable(
    problem: Problem, obs: Observation, ctx: PlaybookContext, limits: PlaybookLimits
) -> PlaybookResult:
    error = obs.pd_error or "no answer"
    return PlaybookResult(
        playbook="pd-unreachable",
        kind=DiagnosisKind.PD_UNREACHABLE,
        summary=(
            f"PD at {obs.pd_url} cannot be reached ({error}). Until it answers, stores and "
            "regions cannot be checked and no action can be taken. TiKV keeps serving reads and "
            "writes for regions whose leaders are known to clients, but nothing is scheduled "
            "or repaired. Check the PD processes (`pd-ctl health`, `pd-ctl member`) and the "
            "network from the bot to PD."
        ),
        causes=(
            Cause(
                statement="PD's processes are down or have no leader (lost quorum, disk full, "
                "restart)",
                confidence=0.5,
            ),
            Cause(
                statement="The network path or address from the bot to PD is wrong or broken",
                confidence=0.4,
            ),
        ),
        evidence=(Fact(fact=f"GET /pd/api/v1/stores failed: {error}", source="pd"),),
        confidence=0.6,
    )


def metrics_gap(
    problem: Problem, obs: Observation, ctx: PlaybookContext, limits: PlaybookLimits
) -> PlaybookResult:
    error = obs.metrics_error
    if problem.store_id is not None and obs.metrics is not None:
        error = obs.metrics.for_store(problem.store_id).error or error
    where = f"store {problem.store_id}" if problem.store_id is not None else "the stores"
    return PlaybookResult(
        playbook="metrics-gap",
        kind=DiagnosisKind.METRICS_GAP,
        summary=(
            f"Metrics for {where} cannot be read from {obs.metrics_source or 'the source'}"
            f"{f' ({error})' if error else ''}. PD still reports the stores, so the cluster may "
            "be fine, but write latency is not being watched. Check the metrics source and that "
            "the `instance` label matches each TiKV's status address."
        ),
        causes=(
            Cause(
                statement="The metrics source (Prometheus or a TiKV status port) is down or "
                "misconfigured",
                confidence=0.6,
            ),
        ),
        evidence=(Fact(fact=f"metrics error: {error or 'no series'}", source="metrics"),),
        confidence=0.5,
    )


def unknown(
    problem: Problem, obs: Observation, ctx: PlaybookContext, limits: PlaybookLimits
) -> PlaybookResult:
    return PlaybookResult(
        playbook="generic",
        kind=DiagnosisKind.UNKNOWN,
        summary=(
            f"No playbook covers '{problem.kind}'. "
            + (f"{problem.title} " if problem.title else "")
            + "No action is proposed; look at the incident's details."
        ),
        confidence=0.2,
    )
