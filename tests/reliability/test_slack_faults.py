"""Slack faults: rate-limit storms, 5xx answers, `invalid_blocks` refusals and the socket
dropping mid-envelope, against the whole bot as `tikvops run` builds it
(`tikvops.stack.open_stack`, in this process) behind the Slack stand-in. Nothing is lost and
nothing crashes: every message the bot owes (each item its outbox ever held) is delivered
once the fault is over, each post appears in the channel exactly once, and a click whose ack
was lost is applied once when Slack redelivers it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from bot import callbacks
from engine.model import Identity, OwnerKind, ProposalState
from engine.results import ProposalCreated
from sim.server import SimServer
from slackfake.errors import AckTimeout
from slackfake.server import SlackFake
from storage import Database
from tests.engine.words import handle_text
from tests.plugins.sim import SimFactory
from tests.reliability.support import ALICE, CHANNEL, clock_running, pd_writes, proposal_message
from tikvops.settings import Settings
from tikvops.stack import SlackOptions, Stack, open_stack

BOB = Identity.slack("U0BOB", name="bob")
FAST = SlackOptions(
    outbox_poll=0.05, outbox_backoff_base=0.05, outbox_backoff_cap=0.5, ping_interval=0.5
)
MakeFake = Callable[..., Awaitable[SlackFake]]


def settings(sim: SimServer, fake: SlackFake, db: Path) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        pd_url=sim.pd_url,
        db=db,
        slack_bot_token=fake.workspace.bot_token,
        slack_app_token=fake.workspace.app_token,
        slack_api_url=fake.api_url,
        slack_app_id=fake.workspace.app_id,
        slack_team_id=fake.workspace.team_id,
        channel=CHANNEL,
        approvers=[ALICE],
        poll_interval=3600,
        health_addr="127.0.0.1:0",
        max_drained_stores=5,
        anthropic_api_key=None,
    )


@asynccontextmanager
async def running(sim: SimServer, fake: SlackFake, db: Path) -> AsyncIterator[Stack]:
    async with AsyncExitStack() as exits:
        stack = await exits.enter_async_context(
            open_stack(
                settings(sim, fake, db),
                slack=FAST,
                serve_health=False,
                engine_options={"poll_intervals": {"drain": 0.05}},
            )
        )
        await fake.wait_for_socket(timeout=10)
        yield stack


async def outbox_counts(db_path: Path) -> dict[str, int]:
    db = await Database.open(db_path)
    try:
        rows = await db.fetchall(
            "SELECT status, COUNT(*) FROM outbox WHERE kind = 'slack' GROUP BY status"
        )
        posts = await db.fetchone(
            "SELECT COUNT(*) FROM outbox WHERE json_extract(payload, '$.op') = 'post'"
        )
        counts = {str(r[0]): int(r[1]) for r in rows}
        counts["posts"] = int(posts[0]) if posts else 0
        return counts
    finally:
        await db.close()


def delivered_posts(fake: SlackFake) -> int:
    """Posts Slack accepted (each one is a message in the channel or a thread)."""
    return sum(1 for call in fake.calls("chat.postMessage") if call.ok)


def stored_messages(fake: SlackFake) -> int:
    """Messages the stand-in holds: top level and thread replies."""
    count = 0
    for message in fake.messages(CHANNEL):
        count += 1 + sum(1 for m in fake.thread(CHANNEL, message.ts) if m.ts != message.ts)
    return count


async def owe_messages(stack: Stack, sim: SimServer, stores: range) -> None:
    """Make the bot owe Slack messages: proposals, one approved and executed."""
    for store in stores:
        created = await handle_text(stack.engine, f"drain {store}", BOB)
        assert isinstance(created, ProposalCreated), created
    async with clock_running(sim, step=2.0):
        await stack.engine.approve("P-1", Identity.slack(ALICE, name="alice"))
        await stack.wait_idle()


async def all_delivered(db: Path, fake: SlackFake, stack: Stack | None = None) -> dict[str, int]:
    """The outbox's counts once nothing is pending. With `stack`, its work settles and every
    event written so far is rendered into the outbox first (the relay runs after a change
    commits: "nothing pending" alone can be seen before the last events are queued)."""
    if stack is not None:
        await stack.wait_idle()
        assert stack.bot is not None
        await stack.bot.relay.drain()

    async def done() -> dict[str, int] | None:
        counts = await outbox_counts(db)
        return counts if counts.get("pending", 0) == 0 else None

    counts: dict[str, int] = await fake.wait_for(done, timeout=60)
    return counts


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param({"rate_limit": ("*", 3, 1)}, id="429-storm"),
        pytest.param({"server_error": ("*", 5, 503)}, id="5xx"),
        pytest.param({"server_error": ("chat.postMessage", 4, 500)}, id="500-posts"),
        pytest.param({"error": ("chat.postMessage", "invalid_blocks", 3)}, id="invalid_blocks"),
        pytest.param({"error": ("chat.update", "invalid_blocks", 3)}, id="invalid_blocks-update"),
    ],
)
async def test_every_owed_message_is_delivered_after_the_fault(
    sim_factory: SimFactory, slack_fake: SlackFake, tmp_path: Path, fault: dict[str, Any]
) -> None:
    sim = await sim_factory(stores=6)
    db = tmp_path / "tikvops.db"
    async with running(sim, slack_fake, db) as stack:
        ((name, args),) = fault.items()
        getattr(slack_fake.faults, name)(*args)
        await owe_messages(stack, sim, range(2, 6))
        counts = await all_delivered(db, slack_fake, stack)
        assert stack.bot is not None and stack.bot.connected
        proposal = await stack.runtime.repos.proposals.get("P-1")
    owed = sum(v for k, v in counts.items() if k != "posts")
    assert counts.get("delivered", 0) == owed and "dead" not in counts
    assert counts["posts"] >= 5  # four proposals and the execution's replies at least
    assert delivered_posts(slack_fake) == counts["posts"]  # each post once, none lost
    assert stored_messages(slack_fake) == counts["posts"]
    assert proposal is not None and proposal.state is ProposalState.SUCCEEDED
    assert slack_fake.faults.pending == []  # the fault really happened


async def test_a_click_whose_ack_was_lost_is_applied_once_after_redelivery(
    sim_factory: SimFactory, slack_fake: SlackFake, tmp_path: Path
) -> None:
    sim = await sim_factory(stores=4)
    db = tmp_path / "tikvops.db"
    async with running(sim, slack_fake, db) as stack:
        created = await handle_text(stack.engine, "drain 4", BOB)
        assert isinstance(created, ProposalCreated)
        message = await proposal_message(slack_fake)
        slack_fake.faults.lose_next_ack()  # the socket drops right after the bot acks
        with pytest.raises(AckTimeout) as lost:
            await slack_fake.click(
                user=ALICE,
                channel=CHANNEL,
                message_ts=message.ts,
                action_id=callbacks.APPROVE,
                ack_timeout=2,
            )
        await slack_fake.wait_for_socket(timeout=20)  # the bot reconnects by itself
        async with clock_running(sim, step=2.0):
            await slack_fake.redeliver(lost.value.envelope_id, reason="timeout")
            await stack.wait_idle()
            slack_fake.faults.drop_socket()  # and once more, between envelopes
            await slack_fake.wait_for_socket(timeout=20)
            await stack.wait_idle()
        proposal = await stack.runtime.repos.proposals.get("P-1")
        await all_delivered(db, slack_fake, stack)
    assert proposal is not None and proposal.state is ProposalState.SUCCEEDED
    assert len(proposal.approvals) == 1
    assert len(pd_writes(sim)) == 1
    assert slack_fake.connections_opened >= 3


@pytest.mark.parametrize("how", ["disconnect", "server_error"])
async def test_posts_whose_answer_was_lost_appear_once(
    sim_factory: SimFactory, slack_fake: SlackFake, tmp_path: Path, how: str
) -> None:
    """Slack stores three posts but their answers are lost (the connection closes, or a
    gateway answers 503): the bot finds each message instead of posting it again, so every
    proposal has one message, and the approved one is edited in place."""
    sim = await sim_factory(stores=6)
    db = tmp_path / "tikvops.db"
    async with running(sim, slack_fake, db) as stack:
        slack_fake.faults.lose_answer("chat.postMessage", times=3, how=how)  # type: ignore[arg-type]
        await owe_messages(stack, sim, range(2, 6))
        counts = await all_delivered(db, slack_fake, stack)
        refs = stack.runtime.repos.slack_refs
        proposal_refs = [await refs.get(OwnerKind.PROPOSAL, f"P-{n}") for n in range(1, 5)]
        proposal = await stack.runtime.repos.proposals.get("P-1")
    assert slack_fake.faults.pending == []
    assert sum(1 for call in slack_fake.calls("chat.postMessage") if call.lost) == 3
    assert "dead" not in counts
    assert stored_messages(slack_fake) == counts["posts"]  # each post exactly once
    cards = slack_fake.messages(CHANNEL)
    assert len(cards) == 4  # one message per proposal
    assert sorted(r.ts for r in proposal_refs if r is not None) == [m.ts for m in cards]
    waiting = [m for m in cards if callbacks.APPROVE in m.action_ids()]
    assert len(waiting) == 3  # P-2..P-4; P-1 was approved and its card edited
    assert proposal is not None and proposal.state is ProposalState.SUCCEEDED
    [approved] = [m for m in cards if m.ts == proposal_refs[0].ts]  # type: ignore[union-attr]
    assert approved.edited and callbacks.APPROVE not in approved.action_ids()
