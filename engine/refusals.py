"""Refused attempts and redelivered requests: each is audited with who, what and why, and
turned into the `Refused` outcome the surfaces show. Shared by every use case of the engine.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Protocol

from engine.errors import EngineError, NotFound, PolicyRefusal, Refusal, StaleVersion
from engine.model import AuditEvent, AuditOutcome, Identity, JsonDict
from engine.policy import Rule
from engine.ports import AuditLog, Clock, DedupRepo, ProposalRepo
from engine.results import RefusalKind, Refused
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
            return Refused(reason=exc.message, kind=refusal_kind(exc), proposal=proposal)
        if isinstance(exc, NotFound):
            await self.audit_refusal(actor, action, subject, exc.message)
            return Refused(reason=exc.message, kind=RefusalKind.UNKNOWN)
        message = exc.message
        if proposal is not None and "since you saw it" not in message:
            # Lost every compare-and-set race (not a stale button): say where it stands now.
            message = (
                f"proposal {subject} changed while you were deciding (it is now "
                f"{proposal.state.value}, version {proposal.version}); look at its latest "
                "message and try again"
            )
        await self.audit_refusal(actor, action, subject, message)
        return Refused(reason=message, kind=RefusalKind.STALE, proposal=proposal)

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
        return Refused(reason=why, kind=RefusalKind.DUPLICATE)


__all__ = ["DEDUP_TTL", "Refusals", "refusal_kind"]
