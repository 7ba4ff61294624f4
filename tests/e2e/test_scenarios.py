"""Each simulator scenario through the real bot and the Slack stand-in: the fault opens an
incident (a parent message in the channel), the playbooks diagnose it in the thread and propose
an action, alice approves with the button, the bot makes the PD request (seen in the
simulator's request log), verifies the outcome in the thread, and the incident resolves with
its parent edited. Scenarios whose playbook proposes nothing show the incident and the
explanation, and PD receives no write at all."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any

from bot import callbacks
from engine.model import IncidentStatus, ProposalState
from tests.e2e.conftest import ALICE, E2E, WAIT, block_text
from tikvops.settings import Settings

Make = Callable[..., Awaitable[E2E]]


async def approve_and_verify(h: E2E, kind: str, *outcome: str) -> str:
    """Wait for the incident of `kind`, its diagnosis and proposal; approve as alice; wait for
    the verified outcome. Returns the thread text."""
    incident = await h.incident(kind)
    parent = await h.parent_of(incident)
    proposal_msg = await h.proposal_message(parent)
    await h.wait_text(parent, "Diagnosis of")
    assert h.pd_writes() == []  # nothing is sent before the approval
    await h.click(ALICE, proposal_msg, callbacks.APPROVE)
    text = await h.wait_text(parent, "succeeded", *outcome)
    proposal = await h.proposal_for(incident)
    assert proposal.state is ProposalState.SUCCEEDED
    assert [a.by.id for a in proposal.approvals] == [ALICE]
    h.notes.update(incident=incident, parent=parent, proposal=proposal)
    return text


async def wait_resolved(h: E2E, timeout: float = 10.0) -> None:
    """The incident resolves in the database, the thread says so, and its parent is edited."""
    incident = h.notes["incident"]
    parent = h.notes["parent"]

    async def resolved() -> bool:
        now = await h.stack.runtime.repos.incidents.get(incident.id)
        return now is not None and now.status is IncidentStatus.RESOLVED

    await h.fake.wait_for(resolved, timeout=timeout)
    await h.wait_text(parent, "Resolved")
    edited = await h.fake.wait_for(
        lambda: (m := h.current(parent)).text.startswith("Resolved") and m, timeout=WAIT
    )
    assert edited.edited and "RESOLVED" in edited.blocks[0]["text"]["text"]


async def test_slow_store_is_drained_and_then_the_incident_resolves(e2e: Make) -> None:
    h = await e2e()
    result = h.sim.apply_scenario("slow-store")
    store = result.store_id
    assert store is not None and h.leaders(store) > 0
    await approve_and_verify(h, "write_latency", f"leaders on store {store}:", "→ 0")
    [write] = h.pd_writes()
    assert (write.method, write.path) == ("POST", "/pd/api/v1/schedulers")
    assert write.body == {"name": "evict-leader-scheduler", "store_id": store}
    assert h.leaders(store) == 0
    await wait_resolved(h)  # the fault itself is still injected: the drain made it harmless


async def test_disk_filling_moves_a_peer_off_the_full_store(e2e: Make) -> None:
    h = await e2e()
    # PD's balance-region scheduler would start moving regions off the full store too, and may
    # take the very region the bot proposes (the bot then reports PD's refusal, correctly, but
    # that race is not this test's subject): pause it for the test.
    h.sim.cluster.schedulers.pause("balance-region-scheduler", 3600)
    result = h.sim.apply_scenario("disk-filling")
    store = result.store_id
    assert store is not None
    text = await approve_and_verify(h, "disk_usage", "admin-move-peer finished")
    [write] = h.pd_writes()
    assert (write.method, write.path) == ("POST", "/pd/api/v1/operators")
    assert write.body["name"] == "transfer-peer"
    assert write.body["from_store_id"] == store
    region_id = write.body["region_id"]
    peers = {p.store_id for p in h.sim.cluster.regions[region_id].peers}
    assert store not in peers and write.body["to_store_id"] in peers
    assert f"region {region_id}" in text
    # Moving one region frees its share of the disk, not the files that fill it: the
    # operator frees the space, and the bot sees the disk clear and resolves the incident.
    h.sim.faults.fill_disk(store, 0.3)
    await wait_resolved(h)


async def test_hot_region_is_split(e2e: Make) -> None:
    h = await e2e()
    result = h.sim.apply_scenario("hot-region")
    region_id = result.region_id
    assert region_id is not None
    before = h.sim.cluster.regions[region_id].version
    await approve_and_verify(h, "hot_write_skew", "admin-split-region finished", str(region_id))
    [write] = h.pd_writes()
    assert (write.method, write.path) == ("POST", "/pd/api/v1/operators")
    assert write.body["name"] == "split-region" and write.body["region_id"] == region_id
    assert h.sim.cluster.regions[region_id].version > before  # the region really split
    # Both halves stay led by the same store until PD balances them; the hot writes stopping
    # is what clears the skew.
    h.sim.faults.cool_region(region_id)
    await wait_resolved(h)


async def test_store_down_is_explained_and_nothing_is_sent_to_pd(e2e: Make) -> None:
    h = await e2e()
    result = h.sim.apply_scenario("store-down")
    store = result.store_id
    incident = await h.incident("store_disconnected")
    assert incident.subject == f"store:{store}"
    parent = await h.parent_of(incident)
    # the incident opened when the store's metrics stopped; Disconnected edited its parent
    await h.fake.wait_for(lambda: f"Store {store} disconnected" in h.current(parent).text)
    text = await h.wait_text(parent, "Diagnosis of")
    assert f"store {store}" in text.lower()
    await h.stack.wait_idle()
    assert all(callbacks.APPROVE not in m.action_ids() for m in h.thread(parent))
    assert await h.stack.runtime.repos.proposals.list(limit=10) == []
    assert h.pd_writes() == []


async def test_flaky_pd_is_explained_and_nothing_is_sent_to_pd(e2e: Make) -> None:
    h = await e2e(pd_retries=0)  # with retries, one retry hides every failure (as it should)
    h.sim.apply_scenario("pd-flaky")
    incident = await h.incident("pd_unreachable")
    parent = await h.parent_of(incident)
    text = await h.wait_text(parent, "Diagnosis of")
    assert "PD" in text
    assert "503" in incident.details.get("message", "") or "503" in text
    await h.stack.wait_idle()
    assert all(callbacks.APPROVE not in m.action_ids() for m in h.thread(parent))
    assert await h.stack.runtime.repos.proposals.list(limit=10) == []
    assert h.pd_writes() == []


# --------------------------------------------------------------------------- one incident per cause
#
# The fault scenarios again, counting the incident parents the channel gets: one per cause.
# These run on a cluster that settled before the bot started, with Disconnected → Down and down
# peers made quick in virtual time (max-store-down-time 120 s, max-peer-down-duration 90 s; the
# simulator runs 20x), and the region-health grace the bot ships with (`Settings`' default,
# 60 s), in the simulator's time: the bot's clock is the wall clock, so the shipped 60 s are
# 3 s of it here. No test-only value: with the old default of 0 every region PD moves (a
# learner catching up, the old peer not yet removed) was a pending or extra peer for a moment,
# and an incident of its own (bench/correlation.txt).

QUICK_DOWN = 120.0
QUICK_PEER_DOWN = 90.0
SPEED = 20.0
SHIPPED_REGION_GRACE = Settings.model_fields["region_health_grace"].default
REGION_GRACE = float(os.environ.get("TIKVOPS_E2E_REGION_GRACE", SHIPPED_REGION_GRACE)) / SPEED
"""The shipped default in the simulator's time. `TIKVOPS_E2E_REGION_GRACE` (virtual seconds)
is only for measuring another default (bench/correlation.txt); the tests assert the table with
the shipped one."""


async def cause_stack(e2e: Make, *, stores: int = 5, **overrides: Any) -> E2E:
    h = await e2e(
        stores=stores,
        speed=SPEED,
        settle_first=True,
        sim_options={"peer_down_seconds": QUICK_PEER_DOWN},
        region_health_grace=REGION_GRACE,
        **overrides,
    )
    schedule = h.sim.cluster.schedule
    before = schedule.max_store_down_time
    schedule.values["max-store-down-time"] = QUICK_DOWN
    h.sim.cluster.config_changed(before)
    return h


async def after_virtual(h: E2E, seconds: float, *, ticks: int = 4) -> None:
    """Wait until the simulator's clock is `seconds` past now, then for `ticks` more monitor
    cycles and for every incident's parent to be in the channel."""
    target = h.sim.cluster.now + seconds
    await h.fake.wait_for(lambda: h.sim.cluster.now >= target, timeout=WAIT + seconds / 10)
    await more_ticks(h, ticks)


async def more_ticks(h: E2E, ticks: int = 4) -> None:
    monitor = h.stack.monitor
    start = monitor.ticks
    await h.fake.wait_for(lambda: monitor.ticks >= start + ticks, timeout=WAIT)
    await parents_delivered(h)


async def parents_delivered(h: E2E) -> None:
    async def delivered() -> bool:
        incidents = await h.stack.runtime.repos.incidents.list(limit=200)
        return len(h.top()) >= len(incidents)

    await h.fake.wait_for(delivered, timeout=WAIT)


def parents(h: E2E, scenario: str) -> list[str]:
    titles = [m.text for m in h.top()]
    print(f"\nSCENARIO {scenario}: {len(titles)} parent(s): {titles}")
    return titles


async def test_cause_slow_store_on_three_stores_is_one_incident_with_a_drain(e2e: Make) -> None:
    h = await cause_stack(e2e, stores=3)
    store = h.sim.apply_scenario("slow-store").store_id
    await approve_and_verify(h, "write_latency", f"leaders on store {store}:", "→ 0")
    await wait_resolved(h)
    await more_ticks(h)
    titles = parents(h, "slow store, 3 stores")
    assert len(titles) == 1 and f"store {store}" in titles[0]


async def test_cause_single_store_down_is_one_incident(e2e: Make) -> None:
    h = await cause_stack(e2e)
    store = h.sim.apply_scenario("store-down").store_id
    await after_virtual(h, QUICK_DOWN + QUICK_PEER_DOWN + 120.0)
    titles = parents(h, "single store down")
    assert len(titles) == 1, titles
    [incident] = await h.stack.runtime.repos.incidents.list_open()
    assert incident.kind == "store_down" and f"Store {store} down" in titles[0]
    parent = await h.parent_of(incident)
    current = h.current(parent)
    assert current.edited  # Disconnected → Down edited the same parent
    thread = h.thread_text(parent)
    # one reply per change: the escalation, and each consequence as it appeared (and cleared,
    # once PD re-created the replicas)
    assert f"Store {store} disconnected → Store {store} down." in thread
    assert "New consequence: " in thread and "regions with a pending peer" in thread
    # diagnosed for the cause: the escalation to Down got the store-down playbook's answer
    await h.wait_text(parent, "Nothing to approve: bring the store back")
    history = await h.stack.runtime.repos.events.after(0, limit=500)
    cards = [e.incident for e in history if e.incident is not None and e.subject == incident.id]
    assert any(c.details.get("consequences") for c in cards)  # counts were on the card


async def test_cause_store_down_then_back_resolves_one_incident(e2e: Make) -> None:
    h = await cause_stack(e2e)
    store = h.sim.apply_scenario("store-down").store_id
    assert store is not None
    await after_virtual(h, QUICK_DOWN + QUICK_PEER_DOWN + 60.0)
    h.sim.faults.start_store(store)

    async def all_resolved() -> bool:
        return await h.stack.runtime.repos.incidents.list_open() == []

    await h.fake.wait_for(all_resolved, timeout=WAIT * 2)
    await more_ticks(h)
    titles = parents(h, "store down then back")
    assert len(titles) == 1 and titles[0].startswith("Resolved"), titles


async def test_cause_slow_store_is_one_incident(e2e: Make) -> None:
    h = await cause_stack(e2e)
    store = h.sim.apply_scenario("slow-store").store_id
    incident = await h.incident("write_latency")
    await h.parent_of(incident)
    await after_virtual(h, 120.0)
    titles = parents(h, "slow store")
    assert len(titles) == 1 and f"store {store}" in titles[0], titles


async def test_cause_disk_filling_is_one_incident(e2e: Make) -> None:
    h = await cause_stack(e2e)
    store = h.sim.apply_scenario("disk-filling").store_id
    incident = await h.incident("disk_usage")
    await h.parent_of(incident)
    await after_virtual(h, 600.0)  # past low-space-ratio: it worsens, in the same incident
    titles = parents(h, "disk filling")
    assert len(titles) == 1 and f"store {store}" in titles[0], titles


async def test_cause_two_stores_down_with_quorum_loss_is_one_critical_incident(
    e2e: Make,
) -> None:
    h = await cause_stack(e2e, stores=3)
    result = h.sim.apply_scenario("two-stores-down")
    assert result.details["stores"] == [2, 3] and result.details["quorum_lost_regions"] == 150
    await after_virtual(h, QUICK_DOWN + QUICK_PEER_DOWN + 120.0)
    titles = parents(h, "two stores down, quorum lost")
    assert len(titles) == 1, titles
    [incident] = await h.stack.runtime.repos.incidents.list_open()
    assert incident.severity.value == "critical"
    card = block_text(h.current(await h.parent_of(incident)))
    assert incident.title == "Stores 2 and 3 down: 150 regions lost quorum"
    assert "150 regions lost quorum and cannot serve reads or writes" in card
    assert "stores 2, 3" in card  # where
    # diagnosed for the cause (the store-down playbook, which names the quorum loss)
    await h.wait_text(await h.parent_of(incident), "lost a majority of their voters")


async def test_cause_pd_down_for_a_minute_is_one_incident(e2e: Make) -> None:
    h = await cause_stack(e2e, pd_retries=0)
    h.sim.faults.partition(seconds=60.0)
    incident = await h.incident("pd_unreachable")
    await h.parent_of(incident)
    await after_virtual(h, 120.0)
    titles = parents(h, "PD down for a minute")
    assert len(titles) == 1 and "PD" in titles[0], titles


async def test_cause_store_down_while_another_is_slow_is_two_incidents(e2e: Make) -> None:
    h = await cause_stack(e2e)
    slow = h.sim.apply_scenario("slow-store").store_id
    down = h.sim.apply_scenario("store-down").store_id
    await after_virtual(h, QUICK_DOWN + QUICK_PEER_DOWN + 120.0)
    titles = parents(h, "store down while another is slow")
    assert len(titles) == 2, titles
    assert any(f"store {slow}" in t for t in titles)
    assert any(f"Store {down}" in t for t in titles)
