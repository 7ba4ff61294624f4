"""Verification of a write PD accepted: the action's `verify` polled until it reports an end,
within the action's deadline. A failed *read* (PD unreachable, a 5xx, an HTML page from a
proxy, a timeout) says nothing about the write: it means "outcome not yet verified", and the
read is tried again with back-off until the deadline. Only then is the run called unverified
(`Unverified`), a distinct end: PD accepted the request, nobody could see what it did.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.model import AuditOutcome, Execution, ExecutionStatus, JsonDict, Proposal
from engine.run_record import RunRecord
from operator_tikv.actions import Action, ActionParams, Outcome, Snapshot, Verification
from operator_tikv.actions.ports import PDApi
from operator_tikv.errors import PDError, PDUnavailableError

logger = logging.getLogger(__name__)

MAX_READ_BACKOFF = 30.0
"""Seconds at most between two verification reads after failures (the deadline still rules)."""


@dataclass(frozen=True, slots=True)
class Unverified:
    """Reading PD to verify the write kept failing until the deadline."""

    error: PDError
    failed_reads: int
    waited: float
    last_seen: Verification | None


async def verify_until_deadline(
    action: Action[Any],
    params: ActionParams,
    pd: PDApi,
    before: Snapshot,
    *,
    sleep: Callable[[float], Awaitable[Any]],
    clock: Callable[[], float],
    deadline_seconds: float,
    poll_interval: float | None = None,
    on_progress: Callable[[Verification], Awaitable[None]] | None = None,
    on_read_failure: Callable[[PDError, float], Awaitable[None]] | None = None,
) -> Verification | Unverified:
    """Poll `action.verify` until it finishes (its Verification), the deadline passes with PD
    readable (a timed-out Verification with the last progress), or the deadline passes while
    reads fail (`Unverified`). `on_read_failure(error, retry_in)` hears each failed read."""
    interval = action.poll_interval if poll_interval is None else poll_interval
    start = clock()
    failures = 0
    last_seen: Verification | None = None
    while True:
        try:
            result = await action.verify(params, pd, before)
        except PDError as exc:
            failures += 1
            elapsed = clock() - start
            if elapsed >= deadline_seconds:
                return Unverified(
                    error=exc, failed_reads=failures, waited=elapsed, last_seen=last_seen
                )
            backoff = min(interval * 2 ** min(failures - 1, 16), MAX_READ_BACKOFF)
            delay = max(min(backoff, deadline_seconds - elapsed), 0.0)
            if on_read_failure is not None:
                await on_read_failure(exc, delay)
            await sleep(delay)
            continue
        failures = 0
        if result.finished:
            return result
        last_seen = result
        if on_progress is not None:
            await on_progress(result)
        elapsed = clock() - start
        if elapsed >= deadline_seconds:
            return Verification.timed_out(
                f"{action.name} did not finish within {deadline_seconds:g} s; last seen: "
                f"{result.message}"
            )
        await sleep(min(interval, max(deadline_seconds - elapsed, 0.0)))


def check_hint(params: dict[str, Any]) -> str:
    """What to look at to see what an unverified write did."""
    if "region_id" in params:
        region = params["region_id"]
        return f"region {region} (`region {region}`)"
    if "store_id" in params:
        store = params["store_id"]
        return f"store {store} (`store {store}`)"
    return "the cluster (`status`)"


@dataclass(frozen=True, slots=True)
class Run:
    """One run's fixed facts: the proposal, its action and typed params, the before snapshot."""

    proposal: Proposal
    action: Action[Any]
    params: ActionParams
    before: Snapshot


LOST_ANSWER_LOOKS = 4
"""When PD's answer to a write is lost, PD is read this many times (the action's poll interval,
then doubling) before the outcome is called unknown or "not applied": a PD that was briefly
unreachable, or applied the request late, is seen instead of guessed."""


class Verifier:
    """Follows a write to its end (see the module docstring) and records it (`RunRecord`)."""

    def __init__(
        self,
        *,
        pd: PDApi,
        record: RunRecord,
        sleep: Callable[[float], Awaitable[Any]],
        monotonic: Callable[[], float],
        deadlines: Mapping[str, float],
        intervals: Mapping[str, float],
        step: Callable[[str], Awaitable[None]],
    ) -> None:
        self._pd = pd
        self._record = record
        self._sleep = sleep
        self._monotonic = monotonic
        self._deadlines = deadlines
        self._intervals = intervals
        self._step = step

    async def lost_answer(
        self, run: Run, execution: Execution, exc: PDUnavailableError
    ) -> Execution:
        """PD may or may not have applied the write: look, never send again."""
        proposal = run.proposal
        await self._record.append(
            self._record.event(
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
                    execution = await self._record.save(
                        execution,
                        progress=[
                            *execution.progress,
                            self._record.note(
                                f"answer lost and PD could not be read ({again.message or again}); "
                                f"looking again in {base * 2**look:g} s"
                            ),
                        ],
                    )
                    continue
                return await self._record.finish(
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
            return await self._record.finish(
                proposal,
                execution,
                ExecutionStatus.FAILED,
                f"PD's answer was lost ({exc.message or exc}) and PD shows no sign that the "
                "request was applied; it was not sent again. Check the cluster, then propose "
                "it again if still needed",
            )
        execution = await self._record.save(
            execution,
            status=ExecutionStatus.VERIFYING,
            progress=[
                *execution.progress,
                self._record.note(f"answer lost; PD shows: {verdict.message}"),
            ],
        )
        if verdict.outcome is Outcome.PENDING:
            return await self.verify(run, execution)
        return await self.conclude(run, execution, verdict)

    async def verify(
        self, run: Run, execution: Execution, *, reconciled: bool = False
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
            current = await self._record.save(
                current,
                told=proposal,
                progress=[*current.progress, self._record.note(verification.message)],
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
            current = await self._record.save(
                current, told=proposal, progress=[*current.progress, self._record.note(note)]
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
            deadline_seconds=self._deadlines.get(action.name, action.deadline_seconds),
            poll_interval=self._intervals.get(action.name),
            on_progress=on_success,
            on_read_failure=on_read_failure,
        )
        if isinstance(verdict, Unverified):
            return await self._unverified(run, current, verdict, reconciled=reconciled)
        return await self.conclude(run, current, verdict, reconciled=reconciled)

    async def _unverified(
        self, run: Run, execution: Execution, verdict: Unverified, *, reconciled: bool
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
        return await self._record.finish(
            run.proposal,
            execution,
            ExecutionStatus.UNVERIFIED,
            message,
            detail={"sent": True, "verified": False, "failed_reads": verdict.failed_reads},
            reconciled=reconciled,
        )

    async def conclude(
        self, run: Run, execution: Execution, verdict: Verification, *, reconciled: bool = False
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
        return await self._record.finish(
            proposal, execution, status, message, after=after, reconciled=reconciled
        )


__all__ = [
    "LOST_ANSWER_LOOKS",
    "MAX_READ_BACKOFF",
    "Run",
    "Unverified",
    "Verifier",
    "check_hint",
    "verify_until_deadline",
]
