"""Scheduler models: ``GET /schedulers`` and the evict-leader config list (pd-api.md §2).

``GET /schedulers`` is a JSON array of names (order random; ``null`` on old PDs when empty).
evict-leader-scheduler is one scheduler for all stores; its per-store list lives in
``GET /scheduler-config/evict-leader-scheduler/list``::

    {"store-id-ranges": {"5": [{"start-key": "", "end-key": ""}]}, "batch": 3}
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field, field_validator

from operator_tikv.models.common import KebabModel, PDModel

__all__ = [
    "BALANCE_HOT_REGION_SCHEDULER",
    "BALANCE_LEADER_SCHEDULER",
    "BALANCE_REGION_SCHEDULER",
    "EVICT_LEADER_SCHEDULER",
    "GRANT_LEADER_SCHEDULER",
    "EvictLeaderConfig",
    "KeyRange",
    "PausedScheduler",
]

EVICT_LEADER_SCHEDULER = "evict-leader-scheduler"
GRANT_LEADER_SCHEDULER = "grant-leader-scheduler"
BALANCE_LEADER_SCHEDULER = "balance-leader-scheduler"
BALANCE_REGION_SCHEDULER = "balance-region-scheduler"
BALANCE_HOT_REGION_SCHEDULER = "balance-hot-region-scheduler"


class KeyRange(KebabModel):
    """A key range of a leader scheduler; ``""`` on both ends is the whole key space.

    Keys are base64 up to v8.5 and hex from v26.3; the bot only compares them with ``""``.
    """

    start_key: str = ""
    end_key: str = ""

    @property
    def is_full_range(self) -> bool:
        return self.start_key == "" and self.end_key == ""


class EvictLeaderConfig(KebabModel):
    """``GET /scheduler-config/evict-leader-scheduler/list``. ``batch`` exists from v8.5."""

    store_id_ranges: dict[int, list[KeyRange]] = Field(default_factory=dict)
    batch: int | None = None

    @field_validator("store_id_ranges", mode="before")
    @classmethod
    def _null_map(cls, value: object) -> object:
        return {} if value is None else value

    @property
    def store_ids(self) -> list[int]:
        """The stores whose leaders are being evicted, sorted."""
        return sorted(self.store_id_ranges)


class PausedScheduler(PDModel):
    """An element of ``GET /schedulers?status=paused&timestamp``."""

    name: str
    paused_at: datetime | None = None
    resume_at: datetime | None = None
