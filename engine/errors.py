"""The engine's error tree: every refusal and failure the workflow can report, as typed errors
whose message is a sentence a user can act on.

Storage implementations raise `StorageError`, `StaleVersion`, `NotFound` and `DuplicateIncident`
from here, so the engine can handle them without importing storage.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.model import AuditEvent
    from engine.results import Observed


class EngineError(Exception):
    """Base of every error the engine raises; `str(error)` is the user-facing sentence."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class TemporaryError(EngineError):
    """A failure worth retrying after `delay` seconds (PD busy, database locked, ...)."""

    def __init__(self, message: str, *, delay: float = 5.0) -> None:
        super().__init__(message)
        self.delay = delay


class PermanentError(EngineError):
    """A failure that retrying will not fix."""


class Refusal(EngineError):
    """Something a person (or the system) asked for was refused. `audit` is the refusal record
    to append to the audit log (who tried what, and why not); the message says why and what to
    do instead; `observed` is what the refusing check saw, as data for the surfaces. Catch this
    one class to answer every refusal."""

    def __init__(
        self, message: str, *, audit: AuditEvent | None = None, observed: Observed | None = None
    ) -> None:
        super().__init__(message)
        self.audit = audit
        self.observed = observed


class PolicyRefusal(Refusal):
    """The approval policy does not allow this actor to do this (not an approver, self-approval
    of a high-risk action, kill switch on, ...). `rule` names the rule that refused."""

    def __init__(
        self,
        message: str,
        *,
        rule: str,
        audit: AuditEvent | None = None,
        observed: Observed | None = None,
    ) -> None:
        super().__init__(message, audit=audit, observed=observed)
        self.rule = rule


class TransitionError(Refusal):
    """A proposal state change that the state machine forbids."""

    def __init__(
        self,
        message: str,
        *,
        proposal_id: str,
        state: str,
        event: str,
        audit: AuditEvent | None = None,
        observed: Observed | None = None,
    ) -> None:
        super().__init__(message, audit=audit, observed=observed)
        self.proposal_id = proposal_id
        self.state = state
        self.event = event


class AlreadyDecided(TransitionError):
    """The proposal already left `proposed` (approved, rejected, cancelled, ran)."""


class ProposalExpired(TransitionError):
    """The proposal was not approved before its expiry time."""


class DuplicateApproval(TransitionError):
    """The same person tried to approve twice; a second click never counts twice."""


class StaleVersion(EngineError):
    """A compare-and-set failed: the record changed since it was read. Re-read and retry.
    `seen` is True when `expected` is the version a person saw (a button), False when it is
    the version this process read (a race lost while deciding)."""

    def __init__(
        self,
        message: str,
        *,
        record_id: str,
        expected: int,
        actual: int | None,
        seen: bool = False,
    ) -> None:
        super().__init__(message)
        self.record_id = record_id
        self.expected = expected
        self.actual = actual
        self.seen = seen


class NotFound(EngineError):
    """A record that does not exist (unknown proposal ID, incident ID, ...)."""

    def __init__(self, message: str, *, kind: str, record_id: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.record_id = record_id


class DuplicateIncident(EngineError):
    """An open incident with the same fingerprint already exists (opened by another process)."""

    def __init__(self, message: str, *, fingerprint: str, existing_id: str | None) -> None:
        super().__init__(message)
        self.fingerprint = fingerprint
        self.existing_id = existing_id


class ExecutionAlreadyStarted(EngineError):
    """An execution record already exists for this proposal: it never runs twice."""

    def __init__(self, message: str, *, proposal_id: str) -> None:
        super().__init__(message)
        self.proposal_id = proposal_id


class ExecutionFinished(EngineError):
    """The execution record is finished (a reconciler settled it, or the run ended): a finished
    record is never changed, and the run that tried stops without sending anything."""

    def __init__(self, message: str, *, proposal_id: str) -> None:
        super().__init__(message)
        self.proposal_id = proposal_id


class StorageError(EngineError):
    """The database cannot be used (corrupted, locked, unwritable, too new). The message says
    which file and what to do."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


__all__ = [
    "AlreadyDecided",
    "DuplicateApproval",
    "DuplicateIncident",
    "EngineError",
    "ExecutionAlreadyStarted",
    "ExecutionFinished",
    "NotFound",
    "PermanentError",
    "PolicyRefusal",
    "ProposalExpired",
    "Refusal",
    "StaleVersion",
    "StorageError",
    "TemporaryError",
    "TransitionError",
]
