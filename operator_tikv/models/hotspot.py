"""Hotspot models: ``GET /hotspot/regions/write`` and ``/read`` (pd-api.md §4.5).

``{"as_peer": {<store id>: HotPeersStat}, "as_leader": {...}}``; rates are per second.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field, field_validator

from operator_tikv.models.common import PDModel

__all__ = ["HotPeerStat", "HotPeersStat", "HotspotInfo"]


def _none_to_list(value: object) -> object:
    return [] if value is None else value


class HotPeerStat(PDModel):
    """One hot peer (``HotPeerStatShow``)."""

    store_id: int
    region_id: int
    stores: list[int] = Field(default_factory=list)
    is_leader: bool = False
    is_learner: bool = False
    hot_degree: int = 0
    flow_bytes: float = 0.0
    flow_keys: float = 0.0
    flow_query: float = 0.0
    anti_count: int = 0
    last_update_time: datetime | None = None

    @field_validator("stores", mode="before")
    @classmethod
    def _null_stores(cls, value: object) -> object:
        return _none_to_list(value)


class HotPeersStat(PDModel):
    """One store's hot peers and the store's own rates."""

    store_bytes: float = 0.0
    store_keys: float = 0.0
    store_query: float = 0.0
    total_flow_bytes: float = 0.0
    total_flow_keys: float = 0.0
    total_flow_query: float = 0.0
    regions_count: int = 0
    statistics: list[HotPeerStat] = Field(default_factory=list)

    @field_validator("statistics", mode="before")
    @classmethod
    def _null_statistics(cls, value: object) -> object:
        return _none_to_list(value)


class HotspotInfo(PDModel):
    """``StoreHotPeersInfos``: hot peers per store id, as any peer and as leader."""

    as_peer: dict[int, HotPeersStat] = Field(default_factory=dict)
    as_leader: dict[int, HotPeersStat] = Field(default_factory=dict)

    @field_validator("as_peer", "as_leader", mode="before")
    @classmethod
    def _null_maps(cls, value: object) -> object:
        return {} if value is None else value

    def hottest(self, limit: int = 10) -> list[HotPeerStat]:
        """The hottest leader peers across stores by ``flow_bytes``, highest first."""
        peers = [peer for stat in self.as_leader.values() for peer in stat.statistics]
        return sorted(peers, key=lambda peer: peer.flow_bytes, reverse=True)[:limit]
