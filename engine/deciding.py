"""Deciding: one generic decision on a proposal (approve, reject, cancel, expire) through the
approval policy and the one transition function, with compare-and-set. A redelivered request
is answered once; every refusal is audited with who, what and why. An approval that completes
the quorum hands the proposal to `after_approval` (the gate that starts its run).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from engine.applying import apply_transition
from engine.errors import NotFound, Refusal, StaleVersion
from engine.model import SYSTEM, Identity, Proposal, ProposalState
from engine.policy import ApprovalPolicy
from engine.ports import Clock, ProposalRepo
from engine.refusals import Refusals
from engine.results import Decided, Refused
from engine.transitions import ProposalEvent, TransitionResult

logger = logging.getLogger(__name__)


class ApprovalLatency(Protocol):
    """Optional metrics hook (`tikvops.observability.BotMetrics` provides it)."""

    def approval_latency(self, seconds: float) -> None: ...


class Deciding:
    """See the module docstring."""

    def __init__(
        self,
        *,
        proposals: ProposalRepo,
        policy: ApprovalPolicy,
        clock: Clock,
        refusals: Refusals,
        after_approval: Callable[[Proposal], Awaitable[Refused | None]],
        executes: Callable[[], bool],
        metrics: ApprovalLatency | None = None,
    ) -> None:
        self._proposals = proposals
        self._policy = policy
        self._clock = clock
        self._refusals = refusals
        self._after_approval = after_approval
        self._executes = executes
        self._metrics = metrics

    async def decide(
        self,
        event: ProposalEvent,
        proposal_id: str,
        actor: Identity,
        *,
        expected_version: int | None = None,
        request_id: str | None = None,
        reason: str | None = None,
    ) -> Decided | Refused:
        """`event` (approve, reject or cancel) on `proposal_id` by `actor`. The policy decides
        on the current record (re-read and decided again after a lost compare-and-set)."""
        duplicate = await self._refusals.duplicate(request_id, actor, proposal_id)
        if duplicate is not None:
            return duplicate
        now = self._clock.now()

        def build(current: Proposal) -> TransitionResult:
            return self._policy.decide(
                event, current, actor, now, expected_version=expected_version, reason=reason
            )

        try:
            result = await apply_transition(self._proposals, proposal_id, build)
        except (Refusal, NotFound, StaleVersion) as exc:
            refused = await self._refusals.refused(
                exc, actor, f"proposal.{event.value}", proposal_id
            )
            return self._counted(refused)
        if event is ProposalEvent.APPROVE:
            return await self._approved(result.proposal, actor)
        return Decided(
            proposal=result.proposal,
            decision="reject" if event is ProposalEvent.REJECT else "cancel",
            by=actor,
            reason=reason or None,
        )

    def _counted(self, refused: Refused) -> Refused:
        """Add how many approvals the proposal needs to what the refusing check observed."""
        observed = refused.observed
        if observed.risk is None or observed.needed is not None:
            return refused
        needed = self._policy.approvals_needed(observed.risk)
        return refused.model_copy(
            update={"observed": observed.model_copy(update={"needed": needed})}
        )

    async def _approved(self, proposal: Proposal, actor: Identity) -> Decided:
        decided = Decided(
            proposal=proposal,
            decision="approve",
            by=actor,
            approvals=len(proposal.approvals),
            needed=self._policy.approvals_needed(proposal.risk),
            auto_execute=self._executes(),
        )
        if proposal.state is not ProposalState.APPROVED:
            return decided
        if self._metrics is not None:
            waited = (self._clock.now() - proposal.created_at).total_seconds()
            try:
                self._metrics.approval_latency(waited)
            except Exception:
                logger.exception("metrics hook failed")
        blocked = await self._after_approval(proposal)
        if blocked is not None:
            return decided.model_copy(update={"waiting": blocked})
        return decided.model_copy(update={"executing": True})

    async def expire_due(self) -> list[Proposal]:
        """Expire every `proposed` proposal past its TTL (actor: the system); returns them."""
        now = self._clock.now()
        expired: list[Proposal] = []
        for due in await self._proposals.list_due_for_expiry(now):
            with contextlib.suppress(Refusal, NotFound, StaleVersion):  # decided meanwhile
                result = await apply_transition(
                    self._proposals,
                    due.id,
                    lambda current: self._policy.decide(ProposalEvent.EXPIRE, current, SYSTEM, now),
                )
                expired.append(result.proposal)
        return expired


__all__ = ["ApprovalLatency", "Deciding"]
