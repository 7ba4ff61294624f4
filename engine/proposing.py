"""Proposing: an action is validated against the registry, its preflight run as a dry run
against the live cluster and, only if every check passes, stored as a proposal (state
`proposed`) with the checks, the dry run and the undo. A failed check refuses with that
check's sentence and creates nothing; nothing is executed directly: a low-risk proposal is
approved by the system when the policy says so (then it starts like any approval), everything
else waits for people. Also the undo of a run that succeeded (or was sent but not verified).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any, Protocol

from engine.errors import StaleVersion, StorageError
from engine.model import (
    DEFAULT_CLUSTER,
    ActionRef,
    Identity,
    JsonDict,
    Proposal,
    ProposalOrigin,
    ProposalState,
    RiskLevel,
)
from engine.policy import ApprovalPolicy
from engine.ports import Clock, ExecutionRepo, ProposalRepo
from engine.refusals import Refusals
from engine.results import DryRunOutcome, Observed, ProposalCreated, RefusalKind, Refused
from engine.run_record import undo_from
from engine.transitions import propose
from operator_tikv.actions import (
    Action,
    ActionParams,
    InvalidParams,
    PreflightContext,
    ReadOnce,
    UnknownAction,
    get_action,
)
from operator_tikv.actions.ports import PDApi
from operator_tikv.errors import PDError


class ProposingRepos(Protocol):
    @property
    def proposals(self) -> ProposalRepo: ...

    @property
    def executions(self) -> ExecutionRepo: ...


class Proposing:
    """See the module docstring. `after_approval` starts a proposal the system approved."""

    def __init__(
        self,
        *,
        pd: PDApi,
        repos: ProposingRepos,
        policy: ApprovalPolicy,
        clock: Clock,
        refusals: Refusals,
        after_approval: Callable[[Proposal], Awaitable[Refused | None]],
        max_drained_stores: int = 1,
        cluster: str = DEFAULT_CLUSTER,
    ) -> None:
        self._pd = pd
        self._cluster = cluster
        self._repos = repos
        self._policy = policy
        self._clock = clock
        self._refusals = refusals
        self._after_approval = after_approval
        self._max_drained = max_drained_stores

    def _context(self) -> PreflightContext:
        return PreflightContext(max_drained_stores=self._max_drained, now=self._clock.now())

    def _resolve(
        self, action: str, params: Mapping[str, object] | ActionParams
    ) -> tuple[Action[Any], ActionParams] | Refused:
        try:
            found = get_action(action)
            raw: Any = params
            return found, found.validate(raw)
        except (UnknownAction, InvalidParams) as exc:
            return Refused(reason=str(exc), kind=RefusalKind.INVALID)

    async def dry_run(
        self, action: str, params: Mapping[str, object] | ActionParams
    ) -> DryRunOutcome | Refused:
        """The preflight checks (with what was observed), the exact PD request(s) and the
        expected effect, read from the live cluster. Creates nothing, sends nothing."""
        resolved = self._resolve(action, params)
        if isinstance(resolved, Refused):
            return resolved
        found, typed = resolved
        try:
            dry = await found.dry_run(typed, ReadOnce(self._pd), self._context())
            return DryRunOutcome(dry_run=dry)
        except PDError as exc:
            return Refused(reason=str(exc), kind=RefusalKind.PD)

    async def propose(
        self,
        action: str,
        params: Mapping[str, object] | ActionParams,
        *,
        actor: Identity,
        origin: ProposalOrigin,
        incident_id: str | None = None,
        reason: str = "",
        requested_by: Identity | None = None,
    ) -> ProposalCreated | Refused:
        """Validate, preflight (as a dry run) and store a proposal; never executes directly.
        A failed preflight check refuses with its sentence and creates nothing. `actor` is who
        proposes (a person, Claude, a playbook); `requested_by` defaults to `actor`."""
        now = self._clock.now()
        subject = incident_id or "engine"
        resolved = self._resolve(action, params)
        if isinstance(resolved, Refused):
            await self._refusals.audit_refusal(
                actor, "proposal.create", subject, resolved.reason, action
            )
            return resolved
        found, typed = resolved
        call_params: JsonDict = typed.model_dump(mode="json")
        reads = ReadOnce(self._pd)  # the dry run and the snapshot share each PD read
        try:
            dry = await found.dry_run(typed, reads, self._context())
            undo_call = (
                found.undo(typed, await found.snapshot(typed, reads)) if dry.would_run else None
            )
        except PDError as exc:
            refused = Refused(reason=str(exc), kind=RefusalKind.PD)
            await self._refusals.audit_refusal(
                actor, "proposal.create", subject, refused.reason, action
            )
            return refused
        if not dry.would_run:
            why = dry.preflight.refusal()
            await self._refusals.audit_refusal(
                actor,
                "proposal.create",
                subject,
                why,
                action,
                detail={
                    "params": call_params,
                    "failed": [c.name for c in dry.preflight.failures],
                },
            )
            return Refused(
                reason=why,
                kind=RefusalKind.PREFLIGHT,
                dry_run=dry,
                observed=Observed(
                    actor=actor, failed_checks=tuple(c.name for c in dry.preflight.failures)
                ),
            )
        undo = (
            ActionRef(action=undo_call.action, params=dict(undo_call.params))
            if undo_call is not None and found.reversible
            else None
        )
        try:
            proposal_id = await self._repos.proposals.next_id()
            result = propose(
                proposal_id=proposal_id,
                action=found.name,
                params=call_params,
                risk=RiskLevel(found.risk.value),
                origin=origin,
                proposed_by=actor,
                requested_by=requested_by,
                now=now,
                ttl=self._policy.proposal_ttl,
                incident_id=incident_id,
                reversible=found.reversible,
                undo=undo,
                reason=reason,
                preflight=[check.model_dump(mode="json") for check in dry.preflight.checks],
                preview=dry.model_dump(mode="json"),
            )
            if self._cluster != DEFAULT_CLUSTER:  # the proposal belongs to this PD's cluster
                result = replace(
                    result,
                    proposal=result.proposal.model_copy(update={"cluster": self._cluster}),
                    audit=result.audit.model_copy(update={"cluster": self._cluster}),
                )
            proposal = await self._repos.proposals.create(result)
        except StorageError as exc:
            return Refused(reason=str(exc), kind=RefusalKind.STORAGE)
        auto = self._policy.auto_approve(proposal, now)
        if auto is None:
            return ProposalCreated(proposal=proposal, dry_run=dry)
        try:
            approved = await self._repos.proposals.apply(auto)
        except StaleVersion:  # someone decided it in the meantime
            return ProposalCreated(proposal=proposal, dry_run=dry)
        await self._after_approval(approved)
        return ProposalCreated(proposal=approved, dry_run=dry, auto_approved=True)

    async def propose_undo(
        self, proposal_id: str, actor: Identity, *, request_id: str | None = None
    ) -> ProposalCreated | Refused:
        """Propose the undo of a proposal that ran successfully (origin `undo`), with the
        parameters computed from the before snapshot of its run."""
        duplicate = await self._refusals.duplicate(request_id, actor, proposal_id)
        if duplicate is not None:
            return duplicate
        undo = await self.undo_for(proposal_id)
        if isinstance(undo, Refused):
            return undo
        original = await self._repos.proposals.get(proposal_id)
        return await self.propose(
            undo.action,
            undo.params,
            actor=actor,
            origin=ProposalOrigin.UNDO,
            incident_id=original.incident_id if original else None,
            reason=f"undo of {proposal_id}",
        )

    async def undo_for(self, proposal_id: str) -> ActionRef | Refused:
        """The undo call of a successful reversible run, or why there is none."""
        proposal = await self._repos.proposals.get(proposal_id)
        if proposal is None:
            return Refused(
                reason=f"proposal {proposal_id} not found",
                kind=RefusalKind.UNKNOWN,
                observed=Observed(record_kind="proposal", proposal_id=proposal_id),
            )
        execution = await self._repos.executions.get(proposal_id)
        undo = undo_from(proposal, execution)
        if undo is not None:
            return undo
        if proposal.state not in (ProposalState.SUCCEEDED, ProposalState.UNVERIFIED):
            why = f"proposal {proposal_id} is {proposal.state.value}; only a run that succeeded "
            why += "can be undone"
        elif not proposal.reversible:
            why = f"proposal {proposal_id} ({proposal.action}) is not reversible"
        else:
            why = (
                f"proposal {proposal_id} changed nothing that needs undoing (the state before it "
                "ran already matched what an undo would restore)"
            )
        return Refused(reason=why, kind=RefusalKind.STATE)


__all__ = ["Proposing", "ProposingRepos"]
