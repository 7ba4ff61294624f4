"""PD's schedulers and replica checker, simplified but faithful in what a bot can observe.

- evict-leader-scheduler: each round, while fewer leader operators run than leader-schedule-limit,
  creates up to `batch` (3) transfer-leader operators per evicted store, to a random healthy
  follower; the evicted stores are paused for leader transfer, so nothing moves leaders back.
- grant-leader-scheduler: the opposite, pulls leaders onto its stores.
- balance-leader-scheduler: moves leaders from the highest to the lowest leader score (count or
  size, divided by the leader weight) while that narrows the gap, up to 4 per round.
- balance-region-scheduler: moves one peer per round from the highest to the lowest region score,
  bounded by region-schedule-limit and the per-store add-peer limit (15 per minute).
- replica checker: replaces peers on Down or Offline stores, adds missing replicas and removes
  extra ones, bounded by replica-schedule-limit.
Other PD default schedulers exist (they can be listed, paused, removed) but do nothing.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from sim import builders, pderrors
from sim.builders import BuildError
from sim.gojson import GoMap
from sim.model import GIB, LEARNER, STATE_OFFLINE, STATE_UP, VOTER, Region, Store
from sim.operators import HIGH, LEADER, REGION, REPLICA, URGENT, Operator

if TYPE_CHECKING:
    from sim.cluster import Cluster

EVICT_LEADER = "evict-leader-scheduler"
GRANT_LEADER = "grant-leader-scheduler"
BALANCE_LEADER = "balance-leader-scheduler"
BALANCE_REGION = "balance-region-scheduler"

# scheduler name -> persisted config type (pkg/schedule/types)
SCHEDULER_TYPES = {
    BALANCE_REGION: "balance-region",
    BALANCE_LEADER: "balance-leader",
    "balance-hot-region-scheduler": "hot-region",
    "evict-slow-store-scheduler": "evict-slow-store",
    "evict-stopping-store-scheduler": "evict-stopping-store",
    EVICT_LEADER: "evict-leader",
    GRANT_LEADER: "grant-leader",
    "shuffle-leader-scheduler": "shuffle-leader",
    "shuffle-region-scheduler": "shuffle-region",
    "shuffle-hot-region-scheduler": "shuffle-hot-region",
    "random-merge-scheduler": "random-merge",
    "label-scheduler": "label",
    "split-bucket-scheduler": "split-bucket",
    "balance-witness-scheduler": "balance-witness",
    "transfer-witness-leader-scheduler": "transfer-witness-leader",
    "evict-slow-trend-scheduler": "evict-slow-trend",
}
DEFAULT_SCHEDULERS = (
    BALANCE_REGION,
    BALANCE_LEADER,
    "balance-hot-region-scheduler",
    "evict-slow-store-scheduler",
    "evict-stopping-store-scheduler",
)
STORE_ADD_PEER_PER_MINUTE = 15.0
_FULL_RANGE = [{"start-key": "", "end-key": ""}]


class Scheduler:
    """A scheduler that exists (listed, pausable) but creates no operators."""

    def __init__(self, name: str, default: bool = False) -> None:
        self.name = name
        self.type = SCHEDULER_TYPES[name]
        self.default = default
        self.disabled = False
        self.paused_at = 0.0
        self.paused_until = 0.0

    def is_paused(self, now: float) -> bool:
        return self.paused_until > now

    def args(self) -> list[str] | None:
        return None

    def config_json(self) -> dict[str, Any] | None:
        return None

    def schedule(self, cluster: Cluster) -> list[Operator]:
        return []


class LeaderStoresScheduler(Scheduler):
    """evict-leader and grant-leader: a set of stores, each with the full key range."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.stores: list[int] = []
        self.batch = 3

    def args(self) -> list[str] | None:
        return [str(s) for s in self.stores]

    def config_json(self) -> dict[str, Any]:
        ranges = GoMap({str(s): list(_FULL_RANGE) for s in self.stores})
        out: dict[str, Any] = {"store-id-ranges": ranges}
        if self.name == EVICT_LEADER:
            out["batch"] = self.batch
        return out


def _pick_regions(cluster: Cluster, pool: Any, tries: int) -> list[Region]:
    """Up to `tries` distinct random regions from an IndexedSet of region ids."""
    if not len(pool):
        return []
    seen: set[int] = set()
    out: list[Region] = []
    for _ in range(min(tries, len(pool) * 2)):
        rid = pool.choice(cluster.rng)
        if rid in seen:
            continue
        seen.add(rid)
        region = cluster.regions.get(rid)
        if region is not None:
            out.append(region)
        if len(seen) >= len(pool):
            break
    return out


class EvictLeaderScheduler(LeaderStoresScheduler):
    def __init__(self) -> None:
        super().__init__(EVICT_LEADER)

    def schedule(self, cluster: Cluster) -> list[Operator]:
        if cluster.operators.count(LEADER) >= int(cluster.schedule["leader-schedule-limit"]):
            return []
        ops: list[Operator] = []
        taken: set[int] = set()
        for _ in range(self.batch):
            once = [op for sid in self.stores if (op := self._once(cluster, sid, taken))]
            for op in once:
                taken.add(op.region_id)
            ops += once
            if not once or len(ops) > self.batch:
                break
        return ops

    def _once(self, cluster: Cluster, store_id: int, taken: set[int]) -> Operator | None:
        store = cluster.stores.get(store_id)
        if store is None or not store.leader_count:
            return None
        candidates = _pick_regions(cluster, store.leaders, 16)
        healthy = [
            r
            for r in candidates
            if r.id not in taken
            and r.id not in cluster.operators.running
            and not cluster.unhealthy_peer_stores(r)
        ]
        pool = healthy or [
            r for r in candidates if r.id not in taken and r.id not in cluster.operators.running
        ]
        for region in pool:
            unhealthy = cluster.unhealthy_peer_stores(region)
            targets = sorted(
                p.store_id
                for p in region.peers
                if p.role == VOTER
                and p.store_id != store_id
                and p.store_id not in unhealthy
                and cluster.allows_leader(p.store_id)
            )
            if not targets:
                continue
            target = targets[cluster.rng.randrange(len(targets))]
            try:
                op = builders.transfer_leader(
                    cluster, self.name, region, target, 0, targets=targets
                )
            except BuildError:
                continue
            op.priority = URGENT
            return op
        return None


class GrantLeaderScheduler(LeaderStoresScheduler):
    def __init__(self) -> None:
        super().__init__(GRANT_LEADER)

    def schedule(self, cluster: Cluster) -> list[Operator]:
        if cluster.operators.count(LEADER) >= int(cluster.schedule["leader-schedule-limit"]):
            return []
        ops: list[Operator] = []
        for store_id in self.stores:
            store = cluster.stores.get(store_id)
            if store is None or not cluster.is_serving(store_id):
                continue
            for region in _pick_regions(cluster, store.peers, 16):
                peer = region.peer_on(store_id)
                if (
                    peer is None
                    or peer.role != VOTER
                    or region.leader_store == store_id
                    or region.id in cluster.operators.running
                ):
                    continue
                try:
                    op = builders.transfer_leader(cluster, self.name, region, store_id, 0)
                except BuildError:
                    continue
                op.priority = HIGH
                ops.append(op)
                break
        return ops


def _weight(value: float) -> float:
    return max(value, 1e-6)


class BalanceLeaderScheduler(Scheduler):
    def __init__(self) -> None:
        super().__init__(BALANCE_LEADER, default=True)
        self.batch = 4

    def config_json(self) -> dict[str, Any]:
        return {"ranges": list(_FULL_RANGE), "batch": self.batch}

    def schedule(self, cluster: Cluster) -> list[Operator]:
        if cluster.operators.count(LEADER) >= int(cluster.schedule["leader-schedule-limit"]):
            return []
        by_size = cluster.schedule["leader-schedule-policy"] == "size"
        paused = cluster.schedulers.paused_stores()
        load: dict[int, float] = {}
        for store in cluster.stores.values():
            load[store.id] = float(store.leader_size if by_size else store.leader_count)
        for running in cluster.operators.running.values():
            step = running.steps[running.current] if running.current < len(running.steps) else None
            region = cluster.regions.get(running.region_id)
            if step is not None and step.kind == "transfer_leader" and region is not None:
                delta = region.approximate_size if by_size else 1
                if region.leader_store in load:
                    load[region.leader_store] -= delta
                if step.store in load:
                    load[step.store] += delta
        sources = [
            s
            for s in cluster.stores.values()
            if cluster.is_serving(s.id) and s.id not in paused and s.leader_count
        ]
        ops: list[Operator] = []
        taken: set[int] = set()
        for _ in range(self.batch):
            if not sources:
                break
            source = max(sources, key=lambda s: (load[s.id] / _weight(s.leader_weight), -s.id))
            op = self._one(cluster, source, load, by_size, taken)
            if op is None:
                break
            ops.append(op)
            taken.add(op.region_id)
        return ops

    def _one(
        self,
        cluster: Cluster,
        source: Store,
        load: dict[int, float],
        by_size: bool,
        taken: set[int],
    ) -> Operator | None:
        src_score = load[source.id] / _weight(source.leader_weight)
        for region in _pick_regions(cluster, source.leaders, 16):
            if region.id in taken or not cluster.region_is_healthy(region):
                continue
            delta = float(region.approximate_size if by_size else 1)
            targets = [
                p.store_id
                for p in region.peers
                if p.role == VOTER and p.store_id != source.id and cluster.allows_leader(p.store_id)
            ]
            if not targets:
                continue
            target = min(
                targets,
                key=lambda sid: (load[sid] / _weight(cluster.stores[sid].leader_weight), sid),
            )
            weight_t = _weight(cluster.stores[target].leader_weight)
            if (load[source.id] - delta) / _weight(source.leader_weight) < (
                load[target] + delta
            ) / weight_t or src_score <= load[target] / weight_t:
                continue
            try:
                op = builders.transfer_leader(cluster, self.name, region, target, 0)
            except BuildError:
                continue
            load[source.id] -= delta
            load[target] += delta
            return op
        return None


def region_score(cluster: Cluster, store: Store, delta: float = 0.0) -> float:
    """PD's region score, formula v2 (pkg/core/store.go regionScoreV2)."""
    low_space_ratio = float(cluster.schedule["low-space-ratio"])
    capacity = store.capacity / GIB
    available = store.available_bytes(cluster.now) / GIB
    size = max(0.0, store.region_size + delta)
    f_value = max(50.0, capacity * (1 - low_space_ratio))
    if available >= capacity or capacity < 1:
        score = size
    elif available > f_value:
        score = (
            1
            + 256
            * (math.log(capacity) - math.log(available - f_value + 1))
            / (capacity - available + f_value - 1)
        ) * size
    else:
        score = (1 + 256 * math.log(capacity) / capacity) * size + 1e10 * (
            f_value - available
        ) / f_value
    return score / _weight(store.region_weight)


class BalanceRegionScheduler(Scheduler):
    def __init__(self) -> None:
        super().__init__(BALANCE_REGION, default=True)

    def config_json(self) -> dict[str, Any]:
        return {"ranges": list(_FULL_RANGE)}

    def schedule(self, cluster: Cluster) -> list[Operator]:
        if cluster.operators.count(REGION) >= int(cluster.schedule["region-schedule-limit"]):
            return []
        stores = [s for s in cluster.stores.values() if cluster.is_serving(s.id) and s.region_count]
        targets = [
            s
            for s in cluster.stores.values()
            if cluster.is_serving(s.id) and not cluster.is_low_space(s)
        ]
        if not stores or len(targets) < 2:
            return []
        source = max(stores, key=lambda s: (region_score(cluster, s), -s.id))
        limiter = cluster.schedulers
        for region in _pick_regions(cluster, source.peers, 8):
            if not cluster.region_is_healthy(region):
                continue
            held = set(region.store_ids())
            options = [t for t in targets if t.id not in held and limiter.can_add_peer(t.id)]
            if not options:
                continue
            target = min(options, key=lambda s: (region_score(cluster, s), s.id))
            # PD's tolerance (tolerant-size-ratio 0 -> 5 region sizes), and at least 1 % of an
            # average store so that a freshly built cluster counts as balanced
            average = sum(s.region_size for s in stores) / len(stores)
            tolerance = max(5.0 * region.approximate_size, 0.01 * average)
            size = float(region.approximate_size)
            if region_score(cluster, source, -size - tolerance) < region_score(
                cluster, target, size + tolerance
            ):
                continue
            peer = region.peer_on(source.id)
            role = peer.role if peer is not None else VOTER
            try:
                op = builders.change_peers(
                    cluster, self.name, region, 0, add={target.id: role}, remove=[source.id]
                )
            except BuildError:
                continue
            limiter.take_add_peer(target.id)
            return [op]
        return []


class SchedulerController:
    """The running schedulers, their admin API, and the replica checker."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.schedulers: dict[str, Scheduler] = {}
        self._tokens: dict[int, tuple[float, float]] = {}
        self._wake_at = 0.0
        for name in DEFAULT_SCHEDULERS:
            self.schedulers[name] = self._make(name, default=True)

    @staticmethod
    def _make(name: str, default: bool = False) -> Scheduler:
        if name == EVICT_LEADER:
            return EvictLeaderScheduler()
        if name == GRANT_LEADER:
            return GrantLeaderScheduler()
        if name == BALANCE_LEADER:
            return BalanceLeaderScheduler()
        if name == BALANCE_REGION:
            return BalanceRegionScheduler()
        return Scheduler(name, default=default)

    # ----- queries ---------------------------------------------------------------------------

    def get(self, name: str) -> Scheduler | None:
        scheduler = self.schedulers.get(name)
        return scheduler if scheduler is not None and not scheduler.disabled else None

    def names(self, status: str = "") -> list[str]:
        now = self.cluster.now
        if status == "disabled":
            return [n for n, s in self.schedulers.items() if s.disabled]
        if status == "paused":
            return [n for n, s in self.schedulers.items() if not s.disabled and s.is_paused(now)]
        return [n for n, s in self.schedulers.items() if not s.disabled]

    def paused_stores(self) -> set[int]:
        stores: set[int] = set()
        for name in (EVICT_LEADER, GRANT_LEADER):
            scheduler = self.schedulers.get(name)
            if isinstance(scheduler, LeaderStoresScheduler):
                stores.update(scheduler.stores)
        return stores

    def evicted_stores(self) -> list[int]:
        scheduler = self.schedulers.get(EVICT_LEADER)
        return list(scheduler.stores) if isinstance(scheduler, LeaderStoresScheduler) else []

    def config_entries(self) -> list[dict[str, Any]]:
        """ScheduleConfig's `schedulers-v2` list."""
        return [
            {"type": s.type, "args": s.args(), "disable": s.disabled, "args-payload": ""}
            for s in self.schedulers.values()
        ]

    # ----- admin -----------------------------------------------------------------------------

    def create(self, name: str) -> None:
        """Create a scheduler without store arguments (500 ErrSchedulerExisted if running)."""
        existing = self.schedulers.get(name)
        if existing is not None and not existing.disabled:
            raise pderrors.SimError(500, pderrors.SCHEDULER_EXISTED)
        if existing is not None:
            existing.disabled = False
        else:
            self.schedulers[name] = self._make(name)
        self.cluster.touch()

    def add_leader_store(self, name: str, store_id: int) -> bool:
        """Add a store to evict-/grant-leader; True if the scheduler was created."""
        cluster = self.cluster
        if store_id not in cluster.stores:
            raise pderrors.SimError(500, pderrors.store_not_found(store_id))
        scheduler = self.schedulers.get(name)
        assert scheduler is None or isinstance(scheduler, LeaderStoresScheduler)
        if scheduler is not None and store_id in scheduler.stores:
            return False
        if store_id in self.paused_stores():
            raise pderrors.SimError(500, pderrors.pause_leader_transfer(store_id))
        created = scheduler is None
        if scheduler is None:
            scheduler = EvictLeaderScheduler() if name == EVICT_LEADER else GrantLeaderScheduler()
            self.schedulers[name] = scheduler
        scheduler.stores.append(store_id)
        cluster.touch()
        return created

    def remove_leader_store(self, name: str, store_id: int) -> bool:
        """Remove a store from evict-/grant-leader; True if it was the last one."""
        scheduler = self.schedulers.get(name)
        if not isinstance(scheduler, LeaderStoresScheduler):
            raise pderrors.SimError(404, pderrors.SCHEDULER_NOT_FOUND)
        if store_id not in scheduler.stores:
            raise pderrors.SimError(404, pderrors.SCHEDULE_CONFIG_NOT_EXIST)
        scheduler.stores.remove(store_id)
        self.cluster.touch()
        if not scheduler.stores:
            del self.schedulers[name]
            return True
        return False

    def remove(self, name: str) -> None:
        scheduler = self.get(name)
        if scheduler is None:
            raise pderrors.SimError(404, pderrors.SCHEDULER_NOT_FOUND)
        if scheduler.default:
            scheduler.disabled = True
        else:
            del self.schedulers[name]
        self.cluster.touch()

    def pause(self, name: str, delay: int) -> None:
        scheduler = self.get(name)
        if scheduler is None:
            raise pderrors.SimError(500, pderrors.SCHEDULER_NOT_FOUND)
        now = self.cluster.now
        if delay <= 0:
            scheduler.paused_at = 0.0
            scheduler.paused_until = 0.0
        else:
            scheduler.paused_at = now
            scheduler.paused_until = now + delay
            self.cluster.at(now + delay + 0.01, self.cluster.touch)
        self.cluster.touch()

    # ----- store limit (add-peer tokens per store) -------------------------------------------

    def can_add_peer(self, store_id: int) -> bool:
        tokens, now = self._refill(store_id)
        if tokens >= 1.0:
            return True
        if self._wake_at <= now:
            # wake the idle cluster when a token is back, so blocked schedulers retry
            self._wake_at = now + 60.0 / STORE_ADD_PEER_PER_MINUTE
            self.cluster.at(self._wake_at, self.cluster.touch)
        return False

    def take_add_peer(self, store_id: int) -> None:
        tokens, now = self._refill(store_id)
        self._tokens[store_id] = (tokens - 1.0, now)

    def _refill(self, store_id: int) -> tuple[float, float]:
        now = self.cluster.now
        tokens, last = self._tokens.get(store_id, (STORE_ADD_PEER_PER_MINUTE, now))
        tokens = min(
            STORE_ADD_PEER_PER_MINUTE, tokens + (now - last) * STORE_ADD_PEER_PER_MINUTE / 60
        )
        self._tokens[store_id] = (tokens, now)
        return tokens, now

    # ----- scheduling rounds -----------------------------------------------------------------

    def tick(self) -> bool:
        """One scheduling round; True if any operator was created."""
        cluster = self.cluster
        if cluster.schedule["halt-scheduling"]:
            return False
        created = False
        now = cluster.now
        for scheduler in list(self.schedulers.values()):
            if scheduler.disabled or scheduler.is_paused(now):
                continue
            for op in scheduler.schedule(cluster):
                created = cluster.operators.add(op) or created
        return self._check_replicas() or created

    def _check_replicas(self) -> bool:
        cluster = self.cluster
        config = cluster.schedule
        budget = int(config["replica-schedule-limit"]) - cluster.operators.count(REPLICA)
        if budget <= 0:
            return False
        created = False
        max_down = config.max_store_down_time
        for store in cluster.stores.values():
            if budget <= 0:
                break
            if store.state == STATE_UP and cluster.down_time(store) > max_down:
                if not config["enable-remove-down-replica"]:
                    continue
                desc = "replace-rule-down-peer"
            elif store.state == STATE_OFFLINE:
                if not config["enable-replace-offline-replica"]:
                    continue
                desc = "replace-rule-offline-peer"
            else:
                continue
            for region in _pick_regions(cluster, store.peers, 32):
                if budget <= 0:
                    break
                if region.id in cluster.operators.running:
                    continue
                op = self._replace(region, store.id, desc)
                if op is not None and cluster.operators.add(op):
                    budget -= 1
                    created = True
        if budget > 0 and config["enable-make-up-replica"]:
            created = self._fix_counts(budget, "miss-peer") or created
        if budget > 0 and config["enable-remove-extra-replica"]:
            created = self._fix_counts(budget, "extra-peer") or created
        return created

    def _target_for(self, region: Region) -> Store | None:
        cluster = self.cluster
        held = set(region.store_ids())
        options = [
            s
            for s in cluster.stores.values()
            if s.id not in held
            and cluster.is_serving(s.id)
            and not cluster.is_low_space(s)
            and self.can_add_peer(s.id)
        ]
        return min(options, key=lambda s: (s.region_count, s.id)) if options else None

    def _replace(self, region: Region, store_id: int, desc: str) -> Operator | None:
        target = self._target_for(region)
        if target is None:
            return None
        peer = region.peer_on(store_id)
        role = LEARNER if peer is not None and peer.role == LEARNER else VOTER
        try:
            op = builders.change_peers(
                self.cluster, desc, region, REPLICA, add={target.id: role}, remove=[store_id]
            )
        except BuildError:
            return None
        op.priority = HIGH
        self.take_add_peer(target.id)
        return op

    def _fix_counts(self, budget: int, state: str) -> bool:
        cluster = self.cluster
        regions = cluster.check_regions(state) or []
        if not regions:
            return False
        created = False
        for region in regions[: max(1, budget) * 4]:
            if budget <= 0:
                break
            if region.id in cluster.operators.running or region.in_joint_state():
                continue
            try:
                if state == "miss-peer":
                    target = self._target_for(region)
                    if target is None:
                        continue
                    op = builders.change_peers(
                        cluster, "add-rule-peer", region, REPLICA, add={target.id: VOTER}
                    )
                    self.take_add_peer(target.id)
                else:
                    victim = max(
                        region.store_ids(),
                        key=lambda sid: (
                            sid != region.leader_store,
                            cluster.stores[sid].region_count,
                            sid,
                        ),
                    )
                    op = builders.change_peers(
                        cluster, "remove-orphan-peer", region, REPLICA, remove=[victim]
                    )
            except BuildError:
                continue
            op.priority = HIGH
            if cluster.operators.add(op):
                budget -= 1
                created = True
        return created
