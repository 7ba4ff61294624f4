"""transfer-leader: move a region's leader to another store holding a healthy voter.

PD request: `POST /pd/api/v1/operators {"name":"transfer-leader","region_id":R,"to_store_id":S}`
(pd-api.md §1.1 and §8(a): the field is `to_store_id`). PD builds `admin-transfer-leader`;
verification follows that operator and then re-reads the region's leader.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from pydantic import Field

from operator_tikv.actions import preflight as checks
from operator_tikv.actions import state
from operator_tikv.actions.base import (
    ActionCall,
    PreflightContext,
    PreflightReport,
    RegionState,
    Risk,
    Snapshot,
)
from operator_tikv.actions.operators import RegionOperatorAction, RegionParams, TargetCheck
from operator_tikv.actions.params import StoreId
from operator_tikv.models.writes import PDWrite

if TYPE_CHECKING:
    from operator_tikv.actions.ports import PDApi

OPERATOR_DESC = "admin-transfer-leader"


class TransferLeaderParams(RegionParams):
    """Which region, and the store that should hold its leader."""

    to_store_id: Annotated[
        StoreId,
        Field(
            title="target store ID", description="store that holds a healthy voter of the region"
        ),
    ]


class TransferLeader(RegionOperatorAction[TransferLeaderParams]):
    name = "transfer-leader"
    operator_desc = OPERATOR_DESC
    summary = "Move a region's leader to another store that holds a healthy voter of it"
    params_model = TransferLeaderParams
    risk = Risk.MEDIUM
    reversible = True
    undo_action = "transfer-leader"
    deadline_seconds = 120.0
    poll_interval = 1.0
    example = TransferLeaderParams(region_id=2008, to_store_id=1)

    def describe(self, p: TransferLeaderParams) -> str:
        return f"Transfer the leader of region {p.region_id} to store {p.to_store_id}"

    def requests(self, p: TransferLeaderParams) -> tuple[PDWrite, ...]:
        return (PDWrite.transfer_leader(p.region_id, p.to_store_id),)

    def undo_sentence(self, p: TransferLeaderParams) -> str:
        return (
            f"Transfer the leader of region {p.region_id} back to the store that held it "
            "before (recorded right before execution)."
        )

    def undo(self, p: TransferLeaderParams, before: Snapshot) -> ActionCall | None:
        previous = before.region.leader_store_id if before.region else None
        if previous is None or previous == p.to_store_id:
            return None
        return self.call(TransferLeaderParams(region_id=p.region_id, to_store_id=previous))

    async def preflight(
        self, p: TransferLeaderParams, pd: PDApi, ctx: PreflightContext
    ) -> PreflightReport:
        region = await state.read_region(pd, p.region_id)
        found = [checks.region_exists(p.region_id, region)]
        if region is None:
            return PreflightReport(action=self.name, checks=tuple(found))
        stores = await state.read_stores(pd)
        found.append(checks.store_exists(p.to_store_id, stores, role="target"))
        if p.to_store_id in stores:
            found.append(checks.store_up(stores[p.to_store_id], self.name, ctx, role="target"))
        found.append(
            checks.not_evicted(p.to_store_id, await state.read_evicted(pd), self.name, "target")
        )
        found.append(checks.not_leader_already(region, p.to_store_id))
        found.append(checks.holds_healthy_voter(region, p.to_store_id))
        found.append(
            checks.no_running_operator(p.region_id, await state.read_operator(pd, p.region_id))
        )
        return PreflightReport(action=self.name, checks=tuple(found))

    async def expected_effect(self, p: TransferLeaderParams, pd: PDApi) -> str:
        region = await state.read_region(pd, p.region_id)
        if region is None:
            return f"nothing: region {p.region_id} does not exist"
        source = (
            f"from store {region.leader_store_id}"
            if region.leader_store_id is not None
            else "(it has no leader now)"
        )
        return (
            f"the leader of region {p.region_id} ({region.approximate_size_mib:,} MiB) would move "
            f"{source} to store {p.to_store_id}; no data is copied"
        )

    def reached(self, p: TransferLeaderParams, before: Snapshot) -> TargetCheck:
        def check(region: RegionState | None) -> tuple[bool, str]:
            if region is None:
                return False, f"region {p.region_id} no longer exists"
            where = region.leader_store_id
            return where == p.to_store_id, f"the leader of region {p.region_id} is on store {where}"

        return check


TRANSFER_LEADER = TransferLeader()
