"""SlackNotifier: the engine's `Notifier` for Slack. It renders (pure, `bot.render`) and puts
every message in the outbox (`bot.outbox`); the deliverer sends them. It never raises.

Where things go:
- an incident owns one message in the configured channel, edited in place as it changes
  (worsened, diagnosis ready, action running, resolved with its duration); everything else
  about it goes in that message's thread (diagnosis, proposals, the suggested actions that were
  not proposed and why, execution replies, resolution);
- a proposal owns one message: in its incident's thread, or in the channel when it has no
  incident (slash commands); it is edited as it moves (buttons → decision → outcome) and its
  execution replies go in the same thread.

The messages of one notification are queued together, with its mark (`bot.marks`), in one
transaction: a change reported twice is told once, and `bot.catchup` tells at start-up the
changes whose notification was lost (the bot stopped between storing a change and queueing
its messages).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from bot import marks
from bot.outbox import Batch, SlackOutbox, key_for_incident, key_for_proposal, owner
from bot.render.diagnosis import diagnosis_reply, not_proposed_reply
from bot.render.execution import execution_outcome, execution_progress, execution_started
from bot.render.incident import (
    incident_parent,
    incident_resolved_reply,
    incident_worsened_reply,
)
from bot.render.kit import Rendered
from bot.render.proposal import proposal_message, proposal_reminder
from engine.model import (
    AuditEvent,
    Diagnosis,
    Execution,
    Incident,
    NotProposed,
    OwnerKind,
    Proposal,
    ProposalState,
    RiskLevel,
    Severity,
)
from engine.ports import Clock, DiagnosisRepo, ExecutionRepo, IncidentRepo, ProposalRepo

logger = logging.getLogger(__name__)

IN_FLIGHT = (ProposalState.PROPOSED, ProposalState.APPROVED, ProposalState.EXECUTING)
FINISHED = (ProposalState.SUCCEEDED, ProposalState.FAILED)

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


class SlackNotifier:
    """See the module docstring. `approvals_needed` (from the approval policy) is shown on
    pending proposals. Give `outbox` and `reads` at construction or later with `bind()`."""

    def __init__(
        self,
        clock: Clock,
        *,
        channel: str,
        outbox: SlackOutbox | None = None,
        reads: NotifierReads | None = None,
        approvals_needed: Callable[[RiskLevel], int] | None = None,
    ) -> None:
        self._clock = clock
        self.channel = channel
        self._bound_outbox = outbox
        self._bound_reads = reads
        self._approvals_needed = approvals_needed or (lambda _risk: 1)
        self._severity: dict[str, Severity] = {}
        self._progress_posted: dict[str, datetime] = {}

    def bind(
        self,
        outbox: SlackOutbox,
        reads: NotifierReads,
        *,
        approvals_needed: Callable[[RiskLevel], int] | None = None,
    ) -> None:
        """Attach the outbox and the repositories once they exist (the engine is built with
        the notifier, the repositories with the engine's runtime)."""
        self._bound_outbox = outbox
        self._bound_reads = reads
        if approvals_needed is not None:
            self._approvals_needed = approvals_needed

    @property
    def _outbox(self) -> SlackOutbox:
        if self._bound_outbox is None:
            raise RuntimeError("SlackNotifier used before bind(): no outbox")
        return self._bound_outbox

    @property
    def _reads(self) -> NotifierReads:
        if self._bound_reads is None:
            raise RuntimeError("SlackNotifier used before bind(): no repositories")
        return self._bound_reads

    # ------------------------------------------------------------------ incidents

    async def incident_opened(self, incident: Incident) -> None:
        await self._safely("incident_opened", self._incident_opened(incident))

    async def _incident_opened(self, incident: Incident) -> None:
        self._severity[incident.id] = incident.severity
        batch = Batch()
        batch.post(
            key_for_incident(incident.id),
            incident_parent(incident, self._clock.now()),
            channel=self.channel,
            owned_by=owner(OwnerKind.INCIDENT, incident.id),
        )
        await self._outbox.send(batch, mark=marks.incident_opened(incident.id))

    async def incident_updated(self, incident: Incident) -> None:
        await self._safely("incident_updated", self._incident_updated(incident))

    async def _incident_updated(self, incident: Incident) -> None:
        previous = self._severity.get(incident.id)
        self._severity[incident.id] = incident.severity
        batch = Batch()
        await self._refresh_incident(batch, incident)
        if previous is not None and incident.severity.rank > previous.rank:
            reply = incident_worsened_reply(incident, previous.value, self._clock.now())
            self._reply_incident(batch, incident.id, reply)
        await self._outbox.send(batch, mark=marks.incident_version(incident.id, incident.version))

    async def incident_resolved(self, incident: Incident) -> None:
        await self._safely("incident_resolved", self._incident_resolved(incident))

    async def _incident_resolved(self, incident: Incident) -> None:
        self._severity.pop(incident.id, None)
        batch = Batch()
        await self._refresh_incident(batch, incident)
        self._reply_incident(
            batch, incident.id, incident_resolved_reply(incident, self._clock.now())
        )
        await self._outbox.send(batch, mark=marks.incident_resolved(incident.id))

    async def diagnosis_ready(self, incident: Incident, diagnosis: Diagnosis) -> None:
        await self._safely("diagnosis_ready", self._diagnosis_ready(incident, diagnosis))

    async def _diagnosis_ready(self, incident: Incident, diagnosis: Diagnosis) -> None:
        batch = Batch()
        await self._refresh_incident(batch, incident, diagnosis=diagnosis)
        self._reply_incident(
            batch, incident.id, diagnosis_reply(incident, diagnosis, self._clock.now())
        )
        await self._outbox.send(batch, mark=marks.diagnosis_ready(diagnosis.id))

    async def actions_not_proposed(
        self, incident: Incident, diagnosis: Diagnosis, not_proposed: Sequence[NotProposed]
    ) -> None:
        await self._safely(
            "actions_not_proposed", self._actions_not_proposed(incident, diagnosis, not_proposed)
        )

    async def _actions_not_proposed(
        self, incident: Incident, diagnosis: Diagnosis, not_proposed: Sequence[NotProposed]
    ) -> None:
        reply = not_proposed_reply(incident, diagnosis, not_proposed, self._clock.now())
        batch = Batch()
        self._reply_incident(batch, incident.id, reply)
        await self._outbox.send(batch, mark=marks.actions_not_proposed(diagnosis.id))

    async def _refresh_incident(
        self, batch: Batch, incident: Incident, *, diagnosis: Diagnosis | None = None
    ) -> None:
        if diagnosis is None:
            diagnosis = await self._reads.diagnoses.latest_for(incident.id)
        proposals = await self._reads.proposals.list(incident_id=incident.id, limit=10)
        message = incident_parent(
            incident, self._clock.now(), diagnosis=diagnosis, proposals=proposals
        )
        batch.update(
            key_for_incident(incident.id),
            message,
            target=owner(OwnerKind.INCIDENT, incident.id),
            channel=self.channel,
        )

    async def _refresh_incident_by_id(self, batch: Batch, incident_id: str) -> None:
        """Re-render an incident's parent after one of its proposals moved (action running,
        finished)."""
        incident = await self._reads.incidents.get(incident_id)
        if incident is not None:
            await self._refresh_incident(batch, incident)

    def _reply_incident(self, batch: Batch, incident_id: str, message: Rendered) -> None:
        batch.post(
            key_for_incident(incident_id),
            message,
            channel=self.channel,
            thread_of=owner(OwnerKind.INCIDENT, incident_id),
        )

    # ------------------------------------------------------------------ proposals

    async def proposal_made(self, proposal: Proposal) -> None:
        await self._safely("proposal_made", self._proposal_made(proposal))

    async def _proposal_made(self, proposal: Proposal) -> None:
        batch = Batch()
        thread = owner(OwnerKind.INCIDENT, proposal.incident_id) if proposal.incident_id else None
        batch.post(
            key_for_proposal(proposal.id, proposal.incident_id),
            self._proposal_message(proposal, None),
            channel=self.channel,
            owned_by=owner(OwnerKind.PROPOSAL, proposal.id),
            thread_of=thread,
        )
        if proposal.incident_id:
            await self._refresh_incident_by_id(batch, proposal.incident_id)
        await self._outbox.send(batch, mark=marks.proposal_made(proposal.id))

    async def proposal_changed(self, proposal: Proposal, event: AuditEvent) -> None:
        await self._safely("proposal_changed", self._proposal_changed(proposal, event))

    async def _proposal_changed(self, proposal: Proposal, event: AuditEvent) -> None:
        batch = Batch()
        if event.action == "proposal.reminder":
            # Nothing changed: nudge the approvers in the thread, with the reason the
            # scheduler wrote ("P-7 has waited 20 min for a decision; it expires at ...").
            reply = proposal_reminder(proposal, event, self._clock.now())
            self._reply_proposal(batch, proposal, reply)
            await self._outbox.send(batch, mark=marks.audit_event(event.id))
            return
        execution: Execution | None = None
        if proposal.state in (ProposalState.EXECUTING, *FINISHED):
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
        await self._outbox.send(batch, mark=marks.proposal_version(proposal.id, proposal.version))

    async def execution_progress(self, proposal: Proposal, execution: Execution) -> None:
        await self._safely("execution_progress", self._execution_progress(proposal, execution))

    async def _execution_progress(self, proposal: Proposal, execution: Execution) -> None:
        if execution.is_finished or proposal.state is not ProposalState.EXECUTING:
            return  # the outcome is told by proposal_changed
        batch = Batch()
        self._update_proposal(batch, proposal, execution)
        now = self._clock.now()
        last = self._progress_posted.get(proposal.id)
        if last is None or now - last >= PROGRESS_EVERY:
            self._progress_posted[proposal.id] = now
            self._reply_proposal(batch, proposal, execution_progress(proposal, execution, now))
        await self._outbox.send(batch)  # progress is not a change of record: no mark

    def _proposal_message(self, proposal: Proposal, execution: Execution | None) -> Rendered:
        return proposal_message(
            proposal,
            self._clock.now(),
            execution=execution,
            approvals_needed=self._approvals_needed(proposal.risk),
        )

    def _update_proposal(
        self, batch: Batch, proposal: Proposal, execution: Execution | None
    ) -> None:
        batch.update(
            key_for_proposal(proposal.id, proposal.incident_id),
            self._proposal_message(proposal, execution),
            target=owner(OwnerKind.PROPOSAL, proposal.id),
            channel=self.channel,
        )

    def _reply_proposal(self, batch: Batch, proposal: Proposal, message: Rendered) -> None:
        """A reply in the thread the proposal lives in (its incident's, or its own)."""
        batch.post(
            key_for_proposal(proposal.id, proposal.incident_id),
            message,
            channel=self.channel,
            thread_of=owner(OwnerKind.PROPOSAL, proposal.id),
        )

    # ------------------------------------------------------------------ safety

    async def _safely(self, what: str, work: Awaitable[None]) -> None:
        """Run one notification; a failure is logged, never raised into the engine."""
        try:
            await work
        except Exception:
            logger.exception("Slack notification %s could not be queued", what)


__all__ = ["IN_FLIGHT", "PROGRESS_EVERY", "NotifierReads", "SlackNotifier"]
