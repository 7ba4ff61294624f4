"""The incident lifecycle: from the invariants' violations to incidents that open, update and
resolve, deduplicated by fingerprint and damped against flapping.

`IncidentTracker.reconcile()` is called once per monitor tick with that tick's evaluation and
the open incidents. The violations are grouped by cause first (`engine.correlation`); each
group is one incident, keyed by the group's fingerprint (`kind:subject` for a violation that
stands alone, `store_health:store:5` for a store's health, `stores_unavailable:cluster` for
several stores). A group continues an open incident of the same cause in an earlier shape
(`Group.adopts`: the store's incident before a second store joined it, or before this version)
and merges the incidents its consequences had opened on their own (resolved with
`merged_into`, both threads told). For each group:

- **open**: no open incident with that fingerprint. Only fresh violations open incidents: a
  stale one (the invariants could not re-check it: PD unreachable, metrics missing) never
  does, and neither does a pending one (grace period not over).
- **continue**: the incident stays open; `last_seen_at` moves, `clear_since` is reset, the
  severity follows the violation and `worst_severity` keeps the worst. The record is saved
  when something changed or every `refresh_every` seconds, not on every tick.
- **freeze**: the violation is stale (no data). Nothing about the incident changes: no data is
  never taken as "cleared", and a clearing timer does not advance.
- **clear, then resolve**: fresh data shows the condition gone. `clear_since` is set; the
  incident resolves once it has stayed clear for `resolve_after` seconds. A violation that
  comes back before then continues the same incident (anti-flapping), so a condition that
  flickers every tick opens one incident, not one per flicker.

A group's consequences are kept in `details["consequences"]` with their current counts (and
`stores`, `quorum_lost` for several stores; `cause_cleared` once a store is back while its
regions still catch up). The event of an update carries `notes`, the changes for the
incident's thread as data (`engine.events.IncidentChange`, worded by the surfaces): the cause
escalated (its title changed), a consequence appeared or cleared, the cause cleared, a merge;
and `previous_severity` when the severity moved. Counts that only moved are saved every tick
but edit the parent at most every `ChangePolicy.consequence_every` seconds.

Events for the surfaces (`IncidentEvent`) are produced only for meaningful changes: opened;
updated when the severity changed or the value moved by a meaningful amount since the last
reported value (`ChangePolicy`); resolved. Clearing and coming back within the window are not
reported (that is the flapping the window absorbs). Ages (`unit == "s"`, e.g. how long a store
has been Down) grow by themselves and are never a reason to report. The incident's `details`
are described at `engine.incident_facts.details_for`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from engine.correlation import Freshness, Group, correlate
from engine.errors import DuplicateIncident, NotFound, StaleVersion
from engine.events import ChangeKind, EventKind, IncidentChange
from engine.incident_facts import (
    MANAGED_KINDS,
    RATIO_UNITS,
    ChangePolicy,
    cause_stores,
    claim_incident,
    consequence_counts,
    consequence_notes,
    consequences_of,
    decode,
    encode,
    finite,
    group_details,
    incident_fingerprint,
    incident_severity,
    is_managed,
    remember_open_incidents,
    remembered_violation,
    title_for,
    tracking_of,
)
from engine.model import (
    SYSTEM,
    AuditEvent,
    Incident,
    IncidentStatus,
    Severity,
)
from engine.ports import IncidentRepo
from operator_tikv.invariants import Evaluation

logger = logging.getLogger(__name__)


class IncidentEventKind(StrEnum):
    OPENED = "opened"
    UPDATED = "updated"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class IncidentEvent:
    """A meaningful change of one incident, to report through the Notifier.

    `worsened` is True when the incident opened or reached a severity worse than any seen
    before (the monitor diagnoses it again). `changes` says in words what moved, for the log;
    `notes` are the changes for the incident's thread, as data (`engine.events.IncidentChange`).
    """

    kind: IncidentEventKind
    incident: Incident
    previous_severity: Severity | None = None
    worsened: bool = False
    changes: tuple[str, ...] = field(default=())
    notes: tuple[IncidentChange, ...] = field(default=())


# --------------------------------------------------------------------------- value encoding


class IncidentTracker:
    """Opens, updates and resolves incidents from evaluations (see the module docstring).

    Safe against other processes on the same database: a concurrent open is detected by the
    repository (`DuplicateIncident`) and continued; a concurrent update (`StaleVersion`) is left
    for the next tick.
    """

    def __init__(
        self,
        repo: IncidentRepo,
        *,
        resolve_after: float,
        policy: ChangePolicy | None = None,
    ) -> None:
        if resolve_after < 0:
            raise ValueError("resolve_after must be 0 or more seconds")
        self.repo = repo
        self.resolve_after = resolve_after
        self.policy = policy or ChangePolicy()

    async def open_incidents(self) -> list[Incident]:
        """Open incidents opened from invariants, oldest first."""
        return [i for i in await self.repo.list_open() if is_managed(i)]

    async def reconcile(
        self,
        evaluation: Evaluation,
        *,
        now: datetime,
        open_incidents: Sequence[Incident],
        addresses: Mapping[int, str] | None = None,
        status_addresses: Mapping[int, str] | None = None,
    ) -> list[IncidentEvent]:
        """Apply one evaluation to the open incidents; returns the meaningful changes. Each
        one's event (`engine.events`) was written with its record, so it is told even if a
        later step of the same tick fails. The violations are grouped by cause first
        (`engine.correlation`): one incident per group."""
        addresses, self._status_addresses = addresses or {}, status_addresses or {}
        managed = [i for i in open_incidents if is_managed(i)]
        recovering = {s for i in managed for s in cause_stores(i)}
        correlation = correlate(evaluation.violations, evaluation.pending, recovering=recovering)
        by_fingerprint = {i.fingerprint: i for i in managed}
        claimed: set[str] = set()

        events: list[IncidentEvent] = []
        for group in correlation.groups:
            current = claim_incident(group, by_fingerprint, claimed)
            if group.freshness is Freshness.STALE:
                continue  # frozen: nothing about it could be re-checked
            if current is None:
                if not group.can_open:
                    continue
                event = await self._open(group, now, addresses)
            else:
                event = await self._continue(current, group, now, addresses)
            if event is not None:
                events.append(event)
            target = event.incident if event is not None else current
            if target is None:
                continue
            for key in (*group.adopts, *group.absorbs):
                other = by_fingerprint.get(key)
                if other is None or key in claimed or other.id == target.id:
                    continue
                claimed.add(key)
                merged = await self._merge(other, target, now)
                events.extend(merged)
        for key, current in by_fingerprint.items():
            if key in claimed:
                continue
            event = await self._clear(current, now)
            if event is not None:
                events.append(event)
        return events

    # ------------------------------------------------------------------ steps

    async def _open(
        self, group: Group, now: datetime, addresses: Mapping[int, str]
    ) -> IncidentEvent | None:
        violation = group.cause
        assert violation is not None
        key = group.fingerprint
        severity = incident_severity(group.severity)
        tracking: dict[str, Any] = {
            "notified_value": encode(violation.value),
            "previous_severity": None,
            "counts": consequence_counts(group),
            "counts_at": now.timestamp(),
        }
        incident = Incident(
            id=await self.repo.next_id(),
            fingerprint=key,
            kind=violation.kind.value,
            subject=violation.subject,
            severity=severity,
            worst_severity=severity,
            title=group.title or title_for(violation.kind, violation.subject),
            value=finite(violation.value),
            threshold=finite(violation.threshold),
            details=group_details(
                group,
                violation,
                {},
                addresses=addresses,
                status_addresses=self._status_addresses,
                tracking=tracking,
                now=now.timestamp(),
            ),
            opened_at=now,
            updated_at=now,
            last_seen_at=now,
        )
        audit = AuditEvent(
            at=now,
            actor=SYSTEM,
            action="incident.opened",
            subject=incident.id,
            detail={
                "fingerprint": key,
                "severity": severity.value,
                "value": encode(violation.value),
                "threshold": encode(violation.threshold),
                "consequences": [c.key for c in group.consequences],
            },
            reason=violation.message,
        )
        try:
            created = await self.repo.create(incident, audit=audit)
        except DuplicateIncident:
            existing = await self.repo.get_open_by_fingerprint(key)
            if existing is None:
                raise
            logger.info("incident %s was opened by another process; continuing it", existing.id)
            return await self._continue(existing, group, now, addresses)
        logger.info("opened incident %s (%s): %s", created.id, key, violation.message)
        return IncidentEvent(IncidentEventKind.OPENED, created, worsened=True)

    async def _continue(
        self,
        current: Incident,
        group: Group,
        now: datetime,
        addresses: Mapping[int, str],
    ) -> IncidentEvent | None:
        violation = group.cause
        severity = incident_severity(group.severity)
        tracking = tracking_of(current)
        notified = decode(tracking.get("notified_value"))
        changes: list[str] = []
        notes: list[IncidentChange] = []
        severity_changed = severity is not current.severity
        if severity_changed:
            changes.append(f"severity {current.severity.value} → {severity.value}")
            tracking["previous_severity"] = current.severity.value
        if violation is not None:
            kind, subject = violation.kind.value, violation.subject
            title = group.title or title_for(violation.kind, violation.subject)
            value, threshold, unit = violation.value, violation.threshold, violation.unit
        else:
            kind, subject, title = current.kind, current.subject, current.title
            value, threshold = current.value, current.threshold
            unit = str(current.details.get("unit") or "")
        escalated = violation is not None and kind != current.kind
        if title != current.title:
            notes.append(
                IncidentChange(kind=ChangeKind.ESCALATED, title_from=current.title, title_to=title)
            )
        value_changed = violation is not None and self.policy.value_changed(notified, value, unit)
        if value_changed:
            changes.append(f"value {_shown(notified, unit)} → {_shown(value, unit)}")
            tracking["notified_value"] = encode(value)
        notes.extend(consequence_notes(current, group))
        if violation is None and not current.details.get("cause_cleared"):
            notes.append(IncidentChange(kind=ChangeKind.CAUSE_CLEARED, title_from=current.title))
        counts = consequence_counts(group)
        saved_counts = {str(c.get("key")): c.get("count") for c in consequences_of(current)}
        counts_moved = counts != tracking.get("counts")
        since_counts = now.timestamp() - float(tracking.get("counts_at") or 0.0)
        counts_due = counts_moved and since_counts >= self.policy.consequence_every
        if notes or counts_due:
            tracking["counts"] = counts
            tracking["counts_at"] = now.timestamp()
        worsened = severity.rank > current.worst_severity.rank or escalated
        came_back = current.clear_since is not None
        due = (now - current.updated_at).total_seconds() >= self.policy.refresh_every
        moved = group.fingerprint != current.fingerprint
        announce = bool(changes or notes or counts_due)
        if not (announce or came_back or due or moved or counts != saved_counts):
            return None

        updated = current.model_copy(
            update={
                "fingerprint": group.fingerprint,
                "kind": kind,
                "subject": subject,
                "title": title,
                "severity": severity,
                "worst_severity": current.worst_severity.worst(severity),
                "value": finite(value),
                "threshold": finite(threshold),
                "details": group_details(
                    group,
                    violation,
                    current.details,
                    addresses=addresses,
                    status_addresses=self._status_addresses,
                    tracking=tracking,
                    now=now.timestamp(),
                ),
                "updated_at": now,
                "last_seen_at": now,
                "clear_since": None,
            }
        )
        audit = None
        if severity_changed or escalated:
            audit = AuditEvent(
                at=now,
                actor=SYSTEM,
                action="incident.severity" if severity_changed else "incident.escalated",
                subject=current.id,
                detail={
                    "from": current.severity.value,
                    "to": severity.value,
                    "kind_from": current.kind,
                    "kind_to": kind,
                },
                reason=violation.message if violation is not None else title,
            )
        saved = await self._save(
            updated,
            audit,
            announce=EventKind.INCIDENT_UPDATED if announce else None,
            notes=tuple(notes),
            previous_severity=current.severity if severity_changed else None,
        )
        if saved is None or not announce:
            return None
        return IncidentEvent(
            IncidentEventKind.UPDATED,
            saved,
            previous_severity=current.severity if severity_changed else None,
            worsened=worsened,
            changes=tuple(changes + [note.kind.value for note in notes]),
            notes=tuple(notes),
        )

    async def _merge(
        self, incident: Incident, into: Incident, now: datetime
    ) -> list[IncidentEvent]:
        """Resolve `incident` as part of `into` (same cause): its parent is edited to say so,
        and `into`'s thread hears of it."""
        details = dict(incident.details)
        details["merged_into"] = into.id
        merged = incident.model_copy(
            update={
                "status": IncidentStatus.RESOLVED,
                "clear_since": incident.clear_since or now,
                "resolved_at": now,
                "updated_at": now,
                "details": details,
            }
        )
        audit = AuditEvent(
            at=now,
            actor=SYSTEM,
            action="incident.merged",
            subject=incident.id,
            detail={"into": into.id, "fingerprint": incident.fingerprint},
            reason=f"same cause as {into.id} ({into.title})",
        )
        note = IncidentChange(kind=ChangeKind.MERGED_INTO, other_id=into.id, other_title=into.title)
        saved = await self._save(merged, audit, announce=EventKind.INCIDENT_RESOLVED, notes=(note,))
        if saved is None:
            return []
        logger.info("merged incident %s into %s", saved.id, into.id)
        events = [IncidentEvent(IncidentEventKind.RESOLVED, saved, notes=(note,))]
        fresh = await self.repo.get(into.id)
        if fresh is not None and fresh.is_open:
            line = IncidentChange(
                kind=ChangeKind.MERGED_FROM, other_id=saved.id, other_title=saved.title
            )
            again = await self._save(
                fresh.model_copy(update={"updated_at": now}),
                announce=EventKind.INCIDENT_UPDATED,
                notes=(line,),
            )
            if again is not None:
                events.append(
                    IncidentEvent(
                        IncidentEventKind.UPDATED,
                        again,
                        changes=(line.kind.value,),
                        notes=(line,),
                    )
                )
        return events

    async def _clear(self, current: Incident, now: datetime) -> IncidentEvent | None:
        clear_since = current.clear_since or now
        quiet = (now - clear_since).total_seconds()
        if quiet < self.resolve_after:
            if current.clear_since is None:
                await self._save(current.model_copy(update={"clear_since": now, "updated_at": now}))
            return None
        resolved = current.model_copy(
            update={
                "status": IncidentStatus.RESOLVED,
                "clear_since": clear_since,
                "resolved_at": now,
                "updated_at": now,
            }
        )
        audit = AuditEvent(
            at=now,
            actor=SYSTEM,
            action="incident.resolved",
            subject=current.id,
            detail={
                "fingerprint": current.fingerprint,
                "clear_since": clear_since.astimezone(UTC).isoformat(),
                "worst_severity": current.worst_severity.value,
            },
            reason=f"not seen for {quiet:.0f} s (resolve_after {self.resolve_after:g} s)",
        )
        saved = await self._save(resolved, audit, announce=EventKind.INCIDENT_RESOLVED)
        if saved is None:
            return None
        logger.info("resolved incident %s (%s)", saved.id, saved.fingerprint)
        return IncidentEvent(IncidentEventKind.RESOLVED, saved)

    async def _save(
        self,
        incident: Incident,
        audit: AuditEvent | None = None,
        *,
        announce: EventKind | None = None,
        notes: tuple[IncidentChange, ...] = (),
        previous_severity: Severity | None = None,
    ) -> Incident | None:
        try:
            return await self.repo.update(
                incident,
                audit=audit,
                announce=announce,
                notes=notes,
                previous_severity=previous_severity,
            )
        except StaleVersion:
            logger.info(
                "incident %s changed meanwhile; it is looked at again next tick", incident.id
            )
        except NotFound:
            logger.warning("incident %s disappeared from the database", incident.id)
        return None


def _shown(value: float | None, unit: str) -> str:
    if value is None:
        return "no value"
    if math.isinf(value):
        return "above the largest bucket"
    if unit in RATIO_UNITS:
        return f"{value:.0%}"
    if unit == "ms":
        return f"{value:.0f} ms"
    if unit == "regions":
        return f"{value:.0f} regions"
    return f"{value:g} {unit}".strip()


__all__ = [
    "MANAGED_KINDS",
    "ChangePolicy",
    "IncidentEvent",
    "IncidentEventKind",
    "IncidentTracker",
    "incident_fingerprint",
    "incident_severity",
    "is_managed",
    "remember_open_incidents",
    "remembered_violation",
    "title_for",
]
