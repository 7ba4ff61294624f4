"""The events of the transactional outbox: what changed, written in the same transaction as the
change itself, in one ordered table (`storage.events`). Surfaces do not hear of a change from
the code that made it; deliverers read the events in order (`engine.relay`) and render them:
Slack (`bot.notifier`), the terminal (`tikvops.terminal_notifier`). A change that is committed
therefore always has its event, and the order of a thread is the order of the events.

Each event carries the records as they were in that transaction (the proposal at that version,
the audit event of the transition, the execution, the incident), so rendering needs no
look-up to know what happened.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from engine.model import (
    DEFAULT_CLUSTER,
    AuditEvent,
    ClusterName,
    Diagnosis,
    Execution,
    Incident,
    NotProposed,
    Proposal,
    Record,
    UtcDatetime,
)


class EventKind(StrEnum):
    INCIDENT_OPENED = "incident.opened"
    INCIDENT_UPDATED = "incident.updated"
    INCIDENT_RESOLVED = "incident.resolved"
    DIAGNOSIS_READY = "diagnosis.ready"
    ACTIONS_NOT_PROPOSED = "actions.not_proposed"
    PROPOSAL_MADE = "proposal.made"
    PROPOSAL_CHANGED = "proposal.changed"
    EXECUTION_PROGRESS = "execution.progress"
    INCIDENT_ATTENTION = "incident.attention"
    """Who attends to an incident changed (`engine.attending`): acknowledged, silenced,
    unsilenced, silence ended; `audit` says which and by whom."""


class Event(Record):
    """One change, as the deliverers see it. `seq` is its place in the log (None before it is
    stored); `subject` the incident or proposal ID it is about."""

    seq: int | None = None
    at: UtcDatetime
    kind: EventKind
    subject: str
    cluster: ClusterName = Field(
        default=DEFAULT_CLUSTER,
        description="the cluster of the incident or proposal: its messages go to its channel",
    )
    incident: Incident | None = None
    diagnosis: Diagnosis | None = None
    not_proposed: tuple[NotProposed, ...] = Field(default_factory=tuple)
    proposal: Proposal | None = None
    audit: AuditEvent | None = None
    execution: Execution | None = None
    notes: tuple[str, ...] = Field(
        default_factory=tuple,
        description="incident events: what changed, in sentences for its thread (an escalation, "
        "a consequence that appeared or cleared, a merge); empty when only numbers moved",
    )


def incident_event(kind: EventKind, incident: Incident, notes: tuple[str, ...] = ()) -> Event:
    return Event(
        at=incident.updated_at,
        kind=kind,
        subject=incident.id,
        cluster=incident.cluster,
        incident=incident,
        notes=notes,
    )


def proposal_event(
    kind: EventKind,
    proposal: Proposal,
    *,
    audit: AuditEvent | None = None,
    execution: Execution | None = None,
) -> Event:
    return Event(
        at=audit.at if audit is not None else proposal.updated_at,
        kind=kind,
        subject=proposal.id,
        cluster=proposal.cluster,
        proposal=proposal,
        audit=audit,
        execution=execution,
    )


__all__ = ["Event", "EventKind", "incident_event", "proposal_event"]
