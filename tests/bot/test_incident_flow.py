"""From a fault in the cluster to a resolved incident, in Slack: the monitor (with the playbook
diagnoser) opens an incident for a slow store, the bot posts its parent message, the diagnosis
and the proposed drain go in its thread, an approver approves, the parent shows the action
running, the verified outcome is threaded, and when the store recovers the parent is edited to
resolved. No new top-level message is posted after the parent.

Run with `-s` to print the conversation as text (it is what the report quotes)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx

from bot import callbacks
from engine.diagnose_flow import DiagnoseFlow
from engine.model import Identity, ProposalOrigin, ProposalState, ProposedAction
from engine.monitor import ClusterSource, Monitor
from engine.playbook_diagnoser import PlaybookDiagnoser
from engine.results import Refused
from operator_tikv.invariants import Thresholds
from operator_tikv.scrape import ScrapeSource
from tests.bot.conftest import ALICE, CHANNEL, Harness
from tests.bot.render_text import text_of
from tests.engine.monitor_fakes import FakeCluster, ScriptedDiagnoser
from tests.plugins.storage import make_incident


def transcript(h: Harness, title: str) -> str:
    lines = [f"======== {title}"]
    for message in h.top():
        edited = " (edited)" if message.edited else ""
        lines.append(f"---- channel message {message.ts}{edited}")
        lines.append(text_of(message.blocks) or message.text)
        for reply in h.thread(message.ts):
            lines.append(f"  ---- thread reply {reply.ts}")
            lines.extend("  " + line for line in (text_of(reply.blocks) or reply.text).split("\n"))
    return "\n".join(lines)


async def test_slow_store_incident_from_detection_to_resolution(
    bot_harness: Callable[..., Awaitable[Harness]],
) -> None:
    h = await bot_harness()
    repos, clock = h.runtime.repos, h.runtime.clock
    async with httpx.AsyncClient() as http:
        flow = DiagnoseFlow(
            diagnoser=PlaybookDiagnoser(h.runtime.pd, clock),
            diagnoses=repos.diagnoses,
            proposals=repos.proposals,
            proposer=h.engine,
            events=repos.events,
            clock=clock,
        )
        monitor = Monitor(
            source=ClusterSource(h.runtime.pd, ScrapeSource(http=http), pd_url=h.sim.pd_url),
            incidents=repos.incidents,
            clock=clock,
            thresholds=Thresholds(write_p99_grace=0, region_min_count=10_000),
            resolve_after=0.0,
            diagnose=flow,
            background_diagnosis=False,
        )
        h.sim.apply_scenario("slow-store")  # store 2: write P99 ~250 ms

        async def tick_until(done: Callable[[], Awaitable[bool]], what: str) -> None:
            for _ in range(40):
                await monitor.tick()
                await h.settle()
                if await done():
                    return
                await asyncio.sleep(0.1)
            raise AssertionError(f"never happened: {what}")

        async def proposed() -> bool:
            return await repos.proposals.get("P-1") is not None

        await tick_until(proposed, "a proposal for the slow store")
        [incident] = await repos.incidents.list_open()
        assert incident.kind == "write_latency" and incident.subject == "store:2"
        [parent] = h.top()
        opened = text_of(parent.blocks)
        assert "High write latency on store 2" in opened and "threshold 100 ms" in opened
        replies = h.thread(parent.ts)
        assert "Diagnosis" in text_of(replies[0].blocks)
        proposal_message = replies[-1]
        assert proposal_message.action_ids() == [callbacks.APPROVE, callbacks.REJECT]
        assert "Drain store 2" in text_of(proposal_message.blocks)
        print(transcript(h, "incident opened, diagnosed, drain proposed"))

        await h.fake.click(
            user=ALICE,
            channel=CHANNEL,
            message_ts=proposal_message.ts,
            action_id=callbacks.APPROVE,
        )
        for _ in range(200):
            await h.settle()
            proposal = await repos.proposals.get("P-1")
            assert proposal is not None
            if proposal.state.is_terminal:
                break
            await asyncio.sleep(0.02)
        assert proposal.state is ProposalState.SUCCEEDED, proposal.outcome
        await h.settle()
        edited = h.fake.message(CHANNEL, proposal_message.ts)
        assert edited is not None and edited.action_ids() == []
        assert "Succeeded" in text_of(edited.blocks)
        outcome = text_of(h.thread(parent.ts)[-1].blocks)
        assert "P-1 succeeded" in outcome and "leaders on store 2:" in outcome and "→ 0" in outcome
        print(transcript(h, "approved by alice, executed, verified"))

        h.sim.faults.clear()

        async def resolved() -> bool:
            return not await repos.incidents.list_open()

        await tick_until(resolved, "the incident to resolve")
        await h.settle()
        [parent_again] = h.top()  # still one top-level message: everything else is threaded
        final = text_of(parent_again.blocks)
        assert parent_again.ts == parent.ts and parent_again.edited
        assert "RESOLVED" in final and "Resolved at" in final
        assert "Resolved" in text_of(h.thread(parent.ts)[-1].blocks)
        print(transcript(h, "store recovered, incident resolved"))


async def test_a_suggested_action_the_engine_refuses_is_said_in_the_thread(
    bot_harness: Callable[..., Awaitable[Harness]],
) -> None:
    """A diagnosis suggests two actions; the engine refuses one (no such store). The thread
    shows the diagnosis, the proposal that was made, and a reply naming the refused action with
    the engine's own sentence, instead of announcing it and posting nothing."""
    h = await bot_harness()
    repos, clock = h.runtime.repos, h.runtime.clock
    incident = await repos.incidents.create(make_incident(kind="slow_store", subject="store:2"))
    drain_missing = ProposedAction(action="drain", params={"store_id": 9}, reason="store 9")
    drain_slow = ProposedAction(action="drain", params={"store_id": 2}, reason="store 2 is slow")
    refusal = await h.engine.propose(
        "drain", {"store_id": 9}, actor=Identity.playbook("probe"), origin=ProposalOrigin.PLAYBOOK
    )
    assert isinstance(refusal, Refused) and "9" in refusal.reason
    flow = DiagnoseFlow(
        diagnoser=ScriptedDiagnoser([drain_missing, drain_slow]),
        diagnoses=repos.diagnoses,
        proposals=repos.proposals,
        proposer=h.engine,
        events=repos.events,
        clock=clock,
    )
    outcome = await flow.run(incident, await FakeCluster().observe(1_700_000_000.0))
    assert [p.params for p in outcome.proposals] == [{"store_id": 2}]
    await h.settle()
    [parent] = h.top()
    diagnosis, proposal, not_proposed = (text_of(m.blocks) for m in h.thread(parent.ts))
    assert "Proposed actions" in diagnosis and "Drain store 9" in diagnosis
    assert "Drain store 2" in proposal
    assert "1 suggested action was not proposed" in not_proposed
    assert f"*Drain store 9*: {refusal.reason}" in not_proposed
    assert "Drain store 2" not in not_proposed
    print(transcript(h, "one suggested action refused"))
