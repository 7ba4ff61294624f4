"""Replicas: three `tikvops run` processes (children, as in the crash-anywhere tests) on one
PostgreSQL database, the simulator and the Slack stand-in, which deals envelopes out over their
three Socket Mode connections in turn.

- 100 concurrent Approve clicks spread over the three connections make one PD write;
- the leader SIGKILLed while the PD operator it started is running: another replica becomes
  the leader, reconciles the execution against PD (never sending the write again) and threads
  the outcome;
- a follower holding its run right before the PD write when the leader is SIGKILLed: the new
  leader leaves that run to it (its claim), and it completes with one write;
- a replica SIGKILLed while it holds an owed message (Slack stored the post, its answer never
  came back): another replica delivers what is owed, each message once;
- PostgreSQL restarted during a run: the replicas reconnect, one leads again, and nothing is
  lost.

Skipped without PostgreSQL outside CI (`tests.plugins.postgres`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import psycopg

from bot import callbacks
from engine.model import ExecutionStatus, ProposalState
from sim.server import SimServer
from slackfake.server import SlackFake
from slackfake.store import Message
from storage import PostgresUrl, Repositories, open_database
from tests.plugins.postgres import PostgresServer
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
    thread_text,
)

LEADER_POLL = 0.5
CLICKERS = [f"U{n:03d}" for n in range(100)]
USERS = {**{u: f"user{u[1:]}" for u in CLICKERS}, ALICE: "alice", BOB: "bob"}
APPROVERS = ",".join([ALICE, *CLICKERS])
EVICT = ("POST", "/pd/api/v1/schedulers")
WAIT = 60.0

MakeFake = Callable[..., Awaitable[SlackFake]]


def evict_posts(sim: SimServer) -> int:
    return sum(1 for r in pd_writes(sim) if (r.method, r.path) == EVICT)


async def read_pg(url: str, proposal_id: str = "P-1") -> Stored:
    db = await open_database(url)
    try:
        repos = Repositories.on(db)
        proposal = await repos.proposals.get(proposal_id)
        execution = await repos.executions.get(proposal_id)
        audit = list(reversed(await repos.audit.list_recent(limit=500)))
        pending = await repos.outbox.depth()
        return Stored(proposal, execution, audit, pending)
    finally:
        await db.close()


async def wait_pg(url: str, check: Callable[[Stored], bool], *, timeout: float = WAIT) -> Stored:
    last: Stored | None = None
    try:
        async with asyncio.timeout(timeout):
            while True:
                with contextlib.suppress(Exception):  # the server may be restarting
                    last = await read_pg(url)
                    if check(last):
                        return last
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"the database never reached the expected state: {last}") from None


def in_state(*states: ProposalState) -> Callable[[Stored], bool]:
    def check(s: Stored) -> bool:
        return s.proposal is not None and s.proposal.state in states

    return check


def settled(s: Stored) -> bool:
    return in_state(ProposalState.SUCCEEDED)(s) and s.outbox_pending == 0


def health_url(child: BotChild) -> str:
    for line in child.output:
        found = re.search(r"health: (http://\S+)/healthz", line)
        if found:
            return found.group(1)
    raise AssertionError("the child printed no health URL:\n" + child.text())


async def healthz(child: BotChild) -> dict[str, Any] | None:
    """The child's /healthz body, or None when it does not answer (killed)."""
    if child.process.returncode is not None:
        return None
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http,
            http.get(f"{health_url(child)}/healthz") as resp,
        ):
            body: dict[str, Any] = json.loads(await resp.text())
            return body
    except (aiohttp.ClientError, TimeoutError):
        return None


async def leaders(children: list[BotChild]) -> list[int]:
    """Indexes of the children whose /healthz says they lead."""
    bodies = await asyncio.gather(*(healthz(c) for c in children))
    return [i for i, body in enumerate(bodies) if body is not None and body.get("leader")]


async def the_leader(children: list[BotChild], *, timeout: float = WAIT) -> int:
    """Wait until exactly one child leads; its index."""
    async with asyncio.timeout(timeout):
        while True:
            found = await leaders(children)
            if len(found) == 1:
                return found[0]
            await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def replicas(
    sim: SimServer, fake: SlackFake, url: str, count: int, **settings: Any
) -> AsyncIterator[list[BotChild]]:
    """`count` children on one database, started one after the other (connection ids 1, 2 ...
    on a fresh stand-in)."""
    options = {"leader_poll": LEADER_POLL, **settings}
    async with contextlib.AsyncExitStack() as stack:
        children = [
            await stack.enter_async_context(BotChild.start(sim, fake, PostgresUrl(url), **options))
            for _ in range(count)
        ]
        yield children


async def propose(fake: SlackFake) -> Message:
    await fake.slash_command(user=BOB, channel=CHANNEL, text="drain 4")
    return await proposal_message(fake)


async def test_a_hundred_clicks_over_three_replicas_make_one_write(
    sim_factory: SimFactory, make_slack_fake: MakeFake, postgres_url: str
) -> None:
    sim = await sim_factory(stores=4)
    fake = await make_slack_fake(users=USERS)
    async with clock_running(sim), replicas(sim, fake, postgres_url, 3, approvers=APPROVERS):
        assert len(fake.connection_ids()) == 3
        message = await propose(fake)
        acks = await asyncio.gather(
            *(
                fake.click(
                    user=u, channel=CHANNEL, message_ts=message.ts, action_id=callbacks.APPROVE
                )
                for u in CLICKERS
            )
        )
        final = await wait_pg(postgres_url, settled)
    assert len({a.envelope_id for a in acks}) == 100  # every click acknowledged
    assert len({a.connection_id for a in acks}) == 3  # every replica took clicks
    assert evict_posts(sim) == 1
    assert [(r.method, r.path) for r in pd_writes(sim)] == [EVICT]
    assert final.actions.count("proposal.approve") == 1
    assert final.actions.count("proposal.start") == 1
    assert final.actions.count("proposal.approve.refused") == 99


async def test_the_leader_killed_while_its_operator_runs_is_reconciled_by_the_next(
    sim_factory: SimFactory, make_slack_fake: MakeFake, postgres_url: str, tmp_path: Path
) -> None:
    sim = await sim_factory(stores=4)
    fake = await make_slack_fake()
    marker = tmp_path / "paused"
    pause = {"TIKVOPS_TEST_PAUSE_AT": "verifying", "TIKVOPS_TEST_MARKER": str(marker)}
    async with (
        clock_running(sim),
        BotChild.start(
            sim, fake, PostgresUrl(postgres_url), leader_poll=LEADER_POLL, **pause
        ) as first,
    ):
        assert await the_leader([first]) == 0
        async with replicas(sim, fake, postgres_url, 2) as others:
            children = [first, *others]
            assert await the_leader(children) == 0
            message = await propose(fake)
            # The click reaches the leader (connection 1), which sends the write, then
            # stops while PD's operator runs.
            await fake.click(
                user=ALICE,
                channel=CHANNEL,
                message_ts=message.ts,
                action_id=callbacks.APPROVE,
                via=1,
            )
            await fake.wait_for(marker.exists, timeout=WAIT)
            assert evict_posts(sim) == 1
            await first.kill()
            assert first.process.returncode == -signal.SIGKILL
            new = await the_leader(children)
            assert new in (1, 2)
            final = await wait_pg(postgres_url, settled)
            text: str = await fake.wait_for(
                lambda: (t := thread_text(fake, message)) and "succeeded" in t and t,
                timeout=WAIT,
            )
    assert evict_posts(sim) == 1  # never sent again
    assert final.execution is not None
    assert final.execution.status is ExecutionStatus.RECONCILED_SUCCEEDED
    assert "execution.reconciling" in final.actions or "execution.reconciled" in final.actions
    assert final.actions.count("proposal.start") == 1
    assert sim.cluster.store(4).leader_count == 0
    assert "succeeded" in text


async def test_a_follower_running_a_write_is_left_to_it_when_the_leader_dies(
    sim_factory: SimFactory, make_slack_fake: MakeFake, postgres_url: str, tmp_path: Path
) -> None:
    """The hole the run claims close: a follower won the gate and has not sent the PD request
    yet when the leader dies. The new leader reconciles, but leaves that run to its live
    replica (which holds its claim), and the follower completes it with exactly one write."""
    sim = await sim_factory(stores=4)
    fake = await make_slack_fake()
    marker, resume = tmp_path / "held", tmp_path / "resume"
    hold = {
        "TIKVOPS_TEST_HOLD_AT": "before_request",
        "TIKVOPS_TEST_MARKER": str(marker),
        "TIKVOPS_TEST_RESUME": str(resume),
    }
    url = PostgresUrl(postgres_url)
    async with (
        clock_running(sim),
        BotChild.start(sim, fake, url, leader_poll=LEADER_POLL, log_level="INFO") as leader,
    ):
        assert await the_leader([leader]) == 0
        async with (
            BotChild.start(
                sim, fake, url, leader_poll=LEADER_POLL, log_level="INFO", **hold
            ) as runner,
            BotChild.start(sim, fake, url, leader_poll=LEADER_POLL, log_level="INFO") as third,
        ):
            children = [leader, runner, third]
            assert await the_leader(children) == 0
            message = await propose(fake)
            # The click reaches the follower (connection 2): it wins the gate, records
            # `request_sent` and holds right before the PD write.
            await fake.click(
                user=ALICE,
                channel=CHANNEL,
                message_ts=message.ts,
                action_id=callbacks.APPROVE,
                via=2,
            )
            await fake.wait_for(marker.exists, timeout=WAIT)
            await leader.kill()
            new = await the_leader(children)
            assert new in (1, 2)
            # The new leader reconciled and left the live run alone.
            await fake.wait_for(
                lambda: any(
                    "is being run by a live process; not reconciling it" in line
                    for line in children[new].output
                ),
                timeout=WAIT,
            )
            held = await read_pg(postgres_url)
            assert held.proposal is not None
            assert held.proposal.state is ProposalState.EXECUTING
            assert held.execution is not None
            assert held.execution.status is ExecutionStatus.REQUEST_SENT
            assert evict_posts(sim) == 0

            resume.write_text("go")
            final = await wait_pg(postgres_url, settled)
            assert runner.process.returncode is None
    assert evict_posts(sim) == 1
    assert final.execution is not None
    assert final.execution.status is ExecutionStatus.SUCCEEDED
    assert "execution.reconciled" not in final.actions
    assert final.actions.count("proposal.start") == 1
    assert sim.cluster.store(4).leader_count == 0


async def test_a_replica_killed_holding_an_owed_message_leaves_it_to_another_once(
    sim_factory: SimFactory, make_slack_fake: MakeFake, postgres_url: str
) -> None:
    sim = await sim_factory(stores=4)
    fake = await make_slack_fake()
    async with (
        clock_running(sim),
        BotChild.start(sim, fake, PostgresUrl(postgres_url), leader_poll=LEADER_POLL) as lone,
    ):
        # Slack stores the proposal's card, but its answer never reaches the replica,
        # which holds the claimed message when it is killed.
        fake.faults.lose_answer("chat.postMessage", how="late", delay=120.0)
        await fake.slash_command(user=BOB, channel=CHANNEL, text="drain 4")
        await fake.wait_for(lambda: fake.calls("chat.postMessage"), timeout=WAIT)
        async with replicas(sim, fake, postgres_url, 2) as others:
            await lone.kill()
            message = await proposal_message(fake)
            await fake.click(
                user=ALICE, channel=CHANNEL, message_ts=message.ts, action_id=callbacks.APPROVE
            )
            final = await wait_pg(postgres_url, settled)
            text: str = await fake.wait_for(
                lambda: (t := thread_text(fake, message)) and "succeeded" in t and t,
                timeout=WAIT,
            )
            assert all(c.process.returncode is None for c in others)
    # The card once (found after the kill, not posted again), edited with the outcome.
    assert [m.ts for m in fake.messages(CHANNEL)] == [message.ts]
    replies = [m.text for m in fake.thread(CHANNEL, message.ts)]
    assert len(replies) == len(set(replies)), f"a message arrived twice: {replies}"
    assert evict_posts(sim) == 1
    assert final.actions.count("proposal.start") == 1
    assert "succeeded" in text


async def test_postgres_restarted_during_a_run_loses_nothing(
    sim_factory: SimFactory,
    make_slack_fake: MakeFake,
    postgres_url: str,
    postgres_server: PostgresServer,
) -> None:
    sim = await sim_factory(stores=4)
    fake = await make_slack_fake()
    async with clock_running(sim), replicas(sim, fake, postgres_url, 3) as children:
        await the_leader(children)
        message = await propose(fake)
        await postgres_server.restart_async(down_for=1.0)
        # Every replica lost its connections (the leader its lock): they reconnect and one
        # leads again.
        await the_leader(children)
        # The card's delivery record may have been lost with the restart: it is delivered again
        # (found by its look-up, not posted twice) before its buttons count as the card's.
        await wait_pg(postgres_url, lambda s: s.outbox_pending == 0)
        await fake.click(
            user=ALICE, channel=CHANNEL, message_ts=message.ts, action_id=callbacks.APPROVE
        )
        final = await wait_pg(postgres_url, settled)
        text: str = await fake.wait_for(
            lambda: (t := thread_text(fake, message)) and "succeeded" in t and t,
            timeout=WAIT,
        )
        assert all(c.process.returncode is None for c in children)
    assert [m.ts for m in fake.messages(CHANNEL)] == [message.ts]
    assert evict_posts(sim) == 1
    assert final.actions.count("proposal.created") == 1
    assert final.actions.count("proposal.start") == 1
    assert "succeeded" in text


async def metric(child: BotChild, name: str) -> float:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http,
        http.get(f"{health_url(child)}/metrics") as resp,
    ):
        text = await resp.text()
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name} in /metrics")


async def test_a_leader_that_loses_its_lock_connection_steps_down(
    sim_factory: SimFactory, make_slack_fake: MakeFake, postgres_url: str
) -> None:
    """Its host losing the database looks, to PostgreSQL, like its lock's session ending: the
    leader notices, steps down (its gauge drops, its demotion is counted) and one replica
    leads again."""
    sim = await sim_factory(stores=4)
    fake = await make_slack_fake()
    async with clock_running(sim), replicas(sim, fake, postgres_url, 3) as children:
        old = await the_leader(children)
        assert await metric(children[old], "tikvops_leader") == 1
        async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as admin:
            cursor = await admin.execute(
                "SELECT pg_terminate_backend(a.pid) FROM pg_stat_activity AS a "
                "JOIN pg_locks AS l ON l.pid = a.pid AND l.locktype = 'advisory' AND l.granted "
                "WHERE a.application_name = 'tikvops-leader' AND a.datname = current_database()"
            )
            assert [row[0] for row in await cursor.fetchall()] == [True]
        demoted = 'tikvops_leader_changes_total{change="demoted"}'
        async with asyncio.timeout(WAIT):
            while await metric(children[old], demoted) < 1:
                await asyncio.sleep(0.1)
        await the_leader(children)
        assert await metric(children[old], demoted) == 1
        # The service goes on: a proposal made now is approved and executed once.
        message = await propose(fake)
        await fake.click(
            user=ALICE, channel=CHANNEL, message_ts=message.ts, action_id=callbacks.APPROVE
        )
        final = await wait_pg(postgres_url, settled)
        assert all(c.process.returncode is None for c in children)
    assert evict_posts(sim) == 1
    assert final.actions.count("proposal.start") == 1
