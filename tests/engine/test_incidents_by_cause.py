"""The incident tracker with correlation: one incident per cause across ticks. Escalation
continues the same incident (new title and severity, one note saying what changed);
consequences attach with their counts and are told when they appear or clear; counts alone
edit the parent at most every `consequence_every` seconds; incidents of an earlier shape are
continued or merged; each change's event (with its notes) is in the event log. Uses the real
SQLite repositories."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from engine.events import ChangeKind, EventKind, IncidentChange
from engine.incidents import ChangePolicy, IncidentEvent, IncidentEventKind, IncidentTracker
from engine.model import IncidentStatus, Severity
from operator_tikv.invariants import Evaluation, InvariantMemory, Violation, ViolationKind
from operator_tikv.invariants import Severity as VSeverity
from storage import Repositories
from tests.plugins.storage import make_incident

T0 = datetime(2024, 5, 1, 14, 0, tzinfo=UTC)
K = ViolationKind


def store(kind: ViolationKind, store_id: int) -> Violation:
    return Violation(
        kind=kind,
        severity=VSeverity.CRITICAL if kind is K.STORE_DOWN else VSeverity.WARNING,
        store_id=store_id,
        value=30.0,
        unit="s",
        first_seen=T0.timestamp(),
        message=f"Store {store_id} is {kind.value}",
    )


def regions(
    kind: ViolationKind, count: int, peers: dict[int, int] | None = None, lost: int = 0
) -> Violation:
    return Violation(
        kind=kind,
        severity=VSeverity.CRITICAL if lost else VSeverity.WARNING,
        value=float(count),
        threshold=1.0,
        unit="regions",
        first_seen=T0.timestamp(),
        message=f"{count} regions: {kind.value}",
        peer_stores=peers or {},
        quorum_lost=tuple(range(1, lost + 1))[:10],
        quorum_lost_count=lost,
    )


def escalated(before: str, after: str) -> IncidentChange:
    return IncidentChange(kind=ChangeKind.ESCALATED, title_from=before, title_to=after)


def ev(*violations: Violation) -> Evaluation:
    return Evaluation(violations=violations, pending=(), memory=InvariantMemory())


class Rig:
    def __init__(self, repos: Repositories, policy: ChangePolicy | None = None) -> None:
        self.repos = repos
        self.tracker = IncidentTracker(repos.incidents, resolve_after=30.0, policy=policy)
        self.at = T0

    async def step(self, *violations: Violation, seconds: float = 5.0) -> list[IncidentEvent]:
        self.at += timedelta(seconds=seconds)
        return await self.tracker.reconcile(
            ev(*violations), now=self.at, open_incidents=await self.tracker.open_incidents()
        )

    async def log(self) -> list[tuple[EventKind, str, tuple[IncidentChange, ...]]]:
        return [(e.kind, e.subject, e.notes) for e in await self.repos.events.after(0)]

    async def previous_severities(self) -> list[Severity | None]:
        return [e.previous_severity for e in await self.repos.events.after(0)]


async def test_metrics_missing_then_disconnected_then_down_is_one_escalating_incident(
    repos: Repositories,
) -> None:
    rig = Rig(repos)
    [opened] = await rig.step(store(K.STORE_METRICS_MISSING, 5))
    assert opened.kind is IncidentEventKind.OPENED
    assert opened.incident.title == "No metrics from store 5"

    [disconnected] = await rig.step(store(K.STORE_DISCONNECTED, 5))
    assert disconnected.incident.id == opened.incident.id
    assert disconnected.incident.kind == "store_disconnected"
    assert disconnected.notes == (escalated("No metrics from store 5", "Store 5 disconnected"),)
    assert disconnected.worsened  # a new cause kind: diagnosed again with its playbook

    [down] = await rig.step(store(K.STORE_DOWN, 5))
    assert down.incident.id == opened.incident.id
    assert down.incident.severity is Severity.CRITICAL
    assert down.incident.title == "Store 5 down"
    assert down.notes == (escalated("Store 5 disconnected", "Store 5 down"),)
    assert "severity warning → critical" in down.changes
    assert down.worsened

    log = await rig.log()
    assert [k for k, _, _ in log] == [
        EventKind.INCIDENT_OPENED,
        EventKind.INCIDENT_UPDATED,
        EventKind.INCIDENT_UPDATED,
    ]
    # the change is in the event, as data, with the severity before it (no memory needed)
    assert log[2][2] == (escalated("Store 5 disconnected", "Store 5 down"),)
    assert await rig.previous_severities() == [None, None, Severity.WARNING]
    assert len(await repos.incidents.list(limit=10)) == 1


async def test_consequences_attach_appear_and_clear_with_a_note_each(repos: Repositories) -> None:
    rig = Rig(repos)
    [opened] = await rig.step(store(K.STORE_DOWN, 5))
    pending = regions(K.REGION_PENDING_PEER, 40, {5: 40})
    [appeared] = await rig.step(store(K.STORE_DOWN, 5), pending)
    assert appeared.notes == (
        IncidentChange(
            kind=ChangeKind.CONSEQUENCE_APPEARED,
            consequence="regions with a pending peer",
            count=40,
            stores=(5,),
        ),
    )
    [record] = appeared.incident.details["consequences"]
    assert (record["kind"], record["count"], record["stores"]) == (
        "region_pending_peer",
        40,
        [5],
    )
    # one more tick with the same count changes nothing worth an event
    assert await rig.step(store(K.STORE_DOWN, 5), pending) == []

    [cleared] = await rig.step(store(K.STORE_DOWN, 5))
    assert cleared.notes == (
        IncidentChange(
            kind=ChangeKind.CONSEQUENCE_CLEARED, consequence="regions with a pending peer"
        ),
    )
    assert cleared.incident.details["consequences"] == []
    assert len(await repos.incidents.list(limit=10)) == 1
    assert opened.incident.id == cleared.incident.id


async def test_counts_alone_edit_the_parent_at_most_every_consequence_every(
    repos: Repositories,
) -> None:
    rig = Rig(repos, ChangePolicy(consequence_every=30.0, refresh_every=3600.0))
    await rig.step(store(K.STORE_DOWN, 5), regions(K.REGION_MISS_PEER, 10))
    # 10 → 20 after 5 s: saved (the card's next render shows it), not announced yet
    assert await rig.step(store(K.STORE_DOWN, 5), regions(K.REGION_MISS_PEER, 20)) == []
    [saved] = await repos.incidents.list_open()
    assert saved.details["consequences"][0]["count"] == 20
    # the same count again: nothing to save
    assert await rig.step(store(K.STORE_DOWN, 5), regions(K.REGION_MISS_PEER, 20)) == []
    [same] = await repos.incidents.list_open()
    assert same.version == saved.version
    # 30 s after the last announcement: one parent edit, no thread note
    [edit] = await rig.step(store(K.STORE_DOWN, 5), regions(K.REGION_MISS_PEER, 30), seconds=25)
    assert edit.kind is IncidentEventKind.UPDATED and edit.notes == ()
    assert edit.incident.details["consequences"][0]["count"] == 30
    assert [k for k, _, _ in await rig.log()] == [
        EventKind.INCIDENT_OPENED,
        EventKind.INCIDENT_UPDATED,
    ]


async def test_region_health_without_a_store_opens_its_own_then_a_store_absorbs_it(
    repos: Repositories,
) -> None:
    rig = Rig(repos)
    extra = regions(K.REGION_EXTRA_PEER, 3)
    [alone] = await rig.step(extra)
    assert alone.incident.fingerprint == "region_extra_peer:cluster"
    events = await rig.step(store(K.STORE_DISCONNECTED, 4), extra)
    kinds = [(e.kind, e.incident.fingerprint) for e in events]
    assert (IncidentEventKind.OPENED, "store_health:store:4") in kinds
    merged = next(e for e in events if e.kind is IncidentEventKind.RESOLVED)
    assert merged.incident.id == alone.incident.id
    assert merged.incident.details["merged_into"] != alone.incident.id
    open_now = await repos.incidents.list_open()
    assert [i.fingerprint for i in open_now] == ["store_health:store:4"]
    assert open_now[0].details["consequences"][0]["kind"] == "region_extra_peer"


async def test_two_stores_make_one_incident_that_adopts_the_first_and_merges_the_second(
    repos: Repositories,
) -> None:
    rig = Rig(repos)
    [first] = await rig.step(store(K.STORE_DISCONNECTED, 2))
    # an incident of the old shape for store 3 (as the version before correlation opened it)
    legacy = make_incident(
        id=await repos.incidents.next_id(),
        kind="store_disconnected",
        subject="store:3",
        at=rig.at,
        severity=Severity.WARNING,
        worst_severity=Severity.WARNING,
        details={"store_id": 3},
    )
    await repos.incidents.create(legacy)
    events = await rig.step(
        store(K.STORE_DOWN, 2),
        store(K.STORE_DOWN, 3),
        regions(K.REGION_DOWN_PEER, 150, {2: 150, 3: 150}, lost=150),
    )
    update, told = [e for e in events if e.kind is IncidentEventKind.UPDATED and e.notes]
    assert update.incident.id == first.incident.id
    assert update.incident.fingerprint == "stores_unavailable:cluster"
    assert update.incident.title == "Stores 2 and 3 down: 150 regions lost quorum"
    assert update.incident.severity is Severity.CRITICAL
    assert update.incident.details["stores"] == [2, 3]
    assert update.incident.details["quorum_lost"]["count"] == 150
    [merged] = [e for e in events if e.kind is IncidentEventKind.RESOLVED]
    assert merged.incident.id == legacy.id
    assert merged.incident.details["merged_into"] == first.incident.id
    assert merged.notes == (
        IncidentChange(
            kind=ChangeKind.MERGED_INTO,
            other_id=first.incident.id,
            other_title=update.incident.title,
        ),
    )
    assert told.incident.id == first.incident.id
    assert told.notes == (
        IncidentChange(kind=ChangeKind.MERGED_FROM, other_id=legacy.id, other_title=legacy.title),
    )
    assert len(await repos.incidents.list_open()) == 1


async def test_a_store_back_up_keeps_its_incident_until_its_regions_caught_up(
    repos: Repositories,
) -> None:
    rig = Rig(repos)
    [opened] = await rig.step(store(K.STORE_DOWN, 5))
    catching_up = regions(K.REGION_PENDING_PEER, 20, {5: 20})
    [back] = await rig.step(catching_up)  # the store is Up again; its peers catch up
    assert back.incident.id == opened.incident.id
    assert back.incident.details["cause_cleared"] is True
    assert back.incident.title == "Store 5 down"  # the cause stays what it was
    assert IncidentChange(kind=ChangeKind.CAUSE_CLEARED, title_from="Store 5 down") in back.notes
    assert back.incident.clear_since is None
    # everything clear: it clears, then resolves after resolve_after
    await rig.step()
    [resolved] = await rig.step(seconds=31)
    assert resolved.kind is IncidentEventKind.RESOLVED
    assert resolved.incident.id == opened.incident.id
    assert resolved.incident.status is IncidentStatus.RESOLVED


async def test_pd_unreachable_freezes_a_store_incident(repos: Repositories) -> None:
    rig = Rig(repos)
    [opened] = await rig.step(store(K.STORE_DOWN, 5))
    pd = Violation(
        kind=K.PD_UNREACHABLE,
        severity=VSeverity.CRITICAL,
        first_seen=T0.timestamp(),
        message="PD is unreachable",
    )
    stale = store(K.STORE_DOWN, 5).model_copy(update={"stale": True})
    for _ in range(10):
        events = await rig.step(pd, stale, seconds=10)
        assert all(e.incident.id != opened.incident.id for e in events)
    [frozen] = [i for i in await repos.incidents.list_open() if i.id == opened.incident.id]
    assert frozen.clear_since is None and frozen.version == opened.incident.version
