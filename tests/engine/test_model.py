"""Records: identities, UTC timestamps, immutability and JSON round-trips."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from engine.clock import FakeClock, format_duration, format_time
from engine.model import (
    SYSTEM,
    ActionRef,
    AuditEvent,
    Diagnosis,
    DiagnosisSource,
    EngineSettings,
    Evidence,
    ExecutionStatus,
    Hypothesis,
    Identity,
    IdentityKind,
    KillSwitch,
    MessageRef,
    OutboxItem,
    OwnerKind,
    ProgressNote,
    ProposalState,
    ProposedAction,
    Severity,
    fingerprint,
)
from tests.plugins.storage import T0, alice, make_execution, make_incident, make_proposal


def test_identity_keys_and_names() -> None:
    assert Identity.slack("U123").key == "slack:U123"
    # The engine names people in plain text; only bot/ writes Slack's mention syntax.
    assert Identity.slack("U123").name == "U123"
    assert Identity.slack("U123", name="alice").name == "alice"
    assert not hasattr(Identity.slack("U123"), "label")
    assert Identity.cli("alice@host").key == "cli:alice@host"
    assert Identity.cli("alice@host").name == "alice@host"
    assert SYSTEM.key == "system"
    assert Identity.claude("claude-x").key == "claude:claude-x"
    assert Identity.playbook("store-down").key == "playbook:store-down"
    # Same person whatever their display name or groups.
    assert Identity.slack("U1", name="a", groups=("S1",)).same_as(Identity.slack("U1"))
    assert not Identity.slack("U1").same_as(Identity.cli("U1"))
    assert not Identity.slack("U1").same_as(None)


def test_fingerprint_and_severity_order() -> None:
    assert fingerprint("store-down", "store:4") == "store-down:store:4"
    assert Severity.WARNING.worst(Severity.CRITICAL) is Severity.CRITICAL
    assert Severity.CRITICAL.worst(Severity.INFO) is Severity.CRITICAL


def test_timestamps_must_be_aware_and_become_utc() -> None:
    with pytest.raises(ValidationError):
        make_incident(at=datetime(2024, 5, 1, 14, 0))  # naive
    plus_two = datetime(2024, 5, 1, 16, 0, tzinfo=timezone(timedelta(hours=2)))
    incident = make_incident(at=plus_two)
    assert incident.opened_at.utcoffset() == timedelta(0)
    assert incident.opened_at == T0


def test_records_are_frozen_and_strict() -> None:
    proposal = make_proposal()
    with pytest.raises(ValidationError):
        proposal.state = ProposalState.APPROVED  # type: ignore[misc]
    with pytest.raises(ValidationError):
        make_proposal(unknown_field=1)
    with pytest.raises(ValidationError):
        Diagnosis(
            incident_id="I-1",
            source=DiagnosisSource.CLAUDE,
            summary="x",
            confidence=1.5,
            created_at=T0,
        )


def _all_records() -> list[object]:
    return [
        alice(),
        make_incident(clear_since=T0, resolved_at=T0 + timedelta(minutes=1)),
        Diagnosis(
            id=3,
            incident_id="I-1",
            source=DiagnosisSource.CLAUDE,
            model="claude-x",
            prompt_version="v2",
            summary="store 4 is down",
            causes=[Hypothesis(statement="the node lost power", confidence=0.6)],
            evidence=[
                Evidence(fact="store 4 heartbeat is stale", value=95, unit="s", source="pd:/stores")
            ],
            confidence=0.7,
            actions=[ProposedAction(action="drain-store", params={"store_id": 4}, reason="x")],
            created_at=T0,
        ),
        make_proposal(
            ProposalState.APPROVED,
            undo=ActionRef(action="undrain", params={"s": 4}),
            preflight=[{"name": "up", "ok": True}],
            preview={"leaders": 10},
        ),
        make_execution(
            status=ExecutionStatus.VERIFYING,
            requests=[{"method": "POST", "path": "/pd/api/v1/operators", "body": {"a": 1}}],
            response={"status": 200},
            before={"leaders": 10},
            progress=[ProgressNote(at=T0, message="3 of 10 leaders moved")],
        ),
        AuditEvent(
            id=5,
            at=T0,
            actor=alice(),
            action="killswitch.on",
            subject="engine",
            detail={"on": True},
            reason="maintenance",
        ),
        EngineSettings(
            kill_switch=KillSwitch(on=True, by=alice(), at=T0, reason="r"),
            observe_only=True,
            updated_at=T0,
        ),
        MessageRef(
            owner_kind=OwnerKind.INCIDENT, owner_id="I-1", channel="C1", ts="1.2", thread_ts=None
        ),
        OutboxItem(
            id=1,
            kind="slack.post",
            key="I-1",
            payload={"text": "hi"},
            created_at=T0,
            next_attempt_at=T0,
        ),
    ]


@pytest.mark.parametrize("record", _all_records(), ids=lambda r: type(r).__name__)
def test_json_round_trip(record: object) -> None:
    cls = type(record)
    as_json = record.model_dump_json()  # type: ignore[attr-defined]
    back = cls.model_validate_json(as_json)  # type: ignore[attr-defined]
    assert back == record
    assert cls.model_validate(record.model_dump(mode="json")) == record  # type: ignore[attr-defined]


def test_proposal_approved_by_finds_same_person() -> None:
    proposal = make_proposal(ProposalState.APPROVED)
    assert proposal.approved_by(Identity.slack("U1ALICE")) is not None
    assert proposal.approved_by(Identity(kind=IdentityKind.CLI_USER, id="U1ALICE")) is None


def test_execution_finished_flag() -> None:
    assert not make_execution(status=ExecutionStatus.REQUEST_SENT).is_finished
    assert make_execution(status=ExecutionStatus.RECONCILED_FAILED).is_finished


def test_clock_and_formatting() -> None:
    clock = FakeClock(T0)
    assert clock.now() == T0
    assert clock.advance(90) == T0 + timedelta(seconds=90)
    with pytest.raises(ValueError):
        clock.advance(-1)
    assert format_time(T0, T0) == "14:00 UTC"
    assert format_time(T0) == "2024-05-01 14:00 UTC"
    assert format_duration(timedelta(seconds=45)) == "45 s"
    assert format_duration(timedelta(minutes=30)) == "30 min"
    assert format_duration(timedelta(minutes=125)) == "2 h 5 min"
    with pytest.raises(ValueError, match="naive"):
        FakeClock(datetime(2024, 1, 1))
