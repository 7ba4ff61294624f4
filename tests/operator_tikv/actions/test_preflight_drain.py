"""The drain's checks as pure functions of the store list (`preflight.drain_checks`): what a
large cluster's checks name, and that a failed check stops the estimates only where they would
mislead."""

from __future__ import annotations

from operator_tikv.actions.base import PreflightContext
from operator_tikv.actions.preflight import drain_checks
from operator_tikv.actions.state import StoreView


def up(sid: int, leaders: int, regions: int, state: str = "Up") -> StoreView:
    return StoreView(id=sid, state_name=state, leader_count=leaders, region_count=regions)


def test_a_large_cluster_lists_the_five_most_loaded_stores() -> None:
    stores = {i: up(i, leaders=100 + i, regions=300) for i in range(1, 10)}
    checks = {c.name: c for c in drain_checks(1, stores, (), 3, PreflightContext())}
    load = checks["leader-load"].observed
    # 101 leaders over 8 equal targets: 13 to the five lowest ids (2-6), 12 to 7, 8, 9;
    # 945 leaders in all, ties listed by id.
    assert load.endswith(
        "store 9 ≈ 121 (13%, now 109), store 8 ≈ 120 (13%, now 108), store 6 ≈ 119 (13%, now "
        "106), store 7 ≈ 119 (13%, now 107), store 5 ≈ 118 (12%, now 105), 3 more store(s)"
    )
    assert checks["leader-load"].warning is False
    assert all(c.ok for c in checks.values())


def test_many_blocked_stores_are_named_up_to_five() -> None:
    stores = {1: up(1, 500, 1000), 2: up(2, 500, 1000)}
    stores |= {i: up(i, 0, 100, "Down") for i in range(3, 11)}
    checks = {c.name: c for c in drain_checks(1, stores, (), 3, PreflightContext())}
    voters = checks["healthy-voters-elsewhere"]
    assert voters.ok and voters.warning
    assert "stores 3 (Down), 4 (Down), 5 (Down), 6 (Down), 7 (Down) and 3 more cannot take " in (
        voters.message
    )
    assert "hold 800 replicas" in voters.message
    # 800 replicas, 2 per stuck region: at most 400 of store 1's 500 leaders.
    assert voters.message.startswith("up to 400 of the 500 leaders of store 1")


def test_an_unknown_store_gets_only_the_existence_check() -> None:
    checks = drain_checks(9, {1: up(1, 5, 5)}, (), 3, PreflightContext())
    assert [(c.name, c.ok) for c in checks] == [("store-exists", False)]


def test_a_store_of_learners_only_takes_no_leaders() -> None:
    stores = {1: up(1, 500, 1000), 2: up(2, 500, 1000)}
    stores[3] = StoreView(
        id=3, state_name="Up", leader_count=0, region_count=1000, learner_count=1000
    )
    checks = {c.name: c for c in drain_checks(1, stores, (), 3, PreflightContext())}
    assert checks["enough-leader-stores"].observed == "1 other Up store(s) can take leaders (2)"
    assert "store 3" not in checks["leader-load"].observed
    # Alone with a TiFlash-like store, a store's leaders have nowhere to go.
    alone = {1: stores[1], 3: stores[3]}
    refused = {c.name: c for c in drain_checks(1, alone, (), 3, PreflightContext())}
    assert not refused["enough-leader-stores"].ok
    assert "(store 3 holds learners only)" in refused["enough-leader-stores"].message
