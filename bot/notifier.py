"""SlackNotifier: the Slack deliverer's rendering side. `engine.relay.EventRelay` feeds it the
events of the log (`engine.events`) in order; it renders each (pure, `bot.render`) into the
messages of one `Batch` and queues them in the outbox together with the move of its cursor
past that event, in one transaction (`SlackOutbox.send`), so an event becomes its messages
exactly once, also across a crash at any point. The outbox's deliverer sends them.

Where things go:
- an incident owns one message in the configured channel, edited in place as it changes
  (worsened, diagnosis ready, action running, resolved with its duration); everything else
  about it goes in that message's thread (diagnosis, proposals, the suggested actions that were
  not proposed and why, execution replies, resolution);
- a silenced incident (`engine.attending.quiet`) still has its message edited, but nothing new
  goes in its thread until the silence ends (the lines about the silence itself excepted);
- a proposal owns one message: in its incident's thread, or in the channel when it has no
  incident (slash commands); it is edited as it moves (buttons → decision → outcome) and its
  execution replies go in the same thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from bot.charts import chart_key, chart_payload
from bot.queue import Batch, SlackOutbox, key_for_incident, key_for_proposal, owner
from bot.render.attention import attention_reply
from bot.render.chart import Phase
from bot.render.diagnosis import diagnosis_reply, not_proposed_reply
from bot.render.execution import execution_outcome, execution_progress, execution_started
from bot.render.incident import (
    incident_changed_reply,
    incident_parent,
    incident_resolved_reply,
    incident_worsened_reply,
)
from bot.render.kit import Rendered
from bot.render.links import Links
from bot.render.proposal import proposal_message, proposal_reminder
from engine.attending import quiet
from engine.events import Event, EventKind, IncidentChange
from engine.model import (
    AuditEvent,
    Diagnosis,
    Execution,
    Incident,
    NotProposed,
    OwnerKind,
    Proposal,
    ProposalState,
    Severity,
)
from engine.ports import (
    Clock,
    DiagnosisRepo,
    EventLog,
    ExecutionRepo,
    IncidentRepo,
    ProposalRepo,
)

logger = logging.getLogger(__name__)

IN_FLIGHT = (ProposalState.PROPOSED, ProposalState.APPROVED, ProposalState.EXECUTING)
FINISHED = (ProposalState.SUCCEEDED, ProposalState.FAILED, ProposalState.UNVERIFIED)

PROGRESS_EVERY = timedelta(seconds=60)
"""At most one progress reply per proposal per minute in the thread; the proposal message
itself always shows the latest progress."""


class NotifierReads(Protocol):
    """What the notifier reads to render a full message (`storage.Repositories` has these)."""

    @property
    def incidents(self) -> IncidentRepo: ...

    @property
    def diagnoses(self) -> DiagnosisRepo: ...

    @property
    def proposals(self) -> ProposalRepo: ...

    @property
    def executions(self) -> ExecutionRepo: ...

    @property
    def events(self) -> EventLog: ...


CONSUMER = "slack"
"""The Slack deliverer's name in the event cursors."""


class SlackNotifier:
    """See the module docstring. `approvals_needed` (from the approval policy of the proposal's
    cluster) is shown on pending proposals. `channels`: each cluster's incident channel;
    `clusters_named`: the bot watches several clusters, so the cards name theirs."""

    def __init__(
        self,
        clock: Clock,
        *,
        channel: str,
        outbox: SlackOutbox,
        reads: NotifierReads,
        approvals_needed: Callable[[Proposal], int] | None = None,
        links: Links | None = None,
        charts: bool = False,
        channels: Mapping[str, str] | None = None,
        clusters_named: bool = False,
    ) -> None:
        self._clock = clock
        self._links = links
        self._charts = charts
        self.channel = channel
        # Several clusters: each cluster's records go to its own channel. Events are rendered
        # one at a time, in order (`deliver`), so the event being rendered names the cluster.
        self._channels = dict(channels or {})
        self._cluster: str | None = None
        self._named = clusters_named  # several clusters: cards name theirs
        self._outbox = outbox
        self._reads = reads
        self._approvals_needed = approvals_needed or (lambda _proposal: 1)
        self._progress_posted: dict[str, datetime] = {}
        self._quiet: set[str] = set()

    # ------------------------------------------------------------------ the event sink

    async def position(self) -> int:
        return await self._reads.events.cursor(CONSUMER)

    async def deliver(self, event: Event) -> None:
        """Render `event` and queue its messages with the cursor's move past it."""
        assert event.seq is not None
        batch = await self.render(event)
        await self._outbox.send(batch, consumed=(CONSUMER, event.seq))

    async def skip(self, event: Event) -> None:
        """Move the cursor past an event that could not be rendered (nothing is queued)."""
        assert event.seq is not None
        await self._outbox.send(Batch(), consumed=(CONSUMER, event.seq))

    async def render(self, event: Event) -> Batch:
        """The messages one event becomes (possibly none)."""
        kind = event.kind
        batch = Batch(event.cluster)  # every outbox row names the cluster of its event
        self._cluster = event.cluster
        if event.incident is not None:  # a silenced incident posts nothing new in its thread
            if quiet(event.incident, event.at):
                self._quiet.add(event.incident.id)
            else:
                self._quiet.discard(event.incident.id)
        if kind is EventKind.INCIDENT_ATTENTION:
            assert event.incident is not None and event.audit is not None
            await self._refresh_incident(batch, event.incident)
            reply = attention_reply(event.incident, event.audit, self._clock.now())
            self._reply_incident(batch, event.incident.id, reply, always=True)
        elif kind is EventKind.INCIDENT_OPENED:
            assert event.incident is not None
            self._incident_opened(batch, event.incident)
        elif kind is EventKind.INCIDENT_UPDATED:
            assert event.incident is not None
            await self._incident_updated(
                batch, event.incident, event.notes, event.previous_severity
            )
        elif kind is EventKind.INCIDENT_RESOLVED:
            assert event.incident is not None
            await self._incident_resolved(batch, event.incident)
        elif kind is EventKind.DIAGNOSIS_READY:
            assert event.incident is not None and event.diagnosis is not None
            await self._diagnosis_ready(batch, event.incident, event.diagnosis)
        elif kind is EventKind.ACTIONS_NOT_PROPOSED:
            assert event.incident is not None and event.diagnosis is not None
            self._actions_not_proposed(batch, event.incident, event.diagnosis, event.not_proposed)
        elif kind is EventKind.PROPOSAL_MADE:
            assert event.proposal is not None
            await self._proposal_made(batch, event.proposal)
        elif kind is EventKind.PROPOSAL_CHANGED:
            assert event.proposal is not None and event.audit is not None
            await self._proposal_changed(batch, event.proposal, event.audit, event.execution)
        else:
            assert event.proposal is not None and event.execution is not None
            self._execution_progress(batch, event.proposal, event.execution)
        return batch

    def _channel(self) -> str:
        """The channel of the cluster of the event being rendered."""
        if self._cluster is None:
            return self.channel
        return self._channels.get(self._cluster, self.channel)

    # ------------------------------------------------------------------ incidents

    def _incident_opened(self, batch: Batch, incident: Incident) -> None:
        batch.post(
            key_for_incident(incident.id),
            incident_parent(
                incident, self._clock.now(), links=self._links, clusters_named=self._named
            ),
            channel=self._channel(),
            owned_by=owner(OwnerKind.INCIDENT, incident.id),
        )
        self._chart(batch, incident, Phase.OPENED)

    def _chart(self, batch: Batch, incident: Incident, phase: Phase) -> None:
        """A chart of the incident's metric for its thread, in line with its own key only
        (`bot.charts`): the text never waits for it."""
        if self._charts:
            batch.items.append(
                (chart_key(incident.id), chart_payload(incident.id, phase, self._channel()))
            )

    async def _incident_updated(
        self,
        batch: Batch,
        incident: Incident,
        notes: Sequence[IncidentChange] = (),
        previous: Severity | None = None,
    ) -> None:
        """`previous` is the severity before this change, carried on the event (None when it
        did not change), so a restarted bot words the reply as the first one would have."""
        await self._refresh_incident(batch, incident)
        if notes:
            # an escalation, a consequence appearing or clearing: one reply says what changed
            reply = incident_changed_reply(incident, notes, previous, self._clock.now())
            self._reply_incident(batch, incident.id, reply)
        elif previous is not None and incident.severity.rank > previous.rank:
            reply = incident_worsened_reply(incident, previous.value, self._clock.now())
            self._reply_incident(batch, incident.id, reply)

    async def _incident_resolved(self, batch: Batch, incident: Incident) -> None:
        await self._refresh_incident(batch, incident)
        self._reply_incident(
            batch, incident.id, incident_resolved_reply(incident, self._clock.now())
        )
        self._chart(batch, incident, Phase.RESOLVED)

    async def _diagnosis_ready(
        self, batch: Batch, incident: Incident, diagnosis: Diagnosis
    ) -> None:
        await self._refresh_incident(batch, incident, diagnosis=diagnosis)
        self._reply_incident(
            batch, incident.id, diagnosis_reply(incident, diagnosis, self._clock.now())
        )

    def _actions_not_proposed(
        self,
        batch: Batch,
        incident: Incident,
        diagnosis: Diagnosis,
        not_proposed: Sequence[NotProposed],
    ) -> None:
        reply = not_proposed_reply(incident, diagnosis, not_proposed, self._clock.now())
        self._reply_incident(batch, incident.id, reply)

    async def _refresh_incident(
        self, batch: Batch, incident: Incident, *, diagnosis: Diagnosis | None = None
    ) -> None:
        if diagnosis is None:
            diagnosis = await self._reads.diagnoses.latest_for(incident.id)
        proposals = await self._reads.proposals.list(incident_id=incident.id, limit=10)
        message = incident_parent(
            incident,
            self._clock.now(),
            diagnosis=diagnosis,
            proposals=proposals,
            links=self._links,
            clusters_named=self._named,
        )
        batch.update(
            key_for_incident(incident.id),
            message,
            target=owner(OwnerKind.INCIDENT, incident.id),
            channel=self._channel(),
        )

    async def _refresh_incident_by_id(self, batch: Batch, incident_id: str) -> None:
        """Re-render an incident's parent after one of its proposals moved (action running,
        finished)."""
        incident = await self._reads.incidents.get(incident_id)
        if incident is not None:
            await self._refresh_incident(batch, incident)

    def _reply_incident(
        self, batch: Batch, incident_id: str, message: Rendered, *, always: bool = False
    ) -> None:
        """A reply in the incident's thread; none while the incident is silenced (`always`:
        the lines about the silence itself)."""
        if incident_id in self._quiet and not always:
            return
        batch.post(
            key_for_incident(incident_id),
            message,
            channel=self._channel(),
            thread_of=owner(OwnerKind.INCIDENT, incident_id),
        )

    # ------------------------------------------------------------------ proposals

    async def _proposal_made(self, batch: Batch, proposal: Proposal) -> None:
        thread = owner(OwnerKind.INCIDENT, proposal.incident_id) if proposal.incident_id else None
        batch.post(
            key_for_proposal(proposal.id, proposal.incident_id),
            self._proposal_message(proposal, None),
            channel=self._channel(),
            owned_by=owner(OwnerKind.PROPOSAL, proposal.id),
            thread_of=thread,
        )
        if proposal.incident_id:
            await self._refresh_incident_by_id(batch, proposal.incident_id)

    async def _proposal_changed(
        self,
        batch: Batch,
        proposal: Proposal,
        event: AuditEvent,
        execution: Execution | None,
    ) -> None:
        if event.action == "proposal.reminder":
            # Nothing changed: nudge the approvers in the thread, with the reason the
            # scheduler wrote ("P-7 has waited 20 min for a decision; it expires at ...").
            reply = proposal_reminder(proposal, event, self._clock.now())
            self._reply_proposal(batch, proposal, reply)
            return
        if execution is None and proposal.state in (ProposalState.EXECUTING, *FINISHED):
            execution = await self._reads.executions.get(proposal.id)
        self._update_proposal(batch, proposal, execution)
        now = self._clock.now()
        if event.action == "proposal.start" and execution is not None:
            self._reply_proposal(batch, proposal, execution_started(proposal, execution, now))
        if proposal.state in FINISHED and execution is not None:
            self._progress_posted.pop(proposal.id, None)
            self._reply_proposal(batch, proposal, execution_outcome(proposal, execution, now))
        if proposal.incident_id and (
            event.action == "proposal.start" or proposal.state.is_terminal
        ):
            await self._refresh_incident_by_id(batch, proposal.incident_id)

    def _execution_progress(self, batch: Batch, proposal: Proposal, execution: Execution) -> None:
        if execution.is_finished or proposal.state is not ProposalState.EXECUTING:
            return  # the outcome is told by the proposal's change
        self._update_proposal(batch, proposal, execution)
        now = self._clock.now()
        last = self._progress_posted.get(proposal.id)
        if last is None or now - last >= PROGRESS_EVERY:
            self._progress_posted[proposal.id] = now
            self._reply_proposal(batch, proposal, execution_progress(proposal, execution, now))

    def _proposal_message(self, proposal: Proposal, execution: Execution | None) -> Rendered:
        return proposal_message(
            proposal,
            self._clock.now(),
            execution=execution,
            approvals_needed=self._approvals_needed(proposal),
            clusters_named=self._named,
        )

    def _update_proposal(
        self, batch: Batch, proposal: Proposal, execution: Execution | None
    ) -> None:
        batch.update(
            key_for_proposal(proposal.id, proposal.incident_id),
            self._proposal_message(proposal, execution),
            target=owner(OwnerKind.PROPOSAL, proposal.id),
            channel=self._channel(),
        )

    def _reply_proposal(self, batch: Batch, proposal: Proposal, message: Rendered) -> None:
        """A reply in the thread the proposal lives in (its incident's, or its own)."""
        batch.post(
            key_for_proposal(proposal.id, proposal.incident_id),
            message,
            channel=self._channel(),
            thread_of=owner(OwnerKind.PROPOSAL, proposal.id),
        )


__all__ = ["CONSUMER", "IN_FLIGHT", "PROGRESS_EVERY", "NotifierReads", "SlackNotifier"]
