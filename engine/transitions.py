"""The proposal state machine: the table of allowed transitions and the one function that applies
them. `transition()` is pure: it returns the next proposal (version + 1) and the audit event that
must be saved with it, in one transaction, by `ProposalRepo.apply()`. Nothing else creates a
proposal in a different state.

```
proposed ──approve──> approved ──start──> executing ──succeed/fail──> succeeded | failed
    │                    │                    ├──reconcile_succeeded/failed (after a restart)
    │                    │                    └──unverified──> unverified (PD accepted the
    │                    │                         write; reading PD to verify it kept failing)
    ├──reject──> rejected└──cancel──> cancelled
    ├──expire──> expired
    └──cancel──> cancelled
```

An approval that does not reach the quorum (high risk, two approvals) keeps the state `proposed`
but records the approval and bumps the version. `record_preflight` stores fresh preflight
results or a preview without changing the state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import NoReturn

from engine.clock import format_duration, format_time, utc
from engine.errors import (
    AlreadyDecided,
    DuplicateApproval,
    ProposalExpired,
    StaleVersion,
    TransitionError,
)
from engine.model import (
    ActionRef,
    Approval,
    AuditEvent,
    AuditOutcome,
    Identity,
    JsonDict,
    Proposal,
    ProposalOrigin,
    ProposalState,
    RiskLevel,
)
from engine.results import Observed

S = ProposalState


class ProposalEvent(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    EXPIRE = "expire"
    CANCEL = "cancel"
    START = "start"
    SUCCEED = "succeed"
    FAIL = "fail"
    RECONCILE_SUCCEEDED = "reconcile_succeeded"
    RECONCILE_FAILED = "reconcile_failed"
    UNVERIFIED = "unverified"
    RECORD_PREFLIGHT = "record_preflight"


E = ProposalEvent

TRANSITIONS: Mapping[tuple[ProposalState, ProposalEvent], ProposalState] = {
    (S.PROPOSED, E.APPROVE): S.APPROVED,  # stays PROPOSED while the quorum is not reached
    (S.PROPOSED, E.REJECT): S.REJECTED,
    (S.PROPOSED, E.EXPIRE): S.EXPIRED,
    (S.PROPOSED, E.CANCEL): S.CANCELLED,
    (S.PROPOSED, E.RECORD_PREFLIGHT): S.PROPOSED,
    (S.APPROVED, E.START): S.EXECUTING,
    (S.APPROVED, E.CANCEL): S.CANCELLED,
    (S.APPROVED, E.RECORD_PREFLIGHT): S.APPROVED,
    (S.EXECUTING, E.SUCCEED): S.SUCCEEDED,
    (S.EXECUTING, E.FAIL): S.FAILED,
    (S.EXECUTING, E.RECONCILE_SUCCEEDED): S.SUCCEEDED,
    (S.EXECUTING, E.RECONCILE_FAILED): S.FAILED,
    (S.EXECUTING, E.UNVERIFIED): S.UNVERIFIED,
    (S.EXECUTING, E.RECORD_PREFLIGHT): S.EXECUTING,
}
"""Every allowed (state, event) and the state it leads to. Anything else is refused."""

_DECISIONS = frozenset({E.APPROVE, E.REJECT, E.EXPIRE, E.CANCEL})
_RUN_RESULTS = frozenset(
    {E.SUCCEED, E.FAIL, E.RECONCILE_SUCCEEDED, E.RECONCILE_FAILED, E.UNVERIFIED}
)


@dataclass(frozen=True, slots=True)
class TransitionResult:
    """The outcome of one transition: `proposal` is the new record to save (its version is
    `expected_version + 1`; for a new proposal `expected_version` is None and `previous` is
    None), `audit` the event to append in the same transaction."""

    proposal: Proposal
    audit: AuditEvent
    previous: Proposal | None
    event: ProposalEvent | None

    @property
    def expected_version(self) -> int | None:
        return None if self.previous is None else self.previous.version

    @property
    def state_changed(self) -> bool:
        return self.previous is None or self.previous.state is not self.proposal.state


def is_allowed(state: ProposalState, event: ProposalEvent) -> bool:
    return (state, event) in TRANSITIONS


def propose(
    *,
    proposal_id: str,
    action: str,
    params: JsonDict,
    risk: RiskLevel,
    origin: ProposalOrigin,
    proposed_by: Identity,
    now: datetime,
    ttl: timedelta,
    requested_by: Identity | None = None,
    incident_id: str | None = None,
    reversible: bool = False,
    undo: ActionRef | None = None,
    reason: str = "",
    preflight: list[JsonDict] | None = None,
    preview: JsonDict | None = None,
) -> TransitionResult:
    """A new proposal in state `proposed` (version 1, expiring at now + ttl) and its
    `proposal.created` audit event. Save it with `ProposalRepo.create(result)`; the ID comes
    from `ProposalRepo.next_id()`."""
    now = utc(now)
    proposal = Proposal(
        id=proposal_id,
        incident_id=incident_id,
        action=action,
        params=dict(params),
        risk=risk,
        reversible=reversible,
        undo=undo,
        reason=reason,
        origin=origin,
        proposed_by=proposed_by,
        requested_by=requested_by or proposed_by,
        expires_at=now + ttl,
        created_at=now,
        updated_at=now,
        preflight=list(preflight or []),
        preview=preview,
    )
    audit = AuditEvent(
        at=now,
        actor=proposed_by,
        action="proposal.created",
        subject=proposal_id,
        detail={
            "action": action,
            "params": proposal.params,
            "risk": risk.value,
            "origin": origin.value,
            "incident_id": incident_id,
            "requested_by": proposal.requested_by.key,
            "expires_at": proposal.expires_at.isoformat(),
            "state": proposal.state.value,
            "version": proposal.version,
        },
        reason=reason or None,
    )
    return TransitionResult(proposal=proposal, audit=audit, previous=None, event=None)


def transition(
    proposal: Proposal,
    event: ProposalEvent | str,
    *,
    actor: Identity,
    now: datetime,
    reason: str | None = None,
    expected_version: int | None = None,
    approvals_needed: int = 1,
    outcome: str | None = None,
    preflight: list[JsonDict] | None = None,
    preview: JsonDict | None = None,
    detail: JsonDict | None = None,
) -> TransitionResult:
    """Apply `event` to `proposal` on behalf of `actor` at `now`.

    Raises a `TransitionError` (with the refusal audit event in `.audit`) when the table
    forbids it: `AlreadyDecided` (the proposal was already approved, rejected, ran...),
    `ProposalExpired`, `DuplicateApproval` (same person approving twice), or a plain
    `TransitionError` (e.g. rejecting while it executes); each carries what it saw as data
    (`Observed`: the state, who decided it and when), which the surfaces word. Raises
    `StaleVersion` (with `seen=True`) when `expected_version` (e.g. the version a button
    carried) is not the current one.

    `approvals_needed` is the quorum for an approval (from the approval policy). `outcome` is
    recorded on succeed/fail/reconcile, `preflight`/`preview` on any event that passes them.
    """
    now = utc(now)
    try:
        event = ProposalEvent(event)
    except ValueError:
        raise TransitionError(
            f"unknown proposal event {event!r}",
            proposal_id=proposal.id,
            state=proposal.state.value,
            event=str(event),
        ) from None

    target = TRANSITIONS.get((proposal.state, event))
    if target is None:
        _refuse(proposal, event, actor=actor, now=now, detail=detail)
    if expected_version is not None and expected_version != proposal.version:
        raise StaleVersion(
            f"proposal {proposal.id} {event.value} refused: version {expected_version} was seen, "
            f"it is now version {proposal.version} ({proposal.state.value})",
            record_id=proposal.id,
            expected=expected_version,
            actual=proposal.version,
            seen=True,
        )

    changes: dict[str, object] = {"version": proposal.version + 1, "updated_at": now}
    extra: JsonDict = {}
    if event is E.APPROVE:
        if now >= proposal.expires_at:
            _raise(
                ProposalExpired,
                proposal,
                event,
                f"proposal {proposal.id} approve refused: it expired at "
                f"{format_time(proposal.expires_at, now)}",
                actor=actor,
                now=now,
                detail=detail,
            )
        earlier = proposal.approved_by(actor)
        if earlier is not None:
            missing = max(approvals_needed - len(proposal.approvals), 0)
            _raise(
                DuplicateApproval,
                proposal,
                event,
                f"{actor.name} already approved proposal {proposal.id} at "
                f"{format_time(earlier.at, now)}; {missing} more needed",
                actor=actor,
                now=now,
                detail=detail,
                needed=approvals_needed,
            )
        approvals = (*proposal.approvals, Approval(by=actor, at=now))
        changes["approvals"] = approvals
        extra = {"approvals": len(approvals), "approvals_needed": approvals_needed}
        if len(approvals) < approvals_needed:
            target = S.PROPOSED
        else:
            changes.update(decided_by=actor, decided_at=now, decision_reason=reason)
    elif event is E.EXPIRE:
        if now < proposal.expires_at:
            _raise(
                TransitionError,
                proposal,
                event,
                f"proposal {proposal.id} does not expire until "
                f"{format_time(proposal.expires_at, now)}",
                actor=actor,
                now=now,
                detail=detail,
            )
        waited = proposal.expires_at - proposal.created_at
        changes.update(
            decided_by=actor,
            decided_at=now,
            decision_reason=reason or f"no approval within {format_duration(waited)}",
        )
    elif event in (E.REJECT, E.CANCEL):
        changes.update(decided_by=actor, decided_at=now, decision_reason=reason)
    elif event in _RUN_RESULTS and outcome is not None:
        changes["outcome"] = outcome
    changes["state"] = target
    if preflight is not None:
        changes["preflight"] = list(preflight)
    if preview is not None:
        changes["preview"] = preview

    new = proposal.model_copy(update=changes)
    new = Proposal.model_validate(new.model_dump())  # re-validate the copied record
    audit = AuditEvent(
        at=now,
        actor=actor,
        action=f"proposal.{event.value}",
        subject=proposal.id,
        detail={
            "event": event.value,
            "from": proposal.state.value,
            "to": new.state.value,
            "version": new.version,
            "action": proposal.action,
            "params": proposal.params,
            "risk": proposal.risk.value,
            **({"outcome": new.outcome} if new.outcome is not None else {}),
            **extra,
            **(detail or {}),
        },
        outcome=AuditOutcome.OK,
        reason=reason
        if reason is not None
        else new.decision_reason
        if event in _DECISIONS
        else None,
    )
    return TransitionResult(proposal=new, audit=audit, previous=proposal, event=event)


def refusal_record(proposal: Proposal, event: ProposalEvent, now: datetime) -> str:
    """The audit record of `event` refused by the state of `proposal` ("proposal P-7 reject
    refused: it is approved, by alice at 14:03 UTC"). People read the sentence
    `bot.messages.refusal` makes from the same facts (`Observed`)."""
    state = proposal.state
    facts = f"it is {state.value}"
    if state is S.EXPIRED:
        facts += f" since {format_time(proposal.expires_at, now)}"
    elif proposal.decided_by is not None and state is not S.PROPOSED:
        at = format_time(proposal.decided_at or proposal.updated_at, now)
        facts += f", by {proposal.decided_by.name} at {at}"
    elif state is not S.PROPOSED:
        facts += f" since {format_time(proposal.updated_at, now)}"
    if proposal.decision_reason and state is S.REJECTED:
        facts += f" ({proposal.decision_reason})"
    if state is S.PROPOSED and proposal.approvals:
        facts += f" with {len(proposal.approvals)} approval(s)"
    return f"proposal {proposal.id} {event.value} refused: {facts}"


def refusal_audit(
    proposal_id: str,
    action: str,
    *,
    actor: Identity,
    now: datetime,
    why: str,
    detail: JsonDict | None = None,
) -> AuditEvent:
    """The audit record of a refused attempt: `<action>.refused` with the reason."""
    return AuditEvent(
        at=utc(now),
        actor=actor,
        action=f"{action}.refused",
        subject=proposal_id,
        detail=dict(detail or {}),
        outcome=AuditOutcome.REFUSED,
        reason=why,
    )


def _refuse(
    proposal: Proposal,
    event: ProposalEvent,
    *,
    actor: Identity,
    now: datetime,
    detail: JsonDict | None,
) -> NoReturn:
    state = proposal.state
    cls: type[TransitionError] = TransitionError
    if state is S.EXPIRED:
        cls = ProposalExpired
    elif state is not S.PROPOSED and (event in _DECISIONS or event is E.START):
        cls = AlreadyDecided
    _raise(
        cls,
        proposal,
        event,
        refusal_record(proposal, event, now),
        actor=actor,
        now=now,
        detail=detail,
    )


def _raise(
    cls: type[TransitionError],
    proposal: Proposal,
    event: ProposalEvent,
    message: str,
    *,
    actor: Identity,
    now: datetime,
    detail: JsonDict | None,
    needed: int | None = None,
) -> NoReturn:
    observed = Observed.of_proposal(proposal, actor, event.value)
    if event is E.APPROVE and needed is not None:
        observed = observed.model_copy(update={"needed": needed})
    audit = refusal_audit(
        proposal.id,
        f"proposal.{event.value}",
        actor=actor,
        now=now,
        why=message,
        detail={"state": proposal.state.value, "version": proposal.version, **(detail or {})},
    )
    raise cls(
        message,
        proposal_id=proposal.id,
        state=proposal.state.value,
        event=event.value,
        audit=audit,
        observed=observed,
    )


__all__ = [
    "TRANSITIONS",
    "ProposalEvent",
    "TransitionResult",
    "is_allowed",
    "propose",
    "refusal_audit",
    "refusal_record",
    "transition",
]
