"""The engine's ports: the protocols through which the workflow reaches storage, the
diagnoser and time, and the surfaces' side of the event log. `storage` implements the
repositories and the `EventLog`, the surfaces (`bot`, the command line, tests) a `Notifier`
or an `EventSink`, `diagnosis` the `Diagnoser`. All timestamps are aware UTC.

Conventions for repositories:
- `get` returns None for an unknown ID; `require`-style lookups are the caller's choice.
- Writes that change a versioned record use compare-and-set and raise `StaleVersion` when the
  record changed since it was read; the caller re-reads and decides again.
- A method taking an `audit` event writes it in the same transaction as the change; so does
  every change a surface hears of write its `engine.events.Event` (the transactional outbox).
- Failures of the store itself raise `engine.errors.StorageError`.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from engine.events import Event, EventKind, IncidentChange
from engine.model import (
    DEFAULT_CLUSTER,
    Attention,
    AuditEvent,
    Diagnosis,
    EngineSettings,
    Execution,
    Incident,
    IncidentStatus,
    JsonDict,
    MessageRef,
    NotProposed,
    OutboxItem,
    OutboxStatus,
    OwnerKind,
    Proposal,
    ProposalState,
    Severity,
)

if TYPE_CHECKING:
    from engine.transitions import TransitionResult
    from operator_tikv.observation import Observation


@runtime_checkable
class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, aware UTC."""
        ...


class IncidentRepo(Protocol):
    async def next_id(self) -> str:
        """A new unique incident ID (`I-<n>`), unique across processes sharing the store."""
        ...

    async def get(self, incident_id: str) -> Incident | None: ...

    async def get_open_by_fingerprint(
        self, fingerprint: str, cluster: str = DEFAULT_CLUSTER
    ) -> Incident | None:
        """The open incident of `fingerprint` in `cluster` (fingerprints are per cluster)."""
        ...

    async def list_open(self, cluster: str | None = None) -> list[Incident]:
        """Open incidents, oldest first; of one cluster when `cluster` is given."""
        ...

    async def list(
        self,
        *,
        status: IncidentStatus | None = None,
        kind: str | None = None,
        since: datetime | None = None,
        limit: int = 50,
    ) -> list[Incident]:
        """Incidents opened at or after `since`, newest first."""
        ...

    async def create(self, incident: Incident, *, audit: AuditEvent | None = None) -> Incident:
        """Insert a new incident (version 1) with its `incident.opened` event. Raises
        `DuplicateIncident` when an open incident with the same fingerprint exists (another
        process opened it first)."""
        ...

    async def update(
        self,
        incident: Incident,
        *,
        audit: AuditEvent | None = None,
        announce: EventKind | None = None,
        notes: tuple[IncidentChange, ...] = (),
        previous_severity: Severity | None = None,
    ) -> Incident:
        """Save changes to an incident read at `incident.version`; returns it with version + 1
        (with `announce`, the event of that kind about the saved incident is written too,
        carrying `notes`, what changed as data for the incident's thread, and
        `previous_severity` when this change moved the severity).
        Raises `StaleVersion` if it changed meanwhile, `NotFound` if it does not exist."""
        ...


class DiagnosisRepo(Protocol):
    async def add(self, diagnosis: Diagnosis, *, incident: Incident | None = None) -> Diagnosis:
        """Store a diagnosis; returns it with its `id`. With `incident`, its
        `diagnosis.ready` event is written in the same transaction."""
        ...

    async def latest_for(self, incident_id: str) -> Diagnosis | None: ...

    async def list_for(self, incident_id: str) -> list[Diagnosis]:
        """All diagnoses of an incident, oldest first."""
        ...


class ProposalRepo(Protocol):
    async def next_id(self) -> str:
        """A new unique proposal ID (`P-<n>`), unique across processes sharing the store."""
        ...

    async def create(self, result: TransitionResult) -> Proposal:
        """Insert the new proposal of `engine.transitions.propose()` with its audit event and
        its `proposal.made` event, in one transaction."""
        ...

    async def get(self, proposal_id: str) -> Proposal | None: ...

    async def list(
        self,
        *,
        states: Sequence[ProposalState] | None = None,
        incident_id: str | None = None,
        limit: int = 50,
        cluster: str | None = None,
    ) -> list[Proposal]:
        """Proposals, newest first; of one cluster when `cluster` is given."""
        ...

    async def list_due_for_expiry(self, now: datetime) -> builtins.list[Proposal]:
        """Proposals still `proposed` whose `expires_at` is at or before `now`."""
        ...

    async def apply(
        self,
        result: TransitionResult,
        *,
        start_execution: Execution | None = None,
        execution: Execution | None = None,
        also_audit: AuditEvent | None = None,
    ) -> Proposal:
        """Save `result.proposal` with compare-and-set on `result.expected_version`, append
        `result.audit` and the `proposal.changed` event, in one transaction. With
        `start_execution`, also insert that execution record (for the `start` transition; a
        second start of the same proposal raises `ExecutionAlreadyStarted`); with `execution`,
        replace the stored one (the final record of a run); with `also_audit`, append that audit
        row too (the run's closing row: `execution.verified`, `execution.reconciled`, ...).
        Raises `StaleVersion` if the proposal changed since it was read: re-read it and
        transition again (see `engine.applying.apply_transition`)."""
        ...


class ExecutionRepo(Protocol):
    async def start(self, execution: Execution) -> Execution:
        """Insert the execution record before the PD request is made. At most one per proposal:
        raises `ExecutionAlreadyStarted` otherwise."""
        ...

    async def get(self, proposal_id: str) -> Execution | None: ...

    async def update(
        self,
        execution: Execution,
        *,
        audit: AuditEvent | None = None,
        events: Sequence[Event] = (),
    ) -> Execution:
        """Replace the stored record (status, requests, answers, progress, snapshots); with
        `audit` and `events`, append those in the same transaction."""
        ...

    async def finish(self, execution: Execution) -> Execution:
        """Like `update`, for a finished status (sets `finished_at` if missing)."""
        ...

    async def list_unfinished(self) -> list[Execution]:
        """Executions a crash may have interrupted (started, request_sent, verifying)."""
        ...


class AuditLog(Protocol):
    async def append(self, event: AuditEvent, *, events: Sequence[Event] = ()) -> AuditEvent:
        """Append one event; returns it with its `id`. The log is append-only. `events` are
        written in the same transaction (e.g. a reminder's `proposal.changed`)."""
        ...

    async def list_recent(
        self,
        *,
        limit: int = 50,
        subject: str | None = None,
        actor_key: str | None = None,
        action_prefix: str | None = None,
    ) -> list[AuditEvent]:
        """Newest first."""
        ...


class SlackRefs(Protocol):
    """Where the chat message of each incident and proposal lives (storage only)."""

    async def put(self, ref: MessageRef) -> None:
        """Insert or replace the reference of `ref.owner_kind`/`ref.owner_id`."""
        ...

    async def get(self, owner_kind: OwnerKind, owner_id: str) -> MessageRef | None: ...

    async def find_by_ts(self, channel: str, ts: str) -> MessageRef | None: ...


class DedupRepo(Protocol):
    async def seen(self, request_id: str, *, now: datetime, ttl: timedelta) -> bool:
        """Atomically: True if `request_id` was already processed (and has not expired), else
        mark it processed until `now + ttl` and return False."""
        ...

    async def seen_any(self, request_ids: Sequence[str], *, now: datetime, ttl: timedelta) -> bool:
        """`seen` for several IDs of one request, in one transaction: True if any of them was
        already processed (and has not expired); every new or expired one is marked processed
        until `now + ttl` either way. An empty sequence is never a repeat."""
        ...

    async def purge(self, now: datetime) -> int:
        """Forget expired request IDs; returns how many."""
        ...


class Outbox(Protocol):
    """Messages waiting for delivery (e.g. Slack posts), retried until delivered. Items with
    the same `key` are delivered in order: a later item is not due while an earlier pending one
    with that key exists."""

    async def enqueue(
        self,
        kind: str,
        key: str,
        payload: JsonDict,
        *,
        now: datetime,
        cluster: str = DEFAULT_CLUSTER,
    ) -> int: ...

    async def enqueue_batch(
        self,
        kind: str,
        items: Sequence[tuple[str, JsonDict]],
        *,
        now: datetime,
        consumed: tuple[str, int] | None = None,
        cluster: str = DEFAULT_CLUSTER,
    ) -> list[int] | None:
        """Queue `items` (key, payload) in one transaction, in order, as messages about
        `cluster`. With `consumed` (deliverer, event seq), also move that deliverer's cursor to
        the event in the same transaction; if the cursor was already there, queue nothing and
        return None (the event was turned into messages before)."""
        ...

    async def due(self, now: datetime, limit: int = 20) -> list[OutboxItem]:
        """Pending items whose next attempt is due and that are first in line for their key,
        oldest first."""
        ...

    async def claim(
        self, now: datetime, *, lease: timedelta, limit: int = 20
    ) -> builtins.list[OutboxItem]:
        """`due` for several deliverers at once (replicas): the items returned are this
        caller's until `now + lease` (no other claim returns them, and the items behind them
        with the same key wait); an item whose lease lapsed is claimed again with that
        interrupted attempt counted."""
        ...

    async def get(self, item_id: int) -> OutboxItem | None: ...

    async def mark_delivered(
        self, item_id: int, *, now: datetime, result: JsonDict | None = None
    ) -> None: ...

    async def mark_failed(
        self, item_id: int, error: str, *, next_attempt_at: datetime | None
    ) -> None:
        """Count a failed attempt; retry at `next_attempt_at`, or give up (`dead`) if None."""
        ...

    async def depth(self) -> int:
        """Pending items."""
        ...

    async def list(
        self, *, statuses: Sequence[OutboxStatus] | None = None, limit: int = 50
    ) -> builtins.list[OutboxItem]:
        """Items, newest first, optionally only those in `statuses`."""
        ...

    async def requeue(self, item_ids: Sequence[int] | None, *, now: datetime) -> builtins.list[int]:
        """Give dead items (all, or those of `item_ids`) another round of attempts; returns
        the IDs requeued."""
        ...


class EngineSettingsRepo(Protocol):
    async def get(self) -> EngineSettings: ...

    async def save(self, settings: EngineSettings, *, audit: AuditEvent) -> None:
        """Store new settings with the audit event of the change, in one transaction."""
        ...


class EventLog(Protocol):
    """The ordered log of events (`engine.events`); changes write to it through the
    repositories, in their own transactions."""

    async def append(self, event: Event) -> Event:
        """Write an event that goes with no other change (e.g. the actions not proposed)."""
        ...

    async def after(self, seq: int, limit: int = 100) -> builtins.list[Event]:
        """Events after `seq`, in order."""
        ...

    async def head(self) -> int:
        """The seq of the newest event (0 when there is none)."""
        ...

    async def cursor(self, consumer: str) -> int:
        """How far the durable deliverer `consumer` got (0 when it never took one)."""
        ...

    def subscribe(self, listener: Callable[[int], None]) -> None:
        """Call `listener(first_seq)` after each commit that wrote events in this process
        (`first_seq`: the seq of the first event of that commit)."""
        ...


class EventSink(Protocol):
    """A deliverer's rendering side (`engine.relay.EventRelay` feeds it events in order)."""

    async def position(self) -> int:
        """The seq of the last event this sink took (read back from storage when durable)."""
        ...

    async def deliver(self, event: Event) -> None:
        """Take one event. Raising leaves it to be offered again later."""
        ...

    async def skip(self, event: Event) -> None:
        """Move past an event that could not be taken after many tries."""
        ...


class AttentionRepo(Protocol):
    """Stores who attends to an incident (`engine.attending`)."""

    async def save(self, incident: Incident, attention: Attention, audit: AuditEvent) -> Incident:
        """Store `attention` on `incident` with a compare-and-set on its version, with `audit`
        and its `incident.attention` event in the same transaction; returns the stored
        incident. Raises `StaleVersion` or `NotFound`."""
        ...


class Notifier(Protocol):
    """What a surface does with each kind of event (the terminal, tests; the relay's
    `NotifierSink` calls it in event order)."""

    async def incident_opened(self, incident: Incident) -> None: ...

    async def incident_updated(self, incident: Incident) -> None: ...

    async def incident_resolved(self, incident: Incident) -> None: ...

    async def diagnosis_ready(self, incident: Incident, diagnosis: Diagnosis) -> None: ...

    async def actions_not_proposed(
        self, incident: Incident, diagnosis: Diagnosis, not_proposed: Sequence[NotProposed]
    ) -> None:
        """Actions `diagnosis` suggested that did not become proposals (refused by a check or
        the policy, or already proposed), each with the engine's sentence saying why. Reported
        after the proposals that were made, so a surface can say which suggestion is missing
        from what `diagnosis_ready` announced."""
        ...

    async def proposal_made(self, proposal: Proposal) -> None: ...

    async def proposal_changed(self, proposal: Proposal, event: AuditEvent) -> None:
        """The proposal moved (approved, partially approved, rejected, expired, started,
        finished...); `event` is the audit event of that transition."""
        ...

    async def execution_progress(self, proposal: Proposal, execution: Execution) -> None: ...


@runtime_checkable
class AttentionNotifier(Protocol):
    """A surface that reports who attends to an incident (acknowledged, silenced, unsilenced,
    silence ended: `event.action`); the relay tells other surfaces `incident_updated`."""

    async def incident_attention(self, incident: Incident, event: AuditEvent) -> None: ...


@runtime_checkable
class ChangeNotifier(Protocol):
    """A surface that words what changed about an incident (`engine.events.IncidentChange`)
    and the severity before the change (None when it did not move); the relay calls it instead
    of `incident_updated` for the updates of surfaces that have it."""

    async def incident_changed(
        self,
        incident: Incident,
        changes: Sequence[IncidentChange],
        previous_severity: Severity | None,
    ) -> None: ...


class Diagnoser(Protocol):
    async def diagnose(self, incident: Incident, observation: Observation) -> Diagnosis:
        """A diagnosis of `incident` from one observation of the cluster. Must not raise for a
        model failure: return a Diagnosis with `error` set instead."""
        ...


class NullNotifier:
    """A Notifier that reports nothing (headless runs, tests that do not look)."""

    async def incident_opened(self, incident: Incident) -> None:
        return None

    async def incident_updated(self, incident: Incident) -> None:
        return None

    async def incident_resolved(self, incident: Incident) -> None:
        return None

    async def diagnosis_ready(self, incident: Incident, diagnosis: Diagnosis) -> None:
        return None

    async def actions_not_proposed(
        self, incident: Incident, diagnosis: Diagnosis, not_proposed: Sequence[NotProposed]
    ) -> None:
        return None

    async def proposal_made(self, proposal: Proposal) -> None:
        return None

    async def proposal_changed(self, proposal: Proposal, event: AuditEvent) -> None:
        return None

    async def execution_progress(self, proposal: Proposal, execution: Execution) -> None:
        return None


__all__ = [
    "AttentionNotifier",
    "AttentionRepo",
    "AuditLog",
    "ChangeNotifier",
    "Clock",
    "DedupRepo",
    "Diagnoser",
    "DiagnosisRepo",
    "EngineSettingsRepo",
    "EventLog",
    "EventSink",
    "ExecutionRepo",
    "IncidentRepo",
    "Notifier",
    "NullNotifier",
    "Outbox",
    "ProposalRepo",
    "SlackRefs",
]
