"""The deliverers' relay (`engine.relay`): events reach a surface in order, a surface that
fails is offered the same event again (nothing skipped, nothing told twice once it took it),
and its failure never reaches the change it reports."""

from __future__ import annotations

from engine.events import Event, EventKind
from engine.relay import EventRelay, NotifierSink
from storage import Repositories
from tests.engine.monitor_fakes import RecordingNotifier
from tests.plugins.storage import make_incident


class FlakySink:
    """Fails the first `fail` deliveries; records what it took."""

    def __init__(self, fail: int) -> None:
        self.fail = fail
        self.taken: list[int] = []
        self.skipped: list[int] = []
        self.poison: set[str] = set()

    async def position(self) -> int:
        return max([0, *self.taken, *self.skipped])

    async def deliver(self, event: Event) -> None:
        if event.subject in self.poison:
            raise ValueError("cannot render this one")
        if self.fail:
            self.fail -= 1
            raise RuntimeError("Slack is down")
        assert event.seq is not None
        self.taken.append(event.seq)

    async def skip(self, event: Event) -> None:
        assert event.seq is not None
        self.skipped.append(event.seq)


async def _open_three(repos: Repositories) -> list[str]:
    ids = []
    for n in range(3):
        incident = await repos.incidents.create(
            make_incident(id=f"I-{n + 1}", subject=f"store:{n + 1}")
        )
        ids.append(incident.id)
    return ids


async def test_a_failing_surface_gets_the_same_event_again_and_the_change_stands(
    repos: Repositories,
) -> None:
    ids = await _open_three(repos)  # three changes, committed whatever the surfaces do
    sink = FlakySink(fail=2)
    relay = EventRelay(repos.events, sink, name="test")
    assert await relay.run_once() is False
    assert await relay.run_once() is False
    assert relay.failures == 2 and sink.taken == []
    assert await relay.run_once() is True
    events = await repos.events.after(0)
    assert sink.taken == [e.seq for e in events]  # all, in order, once
    assert [i.id for i in await repos.incidents.list_open()] == ids
    assert await relay.run_once() is True and len(sink.taken) == 3


async def test_a_notifier_hears_the_events_from_the_first_it_was_woken_for(
    repos: Repositories,
) -> None:
    await repos.incidents.create(make_incident(id="I-9", subject="store:9"))  # before: not told
    notifier = RecordingNotifier()
    relay = EventRelay(repos.events, NotifierSink(notifier, repos.events), name="test")
    repos.events.subscribe(relay.wake)
    ids = await _open_three(repos)
    await relay.drain()
    await relay.stop()
    assert notifier.events == [("opened", i) for i in ids]


async def test_a_background_relay_delivers_after_each_commit(repos: Repositories) -> None:
    import asyncio

    notifier = RecordingNotifier()
    relay = EventRelay(repos.events, NotifierSink(notifier, repos.events), name="test")
    repos.events.subscribe(relay.wake)
    await relay.start()
    try:
        incident = await repos.incidents.create(make_incident(id="I-1"))
        await repos.incidents.update(incident, announce=EventKind.INCIDENT_RESOLVED)
        async with asyncio.timeout(10):
            while len(notifier.events) < 2:
                await asyncio.sleep(0.01)
    finally:
        await relay.stop()
    assert notifier.events == [("opened", "I-1"), ("resolved", "I-1")]


async def test_an_event_that_never_renders_is_passed_over_after_the_retries(
    repos: Repositories,
) -> None:
    ids = await _open_three(repos)
    sink = FlakySink(fail=0)
    sink.poison = {ids[1]}
    relay = EventRelay(repos.events, sink, name="test", give_up=3)
    outcomes = [await relay.run_once() for _ in range(3)]
    assert outcomes == [False, False, False]
    events = await repos.events.after(0)
    assert sink.skipped == [events[1].seq]  # given up on after 3 tries, logged
    assert await relay.run_once() is True
    assert sink.taken == [events[0].seq, events[2].seq]  # the ones behind it still go out
