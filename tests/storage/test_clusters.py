"""Several clusters in one database: every record keeps its cluster, an open incident is unique
per fingerprint within its cluster, IDs stay global, kill switches exist per cluster, and
migration 6 moves an existing single-cluster (version 5) database into cluster `default` with
nothing lost."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from engine.errors import DuplicateIncident
from engine.events import EventKind
from engine.model import (
    SYSTEM,
    AuditEvent,
    Diagnosis,
    DiagnosisSource,
    EngineSettings,
    Execution,
    Identity,
    KillSwitch,
    ProposalOrigin,
    ProposalState,
    RiskLevel,
)
from engine.policy import ANYONE, ApprovalPolicy
from engine.transitions import ProposalEvent, propose
from storage import Database, Repositories, SqlDatabase, latest_version
from storage.codec import dumps, ts
from storage.executions import _MUTABLE as EXECUTION_COLUMNS
from storage.executions import _mutable_values
from storage.incidents import _COLUMNS as INCIDENT_COLUMNS
from storage.incidents import _values as incident_values
from storage.proposals import _MARKS, _MUTABLE
from storage.proposals import _values as proposal_values
from tests.plugins.storage import T0, alice, make_incident, make_proposal

POLICY = ApprovalPolicy(approvers=frozenset({ANYONE}))


def _proposal_result(proposal_id: str, cluster: str):  # type: ignore[no-untyped-def]
    result = propose(
        proposal_id=proposal_id,
        action="drain-store",
        params={"store_id": 4},
        risk=RiskLevel.MEDIUM,
        origin=ProposalOrigin.USER,
        proposed_by=alice(),
        now=T0,
        ttl=timedelta(minutes=30),
    )
    return replace(
        result,
        proposal=result.proposal.model_copy(update={"cluster": cluster}),
        audit=result.audit.model_copy(update={"cluster": cluster}),
    )


async def test_one_open_incident_per_fingerprint_per_cluster(db: SqlDatabase) -> None:
    repos = Repositories.on(db)
    prod = make_incident(id=await repos.incidents.next_id(), cluster="prod")
    staging = make_incident(id=await repos.incidents.next_id(), cluster="staging")
    assert prod.fingerprint == staging.fingerprint  # store 4 of each cluster
    await repos.incidents.create(prod)
    await repos.incidents.create(staging)
    assert {prod.id, staging.id} == {"I-1", "I-2"}  # IDs come from one global sequence
    found = await repos.incidents.get_open_by_fingerprint(prod.fingerprint, "staging")
    assert found is not None and found.id == staging.id and found.cluster == "staging"
    assert await repos.incidents.get_open_by_fingerprint(prod.fingerprint) is None  # default
    assert [i.id for i in await repos.incidents.list_open("prod")] == [prod.id]
    assert len(await repos.incidents.list_open()) == 2
    again = make_incident(id=await repos.incidents.next_id(), cluster="prod")
    with pytest.raises(DuplicateIncident) as caught:
        await repos.incidents.create(again)
    assert caught.value.existing_id == prod.id
    audit = AuditEvent(at=T0, actor=SYSTEM, action="incident.updated", subject=prod.id)
    await repos.incidents.update(prod, audit=audit, announce=EventKind.INCIDENT_UPDATED)
    (logged,) = await repos.audit.list_recent(subject=prod.id)
    assert logged.cluster == "prod"  # the audit of a record names the record's cluster
    events = await repos.events.after(0)
    assert [(e.subject, e.cluster) for e in events] == [
        (prod.id, "prod"),
        (staging.id, "staging"),
        (prod.id, "prod"),
    ]


async def test_proposal_execution_audit_and_event_keep_their_cluster(db: SqlDatabase) -> None:
    repos = Repositories.on(db)
    created = await repos.proposals.create(
        _proposal_result(await repos.proposals.next_id(), "staging")
    )
    other = await repos.proposals.create(_proposal_result(await repos.proposals.next_id(), "prod"))
    assert (created.id, other.id) == ("P-1", "P-2")
    loaded = await repos.proposals.get(created.id)
    assert loaded is not None and loaded.cluster == "staging"
    approved = await repos.proposals.apply(
        POLICY.decide(ProposalEvent.APPROVE, created, alice(), T0)
    )
    started = POLICY.start(approved, EngineSettings(), T0)
    record = Execution(proposal_id=created.id, started_at=T0, updated_at=T0)
    await repos.proposals.apply(started, start_execution=record)
    execution = await repos.executions.get(created.id)
    assert execution is not None and execution.cluster == "staging"
    assert [p.id for p in await repos.proposals.list(cluster="prod")] == [other.id]
    assert {a.cluster for a in await repos.audit.list_recent(subject=created.id)} == {"staging"}
    events = await repos.events.after(0)
    assert [e.cluster for e in events if e.subject == created.id] == ["staging"] * 3
    assert [e.proposal.cluster for e in events if e.proposal is not None][-1] == "staging"


async def test_outbox_rows_keep_the_cluster_they_are_about(db: SqlDatabase) -> None:
    repos = Repositories.on(db)
    one = await repos.outbox.enqueue("slack", "incident:I-1", {"op": "post"}, now=T0)
    batch = await repos.outbox.enqueue_batch(
        "slack",
        [("incident:I-2", {"op": "post"}), ("chart:I-2", {"op": "chart"})],
        now=T0,
        cluster="staging",
    )
    assert batch is not None
    items = {item.id: item for item in await repos.outbox.list()}
    assert items[one].cluster == "default"  # one cluster: the default one
    assert [items[i].cluster for i in batch] == ["staging", "staging"]
    rows = await db.fetchall("SELECT id, cluster FROM outbox ORDER BY id")
    assert [(r[0], r[1]) for r in rows] == [(one, "default"), *((i, "staging") for i in batch)]
    (claimed, *_) = await repos.outbox.claim(T0, lease=timedelta(seconds=30))
    assert claimed.id == one and claimed.cluster == "default"


async def test_events_written_without_a_cluster_take_their_subjects(db: SqlDatabase) -> None:
    # a diagnosis (and an attention change) writes its event from the incident alone: the row
    # and the event name the incident's cluster, so its thread reply goes to that cluster
    repos = Repositories.on(db)
    incident = await repos.incidents.create(make_incident(cluster="staging"))
    diagnosis = Diagnosis(
        incident_id=incident.id, source=DiagnosisSource.PLAYBOOK, summary="disk", created_at=T0
    )
    await repos.diagnoses.add(diagnosis, incident=incident)
    events = await repos.events.after(0)
    assert [(e.kind, e.cluster) for e in events] == [
        (EventKind.INCIDENT_OPENED, "staging"),
        (EventKind.DIAGNOSIS_READY, "staging"),
    ]
    rows = await db.fetchall("SELECT kind, cluster FROM events ORDER BY seq")
    assert [r[1] for r in rows] == ["staging", "staging"]


async def test_kill_switches_per_cluster_beside_the_global_one(db: SqlDatabase) -> None:
    repos = Repositories.on(db)
    on = KillSwitch(on=True, by=alice(), at=T0, reason="maintenance")
    settings = EngineSettings(cluster_switches={"prod": on})
    audit = AuditEvent(at=T0, actor=alice(), action="killswitch.on", subject="engine")
    await repos.settings.save(settings, audit=audit)
    loaded = await repos.settings.get()
    assert loaded.cluster_switches == {"prod": on}
    assert loaded.switch_for("prod").on and not loaded.switch_for("staging").on
    assert not loaded.kill_switch.on
    everything = loaded.model_copy(update={"kill_switch": KillSwitch(on=True, by=alice())})
    assert everything.switch_for("staging").on  # the global switch holds every cluster


async def test_a_version_5_database_moves_into_cluster_default(db_path: Path) -> None:
    old = await Database.open(db_path, migrate_to=5)
    incident = make_incident(id="I-1")
    proposal = make_proposal(ProposalState.EXECUTING, id="P-1", incident_id="I-1")
    execution = Execution(proposal_id="P-1", started_at=T0, updated_at=T0)
    killed = KillSwitch(on=True, by=Identity.cli("ops@host"), at=T0, reason="upgrade")
    v5_incident = incident.model_dump(mode="json", exclude={"cluster"})
    v5_event = {"at": ts(T0), "kind": "incident.opened", "subject": "I-1", "incident": v5_incident}
    try:
        assert await old.schema_version() == 5
        async with old.transaction() as conn:  # as version 5 wrote them
            await conn.execute(
                f"INSERT INTO incidents (id, {INCIDENT_COLUMNS}, version) "
                f"VALUES (?, {', '.join('?' * 15)}, 1)",
                (incident.id, *incident_values(incident)),
            )
            await conn.execute(
                f"INSERT INTO proposals (id, {_MUTABLE}) VALUES (?, {_MARKS})",
                (proposal.id, *proposal_values(proposal)),
            )
            await conn.execute(
                f"INSERT INTO executions (proposal_id, started_at, {EXECUTION_COLUMNS}) "
                f"VALUES (?, ?, {', '.join('?' * 10)})",
                (execution.proposal_id, ts(execution.started_at), *_mutable_values(execution)),
            )
            await conn.execute(
                "INSERT INTO audit_log (at, actor, actor_identity, action, subject, detail, "
                "outcome) VALUES (?, ?, ?, ?, ?, '{}', 'ok')",
                (ts(T0), "system", dumps(SYSTEM), "incident.opened", "I-1"),
            )
            await conn.execute(
                "INSERT INTO events (at, kind, subject, payload) VALUES (?, ?, ?, ?)",
                (ts(T0), "incident.opened", "I-1", dumps(v5_event)),
            )
            await conn.execute(
                "UPDATE engine_settings SET kill_switch = ? WHERE id = 1", (dumps(killed),)
            )
            await conn.execute(
                "UPDATE id_sequences SET next_value = 2 WHERE name IN ('incident', 'proposal')"
            )
    finally:
        await old.close()

    new = await Database.open(db_path)
    try:
        assert await new.schema_version() == latest_version() == 6
        repos = Repositories.on(new)
        assert await repos.incidents.get("I-1") == incident
        assert (await repos.incidents.get("I-1")).cluster == "default"  # type: ignore[union-attr]
        assert await repos.incidents.get_open_by_fingerprint(incident.fingerprint) == incident
        # (approvals live in their own table, not written here)
        assert await repos.proposals.get("P-1") == proposal.model_copy(update={"approvals": ()})
        assert await repos.executions.get("P-1") == execution
        (audit,) = await repos.audit.list_recent(subject="I-1")
        assert audit.cluster == "default" and audit.action == "incident.opened"
        (event,) = await repos.events.after(0)
        assert event.cluster == "default" and event.incident == incident
        settings = await repos.settings.get()
        assert settings.kill_switch == killed and settings.cluster_switches == {}
        assert settings.switch_for("default") == killed
        # IDs continue where version 5 left them
        assert await repos.incidents.next_id() == "I-2"
        assert await repos.proposals.next_id() == "P-2"
        # a second cluster's store 4 may now be open beside the default cluster's
        await repos.incidents.create(make_incident(id="I-2", cluster="prod"))
        assert len(await repos.incidents.list_open()) == 2
    finally:
        await new.close()
