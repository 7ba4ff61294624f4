"""The Slack deliverer's side of the event log (`bot.notifier.SlackNotifier` as an
`EventSink`): passing over an event moves its cursor and queues nothing."""

from __future__ import annotations

from bot.notifier import CONSUMER, SlackNotifier
from bot.queue import SlackOutbox
from engine.clock import FakeClock
from storage import Repositories
from tests.plugins.storage import make_incident


async def test_the_slack_sink_passes_over_an_event_by_moving_its_cursor(
    repos: Repositories,
) -> None:
    await repos.incidents.create(make_incident(id="I-1"))
    await repos.incidents.create(make_incident(id="I-2", subject="store:2"))
    clock = FakeClock()
    notifier = SlackNotifier(
        clock, channel="C1", outbox=SlackOutbox(repos.outbox, clock), reads=repos
    )
    [first, *_] = await repos.events.after(0)
    await notifier.skip(first)
    assert await repos.events.cursor(CONSUMER) == first.seq
    assert await repos.outbox.depth() == 0
    # the next event is still rendered and queued, with the cursor's move
    [_, second] = await repos.events.after(0)
    await notifier.deliver(second)
    assert await repos.events.cursor(CONSUMER) == second.seq
    assert await repos.outbox.depth() == 1
