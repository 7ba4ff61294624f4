"""The outbox deliverer against the Slack stand-in and the real SQLite outbox: order per
incident, waiting for a parent that is not posted yet, retries (rate limits, 5xx, Slack
unreachable), the plain-text fallback when Slack refuses the blocks, re-posting a message that
can no longer be edited, and nothing lost across a restart."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.client import build_web_client, close_web_client
from bot.config import BotConfig
from bot.outbox import Deliverer
from bot.queue import SlackOutbox, key_for_incident, owner
from bot.render.kit import actions, button, rendered, section
from bot.retry import Backoff
from engine.clock import FakeClock
from engine.model import OutboxStatus, OwnerKind
from slackfake.server import SlackFake
from slackfake.store import Message
from storage import Repositories

CHANNEL = "C0OPS"
INCIDENT = owner(OwnerKind.INCIDENT, "I-1")


def message(text: str):
    return rendered(text, [section(f"*{text}*")])


def config(api_url: str, **changes: object) -> BotConfig:
    values: dict[str, object] = {
        "bot_token": "xoxb-test",
        "app_token": "xapp-1-A0TIKVOPS-1-test",
        "channel": CHANNEL,
        "api_url": api_url,
        "rate_limit_retries": 0,
        "connection_retries": 0,
        "server_error_retries": 0,
    }
    values.update(changes)
    return BotConfig(**values)  # type: ignore[arg-type]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def client(slack_fake: SlackFake) -> AsyncIterator[AsyncWebClient]:
    made = build_web_client(config(slack_fake.api_url))
    yield made
    await close_web_client(made)


DelivererFactory = Callable[..., Deliverer]


@pytest.fixture
def make_deliverer(repos: Repositories, clock: FakeClock) -> DelivererFactory:
    def make(client: AsyncWebClient, **options: object) -> Deliverer:
        return Deliverer(
            repos.outbox,
            repos.slack_refs,
            client,
            clock,
            backoff=Backoff(base=1.0, cap=60.0, jitter=0.0),
            **options,  # type: ignore[arg-type]
        )

    return make


@pytest.fixture
def outbox(repos: Repositories, clock: FakeClock) -> SlackOutbox:
    return SlackOutbox(repos.outbox, clock)


async def drain(deliverer: Deliverer, clock: FakeClock, rounds: int = 20) -> None:
    """Run passes, moving the clock past every back-off, until nothing is pending."""
    for _ in range(rounds):
        await deliverer.run_once()
        clock.advance(timedelta(minutes=2))


async def test_parent_replies_and_edits_keep_their_order(
    slack_fake: SlackFake,
    client: AsyncWebClient,
    outbox: SlackOutbox,
    make_deliverer: DelivererFactory,
    repos: Repositories,
    clock: FakeClock,
) -> None:
    key = key_for_incident("I-1")
    await outbox.post(key, message("parent v1"), channel=CHANNEL, owned_by=INCIDENT)
    await outbox.post(key, message("reply 1"), channel=CHANNEL, thread_of=INCIDENT)
    await outbox.update(key, message("parent v2"), target=INCIDENT, channel=CHANNEL)
    await outbox.post(key, message("reply 2"), channel=CHANNEL, thread_of=INCIDENT)
    await drain(make_deliverer(client), clock)
    [parent] = slack_fake.messages(CHANNEL)
    assert parent.text == "parent v2" and parent.edited
    assert [m.text for m in slack_fake.thread(CHANNEL, parent.ts)] == ["reply 1", "reply 2"]
    ref = await repos.slack_refs.get(OwnerKind.INCIDENT, "I-1")
    assert ref is not None and ref.ts == parent.ts and ref.channel == CHANNEL
    assert await repos.outbox.depth() == 0


async def test_a_reply_waits_for_a_parent_posted_under_another_key(
    slack_fake: SlackFake,
    client: AsyncWebClient,
    outbox: SlackOutbox,
    make_deliverer: DelivererFactory,
    repos: Repositories,
    clock: FakeClock,
) -> None:
    deliverer = make_deliverer(client)
    reply_id = await outbox.post(
        "proposal:P-1", message("reply"), channel=CHANNEL, thread_of=INCIDENT
    )
    assert await deliverer.run_once() == 0
    waiting = await repos.outbox.get(reply_id)
    assert waiting is not None and waiting.status is OutboxStatus.PENDING
    assert waiting.last_error and "waiting for the message of incident I-1" in waiting.last_error
    assert slack_fake.messages(CHANNEL) == []
    await outbox.post(
        key_for_incident("I-1"), message("parent"), channel=CHANNEL, owned_by=INCIDENT
    )
    await drain(deliverer, clock)
    [parent] = slack_fake.messages(CHANNEL)
    assert [m.text for m in slack_fake.thread(CHANNEL, parent.ts)] == ["reply"]


async def test_an_update_whose_message_never_appears_is_posted_instead(
    slack_fake: SlackFake,
    client: AsyncWebClient,
    outbox: SlackOutbox,
    make_deliverer: DelivererFactory,
    repos: Repositories,
    clock: FakeClock,
) -> None:
    await outbox.update(
        "incident:I-9",
        message("latest state"),
        target=owner(OwnerKind.INCIDENT, "I-9"),
        channel=CHANNEL,
    )
    await drain(make_deliverer(client, wait_attempts=2), clock, rounds=4)
    [posted] = slack_fake.messages(CHANNEL)
    assert posted.text == "latest state"
    ref = await repos.slack_refs.get(OwnerKind.INCIDENT, "I-9")
    assert ref is not None and ref.ts == posted.ts


async def test_refused_blocks_fall_back_to_the_plain_text_version(
    slack_fake: SlackFake,
    client: AsyncWebClient,
    outbox: SlackOutbox,
    make_deliverer: DelivererFactory,
    repos: Repositories,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    slack_fake.faults.error(
        "chat.postMessage", "invalid_blocks", errors=["must be less than 3001 characters"]
    )
    item = await outbox.post("incident:I-1", message("hello"), channel=CHANNEL, owned_by=INCIDENT)
    await make_deliverer(client).run_once()
    [posted] = slack_fake.messages(CHANNEL)
    assert posted.blocks == [] and posted.text == "*hello*"  # the plain version of the blocks
    stored = await repos.outbox.get(item)
    assert stored is not None and stored.status is OutboxStatus.DELIVERED
    assert "invalid_blocks" in caplog.text and "plain-text version" in caplog.text


async def test_rate_limited_post_is_retried_by_the_client_after_retry_after(
    slack_fake: SlackFake,
    outbox: SlackOutbox,
    make_deliverer: DelivererFactory,
    repos: Repositories,
    clock: FakeClock,
    make_web_client: Callable[[BotConfig], AsyncWebClient],
) -> None:
    retrying = make_web_client(config(slack_fake.api_url, rate_limit_retries=2))
    slack_fake.faults.rate_limit("chat.postMessage", times=1, retry_after=1)
    await outbox.post("incident:I-1", message("after 429"), channel=CHANNEL, owned_by=INCIDENT)
    assert await make_deliverer(retrying).run_once() == 1
    assert [m.text for m in slack_fake.messages(CHANNEL)] == ["after 429"]
    calls = slack_fake.calls("chat.postMessage")
    assert [c.status for c in calls] == [429, 200]


async def test_rate_limit_beyond_the_client_retries_waits_for_retry_after_in_the_outbox(
    slack_fake: SlackFake,
    client: AsyncWebClient,
    outbox: SlackOutbox,
    make_deliverer: DelivererFactory,
    repos: Repositories,
    clock: FakeClock,
) -> None:
    slack_fake.faults.rate_limit("chat.postMessage", times=1, retry_after=7)
    item = await outbox.post("incident:I-1", message("later"), channel=CHANNEL, owned_by=INCIDENT)
    deliverer = make_deliverer(client)
    assert await deliverer.run_once() == 0
    stored = await repos.outbox.get(item)
    assert stored is not None and stored.status is OutboxStatus.PENDING
    assert stored.next_attempt_at == clock.now() + timedelta(seconds=7)
    clock.advance(6)
    assert await deliverer.run_once() == 0  # not due yet
    clock.advance(1)
    assert await deliverer.run_once() == 1
    assert [m.text for m in slack_fake.messages(CHANNEL)] == ["later"]


async def test_server_errors_are_retried_until_slack_accepts(
    slack_fake: SlackFake,
    client: AsyncWebClient,
    outbox: SlackOutbox,
    make_deliverer: DelivererFactory,
    repos: Repositories,
    clock: FakeClock,
) -> None:
    slack_fake.faults.server_error("chat.postMessage", times=4, status=503)
    item = await outbox.post(
        "incident:I-1", message("eventually"), channel=CHANNEL, owned_by=INCIDENT
    )
    await drain(make_deliverer(client), clock, rounds=6)
    stored = await repos.outbox.get(item)
    assert stored is not None and stored.status is OutboxStatus.DELIVERED and stored.attempts == 5
    assert [m.text for m in slack_fake.messages(CHANNEL)] == ["eventually"]


async def test_messages_owed_while_slack_is_unreachable_are_delivered_after_a_restart(
    slack_fake: SlackFake,
    make_slack_fake: Callable[..., Awaitable[SlackFake]],
    outbox: SlackOutbox,
    make_deliverer: DelivererFactory,
    repos: Repositories,
    clock: FakeClock,
    make_web_client: Callable[[BotConfig], AsyncWebClient],
) -> None:
    gone = await make_slack_fake()
    dead_url = gone.api_url
    await gone.stop()  # nothing listens there any more
    unreachable = make_web_client(config(dead_url))
    key = key_for_incident("I-1")
    await outbox.post(key, message("parent"), channel=CHANNEL, owned_by=INCIDENT)
    await outbox.post(key, message("reply"), channel=CHANNEL, thread_of=INCIDENT)
    first = make_deliverer(unreachable)
    for _ in range(3):
        assert await first.run_once() == 0
        clock.advance(timedelta(minutes=5))
    assert await repos.outbox.depth() == 2
    # "Restart": a new deliverer on the same database, Slack reachable again.
    second = make_deliverer(make_web_client(config(slack_fake.api_url)))
    await drain(second, clock)
    [parent] = slack_fake.messages(CHANNEL)
    assert parent.text == "parent"
    assert [m.text for m in slack_fake.thread(CHANNEL, parent.ts)] == ["reply"]


async def test_a_message_that_cannot_be_edited_is_posted_anew(
    slack_fake: SlackFake,
    client: AsyncWebClient,
    outbox: SlackOutbox,
    make_deliverer: DelivererFactory,
    repos: Repositories,
    clock: FakeClock,
) -> None:
    deliverer = make_deliverer(client)
    key = key_for_incident("I-1")
    await outbox.post(key, message("v1"), channel=CHANNEL, owned_by=INCIDENT)
    await drain(deliverer, clock, rounds=1)
    [first] = slack_fake.messages(CHANNEL)
    await client.chat_delete(channel=CHANNEL, ts=first.ts)
    await outbox.update(key, message("v2"), target=INCIDENT, channel=CHANNEL)
    await drain(deliverer, clock, rounds=1)
    [again] = slack_fake.messages(CHANNEL)
    assert again.text == "v2" and again.ts != first.ts
    ref = await repos.slack_refs.get(OwnerKind.INCIDENT, "I-1")
    assert ref is not None and ref.ts == again.ts


async def test_a_post_already_made_before_a_crash_is_edited_not_duplicated(
    slack_fake: SlackFake,
    client: AsyncWebClient,
    outbox: SlackOutbox,
    make_deliverer: DelivererFactory,
    repos: Repositories,
    clock: FakeClock,
) -> None:
    deliverer = make_deliverer(client)
    await outbox.post("incident:I-1", message("v1"), channel=CHANNEL, owned_by=INCIDENT)
    await drain(deliverer, clock, rounds=1)
    # The same post again (as if the process died after Slack accepted it, before bookkeeping).
    await outbox.post("incident:I-1", message("v1 again"), channel=CHANNEL, owned_by=INCIDENT)
    await drain(deliverer, clock, rounds=1)
    [only] = slack_fake.messages(CHANNEL)
    assert only.text == "v1 again"


async def test_permanent_errors_give_up_after_max_attempts(
    slack_fake: SlackFake,
    client: AsyncWebClient,
    outbox: SlackOutbox,
    make_deliverer: DelivererFactory,
    repos: Repositories,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    item = await outbox.post("incident:I-1", message("x"), channel="C0NOWHERE", owned_by=INCIDENT)
    await drain(make_deliverer(client, max_attempts=3), clock, rounds=5)
    stored = await repos.outbox.get(item)
    assert stored is not None and stored.status is OutboxStatus.DEAD
    assert stored.attempts == 3 and stored.last_error == "slack: channel_not_found"
    assert "given up after 3 attempts" in caplog.text


async def test_the_background_loop_delivers_when_woken(
    slack_fake: SlackFake,
    client: AsyncWebClient,
    repos: Repositories,
) -> None:
    from engine.clock import SystemClock

    deliverer = Deliverer(repos.outbox, repos.slack_refs, client, SystemClock(), poll_interval=30)
    writer = SlackOutbox(repos.outbox, SystemClock(), wake=deliverer.wake)
    await deliverer.start()
    try:
        await writer.post("incident:I-1", message("now"), channel=CHANNEL, owned_by=INCIDENT)
        await slack_fake.wait_for(lambda: slack_fake.messages(CHANNEL), timeout=5)
    finally:
        await deliverer.stop()
    assert [m.text for m in slack_fake.messages(CHANNEL)] == ["now"]


async def test_a_malformed_item_is_given_up_without_blocking_others(
    slack_fake: SlackFake,
    client: AsyncWebClient,
    outbox: SlackOutbox,
    make_deliverer: DelivererFactory,
    repos: Repositories,
    clock: FakeClock,
) -> None:
    broken = await repos.outbox.enqueue("slack", "incident:I-1", {"op": "post"}, now=clock.now())
    await outbox.post("incident:I-2", message("fine"), channel=CHANNEL, owned_by=INCIDENT)
    await drain(make_deliverer(client, max_attempts=2), clock, rounds=3)
    stored = await repos.outbox.get(broken)
    assert stored is not None and stored.status is OutboxStatus.DEAD
    assert [m.text for m in slack_fake.messages(CHANNEL)] == ["fine"]


# --------------------------------------------------------------------------- lost answers
# Slack stored the post, but its answer never came back: the message must exist once.

PROPOSAL = owner(OwnerKind.PROPOSAL, "P-1")


def card(text: str, *, buttons: bool = True):
    """A proposal-like message: Approve/Reject buttons while it waits."""
    blocks = [section(f"*{text}*")]
    if buttons:
        blocks.append(
            actions(
                "approval",
                [
                    button("Approve", action_id="approve", value="P-1"),
                    button("Reject", action_id="reject", value="P-1"),
                ],
            )
        )
    return rendered(text, blocks)


def retrying_config(api_url: str) -> BotConfig:
    """The client as `tikvops run` builds it: connection and 5xx retries on."""
    return config(api_url, connection_retries=2, server_error_retries=2)


def everything(fake: SlackFake, channel: str = CHANNEL) -> list[Message]:
    """Every message in the channel: top level and thread replies."""
    out: list[Message] = []
    for top in fake.messages(channel):
        out.append(top)
        out += [m for m in fake.thread(channel, top.ts) if m.ts != top.ts]
    return out


@pytest.mark.parametrize(
    "lost",
    [
        pytest.param({"how": "disconnect"}, id="connection-dropped"),
        pytest.param({"how": "server_error", "status": 503}, id="gateway-503"),
        pytest.param({"how": "late", "delay": 4.0}, id="answer-too-late"),
    ],
)
async def test_a_thread_reply_whose_answer_was_lost_appears_once(
    slack_fake: SlackFake,
    outbox: SlackOutbox,
    make_deliverer: DelivererFactory,
    repos: Repositories,
    clock: FakeClock,
    lost: dict[str, object],
) -> None:
    client = build_web_client(retrying_config(slack_fake.api_url), timeout=1)
    try:
        deliverer = make_deliverer(client)
        key = key_for_incident("I-1")
        await outbox.post(key, message("incident"), channel=CHANNEL, owned_by=INCIDENT)
        await drain(deliverer, clock, rounds=1)
        slack_fake.faults.lose_answer("chat.postMessage", **lost)  # type: ignore[arg-type]
        reply = await outbox.post(key, message("diagnosis"), channel=CHANNEL, thread_of=INCIDENT)
        await drain(deliverer, clock, rounds=4)
    finally:
        await close_web_client(client)
    [parent] = slack_fake.messages(CHANNEL)
    replies = [m for m in slack_fake.thread(CHANNEL, parent.ts) if m.ts != parent.ts]
    assert [m.text for m in replies] == ["diagnosis"]
    assert [c.lost for c in slack_fake.calls("chat.postMessage")] == [False, True]
    stored = await repos.outbox.get(reply)
    assert stored is not None and stored.status is OutboxStatus.DELIVERED
    assert stored.result is not None and stored.result["ts"] == replies[0].ts
    assert stored.result.get("recovered") is True


async def test_a_proposal_whose_answer_was_lost_has_one_parent_and_its_edits_go_there(
    slack_fake: SlackFake,
    outbox: SlackOutbox,
    make_deliverer: DelivererFactory,
    repos: Repositories,
    clock: FakeClock,
    make_web_client: Callable[[BotConfig], AsyncWebClient],
) -> None:
    deliverer = make_deliverer(make_web_client(retrying_config(slack_fake.api_url)))
    slack_fake.faults.lose_answer("chat.postMessage")
    key = "proposal:P-1"
    item = await outbox.post(key, card("drain store 4?"), channel=CHANNEL, owned_by=PROPOSAL)
    await outbox.update(key, card("approved", buttons=False), target=PROPOSAL, channel=CHANNEL)
    await drain(deliverer, clock, rounds=4)
    [parent] = slack_fake.messages(CHANNEL)
    assert parent.text == "approved" and parent.action_ids() == [] and parent.edited
    ref = await repos.slack_refs.get(OwnerKind.PROPOSAL, "P-1")
    assert ref is not None and ref.ts == parent.ts
    stored = await repos.outbox.get(item)
    assert stored is not None and stored.status is OutboxStatus.DELIVERED
    assert stored.result is not None and stored.result["ts"] == parent.ts
    # A later edit goes to the same single message.
    await outbox.update(key, card("succeeded", buttons=False), target=PROPOSAL, channel=CHANNEL)
    await drain(deliverer, clock, rounds=1)
    assert [m.text for m in slack_fake.messages(CHANNEL)] == ["succeeded"]
    assert await repos.outbox.depth() == 0


async def test_a_post_in_flight_when_the_bot_died_is_found_not_posted_again(
    slack_fake: SlackFake,
    outbox: SlackOutbox,
    make_deliverer: DelivererFactory,
    repos: Repositories,
    clock: FakeClock,
    make_web_client: Callable[[BotConfig], AsyncWebClient],
) -> None:
    """Slack stored the post, then the process was killed before it heard the answer: the
    item was never marked, so the next process must find the message, not post it again."""
    slack_fake.faults.lose_answer("chat.postMessage", how="late", delay=30.0)
    item = await outbox.post("proposal:P-1", card("drain?"), channel=CHANNEL, owned_by=PROPOSAL)
    first = make_deliverer(make_web_client(config(slack_fake.api_url)))
    first.stop_timeout = 0.1
    await first.start()
    await slack_fake.wait_for(lambda: slack_fake.messages(CHANNEL), timeout=5)
    await first.stop()  # killed mid-send: the post is cut off before its answer
    pending = await repos.outbox.get(item)
    assert pending is not None and pending.status is OutboxStatus.PENDING
    assert pending.attempts == 0  # nothing recorded the send
    clock.advance(timedelta(seconds=30))
    second = make_deliverer(make_web_client(config(slack_fake.api_url)))
    await drain(second, clock, rounds=2)
    [only] = slack_fake.messages(CHANNEL)
    assert only.action_ids() == ["approve", "reject"]
    ref = await repos.slack_refs.get(OwnerKind.PROPOSAL, "P-1")
    assert ref is not None and ref.ts == only.ts
    assert len(slack_fake.calls("chat.postMessage")) == 1


async def test_when_slack_is_unreachable_a_post_is_retried_and_delivered_once_after_recovery(
    make_slack_fake: Callable[..., Awaitable[SlackFake]],
    outbox: SlackOutbox,
    make_deliverer: DelivererFactory,
    repos: Repositories,
    clock: FakeClock,
    make_web_client: Callable[[BotConfig], AsyncWebClient],
) -> None:
    slack = await make_slack_fake()
    port = slack.port
    deliverer = make_deliverer(make_web_client(retrying_config(slack.api_url)))
    await outbox.post(
        key_for_incident("I-1"), message("parent"), channel=CHANNEL, owned_by=INCIDENT
    )
    await drain(deliverer, clock, rounds=1)
    await slack.stop()  # Slack unreachable: connections refused
    reply = await outbox.post(
        key_for_incident("I-1"), message("reply"), channel=CHANNEL, thread_of=INCIDENT
    )
    for _ in range(3):
        assert await deliverer.run_once() == 0
        clock.advance(timedelta(minutes=5))
    waiting = await repos.outbox.get(reply)
    assert waiting is not None and waiting.status is OutboxStatus.PENDING
    assert waiting.attempts == 3 and "could not be reached" in (waiting.last_error or "")
    await slack.start(port=port)  # back, on the same address
    await drain(deliverer, clock, rounds=2)
    [parent] = slack.messages(CHANNEL)
    assert [m.text for m in slack.thread(CHANNEL, parent.ts)] == ["reply"]
    stored = await repos.outbox.get(reply)
    assert stored is not None and stored.status is OutboxStatus.DELIVERED
    assert len([c for c in slack.calls("chat.postMessage") if c.ok]) == 2


async def test_a_second_copy_is_made_inactive_and_points_at_the_current_one(
    make_slack_fake: Callable[..., Awaitable[SlackFake]],
    outbox: SlackOutbox,
    make_deliverer: DelivererFactory,
    repos: Repositories,
    clock: FakeClock,
    make_web_client: Callable[[BotConfig], AsyncWebClient],
) -> None:
    """The channel is configured by name, so the first retry cannot look the message up
    (history needs the channel ID) and posts again; the check after posting finds both copies:
    the older stays the proposal's message, the other loses its buttons and says where to go."""
    slack = await make_slack_fake()
    deliverer = make_deliverer(make_web_client(retrying_config(slack.api_url)))
    slack.faults.lose_answer("chat.postMessage")
    key = "proposal:P-1"
    await outbox.post(key, card("drain store 4?"), channel="tikv-ops", owned_by=PROPOSAL)
    await drain(deliverer, clock, rounds=3)
    first, second = slack.messages(CHANNEL)
    assert first.action_ids() == ["approve", "reject"]
    assert second.action_ids() == []
    assert "inactive" in second.text.lower() or "inactive" in str(second.blocks)
    link = f"p{first.ts.replace('.', '')}"
    assert link in str(second.blocks)  # the note links to the current message
    assert second.metadata is not None and second.metadata["event_type"] == "tikvops_superseded"
    ref = await repos.slack_refs.get(OwnerKind.PROPOSAL, "P-1")
    assert ref is not None and ref.ts == first.ts
    await outbox.update(key, card("approved", buttons=False), target=PROPOSAL, channel=CHANNEL)
    await drain(deliverer, clock, rounds=1)
    current, inactive = slack.messages(CHANNEL)
    assert current.text == "approved" and inactive.ts == second.ts
    assert inactive.action_ids() == [] and len(inactive.edits) == 1


async def test_without_the_history_scope_the_post_still_goes_out_and_the_log_says_why(
    make_slack_fake: Callable[..., Awaitable[SlackFake]],
    outbox: SlackOutbox,
    make_deliverer: DelivererFactory,
    repos: Repositories,
    clock: FakeClock,
    make_web_client: Callable[[BotConfig], AsyncWebClient],
    caplog: pytest.LogCaptureFixture,
) -> None:
    slack = await make_slack_fake(scopes=("chat:write",))
    deliverer = make_deliverer(make_web_client(config(slack.api_url)))
    slack.faults.lose_answer("chat.postMessage")
    item = await outbox.post("incident:I-1", message("x"), channel=CHANNEL, owned_by=INCIDENT)
    await drain(deliverer, clock, rounds=3)
    stored = await repos.outbox.get(item)
    assert stored is not None and stored.status is OutboxStatus.DELIVERED
    assert "missing_scope" in caplog.text and "channels:history" in caplog.text


async def test_the_client_never_retries_a_post_by_itself_but_retries_reads(
    slack_fake: SlackFake, make_web_client: Callable[[BotConfig], AsyncWebClient]
) -> None:
    client = make_web_client(retrying_config(slack_fake.api_url))
    slack_fake.faults.lose_answer("chat.postMessage")
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await client.chat_postMessage(channel=CHANNEL, text="once")
    slack_fake.faults.server_error("chat.postMessage", status=503)
    with pytest.raises(SlackApiError):
        await client.chat_postMessage(channel=CHANNEL, text="refused")
    assert [m.text for m in slack_fake.messages(CHANNEL)] == ["once"]
    slack_fake.faults.lose_answer("users.info")
    slack_fake.faults.server_error("chat.update", status=503)
    assert (await client.users_info(user="U0ALICE"))["ok"]
    ts = slack_fake.messages(CHANNEL)[0].ts
    assert (await client.chat_update(channel=CHANNEL, ts=ts, text="edited"))["ok"]
    assert [c.status for c in slack_fake.calls("chat.update")] == [503, 200]
