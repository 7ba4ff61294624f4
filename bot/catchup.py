"""Start-up catch-up: tell Slack the changes whose notification was lost.

A change (an incident opened, a proposal succeeded) is committed first and its Slack messages
are queued just after, in another transaction. If the bot is killed between the two, the
change is stored but Slack never hears of it. Each queued notification records its mark
(`bot.marks`) in the same transaction as its messages, so a change without its mark is one
that was never told. `CatchUp.run()` looks at the recent incidents, diagnoses and proposals,
and reports each change whose mark is missing through the notifier, which renders the record
as it is now. It runs once at start-up, before the engine, the monitor and the socket start,
and may run again later: a mark already recorded makes a second report queue nothing.

Not caught up: the list of suggested actions that were not proposed (it is not stored; the
diagnosis reply names the suggested actions) and progress replies (the next one, or the
outcome, says more).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from bot import marks
from bot.notifier import NotifierReads, SlackNotifier
from bot.outbox import SlackOutbox
from engine.errors import EngineError
from engine.model import AuditEvent, AuditOutcome, Incident, IncidentStatus, Proposal
from engine.ports import AuditLog, Clock

logger = logging.getLogger(__name__)

WINDOW = timedelta(hours=24)
"""Records last changed longer ago than this are not caught up (their news is stale)."""

LIMIT = 500
"""At most this many of the newest incidents and proposals are looked at."""


class CatchUpReads(NotifierReads, Protocol):
    @property
    def audit(self) -> AuditLog: ...


@dataclass(frozen=True)
class CatchUpReport:
    """How many lost notifications were queued again, by kind."""

    incidents: int = 0
    diagnoses: int = 0
    proposals: int = 0

    @property
    def total(self) -> int:
        return self.incidents + self.diagnoses + self.proposals


class CatchUp:
    """See the module docstring."""

    def __init__(
        self,
        notifier: SlackNotifier,
        outbox: SlackOutbox,
        reads: CatchUpReads,
        clock: Clock,
        *,
        window: timedelta = WINDOW,
        limit: int = LIMIT,
    ) -> None:
        self._notifier = notifier
        self._outbox = outbox
        self._reads = reads
        self._clock = clock
        self._window = window
        self._limit = limit

    async def run(self) -> CatchUpReport:
        """Queue every lost notification of the recent records; never raises (a failure is
        logged and the rest is still tried)."""
        try:
            report = await self._run()
        except EngineError:
            logger.exception("could not look for Slack notifications lost in a restart")
            return CatchUpReport()
        if report.total:
            logger.warning(
                "queued %d Slack notification(s) lost when tikvops stopped (incidents %d, "
                "diagnoses %d, proposals %d)",
                report.total,
                report.incidents,
                report.diagnoses,
                report.proposals,
            )
        return report

    async def _run(self) -> CatchUpReport:
        since = self._clock.now() - self._window
        incidents: dict[str, Incident] = {}
        for incident in await self._reads.incidents.list_open():
            incidents[incident.id] = incident
        for incident in await self._reads.incidents.list(since=since, limit=self._limit):
            incidents.setdefault(incident.id, incident)
        told_incidents = told_diagnoses = 0
        # Oldest first, incidents before proposals: a thread's parent is queued before its
        # replies (the outbox keeps each incident's messages in queue order).
        for incident in sorted(incidents.values(), key=lambda i: (i.opened_at, i.id)):
            i, d = await self._incident(incident)
            told_incidents += i
            told_diagnoses += d
        proposals = [
            p
            for p in await self._reads.proposals.list(limit=self._limit)
            if not p.state.is_terminal or p.updated_at >= since
        ]
        told_proposals = 0
        for proposal in sorted(proposals, key=lambda p: (p.created_at, p.id)):
            told_proposals += await self._proposal(proposal)
        return CatchUpReport(
            incidents=told_incidents, diagnoses=told_diagnoses, proposals=told_proposals
        )

    async def _incident(self, incident: Incident) -> tuple[int, int]:
        opened = marks.incident_opened(incident.id)
        version = marks.incident_version(incident.id, incident.version)
        resolved = marks.incident_resolved(incident.id)
        diagnosis = await self._reads.diagnoses.latest_for(incident.id)
        told_diagnosis = marks.diagnosis_ready(diagnosis.id if diagnosis else None)
        wanted = [opened, version, resolved] + ([told_diagnosis] if told_diagnosis else [])
        have = await self._outbox.marked(wanted)
        told = 0
        if opened not in have:
            await self._notifier.incident_opened(incident)
            told += 1
        diagnoses = 0
        if diagnosis is not None and told_diagnosis is not None and told_diagnosis not in have:
            await self._notifier.diagnosis_ready(incident, diagnosis)
            diagnoses = 1
        if incident.status is IncidentStatus.RESOLVED:
            if resolved not in have:
                await self._notifier.incident_resolved(incident)
                told += 1
        elif opened in have and incident.version > 1 and version not in have:
            # The parent may show an older state: edit it to the current one. (A save that
            # changed nothing worth telling has no mark either; the edit is then a no-op.)
            await self._notifier.incident_updated(incident)
            told += 1
        return told, diagnoses

    async def _proposal(self, proposal: Proposal) -> int:
        made = marks.proposal_made(proposal.id)
        version = marks.proposal_version(proposal.id, proposal.version)
        have = await self._outbox.marked([made, version])
        told = 0
        if made not in have:
            await self._notifier.proposal_made(proposal)
            told += 1
        if proposal.version > 1 and version not in have:
            event = await self._last_change(proposal)
            if event is not None:
                await self._notifier.proposal_changed(proposal, event)
                told += 1
        return told

    async def _last_change(self, proposal: Proposal) -> AuditEvent | None:
        """The audit event of the transition that made the proposal's current version (each
        transition's event records the version it made); refusals and reminders are not."""
        events = await self._reads.audit.list_recent(
            subject=proposal.id, action_prefix="proposal.", limit=50
        )
        changes = [
            e for e in events if e.outcome is AuditOutcome.OK and e.action != "proposal.reminder"
        ]
        for event in changes:
            if event.detail.get("version") == proposal.version:
                return event
        return changes[0] if changes else None


__all__ = ["LIMIT", "WINDOW", "CatchUp", "CatchUpReads", "CatchUpReport"]
