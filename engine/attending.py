"""Attending to an incident: acknowledging it ("I'm on it") and silencing it.

- **Acknowledge** (`acknowledge`): any person (the policy's `check_attention`) becomes the
  incident's owner, shown on its card with the time they took it; proposal reminders for an
  owned incident stop (`reminders_paused`). The same person again is a no-op
  (`ALREADY_OWNER`); another person takes it over, and the outcome and the audit row name who
  it was taken from (`TAKEN_OVER`): an incident has one owner, the last person who said so.
- **Silence** (`silence`, `unsilence`): the incident stays tracked and its card is still
  edited, but nothing new is posted in its thread (`quiet`) until the silence runs out, is
  ended by a person, or the incident gets worse than the severity it was silenced at. Who may
  silence is the policy's rule (by default the people who may approve low-risk actions).
  Silencing again replaces the end time. `end_due` (a scheduled job) ends silences that ran
  out or were broken by a higher severity, each with one event, so the card is edited and one
  thread line says why the silence ended.

Every change is saved by `engine.ports.AttentionRepo` with a compare-and-set on the incident's
version, its audit row and its `incident.attention` event in one transaction; a change made
meanwhile by the monitor is read again and retried. Outcomes are data (`engine.results.
Attended`); a refusal is data too (which check, the incident and state it saw), worded by the
surfaces (`bot.messages.refusal`).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from engine.clock import format_time, utc
from engine.errors import NotFound, PolicyRefusal, StaleVersion
from engine.model import (
    SYSTEM,
    Attention,
    AuditEvent,
    Identity,
    Incident,
)
from engine.policy import ApprovalPolicy
from engine.ports import AttentionRepo, AuditLog, Clock, IncidentRepo
from engine.refusals import as_refused
from engine.results import Attended, AttentionChange, Observed, RefusalCheck, RefusalKind, Refused

logger = logging.getLogger(__name__)

MAX_SILENCE = timedelta(days=7)
"""The longest silence: an incident silenced for longer should be fixed, or resolved."""
MIN_SILENCE = timedelta(minutes=1)
SILENCE_CHOICES = (timedelta(hours=1), timedelta(hours=4), timedelta(hours=24))
"""The durations offered by the card's silence menu (the button is the first)."""
ATTEMPTS = 3
"""Compare-and-set attempts when the monitor updates the incident at the same moment."""


def quiet(incident: Incident, at: datetime) -> bool:
    """Whether `incident` posts nothing new at `at`: it is open, silenced until after `at`,
    and no worse than the severity it was silenced at."""
    attention = incident.attention
    if not incident.is_open or not attention.silenced(utc(at)):
        return False
    floor = attention.silenced_severity
    return floor is None or incident.severity.rank <= floor.rank


def reminders_paused(incident: Incident, at: datetime) -> bool:
    """Whether reminders about `incident`'s proposals stay out of the channel: someone owns it,
    or it is silenced."""
    return incident.attention.owner is not None or quiet(incident, at)


def silence_ended_because(incident: Incident, at: datetime) -> str | None:
    """Why `incident`'s silence is over at `at` ("expired", "worsened"), or None while it holds
    (or when there is none)."""
    attention = incident.attention
    if attention.silenced_until is None:
        return None
    if utc(at) >= attention.silenced_until:
        return "expired"
    floor = attention.silenced_severity
    if floor is not None and incident.severity.rank > floor.rank:
        return "worsened"
    return None


class Attending:
    """The acknowledge and silence use cases (see the module docstring)."""

    def __init__(
        self,
        *,
        incidents: IncidentRepo,
        attention: AttentionRepo,
        audit: AuditLog,
        policy: ApprovalPolicy,
        clock: Clock,
    ) -> None:
        self.incidents = incidents
        self.attention = attention
        self.audit = audit
        self.policy = policy
        self.clock = clock

    async def acknowledge(self, incident_id: str, actor: Identity) -> Attended | Refused:
        """Make `actor` the owner of the open incident `incident_id`."""
        for _ in range(ATTEMPTS):
            found = await self._open(incident_id, actor, "acknowledge", silence=False)
            if isinstance(found, Refused):
                return found
            owner = found.attention.owner
            if actor.same_as(owner):
                return Attended(change=AttentionChange.ALREADY_OWNER, incident=found, by=actor)
            now = self.clock.now()
            attention = found.attention.model_copy(update={"owner": actor, "owned_since": now})
            detail: dict[str, object] = {"severity": found.severity.value}
            if owner is not None:
                detail["taken_from"] = owner.key
            audit = AuditEvent(
                at=now, actor=actor, action="incident.acknowledge", subject=found.id, detail=detail
            )
            saved = await self._save(found, attention, audit)
            if saved is not None:
                change = (
                    AttentionChange.ACKNOWLEDGED if owner is None else AttentionChange.TAKEN_OVER
                )
                return Attended(change=change, incident=saved, by=actor, previous_owner=owner)
        return self._busy(incident_id)

    async def silence(
        self, incident_id: str, actor: Identity, duration: timedelta, reason: str | None = None
    ) -> Attended | Refused:
        """Silence the open incident `incident_id` for `duration` (1 min to 7 days)."""
        if not MIN_SILENCE <= duration <= MAX_SILENCE:
            return Refused(
                reason=(
                    f"a silence lasts from 1 minute to 7 days, not {duration}; give a duration "
                    "like 30m, 2h or 1d"
                ),
                kind=RefusalKind.INVALID,
            )
        reason = (reason or "").strip()[:300] or None
        for _ in range(ATTEMPTS):
            found = await self._open(incident_id, actor, "silence", silence=True)
            if isinstance(found, Refused):
                return found
            now = self.clock.now()
            until = now + duration
            before = found.attention
            previous = before.silenced_until if before.silenced(now) else None
            attention = before.model_copy(
                update={
                    "silenced_by": actor,
                    "silenced_at": now,
                    "silenced_until": until,
                    "silence_reason": reason,
                    "silenced_severity": found.severity,
                }
            )
            audit = AuditEvent(
                at=now,
                actor=actor,
                action="incident.silence",
                subject=found.id,
                detail={
                    "until": until.isoformat(),
                    "seconds": int(duration.total_seconds()),
                    "severity": found.severity.value,
                    "replaced_until": previous.isoformat() if previous else None,
                },
                reason=reason,
            )
            saved = await self._save(found, attention, audit)
            if saved is not None:
                return Attended(
                    change=AttentionChange.SILENCED,
                    incident=saved,
                    by=actor,
                    until=until,
                    previous_until=previous,
                    reason=reason,
                )
        return self._busy(incident_id)

    async def unsilence(self, incident_id: str, actor: Identity) -> Attended | Refused:
        """End the silence of the open incident `incident_id` now."""
        for _ in range(ATTEMPTS):
            found = await self._open(incident_id, actor, "unsilence", silence=True)
            if isinstance(found, Refused):
                return found
            now = self.clock.now()
            before = found.attention
            if not before.silenced(now):
                return Attended(change=AttentionChange.NOT_SILENCED, incident=found, by=actor)
            audit = AuditEvent(
                at=now,
                actor=actor,
                action="incident.unsilence",
                subject=found.id,
                detail={
                    "was_until": before.silenced_until.isoformat()
                    if before.silenced_until
                    else None
                },
            )
            saved = await self._save(found, _without_silence(before), audit)
            if saved is not None:
                return Attended(
                    change=AttentionChange.UNSILENCED,
                    incident=saved,
                    by=actor,
                    previous_until=before.silenced_until,
                )
        return self._busy(incident_id)

    async def end_due(self) -> list[Incident]:
        """End the silences that ran out or that a higher severity broke (one audit row and one
        event each); returns the incidents whose silence ended."""
        ended: list[Incident] = []
        for incident in await self.incidents.list_open():
            now = self.clock.now()
            why = silence_ended_because(incident, now)
            if why is None:
                continue
            before = incident.attention
            floor = before.silenced_severity
            audit = AuditEvent(
                at=now,
                actor=SYSTEM,
                action=f"incident.silence.{why}",
                subject=incident.id,
                detail={
                    "silenced_by": before.silenced_by.key if before.silenced_by else None,
                    "until": before.silenced_until.isoformat() if before.silenced_until else None,
                    "from": floor.value if floor else None,
                    "to": incident.severity.value,
                },
            )
            saved = await self._save(incident, _without_silence(before), audit)
            if saved is not None:
                ended.append(saved)
        return ended

    # ------------------------------------------------------------------ internals

    async def _open(
        self, incident_id: str, actor: Identity, verb: str, *, silence: bool
    ) -> Incident | Refused:
        incident = await self.incidents.get(incident_id)
        if incident is None:
            return Refused(
                reason=f"incident {incident_id} {verb} refused: no such incident",
                kind=RefusalKind.UNKNOWN,
                check=RefusalCheck.NOT_FOUND,
                observed=Observed(
                    actor=actor, event=verb, record_kind="incident", incident_id=incident_id
                ),
            )
        now = self.clock.now()
        if not incident.is_open:
            when = f" at {format_time(incident.resolved_at, now)}" if incident.resolved_at else ""
            return Refused(
                reason=f"incident {incident.id} {verb} refused: it was resolved{when}",
                kind=RefusalKind.STATE,
                check=RefusalCheck.WRONG_STATE,
                observed=Observed(
                    actor=actor,
                    event=verb,
                    incident_id=incident.id,
                    incident_state="resolved",
                    resolved_at=incident.resolved_at,
                ),
            )
        decision = self.policy.check_attention(actor, incident.id, now, silence=silence)
        if not decision.allowed:
            if decision.audit is not None:
                await self.audit.append(decision.audit)
            return as_refused(
                PolicyRefusal(
                    decision.reason,
                    rule=decision.rule,
                    audit=decision.audit,
                    observed=decision.observed,
                ),
                actor=actor,
            )
        return incident

    async def _save(
        self, incident: Incident, attention: Attention, audit: AuditEvent
    ) -> Incident | None:
        try:
            return await self.attention.save(incident, attention, audit)
        except StaleVersion:
            logger.info("incident %s changed meanwhile; reading it again", incident.id)
        except NotFound:
            logger.warning("incident %s disappeared from the database", incident.id)
        return None

    @staticmethod
    def _busy(incident_id: str) -> Refused:
        return Refused(
            reason=f"incident {incident_id} not changed: it kept changing while being saved",
            kind=RefusalKind.STALE,
            check=RefusalCheck.STALE_VERSION,
            observed=Observed(incident_id=incident_id, raced=True),
        )


def _without_silence(attention: Attention) -> Attention:
    return attention.model_copy(
        update={
            "silenced_by": None,
            "silenced_at": None,
            "silenced_until": None,
            "silence_reason": None,
            "silenced_severity": None,
        }
    )


__all__ = [
    "ATTEMPTS",
    "MAX_SILENCE",
    "MIN_SILENCE",
    "SILENCE_CHOICES",
    "Attending",
    "quiet",
    "reminders_paused",
    "silence_ended_because",
]
