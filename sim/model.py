"""Compact in-memory records of the simulated cluster: stores, regions, peers.

Regions use `__slots__` and peers are small tuples, so 200,000 regions fit comfortably in memory.
Per-store indexes (`IndexedSet`) give O(1) add, remove and random pick, which the schedulers use to
choose a region led by (or with a peer on) a store without scanning every region.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import NamedTuple

VOTER = 0
LEARNER = 1
INCOMING_VOTER = 2
DEMOTING_VOTER = 3
ROLE_NAMES = ("Voter", "Learner", "IncomingVoter", "DemotingVoter")

STATE_UP = 0
STATE_OFFLINE = 1
STATE_TOMBSTONE = 2
STATE_NAMES = ("Up", "Offline", "Tombstone")

NODE_PREPARING = 0
NODE_SERVING = 1
NODE_REMOVING = 2
NODE_REMOVED = 3

MIB = 1024 * 1024
GIB = 1024 * MIB


class Peer(NamedTuple):
    """A region replica: peer id, the store holding it, and its raft role."""

    id: int
    store_id: int
    role: int

    @property
    def is_voter_like(self) -> bool:
        """True for voters and incoming voters (they can lead and count for quorum)."""
        return self.role in (VOTER, INCOMING_VOTER)


class IndexedSet:
    """A set of ints with O(1) add/remove/contains and O(1) uniform random choice."""

    __slots__ = ("_items", "_pos")

    def __init__(self) -> None:
        self._items: list[int] = []
        self._pos: dict[int, int] = {}

    def add(self, item: int) -> None:
        if item not in self._pos:
            self._pos[item] = len(self._items)
            self._items.append(item)

    def extend(self, items: list[int]) -> None:
        """Add many distinct items not yet in the set."""
        start = len(self._items)
        self._items.extend(items)
        self._pos.update(zip(items, range(start, start + len(items)), strict=True))

    def discard(self, item: int) -> None:
        index = self._pos.pop(item, None)
        if index is None:
            return
        last = self._items.pop()
        if index < len(self._items):
            self._items[index] = last
            self._pos[last] = index

    def __contains__(self, item: object) -> bool:
        return item in self._pos

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[int]:
        return iter(list(self._items))

    def items(self) -> list[int]:
        """The items (the live list: do not modify)."""
        return self._items

    def choice(self, rng: random.Random) -> int:
        return self._items[rng.randrange(len(self._items))]


class Region:
    """One region: key range, epoch, peers, leader and its (approximate) statistics."""

    __slots__ = (
        "approximate_keys",
        "approximate_size",
        "conf_ver",
        "cpu_usage",
        "end_key",
        "id",
        "json_head",
        "json_tail",
        "leader_store",
        "learning",
        "peers",
        "read_bytes",
        "read_keys",
        "start_key",
        "version",
        "written_bytes",
        "written_keys",
    )

    def __init__(
        self,
        region_id: int,
        start_key: bytes,
        end_key: bytes,
        peers: list[Peer],
        leader_store: int,
        *,
        conf_ver: int,
        version: int,
        size: int,
        keys: int,
    ) -> None:
        self.id = region_id
        self.start_key = start_key
        self.end_key = end_key
        self.peers = peers
        self.leader_store = leader_store
        self.conf_ver = conf_ver
        self.version = version
        self.approximate_size = size
        self.approximate_keys = keys
        self.written_bytes = 0
        self.read_bytes = 0
        self.written_keys = 0
        self.read_keys = 0
        self.cpu_usage = 0
        # peer id -> virtual time its snapshot is applied (the learner is pending until then)
        self.learning: dict[int, float] | None = None
        self.json_head: str | None = None
        self.json_tail: str | None = None

    def invalidate(self) -> None:
        """Forget the cached JSON after any change."""
        self.json_head = None
        self.json_tail = None

    def peer_on(self, store_id: int) -> Peer | None:
        for peer in self.peers:
            if peer.store_id == store_id:
                return peer
        return None

    def voter_on(self, store_id: int) -> Peer | None:
        """PD's GetStoreVoter: a voter or incoming voter on the store."""
        peer = self.peer_on(store_id)
        return peer if peer is not None and peer.is_voter_like else None

    @property
    def leader(self) -> Peer | None:
        return self.peer_on(self.leader_store) if self.leader_store else None

    def store_ids(self) -> list[int]:
        return [peer.store_id for peer in self.peers]

    def in_joint_state(self) -> bool:
        return any(peer.role in (INCOMING_VOTER, DEMOTING_VOTER) for peer in self.peers)


class Store:
    """One TiKV store: identity, state, capacity, weights and per-store counters and indexes."""

    __slots__ = (
        "address",
        "busy",
        "capacity",
        "catchup_until",
        "deploy_path",
        "fill_end",
        "fill_from",
        "fill_start",
        "fill_to",
        "git_hash",
        "hb_phase",
        "id",
        "labels",
        "leader_count",
        "leader_keys",
        "leader_size",
        "leader_weight",
        "leaders",
        "learner_count",
        "node_state",
        "peers",
        "physically_destroyed",
        "region_count",
        "region_keys",
        "region_size",
        "region_weight",
        "running",
        "start_timestamp",
        "state",
        "status_address",
        "stopped_at",
        "version",
        "write_p99_ms",
    )

    def __init__(self, store_id: int, *, start_timestamp: float, hb_phase: float) -> None:
        self.id = store_id
        self.address = f"127.0.0.1:{20160 + store_id - 1}"
        self.status_address = ""
        zone = f"z{(store_id - 1) % 3 + 1}"
        self.labels: tuple[tuple[str, str], ...] = (("zone", zone), ("host", f"tikv-{store_id}"))
        self.version = "8.5.5"
        self.git_hash = "bd35d5c6f5e53a4e4ec04ae94fc4d2e9f7a0c1b2"
        self.deploy_path = "/home/tidb/.tiup/components/tikv/v8.5.5"
        self.start_timestamp = start_timestamp
        self.hb_phase = hb_phase
        self.state = STATE_UP
        self.node_state = NODE_SERVING
        self.physically_destroyed = False
        self.leader_weight = 1.0
        self.region_weight = 1.0
        self.running = True
        self.stopped_at = 0.0
        self.catchup_until = 0.0
        self.busy = False
        self.capacity = 500 * GIB
        # other files on the disk (fill_disk), ramped linearly from fill_from to fill_to
        self.fill_from = 0.0
        self.fill_to = 0.0
        self.fill_start = 0.0
        self.fill_end = 0.0
        self.write_p99_ms = 20.0
        self.leader_count = 0
        self.region_count = 0
        self.learner_count = 0
        self.leader_size = 0
        self.region_size = 0
        self.leader_keys = 0
        self.region_keys = 0
        self.peers = IndexedSet()
        self.leaders = IndexedSet()

    def other_bytes(self, now: float) -> float:
        """Bytes of non-TiKV files on the disk at virtual time `now` (see fill_disk)."""
        if now >= self.fill_end or self.fill_end <= self.fill_start:
            return self.fill_to
        progress = (now - self.fill_start) / (self.fill_end - self.fill_start)
        return self.fill_from + (self.fill_to - self.fill_from) * max(0.0, progress)

    def used_bytes(self) -> int:
        """TiKV's own data size (kv + raft + snapshots): region data plus ~10 % overhead."""
        return int(self.region_size * MIB * 1.1)

    def available_bytes(self, now: float) -> int:
        free = self.capacity - self.used_bytes() - self.other_bytes(now)
        return max(0, int(free))

    def last_heartbeat(self, now: float) -> float:
        """Time of the last store heartbeat (every 10 s while running)."""
        at = now if self.running else self.stopped_at
        return at - ((at - self.hb_phase) % 10.0)
