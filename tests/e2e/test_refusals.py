"""The refusals, end to end through the real bot and the Slack stand-in: a rejection with its
reason, a click by someone who is not an approver, a proposal that expires unanswered, the kill
switch, and an unsafe action stopped by preflight against the live (simulated) cluster. In
every case PD receives no write for the refused action, and the person is told why."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bot import callbacks
from engine.model import ProposalState
from slackfake.store import Message
from tests.e2e.conftest import ALICE, BOB, CAROL, E2E, WAIT, block_text

Make = Callable[..., Awaitable[E2E]]


async def slow_store_proposal(h: E2E) -> tuple[Message, Message, str]:
    """Inject slow-store; wait for the incident's parent and its drain proposal.
    Returns (parent, proposal message, proposal ID)."""
    h.sim.apply_scenario("slow-store")
    incident = await h.incident("write_latency")
    parent = await h.parent_of(incident)
    message = await h.proposal_message(parent)
    proposal = await h.proposal_for(incident)
    assert proposal.action == "drain" and proposal.state is ProposalState.PROPOSED
    return parent, message, proposal.id


async def wait_state(h: E2E, proposal_id: str, state: ProposalState) -> None:
    async def reached() -> bool:
        return (await h.proposal(proposal_id)).state is state

    await h.fake.wait_for(reached, timeout=WAIT)


def told(h: E2E, user: str, *needles: str) -> Callable[[], str | None]:
    """A predicate: the latest ephemeral shown to `user` that contains every needle."""

    def find() -> str | None:
        for eph in reversed(h.fake.ephemerals(user=user)):
            text = eph.text + "\n" + block_text(eph)
            if all(n in text for n in needles):
                return text
        return None

    return find


async def test_reject_records_the_reason_and_sends_nothing(e2e: Make) -> None:
    h = await e2e()
    _, message, pid = await slow_store_proposal(h)
    await h.click(ALICE, message, callbacks.REJECT)
    [view] = await h.fake.wait_for(lambda: h.fake.views(user=ALICE), timeout=WAIT)
    await h.fake.submit_view(
        user=ALICE, view_id=view.id, values={callbacks.REJECT_REASON_BLOCK: "disk swap tonight"}
    )
    await wait_state(h, pid, ProposalState.REJECTED)
    proposal = await h.proposal(pid)
    assert proposal.decision_reason == "disk swap tonight"
    edited = await h.fake.wait_for(
        lambda: "disk swap tonight" in block_text(m := h.current(message)) and m, timeout=WAIT
    )
    assert edited.action_ids() == []  # no buttons left to click
    assert h.pd_writes() == []


async def test_a_non_approver_is_refused_and_nothing_runs(e2e: Make) -> None:
    h = await e2e()
    _, message, pid = await slow_store_proposal(h)
    await h.click(BOB, message, callbacks.APPROVE)
    reason = await h.fake.wait_for(told(h, BOB, "not an approver"), timeout=WAIT)
    assert f"<@{ALICE}>" in reason or "oncall" in reason.lower() or "S0ONCALL" in reason
    await h.stack.wait_idle()
    proposal = await h.proposal(pid)
    assert proposal.state is ProposalState.PROPOSED and proposal.approvals == ()
    assert callbacks.APPROVE in h.current(message).action_ids()  # still waiting for a decision
    assert h.pd_writes() == []


async def test_an_unanswered_proposal_expires_and_a_late_click_is_refused(e2e: Make) -> None:
    h = await e2e(proposal_ttl=1.0, expire_every=0.2)
    _, message, pid = await slow_store_proposal(h)
    await wait_state(h, pid, ProposalState.EXPIRED)
    expired = await h.fake.wait_for(
        lambda: (m := h.current(message)).action_ids() == [] and m, timeout=WAIT
    )
    assert "xpired" in block_text(expired)
    # A client still showing the old buttons clicks Approve: refused, nothing runs.
    await h.click(ALICE, message, callbacks.APPROVE)
    await h.fake.wait_for(told(h, ALICE, pid), timeout=WAIT)
    await h.stack.wait_idle()
    assert (await h.proposal(pid)).state is ProposalState.EXPIRED
    assert h.pd_writes() == []


async def test_the_kill_switch_stops_an_approved_action(e2e: Make) -> None:
    h = await e2e()
    _, message, pid = await slow_store_proposal(h)
    reply = await h.command(ALICE, "kill-switch on upgrading PD")
    assert "kill switch" in reply.lower()
    await h.click(ALICE, message, callbacks.APPROVE)
    reason = await h.fake.wait_for(told(h, ALICE, "kill switch is on"), timeout=WAIT)
    assert pid in reason
    await h.stack.wait_idle()
    assert (await h.proposal(pid)).state is ProposalState.APPROVED  # approved, not run
    assert h.pd_writes() == []


async def test_preflight_refuses_draining_a_second_store(e2e: Make) -> None:
    h = await e2e()
    parent, message, first = await slow_store_proposal(h)
    # While store 2 still leads regions, alice also asks to drain store 3: that passes.
    await h.command(ALICE, "drain 3")
    second = await h.fake.wait_for(
        lambda: next(
            (m for m in h.top() if callbacks.APPROVE in m.action_ids() and "store 3" in m.text),
            None,
        ),
        timeout=WAIT,
    )
    await h.click(ALICE, message, callbacks.APPROVE)
    await h.wait_text(parent, "succeeded", "leaders on store 2:", "→ 0")
    [drain_2] = h.pd_writes()
    assert drain_2.body == {"name": "evict-leader-scheduler", "store_id": 2}

    # Carol (on call) approves the second drain: preflight against the live cluster stops it.
    await h.click(CAROL, second, callbacks.APPROVE)

    async def failed() -> str | None:
        proposals = await h.stack.runtime.repos.proposals.list(limit=10)
        [p2] = [p for p in proposals if p.id != first]
        return p2.id if p2.state is ProposalState.FAILED else None

    second_id = await h.fake.wait_for(failed, timeout=WAIT)
    text = await h.wait_text(second, f"{second_id} failed", "already drained (2)")
    assert "Nothing was sent to PD" in text
    assert h.pd_writes() == [drain_2]  # nothing was sent for store 3
    assert h.leaders(3) > 0

    # And asking again now is refused at once, with the reason, creating nothing.
    before = len(await h.stack.runtime.repos.proposals.list(limit=10))
    reply = await h.command(ALICE, "drain 4")
    assert "Refused" in reply and "drained" in reply
    assert len(await h.stack.runtime.repos.proposals.list(limit=10)) == before
    assert h.pd_writes() == [drain_2]
