"""Exactly once through Slack: the whole bot (`tikvops run` in a child process) behind the Slack
stand-in. 100 approvers clicking Approve on one proposal at once, envelopes delivered twice and
redelivered, and two bot processes sharing one database (Slack spreading the clicks over both
sockets; each owed message claimed by one of them, so one proposal card) all lead to one
approval and one PD write; every click is acknowledged, and every
clicker but the winner is told why nothing more happened. The engine-level variants are in
`test_exactly_once.py`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

from bot import callbacks
from bot.client import build_web_client, close_web_client
from bot.outbox import Deliverer
from bot.queue import SlackOutbox
from bot.render.kit import rendered, section
from engine.clock import FakeClock
from engine.model import ProposalState
from sim.server import SimServer
from slackfake.server import SlackFake
from storage import Database, Repositories
from tests.plugins.sim import SimFactory
from tests.reliability.support import (
    ALICE,
    BOB,
    CHANNEL,
    BotChild,
    Stored,
    clock_running,
    pd_writes,
    proposal_message,
    wait_db,
)
from tikvops.settings import load_settings
from tikvops.stack import bot_config

CLICKERS = [f"U{n:03d}" for n in range(100)]
USERS = {**{u: f"user{u[1:]}" for u in CLICKERS}, ALICE: "alice", BOB: "bob"}
APPROVERS = ",".join([ALICE, *CLICKERS])

MakeFake = Callable[..., Awaitable[SlackFake]]


def settled(s: Stored) -> bool:
    return (
        s.proposal is not None
        and s.proposal.state is ProposalState.SUCCEEDED
        and s.outbox_pending == 0
    )


async def click_all(fake: SlackFake, ts: str, users: list[str]) -> None:
    acks = await asyncio.gather(
        *(
            fake.click(user=u, channel=CHANNEL, message_ts=ts, action_id=callbacks.APPROVE)
            for u in users
        )
    )
    assert len({a.envelope_id for a in acks}) == len(users)  # every click acknowledged


def writes(sim: SimServer) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in pd_writes(sim)]


async def test_a_hundred_concurrent_clicks_make_one_write(
    sim_factory: SimFactory, make_slack_fake: MakeFake, tmp_path: Path
) -> None:
    sim = await sim_factory(stores=4)
    fake = await make_slack_fake(users=USERS)
    db = tmp_path / "tikvops.db"
    async with clock_running(sim), BotChild.start(sim, fake, db, approvers=APPROVERS):
        await fake.slash_command(user=BOB, channel=CHANNEL, text="drain 4")
        message = await proposal_message(fake)
        await click_all(fake, message.ts, CLICKERS)
        final = await wait_db(db, settled)
        told = await fake.wait_for(
            lambda: (
                len({e.user for e in fake.ephemerals(channel=CHANNEL)} & set(CLICKERS)) >= 99
                and fake.ephemerals(channel=CHANNEL)
            ),
            timeout=30,
        )
    assert writes(sim) == [("POST", "/pd/api/v1/schedulers")]
    assert final.proposal is not None and len(final.proposal.approvals) == 1
    assert final.proposal.approvals[0].by.id in CLICKERS
    assert final.actions.count("proposal.approve") == 1
    assert final.actions.count("proposal.start") == 1
    assert final.actions.count("proposal.approve.refused") == 99
    assert len({e.user for e in told} & set(CLICKERS)) >= 99


async def test_duplicated_and_redelivered_envelopes_apply_once(
    sim_factory: SimFactory, slack_fake: SlackFake, tmp_path: Path
) -> None:
    sim = await sim_factory(stores=4)
    db = tmp_path / "tikvops.db"
    async with clock_running(sim), BotChild.start(sim, slack_fake, db):
        await slack_fake.slash_command(user=BOB, channel=CHANNEL, text="drain 4")
        message = await proposal_message(slack_fake)
        slack_fake.faults.duplicate_next_envelope()  # the same frame twice on the socket
        ack = await slack_fake.click(
            user=ALICE, channel=CHANNEL, message_ts=message.ts, action_id=callbacks.APPROVE
        )
        await asyncio.gather(
            *(slack_fake.redeliver(ack.envelope_id, reason="timeout") for _ in range(5))
        )
        final = await wait_db(db, settled)
        # and a redelivery long after the run changes nothing either
        await slack_fake.redeliver(ack.envelope_id, reason="timeout")
        await asyncio.sleep(0.3)
    assert len(slack_fake.acks_for(ack.envelope_id)) >= 7
    assert writes(sim) == [("POST", "/pd/api/v1/schedulers")]
    assert final.actions.count("proposal.approve") == 1
    assert final.actions.count("proposal.start") == 1


async def test_two_bot_processes_on_one_database_make_one_write(
    sim_factory: SimFactory, make_slack_fake: MakeFake, tmp_path: Path
) -> None:
    sim = await sim_factory(stores=4)
    fake = await make_slack_fake(users=USERS)
    db = tmp_path / "tikvops.db"
    # Slack (and the stand-in) deals envelopes out over the app's open sockets in turn.
    async with (
        clock_running(sim),
        BotChild.start(sim, fake, db, approvers=APPROVERS) as first,
        BotChild.start(sim, fake, db, approvers=APPROVERS) as second,
    ):
        await fake.slash_command(user=BOB, channel=CHANNEL, text="drain 4")
        message = await proposal_message(fake)
        await click_all(fake, message.ts, CLICKERS)
        final = await wait_db(db, settled)
        served = {d.connection_id for d in fake.deliveries}
        assert first.process.returncode is None and second.process.returncode is None
        # Both processes deliver owed messages, each claimed by one of them: one card, which
        # is the proposal's own message (a second copy's clicks would all be refused).
        assert message.metadata is not None
        cards = [m for m in fake.messages(CHANNEL) if m.metadata == message.metadata]
        assert [m.ts for m in cards] == [message.ts]
    assert len(served) == 2  # both processes handled clicks
    assert writes(sim) == [("POST", "/pd/api/v1/schedulers")]
    assert final.actions.count("proposal.approve") == 1
    assert final.actions.count("proposal.start") == 1
    assert final.actions.count("proposal.approve.refused") == 99


async def test_two_processes_on_one_sqlite_file_send_an_owed_message_once(
    slack_fake: SlackFake, tmp_path: Path
) -> None:
    """The cause of the flaky two-process test above: each bot process's deliverer read the due
    items of the shared file without claiming them, so both could post the proposal card (the
    clicks on the copy that is not the proposal's own message are all refused). The running bot
    claims owed messages with a lease on SQLite too: two deliverers configured as `tikvops run`
    configures them, racing for one card, post it once."""
    db_file = tmp_path / "tikvops.db"
    settings = load_settings(
        env_file=None,
        db=db_file,
        pd_url="http://127.0.0.1:1",
        slack_bot_token=slack_fake.workspace.bot_token,
        slack_app_token=slack_fake.workspace.app_token,
        slack_api_url=slack_fake.api_url,
        channel=CHANNEL,
    )
    config = bot_config(settings)
    assert config.outbox_lease is not None
    clock = FakeClock()
    first, second = await Database.open(db_file), await Database.open(db_file)
    client = build_web_client(config)
    try:
        card = rendered("P-1 drain 4", [section("*P-1* drain 4")])
        await SlackOutbox(Repositories.on(first).outbox, clock).post(
            "proposal:P-1", card, channel=CHANNEL
        )
        deliverers = [
            Deliverer(
                Repositories.on(db).outbox,
                Repositories.on(db).slack_refs,
                client,
                clock,
                lease=timedelta(seconds=config.outbox_lease),
            )
            for db in (first, second)
        ]
        sent = await asyncio.gather(*(d.run_once() for d in deliverers))
    finally:
        await close_web_client(client)
        await first.close()
        await second.close()
    assert sorted(sent) == [0, 1]
    assert [m.text for m in slack_fake.messages(CHANNEL)] == ["P-1 drain 4"]
