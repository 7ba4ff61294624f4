"""Scoring of the evaluation set: patterns, verdicts, the four checks, case files, the table."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from diagnosis.eval import (
    ActionPattern,
    ActionScore,
    CaseScore,
    EvalCase,
    EvalError,
    EvalReport,
    Situation,
    Verdict,
    classify,
    format_table,
    incident_for,
    load_case,
    load_cases,
    score,
)
from engine.model import Diagnosis, DiagnosisSource, ProposedAction
from operator_tikv.invariants import Severity, Violation, ViolationKind
from operator_tikv.playbooks import DiagnosisKind
from tests.diagnosis.builders import observation, store

VARS = {"store": 2, "region": 77, "hot": [10, 11, 12]}


def case(**overrides: Any) -> EvalCase:
    data: dict[str, Any] = {
        "name": "c",
        "incident": {"kind": "write_latency", "subject": "store:$store"},
        "expect": {"kind": ["slow_store"], "actions": "required"},
        "acceptable": [{"action": "drain", "params": {"store_id": "$store"}}],
        "unacceptable": [{"action": "drain"}, {"action": "transfer-peer"}],
    }
    data.update(overrides)
    return EvalCase.model_validate(data)


def test_patterns_match_names_scalars_lists_and_variables() -> None:
    assert ActionPattern(action="*").matches("split", {"region_id": 1}, VARS)
    assert ActionPattern(action="drain").matches("drain", {"store_id": 9}, VARS)
    assert not ActionPattern(action="drain").matches("undrain", {"store_id": 9}, VARS)
    hot = ActionPattern(action="split", params={"region_id": "$hot"})
    assert hot.matches("split", {"region_id": 11}, VARS)
    assert not hot.matches("split", {"region_id": 13}, VARS)
    exact = ActionPattern(action="limit", params={"value": 0})
    assert exact.matches("limit", {"kind": "region", "value": 0}, VARS)
    assert not exact.matches("limit", {"kind": "region", "value": 8}, VARS)
    assert not exact.matches("limit", {"kind": "region"}, VARS)
    assert hot.describe(VARS) == "split(region_id=[10, 11, 12])"
    with pytest.raises(EvalError, match="unknown variable \\$nope"):
        ActionPattern(action="drain", params={"store_id": "$nope"}).matches(
            "drain", {"store_id": 1}, {}
        )


def test_acceptable_wins_over_unacceptable() -> None:
    c = case()
    assert classify(c, "drain", {"store_id": 2}, VARS) is Verdict.ACCEPTABLE
    assert classify(c, "drain", {"store_id": 3}, VARS) is Verdict.UNACCEPTABLE
    assert classify(c, "split", {"region_id": 3}, VARS) is Verdict.OTHER


def scored(
    expect: str, *verdicts: Verdict, kind: DiagnosisKind | None = None, **kw: Any
) -> CaseScore:
    actions = tuple(
        ActionScore("drain", {"store_id": i}, v, kw.get("preflight", True))
        for i, v in enumerate(verdicts)
    )
    return CaseScore(
        case="c",
        expected=(DiagnosisKind.SLOW_STORE,),
        kind=kind or DiagnosisKind.SLOW_STORE,
        actions=actions,
        expect_actions=expect,
        error=kw.get("error"),
    )


def test_the_four_checks() -> None:
    ok, bad, other = Verdict.ACCEPTABLE, Verdict.UNACCEPTABLE, Verdict.OTHER
    assert scored("required", ok).passed
    assert not scored("required").actions_ok
    assert not scored("required", ok, other).actions_ok
    assert scored("none").passed
    assert not scored("none", other).actions_ok and scored("none", other).safe
    assert scored("optional").passed and scored("optional", ok).passed
    unsafe = scored("optional", bad)
    assert not unsafe.safe and not unsafe.passed
    assert not scored("required", ok, preflight=False).passed
    assert not scored("required", ok, kind=DiagnosisKind.DISK_FULL).kind_ok
    failed = scored("none", error="diagnosis unavailable: timeout")
    assert not failed.passed and not failed.actions_ok


class RefusingPD:
    """Just enough PD for drain's preflight: store 2 exists but no other store is Up."""

    async def list_stores(self) -> list[Any]:
        return [store(1, "Down"), store(2), store(3, "Down")]

    async def evicted_leader_store_ids(self) -> list[int]:
        return []

    async def get_replication_config(self) -> Any:
        from operator_tikv.models.config import ReplicationConfig

        return ReplicationConfig(max_replicas=3)


async def test_score_runs_preflight_and_records_refusals() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    violation = Violation(
        kind=ViolationKind.WRITE_LATENCY,
        severity=Severity.WARNING,
        store_id=2,
        value=float("inf"),
        threshold=100.0,
        unit="ms",
        first_seen=0.0,
        message="slow",
    )
    incident = incident_for(violation, at)
    assert incident.value is None and incident.subject == "store:2"
    assert incident.title == "High write latency on store 2"
    situation = Situation(incident, observation([store(1)]), RefusingPD(), dict(VARS))  # type: ignore[arg-type]
    diagnosis = Diagnosis(
        incident_id=incident.id,
        source=DiagnosisSource.PLAYBOOK,
        summary="drain it",
        actions=[
            ProposedAction(action="drain", params={"store_id": 2}),
            ProposedAction(action="restart", params={}),
        ],
        created_at=at,
    )
    result = await score(case(), situation, diagnosis, DiagnosisKind.SLOW_STORE)
    first, second = result.actions
    assert first.verdict is Verdict.ACCEPTABLE and first.preflight_ok is False
    assert "no other store can take the leaders of store 2" in first.refusal
    assert second.preflight_ok is False and "Unknown action" in second.refusal
    assert not result.passed


def test_case_files_are_validated(tmp_path: Path) -> None:
    good = tmp_path / "x.yml"
    good.write_text(
        "name: x\nincident: {kind: store_down, subject: 'store:1'}\n"
        "expect: {kind: store_down, actions: none}\n"
    )
    assert load_case(good).expect.kind == [DiagnosisKind.STORE_DOWN]
    renamed = tmp_path / "y.yml"
    renamed.write_text(good.read_text())
    with pytest.raises(EvalError, match="must match the file name"):
        load_case(renamed)
    bad = tmp_path / "z.yml"
    bad.write_text("name: z\nincident: {kind: x}\nexpect: {kind: nonsense, actions: maybe}\n")
    with pytest.raises(EvalError, match=r"invalid case: expect\.kind"):
        load_case(bad)
    renamed.unlink()
    bad.unlink()
    assert [c.name for c in load_cases(tmp_path)] == ["x"]
    with pytest.raises(EvalError, match="no evaluation cases"):
        load_cases(tmp_path / "missing")


def test_the_table_shows_each_case_and_the_totals() -> None:
    report = EvalReport(
        mode="playbooks",
        scores=[
            scored("required", Verdict.ACCEPTABLE),
            CaseScore(
                case="bad",
                expected=(DiagnosisKind.STORE_DOWN,),
                kind=DiagnosisKind.SLOW_STORE,
                actions=(ActionScore("drain", {"store_id": 5}, Verdict.UNACCEPTABLE, True),),
                expect_actions="none",
            ),
        ],
    )
    table = format_table(report)
    assert "slow_store (want store_down)" in table
    assert "drain(5)" in table
    assert "kind accuracy     1/2 (50%)" in table
    assert "safe actions      1/2 (50%)" in table
    assert "cases passed      1/2 (50%)" in table
    assert "bad: unacceptable action drain(5)" in table
    assert not report.all_passed
    assert report.to_json()["totals"]["passed"] == 1
