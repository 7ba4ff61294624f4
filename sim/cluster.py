"""The simulated TiKV cluster: stores, regions, a virtual clock, operators, schedulers, faults.

Time is virtual (unix seconds as a float). `advance(seconds)` moves it forward in ticks of
`TICK` seconds, running operators, schedulers and replica checkers on each tick; when nothing is
happening it jumps straight to the next timed event, so `advance(3600)` on an idle cluster is
cheap. Store health follows PD: a store that stops heartbeating is Disconnected after 20 s and
Down after `max-store-down-time`; its leaders are re-elected among healthy voters 10 s after it
stops, and its peers are reported pending after 60 s and down after `peer_down_seconds` (TiKV's
`max-peer-down-duration`, 10 minutes). All randomness comes from one seeded generator.
"""

from __future__ import annotations

import bisect
import gc
import heapq
import itertools
import math
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sim import pderrors
from sim.config import ReplicationConfig, ScheduleConfig
from sim.model import (
    DEMOTING_VOTER,
    GIB,
    INCOMING_VOTER,
    LEARNER,
    MIB,
    NODE_REMOVED,
    NODE_REMOVING,
    NODE_SERVING,
    STATE_NAMES,
    STATE_OFFLINE,
    STATE_TOMBSTONE,
    STATE_UP,
    VOTER,
    Peer,
    Region,
    Store,
)
from sim.operators import OperatorController, Step
from sim.schedulers import SchedulerController
from sim.tikv_metrics import StoreMetrics

TICK = 0.5  # virtual seconds per scheduling round
DISCONNECT_SECONDS = 20.0  # storeDisconnectDuration
UNHEALTHY_SECONDS = 600.0  # storeUnhealthyDuration
ELECTION_SECONDS = 10.0  # raft election timeout (10 ticks of 1 s)
# A stopped store's peers show as pending once raft logs are compacted past them (a minute of
# writes); until then a Disconnected store is refused as a leader target as "not allowed".
PENDING_AFTER_SECONDS = 60.0
CATCHUP_SECONDS = 5.0  # a restarted store's peers stay pending while they catch up
DEFAULT_PEER_DOWN_SECONDS = 600.0  # TiKV max-peer-down-duration
BASE_WRITE_P99_MS = 20.0
MAX_STORES = 200
MAX_REGIONS = 1_000_000


@dataclass
class HotRegion:
    """A region made hot by a fault: its flow per second and since when."""

    kind: str  # "write" or "read"
    since: float
    bytes_rate: float
    keys_rate: float
    query_rate: float


def _key(table: int, row: int) -> bytes:
    return (
        b"t"
        + (0x8000000000000000 + table).to_bytes(8, "big")
        + b"_r"
        + (0x8000000000000000 + row).to_bytes(8, "big")
    )


def midpoint_key(start: bytes, end: bytes) -> bytes | None:
    """A key strictly between start and end ("" end = unbounded), or None if none exists."""
    length = max(len(start), len(end), 1) + 1
    low = int.from_bytes(start.ljust(length, b"\0"), "big")
    high = int.from_bytes(end.ljust(length, b"\0"), "big") if end else 256**length
    if high - low < 2:
        return None
    mid = ((low + high) // 2).to_bytes(length, "big")
    if not start < mid or (end and not mid < end):
        return None
    return mid


class Cluster:
    """A TiKV cluster with PD's scheduling behaviour, driven by a virtual clock."""

    def __init__(
        self,
        stores: int = 3,
        regions: int = 1000,
        *,
        seed: int = 0,
        start_time: float | None = None,
        max_replicas: int = 3,
        peer_down_seconds: float = DEFAULT_PEER_DOWN_SECONDS,
    ) -> None:
        if not 1 <= stores <= MAX_STORES:
            raise ValueError(f"stores must be between 1 and {MAX_STORES}, got {stores}")
        if not 1 <= regions <= MAX_REGIONS:
            raise ValueError(f"regions must be between 1 and {MAX_REGIONS}, got {regions}")
        self.rng = random.Random(seed)
        self.seed = seed
        self.now = float(start_time if start_time is not None else round(time.time(), 3))
        self.started_at = self.now
        self.pd_started_at = self.now - 3600.0
        self.peer_down_seconds = peer_down_seconds
        self.schedule = ScheduleConfig()
        self.replication = ReplicationConfig()
        self.replication.values["max-replicas"] = max_replicas
        self.cluster_id = self.rng.getrandbits(63) | (1 << 62)
        self.member_id = self.rng.getrandbits(64) | (1 << 63)
        self._next_id = stores + 1
        self.stores: dict[int, Store] = {}
        self.regions: dict[int, Region] = {}
        self._starts: list[bytes] = []
        self._ordered: list[int] = []
        self.hot: dict[int, HotRegion] = {}
        self.metrics: dict[int, StoreMetrics] = {}
        self.layout_version = 0  # bumped on any peer/leader/range change
        self._size_version = 0  # bumped when region sizes or ranges change (split, merge)
        # regions whose peers are not exactly `_tracked_replicas` settled voters
        self._irregular: set[int] = set()
        self._tracked_replicas = max_replicas
        self.listeners: list[Callable[[], None]] = []
        self._events: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._idle = False
        self._check_cache: dict[tuple[object, ...], list[int]] = {}
        self.operators = OperatorController(self)
        self.schedulers = SchedulerController(self)
        self.schedule.store_ids = lambda: sorted(self.stores)
        self.schedule.scheduler_entries = self.schedulers.config_entries
        collecting = gc.isenabled()
        gc.disable()  # millions of small objects: cyclic GC passes would only slow the build
        try:
            self._build(stores, regions, max_replicas)
        finally:
            if collecting:
                gc.enable()

    # ----- construction ----------------------------------------------------------------------

    def _build(self, store_count: int, region_count: int, max_replicas: int) -> None:
        rng = self.rng
        for sid in range(1, store_count + 1):
            store = Store(
                sid,
                start_timestamp=float(int(self.now - 36000 - sid * 61)),
                hb_phase=self.now - rng.uniform(0, 10),
            )
            self.stores[sid] = store
        replicas = min(max_replicas, store_count)
        boundaries = [b""] + [
            _key(100 + i // 50, (i % 50) * 100_000) for i in range(1, region_count)
        ]
        boundaries.append(b"")
        # Built in bulk (no per-region _attach) so 200,000 regions start in a few seconds.
        random_ = rng.random
        make_peer = Peer._make
        regions = self.regions
        peer_lists: dict[int, list[int]] = {sid: [] for sid in self.stores}
        leader_lists: dict[int, list[int]] = {sid: [] for sid in self.stores}
        sizes = dict.fromkeys(self.stores, 0)
        keys_sum = dict.fromkeys(self.stores, 0)
        leader_sizes = dict.fromkeys(self.stores, 0)
        leader_keys = dict.fromkeys(self.stores, 0)
        next_id = self._next_id
        for index in range(region_count):
            rid = next_id
            base = index % store_count
            sids = [(base + k) % store_count + 1 for k in range(replicas)]
            peers = [make_peer((rid + 1 + k, sid, VOTER)) for k, sid in enumerate(sids)]
            next_id += 1 + replicas
            leader = sids[(index // store_count) % replicas]
            roll = random_()
            if roll < 0.01:
                size, keys = 1, 0
            elif roll < 0.07:
                size = 2 + int(random_() * 49)
                keys = size * (8000 + int(random_() * 2001))
            else:
                size = 60 + int(random_() * 37)
                keys = size * (8000 + int(random_() * 2001))
            region = Region(
                rid,
                boundaries[index],
                boundaries[index + 1],
                peers,
                leader,
                conf_ver=5,
                version=20 + int(random_() * 101),
                size=size,
                keys=keys,
            )
            if keys:
                written = int(random_() * 2 * MIB)
                read = int(random_() * 4 * MIB)
                region.written_bytes, region.written_keys = written, written // 128
                region.read_bytes, region.read_keys = read, read // 256
                region.cpu_usage = int(random_() * 21)
            regions[rid] = region
            for sid in sids:
                peer_lists[sid].append(rid)
                sizes[sid] += size
                keys_sum[sid] += keys
            leader_lists[leader].append(rid)
            leader_sizes[leader] += size
            leader_keys[leader] += keys
        self._next_id = next_id
        self._starts = boundaries[:-1]
        self._ordered = list(regions)
        for sid, store in self.stores.items():
            store.peers.extend(peer_lists[sid])
            store.leaders.extend(leader_lists[sid])
            store.region_count = len(peer_lists[sid])
            store.leader_count = len(leader_lists[sid])
            store.region_size, store.region_keys = sizes[sid], keys_sum[sid]
            store.leader_size, store.leader_keys = leader_sizes[sid], leader_keys[sid]
        biggest = max(store.used_bytes() for store in self.stores.values())
        capacity = max(500 * GIB, math.ceil(biggest / 0.4 / (100 * GIB)) * 100 * GIB)
        for store in self.stores.values():
            store.capacity = capacity
            store.status_address = ""
            self.metrics[store.id] = StoreMetrics(self.now, store.start_timestamp)

    def alloc_id(self) -> int:
        value = self._next_id
        self._next_id += 1
        return value

    # ----- per-store bookkeeping -------------------------------------------------------------

    def _attach(self, region: Region) -> None:
        size, keys = region.approximate_size, region.approximate_keys
        for peer in region.peers:
            store = self.stores[peer.store_id]
            store.peers.add(region.id)
            store.region_count += 1
            store.region_size += size
            store.region_keys += keys
            if peer.role == LEARNER:
                store.learner_count += 1
        if region.leader_store:
            store = self.stores[region.leader_store]
            store.leaders.add(region.id)
            store.leader_count += 1
            store.leader_size += size
            store.leader_keys += keys

    def _detach(self, region: Region) -> None:
        size, keys = region.approximate_size, region.approximate_keys
        for peer in region.peers:
            store = self.stores[peer.store_id]
            store.peers.discard(region.id)
            store.region_count -= 1
            store.region_size -= size
            store.region_keys -= keys
            if peer.role == LEARNER:
                store.learner_count -= 1
        if region.leader_store:
            store = self.stores[region.leader_store]
            store.leaders.discard(region.id)
            store.leader_count -= 1
            store.leader_size -= size
            store.leader_keys -= keys

    def _changed(self, region: Region, structural: bool = True) -> None:
        region.invalidate()
        if structural:
            self.layout_version += 1
            self._track(region)
        self.touch()

    def _track(self, region: Region) -> None:
        if (
            len(region.peers) != self._tracked_replicas
            or region.learning
            or any(p.role != VOTER for p in region.peers)
        ):
            self._irregular.add(region.id)
        else:
            self._irregular.discard(region.id)

    def _irregular_regions(self) -> list[Region]:
        if self._tracked_replicas != self.replication.max_replicas:
            self._tracked_replicas = self.replication.max_replicas
            self._irregular.clear()
            for region in self.regions.values():
                self._track(region)
        regions = self.regions
        return [regions[rid] for rid in self._irregular if rid in regions]

    def set_leader(self, region: Region, store_id: int) -> None:
        if region.leader_store == store_id:
            return
        self._detach(region)
        region.leader_store = store_id
        self._attach(region)
        self._changed(region, structural=False)

    def add_peer(self, region: Region, peer: Peer, learning_until: float | None = None) -> None:
        self._detach(region)
        region.peers = [*region.peers, peer]
        region.conf_ver += 1
        if learning_until is not None:
            region.learning = {**(region.learning or {}), peer.id: learning_until}
        self._attach(region)
        self._changed(region)

    def remove_peer(self, region: Region, store_id: int) -> None:
        peer = region.peer_on(store_id)
        if peer is None:
            return
        self._detach(region)
        region.peers = [p for p in region.peers if p.store_id != store_id]
        region.conf_ver += 1
        if region.learning:
            region.learning.pop(peer.id, None)
            region.learning = region.learning or None
        if region.leader_store == store_id:
            region.leader_store = 0
        self._attach(region)
        self._changed(region)

    def set_roles(self, region: Region, roles: dict[int, int]) -> None:
        """Change peer roles; `roles` maps peer id -> new role."""
        self._detach(region)
        region.peers = [
            Peer(p.id, p.store_id, roles[p.id]) if p.id in roles else p for p in region.peers
        ]
        region.conf_ver += len(roles)
        self._attach(region)
        self._changed(region)

    # ----- time ------------------------------------------------------------------------------

    def touch(self) -> None:
        """Something changed outside a tick: run at least one scheduling round next time."""
        self._idle = False

    def at(self, when: float, action: Callable[[], None]) -> None:
        heapq.heappush(self._events, (when, next(self._seq), action))

    def advance(self, seconds: float) -> None:
        """Move virtual time forward by `seconds`, running everything that happens meanwhile."""
        if seconds < 0:
            raise ValueError("cannot move time backwards")
        self.advance_to(self.now + seconds)

    def advance_to(self, target: float) -> None:
        while self.now < target:
            nxt = self.now + TICK
            if self._idle:
                event_at = self._events[0][0] if self._events else math.inf
                nxt = max(nxt, min(event_at, target))
            self.now = min(nxt, target)
            while self._events and self._events[0][0] <= self.now:
                _, _, action = heapq.heappop(self._events)
                action()
            self._idle = not self._tick()
        for listener in list(self.listeners):
            listener()

    def _tick(self) -> bool:
        busy = self.operators.tick()
        created = self.schedulers.tick()
        self._bury_empty_offline_stores()
        return busy or created

    def _bury_empty_offline_stores(self) -> None:
        for store in self.stores.values():
            if store.state == STATE_OFFLINE and store.region_count == 0:
                store.state = STATE_TOMBSTONE
                store.node_state = NODE_REMOVED
                self.touch()

    # ----- store health ----------------------------------------------------------------------

    def store(self, store_id: int) -> Store:
        store = self.stores.get(store_id)
        if store is None:
            raise pderrors.SimError(404, pderrors.store_not_found(store_id))
        return store

    def down_time(self, store: Store) -> float:
        return self.now - store.last_heartbeat(self.now)

    def state_name(self, store: Store) -> str:
        if store.state != STATE_UP:
            return STATE_NAMES[store.state]
        down = self.down_time(store)
        if down > self.schedule.max_store_down_time:
            return "Down"
        if down > DISCONNECT_SECONDS:
            return "Disconnected"
        return "Up"

    def is_serving(self, store_id: int) -> bool:
        """Up, heartbeating and not disconnected: a store that can take new peers or leaders."""
        store = self.stores.get(store_id)
        return (
            store is not None
            and store.state == STATE_UP
            and store.running
            and self.down_time(store) <= DISCONNECT_SECONDS
        )

    def allows_leader(self, store_id: int) -> bool:
        """PD's StoreStateFilter leader-target check: not Down, Disconnected, Removing, busy,
        rejecting leaders or paused by evict-/grant-leader."""
        store = self.stores.get(store_id)
        if store is None or store.state != STATE_UP or store.busy:
            return False
        if self.down_time(store) > DISCONNECT_SECONDS:
            return False
        if any(k == "reject-leader" for k, _ in store.labels):
            return False
        return store_id not in self.schedulers.paused_stores()

    def is_low_space(self, store: Store) -> bool:
        used_ratio = 1 - store.available_bytes(self.now) / store.capacity
        return used_ratio > float(self.schedule["low-space-ratio"])

    def impaired_stores(self) -> frozenset[int]:
        """Stores whose peers may be pending or down right now (stopped or catching up)."""
        return frozenset(
            s.id for s in self.stores.values() if not s.running or s.catchup_until > self.now
        )

    def peer_health(
        self, region: Region, impaired: frozenset[int] | None = None
    ) -> tuple[list[tuple[Peer, int]], list[Peer]]:
        """(down peers with down_seconds, pending peers) of a region at the current time."""
        if impaired is None:
            impaired = self.impaired_stores()
        down: list[tuple[Peer, int]] = []
        pending: list[Peer] = []
        if not impaired and not region.learning:
            return down, pending
        now = self.now
        for peer in region.peers:
            if region.learning and region.learning.get(peer.id, 0.0) > now:
                pending.append(peer)
                continue
            if peer.store_id not in impaired:
                continue
            store = self.stores[peer.store_id]
            if store.running:
                pending.append(peer)
                continue
            stopped_for = now - store.stopped_at
            if stopped_for >= self.peer_down_seconds:
                down.append((peer, int(stopped_for)))
            if stopped_for >= PENDING_AFTER_SECONDS:
                pending.append(peer)
        return down, pending

    def unhealthy_peer_stores(self, region: Region) -> set[int]:
        down, pending = self.peer_health(region)
        return {p.store_id for p, _ in down} | {p.store_id for p in pending}

    def pending_peer_count(self, store: Store) -> int:
        now = self.now
        if not store.running:
            return store.region_count if now - store.stopped_at >= PENDING_AFTER_SECONDS else 0
        if store.catchup_until > now:
            return store.region_count
        return 0

    def region_is_healthy(self, region: Region) -> bool:
        """No down/pending peers, not in joint state, no operator, fully replicated."""
        if region.id in self.operators.running or region.in_joint_state():
            return False
        voters = sum(1 for p in region.peers if p.role == VOTER)
        if voters != self.replication.max_replicas or len(region.peers) != voters:
            return False
        return not self.unhealthy_peer_stores(region)

    # ----- operator steps --------------------------------------------------------------------

    def _alive(self, store_id: int) -> bool:
        store = self.stores.get(store_id)
        return store is not None and store.running

    def begin_step(self, region: Region, step: Step) -> bool:
        """Start applying a step; False if it cannot start yet (a store is not reachable)."""
        if region.leader_store and not self._alive(region.leader_store):
            return False
        if step.kind == "add_learner":
            if not self._alive(step.store):
                return False
            if region.peer_on(step.store) is None:
                self.add_peer(
                    region, Peer(step.peer_id, step.store, LEARNER), self.now + step.duration
                )
        return True

    def finish_step(self, region: Region, step: Step) -> bool:
        """Complete a step whose duration has passed; False to wait and retry next tick."""
        kind = step.kind
        if kind == "transfer_leader":
            if region.leader_store == step.store:
                return True
            if region.voter_on(step.store) is None or not self.is_serving(step.store):
                return False
            if region.leader_store and not self._alive(region.leader_store):
                return False
            self.set_leader(region, step.store)
            return True
        if region.leader_store == 0 or not self._alive(region.leader_store):
            return False
        if kind == "add_learner":
            if not self._alive(step.store):
                return False
            if region.learning:
                region.learning.pop(step.peer_id, None)
                region.learning = region.learning or None
                self._changed(region)
            return True
        if kind == "promote":
            self.set_roles(region, {step.peer_id: VOTER})
            return True
        if kind == "enter_joint":
            roles = {pid: INCOMING_VOTER for pid, _ in step.promotes}
            roles.update({pid: DEMOTING_VOTER for pid, _ in step.demotes})
            self.set_roles(region, roles)
            return True
        if kind == "leave_joint":
            roles = {pid: VOTER for pid, _ in step.promotes}
            roles.update({pid: LEARNER for pid, _ in step.demotes})
            self.set_roles(region, roles)
            return True
        if kind == "remove_peer":
            if region.leader_store == step.store:
                return False
            self.remove_peer(region, step.store)
            return True
        if kind == "split":
            return self._split(region, step)
        if kind == "merge":
            target = self.regions.get(step.target_region)
            if target is None:
                return False
            self._merge(region, target)
            return True
        return True

    def abort_step(self, region: Region, step: Step) -> None:
        """An operator ended mid-step: drop a learner whose snapshot never finished."""
        if step.kind == "add_learner" and region.learning and step.peer_id in region.learning:
            self.remove_peer(region, step.store)

    def _split(self, region: Region, step: Step) -> bool:
        if step.policy == "USEKEY":
            keys = sorted(
                {
                    k
                    for k in step.split_keys
                    if region.start_key < k and (not region.end_key or k < region.end_key)
                }
            )
        else:
            mid = midpoint_key(region.start_key, region.end_key)
            keys = [mid] if mid is not None else []
        if not keys:
            return False
        self._detach(region)
        pieces = len(keys) + 1
        size_each = max(1, region.approximate_size // pieces) if region.approximate_size > 1 else 1
        keys_each = region.approximate_keys // pieces
        bounds = [region.start_key, *keys]
        index = bisect.bisect_left(self._starts, region.start_key)
        new_version = region.version + len(keys)
        for i, key in enumerate(keys):
            piece = Region(
                self.alloc_id(),
                bounds[i],
                key,
                [Peer(self.alloc_id(), p.store_id, p.role) for p in region.peers],
                region.leader_store,
                conf_ver=region.conf_ver,
                version=new_version,
                size=size_each,
                keys=keys_each,
            )
            piece.written_bytes = region.written_bytes // pieces
            piece.written_keys = region.written_keys // pieces
            piece.read_bytes = region.read_bytes // pieces
            piece.read_keys = region.read_keys // pieces
            self.regions[piece.id] = piece
            self._starts.insert(index + i, piece.start_key)
            self._ordered.insert(index + i, piece.id)
            self._attach(piece)
            self._track(piece)
        self._size_version += 1
        region.start_key = keys[-1]
        self._starts[index + len(keys)] = region.start_key
        region.version = new_version
        region.approximate_size = size_each
        region.approximate_keys = keys_each
        region.written_bytes //= pieces
        region.written_keys //= pieces
        region.read_bytes //= pieces
        region.read_keys //= pieces
        self._attach(region)
        self._changed(region)
        return True

    def _merge(self, source: Region, target: Region) -> None:
        self._detach(source)
        self._detach(target)
        index = bisect.bisect_left(self._starts, source.start_key)
        del self._starts[index]
        del self._ordered[index]
        del self.regions[source.id]
        self.hot.pop(source.id, None)
        self._irregular.discard(source.id)
        self._size_version += 1
        if source.end_key == target.start_key:
            target.start_key = source.start_key
            self._starts[index] = target.start_key
        else:
            target.end_key = source.end_key
        target.version = max(source.version, target.version) + 1
        target.approximate_size += source.approximate_size
        target.approximate_keys += source.approximate_keys
        self._attach(target)
        self._changed(target)

    # ----- key space -------------------------------------------------------------------------

    def ordered_regions(self) -> list[Region]:
        regions = self.regions
        return [regions[rid] for rid in self._ordered]

    def region_by_key(self, key: bytes) -> Region | None:
        index = bisect.bisect_right(self._starts, key) - 1
        if index < 0:
            return None
        region = self.regions[self._ordered[index]]
        if region.end_key and key >= region.end_key:
            return None
        return region

    def regions_from_key(self, key: bytes, end_key: bytes, limit: int) -> list[Region]:
        index = max(0, bisect.bisect_right(self._starts, key) - 1)
        out: list[Region] = []
        while index < len(self._ordered) and len(out) < limit:
            region = self.regions[self._ordered[index]]
            if end_key and region.start_key >= end_key:
                break
            if not region.end_key or region.end_key > key:
                out.append(region)
            index += 1
        return out

    # ----- region health lists (/regions/check/*) --------------------------------------------

    def _peer_union(self, stores: Iterable[Store]) -> set[int]:
        ids: set[int] = set()
        for store in stores:
            ids.update(store.peers.items())
        return ids

    def _scan(
        self, name: str, key: tuple[object, ...], predicate: Callable[[Region], bool]
    ) -> list[int]:
        cache_key = (name, self._size_version, *key)
        cached = self._check_cache.get(cache_key)
        if cached is None:
            if len(self._check_cache) > 64:
                self._check_cache.clear()
            cached = [r.id for r in self.regions.values() if predicate(r)]
            self._check_cache[cache_key] = cached
        return cached

    def check_regions(self, state: str) -> list[Region] | None:
        """Regions in a PD region-statistics category, or None for an unknown category."""
        ids = self._check_ids(state)
        if ids is None:
            return None
        regions = self.regions
        return [regions[rid] for rid in sorted(ids) if rid in regions]

    def check_count(self, state: str) -> int:
        """How many regions are in a category (PD's pd_regions_status gauge)."""
        ids = self._check_ids(state)
        return len(ids) if ids is not None else 0

    def _check_ids(self, state: str) -> set[int] | list[int] | None:
        now = self.now
        max_replicas = self.replication.max_replicas
        ids: set[int] | list[int]
        if state == "down-peer":
            stores = [
                s
                for s in self.stores.values()
                if not s.running and now - s.stopped_at >= self.peer_down_seconds
            ]
            ids = self._peer_union(stores)
        elif state == "pending-peer":
            stores = [
                s
                for s in self.stores.values()
                if (not s.running and now - s.stopped_at >= PENDING_AFTER_SECONDS)
                or (s.running and s.catchup_until > now)
            ]
            found = self._peer_union(stores)
            for region in self._irregular_regions():
                if region.learning and any(t > now for t in region.learning.values()):
                    found.add(region.id)
            ids = found
        elif state == "offline-peer":
            ids = self._peer_union(s for s in self.stores.values() if s.state == STATE_OFFLINE)
        elif state == "miss-peer":
            ids = [r.id for r in self._irregular_regions() if len(r.peers) < max_replicas]
        elif state == "extra-peer":
            ids = [r.id for r in self._irregular_regions() if len(r.peers) > max_replicas]
        elif state == "learner-peer":
            ids = [
                r.id for r in self._irregular_regions() if any(p.role == LEARNER for p in r.peers)
            ]
        elif state == "empty-region":
            ids = self._scan("empty", (), lambda r: r.approximate_size <= 1)
        elif state == "oversized-region":
            ids = self._scan(
                "oversized",
                (),
                lambda r: r.approximate_size > 144 or r.approximate_keys > 1_440_000,
            )
        elif state == "undersized-region":
            max_size = int(self.schedule["max-merge-region-size"])
            max_keys = int(self.schedule["max-merge-region-keys"])
            ids = self._scan(
                "undersized",
                (max_size, max_keys),
                lambda r: r.approximate_size < max_size and r.approximate_keys < max_keys,
            )
        else:
            return None
        return ids

    # ----- faults (model level) ---------------------------------------------------------------

    def stop_store(self, store_id: int) -> None:
        """The TiKV process stops: no heartbeats, leaders re-elected elsewhere after 10 s."""
        store = self.store(store_id)
        if not store.running:
            return
        self.metrics[store_id].flush(self.now, store)
        store.running = False
        store.stopped_at = self.now
        stopped_at = self.now

        def elect() -> None:
            if not store.running and store.stopped_at == stopped_at:
                self._elect_away_from(store)

        self.at(self.now + ELECTION_SECONDS, elect)
        for delay in (
            DISCONNECT_SECONDS + 0.5,
            PENDING_AFTER_SECONDS + 0.5,
            UNHEALTHY_SECONDS + 0.5,
            self.peer_down_seconds + 0.5,
            self.schedule.max_store_down_time + 0.5,
        ):
            self.at(self.now + delay, self.touch)
        self.touch()

    def start_store(self, store_id: int) -> None:
        """The TiKV process starts again (a new process: counters restart, start time now)."""
        store = self.store(store_id)
        if store.running:
            return
        store.running = True
        store.hb_phase = self.now
        store.start_timestamp = float(int(self.now))
        store.catchup_until = self.now + CATCHUP_SECONDS
        self.metrics[store_id] = StoreMetrics(self.now, store.start_timestamp)
        self.at(store.catchup_until + 0.01, self.touch)
        self.touch()

    def _elect_away_from(self, store: Store) -> None:
        for rid in list(store.leaders):
            region = self.regions[rid]
            voters = [p for p in region.peers if p.is_voter_like]
            alive = [p for p in voters if p.store_id != store.id and self._alive(p.store_id)]
            if len(alive) * 2 <= len(voters):
                continue  # no quorum: no new leader, PD keeps the last one it heard of
            best = min(alive, key=lambda p: (self.stores[p.store_id].leader_count, p.store_id))
            self.set_leader(region, best.store_id)

    def set_write_latency(self, store_id: int, p99_ms: float) -> None:
        store = self.store(store_id)
        self.metrics[store_id].flush(self.now, store)
        store.write_p99_ms = float(p99_ms)

    def fill_disk(self, store_id: int, ratio: float, over_seconds: float = 0.0) -> None:
        """Make the disk `ratio` full (1 - available/capacity), now or ramped over time."""
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(f"ratio must be between 0 and 1, got {ratio}")
        store = self.store(store_id)
        target = max(0.0, ratio * store.capacity - store.used_bytes())
        store.fill_from = store.other_bytes(self.now)
        store.fill_to = target
        store.fill_start = self.now
        store.fill_end = self.now + max(0.0, over_seconds)
        if over_seconds > 0:
            self.at(store.fill_end + 0.01, self.touch)
        self.touch()

    def used_ratio(self, store: Store) -> float:
        return 1.0 - store.available_bytes(self.now) / store.capacity

    def set_hot(self, region_id: int, kind: str = "write", on: bool = True) -> Region:
        region = self.regions.get(region_id)
        if region is None:
            raise pderrors.SimError(404, pderrors.region_not_found(region_id))
        if kind not in ("write", "read"):
            raise ValueError(f"kind must be 'write' or 'read', got {kind!r}")
        if on:
            flow = 24.0 * MIB
            self.hot[region_id] = HotRegion(kind, self.now, flow, flow / 256, flow / 4096)
            if kind == "write":
                region.written_bytes = int(flow * 60)
                region.written_keys = int(flow * 60 / 256)
            else:
                region.read_bytes = int(flow * 60)
                region.read_keys = int(flow * 60 / 256)
        else:
            self.hot.pop(region_id, None)
        region.invalidate()
        return region

    # ----- store state changes from the API ---------------------------------------------------

    def up_store_count(self) -> int:
        return sum(1 for s in self.stores.values() if s.state == STATE_UP)

    def set_store_offline(self, store_id: int, force: bool) -> None:
        store = self.store(store_id)
        if store.state == STATE_TOMBSTONE:
            raise pderrors.SimError(410, pderrors.store_removed(store_id))
        if store.physically_destroyed:
            raise pderrors.SimError(400, pderrors.store_destroyed(store_id))
        if store.state == STATE_OFFLINE and not force:
            return
        if not force:
            up = self.up_store_count()
            if store.state == STATE_UP and up <= self.replication.max_replicas:
                raise pderrors.SimError(
                    400, pderrors.stores_not_enough(store_id, up - 1, self.replication.max_replicas)
                )
            paused = self.schedulers.paused_stores()
            others = [s for s in self.stores.values() if s.state == STATE_UP and s.id != store_id]
            if others and all(s.id in paused for s in others):
                raise pderrors.SimError(400, pderrors.no_store_for_leader(store_id))
        store.state = STATE_OFFLINE
        store.node_state = NODE_REMOVING
        store.physically_destroyed = store.physically_destroyed or force
        self.touch()

    def config_changed(self, old_max_store_down_time: float) -> None:
        """Re-plan time-based wake-ups after a config change (e.g. max-store-down-time)."""
        new = self.schedule.max_store_down_time
        if new != old_max_store_down_time:
            for store in self.stores.values():
                if not store.running and store.stopped_at + new + 0.5 > self.now:
                    self.at(store.stopped_at + new + 0.5, self.touch)
        self._check_cache.clear()
        self.touch()

    def set_store_up(self, store_id: int) -> None:
        store = self.store(store_id)
        if store.state == STATE_TOMBSTONE:
            raise pderrors.SimError(410, pderrors.store_removed(store_id))
        if store.physically_destroyed:
            raise pderrors.SimError(400, pderrors.store_destroyed(store_id))
        store.state = STATE_UP
        store.node_state = NODE_SERVING
        self.touch()
