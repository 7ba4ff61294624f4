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
- `engine.reads`: the read views.

No use case tells a surface anything: each change writes its event in its own transaction
(`engine.events`), and deliverers read them in order (`engine.relay`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any, Protocol

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
from engine.deciding import ApprovalLatency, Deciding
from engine.errors import EngineError, Refusal, StorageError
from engine.executor import Checkpoint, ExecutionMetrics, Executor, Opened, Sleep, undo_from
from engine.knowledge import ClusterKnowledge, Known
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
    AttentionRepo,
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
from engine.proposing import Proposing
from engine.reads import Reads
from engine.refusals import DEDUP_TTL, Refusals, as_refused
from engine.relay import EventRelay, NotifierSink
from engine.results import (
    Attended,
    ClusterHealth,
    ClustersView,
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
from engine.switches import Switches
from engine.transitions import ProposalEvent
from operator_tikv.actions import ActionParams
from operator_tikv.actions.ports import PDApi

logger = logging.getLogger(__name__)


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

    @property
    def attention(self) -> AttentionRepo: ...


class EngineMetrics(ExecutionMetrics, ApprovalLatency, Protocol):
    """Optional metrics hook (`tikvops.observability.BotMetrics` provides it)."""


def prog_for(actor: Identity) -> str:
    """How commands are written for this actor: `tikvops` at the terminal, `/tikv` in Slack."""
    return CLI_PROG if actor.kind is IdentityKind.CLI_USER else SLACK_PROG


class Engine:
    """See the module docstring. Construct once per process (the composition root does:
    `tikvops.stack.open_runtime`); `close()` it on shutdown."""

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

    # ------------------------------------------------------------------ clusters

    def join(self, engines: Mapping[str, Engine]) -> None:
        """Know every cluster's engine (in configuration order, this one among them)."""
        self.peers = dict(engines)

    @property
    def clusters(self) -> list[str]:
        """The names of the clusters this bot watches, in configuration order."""
        return list(self.peers)

    @property
    def multi_cluster(self) -> bool:
        return len(self.peers) > 1

    def cluster_of_channel(self, channel: str | None) -> str | None:
        """The cluster whose incident channel `channel` is (ID or name), if any."""
        if channel is None:
            return None
        wanted = channel.lstrip("#")
        for name, engine in self.peers.items():
            if engine.channel is not None and engine.channel.lstrip("#") == wanted:
                return name
        return None

    def engine_for(self, cluster: str | None) -> Engine | Refused:
        """The engine of `cluster`; with one cluster, it whatever the name is not given; else a
        refusal saying which clusters there are."""
        names = ", ".join(self.peers)
        if cluster is None:
            if not self.multi_cluster:
                return self
            return Refused(
                reason=f"this bot watches several clusters ({names}) and this command does not "
                "say which: run it in a cluster's incident channel, or name the cluster first, "
                f"e.g. /tikv {next(iter(self.peers))} status (tikvops --cluster NAME ... at the "
                "terminal)",
                kind=RefusalKind.INVALID,
            )
        found = self.peers.get(cluster)
        if found is None:
            return Refused(
                reason=f"there is no cluster '{cluster}': the clusters are {names}",
                kind=RefusalKind.INVALID,
            )
        return found

    async def _owner_of_proposal(self, proposal_id: str) -> Engine:
        """The engine of the proposal's cluster (this one with one cluster, or when the
        proposal is unknown: the refusal is then this engine's to give)."""
        if not self.multi_cluster:
            return self
        try:
            proposal = await self.repos.proposals.get(proposal_id)
        except StorageError:
            return self
        if proposal is None:
            return self
        return self.peers.get(proposal.cluster, self)

    async def _owner_of_incident(self, incident_id: str) -> Engine:
        if not self.multi_cluster:
            return self
        try:
            incident = await self.repos.incidents.get(incident_id)
        except StorageError:
            return self
        if incident is None:
            return self
        return self.peers.get(incident.cluster, self)

    async def clusters_view(self) -> ClustersView:
        """Every cluster at a glance, from each monitor's last cycle and the open incidents."""
        try:
            settings = await self.repos.settings.get()
            open_incidents = await self.repos.incidents.list_open()
        except StorageError:
            settings, open_incidents = None, []
        out = []
        for name, engine in self.peers.items():
            count = sum(1 for i in open_incidents if i.cluster == name)
            switch = settings is not None and settings.switch_for(name).on
            known = engine.reads.knowledge.current if engine.reads.knowledge else None
            out.append(_cluster_health(name, engine.channel, known, count, switch))
        return ClustersView(clusters=tuple(out))

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
            return await self._read(command, prog)
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

    async def _route(
        self,
        command: ReadCommand
        | ActionCommand
        | DecisionCommand
        | KillSwitchCommand
        | AttentionCommand,
    ) -> Engine | Refused:
        """The engine that answers `command`: a decision or an attention command goes to the
        engine of its record's cluster; a command naming a cluster to that cluster's; a read of
        the cluster or an action needs a cluster when there are several. Reads of records
        (incidents, proposals, audit) and the kill switch without a cluster are answered here
        (all clusters; the global switch)."""
        if isinstance(command, DecisionCommand):
            return await self._owner_of_proposal(command.proposal_id)
        if isinstance(command, AttentionCommand):
            return await self._owner_of_incident(command.incident_id)
        if (
            isinstance(command, ReadCommand)
            and command.view == "proposal"
            and command.cluster is None
        ):
            return await self._owner_of_proposal(command.proposal_id or "")
        if command.cluster is not None:
            return self.engine_for(command.cluster)
        needs_cluster = isinstance(command, ActionCommand) or (
            isinstance(command, ReadCommand)
            and command.view in {"status", "stores", "store", "region"}
        )
        return self.engine_for(None) if needs_cluster else self

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

    # ------------------------------------------------------------------ execution

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
        proposal = await self.repos.proposals.get(proposal_id)
        execution = await self.repos.executions.get(proposal_id)
        if proposal is None or execution is None:
            return Refused(
                reason=f"proposal {proposal_id} has not been executed", kind=RefusalKind.UNKNOWN
            )
        return ExecutionReport(
            proposal=proposal, execution=execution, undo=undo_from(proposal, execution)
        )

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


def _cluster_health(
    name: str, channel: str | None, known: Known | None, open_incidents: int, switch: bool
) -> ClusterHealth:
    """One cluster's line of `/tikv clusters`, from what its monitor last saw."""
    if known is None or known.cycle_at is None:
        return ClusterHealth(
            name=name,
            channel=channel,
            state="unknown",
            open_incidents=open_incidents,
            kill_switch=switch,
            sentence="no monitor cycle yet"
            + (f"; {open_incidents} open incident(s)" if open_incidents else ""),
        )
    stores = len(known.stores) if known.stores_at is not None else None
    up = sum(1 for s in known.stores if s.state_name.value == "Up") if stores is not None else None
    counted = f"{up}/{stores} stores Up" if stores is not None else "no stores read yet"
    if known.pd_failing:
        state: str = "pd-unreachable"
        sentence = f"PD unreachable ({known.error or 'no answer'}); last read {counted}"
    elif open_incidents:
        state = "incidents"
        sentence = f"{open_incidents} open incident(s); {counted}"
    else:
        state = "ok"
        sentence = f"OK, {counted}"
    return ClusterHealth.model_validate(
        {
            "name": name,
            "channel": channel,
            "state": state,
            "stores": stores,
            "stores_up": up,
            "open_incidents": open_incidents,
            "kill_switch": switch,
            "sentence": sentence,
        }
    )


__all__ = [
    "DEDUP_TTL",
    "Engine",
    "EngineMetrics",
    "EngineRepos",
    "prog_for",
]
