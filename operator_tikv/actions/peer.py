"""transfer-peer: move one replica of a region from one store to another.

PD request: `POST /pd/api/v1/operators {"name":"transfer-peer","region_id":R,
"from_store_id":F,"to_store_id":T}` (pd-api.md §1.1, §8(b)). PD builds `admin-move-peer`: it
adds a learner on the target, promotes it, then removes the source peer. High risk: it copies
the region's data and briefly changes the region's membership.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Self

from pydantic import Field, model_validator

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

OPERATOR_DESC = "admin-move-peer"


class TransferPeerParams(RegionParams):
    """Which region, the store whose peer moves, and the store that receives it."""

    from_store_id: Annotated[
        StoreId, Field(title="source store ID", description="store whose peer of the region moves")
    ]
    to_store_id: Annotated[
        StoreId,
        Field(title="target store ID", description="Up store without a peer of the region"),
    ]

    @model_validator(mode="after")
    def _different_stores(self) -> Self:
        if self.from_store_id == self.to_store_id:
            raise ValueError(
                f"source and target store are both {self.to_store_id}; pick two different stores"
            )
        return self


class TransferPeer(RegionOperatorAction[TransferPeerParams]):
    name = "transfer-peer"
    operator_desc = OPERATOR_DESC
    summary = "Move one replica of a region from one store to another (copies the region's data)"
    params_model = TransferPeerParams
    risk = Risk.HIGH
    reversible = True
    undo_action = "transfer-peer"
    deadline_seconds = 900.0
    poll_interval = 5.0
    example = TransferPeerParams(region_id=2008, from_store_id=5, to_store_id=6)

    def describe(self, p: TransferPeerParams) -> str:
        return (
            f"Move the peer of region {p.region_id} from store {p.from_store_id} to store "
            f"{p.to_store_id}"
        )

    def requests(self, p: TransferPeerParams) -> tuple[PDWrite, ...]:
        return (PDWrite.transfer_peer(p.region_id, p.from_store_id, p.to_store_id),)

    def undo_sentence(self, p: TransferPeerParams) -> str:
        return (
            f"Move the peer of region {p.region_id} back from store {p.to_store_id} to store "
            f"{p.from_store_id} (another transfer-peer, which copies the data again)."
        )

    def undo(self, p: TransferPeerParams, before: Snapshot) -> ActionCall | None:
        return self.call(
            TransferPeerParams(
                region_id=p.region_id, from_store_id=p.to_store_id, to_store_id=p.from_store_id
            )
        )

    async def preflight(
        self, p: TransferPeerParams, pd: PDApi, ctx: PreflightContext
    ) -> PreflightReport:
        region = await state.read_region(pd, p.region_id)
        found = [checks.region_exists(p.region_id, region)]
        if region is None:
            return PreflightReport(action=self.name, checks=tuple(found))
        stores = await state.read_stores(pd)
        found.append(checks.source_holds_peer(region, p.from_store_id))
        found.append(checks.store_exists(p.to_store_id, stores, role="target"))
        if p.to_store_id in stores:
            found.append(checks.store_up(stores[p.to_store_id], self.name, ctx, role="target"))
        found.append(checks.target_has_no_peer(region, p.to_store_id))
        found.append(checks.quorum_safe(region, p.from_store_id))
        operator = await state.read_operator(pd, p.region_id)
        found.append(checks.no_running_operator(p.region_id, operator))
        return PreflightReport(action=self.name, checks=tuple(found))

    async def expected_effect(self, p: TransferPeerParams, pd: PDApi) -> str:
        region = await state.read_region(pd, p.region_id)
        if region is None:
            return f"nothing: region {p.region_id} does not exist"
        moves_leader = region.leader_store_id == p.from_store_id
        leader = (
            f"; the leader is on store {p.from_store_id}, so PD moves it to another voter first"
            if moves_leader
            else ""
        )
        return (
            f"about {region.approximate_size_mib:,} MiB ({region.approximate_keys:,} keys) of "
            f"region {p.region_id} would be copied to store {p.to_store_id}, then its peer on "
            f"store {p.from_store_id} removed{leader}"
        )

    def reached(self, p: TransferPeerParams, before: Snapshot) -> TargetCheck:
        def check(region: RegionState | None) -> tuple[bool, str]:
            if region is None:
                return False, f"region {p.region_id} no longer exists"
            peers = region.peer_store_ids
            where = ", ".join(str(s) for s in peers)
            done = p.to_store_id in peers and p.from_store_id not in peers
            return done, f"region {p.region_id} has peers on stores {where}"

        return check


TRANSFER_PEER = TransferPeer()
