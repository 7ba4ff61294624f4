"""The part of PD's client the actions use, as a Protocol.

`operator_tikv.pd.PDClient` satisfies it. Typing the actions against this Protocol keeps
`operator_tikv.actions` (and so `engine`, which imports the registry) free of httpx, as the
import contract "the engine reaches PD only through operator_tikv" requires.
"""

from __future__ import annotations

from typing import Protocol

from operator_tikv.models.config import ReplicationConfig, ScheduleConfig
from operator_tikv.models.operator import OperatorInfo
from operator_tikv.models.region import Region
from operator_tikv.models.store import StoreInfo
from operator_tikv.models.writes import PDWrite


class PDApi(Protocol):
    """Reads the actions need, and the single write entry point."""

    async def get_region(self, region_id: int) -> Region:
        """Raises RegionNotFoundError for an unknown region."""
        ...

    async def list_stores(self) -> list[StoreInfo]: ...

    async def get_store(self, store_id: int) -> StoreInfo:
        """Raises StoreNotFoundError for an unknown store."""
        ...

    async def get_operator(self, region_id: int) -> OperatorInfo:
        """Raises OperatorNotFoundError when no operator runs or ended in the last 10 min."""
        ...

    async def evicted_leader_store_ids(self) -> list[int]: ...

    async def get_schedule_config(self) -> ScheduleConfig: ...

    async def get_replication_config(self) -> ReplicationConfig: ...

    async def execute(self, write: PDWrite) -> str:
        """Send one write exactly once; PD's message."""
        ...
