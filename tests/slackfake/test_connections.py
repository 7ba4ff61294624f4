"""Several Socket Mode connections for one app (one per replica of a bot), against real
slack_bolt apps: each envelope goes to exactly one connection, in turn; an Events API envelope
that is not acknowledged is redelivered to another connection with `retry_attempt`, as Slack
does; slash commands and clicks are not redelivered."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncAck, AsyncApp

from slackfake import payloads
from slackfake.errors import AckTimeout
from slackfake.server import SlackFake
from tests.slackfake.conftest import APP_TOKEN, web_client

MakeFake = Callable[..., Awaitable[SlackFake]]


def mention_event() -> dict[str, Any]:
    return payloads.app_mention(
        user_id="U0BOB",
        text="<@U0TIKVBOT> status",
        ts="1716900100.000200",
        channel_id="C0OPS",
        team_id="T0TIKV",
        thread_ts=None,
    )


class Replica:
    """One Bolt app with its own Socket Mode connection; records what its listeners ran."""

    def __init__(
        self, fake: SlackFake, name: str, *, mentions: bool = True, commands: bool = True
    ) -> None:
        self.name = name
        self.commands: list[str] = []
        self.mentions: list[tuple[str, int]] = []  # (event_id, retry_attempt)
        self.app = AsyncApp(client=web_client(fake))
        self.handler: AsyncSocketModeHandler | None = None

        if commands:

            @self.app.command("/tikv")
            async def tikv(ack: AsyncAck, command: dict[str, Any]) -> None:
                await ack()
                self.commands.append(command["text"])

        if mentions:

            @self.app.event("app_mention")
            async def mention(ack: AsyncAck, body: dict[str, Any], req: Any) -> None:
                await ack()
                retry = req.headers.get("x-slack-retry-num") or ["0"]
                attempt = retry[0] if isinstance(retry, list) else retry
                self.mentions.append((body["event_id"], int(attempt)))

    async def connect(self) -> None:
        self.handler = AsyncSocketModeHandler(self.app, APP_TOKEN, ping_interval=1)
        await self.handler.connect_async()

    async def close(self) -> None:
        if self.handler is not None:
            await self.handler.close_async()


@asynccontextmanager
async def replicas(fake: SlackFake, *specs: dict[str, Any]) -> AsyncIterator[list[Replica]]:
    """Connect one Bolt app per spec, one after the other (connection ids 1, 2, ...)."""
    started: list[Replica] = []
    try:
        for number, spec in enumerate(specs, start=1):
            replica = Replica(fake, f"r{number}", **spec)
            started.append(replica)
            await replica.connect()
            await fake.wait_for(lambda n=number: len(fake.connection_ids()) == n)
        yield started
    finally:
        for replica in started:
            await replica.close()


async def test_each_envelope_goes_to_exactly_one_connection_in_turn(
    make_slack_fake: MakeFake,
) -> None:
    fake = await make_slack_fake()
    async with replicas(fake, {}, {}, {}) as three:
        assert fake.connection_ids() == [1, 2, 3]
        texts = [f"status {n}" for n in range(30)]
        acks = await asyncio.gather(
            *(fake.slash_command(user="U0ALICE", text=text) for text in texts)
        )
        await fake.wait_for(lambda: sum(len(r.commands) for r in three) == len(texts))
    ran = [text for replica in three for text in replica.commands]
    assert sorted(ran) == sorted(texts), "every command ran once, on one replica"
    assert Counter(a.connection_id for a in acks) == {1: 10, 2: 10, 3: 10}
    assert fake.deliveries_by_connection() == {1: 10, 2: 10, 3: 10}
    assert all(len(r.commands) == 10 for r in three)
    assert fake.ack_timeouts == []


async def test_hello_counts_the_app_connections(make_slack_fake: MakeFake) -> None:
    fake = await make_slack_fake()
    async with replicas(fake, {}, {}):
        assert fake.active_sockets == 2
        assert fake.connections_opened == 2


async def test_unacknowledged_event_is_redelivered_to_another_connection(
    make_slack_fake: MakeFake,
) -> None:
    fake = await make_slack_fake(ack_timeout=0.5, event_retries=3)
    # The first replica has no app_mention listener: Bolt sends no ack (an unhealthy replica).
    async with replicas(fake, {"mentions": False}, {}) as (_deaf, healthy):
        ack = await fake.push_event(mention_event(), via=1)
        await fake.wait_for(lambda: healthy.mentions)
    first, second = (d for d in fake.deliveries if d.envelope_id == ack.envelope_id)
    assert (first.connection_id, second.connection_id) == (1, 2)
    assert (first.envelope["retry_attempt"], first.envelope["retry_reason"]) == (0, "")
    assert (second.envelope["retry_attempt"], second.envelope["retry_reason"]) == (1, "timeout")
    assert second.envelope["payload"]["event_id"] == first.envelope["payload"]["event_id"]
    assert ack.connection_id == 2
    assert healthy.mentions == [(first.envelope["payload"]["event_id"], 1)]
    assert fake.ack_timeouts == [ack.envelope_id]


async def test_event_retries_stop_after_the_limit(make_slack_fake: MakeFake) -> None:
    fake = await make_slack_fake(ack_timeout=0.3, event_retries=2)
    async with replicas(fake, {"mentions": False}, {"mentions": False}):
        with pytest.raises(AckTimeout) as info:
            await fake.push_event(mention_event())
    sent = [d for d in fake.deliveries if d.envelope_id == info.value.envelope_id]
    assert [d.envelope["retry_attempt"] for d in sent] == [0, 1, 2]
    assert [d.connection_id for d in sent] == [1, 2, 1]


async def test_a_command_is_not_redelivered(make_slack_fake: MakeFake) -> None:
    """Slack shows the user an error for an unacknowledged command; it does not retry it."""
    fake = await make_slack_fake(ack_timeout=0.3, event_retries=3)
    # The first replica has no /tikv listener: Bolt sends no ack.
    async with replicas(fake, {"commands": False}, {}) as (deaf, healthy):
        with pytest.raises(AckTimeout):
            await fake.slash_command(user="U0ALICE", text="drain 4", via=1)
    assert [d.connection_id for d in fake.deliveries] == [1]
    assert healthy.commands == [] and deaf.commands == []
    assert fake.notices("U0ALICE"), "Slack tells the user the command failed"


async def test_a_closed_replica_gets_nothing_more(make_slack_fake: MakeFake) -> None:
    fake = await make_slack_fake()
    async with replicas(fake, {}, {}) as (first, second):
        await first.close()
        await fake.wait_for(lambda: fake.connection_ids() == [2])
        acks = [await fake.slash_command(user="U0ALICE", text=f"s{n}") for n in range(4)]
    assert {a.connection_id for a in acks} == {2}
    assert second.commands == ["s0", "s1", "s2", "s3"]
    assert first.commands == []
