"""The cluster state the actions read, reduced to what their checks and verifications use.

Wraps `operator_tikv.pd.PDApi` reads into small views (`StoreView`, `OperatorView`,
`RegionState`) so the actions and the pure checks in `preflight.py` do not depend on the
shape of PD's JSON models.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from operator_tikv.actions.base import RegionState
from operator_tikv.errors import OperatorNotFoundError, RegionNotFoundError, StoreNotFoundError
from operator_tikv.models.region import Region
from operator_tikv.models.store import StoreInfo

if TYPE_CHECKING:
    from operator_tikv.actions.ports import PDApi

#: Operator statuses PD reports for one region (pdpb.OperatorStatus names).
RUNNING = "RUNNING"
SUCCESS = "SUCCESS"
TIMEOUT = "TIMEOUT"
CANCEL = "CANCEL"
REPLACE = "REPLACE"


@dataclass(frozen=True)
class StoreView:
    """A store's identity, PD's computed state name and its leader and replica counts (from
    PD's store list: `region_count` counts every peer on the store, learners included;
    `pending_peer_count` is reported from PD v8.5 and reads 0 before)."""

    id: int
    state_name: str
    leader_count: int
    region_count: int
    last_heartbeat: datetime | None = None
    address: str = ""
    learner_count: int = 0
    pending_peer_count: int = 0

    @property
    def voter_count(self) -> int:
        """Peers on this store that may hold a leader (every peer but learners)."""
        return max(0, self.region_count - self.learner_count)

    def state_text(self, now: datetime | None) -> str:
        """ "store 5 is Disconnected (last heartbeat 47 s ago)"; the age only when `now` is
        known and the store is not Up."""
        text = f"store {self.id} is {self.state_name}"
        if self.state_name != "Up" and now is not None and self.last_heartbeat is not None:
            last = self.last_heartbeat
            if last.tzinfo is None:
                last = last.replace(tzinfo=UTC)
            current = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
            age = max(0, round((current - last).total_seconds()))
            text += f" (last heartbeat {age:,} s ago)"
        return text


@dataclass(frozen=True)
class OperatorView:
    """PD's answer for one region's operator: its status, desc and brief."""

    region_id: int
    status: str
    desc: str
    brief: str

    @property
    def running(self) -> bool:
        # PD prints the short-lived CREATED state as "5"; treat anything unfinished as running.
        return self.status not in {SUCCESS, TIMEOUT, CANCEL, REPLACE}


def region_state(region: Region) -> RegionState:
    """The action-relevant view of a PD region."""
    return RegionState(
        id=region.id,
        leader_store_id=region.leader_store_id,
        peer_store_ids=tuple(region.store_ids),
        voter_store_ids=tuple(region.voter_store_ids),
        down_store_ids=tuple(region.down_store_ids),
        pending_store_ids=tuple(region.pending_store_ids),
        start_key=region.start_key,
        end_key=region.end_key,
        version=region.epoch.version,
        conf_ver=region.epoch.conf_ver,
        approximate_size_mib=region.approximate_size,
        approximate_keys=region.approximate_keys,
    )


def store_view(store: StoreInfo) -> StoreView:
    return StoreView(
        id=store.id,
        state_name=store.state_name.value,
        leader_count=store.leader_count,
        region_count=store.region_count,
        last_heartbeat=store.last_heartbeat,
        address=store.address,
        learner_count=store.status.learner_count,
        pending_peer_count=store.status.pending_peer_count,
    )


async def read_region(pd: PDApi, region_id: int) -> RegionState | None:
    """The region now, or None when PD does not know it (404, null or the zero region)."""
    try:
        return region_state(await pd.get_region(region_id))
    except RegionNotFoundError:
        return None


async def read_stores(pd: PDApi) -> dict[int, StoreView]:
    """Every Up or Offline store (PD's default list; Tombstones are left out), by ID."""
    return {store.id: store_view(store) for store in await pd.list_stores()}


async def read_store(pd: PDApi, store_id: int) -> StoreView | None:
    try:
        return store_view(await pd.get_store(store_id))
    except StoreNotFoundError:
        return None


async def read_evicted(pd: PDApi) -> tuple[int, ...]:
    """Stores under evict-leader-scheduler, sorted (empty when it does not run)."""
    return tuple(sorted(await pd.evicted_leader_store_ids()))


async def read_operator(pd: PDApi, region_id: int) -> OperatorView | None:
    """The region's running operator or its record from the last 10 minutes, else None."""
    try:
        operator = await pd.get_operator(region_id)
    except OperatorNotFoundError:
        return None
    status = operator.status.value if operator.status is not None else RUNNING
    if status == "CREATED":
        status = RUNNING
    return OperatorView(
        region_id=operator.region_id, status=status, desc=operator.desc, brief=operator.brief
    )


#: The schedule config keys the config actions read and write.
SCHEDULE_KEYS = (
    "leader-schedule-limit",
    "region-schedule-limit",
    "replica-schedule-limit",
    "low-space-ratio",
    "high-space-ratio",
)


async def read_schedule_values(pd: PDApi) -> dict[str, float]:
    """The limits and space ratios of PD's schedule config, by PD key."""
    config = await pd.get_schedule_config()
    return {key: float(getattr(config, key.replace("-", "_"))) for key in SCHEDULE_KEYS}


async def read_max_replicas(pd: PDApi) -> int:
    return (await pd.get_replication_config()).max_replicas
