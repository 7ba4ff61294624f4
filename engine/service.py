"""The engine facade: the one object Slack, the terminal and tests talk to.

`Engine.handle(command, actor)` answers every command of the shared grammar (`engine.commands`)
with a typed outcome (`engine.results`). Each use case lives in its own module:

- `engine.proposing`: validate, preflight as a dry run, store a proposal; the undo of a run;
- `engine.deciding`: one generic decision (approve, reject, cancel, expire) through the policy
  and the one transition function;
- `engine.executor`: the gate (the one place the kill switch and observe-only are checked),
  the write sent at most once, its verification (`engine.verifying`) and record
  (`engine.run_record`);
- `engine.reconciling`: start-up reconciliation of interrupted runs, never re-sent;
- `engine.switches`: the kill switch and observe-only mode;
- `engine.refusals`: auditing refused attempts and redelivered requests;
- `engine.reads`: the read views;
- `engine.routing`: several clusters, each command handed to its cluster's engine.

No use case tells a surface anything: each change writes its event in its own transaction
(`engine.events`), and deliverers read them in order (`engine.relay`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any

from engine.attending import Attending
from engine.attention_commands import AttentionCommand
from engine.claims import RunClaims
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
)
from engine.deciding import Deciding
from engine.engine_repos import EngineMetrics, EngineRepos
from engine.errors import EngineError, Refusal
from engine.executor import Checkpoint, Executor, Opened, Sleep
from engine.knowledge import ClusterKnowledge
from engine.model import (
    DEFAULT_CLUSTER,
    ActionRef,
    Execution,
    Identity,
    IdentityKind,
    Proposal,
    ProposalOrigin,
)
from engine.policy import ApprovalPolicy
from engine.ports import (
    Clock,
    Notifier,
)
from engine.proposing import Proposing
from engine.reads import Reads
from engine.refusals import DEDUP_TTL, Refusals, as_refused
from engine.relay import EventRelay, NotifierSink
from engine.results import (
    Attended,
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
from engine.routing import ClusterRouting
from engine.switches import Switches
from engine.transitions import ProposalEvent
from operator_tikv.actions import ActionParams
from operator_tikv.actions.ports import PDApi

logger = logging.getLogger(__name__)


def prog_for(actor: Identity) -> str:
    """How commands are written for this actor: `tikvops` at the terminal, `/tikv` in Slack."""
    return CLI_PROG if actor.kind is IdentityKind.CLI_USER else SLACK_PROG


class Engine(ClusterRouting):
    """See the module docstring. Construct once per process (the composition root does:
    `tikvops.runtime.open_runtime`); `close()` it on shutdown."""

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
        knowledge: ClusterKnowledge | None = None,
        cluster: str = DEFAULT_CLUSTER,
        channel: str | None = None,
        claims: RunClaims | None = None,
    ) -> None:
        self.pd = pd  # `cluster`'s PD: this engine reads and changes that cluster only
        self.cluster = cluster
        self.channel = channel
        # Every cluster's engine by name (the composition root joins them, `join`): any of them
        # is an entry point and hands a command, a decision or a run to the engine of the
        # record's cluster, so an action always reaches its own cluster's PD and policy.
        self.peers: dict[str, Engine] = {cluster: self}
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
            cluster=cluster,
            claims=claims,
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
            knowledge=knowledge,
        )
        self.refusals = Refusals(repos, clock, dedup_ttl)
        self.proposing = Proposing(
            pd=pd,
            repos=repos,
            policy=policy,
            clock=clock,
            refusals=self.refusals,
            after_approval=self._after_approval,
            max_drained_stores=max_drained_stores,
            cluster=cluster,
        )
        self.deciding = Deciding(
            proposals=repos.proposals,
            policy=policy,
            clock=clock,
            refusals=self.refusals,
            after_approval=self._after_approval,
            executes=lambda: self.auto_execute,
            metrics=metrics,
        )
        self.attending = Attending(
            incidents=repos.incidents,
            attention=repos.attention,
            audit=repos.audit,
            policy=policy,
            clock=clock,
        )
        self.switches = Switches(
            repos=repos,
            policy=policy,
            clock=clock,
            refusals=self.refusals,
            resume=self._resume_every_cluster,
        )

    # ------------------------------------------------------------------ the one entry point

    async def handle(
        self,
        command: HelpCommand
        | ReadCommand
        | ActionCommand
        | DecisionCommand
        | KillSwitchCommand
        | AttentionCommand
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
        if isinstance(command, ReadCommand) and command.view == "clusters":
            return await self.clusters_view()
        routed = await self._route(command)
        if isinstance(routed, Refused):
            return routed
        if routed is not self:
            return await routed.handle(command, actor, request_id=request_id)
        if isinstance(command, ReadCommand):
            return await self.reads.answer(command, prog)
        if isinstance(command, KillSwitchCommand) and command.mode == "status":
            return await self.kill_switch_status()
        if isinstance(command, ActionCommand) and command.dry_run:
            return await self.dry_run(command.action, command.params)
        subject = str(
            getattr(command, "proposal_id", None) or getattr(command, "incident_id", "engine")
        )
        duplicate = await self.refusals.duplicate(request_id, actor, subject)
        if duplicate is not None:
            return duplicate
        if isinstance(command, AttentionCommand):
            return await self.attend(command, actor)
        if isinstance(command, ActionCommand):
            return await self.propose(
                command.action, command.params, actor=actor, origin=ProposalOrigin.USER
            )
        if isinstance(command, DecisionCommand):
            if command.decision == "approve":
                return await self.approve(command.proposal_id, actor)
            return await self.reject(command.proposal_id, actor, reason=command.reason or "")
        scoped = command.cluster if self.multi_cluster else None
        return await self.set_kill_switch(
            command.mode == "on", actor, command.reason or "", cluster=scoped
        )

    # ------------------------------------------------------------------ use cases

    async def dry_run(
        self, action: str, params: Mapping[str, object] | ActionParams
    ) -> DryRunOutcome | Refused:
        """The preflight checks, the exact PD request(s) and the expected effect; sends nothing."""
        return await self.proposing.dry_run(action, params)

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
        """Validate, preflight and store a proposal (`engine.proposing`)."""
        return await self.proposing.propose(
            action,
            params,
            actor=actor,
            origin=origin,
            incident_id=incident_id,
            reason=reason,
            requested_by=requested_by,
        )

    async def propose_undo(
        self, proposal_id: str, actor: Identity, *, request_id: str | None = None
    ) -> ProposalCreated | Refused:
        owner = await self._owner_of_proposal(proposal_id)
        if owner is not self:
            return await owner.propose_undo(proposal_id, actor, request_id=request_id)
        return await self.proposing.propose_undo(proposal_id, actor, request_id=request_id)

    async def undo_for(self, proposal_id: str) -> ActionRef | Refused:
        owner = await self._owner_of_proposal(proposal_id)
        if owner is not self:
            return await owner.undo_for(proposal_id)
        return await self.proposing.undo_for(proposal_id)

    async def approve(
        self,
        proposal_id: str,
        actor: Identity,
        *,
        expected_version: int | None = None,
        request_id: str | None = None,
        reason: str | None = None,
    ) -> Decided | Refused:
        """Approve through the policy (of the proposal's cluster); an approval that completes
        the quorum starts the run (at most once, whatever the number of approvals, clicks or
        retries)."""
        owner = await self._owner_of_proposal(proposal_id)
        if owner is not self:
            return await owner.approve(
                proposal_id,
                actor,
                expected_version=expected_version,
                request_id=request_id,
                reason=reason,
            )
        return await self.deciding.decide(
            ProposalEvent.APPROVE,
            proposal_id,
            actor,
            expected_version=expected_version,
            request_id=request_id,
            reason=reason,
        )

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
        owner = await self._owner_of_proposal(proposal_id)
        if owner is not self:
            return await owner.reject(
                proposal_id,
                actor,
                reason=reason,
                expected_version=expected_version,
                request_id=request_id,
            )
        return await self.deciding.decide(
            ProposalEvent.REJECT,
            proposal_id,
            actor,
            expected_version=expected_version,
            request_id=request_id,
            reason=reason or None,
        )

    async def attend(self, command: AttentionCommand, actor: Identity) -> Attended | Refused:
        """Acknowledge, silence or unsilence an incident (`engine.attending`)."""
        owner = await self._owner_of_incident(command.incident_id)
        if owner is not self:
            return await owner.attend(command, actor)
        if command.verb == "ack":
            return await self.attending.acknowledge(command.incident_id, actor)
        if command.verb == "unsilence":
            return await self.attending.unsilence(command.incident_id, actor)
        length = timedelta(seconds=command.seconds or 3600)
        return await self.attending.silence(command.incident_id, actor, length, command.reason)

    async def expire_due(self) -> list[Proposal]:
        """Expire every `proposed` proposal past its TTL; returns them."""
        return await self.deciding.expire_due()

    async def kill_switch_status(self) -> KillSwitchOutcome:
        return await self.switches.kill_switch_status()

    async def set_kill_switch(
        self, on: bool, actor: Identity, reason: str = "", *, cluster: str | None = None
    ) -> KillSwitchOutcome | Refused:
        """The global kill switch, or `cluster`'s own (set through that cluster's engine: its
        approvers decide, and turning it off resumes that cluster's approved proposals)."""
        if cluster is not None and cluster != self.cluster:
            owner = self.engine_for(cluster)
            if isinstance(owner, Refused):
                return owner
            return await owner.set_kill_switch(on, actor, reason, cluster=cluster)
        return await self.switches.set_kill_switch(on, actor, reason, cluster=cluster)

    async def set_observe_only(
        self, on: bool, actor: Identity, reason: str = ""
    ) -> KillSwitchOutcome | Refused:
        return await self.switches.set_observe_only(on, actor, reason)

    async def reconcile(self) -> list[Execution]:
        """At start-up: reconcile interrupted executions against PD (never re-sent) and resume
        or cancel proposals left approved (`engine.reconciling`)."""
        return await self.executor.reconcile()

    async def _after_approval(self, proposal: Proposal) -> Refused | None:
        """Open the gate of a freshly approved proposal (the one place the kill switch and
        observe-only mode are checked) and run the rest in the background; returns the gate's
        refusal (as data: which switch, set by whom) when it waits."""
        if not self.auto_execute or self._closed:
            return None
        try:
            opened = await self.executor.open(proposal.id, approved=proposal)
        except Refusal as refusal:
            return as_refused(refusal, proposal)
        except EngineError:
            logger.exception("proposal %s could not be started", proposal.id)
            return None
        if isinstance(opened, Opened):
            self._spawn(self._proceed_quietly(proposal.id, opened), f"execute {proposal.id}")
        return None

    async def _proceed_quietly(self, proposal_id: str, opened: Opened) -> None:
        try:
            await self.executor.proceed(opened)
        except EngineError:
            logger.exception("proposal %s could not be executed", proposal_id)

    async def execute(self, proposal_id: str) -> Execution:
        """Run an approved proposal now and return its execution record (the existing one if
        it already started: it never runs twice). Normally `approve()` schedules this. Raises
        `PolicyRefusal` (kill switch, observe-only) or `TransitionError` (not approved)."""
        owner = await self._owner_of_proposal(proposal_id)
        if owner is not self:
            return await owner.execute(proposal_id)
        return await self.executor.run(proposal_id)

    async def execution_report(self, proposal_id: str) -> ExecutionReport | Refused:
        """The proposal, its execution and the undo on offer, for surfaces after a run."""
        return await self.reads.execution_report(proposal_id)

    def _resume_every_cluster(self) -> None:
        """A switch turned off: every cluster's engine starts its proposals left approved (each
        still checks its own switches)."""
        for engine in self.peers.values():
            engine._spawn(engine.executor.resume_approved(), "resume approved proposals")

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
        the engine's own notifier (if any) has heard every event written so far. With several
        clusters, every cluster's engine's work counts (a run is its cluster's engine's)."""
        while any(engine._tasks for engine in self.peers.values()):
            for engine in self.peers.values():
                while engine._tasks:
                    await asyncio.gather(*list(engine._tasks), return_exceptions=True)
        for engine in self.peers.values():
            if engine.relay is not None:
                await engine.relay.drain()

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


__all__ = [
    "DEDUP_TTL",
    "Engine",
    "EngineMetrics",
    "EngineRepos",
    "prog_for",
]
