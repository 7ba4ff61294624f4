"""What evicting one store's leaders would do, estimated from PD's store list alone.

A drain (evict-leader) moves each leader of the store to another voter of the same region, on
a store that can take leaders: Up and not drained itself. PD's evict-leader picks one such
follower at random and, for a region with a pending or down peer, leaves that peer's store
out. Knowing exactly which leaders can move would mean reading every region the store leads
(`/regions/store/{id}`: hundreds of thousands of regions on a large cluster), so everything
here comes from the per-store counts PD returns in one `/stores` call:

- **leaders that certainly cannot move**: at most `Σ voters on eligible stores` of the
  store's regions have a voter on an eligible store, so any leader beyond that sum has none.
  This is a certainty, not an estimate.
- **leaders that may not move** (an upper bound): a region led by the store has
  k = max-replicas − 1 other voters, on distinct stores. It is stuck only if each of them is a
  "blocked" peer: on a store that cannot take leaders (not Up, or drained), or pending. Each
  stuck region takes one blocked peer from k different stores, so x stuck regions need
  `Σ min(blocked peers on store i, x) ≥ k·x`; the bound is the largest such x (at most the
  store's leaders). With fewer than k stores holding blocked peers it is 0: on a healthy
  3-store cluster with max-replicas 3 no leader can be stuck.
- **leader load**: the store's leaders spread over the eligible stores in proportion to the
  voters each holds (a store that holds a voter of more regions follows more of the
  store's regions); every other store keeps its leaders.

Assumed, not seen: every region has max-replicas voters on distinct stores (a region missing
a peer, or placement rules with other counts, are not in the store counts), and a down peer on
an Up store (PD reports down peers per region only) counts as healthy.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate

from operator_tikv.actions.state import StoreView

LEADER_SHARE_WARN = 0.6
"""Warn when, after a drain, one store would lead more than this share of all leaders.

60 %: with two stores left (a 3-store cluster, the case TiUP's rolling restart creates on every
upgrade) an even spread puts 50 % on each, which is normal and must not warn; the 10 points
above it absorb the imbalance balance-leader tolerates. Above 60 % one store leads more than
all the others together and 1.5 times the next one in a 2-store split: its CPU and disk then
set the latency of most requests, which is what draining a slow store tries to avoid, and if
that store fails next most leaders must be re-elected at once."""


@dataclass(frozen=True)
class StuckLeaders:
    """How many of the store's leaders could not move, from store counts."""

    leaders: int
    certain: int
    """Leaders that certainly have no voter on a store that can take leaders."""
    possible: int
    """At most this many may have no healthy voter there (≥ `certain`)."""
    other_voters: int
    """max-replicas − 1: the other voters each region is assumed to have."""
    eligible_voters: int
    """Voters held by the stores that can take leaders, summed."""
    blocked: tuple[int, ...]
    """Other stores that hold replicas but cannot take leaders (not Up, or drained)."""
    blocked_replicas: int
    pending: tuple[tuple[int, int], ...]
    """(store, pending peers) for eligible stores that report pending peers."""


@dataclass(frozen=True)
class StoreLoad:
    """One remaining store's leaders now and after the drain (estimated)."""

    store_id: int
    now: int
    after: int
    share: float
    """Of all the cluster's leaders after the drain, 0..1."""
    target: bool
    """Whether it can take the drained store's leaders."""


def stuck_leaders(
    source: StoreView,
    stores: Mapping[int, StoreView],
    targets: Sequence[int],
    max_replicas: int,
) -> StuckLeaders:
    """Bounds on the leaders of `source` that a drain could not move (see the module doc)."""
    leaders = source.leader_count
    k = max(0, max_replicas - 1)
    eligible = set(targets)
    eligible_voters = sum(stores[s].voter_count for s in targets if s in stores)
    blocked = sorted(
        s.id
        for s in stores.values()
        if s.id != source.id and s.id not in eligible and s.region_count > 0
    )
    blocked_replicas = sum(stores[s].region_count for s in blocked)
    pending = tuple(
        (s, stores[s].pending_peer_count)
        for s in sorted(eligible)
        if s in stores and stores[s].pending_peer_count > 0
    )
    if leaders == 0:
        certain = possible = 0
    elif k == 0:
        certain = possible = leaders  # a single replica: there is no other voter at all
    else:
        certain = max(0, leaders - eligible_voters)
        slots = [stores[s].region_count for s in blocked] + [count for _, count in pending]
        possible = max(_most_stuck(slots, k, leaders), certain)
    return StuckLeaders(
        leaders=leaders,
        certain=certain,
        possible=possible,
        other_voters=k,
        eligible_voters=eligible_voters,
        blocked=tuple(blocked),
        blocked_replicas=blocked_replicas,
        pending=pending,
    )


def _most_stuck(slots: Sequence[int], k: int, cap: int) -> int:
    """The largest x ≤ cap with Σ min(slot, x) ≥ k·x: how many regions could each have all k
    other voters among the blocked peers, one per store. The left side minus k·x is concave
    and 0 at x = 0, so the x that fit form a range from 0 and a binary search finds its end
    (each step O(log stores), with the slots sorted once)."""
    ordered = sorted(slots)
    prefix = list(accumulate(ordered, initial=0))

    def fits(x: int) -> bool:
        below = bisect_right(ordered, x)  # slots ≤ x count whole, the rest count x each
        return prefix[below] + x * (len(ordered) - below) >= k * x

    low, high = 0, cap
    while low < high:
        mid = (low + high + 1) // 2
        if fits(mid):
            low = mid
        else:
            high = mid - 1
    return low


def leader_load(
    source: StoreView, stores: Mapping[int, StoreView], targets: Sequence[int]
) -> tuple[StoreLoad, ...]:
    """The leaders each remaining store would lead once `source` holds none: its leaders
    spread over `targets` in proportion to their voters (evenly when none reports any).
    Stores that are not targets and lead nothing are left out. Largest load first."""
    moved = _spread(source.leader_count, [(s, stores[s].voter_count) for s in targets])
    total = sum(s.leader_count for s in stores.values())
    loads = []
    for store in stores.values():
        if store.id == source.id:
            continue
        after = store.leader_count + moved.get(store.id, 0)
        if after == 0 and store.id not in moved:
            continue
        share = after / total if total else 0.0
        loads.append(
            StoreLoad(
                store_id=store.id,
                now=store.leader_count,
                after=after,
                share=share,
                target=store.id in moved,
            )
        )
    return tuple(sorted(loads, key=lambda load: (-load.after, load.store_id)))


def _spread(amount: int, weights: Sequence[tuple[int, int]]) -> dict[int, int]:
    """`amount` split over the ids by weight, in whole units that add up (largest remainder;
    ties to the lower id)."""
    if not weights:
        return {}
    total = sum(max(0, w) for _, w in weights)
    if total == 0:
        weights = [(i, 1) for i, _ in weights]
        total = len(weights)
    shares = {i: amount * max(0, w) / total for i, w in weights}
    result = {i: int(share) for i, share in shares.items()}
    left = amount - sum(result.values())
    by_remainder = sorted(shares, key=lambda i: (-(shares[i] - result[i]), i))
    for i in by_remainder[:left]:
        result[i] += 1
    return result


def concentrated(loads: Sequence[StoreLoad], limit: float = LEADER_SHARE_WARN) -> StoreLoad | None:
    """The most loaded store when it would lead more than `limit` of all leaders, else None."""
    top = max(loads, key=lambda load: (load.share, -load.store_id), default=None)
    if top is not None and top.share > limit:
        return top
    return None
