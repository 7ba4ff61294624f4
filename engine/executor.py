"""Runs approved proposals against PD, at most once each, and reconciles interrupted runs.

`Executor.run(proposal_id)` is the only code that sends a cluster-changing request. Its steps:

0. **Claim.** The run's claim (`engine.claims`: among replicas a PostgreSQL advisory lock per
   proposal, on the replica's own connection) is taken first and held until the run ends, so
   from the gate on the run always has a live owner and no other process reconciles it.
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
4. **PD request** (the action's `execute`), sent only if the claim is still held, asked of the
   database right before (`Claim.held`); a run that lost it (its database connection went
   away: another replica may be settling it) stops and sends nothing (`ClaimLost`), as does a
   run whose record a reconciler already finished (a finished record is never changed:
   `ExecutionFinished`). The window that remains is that round trip to the request: a
   connection lost after the check and before PD receives the write lets another replica's
   reconciliation look at PD while the write is in flight (it may find no trace and record
   "failed" for a write that then lands); PD offers no fencing token to close it. A refusal
   from PD fails the proposal with PD's message. A lost answer (`outcome_unknown`) is looked
   up with the action's `reconcile` (up to `LOST_ANSWER_LOOKS` times, backing off), never
   re-sent.
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

`Executor.reconcile()` runs at start-up (on the leader, when it starts leading): every
unfinished execution whose claim is free (its runner is dead) is checked against PD with the
action's `reconcile` (never re-sent); proposals left `approved` are resumed if approved recently,
otherwise cancelled. `Executor.follow()` is the first half, run periodically by the leader
among replicas. See `engine.reconciling`.

Crash tests stop the process deterministically with the `checkpoint` hook, awaited with the
step name (`started`, `before_request`, `after_request`, `verifying`) at each step.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import timedelta
from typing import Any

from engine.applying import apply_transition
from engine.claims import Claim, ClaimLost, LocalClaims, RunClaims, claim_run
from engine.errors import (
    EngineError,
    ExecutionAlreadyStarted,
    ExecutionFinished,
    NotFound,
    PolicyRefusal,
    Refusal,
    StaleVersion,
    TransitionError,
)
from engine.model import (
    DEFAULT_CLUSTER,
    Execution,
    ExecutionStatus,
    Proposal,
)
from engine.opened import Opened, _Prepared
from engine.policy import ApprovalPolicy
from engine.ports import AuditLog, Clock, EngineSettingsRepo, ExecutionRepo, ProposalRepo
from engine.reconciling import Reconciler
from engine.run_record import ExecutionMetrics, RunRecord, WithExecution, undo_from
from engine.transitions import TransitionResult
from engine.verifying import Run, Verifier
from operator_tikv.actions import (
    PreflightContext,
    ReadOnce,
    get_action,
)
from operator_tikv.actions.ports import PDApi
from operator_tikv.errors import PDError, PDUnavailableError

logger = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[Any]]
Checkpoint = Callable[[str], Awaitable[None]]

#: Checkpoint names, in the order a run reaches them.
CHECKPOINTS = ("started", "before_request", "after_request", "verifying")


async def _drop(task: asyncio.Future[Any]) -> None:
    """Cancel a read-only task that is no longer needed and wait until it has stopped."""
    task.cancel()
    await asyncio.wait([task])
    if not task.cancelled() and task.exception() is not None:
        logger.debug("a dropped task had failed", exc_info=task.exception())


def _accepted(message: str) -> str:
    return message if message.startswith("PD accepted") else f"PD accepted: {message}"


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
        cluster: str = DEFAULT_CLUSTER,
        claims: RunClaims | None = None,
    ) -> None:
        self._pd = pd  # the PD of `cluster`: this executor runs that cluster's proposals only
        self._cluster = cluster
        self.claims: RunClaims = claims if claims is not None else LocalClaims()
        self._proposals = proposals
        self._executions = executions
        self._settings = settings
        self._policy = policy
        self._clock = clock
        self._max_drained = max_drained_stores
        self._checkpoint = checkpoint
        self._intervals = dict(poll_intervals or {})
        self._record = RunRecord(
            proposals=proposals, executions=executions, audit=audit, clock=clock, metrics=metrics
        )
        self._verifier = Verifier(
            pd=pd,
            record=self._record,
            sleep=sleep,
            monotonic=monotonic,
            deadlines=dict(deadlines or {}),
            intervals=self._intervals,
            step=self._step,
        )
        self.reconciler = Reconciler(
            pd=pd,
            proposals=proposals,
            executions=executions,
            clock=clock,
            record=self._record,
            verifier=self._verifier,
            executor=self,
            resume_window=resume_window if resume_window is not None else policy.proposal_ttl,
            spawn=spawn,
            cluster=cluster,
            claims=self.claims,
        )

    async def reconcile(self) -> list[Execution]:
        """Start-up reconciliation (`engine.reconciling.Reconciler.reconcile`)."""
        return await self.reconciler.reconcile()

    async def follow(self) -> list[Execution]:
        """Settle the runs of dead processes (`Reconciler.follow`), without resuming."""
        return await self.reconciler.follow()

    async def resume_approved(self) -> None:
        """Start or cancel the proposals left approved (`Reconciler.resume_approved`)."""
        await self.reconciler.resume_approved()

    def context(self) -> PreflightContext:
        return PreflightContext(max_drained_stores=self._max_drained, now=self._clock.now())

    async def _step(self, name: str) -> None:
        if self._checkpoint is not None:
            await self._checkpoint(name)

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
        opened = await self.open(proposal_id, approved=approved)
        if isinstance(opened, Execution):
            return opened
        return await self.proceed(opened)

    async def open(
        self, proposal_id: str, *, approved: Proposal | None = None
    ) -> Opened | Execution:
        """The gate, the one place the kill switch and observe-only mode are checked: the
        start transition saved with a new execution record, while the preflight reads start
        beside it. Returns the opened run (hand it to `proceed`), or the existing record when
        another run won; raises (audited) when the policy or the proposal's state refuses."""
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
        # The claim first: from the gate on, the run is never without an owner, so no other
        # process reconciles it while this one lives.
        claim = await claim_run(self.claims, current.id, self._executions.get)
        if isinstance(claim, Execution):
            return claim
        # The gate (a database transaction) and the preflight reads (PD) run side by side;
        # nothing is sent before both are done and the record says `request_sent`.
        prepare = asyncio.ensure_future(self._prepare(current))
        try:
            gate = await self._gate(current)
        except BaseException:
            await _drop(prepare)  # refused, or stopping: the reads are not needed
            await claim.release()
            raise
        if isinstance(gate, Execution):
            await _drop(prepare)
            await claim.release()
            return gate  # another run of this proposal won the gate: its record is the answer
        result, record = gate
        return Opened(result=result, record=record, prepare=prepare, claim=claim)

    async def proceed(self, opened: Opened) -> Execution:
        """The rest of a run whose gate is open: the preflight verdict, the `request_sent`
        record, the write (once), its verification. Cancelled before the write, the record
        stays `started` and the next start reconciles it (nothing was sent). The run's claim
        is let go when it ends, however it ends."""
        try:
            return await self._proceed(opened)
        finally:
            if opened.claim is not None:
                await opened.claim.release()

    async def _proceed(self, opened: Opened) -> Execution:
        try:
            prepared = await opened.prepare
        except BaseException:
            await _drop(opened.prepare)
            raise
        result, record = opened.result, opened.record
        proposal = result.proposal
        await self._step("started")
        if prepared.run is None or prepared.report is None or not prepared.report.ok:
            if prepared.note is not None:
                record = await self._record.save(record, progress=[prepared.note])
            return await self._record.finish(
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
        started = self._record.event(
            "execution.started",
            proposal,
            detail={
                "checks": [c.name for c in prepared.report.checks],
                "requests": [w.describe() for w in writes],
            },
        )
        try:
            execution = await self._record.save(
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
        except ExecutionFinished:
            # A reconciler of another process settled this run ("nothing was sent") after this
            # one lost its claim: that stays true.
            return await self._taken_over(proposal.id, record)
        return await self._send(run, execution, opened.claim)

    async def _gate(self, current: Proposal) -> tuple[TransitionResult, Execution] | Execution:
        """The exactly-once gate: `approved → executing` (kill switch and observe-only checked
        by the policy on freshly read settings) saved with compare-and-set together with a new
        execution record. Returns the transition and the record, or the existing record when
        another run won; raises (audited) when the policy or the proposal's state refuses."""
        engine_settings = await self._settings.get()
        now = self._clock.now()
        record = Execution(
            proposal_id=current.id, cluster=current.cluster, started_at=now, updated_at=now
        )

        def build(proposal: Proposal) -> TransitionResult:
            return self._policy.start(proposal, engine_settings, now)

        try:
            result = await apply_transition(
                WithExecution(self._proposals, record, start=True, known=current),
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
                await self._record.append(exc.audit)
            raise exc
        # Lost the race (or it ran long ago): the winner's record is the answer.
        existing = await self._executions.get(proposal_id)
        if existing is not None:
            return existing
        if isinstance(exc, TransitionError) and exc.audit is not None:
            await self._record.append(exc.audit)
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
                    note=self._record.note("preflight refused: nothing was sent"),
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
        run = Run(proposal=proposal, action=action, params=params, before=before)
        return _Prepared(
            run=run,
            report=report,
            note=self._record.note("preflight passed on fresh cluster state"),
        )

    async def _send(self, run: Run, execution: Execution, claim: Claim | None) -> Execution:
        """The gate is saved (the record says `request_sent`): send the write, once, if this
        process still holds the run's claim right before it."""
        proposal, action, params = run.proposal, run.action, run.params
        try:
            await self._step("before_request")
            if claim is not None and not await claim.held():
                raise ClaimLost(
                    f"lost the claim on the run of proposal {proposal.id} before sending its "
                    "PD request (the database connection was lost); nothing was sent, and the "
                    "replica that reconciles it records that",
                    proposal_id=proposal.id,
                )
            try:
                message = await action.execute(params, self._pd)
            except PDError as exc:
                failure: PDError | None = exc
            else:
                failure = None
            if isinstance(failure, PDUnavailableError):
                if not failure.outcome_unknown:
                    return await self._pd_refused(proposal, execution, failure, sent=False)
                return await self._verifier.lost_answer(run, execution, failure)
            if failure is not None:
                return await self._pd_refused(proposal, execution, failure, sent=True)
            await self._step("after_request")
            execution = await self._record.save(
                execution,
                audit=self._record.event(
                    "execution.sent", proposal, detail={"pd_message": message}
                ),
                told=proposal,
                status=ExecutionStatus.VERIFYING,
                pd_message=message,
                response={"message": message},
                progress=[*execution.progress, self._record.note(_accepted(message))],
            )
            return await self._verifier.verify(run, execution)
        except asyncio.CancelledError:
            raise  # shutdown: the record stays unfinished and is reconciled at the next start
        except (ClaimLost, ExecutionFinished) as exc:
            logger.warning("proposal %s: this run stops: %s", proposal.id, exc)
            return await self._taken_over(proposal.id, execution)
        except Exception as exc:
            logger.exception("execution of proposal %s failed", proposal.id)
            return await self._record.finish(
                proposal,
                execution,
                ExecutionStatus.FAILED,
                f"the execution stopped on an error: {exc}",
                detail={"error": type(exc).__name__},
            )

    async def _taken_over(self, proposal_id: str, execution: Execution) -> Execution:
        """The record as the process that settles this run leaves it (this one stopped)."""
        try:
            stored = await self._executions.get(proposal_id)
        except EngineError:
            return execution
        return stored if stored is not None else execution

    async def _pd_refused(
        self, proposal: Proposal, execution: Execution, exc: PDError, *, sent: bool
    ) -> Execution:
        what = "PD refused the request" if sent else "PD did not take the request"
        execution = await self._record.save(execution, pd_message=exc.message or None)
        return await self._record.finish(
            proposal,
            execution,
            ExecutionStatus.FAILED,
            exc.describe(lead=what),
            detail={"pd_message": exc.message, "status": exc.status},
        )


__all__ = [
    "CHECKPOINTS",
    "Checkpoint",
    "ExecutionMetrics",
    "Executor",
    "Opened",
    "Sleep",
    "undo_from",
]
