"""What an incident record holds beside its fields: which incidents the monitor manages, their
fingerprint, title and severity, the `details` (with the `tracking` bookkeeping of
`engine.incidents`), and the invariants' memory rebuilt from the open incidents at start-up.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.correlation import (
    STORE_GROUP,
    STORES_GROUP,
    Consequence,
    Group,
)
from engine.events import ChangeKind, IncidentChange
from engine.model import Incident, JsonDict, Severity, fingerprint
from operator_tikv.invariants import InvariantMemory, Remembered, Violation, ViolationKind
from operator_tikv.invariants import Severity as ViolationSeverity

MANAGED_KINDS = frozenset(kind.value for kind in ViolationKind)
"""Incident kinds this module opens and resolves (the invariants' kinds)."""

AGE_UNITS = frozenset({"s"})
"""Units of values that grow by themselves (time since a heartbeat): never worth a report."""

RATIO_UNITS = frozenset({"ratio", "share"})
"""Units in [0, 1], compared by absolute difference rather than relative change."""

_TITLES: Mapping[ViolationKind, str] = {
    ViolationKind.PD_UNREACHABLE: "PD unreachable",
    ViolationKind.STORE_DOWN: "Store {id} down",
    ViolationKind.STORE_DISCONNECTED: "Store {id} disconnected",
    ViolationKind.STORE_METRICS_MISSING: "No metrics from store {id}",
    ViolationKind.WRITE_LATENCY: "High write latency on store {id}",
    ViolationKind.DISK_USAGE: "Disk filling on store {id}",
    ViolationKind.REGION_DOWN_PEER: "Regions with down peers",
    ViolationKind.REGION_PENDING_PEER: "Regions with pending peers",
    ViolationKind.REGION_MISS_PEER: "Regions missing replicas",
    ViolationKind.REGION_EXTRA_PEER: "Regions with extra replicas",
    ViolationKind.HOT_WRITE_SKEW: "Hot writes concentrated on store {id}",
    ViolationKind.METRICS_UNAVAILABLE: "Store metrics unavailable",
}


def title_for(kind: ViolationKind, subject: str) -> str:
    """A short headline: `High write latency on store 4`, `PD unreachable`."""
    ident = subject.partition(":")[2]
    return _TITLES[kind].format(id=ident or subject)


def incident_fingerprint(violation: Violation) -> str:
    return fingerprint(violation.kind.value, violation.subject)


def incident_severity(severity: ViolationSeverity) -> Severity:
    return Severity(severity.value)


def is_managed(incident: Incident) -> bool:
    """True for incidents opened from an invariant (the monitor resolves those)."""
    return incident.kind in MANAGED_KINDS


def finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def encode(value: float | None) -> float | str | None:
    """A value for JSON: infinities (a P99 above every bucket) as `"inf"`."""
    if value is None or math.isnan(value):
        return None
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def decode(raw: object) -> float | None:
    if raw is None:
        return None
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return float(raw)
    if raw == "inf":
        return math.inf
    if raw == "-inf":
        return -math.inf
    return None


def tracking_of(incident: Incident) -> dict[str, Any]:
    raw = incident.details.get("tracking")
    return dict(raw) if isinstance(raw, Mapping) else {}


def unix_seconds(value: datetime) -> float:
    return value.timestamp()


def store_id_of(subject: str) -> int | None:
    kind, _, ident = subject.partition(":")
    return int(ident) if kind == "store" and ident.isdigit() else None


def region_id_of(subject: str) -> int | None:
    kind, _, ident = subject.partition(":")
    return int(ident) if kind == "region" and ident.isdigit() else None


def details_for(
    violation: Violation,
    addresses: Mapping[int, str],
    tracking: Mapping[str, Any],
    status_addresses: Mapping[int, str] | None = None,
) -> JsonDict:
    """An incident's `details`, what the surfaces show: `message` (the invariant's sentence),
    `unit`, `store_id`, `address` (the store's address in PD) and `status_address` (its metrics
    target, for dashboard links), `region_ids`, `first_seen` (unix seconds the condition was
    first seen) and, under `tracking`, the tracker's bookkeeping: `notified_value` (the value
    last reported; `"inf"` for a P99 above every bucket) and `previous_severity` (the severity
    before the last severity change). An incident's `value` is None when not finite."""
    details: JsonDict = {"message": violation.message, "unit": violation.unit}
    if violation.store_id is not None:
        details["store_id"] = violation.store_id
        address = addresses.get(violation.store_id)
        if address:
            details["address"] = address
        status = (status_addresses or {}).get(violation.store_id)
        if status:
            details["status_address"] = status  # the store's metrics target (dashboard links)
    if violation.region_id is not None:
        details["region_id"] = violation.region_id
    if violation.region_ids:
        details["region_ids"] = list(violation.region_ids)
    details["first_seen"] = violation.first_seen
    details["tracking"] = dict(tracking)
    return details


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

    consequence_every: float = 30.0
    """Seconds between parent edits for consequence counts alone (appearing and clearing are
    told at once)."""

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


# --------------------------------------------------------------------------- correlation

STORE_KINDS = frozenset(
    {
        ViolationKind.STORE_DOWN.value,
        ViolationKind.STORE_DISCONNECTED.value,
        ViolationKind.STORE_METRICS_MISSING.value,
    }
)


def cause_stores(incident: Incident) -> tuple[int, ...]:
    """The stores an open incident is about when its cause is a store's health (one store, or
    several for `stores_unavailable`); () for every other incident."""
    kind = incident.fingerprint.partition(":")[0]
    if kind not in (STORE_GROUP, STORES_GROUP) and incident.kind not in STORE_KINDS:
        return ()
    stores = incident.details.get("stores")
    if isinstance(stores, list) and stores:
        return tuple(s for s in stores if isinstance(s, int) and not isinstance(s, bool))
    store_id = store_id_of(incident.subject)
    return (store_id,) if store_id is not None else ()


def consequence_record(consequence: Consequence, since: float) -> JsonDict:
    return {
        "key": consequence.key,
        "kind": consequence.kind.value,
        "label": consequence.label,
        "count": consequence.count,
        "stores": list(consequence.stores),
        "by_presence": consequence.by_presence,
        "since": since,
    }


def consequences_of(incident: Incident) -> list[JsonDict]:
    """The consequences recorded on an incident (newest shape; malformed entries skipped)."""
    raw = incident.details.get("consequences")
    if not isinstance(raw, list):
        return []
    return [c for c in raw if isinstance(c, dict) and isinstance(c.get("key"), str)]


def consequence_text(record: Mapping[str, Any]) -> str:
    """ "40 regions with a pending peer (peers on store 5)", "12 regions missing a replica
    (while store 5 is unhealthy)", "no metrics from the store"."""
    label = str(record.get("label") or record.get("kind") or "")
    count = record.get("count")
    stores = [s for s in record.get("stores") or [] if isinstance(s, int)]
    text = f"{count:,} {label}" if isinstance(count, int) else label
    if not label.startswith("regions"):
        return text
    names = ", ".join(str(s) for s in stores)
    plural = "s" if len(stores) > 1 else ""
    if stores and record.get("by_presence"):
        text += f" (while store{plural} {names} {'are' if plural else 'is'} unhealthy)"
    elif stores:
        text += f" (peers on store{plural} {names})"
    return text


def group_details(
    group: Group,
    cause: Violation | None,
    previous: Mapping[str, Any],
    *,
    addresses: Mapping[int, str],
    tracking: Mapping[str, Any],
    now: float,
    status_addresses: Mapping[int, str] | None = None,
) -> JsonDict:
    """An incident's details from its group: the cause's (or, once the cause cleared, the
    previous ones), its stores, its consequences with their current counts, and its quorum
    loss."""
    if cause is not None:
        details = details_for(cause, addresses, tracking, status_addresses)
        details.pop("cause_cleared", None)
    else:
        details = {k: v for k, v in previous.items() if k not in _GROUP_KEYS}
        details["tracking"] = dict(tracking)
        details["cause_cleared"] = True
    if len(group.stores) > 1:
        details["stores"] = list(group.stores)
    old = {str(c.get("key")): c for c in _records(previous)}
    details["consequences"] = [
        consequence_record(c, _since(old.get(c.key), now)) for c in group.consequences
    ]
    if group.quorum_lost_count:
        details["quorum_lost"] = {
            "count": group.quorum_lost_count,
            "regions": list(group.quorum_lost),
        }
    return details


_GROUP_KEYS = frozenset({"stores", "consequences", "quorum_lost", "tracking", "cause_cleared"})


def _records(details: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    raw = details.get("consequences")
    return [c for c in raw if isinstance(c, dict)] if isinstance(raw, list) else []


def _since(record: Mapping[str, Any] | None, now: float) -> float:
    since = record.get("since") if record is not None else None
    return float(since) if isinstance(since, int | float) else now


def claim_incident(
    group: Group, by_fingerprint: Mapping[str, Incident], claimed: set[str]
) -> Incident | None:
    """The open incident a group continues: its own fingerprint's, else the oldest one it
    adopts (the same cause in an earlier shape). Claimed incidents are not cleared."""
    own = by_fingerprint.get(group.fingerprint)
    if own is not None and group.fingerprint not in claimed:
        claimed.add(group.fingerprint)
        return own
    candidates = [
        by_fingerprint[key] for key in group.adopts if key in by_fingerprint and key not in claimed
    ]
    if not candidates:
        return None
    chosen = min(candidates, key=lambda i: (i.opened_at, i.id))
    claimed.add(chosen.fingerprint)
    return chosen


def consequence_counts(group: Group) -> dict[str, int | None]:
    return {c.key: c.count for c in group.consequences}


def consequence_notes(current: Incident, group: Group) -> list[IncidentChange]:
    """A change for each consequence that appeared or cleared since the last update."""
    old = {str(c.get("key")): c for c in consequences_of(current)}
    new = {c.key: c for c in group.consequences}
    notes: list[IncidentChange] = []
    for key, consequence in new.items():
        if key not in old:
            notes.append(
                IncidentChange(
                    kind=ChangeKind.CONSEQUENCE_APPEARED,
                    consequence=consequence.label,
                    count=consequence.count,
                    stores=consequence.stores,
                    by_presence=consequence.by_presence,
                )
            )
    for key, record in old.items():
        if key not in new:
            label = record.get("label")
            notes.append(
                IncidentChange(
                    kind=ChangeKind.CONSEQUENCE_CLEARED,
                    consequence=label if isinstance(label, str) and label else key,
                )
            )
    return notes


# --------------------------------------------------------------------------- memory


def remembered_violation(incident: Incident) -> Violation | None:
    """The violation an open incident stands for, rebuilt from the record (None for incidents
    not opened from an invariant)."""
    if not is_managed(incident):
        return None
    details = incident.details
    first_seen = decode(details.get("first_seen"))
    if first_seen is None:
        first_seen = unix_seconds(incident.opened_at)
    severity = (
        ViolationSeverity.CRITICAL
        if incident.severity is Severity.CRITICAL
        else ViolationSeverity.WARNING
    )
    regions = details.get("region_ids")
    unit = details.get("unit")
    message = details.get("message")
    return Violation(
        kind=ViolationKind(incident.kind),
        severity=severity,
        store_id=store_id_of(incident.subject),
        region_id=region_id_of(incident.subject),
        value=incident.value,
        threshold=incident.threshold,
        unit=unit if isinstance(unit, str) else "",
        first_seen=first_seen,
        message=message if isinstance(message, str) and message else incident.title,
        region_ids=tuple(r for r in regions if isinstance(r, int))
        if isinstance(regions, list)
        else (),
    )


def remember_open_incidents(
    memory: InvariantMemory, open_incidents: Sequence[Incident]
) -> InvariantMemory:
    """`memory` plus an active entry for every open incident it does not hold.

    This is how the invariants' grace memory survives a restart (a condition behind an open
    incident is active at once, from its original first-seen time), and how an incident whose
    condition looked clear keeps being watched: while its data is missing the invariants report
    it again as stale (frozen), and only fresh data showing it clear lets it resolve."""
    entries = dict(memory.entries)
    for incident in open_incidents:
        violation = remembered_violation(incident)
        if violation is None or violation.key in entries:
            continue
        entries[violation.key] = Remembered(
            first_seen=violation.first_seen, last=violation, active=True
        )
    return InvariantMemory(entries=entries)


# --------------------------------------------------------------------------- the tracker


__all__ = [
    "AGE_UNITS",
    "MANAGED_KINDS",
    "RATIO_UNITS",
    "STORE_KINDS",
    "ChangePolicy",
    "cause_stores",
    "claim_incident",
    "consequence_counts",
    "consequence_notes",
    "consequence_record",
    "consequence_text",
    "consequences_of",
    "decode",
    "details_for",
    "encode",
    "finite",
    "group_details",
    "incident_fingerprint",
    "incident_severity",
    "is_managed",
    "remember_open_incidents",
    "remembered_violation",
    "title_for",
    "tracking_of",
]
