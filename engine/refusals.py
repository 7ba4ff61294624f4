"""Refused attempts and redelivered requests: each is audited with who, what and why, and
turned into the `Refused` outcome the surfaces show. Shared by every use case of the engine.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Protocol

from engine.errors import (
    DuplicateApproval,
    EngineError,
    NotFound,
    PolicyRefusal,
    ProposalExpired,
    Refusal,
    StaleVersion,
)
from engine.model import AuditEvent, AuditOutcome, Identity, JsonDict, Proposal
from engine.policy import Rule
from engine.ports import AuditLog, Clock, DedupRepo, ProposalRepo
from engine.results import Observed, RefusalCheck, RefusalKind, Refused
from engine.transitions import refusal_audit

logger = logging.getLogger(__name__)

DEDUP_TTL = timedelta(hours=24)
"""How long a request ID is remembered (Slack retries within minutes)."""


class RefusalRepos(Protocol):
    @property
    def proposals(self) -> ProposalRepo: ...

    @property
    def audit(self) -> AuditLog: ...

    @property
    def dedup(self) -> DedupRepo: ...


def refusal_kind(refusal: Refusal) -> RefusalKind:
    if isinstance(refusal, PolicyRefusal):
        if refusal.rule == Rule.KILL_SWITCH:
            return RefusalKind.KILL_SWITCH
        if refusal.rule == Rule.OBSERVE_ONLY:
            return RefusalKind.OBSERVE_ONLY
        return RefusalKind.POLICY
    return RefusalKind.STATE


_RULE_CHECKS = {
    Rule.STATE: RefusalCheck.WRONG_STATE,
    Rule.EXPIRED: RefusalCheck.EXPIRED,
    Rule.DUPLICATE: RefusalCheck.ALREADY_APPROVED,
    Rule.NOT_APPROVER: RefusalCheck.NOT_APPROVER,
    Rule.SELF_APPROVAL: RefusalCheck.SELF_APPROVAL,
    Rule.NOT_A_PERSON: RefusalCheck.NOT_A_PERSON,
    Rule.LOCAL_OPERATOR: RefusalCheck.LOCAL_OPERATOR,
    Rule.KILL_SWITCH: RefusalCheck.KILL_SWITCH,
    Rule.OBSERVE_ONLY: RefusalCheck.OBSERVE_ONLY,
}


def refusal_check(refusal: Refusal) -> RefusalCheck:
    """Which check a refusal came from."""
    if isinstance(refusal, PolicyRefusal):
        return _RULE_CHECKS.get(refusal.rule, RefusalCheck.WRONG_STATE)
    if isinstance(refusal, DuplicateApproval):
        return RefusalCheck.ALREADY_APPROVED
    if isinstance(refusal, ProposalExpired):
        return RefusalCheck.EXPIRED
    return RefusalCheck.WRONG_STATE


def observed_proposal(proposal: Proposal | None, actor: Identity | None = None) -> Observed:
    """What a check on `proposal` saw of it (its state, version, approvals so far)."""
    if proposal is None:
        return Observed(actor=actor)
    return Observed.of_proposal(proposal, actor)


def as_refused(
    refusal: Refusal, proposal: Proposal | None = None, actor: Identity | None = None
) -> Refused:
    """A refusal as the outcome surfaces word (no audit: see `Refusals.refused`)."""
    observed = refusal.observed or observed_proposal(proposal, actor)
    return Refused(
        reason=refusal.message,
        kind=refusal_kind(refusal),
        check=refusal_check(refusal),
        observed=observed,
        proposal=proposal,
    )


class Refusals:
    """See the module docstring."""

    def __init__(self, repos: RefusalRepos, clock: Clock, dedup_ttl: timedelta = DEDUP_TTL):
        self._repos = repos
        self._clock = clock
        self._dedup_ttl = dedup_ttl

    async def append(self, event: AuditEvent) -> None:
        try:
            await self._repos.audit.append(event)
        except EngineError:
            logger.exception("could not append audit event %s", event.action)

    async def audit_refusal(
        self,
        actor: Identity,
        action: str,
        subject: str,
        why: str,
        tried: str | None = None,
        *,
        detail: JsonDict | None = None,
    ) -> None:
        extra: JsonDict = {"action": tried} if tried else {}
        await self.append(
            refusal_audit(
                subject,
                action,
                actor=actor,
                now=self._clock.now(),
                why=why,
                detail={**extra, **(detail or {})},
            )
        )

    async def refused(
        self,
        exc: Refusal | NotFound | StaleVersion,
        actor: Identity,
        action: str,
        subject: str = "engine",
    ) -> Refused:
        """Audit a refusal and turn it into the outcome surfaces show."""
        proposal = await self._repos.proposals.get(subject) if subject != "engine" else None
        if isinstance(exc, Refusal):
            if exc.audit is not None:
                await self.append(exc.audit)
            else:
                await self.audit_refusal(actor, action, subject, exc.message)
            return as_refused(exc, proposal, actor)
        if isinstance(exc, NotFound):
            await self.audit_refusal(actor, action, subject, exc.message)
            return Refused(
                reason=exc.message,
                kind=RefusalKind.UNKNOWN,
                check=RefusalCheck.NOT_FOUND,
                observed=Observed(actor=actor, record_kind=exc.kind, proposal_id=exc.record_id),
            )
        raced = not exc.seen
        message = exc.message
        if proposal is not None and raced:
            # Lost every compare-and-set race (not a stale button): record where it stands now.
            message = (
                f"proposal {subject} {action.removeprefix('proposal.')} refused: it changed "
                f"while being decided (now {proposal.state.value}, version {proposal.version})"
            )
        await self.audit_refusal(actor, action, subject, message)
        observed = observed_proposal(proposal, actor).model_copy(
            update={"expected_version": exc.expected, "raced": raced}
        )
        if proposal is None:
            observed = observed.model_copy(
                update={"proposal_id": subject, "proposal_version": exc.actual}
            )
        return Refused(
            reason=message,
            kind=RefusalKind.STALE,
            check=RefusalCheck.STALE_VERSION,
            observed=observed,
            proposal=proposal,
        )

    async def duplicate(
        self, request_id: str | None, actor: Identity, subject: str
    ) -> Refused | None:
        if request_id is None:
            return None
        now = self._clock.now()
        if not await self._repos.dedup.seen(request_id, now=now, ttl=self._dedup_ttl):
            return None
        why = f"request {request_id} was already handled; it is not applied twice"
        await self.append(
            AuditEvent(
                at=now,
                actor=actor,
                action="request.duplicate",
                subject=subject,
                detail={"request_id": request_id},
                outcome=AuditOutcome.REFUSED,
                reason=why,
            )
        )
        return Refused(
            reason=why,
            kind=RefusalKind.DUPLICATE,
            check=RefusalCheck.DUPLICATE_REQUEST,
            observed=Observed(actor=actor, request_id=request_id),
        )


__all__ = [
    "DEDUP_TTL",
    "Refusals",
    "as_refused",
    "observed_proposal",
    "refusal_check",
    "refusal_kind",
]
