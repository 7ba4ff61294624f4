"""PlaybookDiagnoser: incidents in, the engine's Diagnosis out, named after the playbook."""

from __future__ import annotations

from datetime import UTC, datetime

from engine.clock import FakeClock
from engine.diagnose_flow import proposer_identity
from engine.model import DiagnosisSource, IdentityKind, ProposalOrigin
from engine.playbook_diagnoser import PlaybookDiagnoser, problem_of, to_diagnosis
from engine.ports import Diagnoser
from operator_tikv.playbooks import (
    PLAYBOOKS_VERSION,
    Cause,
    DiagnosisKind,
    Fact,
    PlaybookContext,
    PlaybookResult,
    Suggestion,
)
from tests.diagnosis.builders import FakePD, incident, metrics, observation, store

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def test_a_result_becomes_a_playbook_diagnosis() -> None:
    result = PlaybookResult(
        playbook="slow-store",
        kind=DiagnosisKind.SLOW_STORE,
        summary="Store 2 is slow.",
        causes=(Cause(statement="slow disk", confidence=0.7),),
        evidence=(Fact(fact="P99 300 ms", value=300.0, unit="ms", source="metrics"),),
        confidence=0.7,
        actions=(Suggestion(action="drain", params={"store_id": 2}, reason="300 ms"),),
        notes=("Could not read the schedule config from PD: timeout",),
    )
    diagnosis = to_diagnosis(result, "I-9", NOW)
    assert diagnosis.source is DiagnosisSource.PLAYBOOK
    assert diagnosis.model == "slow-store"
    assert diagnosis.prompt_version == PLAYBOOKS_VERSION
    assert diagnosis.incident_id == "I-9" and diagnosis.created_at == NOW
    assert [(h.statement, h.confidence) for h in diagnosis.causes] == [("slow disk", 0.7)]
    assert [e.fact for e in diagnosis.evidence] == [
        "P99 300 ms",
        "Could not read the schedule config from PD: timeout",
    ]
    assert [(a.action, a.params, a.reason) for a in diagnosis.actions] == [
        ("drain", {"store_id": 2}, "300 ms")
    ]
    assert diagnosis.error is None


def test_the_flow_names_the_playbook_as_proposer() -> None:
    result = PlaybookResult(playbook="disk-full", kind=DiagnosisKind.DISK_FULL, summary="x")
    diagnosis = to_diagnosis(result, "I-1", NOW)
    who, origin = proposer_identity(diagnosis, incident("disk_usage", "store:1"))
    assert who.kind is IdentityKind.PLAYBOOK and who.key == "playbook:disk-full"
    assert origin is ProposalOrigin.PLAYBOOK


def test_problem_of_an_incident_reads_its_subject_and_details() -> None:
    inc = incident("region_down_peer", "cluster", value=12.0, region_ids=[4, 8])
    problem = problem_of(inc)
    assert problem.kind == "region_down_peer" and problem.store_id is None
    assert problem.region_ids == (4, 8) and problem.value == 12.0
    assert problem_of(incident("disk_usage", "store:3")).store_id == 3


async def test_diagnose_runs_the_playbook_for_the_incident() -> None:
    clock = FakeClock(NOW)
    pd = FakePD()
    diagnoser: Diagnoser = PlaybookDiagnoser(pd, clock)
    obs = observation(
        [store(i) for i in range(1, 6)], reading=metrics({1: 20, 2: 300, 3: 20, 4: 20, 5: 20})
    )
    inc = incident("write_latency", "store:2", value=300.0, threshold=100.0)
    diagnosis = await diagnoser.diagnose(inc, obs)
    assert diagnosis.source is DiagnosisSource.PLAYBOOK and diagnosis.model == "slow-store"
    assert diagnosis.created_at == NOW and diagnosis.incident_id == inc.id
    assert [(a.action, a.params) for a in diagnosis.actions] == [("drain", {"store_id": 2})]
    assert set(pd.calls) == {"evicted_leader_store_ids", "get_replication_config"}


async def test_run_reuses_a_gathered_context_and_reports_the_kind() -> None:
    pd = FakePD()
    diagnoser = PlaybookDiagnoser(pd, FakeClock(NOW))
    obs = observation([store(1), store(2, "Disconnected", heartbeat_age=40.0)])
    diagnosis, result = await diagnoser.run(
        incident("store_disconnected", "store:2"), obs, PlaybookContext()
    )
    assert pd.calls == []
    assert result.kind is DiagnosisKind.STORE_DISCONNECTED
    assert diagnosis.actions == [] and "Wait and watch" in diagnosis.summary
