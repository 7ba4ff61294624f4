"""The engine facade: the one object Slack, the terminal and tests talk to.

`Engine.handle(command, actor)` answers every command of the shared grammar
(`engine.commands`) with a typed outcome (`engine.results`). Underneath:

- **propose** validates the action and its parameters, runs the preflight as a dry run against
  the live cluster and, only if every check passes, stores a proposal (state `proposed`) with
  the checks, the dry run and the undo. A failed check refuses with that check's sentence; no
  proposal is created. Nothing is ever executed directly: low-risk proposals are approved by the
  system when the policy says so, everything else waits for people.
- **approve / reject** go through the approval policy and the one transition function
  (`engine.transitions`), with compare-and-set; every decision and refusal is audited with who,
  what and why. An approval that completes the quorum schedules the execution as a background
  task (see `engine.executor` for the exactly-once gate).
- **expire_due**, **reconcile** (start-up), **set_kill_switch** / **set_observe_only** (persisted;
  turning them off resumes approved proposals), **propose_undo** (after a successful reversible
  run), and the read views (`engine.reads`).

Redelivered requests (Slack retries, double submits) carry a `request_id`; the `DedupRepo` makes
the second delivery a `Refused` of kind `duplicate` that changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any, Protocol

from engine.commands import (
    CLI_PROG,
    SLACK_PROG,
    ActionCommand,
    CommandError,
    DecisionCommand,
    HelpCommand,
    KillSwitchCommand,
    ReadCommand,
    help_text,
    parse_command,
)
from engine.errors import (
    EngineError,
    NotFound,
    PolicyRefusal,
    Refusal,
    StaleVersion,
    StorageError,
)
from engine.executor import Checkpoint, ExecutionMetrics, Executor, Sleep, undo_from
from engine.model import (
    SYSTEM,
    ActionRef,
    AuditEvent,
    AuditOutcome,
    EngineSettings,
    Execution,
    Identity,
    IdentityKind,
    JsonDict,
    Proposal,
    ProposalOrigin,
    ProposalState,
    RiskLevel,
)
from engine.policy import ApprovalPolicy, Rule
from engine.ports import (
    AuditLog,
    Clock,
    DedupRepo,
    EngineSettingsRepo,
    EventLog,
    ExecutionRepo,
    IncidentRepo,
    Notifier,
    ProposalRepo,
)
from engine.reads import Reads
from engine.relay import EventRelay, NotifierSink
from engine.results import (
    Decided,
    DryRunOutcome,
    ExecutionReport,
    HelpView,
    KillSwitchOutcome,
    Outcome,
    ProposalCreated,
    RefusalKind,
    Refused,
)
from engine.transitions import (
    ProposalEvent,
    TransitionResult,
    apply_transition,
    propose,
    refusal_audit,
    transition,
)
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

logger = logging.getLogger(__name__)

DEDUP_TTL = timedelta(hours=24)
"""How long a request ID is remembered (Slack retries within minutes)."""


class EngineRepos(Protocol):
    """The repositories the engine needs (`storage.Repositories` provides them)."""

    @property
    def incidents(self) -> IncidentRepo: ...

    @property
    def proposals(self) -> ProposalRepo: ...

    @property
    def executions(self) -> ExecutionRepo: ...

    @property
    def audit(self) -> AuditLog: ...

    @property
    def dedup(self) -> DedupRepo: ...

    @property
    def settings(self) -> EngineSettingsRepo: ...

    @property
    def events(self) -> EventLog: ...


class EngineMetrics(ExecutionMetrics, Protocol):
    """Optional metrics hook (`tikvops.observability.BotMetrics` provides it)."""

    def approval_latency(self, seconds: float) -> None: ...


def prog_for(actor: Identity) -> str:
    """How commands are written for this actor: `tikvops` at the terminal, `/tikv` in Slack."""
    return CLI_PROG if actor.kind is IdentityKind.CLI_USER else SLACK_PROG


def _refusal_kind(refusal: Refusal) -> RefusalKind:
    if isinstance(refusal, PolicyRefusal):
        if refusal.rule == Rule.KILL_SWITCH:
            return RefusalKind.KILL_SWITCH
        if refusal.rule == Rule.OBSERVE_ONLY:
            return RefusalKind.OBSERVE_ONLY
        return RefusalKind.POLICY
    return RefusalKind.STATE


class Engine:
    """See the module docstring. Construct once per process (the composition root does:
    `tikvops.wiring.open_runtime`); `close()` it on shutdown."""

    def __init__(
        self,
        *,
        pd: PDApi,
        repos: EngineRepos,
        policy: ApprovalPolicy,
        clock: Clock,
        notifier: Notifier | None = None,
        max_drained_stores: int = 1,
        sleep: Sleep = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        deadlines: Mapping[str, float] | None = None,
        poll_intervals: Mapping[str, float] | None = None,
        auto_execute: bool = True,
        checkpoint: Checkpoint | None = None,
        metrics: EngineMetrics | None = None,
        dedup_ttl: timedelta = DEDUP_TTL,
        resume_window: timedelta | None = None,
    ) -> None:
        self.pd = pd
        self.repos = repos
        self.policy = policy
        self.clock = clock
        self.max_drained_stores = max_drained_stores
        self.auto_execute = auto_execute
        self._metrics = metrics
        self._dedup_ttl = dedup_ttl
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self.executor = Executor(
            pd=pd,
            proposals=repos.proposals,
            executions=repos.executions,
            audit=repos.audit,
            settings=repos.settings,
            policy=policy,
            clock=clock,
            max_drained_stores=max_drained_stores,
            sleep=sleep,
            monotonic=monotonic,
            deadlines=deadlines,
            poll_intervals=poll_intervals,
            checkpoint=checkpoint,
            metrics=metrics,
            resume_window=resume_window,
            spawn=self._spawn,
        )
        # A surface given here (the terminal, a test's recorder) hears every event from now on
        # through a relay the engine owns; `wait_idle()` delivers what is written so far.
        self.relay: EventRelay | None = None
        if notifier is not None:
            self.relay = EventRelay(
                repos.events, NotifierSink(notifier, repos.events), name="engine notifier"
            )
            repos.events.subscribe(self.relay.wake)
        self.reads = Reads(
            pd=pd,
            incidents=repos.incidents,
            proposals=repos.proposals,
            executions=repos.executions,
            audit=repos.audit,
            settings=repos.settings,
        )

    # ------------------------------------------------------------------ the one entry point

    async def handle(
        self,
        command: HelpCommand
        | ReadCommand
        | ActionCommand
        | DecisionCommand
        | KillSwitchCommand
        | CommandError,
        actor: Identity,
        *,
        request_id: str | None = None,
    ) -> Outcome:
        """Answer one command of the grammar for `actor`. Mutating commands with a
        `request_id` are handled once per ID."""
        prog = prog_for(actor)
        if isinstance(command, CommandError):
            return Refused(reason=command.text(), kind=RefusalKind.PARSE)
        if isinstance(command, HelpCommand):
            return HelpView(topic=command.topic, text=help_text(command.topic, prog))
        if isinstance(command, ReadCommand):
            return await self._read(command, prog)
        if isinstance(command, KillSwitchCommand) and command.mode == "status":
            return await self.kill_switch_status()
        if isinstance(command, ActionCommand) and command.dry_run:
            return await self.dry_run(command.action, command.params)
        subject = getattr(command, "proposal_id", None) or "engine"
        duplicate = await self._duplicate(request_id, actor, subject)
        if duplicate is not None:
            return duplicate
        if isinstance(command, ActionCommand):
            return await self.propose(
                command.action, command.params, actor=actor, origin=ProposalOrigin.USER
            )
        if isinstance(command, DecisionCommand):
            if command.decision == "approve":
                return await self.approve(command.proposal_id, actor)
            return await self.reject(command.proposal_id, actor, reason=command.reason or "")
        return await self.set_kill_switch(command.mode == "on", actor, command.reason or "")

    async def handle_text(
        self, text: str | Sequence[str], actor: Identity, *, request_id: str | None = None
    ) -> Outcome:
        """Parse words with the grammar (program name chosen by the actor) and handle them."""
        return await self.handle(
            parse_command(text, prog=prog_for(actor)), actor, request_id=request_id
        )

    async def _read(self, command: ReadCommand, prog: str) -> Outcome:
        try:
            if command.view == "status":
                return await self.reads.status()
            if command.view == "stores":
                return await self.reads.stores()
            if command.view == "store" and command.store_id is not None:
                return await self.reads.store(command.store_id, prog=prog)
            if command.view == "region" and command.region_id is not None:
                return await self.reads.region(command.region_id, prog=prog)
            if command.view == "incidents":
                return await self.reads.incidents()
            if command.view == "proposals":
                return await self.reads.proposals()
            if command.view == "proposal" and command.proposal_id is not None:
                return await self.reads.proposal(command.proposal_id, prog=prog)
            return await self.reads.audit(command.count or 20)
        except StorageError as exc:
            return Refused(reason=str(exc), kind=RefusalKind.STORAGE)

    # ------------------------------------------------------------------ proposals

    def _context(self) -> PreflightContext:
        return PreflightContext(max_drained_stores=self.max_drained_stores, now=self.clock.now())

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
            dry = await found.dry_run(typed, ReadOnce(self.pd), self._context())
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
        now = self.clock.now()
        subject = incident_id or "engine"
        resolved = self._resolve(action, params)
        if isinstance(resolved, Refused):
            await self._audit_refusal(actor, "proposal.create", subject, resolved.reason, action)
            return resolved
        found, typed = resolved
        call_params: JsonDict = typed.model_dump(mode="json")
        reads = ReadOnce(self.pd)  # the dry run and the snapshot share each PD read
        try:
            dry = await found.dry_run(typed, reads, self._context())
            undo_call = (
                found.undo(typed, await found.snapshot(typed, reads)) if dry.would_run else None
            )
        except PDError as exc:
            refused = Refused(reason=str(exc), kind=RefusalKind.PD)
            await self._audit_refusal(actor, "proposal.create", subject, refused.reason, action)
            return refused
        if not dry.would_run:
            why = dry.preflight.refusal()
            await self._audit_refusal(
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
            return Refused(reason=why, kind=RefusalKind.PREFLIGHT, dry_run=dry)
        undo = (
            ActionRef(action=undo_call.action, params=dict(undo_call.params))
            if undo_call is not None and found.reversible
            else None
        )
        try:
            proposal_id = await self.repos.proposals.next_id()
            result = propose(
                proposal_id=proposal_id,
                action=found.name,
                params=call_params,
                risk=RiskLevel(found.risk.value),
                origin=origin,
                proposed_by=actor,
                requested_by=requested_by,
                now=now,
                ttl=self.policy.proposal_ttl,
                incident_id=incident_id,
                reversible=found.reversible,
                undo=undo,
                reason=reason,
                preflight=[check.model_dump(mode="json") for check in dry.preflight.checks],
                preview=dry.model_dump(mode="json"),
            )
            proposal = await self.repos.proposals.create(result)
        except StorageError as exc:
            return Refused(reason=str(exc), kind=RefusalKind.STORAGE)
        auto = self.policy.auto_approve(proposal, now)
        if auto is None:
            return ProposalCreated(proposal=proposal, dry_run=dry)
        try:
            approved = await self.repos.proposals.apply(auto)
        except StaleVersion:  # someone decided it in the meantime
            return ProposalCreated(proposal=proposal, dry_run=dry)
        await self._after_approval(approved)
        return ProposalCreated(proposal=approved, dry_run=dry, auto_approved=True)

    async def propose_undo(
        self, proposal_id: str, actor: Identity, *, request_id: str | None = None
    ) -> ProposalCreated | Refused:
        """Propose the undo of a proposal that ran successfully (origin `undo`), with the
        parameters computed from the before snapshot of its run."""
        duplicate = await self._duplicate(request_id, actor, proposal_id)
        if duplicate is not None:
            return duplicate
        undo = await self.undo_for(proposal_id)
        if isinstance(undo, Refused):
            return undo
        original = await self.repos.proposals.get(proposal_id)
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
        proposal = await self.repos.proposals.get(proposal_id)
        if proposal is None:
            return Refused(reason=f"there is no proposal {proposal_id}", kind=RefusalKind.UNKNOWN)
        execution = await self.repos.executions.get(proposal_id)
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

    # ------------------------------------------------------------------ decisions

    async def approve(
        self,
        proposal_id: str,
        actor: Identity,
        *,
        expected_version: int | None = None,
        request_id: str | None = None,
        reason: str | None = None,
    ) -> Decided | Refused:
        """Approve through the policy. When the approval completes the quorum and neither the
        kill switch nor observe-only blocks it, the execution starts in the background (it
        runs at most once, whatever the number of approvals, clicks or retries)."""
        now = self.clock.now()
        result = await self._decide(
            proposal_id,
            actor,
            request_id,
            "proposal.approve",
            lambda current: self.policy.approve(
                current, actor, now, expected_version=expected_version, reason=reason
            ),
        )
        if isinstance(result, Refused):
            return result
        proposal = result.proposal
        count = len(proposal.approvals)
        needed = self.policy.approvals_needed(proposal.risk)
        if proposal.state is not ProposalState.APPROVED:
            missing = needed - count
            return Decided(
                proposal=proposal,
                message=f"{actor.label} approved proposal {proposal_id} (approval {count} of "
                f"{needed}); it needs {missing} more approval{'s' if missing != 1 else ''} "
                "from someone else",
            )
        metrics = self._metrics
        if metrics is not None:
            waited = (now - proposal.created_at).total_seconds()
            self._safe_metric(lambda: metrics.approval_latency(waited))
        blocked = await self._after_approval(proposal)
        head = f"{actor.label} approved proposal {proposal_id} (approval {count} of {needed})"
        if blocked is not None:
            return Decided(proposal=proposal, message=f"{head}, but {blocked}")
        tail = "executing now" if self.auto_execute else "ready to execute"
        return Decided(proposal=proposal, message=f"{head}; {tail}", executing=True)

    async def _decide(
        self,
        proposal_id: str,
        actor: Identity,
        request_id: str | None,
        audit_action: str,
        decide: Callable[[Proposal], TransitionResult],
    ) -> TransitionResult | Refused:
        """What every decision on a proposal shares: a redelivered request is answered once,
        the policy decides on the current record (`decide`, re-run on a stale version), and a
        refusal is audited as `audit_action` (the change's event is written with it)."""
        duplicate = await self._duplicate(request_id, actor, proposal_id)
        if duplicate is not None:
            return duplicate
        try:
            result = await apply_transition(self.repos.proposals, proposal_id, decide)
        except (Refusal, NotFound, StaleVersion) as exc:
            return await self._refused(exc, actor, audit_action, proposal_id)
        return result

    async def _after_approval(self, proposal: Proposal) -> str | None:
        """Start the execution of a freshly approved proposal in the background, or say why it
        waits. (Its approval's event was written with the approval.)"""
        engine_settings = await self.repos.settings.get()
        gate = self.policy.check_execution(proposal, engine_settings, self.clock.now())
        if not gate.allowed:
            if gate.audit is not None:
                await self._append(gate.audit)
            return gate.reason
        if self.auto_execute and not self._closed:
            self._spawn(
                self._execute_quietly(proposal.id, approved=proposal), f"execute {proposal.id}"
            )
        return None

    async def reject(
        self,
        proposal_id: str,
        actor: Identity,
        *,
        reason: str = "",
        expected_version: int | None = None,
        request_id: str | None = None,
    ) -> Decided | Refused:
        """Reject through the policy (approvers for the risk, or the requester)."""
        now = self.clock.now()
        result = await self._decide(
            proposal_id,
            actor,
            request_id,
            "proposal.reject",
            lambda current: self.policy.reject(
                current, actor, now, expected_version=expected_version, reason=reason or None
            ),
        )
        if isinstance(result, Refused):
            return result
        because = f" ({reason})" if reason else ""
        return Decided(
            proposal=result.proposal,
            message=f"{actor.label} rejected proposal {proposal_id}{because}; nothing was sent "
            "to PD",
        )

    # ------------------------------------------------------------------ execution

    async def execute(self, proposal_id: str) -> Execution:
        """Run an approved proposal now and return its execution record (the existing one if
        it already started: it never runs twice). Normally `approve()` schedules this. Raises
        `PolicyRefusal` (kill switch, observe-only) or `TransitionError` (not approved)."""
        return await self.executor.run(proposal_id)

    async def execution_report(self, proposal_id: str) -> ExecutionReport | Refused:
        """The proposal, its execution and the undo on offer, for surfaces after a run."""
        proposal = await self.repos.proposals.get(proposal_id)
        execution = await self.repos.executions.get(proposal_id)
        if proposal is None or execution is None:
            return Refused(
                reason=f"proposal {proposal_id} has not been executed", kind=RefusalKind.UNKNOWN
            )
        return ExecutionReport(
            proposal=proposal, execution=execution, undo=undo_from(proposal, execution)
        )

    async def _execute_quietly(
        self,
        proposal_id: str,
        *,
        approved: Proposal | None = None,
    ) -> None:
        try:
            await self.executor.run(proposal_id, approved=approved)
        except Refusal as refusal:
            logger.info("proposal %s was not executed: %s", proposal_id, refusal)
        except EngineError:
            logger.exception("proposal %s could not be executed", proposal_id)

    def _spawn(self, work: Awaitable[Any], name: str) -> None:
        async def runner() -> None:
            try:
                await work
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("background work %r failed", name)

        if self._closed:
            close = getattr(work, "close", None)
            if close is not None:
                close()
            logger.warning("engine closed; %s not started", name)
            return
        task = asyncio.get_running_loop().create_task(runner(), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def wait_idle(self) -> None:
        """Wait until every background execution (and resumed verification) has finished, and
        the engine's own notifier (if any) has heard every event written so far."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self.relay is not None:
            await self.relay.drain()

    # ------------------------------------------------------------------ housekeeping

    async def expire_due(self) -> list[Proposal]:
        """Expire every `proposed` proposal past its TTL (actor: the system); returns them."""
        now = self.clock.now()
        expired: list[Proposal] = []
        for due in await self.repos.proposals.list_due_for_expiry(now):
            try:
                result = await apply_transition(
                    self.repos.proposals,
                    due.id,
                    lambda current: transition(
                        current, ProposalEvent.EXPIRE, actor=SYSTEM, now=now
                    ),
                )
            except (Refusal, NotFound, StaleVersion):
                continue  # decided meanwhile
            expired.append(result.proposal)
        return expired

    async def reconcile(self) -> list[Execution]:
        """At start-up: reconcile every interrupted execution against PD (never re-sent) and
        resume or cancel proposals left approved. See `Executor.reconcile`."""
        return await self.executor.reconcile()

    async def kill_switch_status(self) -> KillSwitchOutcome:
        current = await self.repos.settings.get()
        return KillSwitchOutcome(settings=current, changed=False, message=_switch_text(current))

    async def set_kill_switch(
        self, on: bool, actor: Identity, reason: str = ""
    ) -> KillSwitchOutcome | Refused:
        """Turn the kill switch on (anyone who may approve something) or off (a high-risk
        approver). Persisted and audited. While on, nothing starts executing and every attempt
        says why; turning it off starts the proposals that were approved meanwhile."""
        current = await self.repos.settings.get()
        try:
            new, event = self.policy.set_kill_switch(
                current, on=on, actor=actor, now=self.clock.now(), reason=reason or None
            )
        except PolicyRefusal as refusal:
            return await self._refused(refusal, actor, f"killswitch.{'on' if on else 'off'}")
        return await self._save_switch(current, new, event, was=current.kill_switch.on, now_on=on)

    async def set_observe_only(
        self, on: bool, actor: Identity, reason: str = ""
    ) -> KillSwitchOutcome | Refused:
        """Observe-only mode: monitor and propose, never execute. Same permissions as the kill
        switch."""
        current = await self.repos.settings.get()
        try:
            new, event = self.policy.set_observe_only(
                current, on=on, actor=actor, now=self.clock.now(), reason=reason or None
            )
        except PolicyRefusal as refusal:
            return await self._refused(refusal, actor, f"observe_only.{'on' if on else 'off'}")
        return await self._save_switch(current, new, event, was=current.observe_only, now_on=on)

    async def _save_switch(
        self,
        current: EngineSettings,
        new: EngineSettings,
        event: AuditEvent,
        *,
        was: bool,
        now_on: bool,
    ) -> KillSwitchOutcome:
        await self.repos.settings.save(new, audit=event)
        if not now_on and not new.kill_switch.on and not new.observe_only:
            self._spawn(self.executor.resume_approved(), "resume approved proposals")
        return KillSwitchOutcome(settings=new, changed=was != now_on, message=_switch_text(new))

    async def close(self) -> None:
        """Stop background work. Executions interrupted here stay unfinished in the database
        and are reconciled at the next start."""
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.relay is not None:
            await self.relay.drain()
            await self.relay.stop()

    # ------------------------------------------------------------------ refusals and audit

    async def _append(self, event: AuditEvent) -> None:
        try:
            await self.repos.audit.append(event)
        except EngineError:
            logger.exception("could not append audit event %s", event.action)

    async def _audit_refusal(
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
        await self._append(
            refusal_audit(
                subject,
                action,
                actor=actor,
                now=self.clock.now(),
                why=why,
                detail={**extra, **(detail or {})},
            )
        )

    async def _refused(
        self,
        exc: Refusal | NotFound | StaleVersion,
        actor: Identity,
        action: str,
        subject: str = "engine",
    ) -> Refused:
        """Audit a refusal and turn it into the outcome surfaces show."""
        proposal = await self.repos.proposals.get(subject) if subject != "engine" else None
        if isinstance(exc, Refusal):
            if exc.audit is not None:
                await self._append(exc.audit)
            else:
                await self._audit_refusal(actor, action, subject, exc.message)
            return Refused(reason=exc.message, kind=_refusal_kind(exc), proposal=proposal)
        if isinstance(exc, NotFound):
            await self._audit_refusal(actor, action, subject, exc.message)
            return Refused(reason=exc.message, kind=RefusalKind.UNKNOWN)
        message = exc.message
        if proposal is not None and "since you saw it" not in message:
            # Lost every compare-and-set race (not a stale button): say where it stands now.
            message = (
                f"proposal {subject} changed while you were deciding (it is now "
                f"{proposal.state.value}, version {proposal.version}); look at its latest "
                "message and try again"
            )
        await self._audit_refusal(actor, action, subject, message)
        return Refused(reason=message, kind=RefusalKind.STALE, proposal=proposal)

    async def _duplicate(
        self, request_id: str | None, actor: Identity, subject: str
    ) -> Refused | None:
        if request_id is None:
            return None
        now = self.clock.now()
        if not await self.repos.dedup.seen(request_id, now=now, ttl=self._dedup_ttl):
            return None
        why = f"request {request_id} was already handled; it is not applied twice"
        await self._append(
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

    def _safe_metric(self, record: Callable[[], None]) -> None:
        try:
            record()
        except Exception:
            logger.exception("metrics hook failed")


def _switch_text(settings: EngineSettings) -> str:
    switch = settings.kill_switch
    if switch.on:
        by = f" by {switch.by.label}" if switch.by else ""
        because = f" ({switch.reason})" if switch.reason else ""
        text = f"The kill switch is ON{by}{because}: nothing will execute until it is turned off."
    else:
        text = "The kill switch is off: approved proposals execute."
    if settings.observe_only:
        text += " Observe-only mode is on: tikvops monitors and proposes but never executes."
    return text


__all__ = [
    "DEDUP_TTL",
    "Engine",
    "EngineMetrics",
    "EngineRepos",
    "prog_for",
]
