"""Every action against a small fake PD speaking PD's JSON (httpx MockTransport): the exact
write sent, preflight refusals with nothing sent, verification outcomes (success, timeout,
cancel, replace), dry-run effects, undo from the before snapshot, and reconcile after a crash.

The fake answers like PD v8.5 (zero region for an unknown id, JSON-string operator status,
404 text for a missing evict-leader config, 500 strings for refusals). Tests change its state
by hand to play what PD and TiKV would do over time.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from operator_tikv.actions import (
    REGISTRY,
    ActionCall,
    DrainParams,
    LimitParams,
    Outcome,
    PreflightContext,
    PreflightRefused,
    Snapshot,
    SpaceRatioParams,
    SplitParams,
    TransferLeaderParams,
    TransferPeerParams,
    UndrainParams,
    follow,
    validate_call,
)
from operator_tikv.errors import OperatorConflictError
from operator_tikv.pd import PDClient, open_pd_client

NOW = datetime(2026, 11, 23, 14, 0, 0, tzinfo=UTC)
CTX = PreflightContext(now=NOW)
BASE = "/pd/api/v1"


def _ns(when: datetime) -> int:
    return int(when.timestamp() * 1_000_000_000)


def _peer(peer_id: int, store_id: int, learner: bool = False) -> dict[str, Any]:
    peer: dict[str, Any] = {"id": peer_id, "store_id": store_id}
    if learner:
        peer.update(role_name="Learner", is_learner=True, role=1)
    else:
        peer["role_name"] = "Voter"
    return peer


@dataclass
class FakePD:
    """Cluster state plus PD's answers. `writes` logs every POST/DELETE as (method, path, body)."""

    stores: dict[int, dict[str, Any]] = field(default_factory=dict)
    regions: dict[int, dict[str, Any]] = field(default_factory=dict)
    operators: dict[int, str] = field(default_factory=dict)
    evicted: list[int] = field(default_factory=list)
    schedule: dict[str, Any] = field(
        default_factory=lambda: {
            "leader-schedule-limit": 4,
            "region-schedule-limit": 2048,
            "replica-schedule-limit": 64,
            "low-space-ratio": 0.8,
            "high-space-ratio": 0.7,
            "max-store-down-time": "30m0s",
        }
    )
    max_replicas: int = 3
    writes: list[tuple[str, str, Any]] = field(default_factory=list)
    refuse_operator: str | None = None

    # ---- state helpers

    def add_store(
        self,
        store_id: int,
        state: str = "Up",
        leaders: int = 0,
        regions: int = 0,
        age: float = 1,
        learners: int = 0,
        pending: int = 0,
    ) -> None:
        status: dict[str, Any] = {
            "capacity": "500GiB",
            "available": "250GiB",
            "leader_count": leaders,
            "region_count": regions,
        }
        if learners:  # PD omits these when zero
            status["learner_count"] = learners
        if pending:
            status["pending_peer_count"] = pending
        self.stores[store_id] = {
            "store": {
                "id": store_id,
                "address": f"127.0.0.1:2016{store_id}",
                "state_name": state,
                "last_heartbeat": _ns(NOW - timedelta(seconds=age)),
                "node_state": 1,
            },
            "status": status,
        }

    def set_leaders(self, store_id: int, leaders: int) -> None:
        self.stores[store_id]["status"]["leader_count"] = leaders

    def add_region(
        self,
        region_id: int,
        stores: list[int],
        leader: int,
        learners: tuple[int, ...] = (),
        down: tuple[int, ...] = (),
        pending: tuple[int, ...] = (),
        version: int = 61,
    ) -> None:
        peers = [_peer(region_id * 10 + i, s, learner=s in learners) for i, s in enumerate(stores)]
        by_store = {p["store_id"]: p for p in peers}
        self.regions[region_id] = {
            "id": region_id,
            "start_key": "7480000000000000FF05",
            "end_key": "7480000000000000FF07",
            "epoch": {"conf_ver": 5, "version": version},
            "peers": peers,
            "leader": by_store[leader],
            "down_peers": [{"peer": by_store[s], "down_seconds": 600} for s in down],
            "pending_peers": [by_store[s] for s in pending],
            "approximate_size": 94,
            "approximate_keys": 861234,
        }

    def move_leader(self, region_id: int, store_id: int) -> None:
        region = self.regions[region_id]
        region["leader"] = next(p for p in region["peers"] if p["store_id"] == store_id)

    def set_operator(
        self, region_id: int, status: str, desc: str = "admin-transfer-leader"
    ) -> None:
        brief = {"admin-transfer-leader": "transfer leader: store 4 to 1"}.get(desc, "x")
        finished = " finished" if status == "SUCCESS" else ""
        self.operators[region_id] = (
            f"status: {status}, operator: {desc} {{{brief}}} (kind:admin,leader, "
            f"region:{region_id}(61, 5), createAt:2026-11-23 14:19:58.731284606 +0000 UTC "
            "m=+37198.731412939, startAt:2026-11-23 14:19:58.731327715 +0000 UTC "
            "m=+37198.731456048, currentStep:0, size:94, steps:[0:{transfer leader from store 4 "
            f"to store 1}}], timeout:[1m0s]){finished}"
        )

    # ---- PD's HTTP answers

    def handle(self, request: httpx.Request) -> httpx.Response:
        method, path = request.method, request.url.path
        body = json.loads(request.content) if request.content else None
        if method != "GET":
            self.writes.append((method, path, body))
        rest = path.removeprefix(BASE)
        if method == "GET":
            return self._get(rest)
        if method == "POST" and rest == "/operators":
            return self._create_operator(body)
        if method == "POST" and rest == "/schedulers":
            if body["store_id"] not in self.stores:
                return _string(500, f"[PD:core:ErrStoreNotFound]store {body['store_id']} not found")
            if body["store_id"] not in self.evicted:
                self.evicted.append(body["store_id"])
            return _string(200, "The scheduler is created.")
        if method == "DELETE" and (
            m := re.fullmatch(r"/schedulers/evict-leader-scheduler-(\d+)", rest)
        ):
            store_id = int(m.group(1))
            if store_id not in self.evicted:
                return httpx.Response(404, content=b"null")
            self.evicted.remove(store_id)
            return httpx.Response(200, content=b"null")
        if method == "POST" and rest == "/config/schedule":
            self.schedule.update(body)
            return _string(200, "The config is updated.")
        return httpx.Response(404, text="404 page not found")

    def _get(self, rest: str) -> httpx.Response:
        if rest == "/stores":
            stores = list(self.stores.values())
            return httpx.Response(200, json={"count": len(stores), "stores": stores})
        if m := re.fullmatch(r"/store/(\d+)", rest):
            store = self.stores.get(int(m.group(1)))
            if store is None:
                return _string(404, f"[PD:core:ErrStoreNotFound]store {m.group(1)} not found")
            return httpx.Response(200, json=store)
        if m := re.fullmatch(r"/region/id/(\d+)", rest):
            region = self.regions.get(int(m.group(1)))
            if region is None:  # PD v8.5: 200 with a zero region
                zero = {"id": 0, "start_key": "", "end_key": "", "leader": {"role_name": ""}}
                return httpx.Response(200, json=zero)
            return httpx.Response(200, json=region)
        if m := re.fullmatch(r"/operators/(\d+)", rest):
            text = self.operators.get(int(m.group(1)))
            if text is None:
                return _string(500, "[PD:operator:ErrOperatorNotFound]operator not found")
            return _string(200, text)
        if rest == "/scheduler-config/evict-leader-scheduler/list":
            if not self.evicted:
                return httpx.Response(404, text="404 page not found\n")
            ranges = {str(s): [{"start-key": "", "end-key": ""}] for s in self.evicted}
            return httpx.Response(200, json={"store-id-ranges": ranges, "batch": 3})
        if rest == "/config/schedule":
            return httpx.Response(200, json=self.schedule)
        if rest == "/config/replicate":
            return httpx.Response(200, json={"max-replicas": self.max_replicas})
        return httpx.Response(404, text="404 page not found")

    def _create_operator(self, body: dict[str, Any]) -> httpx.Response:
        if self.refuse_operator:
            return _string(500, self.refuse_operator)
        region_id = body["region_id"]
        if region_id not in self.regions:
            return _string(500, f"[PD:region:ErrRegionNotFound]region {region_id} not found")
        current = self.operators.get(region_id, "")
        if current.startswith("status: RUNNING"):
            return _string(
                500, "[PD:operator:ErrAddOperator]failed to add operator, maybe already have one"
            )
        desc = {
            "transfer-leader": "admin-transfer-leader",
            "transfer-peer": "admin-move-peer",
            "split-region": "admin-split-region",
        }[body["name"]]
        self.set_operator(region_id, "RUNNING", desc)
        return _string(200, "The operator is created.")


def _string(status: int, text: str) -> httpx.Response:
    return httpx.Response(status, content=(json.dumps(text) + "\n").encode())


@pytest.fixture
def fake() -> FakePD:
    """Four Up stores (1, 4, 5, 6); region 2008 has voters on 1, 4, 5 with the leader on 4."""
    pd = FakePD()
    pd.add_store(1, leaders=900, regions=3000)
    pd.add_store(4, leaders=1203, regions=3610)
    pd.add_store(5, leaders=800, regions=3610)
    pd.add_store(6, leaders=700, regions=2000)
    pd.add_region(2008, [1, 4, 5], leader=4)
    return pd


@pytest.fixture
async def pd(fake: FakePD) -> AsyncIterator[PDClient]:
    async with open_pd_client(
        "http://pd.test", transport=httpx.MockTransport(fake.handle), retries=0
    ) as client:
        yield client


def writes(fake: FakePD) -> list[tuple[str, str, Any]]:
    return list(fake.writes)


async def refused(name: str, params: Any, pd: PDClient, fake: FakePD, check: str) -> str:
    """Run preflight and dry-run; assert `check` failed and nothing was written. The refusal."""
    action = REGISTRY[name]
    report = await action.preflight(params, pd, CTX)
    assert not report.ok
    assert check in [c.name for c in report.failures], report
    dry = await action.dry_run(params, pd, CTX)
    assert not dry.would_run and dry.expected_effect == "nothing (refused)"
    with pytest.raises(PreflightRefused):
        report.raise_if_refused()
    assert fake.writes == []
    return report.refusal()


# ------------------------------------------------------------------ transfer-leader

LEADER = TransferLeaderParams(region_id=2008, to_store_id=1)


async def test_transfer_leader_dry_run_sends_nothing(pd: PDClient, fake: FakePD) -> None:
    dry = await REGISTRY["transfer-leader"].dry_run(LEADER, pd, CTX)
    assert dry.would_run, dry.text()
    assert [c.name for c in dry.preflight.checks] == [
        "region-exists",
        "target-store-exists",
        "target-store-up",
        "target-not-evicted",
        "leader-elsewhere",
        "target-holds-healthy-voter",
        "no-running-operator",
    ]
    assert dry.expected_effect.startswith(
        "the leader of region 2008 (94 MiB) would move from store 4 to store 1"
    )
    assert 'POST /pd/api/v1/operators {"name": "transfer-leader", "region_id": 2008, ' in dry.text()
    assert fake.writes == []


async def test_transfer_leader_executes_and_verifies(pd: PDClient, fake: FakePD) -> None:
    action = REGISTRY["transfer-leader"]
    before = await action.snapshot(LEADER, pd)
    assert before.region is not None and before.region.leader_store_id == 4
    message = await action.execute(LEADER, pd)
    assert message == "The operator is created."
    assert fake.writes == [
        (
            "POST",
            "/pd/api/v1/operators",
            {"name": "transfer-leader", "region_id": 2008, "to_store_id": 1},
        )
    ]
    pending = await action.verify(LEADER, pd, before)
    assert pending.outcome is Outcome.PENDING
    assert "admin-transfer-leader running on region 2008" in pending.message
    fake.move_leader(2008, 1)
    fake.set_operator(2008, "SUCCESS")
    done = await action.verify(LEADER, pd, before)
    assert done.outcome is Outcome.SUCCEEDED
    assert "the leader of region 2008 is on store 1" in done.message
    undo = action.undo(LEADER, before)
    assert undo == ActionCall(
        action="transfer-leader", params={"region_id": 2008, "to_store_id": 4}
    )


@pytest.mark.parametrize(
    ("status", "outcome", "words"),
    [
        ("TIMEOUT", Outcome.TIMED_OUT, "PD timed out admin-transfer-leader"),
        ("CANCEL", Outcome.FAILED, "PD cancelled admin-transfer-leader"),
        ("REPLACE", Outcome.FAILED, "PD replaced admin-transfer-leader"),
        ("SUCCESS", Outcome.FAILED, "finished, but the leader of region 2008 is on store 4"),
    ],
)
async def test_transfer_leader_unsuccessful_outcomes(
    pd: PDClient, fake: FakePD, status: str, outcome: Outcome, words: str
) -> None:
    action = REGISTRY["transfer-leader"]
    before = await action.snapshot(LEADER, pd)
    await action.execute(LEADER, pd)
    fake.set_operator(2008, status)
    result = await action.verify(LEADER, pd, before)
    assert result.outcome is outcome
    assert words in result.message


async def test_another_operator_taking_over_is_a_failure(pd: PDClient, fake: FakePD) -> None:
    action = REGISTRY["transfer-leader"]
    before = await action.snapshot(LEADER, pd)
    await action.execute(LEADER, pd)
    fake.set_operator(2008, "RUNNING", desc="balance-leader-scheduler")
    result = await action.verify(LEADER, pd, before)
    assert result.outcome is Outcome.FAILED
    assert "balance-leader-scheduler" in result.message


async def test_pd_refusal_after_preflight_raises_our_error(pd: PDClient, fake: FakePD) -> None:
    fake.refuse_operator = (
        "[PD:operator:ErrAddOperator]failed to add operator, maybe already have one"
    )
    with pytest.raises(OperatorConflictError):
        await REGISTRY["transfer-leader"].execute(LEADER, pd)


async def test_refused_unknown_region(pd: PDClient, fake: FakePD) -> None:
    refusal = await refused(
        "transfer-leader",
        TransferLeaderParams(region_id=99, to_store_id=1),
        pd,
        fake,
        "region-exists",
    )
    assert "region 99 does not exist" in refusal
    assert refusal.endswith("Nothing was sent to PD.")


async def test_refused_disconnected_target(pd: PDClient, fake: FakePD) -> None:
    fake.add_store(1, state="Disconnected", age=47)
    refusal = await refused("transfer-leader", LEADER, pd, fake, "target-store-up")
    assert (
        "store 1 is Disconnected (last heartbeat 47 s ago); transfer-leader needs an Up target"
        in refusal
    )


@pytest.mark.parametrize("state", ["Down", "Offline"])
async def test_refused_target_not_up(pd: PDClient, fake: FakePD, state: str) -> None:
    fake.add_store(1, state=state, age=3600)
    refusal = await refused("transfer-leader", LEADER, pd, fake, "target-store-up")
    assert f"store 1 is {state}" in refusal


async def test_refused_unknown_target_store(pd: PDClient, fake: FakePD) -> None:
    refusal = await refused(
        "transfer-leader",
        TransferLeaderParams(region_id=2008, to_store_id=9),
        pd,
        fake,
        "target-store-exists",
    )
    assert "store 9 does not exist (known stores: 1, 4, 5, 6)" in refusal


async def test_refused_target_under_evict_leader(pd: PDClient, fake: FakePD) -> None:
    fake.evicted.append(1)
    refusal = await refused("transfer-leader", LEADER, pd, fake, "target-not-evicted")
    assert "store 1 is drained (under evict-leader-scheduler)" in refusal


async def test_refused_target_without_voter(pd: PDClient, fake: FakePD) -> None:
    fake.add_region(2008, [1, 4, 5, 6], leader=4, learners=(6,))
    refusal = await refused(
        "transfer-leader",
        TransferLeaderParams(region_id=2008, to_store_id=6),
        pd,
        fake,
        "target-holds-healthy-voter",
    )
    assert "store 6 holds no voter of region 2008 (voters on stores 1, 4, 5)" in refusal


@pytest.mark.parametrize(("down", "pending", "word"), [((1,), (), "down"), ((), (1,), "pending")])
async def test_refused_unhealthy_target_peer(
    pd: PDClient, fake: FakePD, down: tuple[int, ...], pending: tuple[int, ...], word: str
) -> None:
    fake.add_region(2008, [1, 4, 5], leader=4, down=down, pending=pending)
    refusal = await refused("transfer-leader", LEADER, pd, fake, "target-holds-healthy-voter")
    assert f"the peer of region 2008 on store 1 is {word}" in refusal


async def test_refused_already_leader(pd: PDClient, fake: FakePD) -> None:
    refusal = await refused(
        "transfer-leader",
        TransferLeaderParams(region_id=2008, to_store_id=4),
        pd,
        fake,
        "leader-elsewhere",
    )
    assert "already holds the leader of region 2008; nothing to do" in refusal


async def test_refused_running_operator(pd: PDClient, fake: FakePD) -> None:
    fake.set_operator(2008, "RUNNING", desc="balance-leader-scheduler")
    refusal = await refused("transfer-leader", LEADER, pd, fake, "no-running-operator")
    assert "balance-leader-scheduler" in refusal and "already running on region 2008" in refusal


async def test_finished_operator_record_does_not_block(pd: PDClient, fake: FakePD) -> None:
    fake.set_operator(2008, "SUCCESS")
    report = await REGISTRY["transfer-leader"].preflight(LEADER, pd, CTX)
    assert report.ok, report.refusal()


# ------------------------------------------------------------------ transfer-peer

PEER = TransferPeerParams(region_id=2008, from_store_id=5, to_store_id=6)


async def test_transfer_peer_executes_and_verifies(pd: PDClient, fake: FakePD) -> None:
    action = REGISTRY["transfer-peer"]
    dry = await action.dry_run(PEER, pd, CTX)
    assert dry.would_run, dry.text()
    assert "about 94 MiB (861,234 keys) of region 2008 would be copied to store 6" in (
        dry.expected_effect
    )
    before = await action.snapshot(PEER, pd)
    await action.execute(PEER, pd)
    assert fake.writes == [
        (
            "POST",
            "/pd/api/v1/operators",
            {"name": "transfer-peer", "region_id": 2008, "from_store_id": 5, "to_store_id": 6},
        )
    ]
    assert (await action.verify(PEER, pd, before)).outcome is Outcome.PENDING
    fake.add_region(2008, [1, 4, 6], leader=4)
    fake.set_operator(2008, "SUCCESS", desc="admin-move-peer")
    done = await action.verify(PEER, pd, before)
    assert done.outcome is Outcome.SUCCEEDED
    assert "peers on stores 1, 4, 6" in done.message


async def test_transfer_peer_refused_when_source_has_no_peer(pd: PDClient, fake: FakePD) -> None:
    refusal = await refused(
        "transfer-peer",
        TransferPeerParams(region_id=2008, from_store_id=6, to_store_id=5),
        pd,
        fake,
        "source-holds-peer",
    )
    assert "region 2008 has no peer on store 6 to move" in refusal


async def test_transfer_peer_refused_when_target_has_a_peer(pd: PDClient, fake: FakePD) -> None:
    await refused(
        "transfer-peer",
        TransferPeerParams(region_id=2008, from_store_id=5, to_store_id=1),
        pd,
        fake,
        "target-has-no-peer",
    )


async def test_transfer_peer_never_removes_a_healthy_peer_next_to_a_down_one(
    pd: PDClient, fake: FakePD
) -> None:
    fake.add_region(2008, [1, 4, 5], leader=4, down=(1,))
    refusal = await refused("transfer-peer", PEER, pd, fake, "quorum-safe")
    assert "already has a down or pending peer (stores 1)" in refusal
    assert "risks quorum" in refusal


async def test_transfer_peer_may_move_the_down_peer_itself(pd: PDClient, fake: FakePD) -> None:
    fake.add_region(2008, [1, 4, 5], leader=4, down=(5,))
    report = await REGISTRY["transfer-peer"].preflight(PEER, pd, CTX)
    assert report.ok, report.refusal()


async def test_transfer_peer_refused_to_down_target(pd: PDClient, fake: FakePD) -> None:
    fake.add_store(6, state="Down", age=3600)
    refusal = await refused("transfer-peer", PEER, pd, fake, "target-store-up")
    assert "store 6 is Down (last heartbeat 3,600 s ago); transfer-peer needs an Up target" in (
        refusal
    )


# ------------------------------------------------------------------ drain and undrain

DRAIN = DrainParams(store_id=4)


async def test_drain_dry_run_counts_the_leaders(pd: PDClient, fake: FakePD) -> None:
    dry = await REGISTRY["drain"].dry_run(DRAIN, pd, CTX)
    assert dry.would_run, dry.text()
    assert dry.expected_effect == (
        "1,203 leaders would move off store 4 to stores 1, 5, 6; its 3,610 replicas stay"
    )
    assert fake.writes == []


async def test_drain_follows_the_leader_count_to_zero(pd: PDClient, fake: FakePD) -> None:
    action = REGISTRY["drain"]
    before = await action.snapshot(DRAIN, pd)
    assert before.store_leader_counts[4] == 1203 and before.evicted_store_ids == ()
    await action.execute(DRAIN, pd)
    assert fake.writes == [
        ("POST", "/pd/api/v1/schedulers", {"name": "evict-leader-scheduler", "store_id": 4})
    ]
    fake.set_leaders(4, 312)
    progress = await action.verify(DRAIN, pd, before)
    assert progress.outcome is Outcome.PENDING
    assert progress.message == "leaders on store 4: 1,203 → 312"
    fake.set_leaders(4, 0)
    done = await action.verify(DRAIN, pd, before)
    assert done.outcome is Outcome.SUCCEEDED and done.message == "leaders on store 4: 1,203 → 0"


async def test_drain_fails_if_the_scheduler_is_removed_meanwhile(
    pd: PDClient, fake: FakePD
) -> None:
    action = REGISTRY["drain"]
    before = await action.snapshot(DRAIN, pd)
    await action.execute(DRAIN, pd)
    fake.evicted.clear()
    result = await action.verify(DRAIN, pd, before)
    assert result.outcome is Outcome.FAILED
    assert "no longer under evict-leader-scheduler" in result.message


async def test_drain_then_undo_removes_only_that_store(pd: PDClient, fake: FakePD) -> None:
    fake.add_store(7, leaders=10)
    fake.evicted.append(6)
    ctx = PreflightContext(now=NOW, max_drained_stores=2)
    drain = REGISTRY["drain"]
    assert (await drain.preflight(DRAIN, pd, ctx)).ok
    before = await drain.snapshot(DRAIN, pd)
    await drain.execute(DRAIN, pd)
    undo = drain.undo(DRAIN, before)
    assert undo == ActionCall(action="undrain", params={"store_id": 4})
    undrain, params = validate_call(undo)
    assert (await undrain.preflight(params, pd, ctx)).ok
    undo_before = await undrain.snapshot(params, pd)
    await undrain.execute(params, pd)
    assert fake.writes[-1] == ("DELETE", "/pd/api/v1/schedulers/evict-leader-scheduler-4", None)
    assert fake.evicted == [6]
    result = await undrain.verify(params, pd, undo_before)
    assert result.outcome is Outcome.SUCCEEDED
    assert undrain.undo(params, undo_before) == ActionCall(action="drain", params={"store_id": 4})


async def test_drain_refused_for_unknown_store(pd: PDClient, fake: FakePD) -> None:
    await refused("drain", DrainParams(store_id=9), pd, fake, "store-exists")


async def test_drain_refused_when_already_drained(pd: PDClient, fake: FakePD) -> None:
    fake.evicted.append(4)
    refusal = await refused("drain", DRAIN, pd, fake, "not-drained")
    assert "store 4 is already drained" in refusal


async def test_drain_refused_over_the_drained_store_limit(pd: PDClient, fake: FakePD) -> None:
    fake.evicted.append(6)
    refusal = await refused("drain", DRAIN, pd, fake, "drained-stores-limit")
    assert "1 store(s) are already drained (6) and at most 1 may be drained at once" in refusal


async def test_drain_refused_when_the_store_is_not_up(pd: PDClient, fake: FakePD) -> None:
    fake.add_store(4, state="Disconnected", leaders=1203, regions=3610, age=47)
    refusal = await refused("drain", DRAIN, pd, fake, "store-up")
    assert refusal.startswith(
        "Refused drain: store 4 is Disconnected (last heartbeat 47 s ago); a drain moves "
        "leaders off a serving store"
    )
    assert "Wait until it is Up again" in refusal
    # A store that is not Up gets no estimate of moves (its counts are not current).
    report = await REGISTRY["drain"].preflight(DRAIN, pd, CTX)
    assert "leader-load" not in [c.name for c in report.checks]
    fake.add_store(4, state="Offline", leaders=1203, regions=3610)
    await refused("drain", DRAIN, pd, fake, "store-up")


async def test_drain_refused_when_no_other_store_can_take_leaders(
    pd: PDClient, fake: FakePD
) -> None:
    fake.add_store(1, state="Down", age=3600, regions=3000)
    fake.add_store(5, state="Disconnected", age=30, regions=3610)
    fake.add_store(6, state="Offline", regions=2000)
    refusal = await refused("drain", DRAIN, pd, fake, "enough-leader-stores")
    assert (
        "no other store can take the leaders of store 4 (store 1 is Down; store 5 is "
        "Disconnected; store 6 is Offline); a leader can move only to an Up store that is not "
        "drained. Bring a store back Up or undrain one first" in refusal
    )
    # With nowhere to go, neither the voter estimate nor the load is shown.
    report = await REGISTRY["drain"].preflight(DRAIN, pd, CTX)
    assert [c.name for c in report.checks][-1] == "enough-leader-stores"


async def test_a_drained_store_is_not_a_leader_target(pd: PDClient, fake: FakePD) -> None:
    fake.add_store(1, state="Down", age=3600, regions=3000)
    fake.add_store(5, state="Down", age=3600, regions=3610)
    fake.evicted.append(6)
    ctx = PreflightContext(now=NOW, max_drained_stores=2)
    report = await REGISTRY["drain"].preflight(DRAIN, pd, ctx)
    [failed] = report.failures
    assert failed.name == "enough-leader-stores"
    assert "store 6 is drained" in failed.message and "store 1 is Down" in failed.message


async def test_drain_refused_when_leaders_certainly_have_no_voter_to_move_to(
    pd: PDClient, fake: FakePD
) -> None:
    # Only store 1 can take leaders, and it holds 500 voters (and 100 learners): at least
    # 1,203 - 400 = 803 of store 4's regions have no voter on it.
    fake.add_store(1, leaders=100, regions=500, learners=100)
    fake.add_store(5, state="Down", age=3600, regions=3610)
    fake.add_store(6, state="Down", age=3600, regions=3000)
    refusal = await refused("drain", DRAIN, pd, fake, "healthy-voters-elsewhere")
    assert (
        "at least 803 of the 1,203 leaders of store 4 cannot move: the stores that can take "
        "leaders (store 1) hold only 400 voters, so at least 803 of its regions have no voter "
        "there and the drain would never reach zero leaders" in refusal
    )


async def test_drain_refused_with_a_single_replica(pd: PDClient, fake: FakePD) -> None:
    fake.max_replicas = 1
    refusal = await refused("drain", DRAIN, pd, fake, "healthy-voters-elsewhere")
    assert "none of the 1,203 leaders of store 4 can move: with max-replicas 1" in refusal


async def test_drain_warns_when_some_leaders_may_have_no_healthy_voter(
    pd: PDClient, fake: FakePD
) -> None:
    # Stores 5 and 6 are Down: a region with peers on 4, 5 and 6 has no voter that can take
    # its leader. At most (3,610 + 2,000) / 2 such regions exist, capped at 1,203 leaders.
    fake.add_store(5, state="Down", age=3600, regions=3610)
    fake.add_store(6, state="Down", age=3600, regions=2000)
    fake.add_store(7, leaders=900, regions=3000)
    report = await REGISTRY["drain"].preflight(DRAIN, pd, CTX)
    assert report.ok, report.refusal()
    [warning] = [c for c in report.warnings if c.name == "healthy-voters-elsewhere"]
    assert warning.message.startswith(
        "up to 1,203 of the 1,203 leaders of store 4 may have no healthy voter to move to: "
        "stores 5 (Down), 6 (Down) cannot take leaders and hold 5,610 replicas"
    )
    assert "not checked region by region" in warning.message
    dry = await REGISTRY["drain"].dry_run(DRAIN, pd, CTX)
    assert "  [WARN] healthy-voters-elsewhere: up to 1,203 of the 1,203 leaders" in dry.text()
    assert fake.writes == []


async def test_pending_peers_on_the_targets_make_a_warning(pd: PDClient, fake: FakePD) -> None:
    # Three stores: a region led by 4 is stuck only if both other peers are pending.
    del fake.stores[6]
    fake.add_store(1, leaders=900, regions=3610, pending=40)
    fake.add_store(5, leaders=800, regions=3610, pending=20)
    report = await REGISTRY["drain"].preflight(DRAIN, pd, CTX)
    assert report.ok, report.refusal()
    [warning] = [c for c in report.warnings if c.name == "healthy-voters-elsewhere"]
    # A stuck region needs a pending peer on both 1 and 5: at most 20 (store 5's count).
    assert warning.observed == (
        "up to 20 of 1,203 leaders may have no healthy voter on stores 1, 5 "
        "(pending peers: 40 on store 1, 20 on store 5)"
    )
    # Pending peers on one store only cannot block a region with two other voters.
    fake.add_store(5, leaders=800, regions=3610)
    report = await REGISTRY["drain"].preflight(DRAIN, pd, CTX)
    assert report.warnings == ()
    [voters] = [c for c in report.checks if c.name == "healthy-voters-elsewhere"]
    assert "only pending peers: 40 on store 1: fewer stores than the 2 other voters" in (
        voters.observed
    )


async def test_a_healthy_cluster_passes_every_drain_check_and_shows_the_load(
    pd: PDClient, fake: FakePD
) -> None:
    report = await REGISTRY["drain"].preflight(DRAIN, pd, CTX)
    assert report.ok and report.warnings == ()
    assert [c.name for c in report.checks] == [
        "store-exists",
        "store-up",
        "not-drained",
        "drained-stores-limit",
        "enough-leader-stores",
        "healthy-voters-elsewhere",
        "leader-load",
    ]
    voters, load = report.checks[-2:]
    assert voters.observed.startswith(
        "every region store 4 leads has another voter on stores 1 or 5 or 6, able to take its "
        "leader: each region has 2 other voters on distinct stores, and no other store is "
        "Disconnected, Down, Offline or drained or reports pending peers"
    )
    # 1,203 leaders spread by voters held (3,000 : 3,610 : 2,000), of 3,603 leaders in all.
    assert load.observed == (
        "leaders after the drain, estimated (the 1,203 of store 4 spread over stores 1, 5, 6 "
        "by the voters held): store 1 ≈ 1,319 (37%, now 900), store 5 ≈ 1,304 (36%, now 800), "
        "store 6 ≈ 980 (27%, now 700)"
    )


async def test_drain_warns_when_one_store_would_lead_most_leaders(
    pd: PDClient, fake: FakePD
) -> None:
    del fake.stores[6]
    fake.add_store(1, leaders=2000, regions=3610)
    fake.add_store(5, leaders=100, regions=3610)
    report = await REGISTRY["drain"].preflight(DRAIN, pd, CTX)
    assert report.ok
    [warning] = report.warnings
    assert warning.name == "leader-load"
    assert "store 1 ≈ 2,602 (79%, now 2,000), store 5 ≈ 701 (21%, now 100)" in warning.observed
    assert warning.message.endswith(
        "Store 1 would lead 79% of all leaders, more than 60%: its CPU and disk would set the "
        "latency of most requests. Approve only if it has the headroom; otherwise bring the "
        "other stores back or add one first"
    )


async def test_undrain_refused_when_not_drained(pd: PDClient, fake: FakePD) -> None:
    refusal = await refused("undrain", UndrainParams(store_id=4), pd, fake, "is-drained")
    assert "store 4 is not drained" in refusal


# ------------------------------------------------------------------ split

SPLIT = SplitParams(region_id=2008)


async def test_split_verifies_the_epoch_grew(pd: PDClient, fake: FakePD) -> None:
    action = REGISTRY["split"]
    dry = await action.dry_run(SPLIT, pd, CTX)
    assert "region 2008 (94 MiB, 861,234 keys) would become two regions of about 47 MiB" in (
        dry.expected_effect
    )
    before = await action.snapshot(SPLIT, pd)
    await action.execute(SPLIT, pd)
    assert fake.writes == [
        (
            "POST",
            "/pd/api/v1/operators",
            {"name": "split-region", "region_id": 2008, "policy": "approximate"},
        )
    ]
    fake.set_operator(2008, "SUCCESS", desc="admin-split-region")
    not_split = await action.verify(SPLIT, pd, before)
    assert not_split.outcome is Outcome.FAILED and "did not split" in not_split.message
    fake.add_region(2008, [1, 4, 5], leader=4, version=62)
    done = await action.verify(SPLIT, pd, before)
    assert done.outcome is Outcome.SUCCEEDED
    assert "epoch version 61 → 62" in done.message


async def test_split_refused_for_unknown_region(pd: PDClient, fake: FakePD) -> None:
    await refused("split", SplitParams(region_id=77), pd, fake, "region-exists")


# ------------------------------------------------------------------ limit and space-ratio


async def test_limit_sets_verifies_and_undo_restores(pd: PDClient, fake: FakePD) -> None:
    action = REGISTRY["limit"]
    params = LimitParams(kind="leader", value=16)
    dry = await action.dry_run(params, pd, CTX)
    assert dry.expected_effect == "leader-schedule-limit would change from 4 to 16"
    before = await action.snapshot(params, pd)
    assert before.config == {"leader-schedule-limit": 4}
    await action.execute(params, pd)
    assert fake.writes == [("POST", "/pd/api/v1/config/schedule", {"leader-schedule-limit": 16})]
    result = await action.verify(params, pd, before)
    assert result.outcome is Outcome.SUCCEEDED
    assert result.message == "leader-schedule-limit is now 16 (was 4)"
    undo_action, undo_params = validate_call(action.undo(params, before) or {})
    await undo_action.execute(undo_params, pd)
    assert fake.schedule["leader-schedule-limit"] == 4
    assert fake.writes[-1] == ("POST", "/pd/api/v1/config/schedule", {"leader-schedule-limit": 4})


async def test_limit_that_pd_did_not_apply_fails(pd: PDClient, fake: FakePD) -> None:
    action = REGISTRY["limit"]
    params = LimitParams(kind="region", value=64)
    before = await action.snapshot(params, pd)
    result = await action.verify(params, pd, before)  # as if PD ignored the write
    assert result.outcome is Outcome.FAILED
    assert "region-schedule-limit reads 2048, not 64" in result.message
    assert await action.reconcile(params, pd, before) is None


async def test_limit_refused_when_nothing_changes(pd: PDClient, fake: FakePD) -> None:
    refusal = await refused("limit", LimitParams(kind="leader", value=4), pd, fake, "changes-value")
    assert "leader-schedule-limit is already 4; nothing to change" in refusal


async def test_limit_zero_says_scheduling_stops(pd: PDClient, fake: FakePD) -> None:
    params = LimitParams(kind="replica", value=0)
    report = await REGISTRY["limit"].preflight(params, pd, CTX)
    assert report.ok
    assert "turns scheduling of this kind off" in report.checks[0].message
    dry = await REGISTRY["limit"].dry_run(params, pd, CTX)
    assert dry.expected_effect.endswith("0 stops replica scheduling")


async def test_space_ratio_keeps_low_above_high(pd: PDClient, fake: FakePD) -> None:
    refusal = await refused(
        "space-ratio", SpaceRatioParams(which="low", ratio=0.65), pd, fake, "ratio-order"
    )
    assert "low-space-ratio must stay above high-space-ratio" in refusal
    await refused("space-ratio", SpaceRatioParams(which="high", ratio=0.9), pd, fake, "ratio-order")


async def test_space_ratio_sets_and_undo_restores(pd: PDClient, fake: FakePD) -> None:
    action = REGISTRY["space-ratio"]
    params = SpaceRatioParams(which="low", ratio=0.85)
    assert (await action.preflight(params, pd, CTX)).ok
    before = await action.snapshot(params, pd)
    await action.execute(params, pd)
    assert fake.writes == [("POST", "/pd/api/v1/config/schedule", {"low-space-ratio": 0.85})]
    assert (await action.verify(params, pd, before)).outcome is Outcome.SUCCEEDED
    undo = action.undo(params, before)
    assert undo == ActionCall(action="space-ratio", params={"which": "low", "ratio": 0.8})


# ------------------------------------------------------------------ follow() and reconcile


@dataclass
class FakeTime:
    now: float = 0.0
    sleeps: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


async def test_follow_reports_a_timeout_with_the_last_progress(pd: PDClient, fake: FakePD) -> None:
    action = REGISTRY["drain"]
    before = await action.snapshot(DRAIN, pd)
    await action.execute(DRAIN, pd)
    fake.set_leaders(4, 500)
    time = FakeTime()
    seen: list[str] = []

    async def progress(v: Any) -> None:
        seen.append(v.message)

    result = await follow(
        action, DRAIN, pd, before, sleep=time.sleep, clock=time.clock,
        deadline_seconds=35, poll_interval=10, on_progress=progress,
    )  # fmt: skip
    assert result.outcome is Outcome.TIMED_OUT
    assert result.message == (
        "drain did not finish within 35 s; last seen: leaders on store 4: 1,203 → 500"
    )
    assert time.sleeps == [10, 10, 10, 5]
    assert seen == ["leaders on store 4: 1,203 → 500"] * 5


async def test_follow_returns_once_verified(pd: PDClient, fake: FakePD) -> None:
    action = REGISTRY["drain"]
    before = await action.snapshot(DRAIN, pd)
    await action.execute(DRAIN, pd)
    time = FakeTime()

    async def sleep(seconds: float) -> None:
        await time.sleep(seconds)
        fake.set_leaders(4, max(0, fake.stores[4]["status"]["leader_count"] - 500))

    result = await follow(action, DRAIN, pd, before, sleep=sleep, clock=time.clock)
    assert result.outcome is Outcome.SUCCEEDED
    assert len(time.sleeps) == 3  # 1,203 → 703 → 203 → 0


async def test_reconcile_transfer_leader_after_a_crash(pd: PDClient, fake: FakePD) -> None:
    action = REGISTRY["transfer-leader"]
    before = await action.snapshot(LEADER, pd)
    # crashed before the request reached PD: no operator, leader still on 4
    assert await action.reconcile(LEADER, pd, before) is None
    # crashed after PD created it: still running
    fake.set_operator(2008, "RUNNING")
    pending = await action.reconcile(LEADER, pd, before)
    assert pending is not None and pending.outcome is Outcome.PENDING
    # finished while we were down
    fake.move_leader(2008, 1)
    fake.set_operator(2008, "SUCCESS")
    done = await action.reconcile(LEADER, pd, before)
    assert done is not None and done.outcome is Outcome.SUCCEEDED
    # PD's record expired (10 min), but the leader is where we wanted it
    fake.operators.clear()
    done = await action.reconcile(LEADER, pd, before)
    assert done is not None and done.outcome is Outcome.SUCCEEDED
    assert fake.writes == []


async def test_reconcile_drain_after_a_crash(pd: PDClient, fake: FakePD) -> None:
    action = REGISTRY["drain"]
    before = await action.snapshot(DRAIN, pd)
    assert await action.reconcile(DRAIN, pd, before) is None
    fake.evicted.append(4)  # PD applied it before the crash
    fake.set_leaders(4, 100)
    applied = await action.reconcile(DRAIN, pd, before)
    assert applied is not None and applied.outcome is Outcome.PENDING
    assert applied.message == "leaders on store 4: 1,203 → 100"
    assert fake.writes == []


async def test_reconcile_config_after_a_crash(pd: PDClient, fake: FakePD) -> None:
    action = REGISTRY["limit"]
    params = LimitParams(kind="leader", value=16)
    before = await action.snapshot(params, pd)
    assert await action.reconcile(params, pd, before) is None
    fake.schedule["leader-schedule-limit"] = 16
    applied = await action.reconcile(params, pd, before)
    assert applied is not None and applied.outcome is Outcome.SUCCEEDED
    assert fake.writes == []


async def test_reconcile_undrain(pd: PDClient, fake: FakePD) -> None:
    action = REGISTRY["undrain"]
    params = UndrainParams(store_id=4)
    fake.evicted.append(4)
    before = await action.snapshot(params, pd)
    assert await action.reconcile(params, pd, before) is None
    fake.evicted.clear()
    result = await action.reconcile(params, pd, before)
    assert result is not None and result.outcome is Outcome.SUCCEEDED


async def test_reconcile_split_from_the_epoch(pd: PDClient, fake: FakePD) -> None:
    action = REGISTRY["split"]
    before = await action.snapshot(SPLIT, pd)
    assert await action.reconcile(SPLIT, pd, before) is None
    fake.add_region(2008, [1, 4, 5], leader=4, version=62)
    result = await action.reconcile(SPLIT, pd, before)
    assert result is not None and result.outcome is Outcome.SUCCEEDED


def test_snapshot_defaults_are_empty() -> None:
    assert Snapshot() == Snapshot(region=None, store_leader_counts={}, evicted_store_ids=())
