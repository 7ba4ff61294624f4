"""The correlation rules as a table: violations (and stores still recovering) in, the incidents
by cause out, each with its consequences."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from engine.correlation import (
    STORES_FINGERPRINT,
    Freshness,
    correlate,
    legacy_fingerprints,
    store_fingerprint,
)
from operator_tikv.violations import Severity, Violation, ViolationKind

K = ViolationKind


def v(
    kind: ViolationKind,
    store: int | None = None,
    *,
    count: int | None = None,
    peers: dict[int, int] | None = None,
    lost: int = 0,
    stale: bool = False,
    critical: bool = False,
) -> Violation:
    severe = critical or kind in (K.STORE_DOWN, K.PD_UNREACHABLE) or lost > 0
    return Violation(
        kind=kind,
        severity=Severity.CRITICAL if severe else Severity.WARNING,
        store_id=store,
        value=float(count) if count is not None else None,
        unit="regions" if count is not None else "",
        first_seen=0.0,
        message=f"{kind.value} {store or ''}",
        peer_stores=peers or {},
        quorum_lost=tuple(range(1, min(lost, 3) + 1)),
        quorum_lost_count=lost,
        stale=stale,
    )


@dataclass(frozen=True)
class Expect:
    """One expected incident: its fingerprint, cause kind (None: the cause cleared), severity,
    and consequences as `kind: count`."""

    fingerprint: str
    cause: ViolationKind | None
    severity: Severity = Severity.WARNING
    consequences: dict[str, int | None] = field(default_factory=dict)
    freshness: Freshness = Freshness.FRESH
    title: str | None = None


@dataclass(frozen=True)
class Case:
    name: str
    violations: list[Violation]
    expect: list[Expect]
    pending: list[Violation] = field(default_factory=list)
    recovering: tuple[int, ...] = ()


CASES = [
    Case(
        "a Disconnected store absorbs its pending peers and the extra replicas (by presence)",
        [
            v(K.STORE_DISCONNECTED, 5),
            v(K.REGION_PENDING_PEER, count=40, peers={5: 40}),
            v(K.REGION_EXTRA_PEER, count=3),
        ],
        [
            Expect(
                store_fingerprint(5),
                K.STORE_DISCONNECTED,
                consequences={"region_pending_peer": 40, "region_extra_peer": 3},
            )
        ],
    ),
    Case(
        "a Down store absorbs down, pending and missing-peer regions",
        [
            v(K.STORE_DOWN, 5),
            v(K.REGION_DOWN_PEER, count=30, peers={5: 30}),
            v(K.REGION_PENDING_PEER, count=30, peers={5: 30}),
            v(K.REGION_MISS_PEER, count=12),
        ],
        [
            Expect(
                store_fingerprint(5),
                K.STORE_DOWN,
                Severity.CRITICAL,
                {"region_down_peer": 30, "region_pending_peer": 30, "region_miss_peer": 12},
            )
        ],
    ),
    Case(
        "a store whose metrics stopped is the same incident (before PD notices)",
        [v(K.STORE_METRICS_MISSING, 5)],
        [Expect(store_fingerprint(5), K.STORE_METRICS_MISSING)],
    ),
    Case(
        "region health with no unhealthy store behind it stays its own incident",
        [v(K.REGION_EXTRA_PEER, count=2), v(K.WRITE_LATENCY, 2)],
        [
            Expect("region_extra_peer:cluster", K.REGION_EXTRA_PEER),
            Expect("write_latency:store:2", K.WRITE_LATENCY),
        ],
    ),
    Case(
        "pending peers on a healthy store are not the Disconnected store's",
        [
            v(K.STORE_DISCONNECTED, 5),
            v(K.REGION_PENDING_PEER, count=4, peers={3: 4}),
        ],
        [
            Expect(store_fingerprint(5), K.STORE_DISCONNECTED),
            Expect("region_pending_peer:cluster", K.REGION_PENDING_PEER),
        ],
    ),
    Case(
        "the fresh count, not the older list's, when the list named only this store",
        [v(K.STORE_DOWN, 5), v(K.REGION_DOWN_PEER, count=92, peers={5: 24})],
        [Expect(store_fingerprint(5), K.STORE_DOWN, Severity.CRITICAL, {"region_down_peer": 92})],
    ),
    Case(
        "peers named on a sick and a healthy store: the sick one's share, as listed",
        [v(K.STORE_DOWN, 5), v(K.REGION_PENDING_PEER, count=30, peers={5: 20, 2: 10})],
        [
            Expect(
                store_fingerprint(5), K.STORE_DOWN, Severity.CRITICAL, {"region_pending_peer": 20}
            )
        ],
    ),
    Case(
        "a slow store beside a Down one: two causes",
        [
            v(K.STORE_DOWN, 5),
            v(K.WRITE_LATENCY, 2),
            v(K.REGION_PENDING_PEER, count=30, peers={5: 30}),
        ],
        [
            Expect(
                store_fingerprint(5),
                K.STORE_DOWN,
                Severity.CRITICAL,
                {"region_pending_peer": 30},
            ),
            Expect("write_latency:store:2", K.WRITE_LATENCY),
        ],
    ),
    Case(
        "two stores down with quorum loss: one critical incident naming both",
        [
            v(K.STORE_DOWN, 2),
            v(K.STORE_DOWN, 3),
            v(K.REGION_DOWN_PEER, count=150, peers={2: 150, 3: 150}, lost=150),
            v(K.REGION_PENDING_PEER, count=150, peers={2: 150, 3: 150}),
        ],
        [
            Expect(
                STORES_FINGERPRINT,
                K.STORE_DOWN,
                Severity.CRITICAL,
                {"region_down_peer": 150, "region_pending_peer": 150},
                title="Stores 2 and 3 down: 150 regions lost quorum",
            )
        ],
    ),
    Case(
        "two stores Disconnected, no quorum loss known yet: one incident, a warning",
        [v(K.STORE_DISCONNECTED, 2), v(K.STORE_DISCONNECTED, 3)],
        [
            Expect(
                STORES_FINGERPRINT,
                K.STORE_DISCONNECTED,
                title="Stores 2 and 3 disconnected",
            )
        ],
    ),
    Case(
        "PD unreachable: one fresh incident, everything else frozen",
        [
            v(K.PD_UNREACHABLE),
            v(K.WRITE_LATENCY, 2, stale=True),
            v(K.STORE_DOWN, 5, stale=True),
        ],
        [
            Expect("pd_unreachable:cluster", K.PD_UNREACHABLE, Severity.CRITICAL),
            Expect(
                store_fingerprint(5),
                K.STORE_DOWN,
                Severity.CRITICAL,
                freshness=Freshness.STALE,
            ),
            Expect("write_latency:store:2", K.WRITE_LATENCY, freshness=Freshness.STALE),
        ],
    ),
    Case(
        "a store back Up whose incident is open keeps its catching-up regions",
        [
            v(K.REGION_PENDING_PEER, count=20, peers={5: 20}),
            v(K.REGION_EXTRA_PEER, count=7),
        ],
        [
            Expect(
                store_fingerprint(5),
                None,
                consequences={"region_pending_peer": 20, "region_extra_peer": 7},
            )
        ],
        recovering=(5,),
    ),
    Case(
        "a recovered store with nothing left makes no group (its incident clears)",
        [v(K.DISK_USAGE, 1)],
        [Expect("disk_usage:store:1", K.DISK_USAGE)],
        recovering=(5,),
    ),
    Case(
        "a pending region violation is attached, and keeps the store incident fresh",
        [v(K.STORE_DISCONNECTED, 5)],
        [Expect(store_fingerprint(5), K.STORE_DISCONNECTED, consequences={"region_extra_peer": 2})],
        pending=[v(K.REGION_EXTRA_PEER, count=2)],
    ),
    Case(
        "a pending Disconnected store (grace) still absorbs, but cannot open",
        [v(K.REGION_PENDING_PEER, count=9, peers={4: 9})],
        [
            Expect(
                store_fingerprint(4),
                K.STORE_DISCONNECTED,
                consequences={"region_pending_peer": 9},
            )
        ],
        pending=[v(K.STORE_DISCONNECTED, 4)],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_correlation_table(case: Case) -> None:
    result = correlate(case.violations, case.pending, recovering=case.recovering)
    got = {g.fingerprint: g for g in result.groups}
    assert sorted(got) == sorted(e.fingerprint for e in case.expect)
    for expect in case.expect:
        group = got[expect.fingerprint]
        assert (group.cause.kind if group.cause else None) is expect.cause
        assert group.severity is expect.severity
        assert group.freshness is expect.freshness
        assert {c.kind.value: c.count for c in group.consequences} == expect.consequences
        if expect.title is not None:
            assert group.title == expect.title


def test_only_a_fresh_cause_opens_an_incident() -> None:
    pending_store = correlate(
        [v(K.REGION_PENDING_PEER, count=9, peers={4: 9})], [v(K.STORE_DISCONNECTED, 4)]
    )
    [group] = pending_store.groups
    assert not group.can_open  # the Disconnected grace gates it, and its regions wait with it
    recovering = correlate([v(K.REGION_EXTRA_PEER, count=1)], recovering=(5,))
    [group] = recovering.groups
    assert group.cause is None and not group.can_open  # continues an open incident only
    assert correlate([v(K.STORE_DOWN, 5)]).groups[0].can_open


def test_a_store_group_adopts_the_same_cause_in_its_earlier_shapes() -> None:
    [one] = correlate([v(K.STORE_DOWN, 5)]).groups
    assert set(legacy_fingerprints(5)) <= set(one.adopts)
    assert STORES_FINGERPRINT in one.adopts  # a several-store incident shrinking back to one
    [several] = correlate([v(K.STORE_DOWN, 2), v(K.STORE_DISCONNECTED, 3)]).groups
    assert {store_fingerprint(2), store_fingerprint(3)} <= set(several.adopts)
    assert several.title == "Stores 2 and 3 unavailable"
    assert several.stores == (2, 3)
    assert several.cause is not None and several.cause.store_id == 2  # the worst: Down


def test_absorbed_consequences_name_the_incidents_they_would_have_opened() -> None:
    [group] = correlate([v(K.STORE_DOWN, 5), v(K.REGION_DOWN_PEER, count=3, peers={5: 3})]).groups
    assert group.absorbs == ("region_down_peer:cluster",)
    [consequence] = group.consequences
    assert consequence.stores == (5,) and not consequence.by_presence


def test_quorum_loss_message_names_the_regions() -> None:
    [group] = correlate(
        [
            v(K.STORE_DOWN, 2),
            v(K.STORE_DOWN, 3),
            v(K.REGION_DOWN_PEER, count=5, peers={2: 5, 3: 5}, lost=5),
        ]
    ).groups
    assert group.cause is not None
    assert group.cause.severity is Severity.CRITICAL
    assert "5 regions lost a majority" in group.cause.message
    assert "(e.g. 1, 2, 3, ...)" in group.cause.message
    assert group.quorum_lost_count == 5 and group.quorum_lost == (1, 2, 3)
