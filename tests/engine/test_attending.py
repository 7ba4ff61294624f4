"""Acknowledging and silencing incidents (`engine.attending`) on the real SQLite repositories:
who owns an incident, take-overs, silences that expire or break when the incident gets worse,
the policy's rule on who may silence, refusals of bad requests, the audit rows and the events
written with each change, and persistence across a reopened database."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from engine.attending import Attending, quiet, reminders_paused, silence_ended_because
from engine.clock import FakeClock
from engine.events import EventKind
from engine.model import Identity, IncidentStatus, Severity
from engine.policy import ApprovalPolicy
from engine.results import Attended, AttentionChange, RefusalCheck, RefusalKind, Refused
from storage import Database, Repositories
from tests.plugins.storage import T0, alice, bob, make_incident

APPROVERS = ApprovalPolicy(approvers=frozenset({"U1ALICE"}))


def attending(
    repos: Repositories, clock: FakeClock, policy: ApprovalPolicy = APPROVERS
) -> Attending:
    return Attending(
        incidents=repos.incidents,
        attention=repos.attention,
        audit=repos.audit,
        policy=policy,
        clock=clock,
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0 + timedelta(minutes=5))


async def open_incident(repos: Repositories, **changes: object) -> str:
    incident = make_incident(id=await repos.incidents.next_id(), **changes)
    await repos.incidents.create(incident)
    return incident.id


async def attention_events(repos: Repositories) -> list[tuple[str, str]]:
    events = await repos.events.after(0)
    return [
        (e.subject, e.audit.action)
        for e in events
        if e.kind is EventKind.INCIDENT_ATTENTION and e.audit is not None
    ]


async def test_acknowledge_makes_the_person_owner_with_audit_and_event(
    repos: Repositories, clock: FakeClock
) -> None:
    incident_id = await open_incident(repos)
    outcome = await attending(repos, clock).acknowledge(incident_id, bob())

    assert isinstance(outcome, Attended)
    assert outcome.change is AttentionChange.ACKNOWLEDGED
    stored = await repos.incidents.get(incident_id)
    assert stored is not None
    assert stored.attention.owner == bob() and stored.attention.owned_since == clock.now()
    assert stored.version == 2
    audit = await repos.audit.list_recent(subject=incident_id, action_prefix="incident.")
    assert [(a.action, a.actor.id) for a in audit] == [("incident.acknowledge", "U2BOB")]
    events = [e for e in await repos.events.after(0) if e.kind is EventKind.INCIDENT_ATTENTION]
    assert len(events) == 1
    assert events[0].incident is not None and events[0].incident.attention.owner == bob()


async def test_acknowledging_twice_is_a_no_op_and_another_person_takes_over(
    repos: Repositories, clock: FakeClock
) -> None:
    incident_id = await open_incident(repos)
    use = attending(repos, clock)
    await use.acknowledge(incident_id, bob())

    again = await use.acknowledge(incident_id, bob())
    assert isinstance(again, Attended) and again.change is AttentionChange.ALREADY_OWNER
    assert not again.changed
    assert await attention_events(repos) == [(incident_id, "incident.acknowledge")]

    clock.advance(60)
    taken = await use.acknowledge(incident_id, alice())
    assert isinstance(taken, Attended) and taken.change is AttentionChange.TAKEN_OVER
    assert taken.previous_owner == bob()
    stored = await repos.incidents.get(incident_id)
    assert stored is not None and stored.attention.owner == alice()
    audit = await repos.audit.list_recent(subject=incident_id, action_prefix="incident.ack")
    assert audit[0].detail["taken_from"] == bob().key


async def test_silence_is_shown_and_expires_on_time_with_one_event(
    repos: Repositories, clock: FakeClock
) -> None:
    incident_id = await open_incident(repos)
    use = attending(repos, clock)
    outcome = await use.silence(incident_id, alice(), timedelta(hours=2), "maintenance")

    assert isinstance(outcome, Attended) and outcome.change is AttentionChange.SILENCED
    assert outcome.until == clock.now() + timedelta(hours=2)
    stored = await repos.incidents.get(incident_id)
    assert stored is not None
    assert stored.attention.silenced_by == alice()
    assert stored.attention.silence_reason == "maintenance"
    assert stored.attention.silenced_severity is Severity.CRITICAL
    assert quiet(stored, clock.now()) and reminders_paused(stored, clock.now())

    clock.advance(timedelta(hours=1, minutes=59))
    assert await use.end_due() == []
    clock.advance(timedelta(minutes=1))
    ended = await use.end_due()
    assert [i.id for i in ended] == [incident_id]
    assert ended[0].attention.silenced_until is None
    assert not quiet(ended[0], clock.now())
    assert await use.end_due() == []  # once
    assert await attention_events(repos) == [
        (incident_id, "incident.silence"),
        (incident_id, "incident.silence.expired"),
    ]


async def test_a_higher_severity_breaks_the_silence(repos: Repositories, clock: FakeClock) -> None:
    incident_id = await open_incident(
        repos, severity=Severity.WARNING, worst_severity=Severity.WARNING
    )
    use = attending(repos, clock)
    await use.silence(incident_id, alice(), timedelta(hours=4), None)
    stored = await repos.incidents.get(incident_id)
    assert stored is not None and quiet(stored, clock.now())

    worse = stored.model_copy(
        update={"severity": Severity.CRITICAL, "worst_severity": Severity.CRITICAL}
    )
    saved = await repos.incidents.update(worse, announce=EventKind.INCIDENT_UPDATED)
    assert saved.attention.silenced_until is not None  # the monitor's update keeps it
    assert not quiet(saved, clock.now())  # but it no longer keeps the thread quiet
    assert silence_ended_because(saved, clock.now()) == "worsened"

    ended = await use.end_due()
    assert [i.id for i in ended] == [incident_id]
    audit = await repos.audit.list_recent(subject=incident_id, action_prefix="incident.silence.")
    assert audit[0].action == "incident.silence.worsened"
    assert audit[0].detail["from"] == "warning" and audit[0].detail["to"] == "critical"


async def test_unsilence_ends_it_and_unsilencing_nothing_changes_nothing(
    repos: Repositories, clock: FakeClock
) -> None:
    incident_id = await open_incident(repos)
    use = attending(repos, clock)
    nothing = await use.unsilence(incident_id, alice())
    assert isinstance(nothing, Attended) and nothing.change is AttentionChange.NOT_SILENCED

    await use.silence(incident_id, alice(), timedelta(hours=1), None)
    done = await use.unsilence(incident_id, alice())
    assert isinstance(done, Attended) and done.change is AttentionChange.UNSILENCED
    assert not quiet(done.incident, clock.now())
    assert await attention_events(repos) == [
        (incident_id, "incident.silence"),
        (incident_id, "incident.unsilence"),
    ]


async def test_a_non_approver_may_not_silence_when_the_policy_says_so(
    repos: Repositories, clock: FakeClock
) -> None:
    incident_id = await open_incident(repos)
    refused = await attending(repos, clock).silence(incident_id, bob(), timedelta(hours=1))

    assert isinstance(refused, Refused) and refused.kind is RefusalKind.POLICY
    # as data: which check, which incident, what was tried, who may (worded by the surfaces)
    assert refused.check is RefusalCheck.NOT_APPROVER
    seen = refused.observed
    assert (seen.incident_id, seen.event, seen.actor) == (incident_id, "silence", bob())
    assert seen.proposal_id is None and seen.approvers == ("U1ALICE",)
    stored = await repos.incidents.get(incident_id)
    assert stored is not None and stored.attention.silenced_until is None
    audit = await repos.audit.list_recent(subject=incident_id)
    assert [a.action for a in audit] == ["incident.silence.refused"]
    assert await attention_events(repos) == []

    # Acknowledging stays open to anyone, and a policy that lets anyone silence lets bob.
    assert isinstance(await attending(repos, clock).acknowledge(incident_id, bob()), Attended)
    anyone = APPROVERS.model_copy(update={"silence_needs_approver": False})
    allowed = await attending(repos, clock, anyone).silence(incident_id, bob(), timedelta(hours=1))
    assert isinstance(allowed, Attended) and allowed.change is AttentionChange.SILENCED


async def test_claude_cannot_acknowledge(repos: Repositories, clock: FakeClock) -> None:
    incident_id = await open_incident(repos)
    refused = await attending(repos, clock).acknowledge(incident_id, Identity.claude("c"))
    assert isinstance(refused, Refused) and refused.kind is RefusalKind.POLICY


async def test_unknown_and_resolved_incidents_and_bad_durations_are_refused(
    repos: Repositories, clock: FakeClock
) -> None:
    use = attending(repos, clock)
    unknown = await use.acknowledge("I-99", bob())
    assert isinstance(unknown, Refused) and unknown.kind is RefusalKind.UNKNOWN
    assert unknown.check is RefusalCheck.NOT_FOUND
    assert (unknown.observed.incident_id, unknown.observed.record_kind) == ("I-99", "incident")

    incident_id = await open_incident(
        repos, status=IncidentStatus.RESOLVED, resolved_at=T0 + timedelta(minutes=2)
    )
    resolved = await use.silence(incident_id, alice(), timedelta(hours=1))
    assert isinstance(resolved, Refused) and resolved.kind is RefusalKind.STATE
    assert resolved.check is RefusalCheck.WRONG_STATE
    assert resolved.observed.incident_state == "resolved"
    assert resolved.observed.resolved_at == T0 + timedelta(minutes=2)
    assert resolved.observed.event == "silence"

    open_id = await open_incident(repos, subject="store:5")
    for length in (timedelta(0), timedelta(days=8)):
        bad = await use.silence(open_id, alice(), length)
        assert isinstance(bad, Refused) and bad.kind is RefusalKind.INVALID
        assert "1 minute to 7 days" in bad.reason
    assert await attention_events(repos) == []


async def test_owner_and_silence_survive_a_restart(db_path: Path, clock: FakeClock) -> None:
    db = await Database.open(db_path)
    try:
        repos = Repositories.on(db)
        incident_id = await open_incident(repos)
        use = attending(repos, clock)
        await use.acknowledge(incident_id, bob())
        await use.silence(incident_id, alice(), timedelta(hours=1), "known")
    finally:
        await db.close()

    reopened = await Database.open(db_path)
    try:
        repos = Repositories.on(reopened)
        stored = await repos.incidents.get(incident_id)
        assert stored is not None
        assert stored.attention.owner == bob()
        assert stored.attention.silenced_by == alice()
        assert stored.attention.silence_reason == "known"
        assert quiet(stored, clock.now())
        clock.advance(timedelta(hours=1))
        ended = await attending(repos, clock).end_due()
        assert [i.id for i in ended] == [incident_id]
        assert ended[0].attention.owner == bob()  # the silence ends, the owner stays
    finally:
        await reopened.close()


async def test_a_stale_read_is_retried_against_the_new_version(
    repos: Repositories, clock: FakeClock
) -> None:
    """The monitor saves the incident between our read and our write: the change is made on
    the new version, not lost and not refused."""
    incident_id = await open_incident(repos)

    class Racing:
        def __init__(self) -> None:
            self.raced = False

        async def get(self, wanted: str) -> object:
            found = await repos.incidents.get(wanted)
            if not self.raced and found is not None:
                self.raced = True
                await repos.incidents.update(found.model_copy(update={"value": 2.0}))
            return found

        async def list_open(self) -> object:
            return await repos.incidents.list_open()

    use = Attending(
        incidents=Racing(),  # type: ignore[arg-type]
        attention=repos.attention,
        audit=repos.audit,
        policy=APPROVERS,
        clock=clock,
    )
    outcome = await use.acknowledge(incident_id, bob())
    assert isinstance(outcome, Attended)
    stored = await repos.incidents.get(incident_id)
    assert stored is not None and stored.value == 2.0 and stored.attention.owner == bob()


async def test_the_monitor_keeps_the_silence_and_a_worse_tick_breaks_it(
    repos: Repositories, clock: FakeClock
) -> None:
    """Through the real incident tracker: a tick that only moves the value keeps the incident
    quiet; a tick at a higher severity makes it loud at once, and the scheduled check ends the
    silence saying it got worse."""
    from engine.incidents import IncidentTracker
    from tests.engine.test_incidents import disk, ev

    tracker = IncidentTracker(repos.incidents, resolve_after=60)
    await tracker.reconcile(ev(disk(0.72)), now=clock.now(), open_incidents=[])
    [incident] = await repos.incidents.list_open()
    assert incident.severity is Severity.WARNING
    use = attending(repos, clock)
    await use.silence(incident.id, alice(), timedelta(hours=1), "known")

    clock.advance(120)
    opened = await repos.incidents.list_open()
    await tracker.reconcile(ev(disk(0.78)), now=clock.now(), open_incidents=opened)
    [same] = await repos.incidents.list_open()
    assert same.value == 0.78 and quiet(same, clock.now())
    assert await use.end_due() == []

    clock.advance(120)
    opened = await repos.incidents.list_open()
    await tracker.reconcile(ev(disk(0.9)), now=clock.now(), open_incidents=opened)
    [worse] = await repos.incidents.list_open()
    assert worse.severity is Severity.CRITICAL
    assert worse.attention.silenced_by == alice() and not quiet(worse, clock.now())
    [ended] = await use.end_due()
    assert ended.attention.silenced_until is None
    assert (await attention_events(repos))[-1] == (incident.id, "incident.silence.worsened")
