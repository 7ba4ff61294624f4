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
from engine.model import (
    AuditEvent,
    AuditOutcome,
    Diagnosis,
    Incident,
    IncidentStatus,
    Proposal,
)
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
        found: dict[str, Incident] = {}
        for incident in await self._reads.incidents.list_open():
            found[incident.id] = incident
        for incident in await self._reads.incidents.list(since=since, limit=self._limit):
            found.setdefault(incident.id, incident)
        # Oldest first, incidents before proposals: a thread's parent is queued before its
        # replies (the outbox keeps each incident's messages in queue order).
        incidents = sorted(found.values(), key=lambda i: (i.opened_at, i.id))
        diagnoses = {i.id: await self._reads.diagnoses.latest_for(i.id) for i in incidents}
        proposals = sorted(
            (
                p
                for p in await self._reads.proposals.list(limit=self._limit)
                if not p.state.is_terminal or p.updated_at >= since
            ),
            key=lambda p: (p.created_at, p.id),
        )
        wanted: list[str] = []
        for incident in incidents:
            wanted += _incident_marks(incident, diagnoses[incident.id])
        for proposal in proposals:
            wanted += _proposal_marks(proposal)
        have = await self._outbox.marked(wanted)  # one look-up for every record
        told_incidents = told_diagnoses = 0
        for incident in incidents:
            i, d = await self._incident(incident, diagnoses[incident.id], have)
            told_incidents += i
            told_diagnoses += d
        told_proposals = 0
        for proposal in proposals:
            told_proposals += await self._proposal(proposal, have)
        return CatchUpReport(
            incidents=told_incidents, diagnoses=told_diagnoses, proposals=told_proposals
        )

    async def _incident(
        self, incident: Incident, diagnosis: Diagnosis | None, have: set[str]
    ) -> tuple[int, int]:
        opened, version, resolved, *told_diagnosis = _incident_marks(incident, diagnosis)
        told = 0
        if opened not in have:
            await self._notifier.incident_opened(incident)
            told += 1
        diagnoses = 0
        if diagnosis is not None and told_diagnosis and told_diagnosis[0] not in have:
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

    async def _proposal(self, proposal: Proposal, have: set[str]) -> int:
        made, version = _proposal_marks(proposal)
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


def _incident_marks(incident: Incident, diagnosis: Diagnosis | None) -> list[str]:
    """Opened, current version, resolved, then the latest diagnosis's (when it has an ID)."""
    told_diagnosis = marks.diagnosis_ready(diagnosis.id if diagnosis else None)
    return [
        marks.incident_opened(incident.id),
        marks.incident_version(incident.id, incident.version),
        marks.incident_resolved(incident.id),
        *([told_diagnosis] if told_diagnosis else []),
    ]


def _proposal_marks(proposal: Proposal) -> list[str]:
    """Made, then current version."""
    return [
        marks.proposal_made(proposal.id),
        marks.proposal_version(proposal.id, proposal.version),
    ]


__all__ = ["LIMIT", "WINDOW", "CatchUp", "CatchUpReads", "CatchUpReport"]
