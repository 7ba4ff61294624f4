"""The record of a run: every step of an execution saved with what it tells (its audit row,
its `execution.progress` event), and the end of a run, where the proposal's final transition,
the finished execution record and the event that reports them are one transaction.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from engine.applying import apply_transition
from engine.errors import EngineError, ExecutionFinished, Refusal, StaleVersion
from engine.events import EventKind, proposal_event
from engine.model import (
    SYSTEM,
    ActionRef,
    AuditEvent,
    AuditOutcome,
    Execution,
    ExecutionStatus,
    JsonDict,
    ProgressNote,
    Proposal,
)
from engine.ports import AuditLog, Clock, ExecutionRepo, ProposalRepo
from engine.transitions import ProposalEvent, TransitionResult, transition
from operator_tikv.actions import Snapshot, get_action

logger = logging.getLogger(__name__)


class ExecutionMetrics(Protocol):
    """Optional metrics hook (`tikvops.observability.BotMetrics` provides it)."""

    def execution(self, action: str, outcome: str) -> None: ...


class WithExecution:
    """Adapter for `apply_transition`: saves a transition with the execution record in the
    same transaction (inserted at the start, replaced at the end). `known` (the proposal as
    the caller last saw it) answers the first read; the compare-and-set on its version decides,
    and a lost race reads the proposal again."""

    def __init__(
        self,
        repo: ProposalRepo,
        execution: Execution,
        *,
        start: bool,
        known: Proposal | None = None,
        also_audit: AuditEvent | None = None,
    ) -> None:
        self._repo = repo
        self._execution = execution
        self._start = start
        self._known = known
        self._also_audit = also_audit

    async def get(self, proposal_id: str) -> Proposal | None:
        known, self._known = self._known, None
        if known is not None and known.id == proposal_id:
            return known
        return await self._repo.get(proposal_id)

    async def apply(self, result: TransitionResult) -> Proposal:
        if self._start:
            return await self._repo.apply(result, start_execution=self._execution)
        return await self._repo.apply(
            result, execution=self._execution, also_audit=self._also_audit
        )


_FINAL_EVENT = {
    ExecutionStatus.UNVERIFIED: ProposalEvent.UNVERIFIED,
    ExecutionStatus.SUCCEEDED: ProposalEvent.SUCCEED,
    ExecutionStatus.FAILED: ProposalEvent.FAIL,
    ExecutionStatus.TIMED_OUT: ProposalEvent.FAIL,
    ExecutionStatus.RECONCILED_SUCCEEDED: ProposalEvent.RECONCILE_SUCCEEDED,
    ExecutionStatus.RECONCILED_FAILED: ProposalEvent.RECONCILE_FAILED,
}

_AUDIT_ACTION = {
    ExecutionStatus.UNVERIFIED: "execution.unverified",
    ExecutionStatus.SUCCEEDED: "execution.verified",
    ExecutionStatus.FAILED: "execution.failed",
    ExecutionStatus.TIMED_OUT: "execution.timed_out",
    ExecutionStatus.RECONCILED_SUCCEEDED: "execution.reconciled",
    ExecutionStatus.RECONCILED_FAILED: "execution.reconciled",
}


def undo_from(proposal: Proposal, execution: Execution | None) -> ActionRef | None:
    """The call that reverses a successful run, from the before snapshot the run recorded;
    None if the action is irreversible, did not succeed, or has nothing to undo."""
    if execution is None or execution.status not in (
        ExecutionStatus.SUCCEEDED,
        ExecutionStatus.RECONCILED_SUCCEEDED,
        ExecutionStatus.UNVERIFIED,  # PD accepted it: what it did may need reversing
    ):
        return None
    try:
        action = get_action(proposal.action)
        params = action.validate(proposal.params)
        before = Snapshot.model_validate(execution.before or {})
    except Exception:  # an action renamed since: no undo rather than a crash
        logger.warning("cannot compute the undo of proposal %s", proposal.id, exc_info=True)
        return None
    if not action.reversible:
        return None
    call = action.undo(params, before)
    if call is None:
        return None
    return ActionRef(action=call.action, params=dict(call.params))


class RunRecord:
    """Saves a run's steps and its end (see the module docstring). One per executor."""

    def __init__(
        self,
        *,
        proposals: ProposalRepo,
        executions: ExecutionRepo,
        audit: AuditLog,
        clock: Clock,
        metrics: ExecutionMetrics | None = None,
    ) -> None:
        self._proposals = proposals
        self._executions = executions
        self._audit = audit
        self._clock = clock
        self._metrics = metrics

    async def append(self, event: AuditEvent) -> None:
        try:
            await self._audit.append(event)
        except EngineError:
            logger.exception("could not append audit event %s", event.action)

    def event(
        self,
        action: str,
        proposal: Proposal,
        *,
        detail: JsonDict | None = None,
        outcome: AuditOutcome = AuditOutcome.OK,
        reason: str | None = None,
    ) -> AuditEvent:
        return AuditEvent(
            at=self._clock.now(),
            actor=SYSTEM,
            action=action,
            subject=proposal.id,
            detail={"action": proposal.action, "params": proposal.params, **(detail or {})},
            outcome=outcome,
            reason=reason,
        )

    async def save(
        self,
        execution: Execution,
        *,
        audit: AuditEvent | None = None,
        told: Proposal | None = None,
        **changes: Any,
    ) -> Execution:
        """Save changes to the execution record; with `told` (its proposal), the progress is
        an `execution.progress` event in the same transaction."""
        changes.setdefault("updated_at", self._clock.now())
        updated = Execution.model_validate({**execution.model_dump(), **changes})
        events = (
            [proposal_event(EventKind.EXECUTION_PROGRESS, told, execution=updated)]
            if told is not None
            else []
        )
        return await self._executions.update(updated, audit=audit, events=events)

    def note(self, message: str) -> ProgressNote:
        return ProgressNote(at=self._clock.now(), message=message)

    async def finish(
        self,
        proposal: Proposal,
        execution: Execution,
        status: ExecutionStatus,
        message: str,
        *,
        after: JsonDict | None = None,
        detail: JsonDict | None = None,
        reconciled: bool = False,
    ) -> Execution:
        """Record the final status, move the proposal to succeeded/failed and report it."""
        now = self._clock.now()
        succeeded = status in (ExecutionStatus.SUCCEEDED, ExecutionStatus.RECONCILED_SUCCEEDED)
        execution = Execution.model_validate(
            {
                **execution.model_dump(),
                "status": status,
                "updated_at": now,
                "finished_at": now,
                "after": after if after is not None else execution.after,
                "error": None if succeeded else message,
                "progress": [*execution.progress, ProgressNote(at=now, message=message)],
            }
        )
        undo = (
            undo_from(proposal, execution)
            if succeeded or status is ExecutionStatus.UNVERIFIED
            else None
        )
        extra: JsonDict = {"execution": status.value, **(detail or {})}
        if undo is not None:
            extra["undo"] = undo.model_dump(mode="json")
        event = (
            _FINAL_EVENT[status]
            if status is ExecutionStatus.UNVERIFIED or not reconciled
            else ProposalEvent.RECONCILE_SUCCEEDED
            if succeeded
            else ProposalEvent.RECONCILE_FAILED
        )
        if execution.finished_at is None:
            execution = execution.model_copy(update={"finished_at": now})
        closing = self.event(
            _AUDIT_ACTION[status],
            proposal,
            detail={"status": status.value, **extra},
            outcome=AuditOutcome.OK if succeeded else AuditOutcome.ERROR,
            reason=message,
        )
        # The proposal's final transition, the finished record, the run's closing audit row and
        # the event that tells them are one transaction: a kill between them leaves none of them.
        try:
            await apply_transition(
                WithExecution(self._proposals, execution, start=False, also_audit=closing),
                proposal.id,
                lambda p: transition(
                    p, event, actor=SYSTEM, now=now, outcome=message, detail=extra
                ),
            )
        except (Refusal, StaleVersion) as exc:  # another process finished it meanwhile
            logger.warning("proposal %s was finished elsewhere: %s", proposal.id, exc)
            try:
                execution = await self._executions.finish(execution)
            except ExecutionFinished:  # and its record too: that settlement stands
                stored = await self._executions.get(proposal.id)
                return stored if stored is not None else execution
            await self.append(closing)
        if self._metrics is not None:
            try:
                self._metrics.execution(proposal.action, status.value)
            except Exception:
                logger.exception("execution metrics hook failed")
        return execution


__all__ = ["ExecutionMetrics", "RunRecord", "WithExecution", "undo_from"]
