"""Runs approved proposals against PD, at most once each, and reconciles interrupted runs.

`Executor.run(proposal_id)` is the only code that sends a cluster-changing request. Its steps:

1. **Gate.** The `approved → executing` transition (kill switch and observe-only checked by the
   policy on freshly read settings) is saved with compare-and-set *together with* the new
   `Execution` record (status `started`). Of any number of concurrent callers, in one process or
   several sharing the database, exactly one wins; the others get the existing execution back
   and send nothing.
2. **Preflight** on fresh cluster state, then the **before snapshot**, read *beside* the gate
   (they only read) through one `ReadOnce`, so each PD read is sent once for this run and
   the checks and the snapshot see the same state. A failed check fails the proposal with the
   check's sentence; nothing is sent.
3. The execution is marked `request_sent` (with its requests and the before snapshot) and
   saved, with its `execution.started` audit event in the same transaction, *before* the PD
   request goes out, so a crash at any later point leaves a record that says "maybe sent".
4. **PD request** (the action's `execute`). A refusal from PD fails the proposal with PD's
   message. A lost answer (`outcome_unknown`) is looked up with the action's `reconcile` (up to
   `LOST_ANSWER_LOOKS` times, backing off), never re-sent.
5. **Verification** (`engine.verifying`) with the action's poll interval and a per-action
   deadline; progress is saved with its `execution.progress` event. A deadline is recorded as
   `timed_out` (the proposal fails), never as success. A verification *read* that fails (PD
   unreachable, 5xx, an HTML page, a timeout) means "not verified yet": it is tried again with
   back-off until the deadline, then the run ends `unverified` ("sent and accepted, not
   verified: check ..."), never "failed"; the undo stays on offer.
6. **After snapshot** and the final transition (`succeed`/`fail`), saved with the finished
   execution record in one transaction; on success of a reversible action the undo call
   (computed from the before snapshot) is carried in the audit detail.

Nothing here tells a surface: every step's event is written with the step (`engine.events`),
and the deliverers read them in order, so the thread reads approved → started → outcome by
construction. When `Engine.approve` starts a run it passes the proposal it just approved (no
re-read; the compare-and-set checks its version).

`Executor.reconcile()` runs at start-up: every unfinished execution is checked against PD with
the action's `reconcile` (never re-sent); proposals left `approved` are resumed if approved
recently, otherwise cancelled. See its docstring.

Crash tests stop the process deterministically with the `checkpoint` hook, awaited with the
step name (`started`, `before_request`, `after_request`, `verifying`) at each step.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, Protocol

from engine.clock import format_time
from engine.errors import (
    EngineError,
    ExecutionAlreadyStarted,
    NotFound,
    PolicyRefusal,
    Refusal,
    StaleVersion,
    TransitionError,
)
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
    ProposalState,
)
from engine.policy import ApprovalPolicy
from engine.ports import AuditLog, Clock, EngineSettingsRepo, ExecutionRepo, ProposalRepo
from engine.transitions import ProposalEvent, TransitionResult, apply_transition, transition
from engine.verifying import Unverified, check_hint, verify_until_deadline
from operator_tikv.actions import (
    Action,
    ActionParams,
    Outcome,
    PreflightContext,
    PreflightReport,
    ReadOnce,
    Snapshot,
    Verification,
    get_action,
)
from operator_tikv.actions.ports import PDApi
from operator_tikv.errors import PDError, PDUnavailableError

logger = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[Any]]
Checkpoint = Callable[[str], Awaitable[None]]

#: Checkpoint names, in the order a run reaches them.
CHECKPOINTS = ("started", "before_request", "after_request", "verifying")


class ExecutionMetrics(Protocol):
    """Optional metrics hook (`tikvops.observability.BotMetrics` provides it)."""

    def execution(self, action: str, outcome: str) -> None: ...


@dataclass(frozen=True, slots=True)
class _Run:
    """One run's fixed facts: the proposal, its action and typed params, the before snapshot."""

    proposal: Proposal
    action: Action[Any]
    params: ActionParams
    before: Snapshot


@dataclass(frozen=True, slots=True)
class _Prepared:
    """What the reads beside the gate found: a run ready to send (`run`, `report` ok), or the
    sentence saying why nothing will be sent (`failure`, with the audit `detail`)."""

    run: _Run | None = None
    report: PreflightReport | None = None
    failure: str | None = None
    detail: JsonDict | None = None
    note: ProgressNote | None = None


async def _drop(task: asyncio.Future[Any]) -> None:
    """Cancel a read-only task that is no longer needed and wait until it has stopped."""
    task.cancel()
    await asyncio.wait([task])
    if not task.cancelled() and task.exception() is not None:
        logger.debug("a dropped task had failed", exc_info=task.exception())


class _WithExecution:
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
    ) -> None:
        self._repo = repo
        self._execution = execution
        self._start = start
        self._known = known

    async def get(self, proposal_id: str) -> Proposal | None:
        known, self._known = self._known, None
        if known is not None and known.id == proposal_id:
            return known
        return await self._repo.get(proposal_id)

    async def apply(self, result: TransitionResult) -> Proposal:
        if self._start:
            return await self._repo.apply(result, start_execution=self._execution)
        return await self._repo.apply(result, execution=self._execution)


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


def _accepted(message: str) -> str:
    return message if message.startswith("PD accepted") else f"PD accepted: {message}"


LOST_ANSWER_LOOKS = 4
"""When PD's answer to a write is lost, PD is read this many times (the action's poll interval,
then doubling) before the outcome is called unknown or "not applied": a PD that was briefly
unreachable, or applied the request late, is seen instead of guessed."""


class Executor:
    """Runs approved proposals (see the module docstring). One per engine; safe to share by
    any number of concurrent callers and across processes on one database."""

    def __init__(
        self,
        *,
        pd: PDApi,
        proposals: ProposalRepo,
        executions: ExecutionRepo,
        audit: AuditLog,
        settings: EngineSettingsRepo,
        policy: ApprovalPolicy,
        clock: Clock,
        max_drained_stores: int = 1,
        sleep: Sleep = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        deadlines: Mapping[str, float] | None = None,
        poll_intervals: Mapping[str, float] | None = None,
        checkpoint: Checkpoint | None = None,
        metrics: ExecutionMetrics | None = None,
        resume_window: timedelta | None = None,
        spawn: Callable[[Awaitable[Any], str], None] | None = None,
    ) -> None:
        self._pd = pd
        self._proposals = proposals
        self._executions = executions
        self._audit = audit
        self._settings = settings
        self._policy = policy
        self._clock = clock
        self._max_drained = max_drained_stores
        self._sleep = sleep
        self._monotonic = monotonic
        self._deadlines = dict(deadlines or {})
        self._intervals = dict(poll_intervals or {})
        self._checkpoint = checkpoint
        self._metrics = metrics
        self._resume_window = resume_window if resume_window is not None else policy.proposal_ttl
        self._spawn = spawn

    # ------------------------------------------------------------------ helpers

    def context(self) -> PreflightContext:
        return PreflightContext(max_drained_stores=self._max_drained, now=self._clock.now())

    def deadline(self, action: Action[Any]) -> float:
        return self._deadlines.get(action.name, action.deadline_seconds)

    async def _step(self, name: str) -> None:
        if self._checkpoint is not None:
            await self._checkpoint(name)

    async def _append(self, event: AuditEvent) -> None:
        try:
            await self._audit.append(event)
        except EngineError:
            logger.exception("could not append audit event %s", event.action)

    def _event(
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

    async def _save(
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

    # ------------------------------------------------------------------ run

    async def run(self, proposal_id: str, *, approved: Proposal | None = None) -> Execution:
        """Execute an approved proposal; see the module docstring.

        Returns the execution record: the one this call made, or the existing one when the
        proposal already started (exactly once: a second call sends nothing). Raises
        `PolicyRefusal` when the kill switch or observe-only mode blocks it (audited),
        `TransitionError` when the proposal is not approved and never started, and `NotFound`
        for an unknown ID.

        `approved` is the proposal as its approver's transaction left it (`Engine.approve`):
        the look-ups a proposal of unknown state needs are skipped, and the start transition's
        compare-and-set expects exactly that version (a proposal changed meanwhile is read
        again and judged afresh, as always).
        """
        return await self._run(proposal_id, approved)

    async def _run(self, proposal_id: str, approved: Proposal | None) -> Execution:
        if approved is None:
            existing = await self._executions.get(proposal_id)
            if existing is not None:
                return existing
            current = await self._proposals.get(proposal_id)
            if current is None:
                raise NotFound(
                    f"there is no proposal {proposal_id}; list proposals with `/tikv proposals`",
                    kind="proposal",
                    record_id=proposal_id,
                )
        else:
            current = approved
        # The gate (a database transaction) and the preflight reads (PD) run side by side;
        # nothing is sent before both are done and the record says `request_sent`.
        prepare = asyncio.ensure_future(self._prepare(current))
        try:
            gate = await self._gate(current)
        except BaseException:
            await _drop(prepare)  # refused, or stopping: the reads are not needed
            raise
        if isinstance(gate, Execution):
            await _drop(prepare)
            return gate  # another run of this proposal won the gate: its record is the answer
        result, record = gate
        prepared = await prepare
        proposal = result.proposal
        await self._step("started")
        if prepared.run is None or prepared.report is None or not prepared.report.ok:
            if prepared.note is not None:
                record = await self._save(record, progress=[prepared.note])
            return await self._finish(
                proposal,
                record,
                ExecutionStatus.FAILED,
                prepared.failure or "",
                detail=prepared.detail,
            )
        run = replace(prepared.run, proposal=proposal)
        writes = run.action.requests(run.params)
        # Saved before the request goes out: from here on a crash means "maybe sent", and the
        # restart looks at PD instead of sending again.
        started = self._event(
            "execution.started",
            proposal,
            detail={
                "checks": [c.name for c in prepared.report.checks],
                "requests": [w.describe() for w in writes],
            },
        )
        execution = await self._save(
            record,
            audit=started,
            status=ExecutionStatus.REQUEST_SENT,
            requests=[
                {"method": w.method, "path": w.path, "query": w.query, "body": w.body}
                for w in writes
            ],
            before=run.before.model_dump(mode="json"),
            progress=[prepared.note] if prepared.note is not None else [],
        )
        return await self._send(run, execution)

    async def _gate(self, current: Proposal) -> tuple[TransitionResult, Execution] | Execution:
        """The exactly-once gate: `approved → executing` (kill switch and observe-only checked
        by the policy on freshly read settings) saved with compare-and-set together with a new
        execution record. Returns the transition and the record, or the existing record when
        another run won; raises (audited) when the policy or the proposal's state refuses."""
        engine_settings = await self._settings.get()
        now = self._clock.now()
        record = Execution(proposal_id=current.id, started_at=now, updated_at=now)

        def build(proposal: Proposal) -> TransitionResult:
            return self._policy.start(proposal, engine_settings, now)

        try:
            result = await apply_transition(
                _WithExecution(self._proposals, record, start=True, known=current),
                current.id,
                build,
            )
        except (Refusal, StaleVersion, ExecutionAlreadyStarted) as exc:
            return await self._not_started(current.id, exc)
        return result, record

    async def _not_started(
        self, proposal_id: str, exc: Refusal | StaleVersion | ExecutionAlreadyStarted
    ) -> Execution:
        """The start transition was refused: a lost race returns the winner's record; a policy
        or state refusal is audited and raised."""
        if isinstance(exc, PolicyRefusal):
            if exc.audit is not None:
                await self._append(exc.audit)
            raise exc
        # Lost the race (or it ran long ago): the winner's record is the answer.
        existing = await self._executions.get(proposal_id)
        if existing is not None:
            return existing
        if isinstance(exc, TransitionError) and exc.audit is not None:
            await self._append(exc.audit)
        raise exc

    async def _prepare(self, proposal: Proposal) -> _Prepared:
        """What runs beside the gate and only reads: the action, the preflight on fresh
        cluster state and the before snapshot, through one `ReadOnce` (each PD read sent once
        for this run, never reused by another). Never raises but on cancellation."""
        reads = ReadOnce(self._pd)
        try:
            action = get_action(proposal.action)
            params = action.validate(proposal.params)
            report = await action.preflight(params, reads, self.context())
            if not report.ok:
                return _Prepared(
                    report=report,
                    failure=report.refusal(),
                    detail={"checks": [c.model_dump() for c in report.failures], "sent": False},
                    note=self._note("preflight refused: nothing was sent"),
                )
            before = await action.snapshot(params, reads)
        except asyncio.CancelledError:
            raise  # shutdown before anything was sent: the next start reconciles or resumes
        except Exception as exc:
            logger.exception("preparing the execution of proposal %s failed", proposal.id)
            return _Prepared(
                failure=f"the execution stopped on an error: {exc}; nothing was sent",
                detail={"error": type(exc).__name__, "sent": False},
            )
        run = _Run(proposal=proposal, action=action, params=params, before=before)
        return _Prepared(
            run=run, report=report, note=self._note("preflight passed on fresh cluster state")
        )

    async def _send(self, run: _Run, execution: Execution) -> Execution:
        """The gate is saved (the record says `request_sent`): send the write, once."""
        proposal, action, params = run.proposal, run.action, run.params
        try:
            await self._step("before_request")
            try:
                message = await action.execute(params, self._pd)
            except PDError as exc:
                failure: PDError | None = exc
            else:
                failure = None
            if isinstance(failure, PDUnavailableError):
                if not failure.outcome_unknown:
                    return await self._pd_refused(proposal, execution, failure, sent=False)
                return await self._lost_answer(run, execution, failure)
            if failure is not None:
                return await self._pd_refused(proposal, execution, failure, sent=True)
            await self._step("after_request")
            execution = await self._save(
                execution,
                audit=self._event("execution.sent", proposal, detail={"pd_message": message}),
                told=proposal,
                status=ExecutionStatus.VERIFYING,
                pd_message=message,
                response={"message": message},
                progress=[*execution.progress, self._note(_accepted(message))],
            )
            return await self._verify(run, execution)
        except asyncio.CancelledError:
            raise  # shutdown: the record stays unfinished and is reconciled at the next start
        except Exception as exc:
            logger.exception("execution of proposal %s failed", proposal.id)
            return await self._finish(
                proposal,
                execution,
                ExecutionStatus.FAILED,
                f"the execution stopped on an error: {exc}",
                detail={"error": type(exc).__name__},
            )

    async def _pd_refused(
        self, proposal: Proposal, execution: Execution, exc: PDError, *, sent: bool
    ) -> Execution:
        what = "PD refused the request" if sent else "PD did not take the request"
        execution = await self._save(execution, pd_message=exc.message or None)
        return await self._finish(
            proposal,
            execution,
            ExecutionStatus.FAILED,
            exc.describe(lead=what),
            detail={"pd_message": exc.message, "status": exc.status},
        )

    async def _lost_answer(
        self, run: _Run, execution: Execution, exc: PDUnavailableError
    ) -> Execution:
        """PD may or may not have applied the write: look, never send again."""
        proposal = run.proposal
        await self._append(
            self._event(
                "execution.sent",
                proposal,
                detail={"pd_message": exc.message, "answer": "lost"},
                outcome=AuditOutcome.ERROR,
                reason=str(exc),
            )
        )
        base = self._intervals.get(run.action.name, 1.0)
        verdict = None
        for look in range(LOST_ANSWER_LOOKS):
            if look:
                await self._sleep(base * 2 ** (look - 1))
            try:
                verdict = await run.action.reconcile(run.params, self._pd, run.before)
            except PDError as again:
                if look + 1 < LOST_ANSWER_LOOKS:
                    execution = await self._save(
                        execution,
                        progress=[
                            *execution.progress,
                            self._note(
                                f"answer lost and PD could not be read ({again.message or again}); "
                                f"looking again in {base * 2**look:g} s"
                            ),
                        ],
                    )
                    continue
                return await self._finish(
                    proposal,
                    execution,
                    ExecutionStatus.FAILED,
                    f"PD's answer was lost ({exc.message or exc}) and PD could not be read in "
                    f"{LOST_ANSWER_LOOKS} tries afterwards ({again.message or again}), so whether "
                    "it applied the request is unknown; it was not sent again. Check the "
                    "cluster before proposing it again",
                    detail={"sent": "unknown"},
                )
            if verdict is not None:
                break
            # No sign yet: a request PD was still working on may land a moment later.
        if verdict is None:
            return await self._finish(
                proposal,
                execution,
                ExecutionStatus.FAILED,
                f"PD's answer was lost ({exc.message or exc}) and PD shows no sign that the "
                "request was applied; it was not sent again. Check the cluster, then propose "
                "it again if still needed",
            )
        execution = await self._save(
            execution,
            status=ExecutionStatus.VERIFYING,
            progress=[*execution.progress, self._note(f"answer lost; PD shows: {verdict.message}")],
        )
        if verdict.outcome is Outcome.PENDING:
            return await self._verify(run, execution)
        return await self._conclude(run, execution, verdict)

    def _note(self, message: str) -> ProgressNote:
        return ProgressNote(at=self._clock.now(), message=message)

    async def _verify(
        self, run: _Run, execution: Execution, *, reconciled: bool = False
    ) -> Execution:
        proposal, action = run.proposal, run.action
        current = execution
        first = True

        async def on_progress(verification: Verification) -> None:
            nonlocal current, first
            if first:
                first = False
                await self._step("verifying")
            last = current.progress[-1].message if current.progress else None
            if verification.message == last:
                return
            current = await self._save(
                current,
                told=proposal,
                progress=[*current.progress, self._note(verification.message)],
            )

        streak = 0

        async def on_read_failure(error: PDError, retry_in: float) -> None:
            nonlocal current, first, streak
            if first:
                first = False
                await self._step("verifying")
            streak += 1
            if streak > 1:
                return  # one note per run of failures; the next success or the end says more
            note = (
                f"PD accepted the request, but PD could not be read to verify it "
                f"({error.message or error}): the outcome is not verified yet; looking again "
                f"in {retry_in:g} s"
            )
            current = await self._save(
                current, told=proposal, progress=[*current.progress, self._note(note)]
            )

        async def on_success(verification: Verification) -> None:
            nonlocal streak
            streak = 0
            await on_progress(verification)

        verdict = await verify_until_deadline(
            action,
            run.params,
            self._pd,
            run.before,
            sleep=self._sleep,
            clock=self._monotonic,
            deadline_seconds=self.deadline(action),
            poll_interval=self._intervals.get(action.name),
            on_progress=on_success,
            on_read_failure=on_read_failure,
        )
        if isinstance(verdict, Unverified):
            return await self._unverified(run, current, verdict, reconciled=reconciled)
        return await self._conclude(run, current, verdict, reconciled=reconciled)

    async def _unverified(
        self, run: _Run, execution: Execution, verdict: Unverified, *, reconciled: bool
    ) -> Execution:
        """PD accepted the write and could not be read to verify it until the deadline: a
        distinct end (`unverified`), never "failed" and never "retry"; the undo stays offered."""
        accepted = f" ({execution.pd_message})" if execution.pd_message else ""
        seen = f"; last seen: {verdict.last_seen.message}" if verdict.last_seen else ""
        undo = (
            " If it must be reversed, propose its undo."
            if run.action.reversible and run.proposal.undo is not None
            else ""
        )
        reads = verdict.failed_reads
        message = (
            f"sent and accepted, not verified: PD accepted the request{accepted}, but PD could "
            f"not be read to verify it for {verdict.waited:.0f} s ({reads} read"
            f"{'s' if reads != 1 else ''} without an answer; last: "
            f"{verdict.error.message or verdict.error}){seen}. It was not sent again. Check "
            f"{check_hint(run.proposal.params)} to see what it did before acting again.{undo}"
        )
        return await self._finish(
            run.proposal,
            execution,
            ExecutionStatus.UNVERIFIED,
            message,
            detail={"sent": True, "verified": False, "failed_reads": verdict.failed_reads},
            reconciled=reconciled,
        )

    async def _conclude(
        self, run: _Run, execution: Execution, verdict: Verification, *, reconciled: bool = False
    ) -> Execution:
        proposal = run.proposal
        after: JsonDict | None
        try:
            after = (await run.action.snapshot(run.params, self._pd)).model_dump(mode="json")
        except PDError as exc:
            logger.warning("after snapshot of proposal %s failed: %s", proposal.id, exc)
            after = None
        if verdict.outcome is Outcome.SUCCEEDED:
            status = (
                ExecutionStatus.RECONCILED_SUCCEEDED if reconciled else ExecutionStatus.SUCCEEDED
            )
            message = verdict.message
        elif verdict.outcome is Outcome.TIMED_OUT:
            status = ExecutionStatus.TIMED_OUT
            message = f"verification timed out: {verdict.message}"
        else:
            status = ExecutionStatus.RECONCILED_FAILED if reconciled else ExecutionStatus.FAILED
            message = verdict.message
        return await self._finish(
            proposal, execution, status, message, after=after, reconciled=reconciled
        )

    async def _finish(
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
        # The proposal's final transition, the finished record and the event that tells them
        # are one transaction.
        try:
            await apply_transition(
                _WithExecution(self._proposals, execution, start=False),
                proposal.id,
                lambda p: transition(
                    p, event, actor=SYSTEM, now=now, outcome=message, detail=extra
                ),
            )
        except (Refusal, StaleVersion) as exc:  # another process finished it meanwhile
            logger.warning("proposal %s was finished elsewhere: %s", proposal.id, exc)
            execution = await self._executions.finish(execution)
        await self._append(
            self._event(
                _AUDIT_ACTION[status],
                proposal,
                detail={"status": status.value, **extra},
                outcome=AuditOutcome.OK if succeeded else AuditOutcome.ERROR,
                reason=message,
            )
        )
        if self._metrics is not None:
            try:
                self._metrics.execution(proposal.action, status.value)
            except Exception:
                logger.exception("execution metrics hook failed")
        return execution

    # ------------------------------------------------------------------ restart

    async def reconcile(self) -> list[Execution]:
        """Start-up reconciliation; returns the executions it looked at, in their new state.

        - An execution still `started` never sent its request: recorded as failed
          (reconciled), nothing is sent.
        - `request_sent` or `verifying`: the action's `reconcile` asks PD whether the write was
          applied (operator present or finished, store under the scheduler, config value set).
          No trace → failed; finished → succeeded/failed; still in progress → verification
          resumes in the background (`spawn`) and the record is returned as `verifying`. The
          request is never sent again. If PD cannot be read, the record is left for the next
          start and returned unchanged.
        - A proposal left `executing` whose execution already finished (a crash between the two
          writes) gets its final transition.
        - A proposal left `approved` that never started sent nothing. It is started now if it
          was approved within `resume_window` (default: the proposal TTL), after the usual
          kill-switch check and a fresh preflight; an older approval is cancelled by the system
          ("approved at 14:03 UTC but not started before tikvops stopped ...").
        """
        touched: list[Execution] = []
        for unfinished in await self._executions.list_unfinished():
            touched.append(await self._reconcile_one(unfinished))
        for proposal in await self._proposals.list(states=[ProposalState.EXECUTING], limit=1000):
            found = await self._executions.get(proposal.id)
            if found is None:
                touched.append(await self._orphan(proposal))
            elif found.is_finished:
                await self._complete_transition(proposal, found)
        await self.resume_approved()
        return touched

    async def resume_approved(self) -> None:
        """Start (or, if approved too long ago, cancel) every proposal left `approved`: at
        start-up, and when the kill switch or observe-only mode is turned off."""
        for proposal in await self._proposals.list(states=[ProposalState.APPROVED], limit=1000):
            await self._resume_or_cancel(proposal)

    async def _reconcile_one(self, execution: Execution) -> Execution:
        proposal = await self._proposals.get(execution.proposal_id)
        if proposal is None:  # pragma: no cover - foreign key in storage
            raise NotFound(
                f"execution of unknown proposal {execution.proposal_id}",
                kind="proposal",
                record_id=execution.proposal_id,
            )
        if proposal.state.is_terminal:
            # The proposal finished but the execution record was not updated: copy it over.
            status = {
                ProposalState.SUCCEEDED: ExecutionStatus.SUCCEEDED,
                ProposalState.UNVERIFIED: ExecutionStatus.UNVERIFIED,
            }.get(proposal.state, ExecutionStatus.FAILED)
            now = self._clock.now()
            return await self._executions.finish(
                execution.model_copy(
                    update={
                        "status": status,
                        "updated_at": now,
                        "finished_at": now,
                        "error": None if status is ExecutionStatus.SUCCEEDED else proposal.outcome,
                    }
                )
            )
        if execution.status is ExecutionStatus.STARTED:
            return await self._finish(
                proposal,
                execution,
                ExecutionStatus.RECONCILED_FAILED,
                "tikvops stopped before sending the PD request, so nothing was sent; propose it "
                "again if it is still needed",
                detail={"sent": False},
                reconciled=True,
            )
        action = get_action(proposal.action)
        params = action.validate(proposal.params)
        before = Snapshot.model_validate(execution.before or {})
        try:
            verdict = await action.reconcile(params, self._pd, before)
        except PDError as exc:
            logger.warning(
                "cannot reconcile proposal %s now (%s); it stays executing until the next start",
                proposal.id,
                exc,
            )
            return execution
        if verdict is None:
            return await self._finish(
                proposal,
                execution,
                ExecutionStatus.RECONCILED_FAILED,
                "tikvops stopped while the PD request was in flight, and PD shows no sign that "
                "it was applied; it was not sent again. Propose it again if it is still needed",
                detail={"sent": "unknown"},
                reconciled=True,
            )
        await self._append(
            self._event(
                "execution.reconciling",
                proposal,
                detail={"was": execution.status.value, "pd_shows": verdict.outcome.value},
                reason=verdict.message,
            )
        )
        run = _Run(proposal=proposal, action=action, params=params, before=before)
        if verdict.outcome is not Outcome.PENDING:
            return await self._conclude(run, execution, verdict, reconciled=True)
        execution = await self._save(
            execution,
            status=ExecutionStatus.VERIFYING,
            progress=[
                *execution.progress,
                self._note(f"resumed after a restart; PD shows: {verdict.message}"),
            ],
        )
        resumed = self._verify(run, execution, reconciled=True)
        if self._spawn is None:
            return await resumed
        self._spawn(resumed, f"verify {proposal.id}")
        return execution

    async def _orphan(self, proposal: Proposal) -> Execution:
        """A proposal `executing` without an execution record (the two are written in one
        transaction, so only a damaged database gets here): fail it, send nothing."""
        now = self._clock.now()
        record = Execution(proposal_id=proposal.id, started_at=now, updated_at=now)
        execution = await self._executions.start(record)
        return await self._finish(
            proposal,
            execution,
            ExecutionStatus.RECONCILED_FAILED,
            "no execution record was found for this executing proposal; nothing is sent",
            reconciled=True,
        )

    async def _complete_transition(self, proposal: Proposal, execution: Execution) -> None:
        succeeded = execution.status in (
            ExecutionStatus.SUCCEEDED,
            ExecutionStatus.RECONCILED_SUCCEEDED,
        )
        event = (
            ProposalEvent.UNVERIFIED
            if execution.status is ExecutionStatus.UNVERIFIED
            else ProposalEvent.RECONCILE_SUCCEEDED
            if succeeded
            else ProposalEvent.RECONCILE_FAILED
        )
        message = (
            execution.progress[-1].message
            if execution.progress
            else (execution.error or execution.status.value)
        )
        now = self._clock.now()
        await apply_transition(
            self._proposals,
            proposal.id,
            lambda p: transition(p, event, actor=SYSTEM, now=now, outcome=message),
        )

    async def _resume_or_cancel(self, proposal: Proposal) -> None:
        now = self._clock.now()
        approved_at = proposal.decided_at or proposal.updated_at
        if now - approved_at <= self._resume_window:
            if self._spawn is not None:
                self._spawn(self._run_quietly(proposal.id), f"execute {proposal.id}")
            else:
                await self._run_quietly(proposal.id)
            return
        reason = (
            f"approved at {format_time(approved_at, now)} but not started before tikvops "
            "stopped; the approval is too old to act on, propose it again if it is still needed"
        )
        with contextlib.suppress(Refusal, StaleVersion):  # someone else moved it meanwhile
            await apply_transition(
                self._proposals,
                proposal.id,
                lambda p: transition(p, ProposalEvent.CANCEL, actor=SYSTEM, now=now, reason=reason),
            )

    async def _run_quietly(self, proposal_id: str) -> None:
        try:
            await self.run(proposal_id)
        except Refusal as refusal:
            logger.info("proposal %s not executed: %s", proposal_id, refusal)


__all__ = [
    "CHECKPOINTS",
    "Checkpoint",
    "ExecutionMetrics",
    "Executor",
    "Sleep",
    "undo_from",
]
