"""The incident tracker on its own: what opens, continues, freezes, clears and resolves an
incident, what counts as a meaningful change, and how open incidents rebuild the invariants'
memory. Uses the real SQLite repositories."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from engine.errors import DuplicateIncident
from engine.incidents import (
    ChangePolicy,
    IncidentEventKind,
    IncidentTracker,
    is_managed,
    remember_open_incidents,
    remembered_violation,
    title_for,
)
from engine.model import Incident, IncidentStatus, Severity, fingerprint
from operator_tikv.invariants import (
    Evaluation,
    InvariantMemory,
    Remembered,
    Violation,
    ViolationKind,
)
from operator_tikv.invariants import Severity as VSeverity
from storage import Repositories
from tests.plugins.storage import make_incident

T0 = datetime(2024, 5, 1, 14, 0, tzinfo=UTC)


def latency(
    value: float = 250.0, *, store: int = 4, stale: bool = False, first_seen: float | None = None
) -> Violation:
    return Violation(
        kind=ViolationKind.WRITE_LATENCY,
        severity=VSeverity.WARNING,
        store_id=store,
        value=value,
        threshold=100.0,
        unit="ms",
        first_seen=T0.timestamp() - 60 if first_seen is None else first_seen,
        message=f"Write latency P99 on store {store} is {value:.0f} ms",
        stale=stale,
    )


def disk(ratio: float, *, store: int = 4) -> Violation:
    return Violation(
        kind=ViolationKind.DISK_USAGE,
        severity=VSeverity.CRITICAL if ratio >= 0.8 else VSeverity.WARNING,
        store_id=store,
        value=ratio,
        threshold=0.7,
        unit="ratio",
        first_seen=T0.timestamp(),
        message=f"Disk on store {store} is {ratio:.0%} used",
    )


def ev(*violations: Violation, pending: tuple[Violation, ...] = ()) -> Evaluation:
    return Evaluation(violations=violations, pending=pending, memory=InvariantMemory())


async def step(
    tracker: IncidentTracker, evaluation: Evaluation, at: datetime
) -> list[tuple[IncidentEventKind, Incident]]:
    events = await tracker.reconcile(
        evaluation,
        now=at,
        open_incidents=await tracker.open_incidents(),
        addresses={4: "10.0.0.4:20160"},
    )
    return [(e.kind, e.incident) for e in events]


# --------------------------------------------------------------------------- change policy


def test_relative_change_is_reported_from_a_quarter_up_or_down() -> None:
    policy = ChangePolicy()
    assert policy.value_changed(200.0, 250.0, "ms")
    assert policy.value_changed(200.0, 150.0, "ms")
    assert not policy.value_changed(200.0, 240.0, "ms")
    assert not policy.value_changed(200.0, 161.0, "ms")


def test_ratios_move_by_absolute_points() -> None:
    policy = ChangePolicy(ratio_step=0.05)
    assert policy.value_changed(0.72, 0.77, "ratio")
    assert not policy.value_changed(0.72, 0.76, "ratio")
    assert policy.value_changed(0.60, 0.52, "share")


def test_ages_and_missing_values() -> None:
    policy = ChangePolicy()
    assert not policy.value_changed(60.0, 6000.0, "s")  # a Down store's age grows by itself
    assert not policy.value_changed(None, None, "ms")
    assert policy.value_changed(None, 300.0, "ms")
    assert policy.value_changed(300.0, math.inf, "ms")
    assert not policy.value_changed(math.inf, math.inf, "ms")


def test_titles_name_the_store() -> None:
    assert title_for(ViolationKind.WRITE_LATENCY, "store:4") == "High write latency on store 4"
    assert title_for(ViolationKind.PD_UNREACHABLE, "cluster") == "PD unreachable"


# --------------------------------------------------------------------------- memory


def test_open_incidents_become_active_memory_entries() -> None:
    incident = make_incident(
        kind="write_latency",
        subject="store:4",
        severity=Severity.WARNING,
        worst_severity=Severity.WARNING,
        value=250.0,
        threshold=100.0,
        details={"unit": "ms", "first_seen": 1000.0, "message": "slow"},
    )
    foreign = make_incident(id="I-2", kind="store-down", subject="store:5")
    memory = remember_open_incidents(InvariantMemory(), [incident, foreign])
    assert list(memory.entries) == ["write_latency/store:4"]
    entry = memory.entries["write_latency/store:4"]
    assert entry.active and entry.first_seen == 1000.0
    assert entry.last.store_id == 4 and entry.last.unit == "ms" and entry.last.value == 250.0
    assert not is_managed(foreign)


def test_memory_entries_already_present_are_kept() -> None:
    held = latency(first_seen=5.0)
    memory = InvariantMemory(entries={held.key: Remembered(first_seen=5.0, last=held, active=True)})
    incident = make_incident(kind="write_latency", subject="store:4", details={"first_seen": 99.0})
    assert remember_open_incidents(memory, [incident]).entries[held.key].first_seen == 5.0


def test_remembered_violation_without_first_seen_uses_opened_at() -> None:
    incident = make_incident(kind="pd_unreachable", subject="cluster", details={})
    violation = remembered_violation(incident)
    assert violation is not None
    assert violation.first_seen == incident.opened_at.timestamp()
    assert violation.key == "pd_unreachable/cluster"
    assert violation.message == incident.title


# --------------------------------------------------------------------------- the tracker


async def test_open_continue_clear_resolve(repos: Repositories) -> None:
    tracker = IncidentTracker(repos.incidents, resolve_after=60)
    [(kind, opened)] = await step(tracker, ev(latency(250)), T0)
    assert kind is IncidentEventKind.OPENED
    assert opened.fingerprint == fingerprint("write_latency", "store:4")
    assert opened.title == "High write latency on store 4"
    assert opened.details["address"] == "10.0.0.4:20160"
    assert opened.details["first_seen"] == T0.timestamp() - 60
    audit = await repos.audit.list_recent(subject=opened.id)
    assert [a.action for a in audit] == ["incident.opened"]

    assert await step(tracker, ev(latency(260)), T0 + timedelta(seconds=15)) == []
    assert await step(tracker, ev(), T0 + timedelta(seconds=30)) == []
    cleared = await repos.incidents.get(opened.id)
    assert cleared is not None and cleared.clear_since == T0 + timedelta(seconds=30)
    assert await step(tracker, ev(), T0 + timedelta(seconds=89)) == []
    [(kind, resolved)] = await step(tracker, ev(), T0 + timedelta(seconds=90))
    assert kind is IncidentEventKind.RESOLVED
    assert resolved.status is IncidentStatus.RESOLVED
    assert resolved.resolved_at == T0 + timedelta(seconds=90)
    assert resolved.clear_since == T0 + timedelta(seconds=30)
    assert await repos.incidents.list_open() == []


async def test_resolve_after_zero_resolves_on_the_first_clear_tick(repos: Repositories) -> None:
    tracker = IncidentTracker(repos.incidents, resolve_after=0)
    await step(tracker, ev(latency()), T0)
    [(kind, resolved)] = await step(tracker, ev(), T0 + timedelta(seconds=15))
    assert kind is IncidentEventKind.RESOLVED
    assert resolved.clear_since == resolved.resolved_at == T0 + timedelta(seconds=15)


async def test_stale_violations_neither_open_nor_advance_clearing(repos: Repositories) -> None:
    tracker = IncidentTracker(repos.incidents, resolve_after=60)
    assert await step(tracker, ev(latency(stale=True)), T0) == []
    assert await repos.incidents.list_open() == []

    await step(tracker, ev(latency()), T0)
    # clearing starts, then the data goes missing for far longer than resolve_after
    await step(tracker, ev(), T0 + timedelta(seconds=15))
    for minute in range(1, 30):
        assert await step(tracker, ev(latency(stale=True)), T0 + timedelta(minutes=minute)) == []
    [still] = await repos.incidents.list_open()
    assert still.clear_since == T0 + timedelta(seconds=15)


async def test_pending_never_opens_but_keeps_an_open_incident_alive(repos: Repositories) -> None:
    tracker = IncidentTracker(repos.incidents, resolve_after=60)
    assert await step(tracker, ev(pending=(latency(),)), T0) == []
    assert await repos.incidents.list_open() == []

    await step(tracker, ev(latency()), T0)
    await step(tracker, ev(), T0 + timedelta(seconds=15))  # clearing
    await step(tracker, ev(pending=(latency(),)), T0 + timedelta(seconds=30))
    [incident] = await repos.incidents.list_open()
    assert incident.clear_since is None
    assert incident.last_seen_at == T0 + timedelta(seconds=30)


async def test_severity_changes_are_reported_and_worst_is_kept(repos: Repositories) -> None:
    tracker = IncidentTracker(repos.incidents, resolve_after=60)
    await step(tracker, ev(disk(0.72)), T0)
    assert await step(tracker, ev(disk(0.74)), T0 + timedelta(seconds=15)) == []
    events = await tracker.reconcile(
        ev(disk(0.85)),
        now=T0 + timedelta(seconds=30),
        open_incidents=await tracker.open_incidents(),
    )
    [worse] = events
    assert worse.kind is IncidentEventKind.UPDATED and worse.worsened
    assert worse.previous_severity is Severity.WARNING
    assert worse.incident.severity is Severity.CRITICAL
    assert worse.incident.details["tracking"]["previous_severity"] == "warning"
    assert "severity warning → critical" in worse.changes

    events = await tracker.reconcile(
        ev(disk(0.75)),
        now=T0 + timedelta(seconds=45),
        open_incidents=await tracker.open_incidents(),
    )
    [better] = events
    assert not better.worsened
    assert better.incident.severity is Severity.WARNING
    assert better.incident.worst_severity is Severity.CRITICAL
    actions = [a.action for a in await repos.audit.list_recent(subject=worse.incident.id)]
    assert actions.count("incident.severity") == 2


async def test_value_change_is_measured_from_the_last_reported_value(
    repos: Repositories,
) -> None:
    tracker = IncidentTracker(repos.incidents, resolve_after=60)
    await step(tracker, ev(latency(200)), T0)
    # creeping up 10 % per tick: reported once it is 25 % above the reported 200 ms
    reported = []
    for i, value in enumerate((220.0, 240.0, 250.0, 270.0, 300.0, 310.0), start=1):
        for kind, incident in await step(tracker, ev(latency(value)), T0 + timedelta(seconds=i)):
            reported.append((kind, incident.value))
    assert reported == [(IncidentEventKind.UPDATED, 250.0)]


async def test_unchanged_incidents_are_saved_only_every_refresh(repos: Repositories) -> None:
    tracker = IncidentTracker(
        repos.incidents, resolve_after=60, policy=ChangePolicy(refresh_every=60)
    )
    await step(tracker, ev(latency()), T0)
    for second in range(15, 301, 15):
        await step(tracker, ev(latency()), T0 + timedelta(seconds=second))
    [incident] = await repos.incidents.list_open()
    assert incident.version == 1 + 5  # saved at 60, 120, 180, 240, 300 s
    assert incident.last_seen_at == T0 + timedelta(seconds=300)


async def test_an_incident_opened_by_another_process_is_continued(repos: Repositories) -> None:
    tracker = IncidentTracker(repos.incidents, resolve_after=60)
    other = IncidentTracker(repos.incidents, resolve_after=60)
    await step(other, ev(latency(200)), T0)
    # this tracker did not see it open (stale list): its create hits the unique index
    events = await tracker.reconcile(
        ev(latency(400)), now=T0 + timedelta(seconds=1), open_incidents=[]
    )
    [event] = events
    assert event.kind is IncidentEventKind.UPDATED
    assert len(await repos.incidents.list(limit=10)) == 1


async def test_duplicate_without_an_open_incident_is_raised(repos: Repositories) -> None:
    class Racing:
        def __init__(self, inner: object) -> None:
            self.inner = inner

        def __getattr__(self, name: str) -> object:
            return getattr(self.inner, name)

        async def create(self, incident: Incident, **kw: object) -> Incident:
            raise DuplicateIncident("boom", fingerprint=incident.fingerprint, existing_id=None)

    tracker = IncidentTracker(Racing(repos.incidents), resolve_after=60)  # type: ignore[arg-type]
    with pytest.raises(DuplicateIncident):
        await step(tracker, ev(latency()), T0)


def test_negative_resolve_after_is_refused(repos: Repositories) -> None:
    with pytest.raises(ValueError, match="resolve_after"):
        IncidentTracker(repos.incidents, resolve_after=-1)
