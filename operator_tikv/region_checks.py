"""The unhealthy-region categories the invariants watch, and what an observation knows of each.

A `RegionCheck` carries PD's count for one category (from PD's own `pd_regions_status` gauge,
or from the length of the list when the counts could not be read) and, when a list was read,
a summary of it: a few example ids, the stores that hold the down or pending peers, and the
regions that lost a majority of their voters when that was checked. Lists are read only when
they change what the bot says (`operator_tikv.region_watch`), so the summary may be older
than the count: `listed_count` and `listed_age` say how old.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from operator_tikv.models.region import Region, RegionBrief

__all__ = ["RegionCheck", "RegionProblem"]


class RegionProblem(StrEnum):
    """The unhealthy-region lists the invariants watch (PD `/regions/check/{state}`)."""

    DOWN_PEER = "down-peer"
    PENDING_PEER = "pending-peer"
    MISS_PEER = "miss-peer"
    EXTRA_PEER = "extra-peer"

    @property
    def metric_type(self) -> str:
        """The `type` label of PD's `pd_regions_status` gauge for this category."""
        return f"{self.value}-region-count"


class RegionCheck(BaseModel):
    """One unhealthy-region category, reduced to what an SRE reads first."""

    model_config = ConfigDict(frozen=True)

    problem: RegionProblem
    count: int = Field(ge=0, description="regions in the category (PD's count)")
    region_ids: tuple[int, ...] = Field(
        default=(), description="example region ids, ascending (the smallest listed)"
    )
    peer_stores: Mapping[int, int] = Field(
        default_factory=dict,
        description="store id -> regions whose down/pending peer is on that store (as listed)",
    )
    quorum_lost: tuple[int, ...] = Field(
        default=(), description="example regions whose down voters are at least half"
    )
    quorum_lost_count: int = Field(default=0, ge=0, description="all such regions, as listed")
    listed_count: int | None = Field(
        default=None, description="regions in the list the examples come from; None: no list"
    )
    listed_age: float = Field(default=0.0, ge=0, description="seconds since that list was read")
    note: str = Field(default="", description="what the bot could or need not check, in words")

    @property
    def listed(self) -> bool:
        return self.listed_count is not None

    @classmethod
    def from_regions(cls, problem: RegionProblem, regions: Sequence[Region]) -> RegionCheck:
        """The check of full `Region` models (tests and tools; the monitor reads summaries)."""
        return cls.from_briefs(problem, [RegionBrief.of(region) for region in regions])

    @classmethod
    def from_briefs(cls, problem: RegionProblem, regions: Sequence[RegionBrief]) -> RegionCheck:
        """The check of a whole list held in memory (every id kept as an example)."""
        peer_stores: dict[int, int] = {}
        quorum_lost: list[int] = []
        for region in regions:
            if problem is RegionProblem.DOWN_PEER:
                stores = set(region.down_store_ids)
                if region.quorum_lost:
                    quorum_lost.append(region.id)
            elif problem is RegionProblem.PENDING_PEER:
                stores = set(region.pending_store_ids)
            else:
                continue
            for store_id in stores:
                peer_stores[store_id] = peer_stores.get(store_id, 0) + 1
        ids = tuple(sorted({r.id for r in regions}))
        return cls(
            problem=problem,
            count=len(ids),
            region_ids=ids,
            peer_stores=peer_stores,
            quorum_lost=tuple(sorted(quorum_lost)),
            quorum_lost_count=len(quorum_lost),
            listed_count=len(ids),
        )
