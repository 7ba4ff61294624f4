"""A slow store on the default 3-store simulator through the real bot and the Slack stand-in:
the playbook proposes a drain whose preflight shows the leader load of the two other stores,
alice approves it, and every leader of the slow store moves away."""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable

from tests.e2e.conftest import E2E, block_text
from tests.e2e.test_scenarios import approve_and_verify

Make = Callable[..., Awaitable[E2E]]


async def test_slow_store_on_three_stores_is_drained(e2e: Make) -> None:
    h = await e2e(stores=3)
    result = h.sim.apply_scenario("slow-store")
    store = result.store_id
    assert store is not None and h.leaders(store) > 0
    others = [s for s in (1, 2, 3) if s != store]
    incident = await h.incident("write_latency")
    parent = await h.parent_of(incident)
    proposal = html.unescape(block_text(await h.proposal_message(parent)))
    assert "(7, all passed; run again right before execution)" in proposal
    assert f"*enough-leader-stores*: 2 other Up store(s) can take leaders ({others[0]}, " in (
        proposal
    )
    assert "*leader-load*: leaders after the drain, estimated (the " in proposal
    assert proposal.count("(50%, now ") == 4  # in the reason and in the leader-load check
    await approve_and_verify(h, "write_latency", f"leaders on store {store}:", "→ 0")
    [write] = h.pd_writes()
    assert write.body == {"name": "evict-leader-scheduler", "store_id": store}
    assert h.leaders(store) == 0
    assert sum(h.leaders(s) for s in others) == 150
