"""`ReadOnce`: one execution's (or one proposal's) view of PD in which each read is sent once.

An action's preflight, dry run and before-snapshot read overlapping state (drain reads the
store list and the evict-leader list in both). Wrapping the client in a `ReadOnce` for the
duration of those steps sends each distinct read to PD once and answers the repeats from that
answer (or re-raises PD's error for it), so every check and the snapshot see the same fresh
cluster state, read moments before the write.

A `ReadOnce` is made per execution and dropped after it: it is never shared between runs, and
the verification loop that follows a write reads PD directly. A write sent through it goes
straight to PD and forgets every remembered answer, so nothing read before a write is served
after it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import TYPE_CHECKING, Any, TypeVar

from operator_tikv.errors import PDError
from operator_tikv.models.config import ReplicationConfig, ScheduleConfig
from operator_tikv.models.operator import OperatorInfo
from operator_tikv.models.region import Region
from operator_tikv.models.store import StoreInfo
from operator_tikv.models.writes import PDWrite

if TYPE_CHECKING:
    from operator_tikv.actions.ports import PDApi

T = TypeVar("T")


class _Raised:
    """PD's error for one read, remembered like an answer."""

    __slots__ = ("error",)

    def __init__(self, error: PDError) -> None:
        self.error = error


class ReadOnce:
    """A `PDApi` over `pd` that remembers each read's answer; see the module docstring."""

    def __init__(self, pd: PDApi) -> None:
        self._pd = pd
        self._answers: dict[tuple[Hashable, ...], Any] = {}

    @property
    def reads_sent(self) -> int:
        """How many distinct reads went to PD since the last write (for tests and logs)."""
        return len(self._answers)

    async def _once(self, key: tuple[Hashable, ...], read: Callable[[], Awaitable[T]]) -> T:
        if key in self._answers:
            answer = self._answers[key]
            if isinstance(answer, _Raised):
                raise answer.error
            found: T = answer
            return found
        try:
            value = await read()
        except PDError as exc:
            self._answers[key] = _Raised(exc)
            raise
        self._answers[key] = value
        return value

    async def get_region(self, region_id: int) -> Region:
        return await self._once(("region", region_id), lambda: self._pd.get_region(region_id))

    async def list_stores(self) -> list[StoreInfo]:
        return list(await self._once(("stores",), self._pd.list_stores))

    async def get_store(self, store_id: int) -> StoreInfo:
        return await self._once(("store", store_id), lambda: self._pd.get_store(store_id))

    async def get_operator(self, region_id: int) -> OperatorInfo:
        return await self._once(("operator", region_id), lambda: self._pd.get_operator(region_id))

    async def evicted_leader_store_ids(self) -> list[int]:
        return list(await self._once(("evicted",), self._pd.evicted_leader_store_ids))

    async def get_schedule_config(self) -> ScheduleConfig:
        return await self._once(("schedule",), self._pd.get_schedule_config)

    async def get_replication_config(self) -> ReplicationConfig:
        return await self._once(("replication",), self._pd.get_replication_config)

    async def execute(self, write: PDWrite) -> str:
        """Send the write to PD (exactly once, as `PDApi.execute`); forget every answer."""
        self._answers.clear()
        return await self._pd.execute(write)


__all__ = ["ReadOnce"]
