"""Who attends to an incident, on both backends: the owner and the silence are stored with a
compare-and-set on the incident's version, with their audit row and event in the same
transaction, and read back with the incident."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine.errors import NotFound, StaleVersion
from engine.events import EventKind
from engine.model import Attention, AuditEvent, Identity, Severity
from storage import Repositories
from tests.plugins.storage import T0, make_incident

ALICE = Identity.slack("U0ALICE", name="alice")


def _audit(subject: str, action: str = "incident.acknowledge") -> AuditEvent:
    return AuditEvent(at=T0, actor=ALICE, action=action, subject=subject)


async def test_attention_is_saved_with_its_audit_and_event_and_read_back(
    repos: Repositories,
) -> None:
    incident = await repos.incidents.create(make_incident(id="I-1"))
    attention = Attention(
        owner=ALICE,
        owned_since=T0,
        silenced_by=ALICE,
        silenced_at=T0,
        silenced_until=T0 + timedelta(hours=2),
        silence_reason="maintenance window",
        silenced_severity=Severity.WARNING,
    )
    saved = await repos.attention.save(incident, attention, _audit(incident.id))
    assert saved.version == incident.version + 1
    stored = await repos.incidents.get("I-1")
    assert stored is not None and stored.attention == attention
    assert stored.version == saved.version
    assert [e.action for e in await repos.audit.list_recent(subject="I-1")][-1:] == [
        "incident.acknowledge"
    ]
    events = await repos.events.after(0, limit=100)
    mine = [e for e in events if e.kind is EventKind.INCIDENT_ATTENTION]
    assert len(mine) == 1 and mine[0].incident is not None
    assert mine[0].incident.attention == attention


async def test_clearing_attention_stores_none_and_a_stale_version_changes_nothing(
    repos: Repositories,
) -> None:
    incident = await repos.incidents.create(make_incident(id="I-1"))
    owned = await repos.attention.save(
        incident, Attention(owner=ALICE, owned_since=T0), _audit(incident.id)
    )
    with pytest.raises(StaleVersion):
        await repos.attention.save(incident, Attention(), _audit(incident.id, "x"))
    cleared = await repos.attention.save(owned, Attention(), _audit(incident.id, "unsilence"))
    stored = await repos.incidents.get("I-1")
    assert stored is not None and stored.attention == Attention()
    assert stored.version == cleared.version
    with pytest.raises(NotFound):
        await repos.attention.save(
            make_incident(id="I-404"), Attention(owner=ALICE), _audit("I-404")
        )
