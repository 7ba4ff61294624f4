"""Reconciliation: what a stopped process left unfinished is settled against PD, never by
sending a write again (see `Reconciler.reconcile`). Also resumes (or, when the approval is too
old, cancels) proposals left approved, at start-up and when the kill switch or observe-only mode
is turned off.

Only runs whose process is dead are touched: each unfinished execution is reconciled under its
claim (`engine.claims`), taken without waiting, and one whose claim another process (or a run of
this one) holds is left to its runner. Alone on a SQLite file that is every run a previous
process left; among replicas on PostgreSQL it is the runs of replicas that died (or lost the
database), however many replicas still run theirs. `follow` is the same settlement without the
resumption, for the leader to run periodically (a follower that dies while the leader lives).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from typing import Any, Protocol

from engine.applying import apply_transition
from engine.claims import Claim, LocalClaims, RunClaims
from engine.clock import format_time
from engine.errors import NotFound, Refusal, StaleVersion
from engine.model import (
    DEFAULT_CLUSTER,
    SYSTEM,
    Execution,
    ExecutionStatus,
    Proposal,
    ProposalState,
)
from engine.ports import Clock, ExecutionRepo, ProposalRepo
from engine.run_record import RunRecord
from engine.transitions import ProposalEvent, transition
from engine.verifying import Run, Verifier
from operator_tikv.actions import Outcome, Snapshot, get_action
from operator_tikv.actions.ports import PDApi
from operator_tikv.errors import PDError

logger = logging.getLogger(__name__)

Resumed = Coroutine[Any, Any, Execution]
"""A verification to resume: run by whoever holds the run's claim."""


class Runs(Protocol):
    """What the reconciler starts runs with (`engine.executor.Executor`)."""

    async def run(self, proposal_id: str, *, approved: Proposal | None = None) -> Execution: ...


CLAIM_PATIENCE = 3.0
"""Seconds reconciliation keeps asking for a run's claim before leaving the run to the live
process that holds it (a dead process's session may take a moment to end)."""


class Reconciler:
    """See the module docstring."""

    def __init__(
        self,
        *,
        pd: PDApi,
        proposals: ProposalRepo,
        executions: ExecutionRepo,
        clock: Clock,
        record: RunRecord,
        verifier: Verifier,
        executor: Runs,
        resume_window: timedelta,
        spawn: Callable[[Awaitable[Any], str], None] | None = None,
        cluster: str = DEFAULT_CLUSTER,
        claims: RunClaims | None = None,
    ) -> None:
        self._claims: RunClaims = claims if claims is not None else LocalClaims()
        self._pd = pd  # `cluster`'s PD: only that cluster's records are reconciled here
        self._cluster = cluster
        self._proposals = proposals
        self._executions = executions
        self._clock = clock
        self._record = record
        self._verifier = verifier
        self._executor = executor
        self._resume_window = resume_window
        self._spawn = spawn

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
        touched = await self.follow()
        await self.resume_approved()
        return touched

    async def follow(self) -> list[Execution]:
        """Settle what dead processes left unfinished (the first half of `reconcile`, without
        resuming approved proposals): each run under its claim, skipping the runs a live
        process holds. Returns the executions it looked at."""
        touched: list[Execution] = []
        for unfinished in await self._executions.list_unfinished():
            if unfinished.cluster != self._cluster:
                continue  # another cluster's engine settles it
            claim = await self._patient_claim(unfinished.proposal_id)
            if claim is None:
                logger.info(
                    "proposal %s is being run by a live process; not reconciling it",
                    unfinished.proposal_id,
                )
                continue
            # Read again under the claim: its runner may have finished it meanwhile.
            current = await self._held(claim, self._executions.get(unfinished.proposal_id))
            if current is None or current.is_finished:
                await claim.release()
                continue
            touched.append(await self._reconcile_one(current, claim))
        for proposal in await self._proposals.list(
            states=[ProposalState.EXECUTING], limit=1000, cluster=self._cluster
        ):
            claim = await self._claims.claim(proposal.id)
            if claim is None:
                continue
            try:
                found = await self._executions.get(proposal.id)
                if found is None:
                    touched.append(await self._orphan(proposal))
                elif found.is_finished:
                    await self._complete_transition(proposal, found)
            finally:
                await claim.release()
        return touched

    async def _patient_claim(self, proposal_id: str) -> Claim | None:
        """The claim on an unfinished run, asked for again for `CLAIM_PATIENCE` seconds: a
        process killed a moment ago holds its claims until the database server has ended its
        session, which a loaded server can take a while to do. None: a live process runs it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CLAIM_PATIENCE
        while True:
            claim = await self._claims.claim(proposal_id)
            if claim is not None or loop.time() >= deadline:
                return claim
            await asyncio.sleep(0.25)

    @staticmethod
    async def _held(claim: Claim, work: Awaitable[Execution | None]) -> Execution | None:
        try:
            return await work
        except BaseException:
            await claim.release()
            raise

    async def resume_approved(self) -> None:
        """Start (or, if approved too long ago, cancel) every proposal left `approved`: at
        start-up, and when the kill switch or observe-only mode is turned off."""
        for proposal in await self._proposals.list(
            states=[ProposalState.APPROVED], limit=1000, cluster=self._cluster
        ):
            await self._resume_or_cancel(proposal)

    async def _reconcile_one(self, execution: Execution, claim: Claim) -> Execution:
        """Settle one run under its claim; the claim is let go when that is done (after the
        resumed verification, when that runs in the background)."""
        handed_over = False
        try:
            settled, resumed = await self._settle(execution)
            if resumed is not None:
                if self._spawn is None:
                    return await resumed
                handed_over = True
                self._spawn(self._release_after(claim, resumed), f"verify {execution.proposal_id}")
            return settled
        finally:
            if not handed_over:
                await claim.release()

    @staticmethod
    async def _none(work: Awaitable[Execution]) -> tuple[Execution, Resumed | None]:
        return await work, None

    @staticmethod
    async def _release_after(claim: Claim, work: Awaitable[Execution]) -> Execution:
        try:
            return await work
        finally:
            await claim.release()

    async def _settle(self, execution: Execution) -> tuple[Execution, Resumed | None]:
        """The settlement of one run: the record now, and the verification to resume when PD
        shows the write still in progress (the caller runs it, holding the claim)."""
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
            return await self._none(
                self._executions.finish(
                    execution.model_copy(
                        update={
                            "status": status,
                            "updated_at": now,
                            "finished_at": now,
                            "error": None
                            if status is ExecutionStatus.SUCCEEDED
                            else proposal.outcome,
                        }
                    )
                )
            )
        if execution.status is ExecutionStatus.STARTED:
            return await self._none(
                self._record.finish(
                    proposal,
                    execution,
                    ExecutionStatus.RECONCILED_FAILED,
                    "tikvops stopped before sending the PD request, so nothing was sent; "
                    "propose it again if it is still needed",
                    detail={"sent": False},
                    reconciled=True,
                )
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
            return execution, None
        if verdict is None:
            return await self._none(
                self._record.finish(
                    proposal,
                    execution,
                    ExecutionStatus.RECONCILED_FAILED,
                    "tikvops stopped while the PD request was in flight, and PD shows no sign "
                    "that it was applied; it was not sent again. Propose it again if it is "
                    "still needed",
                    detail={"sent": "unknown"},
                    reconciled=True,
                )
            )
        await self._record.append(
            self._record.event(
                "execution.reconciling",
                proposal,
                detail={"was": execution.status.value, "pd_shows": verdict.outcome.value},
                reason=verdict.message,
            )
        )
        run = Run(proposal=proposal, action=action, params=params, before=before)
        if verdict.outcome is not Outcome.PENDING:
            return await self._none(
                self._verifier.conclude(run, execution, verdict, reconciled=True)
            )
        execution = await self._record.save(
            execution,
            status=ExecutionStatus.VERIFYING,
            progress=[
                *execution.progress,
                self._record.note(f"resumed after a restart; PD shows: {verdict.message}"),
            ],
        )
        return execution, self._verifier.verify(run, execution, reconciled=True)

    async def _orphan(self, proposal: Proposal) -> Execution:
        """A proposal `executing` without an execution record (the two are written in one
        transaction, so only a damaged database gets here): fail it, send nothing."""
        now = self._clock.now()
        record = Execution(proposal_id=proposal.id, started_at=now, updated_at=now)
        execution = await self._executions.start(record)
        return await self._record.finish(
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
            await self._executor.run(proposal_id)
        except Refusal as refusal:
            logger.info("proposal %s not executed: %s", proposal_id, refusal)


__all__ = ["Reconciler", "Runs"]
