"""Incidents and diagnoses in SQLite: one open incident per fingerprint, compare-and-set
updates, filters, and diagnosis round-trips."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine.errors import DuplicateIncident, NotFound, StaleVersion
from engine.model import (
    SYSTEM,
    AuditEvent,
    Diagnosis,
    DiagnosisSource,
    Evidence,
    Hypothesis,
    IncidentStatus,
    ProposedAction,
    Severity,
)
from storage import Repositories
from tests.plugins.storage import T0, make_incident


async def test_create_get_and_open_lookup(repos: Repositories) -> None:
    incident = make_incident(id=await repos.incidents.next_id())
    audit = AuditEvent(at=T0, actor=SYSTEM, action="incident.opened", subject=incident.id)
    created = await repos.incidents.create(incident, audit=audit)
    assert created == incident and created.version == 1
    assert await repos.incidents.get(incident.id) == incident
    assert await repos.incidents.get_open_by_fingerprint("store-down:store:4") == incident
    assert await repos.incidents.get_open_by_fingerprint("store-down:store:5") is None
    assert [e.action for e in await repos.audit.list_recent(subject=incident.id)] == [
        "incident.opened"
    ]


async def test_one_open_incident_per_fingerprint(repos: Repositories) -> None:
    first = await repos.incidents.create(make_incident(id="I-1"))
    with pytest.raises(DuplicateIncident) as caught:
        await repos.incidents.create(make_incident(id="I-2"))
    assert caught.value.existing_id == "I-1"
    assert "an open incident for store-down:store:4 already exists (I-1)" in str(caught.value)
    with pytest.raises(DuplicateIncident, match="I-1 already exists"):
        await repos.incidents.create(make_incident(id="I-1", subject="store:9"))
    # Once resolved, the same condition may open a new incident.
    resolved = first.model_copy(
        update={"status": IncidentStatus.RESOLVED, "resolved_at": T0 + timedelta(minutes=5)}
    )
    await repos.incidents.update(resolved)
    again = await repos.incidents.create(make_incident(id="I-2", at=T0 + timedelta(minutes=9)))
    assert (await repos.incidents.get_open_by_fingerprint(again.fingerprint)) == again
    assert [i.id for i in await repos.incidents.list_open()] == ["I-2"]


async def test_update_is_compare_and_set(repos: Repositories) -> None:
    incident = await repos.incidents.create(make_incident())
    later = T0 + timedelta(minutes=1)
    seen = incident.model_copy(
        update={
            "severity": Severity.WARNING,
            "last_seen_at": later,
            "updated_at": later,
            "details": {"down_seconds": 180},
            "clear_since": later,
        }
    )
    saved = await repos.incidents.update(seen)
    assert saved.version == 2
    assert await repos.incidents.get(incident.id) == saved
    with pytest.raises(StaleVersion) as caught:
        await repos.incidents.update(seen)  # read at version 1, now 2
    assert caught.value.expected == 1 and caught.value.actual == 2
    with pytest.raises(NotFound):
        await repos.incidents.update(make_incident(id="I-404", subject="store:8"))


async def test_list_filters(repos: Repositories) -> None:
    a = await repos.incidents.create(make_incident(id="I-1", at=T0))
    b = await repos.incidents.create(
        make_incident(id="I-2", kind="disk-full", subject="store:2", at=T0 + timedelta(hours=1))
    )
    await repos.incidents.update(a.model_copy(update={"status": IncidentStatus.RESOLVED}))
    assert [i.id for i in await repos.incidents.list()] == ["I-2", "I-1"]
    assert [i.id for i in await repos.incidents.list(status=IncidentStatus.OPEN)] == ["I-2"]
    assert [i.id for i in await repos.incidents.list(kind="store-down")] == ["I-1"]
    assert [i.id for i in await repos.incidents.list(since=T0 + timedelta(minutes=1))] == [b.id]
    assert len(await repos.incidents.list(limit=1)) == 1


async def test_diagnoses_round_trip(repos: Repositories) -> None:
    incident = await repos.incidents.create(make_incident())
    first = Diagnosis(
        incident_id=incident.id,
        source=DiagnosisSource.PLAYBOOK,
        summary="store 4 is down",
        causes=[Hypothesis(statement="the host is off", confidence=0.5)],
        evidence=[Evidence(fact="last heartbeat", value=120, unit="s", source="pd:/stores")],
        confidence=0.6,
        actions=[ProposedAction(action="drain-store", params={"store_id": 4}, reason="x")],
        created_at=T0,
    )
    stored = await repos.diagnoses.add(first)
    assert stored.id is not None
    second = await repos.diagnoses.add(
        Diagnosis(
            incident_id=incident.id,
            source=DiagnosisSource.CLAUDE,
            model="claude-x",
            prompt_version="v1",
            summary="",
            error="diagnosis unavailable: Anthropic API timed out after 30 s",
            created_at=T0 + timedelta(minutes=1),
        )
    )
    assert await repos.diagnoses.latest_for(incident.id) == second
    assert await repos.diagnoses.list_for(incident.id) == [stored, second]
    assert await repos.diagnoses.latest_for("I-404") is None
