"""The engine's ports: the protocols through which the workflow reaches storage, chat, the
diagnoser and time. `storage` implements the repositories, `bot` (and the command line, and
tests) the `Notifier`, `diagnosis` the `Diagnoser`. All timestamps are aware UTC.

Conventions for repositories:
- `get` returns None for an unknown ID; `require`-style lookups are the caller's choice.
- Writes that change a versioned record use compare-and-set and raise `StaleVersion` when the
  record changed since it was read; the caller re-reads and decides again.
- A method taking an `audit` event writes it in the same transaction as the change.
- Failures of the store itself raise `engine.errors.StorageError`.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from engine.model import (
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

    async def get_open_by_fingerprint(self, fingerprint: str) -> Incident | None: ...

    async def list_open(self) -> list[Incident]:
        """Open incidents, oldest first."""
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
        """Insert a new incident (version 1). Raises `DuplicateIncident` when an open incident
        with the same fingerprint exists (another process opened it first)."""
        ...

    async def update(self, incident: Incident, *, audit: AuditEvent | None = None) -> Incident:
        """Save changes to an incident read at `incident.version`; returns it with version + 1.
        Raises `StaleVersion` if it changed meanwhile, `NotFound` if it does not exist."""
        ...


class DiagnosisRepo(Protocol):
    async def add(self, diagnosis: Diagnosis) -> Diagnosis:
        """Store a diagnosis; returns it with its `id`."""
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
        """Insert the new proposal of `engine.transitions.propose()` with its audit event, in
        one transaction."""
        ...

    async def get(self, proposal_id: str) -> Proposal | None: ...

    async def list(
        self,
        *,
        states: Sequence[ProposalState] | None = None,
        incident_id: str | None = None,
        limit: int = 50,
    ) -> list[Proposal]:
        """Proposals, newest first."""
        ...

    async def list_due_for_expiry(self, now: datetime) -> builtins.list[Proposal]:
        """Proposals still `proposed` whose `expires_at` is at or before `now`."""
        ...

    async def apply(
        self, result: TransitionResult, *, start_execution: Execution | None = None
    ) -> Proposal:
        """Save `result.proposal` with compare-and-set on `result.expected_version` and append
        `result.audit`, in one transaction. With `start_execution`, also insert that execution
        record in the same transaction (for the `start` transition; a second start of the same
        proposal raises `ExecutionAlreadyStarted`). Raises `StaleVersion` if the proposal
        changed since it was read: re-read it and transition again (see
        `engine.transitions.apply_transition`)."""
        ...


class ExecutionRepo(Protocol):
    async def start(self, execution: Execution) -> Execution:
        """Insert the execution record before the PD request is made. At most one per proposal:
        raises `ExecutionAlreadyStarted` otherwise."""
        ...

    async def get(self, proposal_id: str) -> Execution | None: ...

    async def update(self, execution: Execution, *, audit: AuditEvent | None = None) -> Execution:
        """Replace the stored record (status, requests, answers, progress, snapshots); with
        `audit`, append that event in the same transaction."""
        ...

    async def finish(self, execution: Execution) -> Execution:
        """Like `update`, for a finished status (sets `finished_at` if missing)."""
        ...

    async def list_unfinished(self) -> list[Execution]:
        """Executions a crash may have interrupted (started, request_sent, verifying)."""
        ...


class AuditLog(Protocol):
    async def append(self, event: AuditEvent) -> AuditEvent:
        """Append one event; returns it with its `id`. The log is append-only."""
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

    async def enqueue(self, kind: str, key: str, payload: JsonDict, *, now: datetime) -> int: ...

    async def enqueue_batch(
        self,
        kind: str,
        items: Sequence[tuple[str, JsonDict]],
        *,
        now: datetime,
        mark: str | None = None,
    ) -> list[int] | None:
        """Queue `items` (key, payload) in one transaction, in order. With `mark`, also record
        the mark in that transaction; if the mark was recorded before, queue nothing and return
        None (the notification it names was queued already)."""
        ...

    async def marked(self, marks: Iterable[str]) -> set[str]:
        """Which of `marks` are recorded."""
        ...

    async def due(self, now: datetime, limit: int = 20) -> list[OutboxItem]:
        """Pending items whose next attempt is due and that are first in line for their key,
        oldest first."""
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


class Notifier(Protocol):
    """What the engine reports. Implemented by the Slack edge, the command line and tests.
    Implementations must not raise for delivery problems (queue and retry instead)."""

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
    "AuditLog",
    "Clock",
    "DedupRepo",
    "Diagnoser",
    "DiagnosisRepo",
    "EngineSettingsRepo",
    "ExecutionRepo",
    "IncidentRepo",
    "Notifier",
    "NullNotifier",
    "Outbox",
    "ProposalRepo",
    "SlackRefs",
]
