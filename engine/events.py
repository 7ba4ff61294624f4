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

from pydantic import Field, field_validator, model_validator

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
    Severity,
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


class ChangeKind(StrEnum):
    """What changed about an incident, for one line of its thread."""

    ESCALATED = "escalated"
    """The cause became a worse one (its title changed): `title_from` → `title_to`."""
    CONSEQUENCE_APPEARED = "consequence.appeared"
    """A consequence attached: `consequence`, `count`, `stores`, `by_presence`."""
    CONSEQUENCE_CLEARED = "consequence.cleared"
    """A consequence cleared: `consequence`."""
    CAUSE_CLEARED = "cause.cleared"
    """The cause cleared (`title_from`) while consequences remain; the incident stays open."""
    MERGED_INTO = "merged.into"
    """This incident was the same cause as `other_id` (`other_title`) and was merged into it."""
    MERGED_FROM = "merged.from"
    """`other_id` (`other_title`) was the same cause and was merged into this incident."""


class IncidentChange(Record):
    """One change of an incident as data; the surfaces word it (`bot.render.incident`, the
    terminal's `tikvops.terminal_notifier`). Only the fields its `kind` names are set."""

    kind: ChangeKind
    title_from: str | None = None
    title_to: str | None = None
    consequence: str | None = Field(
        default=None, description="what the consequence is, e.g. 'regions with a pending peer'"
    )
    count: int | None = None
    stores: tuple[int, ...] = ()
    by_presence: bool = Field(
        default=False,
        description="attached because the stores are unhealthy, not because its peers sit there",
    )
    other_id: str | None = None
    other_title: str | None = None


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
    notes: tuple[IncidentChange, ...] = Field(
        default_factory=tuple,
        description="incident events: what changed, as data for a line in its thread (an "
        "escalation, a consequence that appeared or cleared, a merge); empty when only numbers "
        "moved",
    )
    previous_severity: Severity | None = Field(
        default=None,
        description="incident updates: the severity before this change when it changed, so a "
        "surface says 'warning → critical' without remembering anything",
    )

    @model_validator(mode="before")
    @classmethod
    def _cluster_of_subject(cls, data: object) -> object:
        """An event built without a cluster is about its incident's or proposal's cluster (a
        diagnosis, an attention change), so its row and its messages name the right one."""
        if isinstance(data, dict) and data.get("cluster") is None:
            for subject in (data.get("proposal"), data.get("incident")):
                cluster = getattr(subject, "cluster", None)
                if isinstance(subject, dict):
                    cluster = subject.get("cluster")
                if isinstance(cluster, str):
                    return {**data, "cluster": cluster}
        return data

    @field_validator("notes", mode="before")
    @classmethod
    def _drop_sentences(cls, value: object) -> object:
        """Events written before the notes were data held sentences: they are left out (the
        card itself is still rendered from the incident)."""
        if isinstance(value, list | tuple):
            return tuple(v for v in value if not isinstance(v, str))
        return value


def incident_event(
    kind: EventKind,
    incident: Incident,
    notes: tuple[IncidentChange, ...] = (),
    previous_severity: Severity | None = None,
) -> Event:
    return Event(
        at=incident.updated_at,
        kind=kind,
        subject=incident.id,
        cluster=incident.cluster,
        incident=incident,
        notes=notes,
        previous_severity=previous_severity,
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


__all__ = [
    "ChangeKind",
    "Event",
    "EventKind",
    "IncidentChange",
    "incident_event",
    "proposal_event",
]
