"""The incident lifecycle: from the invariants' violations to incidents that open, update and
resolve, deduplicated by fingerprint and damped against flapping.

`IncidentTracker.reconcile()` is called once per monitor tick with that tick's evaluation and
the open incidents. For each violation, keyed by `engine.model.fingerprint(kind, subject)`:

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

Events for the surfaces (`IncidentEvent`) are produced only for meaningful changes: opened;
updated when the severity changed or the value moved by a meaningful amount since the last
reported value (`ChangePolicy`); resolved. Clearing and coming back within the window are not
reported (that is the flapping the window absorbs). Ages (`unit == "s"`, e.g. how long a store
has been Down) grow by themselves and are never a reason to report.

The incident's `details` hold what the surfaces show: `message` (the invariant's sentence),
`unit`, `store_id`, `address`, `region_ids`, `first_seen` (unix seconds the condition was first
seen) and, under `tracking`, the bookkeeping of this module: `notified_value` (the value last
reported; `"inf"` for a P99 above every bucket) and `previous_severity` (the severity before
the last severity change, for "worsened: warning → critical" replies). `value` is None when
the measured value is not finite.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from engine.errors import DuplicateIncident, NotFound, StaleVersion
from engine.events import EventKind
from engine.incident_facts import (
    AGE_UNITS,
    MANAGED_KINDS,
    RATIO_UNITS,
    decode,
    details_for,
    encode,
    finite,
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
from operator_tikv.invariants import (
    Evaluation,
    Violation,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChangePolicy:
    """When an update is worth reporting, and how often an unchanged incident is saved.

    `relative_change`: a value moved by at least this fraction of the last reported value
    (0.25: 200 ms -> 250 ms is reported, 200 -> 240 is not). `ratio_step`: for values in [0, 1]
    (disk used, hot-write share), the absolute step that is reported (0.05 = 5 points).
    `refresh_every`: seconds after which an open incident is saved even if nothing notable
    changed, so `last_seen_at` stays close to the truth for other readers of the database.
    """

    relative_change: float = 0.25
    ratio_step: float = 0.05
    refresh_every: float = 60.0

    def value_changed(self, old: float | None, new: float | None, unit: str) -> bool:
        if unit in AGE_UNITS:
            return False
        if old is None or new is None:
            return (old is None) != (new is None)
        if math.isinf(old) or math.isinf(new):
            return old != new
        if unit in RATIO_UNITS:
            return abs(new - old) >= self.ratio_step - 1e-12
        base = max(abs(old), 1e-9)
        return abs(new - old) / base >= self.relative_change - 1e-12


class IncidentEventKind(StrEnum):
    OPENED = "opened"
    UPDATED = "updated"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class IncidentEvent:
    """A meaningful change of one incident, to report through the Notifier.

    `worsened` is True when the incident opened or reached a severity worse than any seen
    before (the monitor diagnoses it again). `changes` says in words what changed."""

    kind: IncidentEventKind
    incident: Incident
    previous_severity: Severity | None = None
    worsened: bool = False
    changes: tuple[str, ...] = field(default=())


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
    ) -> list[IncidentEvent]:
        """Apply one evaluation to the open incidents; returns the meaningful changes. Each
        one's event (`engine.events`) was written with its record, so it is told even if a
        later step of the same tick fails."""
        addresses = addresses or {}
        by_fingerprint = {i.fingerprint: i for i in open_incidents if is_managed(i)}
        holding: dict[str, Violation] = {}
        frozen: set[str] = set()
        for violation in evaluation.violations:
            key = incident_fingerprint(violation)
            if violation.stale:
                frozen.add(key)
            else:
                holding[key] = violation
        for violation in evaluation.pending:
            key = incident_fingerprint(violation)
            if violation.stale:
                frozen.add(key)
            elif key in by_fingerprint and key not in holding:
                holding[key] = violation  # it holds again; grace only gates opening

        events: list[IncidentEvent] = []
        for key, violation in holding.items():
            current = by_fingerprint.get(key)
            if current is None:
                event = await self._open(violation, now, addresses)
            else:
                event = await self._continue(current, violation, now, addresses)
            if event is not None:
                events.append(event)
        for key, current in by_fingerprint.items():
            if key in holding or key in frozen:
                continue
            event = await self._clear(current, now)
            if event is not None:
                events.append(event)
        return events

    # ------------------------------------------------------------------ steps

    async def _open(
        self, violation: Violation, now: datetime, addresses: Mapping[int, str]
    ) -> IncidentEvent | None:
        key = incident_fingerprint(violation)
        severity = incident_severity(violation.severity)
        tracking = {"notified_value": encode(violation.value), "previous_severity": None}
        incident = Incident(
            id=await self.repo.next_id(),
            fingerprint=key,
            kind=violation.kind.value,
            subject=violation.subject,
            severity=severity,
            worst_severity=severity,
            title=title_for(violation.kind, violation.subject),
            value=finite(violation.value),
            threshold=finite(violation.threshold),
            details=details_for(violation, addresses, tracking),
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
            return await self._continue(existing, violation, now, addresses)
        logger.info("opened incident %s (%s): %s", created.id, key, violation.message)
        return IncidentEvent(IncidentEventKind.OPENED, created, worsened=True)

    async def _continue(
        self,
        current: Incident,
        violation: Violation,
        now: datetime,
        addresses: Mapping[int, str],
    ) -> IncidentEvent | None:
        severity = incident_severity(violation.severity)
        tracking = tracking_of(current)
        notified = decode(tracking.get("notified_value"))
        changes: list[str] = []
        severity_changed = severity is not current.severity
        if severity_changed:
            changes.append(f"severity {current.severity.value} → {severity.value}")
            tracking["previous_severity"] = current.severity.value
        value_changed = self.policy.value_changed(notified, violation.value, violation.unit)
        if value_changed:
            changes.append(
                f"value {_shown(notified, violation.unit)} → "
                f"{_shown(violation.value, violation.unit)}"
            )
            tracking["notified_value"] = encode(violation.value)
        worsened = severity.rank > current.worst_severity.rank
        came_back = current.clear_since is not None
        due = (now - current.updated_at).total_seconds() >= self.policy.refresh_every
        if not (changes or came_back or due):
            return None

        updated = current.model_copy(
            update={
                "severity": severity,
                "worst_severity": current.worst_severity.worst(severity),
                "value": finite(violation.value),
                "threshold": finite(violation.threshold),
                "details": details_for(violation, addresses, tracking),
                "updated_at": now,
                "last_seen_at": now,
                "clear_since": None,
            }
        )
        audit = None
        if severity_changed:
            audit = AuditEvent(
                at=now,
                actor=SYSTEM,
                action="incident.severity",
                subject=current.id,
                detail={"from": current.severity.value, "to": severity.value},
                reason=violation.message,
            )
        saved = await self._save(
            updated, audit, announce=EventKind.INCIDENT_UPDATED if changes else None
        )
        if saved is None or not changes:
            return None
        return IncidentEvent(
            IncidentEventKind.UPDATED,
            saved,
            previous_severity=current.severity if severity_changed else None,
            worsened=worsened,
            changes=tuple(changes),
        )

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
    ) -> Incident | None:
        try:
            return await self.repo.update(incident, audit=audit, announce=announce)
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
