"""The drain's estimates from store counts: which bounds hold on which shapes of cluster, and how
the leaders spread."""

from __future__ import annotations

import pytest

from operator_tikv.actions.leader_moves import (
    LEADER_SHARE_WARN,
    StoreLoad,
    concentrated,
    leader_load,
    stuck_leaders,
)
from operator_tikv.actions.state import StoreView


def view(
    sid: int,
    state: str = "Up",
    leaders: int = 0,
    regions: int = 0,
    learners: int = 0,
    pending: int = 0,
) -> StoreView:
    return StoreView(
        id=sid,
        state_name=state,
        leader_count=leaders,
        region_count=regions,
        learner_count=learners,
        pending_peer_count=pending,
    )


def cluster(*stores: StoreView) -> dict[int, StoreView]:
    return {s.id: s for s in stores}


def test_three_up_stores_with_three_replicas_leave_no_leader_stuck() -> None:
    stores = cluster(
        view(1, leaders=334, regions=1000),
        view(2, leaders=333, regions=1000),
        view(3, leaders=333, regions=1000),
    )
    est = stuck_leaders(stores[1], stores, [2, 3], max_replicas=3)
    assert (est.certain, est.possible) == (0, 0)
    assert est.other_voters == 2 and est.eligible_voters == 2000
    assert est.blocked == () and est.pending == ()


def test_one_blocked_store_cannot_hold_both_other_voters() -> None:
    stores = cluster(
        view(1, leaders=500, regions=1000),
        view(2, leaders=500, regions=1000),
        view(3, "Down", regions=1000),
    )
    est = stuck_leaders(stores[1], stores, [2], max_replicas=3)
    assert (est.certain, est.possible) == (0, 0)
    assert est.blocked == (3,) and est.blocked_replicas == 1000


def test_two_blocked_stores_bound_the_stuck_regions_by_their_replicas() -> None:
    stores = cluster(
        view(1, leaders=1000, regions=3000),
        view(2, leaders=1000, regions=3000),
        view(3, leaders=1000, regions=3000),
        view(4, "Down", regions=500),
        view(5, "Disconnected", regions=300),
    )
    est = stuck_leaders(stores[1], stores, [2, 3], max_replicas=3)
    # A stuck region needs a peer on both 4 and 5: at most 300 (store 5's replicas), not
    # (500 + 300) / 2.
    assert (est.certain, est.possible) == (0, 300)
    # With max-replicas 5 (4 other voters) two blocked stores can never hold them all.
    assert stuck_leaders(stores[1], stores, [2, 3], max_replicas=5).possible == 0


def test_leaders_beyond_the_voters_on_targets_certainly_cannot_move() -> None:
    stores = cluster(
        view(1, leaders=900, regions=1000),
        view(2, leaders=10, regions=300, learners=50),
        view(3, "Down", regions=1000),
        view(4, "Down", regions=1000),
    )
    est = stuck_leaders(stores[1], stores, [2], max_replicas=3)
    assert est.eligible_voters == 250
    assert est.certain == 650
    assert est.possible == 900  # never below the certain count, never above the leaders


def test_a_store_without_leaders_or_without_other_replicas() -> None:
    stores = cluster(view(1, regions=1000), view(2, leaders=1000, regions=1000))
    assert stuck_leaders(stores[1], stores, [2], max_replicas=3).possible == 0
    single = cluster(view(1, leaders=600, regions=600), view(2, leaders=400, regions=400))
    est = stuck_leaders(single[1], single, [2], max_replicas=1)
    assert (est.certain, est.possible, est.other_voters) == (600, 600, 0)


def test_the_bound_counts_one_blocked_peer_per_store() -> None:
    stores = cluster(
        view(1, leaders=1000, regions=2000),
        view(2, leaders=900, regions=2000),
        view(3, "Down", regions=2000),
        view(4, "Down", regions=150),
        view(5, "Down", regions=150),
        view(6, "Down", regions=150),
    )
    # Three other voters (max-replicas 4): x regions need Σ min(c, x) ≥ 3x over
    # (2000, 150, 150, 150): x = 225 fits (225 + 450 = 675), 226 does not (226 + 450 < 678).
    assert stuck_leaders(stores[1], stores, [2], max_replicas=4).possible == 225


def test_leaders_spread_by_voters_and_add_up() -> None:
    stores = cluster(
        view(1, leaders=1001, regions=3000),
        view(2, leaders=10, regions=1000),
        view(3, leaders=20, regions=2000),
        view(4, "Down", leaders=0, regions=3000),
        view(5, "Up", leaders=7, regions=100),  # drained: keeps its leaders, takes none
    )
    loads = leader_load(stores[1], stores, [2, 3])
    assert [(x.store_id, x.now, x.after, x.target) for x in loads] == [
        (3, 20, 20 + 667, True),
        (2, 10, 10 + 334, True),
        (5, 7, 7, False),
    ]
    assert sum(x.after for x in loads) == sum(s.leader_count for s in stores.values())
    assert loads[0].share == pytest.approx(687 / 1038)


def test_targets_without_voters_share_evenly() -> None:
    stores = cluster(view(1, leaders=5), view(2), view(3))
    loads = leader_load(stores[1], stores, [2, 3])
    assert sorted((x.store_id, x.after) for x in loads) == [(2, 3), (3, 2)]


def test_concentration_warns_only_above_the_limit() -> None:
    even = [StoreLoad(2, 333, 500, 0.5, True), StoreLoad(3, 333, 500, 0.5, True)]
    assert concentrated(even) is None
    at_limit = [StoreLoad(2, 0, 60, LEADER_SHARE_WARN, True), StoreLoad(3, 0, 40, 0.4, True)]
    assert concentrated(at_limit) is None
    above = [StoreLoad(2, 0, 61, 0.61, True), StoreLoad(3, 0, 39, 0.39, True)]
    top = concentrated(above)
    assert top is not None and top.store_id == 2
    assert concentrated([]) is None


def test_the_bound_matches_a_direct_search_on_many_shapes() -> None:
    from random import Random

    from operator_tikv.actions.leader_moves import _most_stuck

    rng = Random(7)
    for _ in range(300):
        slots = [rng.randrange(0, 60) for _ in range(rng.randrange(0, 7))]
        k = rng.randrange(1, 5)
        cap = rng.randrange(0, 80)
        direct = max(x for x in range(cap + 1) if sum(min(c, x) for c in slots) >= k * x)
        assert _most_stuck(slots, k, cap) == direct, (slots, k, cap)
