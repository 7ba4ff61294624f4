"""Store models: ``GET /pd/api/v1/stores`` and ``GET /pd/api/v1/store/{id}`` (pd-api.md §3).

``StoreInfo`` mirrors PD's ``{"store": ..., "status": ...}`` shape and adds flat properties
(``id``, ``state_name``, ``capacity_bytes``, ``last_heartbeat`` ...) for the rest of the bot.
An Up store has no ``state`` key (Go omitempty: absent enum = 0 = Up).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import IntEnum, StrEnum

from pydantic import Field, field_validator

from operator_tikv.models.common import (
    ByteSize,
    GoDuration,
    NanoTimestamp,
    PDModel,
    UnixTimestamp,
)

__all__ = [
    "NodeState",
    "StoreInfo",
    "StoreLabel",
    "StoreMeta",
    "StoreState",
    "StoreStateName",
    "StoreStatus",
    "StoresInfo",
]


class StoreState(IntEnum):
    """``metapb.StoreState``: the numeric ``state`` (absent when Up). Used by the stores filter."""

    UP = 0
    OFFLINE = 1
    TOMBSTONE = 2


class NodeState(IntEnum):
    """``metapb.NodeState``: the numeric ``node_state`` (absent when Preparing)."""

    PREPARING = 0
    SERVING = 1
    REMOVING = 2
    REMOVED = 3


class StoreStateName(StrEnum):
    """PD's computed ``state_name``: Up stores become Down/Disconnected without heartbeats."""

    UP = "Up"
    OFFLINE = "Offline"
    TOMBSTONE = "Tombstone"
    DOWN = "Down"
    DISCONNECTED = "Disconnected"


class StoreLabel(PDModel):
    key: str
    value: str


class StoreMeta(PDModel):
    """The ``store`` half of StoreInfo (kvproto ``metapb.Store`` plus ``state_name``)."""

    id: int
    address: str = ""
    state: StoreState = StoreState.UP
    labels: list[StoreLabel] = Field(default_factory=list)
    version: str = ""
    peer_address: str = ""
    status_address: str = ""
    git_hash: str = ""
    start_timestamp: UnixTimestamp = None
    deploy_path: str = ""
    last_heartbeat: NanoTimestamp = None
    physically_destroyed: bool = False
    node_state: NodeState = NodeState.PREPARING
    state_name: StoreStateName

    @field_validator("labels", mode="before")
    @classmethod
    def _null_labels(cls, value: object) -> object:
        return [] if value is None else value


class StoreStatus(PDModel):
    """The ``status`` half of StoreInfo. Sizes are bytes, ``*_size`` counts are MiB."""

    capacity: ByteSize = 0
    available: ByteSize = 0
    used_size: ByteSize = 0
    leader_count: int = 0
    leader_weight: float = 1.0
    leader_score: float = 0.0
    leader_size: int = 0
    region_count: int = 0
    region_weight: float = 1.0
    region_score: float = 0.0
    region_size: int = 0
    learner_count: int = 0
    witness_count: int = 0
    pending_peer_count: int = 0
    slow_score: float = 0.0
    sending_snap_count: int = 0
    receiving_snap_count: int = 0
    is_busy: bool = False
    start_ts: datetime | None = None
    last_heartbeat_ts: datetime | None = None
    uptime: GoDuration | None = None


class StoreInfo(PDModel):
    """One store as PD reports it, with flat accessors for the fields the bot uses."""

    store: StoreMeta
    status: StoreStatus = Field(default_factory=StoreStatus)

    @property
    def id(self) -> int:
        return self.store.id

    @property
    def address(self) -> str:
        return self.store.address

    @property
    def status_address(self) -> str:
        return self.store.status_address

    @property
    def state_name(self) -> StoreStateName:
        return self.store.state_name

    @property
    def state(self) -> StoreState:
        return self.store.state

    @property
    def labels(self) -> dict[str, str]:
        return {label.key: label.value for label in self.store.labels}

    @property
    def version(self) -> str:
        return self.store.version

    @property
    def capacity_bytes(self) -> int:
        return self.status.capacity

    @property
    def available_bytes(self) -> int:
        return self.status.available

    @property
    def used_bytes(self) -> int:
        return self.status.used_size

    @property
    def leader_count(self) -> int:
        return self.status.leader_count

    @property
    def region_count(self) -> int:
        return self.status.region_count

    @property
    def leader_score(self) -> float:
        return self.status.leader_score

    @property
    def region_score(self) -> float:
        return self.status.region_score

    @property
    def leader_weight(self) -> float:
        return self.status.leader_weight

    @property
    def region_weight(self) -> float:
        return self.status.region_weight

    @property
    def last_heartbeat(self) -> datetime | None:
        """From ``store.last_heartbeat`` (unix ns), else ``status.last_heartbeat_ts``."""
        return self.store.last_heartbeat or self.status.last_heartbeat_ts

    @property
    def uptime(self) -> timedelta | None:
        return self.status.uptime

    @property
    def is_up(self) -> bool:
        """True only for ``state_name == "Up"`` (heartbeating and not being removed)."""
        return self.store.state_name is StoreStateName.UP

    @property
    def used_ratio(self) -> float | None:
        """Share of capacity in use (1 - available/capacity), or None without a capacity."""
        if self.status.capacity <= 0:
            return None
        return 1.0 - self.status.available / self.status.capacity


class StoresInfo(PDModel):
    """``GET /stores``: ``{"count": N, "stores": [...]}``."""

    count: int = 0
    stores: list[StoreInfo] = Field(default_factory=list)

    @field_validator("stores", mode="before")
    @classmethod
    def _null_stores(cls, value: object) -> object:
        return [] if value is None else value
