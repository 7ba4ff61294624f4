"""Crash anywhere, with Slack: the whole bot (`tikvops run`, in a child process) against the
simulator and the Slack stand-in in the test process is SIGKILLed at each step of a proposal's
life (proposed, approved, executing before the PD request, after it, verifying, and with
Slack messages still owed in the outbox), then started again. After the restart the proposal's
final state, the audit log and the Slack thread are right, and PD received the write at most
once (exactly once when the approval happened). Each test runs on SQLite and on PostgreSQL
(`db`). The engine-only variant is `test_crash_recovery.py`."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from bot import callbacks
from engine.model import ExecutionStatus, ProposalState
from sim.server import SimServer
from slackfake.server import SlackFake
from slackfake.store import Message
from storage import PostgresUrl
from tests.plugins.sim import SimFactory
from tests.reliability.support import (
    ALICE,
    BACKENDS,
    BOB,
    CHANNEL,
    BotChild,
    DbTarget,
    Stored,
    backend_target,
    clock_running,
    pd_writes,
    proposal_message,
    thread_text,
    wait_db,
)

EVICT = ("POST", "/pd/api/v1/schedulers")


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> DbTarget:
    """The bot's database: a SQLite file, or a fresh PostgreSQL database."""
    return backend_target(request, tmp_path)


def evict_posts(sim: SimServer) -> int:
    return sum(1 for r in pd_writes(sim) if (r.method, r.path) == EVICT)


def in_state(*states: ProposalState) -> object:
    def check(s: Stored) -> bool:
        return s.proposal is not None and s.proposal.state in states

    return check


async def propose(fake: SlackFake) -> Message:
    await fake.slash_command(user=BOB, channel=CHANNEL, text="drain 4")
    return await proposal_message(fake)


async def approve(fake: SlackFake, message: Message) -> None:
    await fake.click(
        user=ALICE, channel=CHANNEL, message_ts=message.ts, action_id=callbacks.APPROVE
    )


async def wait_thread(fake: SlackFake, parent: Message, needle: str) -> str:
    text: str = await fake.wait_for(
        lambda: (t := thread_text(fake, parent)) and needle in t and t, timeout=30
    )
    return text


def assert_audit_once(stored: Stored) -> None:
    assert stored.actions.count("proposal.created") == 1, stored.actions
    assert stored.actions.count("proposal.approve") == 1, stored.actions
    assert stored.actions.count("proposal.start") <= 1, stored.actions


async def test_killed_while_proposed_then_approved_after_restart(
    sim_factory: SimFactory, slack_fake: SlackFake, tmp_path: Path, db: DbTarget
) -> None:
    sim = await sim_factory(stores=4)
    async with clock_running(sim):
        async with BotChild.start(sim, slack_fake, db) as bot:
            message = await propose(slack_fake)
            await wait_db(db, in_state(ProposalState.PROPOSED))
            await bot.kill()
        assert pd_writes(sim) == []
        async with BotChild.start(sim, slack_fake, db) as again:
            await approve(slack_fake, message)
            final = await wait_db(db, in_state(ProposalState.SUCCEEDED))
            await wait_thread(slack_fake, message, "succeeded")
    assert evict_posts(sim) == 1
    assert_audit_once(final)
    assert final.actions.count("proposal.start") == 1
    output = bot.text() + again.text()
    assert f"database: {db}" in output  # the banner names the database...
    if isinstance(db, PostgresUrl):
        assert db.password and db.password not in output  # ...never its password


async def test_killed_after_the_approval_runs_once_after_restart(
    sim_factory: SimFactory, slack_fake: SlackFake, tmp_path: Path, db: DbTarget
) -> None:
    sim = await sim_factory(stores=4)
    async with clock_running(sim):
        async with BotChild.start(sim, slack_fake, db, TIKVOPS_TEST_AUTO_EXECUTE="0") as bot:
            message = await propose(slack_fake)
            await approve(slack_fake, message)
            await wait_db(db, in_state(ProposalState.APPROVED))
            await bot.kill()
        assert pd_writes(sim) == []
        async with BotChild.start(sim, slack_fake, db):
            final = await wait_db(db, in_state(ProposalState.SUCCEEDED))
            await wait_thread(slack_fake, message, "succeeded")
    assert evict_posts(sim) == 1
    assert_audit_once(final)
    assert final.actions.count("proposal.start") == 1


@pytest.mark.parametrize(
    ("step", "sent_before_kill", "final_state", "final_execution"),
    [
        ("started", 0, ProposalState.FAILED, ExecutionStatus.RECONCILED_FAILED),
        ("before_request", 0, ProposalState.FAILED, ExecutionStatus.RECONCILED_FAILED),
        ("after_request", 1, ProposalState.SUCCEEDED, ExecutionStatus.RECONCILED_SUCCEEDED),
        ("verifying", 1, ProposalState.SUCCEEDED, ExecutionStatus.RECONCILED_SUCCEEDED),
    ],
)
async def test_killed_while_executing_is_reconciled_never_resent(
    sim_factory: SimFactory,
    slack_fake: SlackFake,
    tmp_path: Path,
    db: DbTarget,
    step: str,
    sent_before_kill: int,
    final_state: ProposalState,
    final_execution: ExecutionStatus,
) -> None:
    sim = await sim_factory(stores=4)
    marker = tmp_path / "paused"
    pause = {"TIKVOPS_TEST_PAUSE_AT": step, "TIKVOPS_TEST_MARKER": str(marker)}
    async with clock_running(sim):
        async with BotChild.start(sim, slack_fake, db, **pause) as bot:
            message = await propose(slack_fake)
            await approve(slack_fake, message)
            await slack_fake.wait_for(marker.exists, timeout=30)
            await bot.kill()
            assert bot.process.returncode == -signal.SIGKILL
        killed = await wait_db(db, in_state(ProposalState.EXECUTING))
        assert evict_posts(sim) == sent_before_kill
        assert killed.execution is not None
        async with BotChild.start(sim, slack_fake, db):
            final = await wait_db(db, in_state(final_state))
            word = "succeeded" if final_state is ProposalState.SUCCEEDED else "failed"
            text = await wait_thread(slack_fake, message, word)
    assert evict_posts(sim) == sent_before_kill  # never sent again
    assert final.execution is not None and final.execution.status is final_execution
    assert_audit_once(final)
    assert final.actions.count("proposal.start") == 1
    assert "execution.reconciled" in final.actions or "execution.reconciling" in final.actions
    if sent_before_kill:
        assert sim.cluster.store(4).leader_count == 0
    else:
        assert 4 not in sim.cluster.schedulers.evicted_stores()
        assert "sent" in text  # the thread says whether the request went out


async def test_killed_with_messages_owed_delivers_them_after_restart(
    sim_factory: SimFactory, slack_fake: SlackFake, tmp_path: Path, db: DbTarget
) -> None:
    sim = await sim_factory(stores=4)
    async with clock_running(sim):
        async with BotChild.start(sim, slack_fake, db) as bot:
            message = await propose(slack_fake)
            await wait_db(db, lambda s: s.outbox_pending == 0)
            for method in ("chat.postMessage", "chat.update"):
                slack_fake.faults.server_error(method, times=100_000, status=503)
            await approve(slack_fake, message)
            owed = await wait_db(
                db, lambda s: in_state(ProposalState.SUCCEEDED)(s) and s.outbox_pending > 0
            )
            await bot.kill()
        assert "succeeded" not in thread_text(slack_fake, message)
        slack_fake.faults.clear()
        async with BotChild.start(sim, slack_fake, db):
            await wait_db(db, lambda s: s.outbox_pending == 0)
            text = await wait_thread(slack_fake, message, "succeeded")
    assert owed.outbox_pending > 0
    assert evict_posts(sim) == 1
    assert text.count("succeeded") >= 1


async def test_killed_after_slack_stored_a_post_it_never_heard_back_about(
    sim_factory: SimFactory, slack_fake: SlackFake, tmp_path: Path, db: DbTarget
) -> None:
    """Slack stores the proposal's message but holds its answer; the bot is killed waiting
    for it, so nothing recorded the send. After the restart the bot finds the message instead
    of posting a second card, and the one card works."""
    sim = await sim_factory(stores=4)
    async with clock_running(sim):
        async with BotChild.start(sim, slack_fake, db) as bot:
            slack_fake.faults.lose_answer("chat.postMessage", how="late", delay=120.0)
            message = await propose(slack_fake)
            assert [c.lost for c in slack_fake.calls("chat.postMessage")] == [True]
            await bot.kill()
        owed = await wait_db(db, lambda s: s.outbox_pending > 0)
        async with BotChild.start(sim, slack_fake, db):
            await wait_db(db, lambda s: s.outbox_pending == 0)
            assert [m.ts for m in slack_fake.messages(CHANNEL)] == [message.ts]
            await approve(slack_fake, message)
            text = await wait_thread(slack_fake, message, "succeeded")
            stored = await wait_db(db, in_state(ProposalState.SUCCEEDED))
    assert owed.outbox_pending > 0
    [card] = slack_fake.messages(CHANNEL)
    assert card.ts == message.ts and callbacks.APPROVE not in card.action_ids()
    assert (
        len(slack_fake.calls("chat.postMessage"))
        == len([m for m in slack_fake.thread(CHANNEL, card.ts)]) + 1
    )  # the card once, then its thread replies: nothing posted twice
    assert evict_posts(sim) == 1
    assert "succeeded" in text
    assert_audit_once(stored)
