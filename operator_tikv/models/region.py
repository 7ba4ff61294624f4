"""Region models: ``/region/id/{id}``, region lists, counts and stats (pd-api.md §4.1-4.4).

Region endpoints answer compact JSON as ``application/octet-stream``; the client parses by
body. Peers omit ``role`` when Voter and ``is_learner`` when false. A region without a leader
has ``"leader": {"role_name": ""}``, which becomes ``leader=None`` here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import NotRequired

from pydantic import Field, TypeAdapter, field_validator
from typing_extensions import TypedDict

from operator_tikv.models.common import PDModel

__all__ = [
    "DownPeer",
    "Peer",
    "PeerRole",
    "Region",
    "RegionBrief",
    "RegionCheckState",
    "RegionEpoch",
    "RegionStats",
    "RegionsBrief",
    "RegionsInfo",
    "StoreRegionType",
    "parse_regions_brief",
]


class PeerRole(StrEnum):
    """``role_name`` of a peer (metapb.PeerRole names)."""

    VOTER = "Voter"
    LEARNER = "Learner"
    INCOMING_VOTER = "IncomingVoter"
    DEMOTING_VOTER = "DemotingVoter"


class RegionCheckState(StrEnum):
    """The ``{state}`` of ``GET /regions/check/{state}`` that answers a region list."""

    MISS_PEER = "miss-peer"
    EXTRA_PEER = "extra-peer"
    DOWN_PEER = "down-peer"
    PENDING_PEER = "pending-peer"
    LEARNER_PEER = "learner-peer"
    OFFLINE_PEER = "offline-peer"
    EMPTY_REGION = "empty-region"
    OVERSIZED_REGION = "oversized-region"
    UNDERSIZED_REGION = "undersized-region"


class StoreRegionType(StrEnum):
    """``?type=`` of ``GET /regions/store/{id}`` (v8.5+; older PDs ignore it and list all)."""

    ALL = "all"
    LEADER = "leader"
    FOLLOWER = "follower"
    LEARNER = "learner"
    WITNESS = "witness"
    PENDING = "pending"


class Peer(PDModel):
    """A region peer (``MetaPeer``). ``role`` is the numeric role, absent (0) for Voter."""

    id: int = 0
    store_id: int = 0
    role: int = 0
    role_name: str = ""
    is_learner: bool = False
    is_witness: bool = False

    @property
    def is_voter(self) -> bool:
        """Voters and the voter sides of a joint state (IncomingVoter, DemotingVoter)."""
        return not self.is_learner and self.role_name != PeerRole.LEARNER


class DownPeer(PDModel):
    peer: Peer
    down_seconds: int = 0


class RegionEpoch(PDModel):
    conf_ver: int = 0
    version: int = 0


def _none_to_list(value: object) -> object:
    return [] if value is None else value


class Region(PDModel):
    """One region. Keys are upper-case hex (``""`` = unbounded); sizes are MiB."""

    id: int
    start_key: str = ""
    end_key: str = ""
    epoch: RegionEpoch = Field(default_factory=RegionEpoch)
    peers: list[Peer] = Field(default_factory=list)
    leader: Peer | None = None
    down_peers: list[DownPeer] = Field(default_factory=list)
    pending_peers: list[Peer] = Field(default_factory=list)
    cpu_usage: float = 0.0
    written_bytes: int = 0
    read_bytes: int = 0
    written_keys: int = 0
    read_keys: int = 0
    approximate_size: int = 0
    approximate_keys: int = 0

    @field_validator("peers", "down_peers", "pending_peers", mode="before")
    @classmethod
    def _null_lists(cls, value: object) -> object:
        return _none_to_list(value)

    @field_validator("epoch", mode="before")
    @classmethod
    def _null_epoch(cls, value: object) -> object:
        return {} if value is None else value

    @field_validator("leader", mode="before")
    @classmethod
    def _no_leader(cls, value: object) -> object:
        if isinstance(value, dict) and not value.get("id") and not value.get("store_id"):
            return None
        return value

    @property
    def leader_store_id(self) -> int | None:
        return self.leader.store_id if self.leader else None

    @property
    def store_ids(self) -> list[int]:
        return [peer.store_id for peer in self.peers]

    @property
    def voter_store_ids(self) -> list[int]:
        return [peer.store_id for peer in self.peers if peer.is_voter]

    @property
    def down_store_ids(self) -> list[int]:
        return [down.peer.store_id for down in self.down_peers]

    @property
    def pending_store_ids(self) -> list[int]:
        return [peer.store_id for peer in self.pending_peers]

    def peer_on_store(self, store_id: int) -> Peer | None:
        """The region's peer on ``store_id``, or None."""
        for peer in self.peers:
            if peer.store_id == store_id:
                return peer
        return None


class RegionsInfo(PDModel):
    """``{"count": N, "regions": [...]}``; ``regions`` is null on ``/regions/count``."""

    count: int = 0
    regions: list[Region] = Field(default_factory=list)

    @field_validator("regions", mode="before")
    @classmethod
    def _null_regions(cls, value: object) -> object:
        return _none_to_list(value)


def _null_map(value: object) -> object:
    return {} if value is None else value


class RegionStats(PDModel):
    """``GET /stats/region`` (``statistics.RegionStats``). With ``?count`` only ``count`` is set.

    Map keys are store ids. ``storage_size`` is MiB.
    """

    count: int = 0
    empty_count: int = 0
    storage_size: int = 0
    storage_keys: int = 0
    store_leader_count: dict[int, int] = Field(default_factory=dict)
    store_peer_count: dict[int, int] = Field(default_factory=dict)
    store_leader_size: dict[int, int] = Field(default_factory=dict)
    store_peer_size: dict[int, int] = Field(default_factory=dict)

    @field_validator(
        "store_leader_count",
        "store_peer_count",
        "store_leader_size",
        "store_peer_size",
        mode="before",
    )
    @classmethod
    def _null_maps(cls, value: object) -> object:
        return _null_map(value)


# ---------------------------------------------------------------------------- brief region lists
#
# A `/regions/check/{state}` list holds every affected region in full: with a store down that is
# a third of a cluster's regions, tens of MB of JSON. Building `Region` models for it costs
# seconds on the event loop at 20k regions, and the monitor reads only a few fields of each. The
# brief path validates just those fields in pydantic-core (unknown keys are skipped while
# parsing, never turned into Python objects) and keeps them in small frozen dataclasses.


class _BriefPeer(TypedDict):
    store_id: NotRequired[int]
    role_name: NotRequired[str]
    is_learner: NotRequired[bool]


class _BriefStoreRef(TypedDict):
    store_id: NotRequired[int]


class _BriefDownPeer(TypedDict):
    peer: _BriefStoreRef


class _BriefRegion(TypedDict):
    id: int
    peers: NotRequired[list[_BriefPeer] | None]
    leader: NotRequired[_BriefStoreRef | None]
    down_peers: NotRequired[list[_BriefDownPeer] | None]
    pending_peers: NotRequired[list[_BriefStoreRef] | None]


class _BriefRegions(TypedDict):
    count: NotRequired[int]
    regions: NotRequired[list[_BriefRegion] | None]


class _BriefRegionNoPeers(TypedDict):
    id: int
    down_peers: NotRequired[list[_BriefDownPeer] | None]
    pending_peers: NotRequired[list[_BriefStoreRef] | None]


class _BriefRegionsNoPeers(TypedDict):
    count: NotRequired[int]
    regions: NotRequired[list[_BriefRegionNoPeers] | None]


_BRIEF_REGIONS: TypeAdapter[_BriefRegions] = TypeAdapter(_BriefRegions)
_BRIEF_REGIONS_NO_PEERS: TypeAdapter[_BriefRegionsNoPeers] = TypeAdapter(_BriefRegionsNoPeers)


@dataclass(frozen=True, slots=True)
class RegionBrief:
    """What the monitor reads of one listed region: its id and the stores of its voters, its
    down peers, its pending peers and its leader (None without a leader)."""

    id: int
    voter_store_ids: tuple[int, ...] = ()
    down_store_ids: tuple[int, ...] = ()
    pending_store_ids: tuple[int, ...] = ()
    leader_store_id: int | None = None

    @property
    def down_voter_count(self) -> int:
        """Down peers that are voters (a region has at most one peer per store)."""
        voters = set(self.voter_store_ids)
        return sum(1 for store_id in set(self.down_store_ids) if store_id in voters)

    @property
    def quorum_lost(self) -> bool:
        """At least half of the voters are down: the region cannot elect a leader."""
        voters = len(set(self.voter_store_ids))
        return voters > 0 and 2 * self.down_voter_count >= voters

    @classmethod
    def of(cls, region: Region) -> RegionBrief:
        """The brief of a full `Region` model (the same reduction as `parse_regions_brief`)."""
        return cls(
            id=region.id,
            voter_store_ids=tuple(region.voter_store_ids),
            down_store_ids=tuple(region.down_store_ids),
            pending_store_ids=tuple(region.pending_store_ids),
            leader_store_id=region.leader_store_id or None,
        )


@dataclass(frozen=True, slots=True)
class RegionsBrief:
    """A region list reduced to briefs; ``count`` is PD's count (``len(regions)`` on PD)."""

    count: int
    regions: tuple[RegionBrief, ...]


def _brief(raw: _BriefRegion | _BriefRegionNoPeers) -> RegionBrief:
    peers: Sequence[_BriefPeer] = raw.get("peers") or ()  # type: ignore[assignment]
    leader: _BriefStoreRef = raw.get("leader") or {}  # type: ignore[assignment]
    return RegionBrief(
        id=raw["id"],
        voter_store_ids=tuple(
            p.get("store_id", 0)
            for p in peers
            if not p.get("is_learner", False) and p.get("role_name") != PeerRole.LEARNER
        ),
        down_store_ids=tuple(d["peer"].get("store_id", 0) for d in raw.get("down_peers") or ()),
        pending_store_ids=tuple(p.get("store_id", 0) for p in raw.get("pending_peers") or ()),
        leader_store_id=leader.get("store_id") or None,
    )


def parse_regions_brief(body: bytes | str, *, peers: bool = True) -> RegionsBrief:
    """Parse a ``RegionsInfo`` JSON body (``{"count": N, "regions": [...]}``) into briefs.

    With ``peers=False`` the peer list and the leader are not read (``voter_store_ids`` is
    empty, ``leader_store_id`` None): about half the work, for lists where only the down and
    pending peers matter. Raises ``pydantic.ValidationError`` (a ``ValueError``) when the body
    is not JSON or a field the briefs read has the wrong type; other fields are not looked at.
    """
    data: _BriefRegions | _BriefRegionsNoPeers = (
        _BRIEF_REGIONS.validate_json(body) if peers else _BRIEF_REGIONS_NO_PEERS.validate_json(body)
    )
    regions = tuple(_brief(raw) for raw in data.get("regions") or ())
    return RegionsBrief(count=data.get("count", len(regions)), regions=regions)
