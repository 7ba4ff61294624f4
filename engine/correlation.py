"""Correlation: which incidents one evaluation's violations make, one per cause (pure).

`correlate(violations, pending, recovering=...)` groups the invariants' violations by cause.
Each `Group` becomes one incident (`engine.incidents.IncidentTracker`); its `consequences` are
shown on that incident's card with their current counts instead of opening incidents of their
own. The rules:

1. **A store that stopped answering is one incident.** Its missing metrics (TiKV's /metrics
   refuses at once, while PD still says Up), then Disconnected, then Down are the same cause
   growing: one group per store (`store_health:store:<id>`), whose cause is the worst of the
   three, so Disconnected → Down is an escalation of the same incident (new title and
   severity, same message), never a second one.
2. **Two or more such stores are one incident** (`stores_unavailable:cluster`): with PD's
   default of 3 replicas two unhealthy stores are what costs regions their quorum, and the
   quorum loss (the down-peer list's majority check) makes it critical, naming the stores and
   the regions that cannot serve writes. An earlier incident of one of the stores is continued
   (`adopts`); the others are merged into it.
3. **Region health follows the stores.** Down-, pending-, missing- and extra-peer regions are
   consequences of a store group when one exists:
   - when the last region list named the stores holding the down or pending peers
     (`Violation.peer_stores`), the regions go to the group of those stores, counted per store;
   - otherwise (missing and extra replicas name no store; a down/pending count read before any
     list) they go to the first store group, by presence: PD's repair after a store failure
     (missing replicas re-created, the old peer removed when it comes back) shows up as these
     categories, and at 100,000 regions the bot reads counts, not every region's peers.
     `Consequence.by_presence` says so, and the card says "while store N is unhealthy".
   A store whose incident is still open after it came back (`recovering`) keeps its
   consequences (its peers catching up, the extra replicas PD removes) until they clear, so
   "store down, then back" is one incident that resolves once everything settled.
   Region health with no store group behind it stays an incident of its own, as before.
4. **PD unreachable suppresses everything that needs PD.** While it holds every other group is
   frozen (the invariants already mark their violations stale); only "PD unreachable" opens.
5. Everything else (write latency, disk, hot writes, the metrics source) is its own cause.

Violations arrive as the invariants left them: active (`stale` or fresh) and pending (grace not
over). A pending violation never opens an incident, but it keeps one open and is attached as a
consequence (its grace only gates opening an incident of its own).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from engine.model import fingerprint
from operator_tikv.violations import Severity, Violation, ViolationKind

STORE_GROUP = "store_health"
"""Fingerprint kind of a one-store group: `store_health:store:5`."""

STORES_GROUP = "stores_unavailable"
"""Fingerprint kind of the several-store group: `stores_unavailable:cluster`."""

STORE_CAUSES: tuple[ViolationKind, ...] = (
    ViolationKind.STORE_DOWN,
    ViolationKind.STORE_DISCONNECTED,
    ViolationKind.STORE_METRICS_MISSING,
)
"""A store's own health, worst first: the cause of its group is the first that holds."""

UNAVAILABLE = frozenset({ViolationKind.STORE_DOWN, ViolationKind.STORE_DISCONNECTED})

REGION_KINDS: tuple[ViolationKind, ...] = (
    ViolationKind.REGION_DOWN_PEER,
    ViolationKind.REGION_PENDING_PEER,
    ViolationKind.REGION_MISS_PEER,
    ViolationKind.REGION_EXTRA_PEER,
)

CONSEQUENCE_LABELS: Mapping[ViolationKind, str] = {
    ViolationKind.REGION_DOWN_PEER: "regions with a down peer",
    ViolationKind.REGION_PENDING_PEER: "regions with a pending peer",
    ViolationKind.REGION_MISS_PEER: "regions missing a replica",
    ViolationKind.REGION_EXTRA_PEER: "regions with an extra replica",
    ViolationKind.STORE_METRICS_MISSING: "no metrics from the store",
}


class Freshness(StrEnum):
    """How a group's members were seen in this evaluation."""

    FRESH = "fresh"  # re-checked now and holding
    PENDING = "pending"  # holding, grace not over: keeps an incident open, opens none
    STALE = "stale"  # not re-checked (no data): the incident is frozen


@dataclass(frozen=True)
class Consequence:
    """One consequence of a cause: a violation attached to the cause's incident."""

    kind: ViolationKind
    count: int | None
    stores: tuple[int, ...]
    by_presence: bool
    violation: Violation
    freshness: Freshness

    @property
    def key(self) -> str:
        """Stable name of the consequence on its incident: the violation's kind (and the store
        for a store's own condition)."""
        return self.violation.key

    @property
    def label(self) -> str:
        return CONSEQUENCE_LABELS.get(self.kind, self.kind.value.replace("_", " "))

    @property
    def own_fingerprint(self) -> str:
        """The fingerprint this violation's incident has when nothing absorbs it."""
        return fingerprint(self.violation.kind.value, self.violation.subject)


@dataclass(frozen=True)
class Group:
    """One cause: one incident. `cause` is None for a store that recovered while consequences
    still hold (its incident keeps its kind and title). `adopts` are fingerprints of open
    incidents of the same cause in an earlier shape (the incident is continued); `absorbs` are
    the fingerprints of the consequences' own incidents (merged into this one if open)."""

    fingerprint: str
    cause: Violation | None
    title: str | None
    severity: Severity
    freshness: Freshness
    stores: tuple[int, ...] = ()
    consequences: tuple[Consequence, ...] = ()
    adopts: tuple[str, ...] = ()
    absorbs: tuple[str, ...] = ()
    quorum_lost_count: int = 0
    quorum_lost: tuple[int, ...] = ()
    cause_freshness: Freshness | None = None

    @property
    def can_open(self) -> bool:
        """Only a cause re-checked now and past its grace opens an incident."""
        return self.cause is not None and self.cause_freshness is Freshness.FRESH


@dataclass(frozen=True)
class Correlation:
    groups: tuple[Group, ...]
    pd_unreachable: bool = False

    def by_fingerprint(self) -> dict[str, Group]:
        return {g.fingerprint: g for g in self.groups}


@dataclass
class _Item:
    violation: Violation
    freshness: Freshness


@dataclass
class _StoreGroup:
    stores: list[int]
    causes: list[_Item]
    consequences: list[Consequence] = field(default_factory=list)


def store_fingerprint(store_id: int) -> str:
    return fingerprint(STORE_GROUP, f"store:{store_id}")


STORES_FINGERPRINT = fingerprint(STORES_GROUP, "cluster")


def legacy_fingerprints(store_id: int) -> tuple[str, ...]:
    """Fingerprints a store's incidents had before correlation (one per kind)."""
    return tuple(fingerprint(kind.value, f"store:{store_id}") for kind in STORE_CAUSES)


def correlate(
    violations: Sequence[Violation],
    pending: Sequence[Violation] = (),
    *,
    recovering: Iterable[int] = (),
) -> Correlation:
    """Group one evaluation's violations by cause (see the module docstring). `recovering`:
    stores whose incident is open although nothing is wrong with the store itself any more."""
    items = [_Item(v, Freshness.STALE if v.stale else Freshness.FRESH) for v in violations]
    items += [_Item(v, Freshness.STALE if v.stale else Freshness.PENDING) for v in pending]
    pd_down = any(
        i.violation.kind is ViolationKind.PD_UNREACHABLE and i.freshness is Freshness.FRESH
        for i in items
    )

    by_store: dict[int, list[_Item]] = {}
    regions: list[_Item] = []
    others: list[_Item] = []
    for item in items:
        v = item.violation
        if v.kind in STORE_CAUSES and v.store_id is not None:
            by_store.setdefault(v.store_id, []).append(item)
        elif v.kind in REGION_KINDS:
            regions.append(item)
        else:
            others.append(item)

    store_groups = _store_groups(by_store, recovering)
    lone: list[_Item] = []
    for item in regions:
        if not _attach(item, store_groups):
            lone.append(item)

    groups = [_store_group(g) for g in store_groups if g.causes or g.consequences]
    groups += [_lone_group(item) for item in (*others, *lone)]
    if pd_down:
        groups = [
            g
            if g.cause is not None and g.cause.kind is ViolationKind.PD_UNREACHABLE
            else _frozen(g)
            for g in groups
        ]
    return Correlation(groups=tuple(sorted(groups, key=_order)), pd_unreachable=pd_down)


# --------------------------------------------------------------------------- stores


def _store_groups(
    by_store: Mapping[int, list[_Item]], recovering: Iterable[int]
) -> list[_StoreGroup]:
    unhealthy = sorted(by_store)
    groups: list[_StoreGroup] = []
    if len(unhealthy) >= 2:
        causes = [item for store_id in unhealthy for item in by_store[store_id]]
        groups.append(_StoreGroup(stores=unhealthy, causes=causes))
    elif unhealthy:
        groups.append(_StoreGroup(stores=unhealthy, causes=list(by_store[unhealthy[0]])))
    for store_id in sorted(set(recovering) - set(unhealthy)):
        groups.append(_StoreGroup(stores=[store_id], causes=[]))
    return groups


def _attach(item: _Item, groups: list[_StoreGroup]) -> bool:
    """Attach a region violation to the store groups behind it; False when there is none."""
    v = item.violation
    if not groups:
        return False
    named = {s: n for s, n in v.peer_stores.items() if n > 0}
    if named:
        attached = False
        for group in groups:
            on = sorted(s for s in group.stores if s in named)
            if on:
                # PD's count is fresh and the list's per-store figures may be older: when every
                # store the list named is in this group, the whole count is this group's; a
                # region with peers on two of the group's stores is one region
                count = sum(named[s] for s in on)
                if v.value is not None:
                    whole = set(named) <= set(group.stores)
                    count = int(v.value) if whole else min(count, int(v.value))
                group.consequences.append(
                    Consequence(v.kind, count, tuple(on), False, v, item.freshness)
                )
                attached = True
        return attached
    # No store named: attach by presence to the first group with a cause that still holds,
    # else to the first recovering store.
    target = next((g for g in groups if g.causes), groups[0])
    total = int(v.value) if v.value is not None else None
    target.consequences.append(
        Consequence(v.kind, total, tuple(target.stores), True, v, item.freshness)
    )
    return True


def _worst_cause(causes: Sequence[_Item]) -> _Item | None:
    for kind in STORE_CAUSES:
        for item in sorted(causes, key=lambda i: i.violation.store_id or 0):
            if item.violation.kind is kind:
                return item
    return None


def _store_group(group: _StoreGroup) -> Group:
    stores = tuple(group.stores)
    several = len(stores) >= 2
    cause_item = _worst_cause(group.causes)
    consequences = list(group.consequences)
    if cause_item is not None:
        # the store's other conditions (its missing metrics before PD noticed) are consequences
        for item in group.causes:
            missing = item.violation.kind is ViolationKind.STORE_METRICS_MISSING
            if item is not cause_item and missing:
                consequences.append(
                    Consequence(
                        item.violation.kind,
                        None,
                        (item.violation.store_id or 0,),
                        False,
                        item.violation,
                        item.freshness,
                    )
                )
    lost_count = max((c.violation.quorum_lost_count for c in consequences), default=0)
    lost = next((c.violation.quorum_lost for c in consequences if c.violation.quorum_lost), ())
    members = [i.freshness for i in group.causes] + [c.freshness for c in consequences]
    severity = _worst(
        [i.violation.severity for i in group.causes] + [c.violation.severity for c in consequences]
    )
    cause: Violation | None = None
    title: str | None = None
    if cause_item is not None:
        cause = cause_item.violation
        title = _title(stores, group.causes, lost_count) if several else None
        if several:
            cause = cause.model_copy(
                update={
                    "severity": severity,
                    "message": _several_message(group.causes, lost_count, lost),
                }
            )
    fp = STORES_FINGERPRINT if several else store_fingerprint(stores[0])
    adopts: list[str] = []
    for store_id in stores:
        if several:
            adopts.append(store_fingerprint(store_id))
        adopts.extend(legacy_fingerprints(store_id))
    if not several:
        adopts.append(STORES_FINGERPRINT)
    return Group(
        fingerprint=fp,
        cause=cause,
        title=title,
        severity=severity,
        freshness=_combined(members),
        stores=stores,
        consequences=tuple(sorted(consequences, key=lambda c: REGION_ORDER.get(c.kind, 9))),
        adopts=tuple(adopts),
        absorbs=tuple(dict.fromkeys(c.own_fingerprint for c in consequences)),
        quorum_lost_count=lost_count,
        quorum_lost=lost,
        cause_freshness=cause_item.freshness if cause_item is not None else None,
    )


REGION_ORDER: Mapping[ViolationKind, int] = {kind: n for n, kind in enumerate(REGION_KINDS)}


def _names(stores: Sequence[int]) -> str:
    ids = [str(s) for s in stores]
    return ids[0] if len(ids) == 1 else ", ".join(ids[:-1]) + " and " + ids[-1]


def _title(stores: Sequence[int], causes: Sequence[_Item], quorum_lost: int) -> str:
    kinds = {item.violation.kind for item in causes}
    names = _names(stores)
    if kinds == {ViolationKind.STORE_DOWN}:
        head = f"Stores {names} down"
    elif kinds == {ViolationKind.STORE_DISCONNECTED}:
        head = f"Stores {names} disconnected"
    elif kinds == {ViolationKind.STORE_METRICS_MISSING}:
        head = f"No metrics from stores {names}"
    else:
        head = f"Stores {names} unavailable"
    if quorum_lost:
        noun = "region" if quorum_lost == 1 else "regions"
        head += f": {quorum_lost:,} {noun} lost quorum"
    return head


def _several_message(causes: Sequence[_Item], quorum_lost: int, lost: Sequence[int]) -> str:
    parts = [item.violation.message for item in sorted(causes, key=_cause_order)]
    if quorum_lost:
        shown = ", ".join(str(r) for r in lost[:10])
        more = ", ..." if quorum_lost > len(lost[:10]) else ""
        parts.insert(
            0,
            f"{quorum_lost:,} regions lost a majority of their voters and cannot serve reads or "
            f"writes (e.g. {shown}{more}). PD cannot repair them alone: bring the stores back; "
            "unsafe recovery is the last resort.",
        )
    return " ".join(parts)


def _cause_order(item: _Item) -> tuple[int, int]:
    return (STORE_CAUSES.index(item.violation.kind), item.violation.store_id or 0)


# --------------------------------------------------------------------------- the rest


def _lone_group(item: _Item) -> Group:
    v = item.violation
    return Group(
        fingerprint=fingerprint(v.kind.value, v.subject),
        cause=v,
        title=None,
        severity=v.severity,
        freshness=item.freshness,
        cause_freshness=item.freshness,
    )


def _frozen(group: Group) -> Group:
    return Group(
        fingerprint=group.fingerprint,
        cause=group.cause,
        title=group.title,
        severity=group.severity,
        freshness=Freshness.STALE,
        stores=group.stores,
        consequences=group.consequences,
        adopts=group.adopts,
        absorbs=(),
        quorum_lost_count=group.quorum_lost_count,
        quorum_lost=group.quorum_lost,
        cause_freshness=Freshness.STALE,
    )


def _combined(members: Sequence[Freshness]) -> Freshness:
    if Freshness.FRESH in members:
        return Freshness.FRESH
    if Freshness.PENDING in members:
        return Freshness.PENDING
    return Freshness.STALE


def _worst(severities: Sequence[Severity]) -> Severity:
    return Severity.CRITICAL if Severity.CRITICAL in severities else Severity.WARNING


def _order(group: Group) -> tuple[int, str]:
    # the several-store group, then stores with a cause that holds, then recovering stores:
    # in that order they claim the incidents they adopt
    if group.fingerprint == STORES_FINGERPRINT:
        rank = 0
    elif group.fingerprint.startswith(STORE_GROUP):
        rank = 1 if group.cause is not None else 2
    else:
        rank = 3
    return (rank, group.fingerprint)


__all__ = [
    "CONSEQUENCE_LABELS",
    "STORES_FINGERPRINT",
    "Consequence",
    "Correlation",
    "Freshness",
    "Group",
    "correlate",
    "legacy_fingerprints",
    "store_fingerprint",
]
