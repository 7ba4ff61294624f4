"""What the operator-based actions (transfer-leader, transfer-peer, split) share: each asks PD
for one admin operator on one region (`RegionOperatorAction`), snapshots the region, and is
verified by following that operator.

PD reports one region's operator as RUNNING, SUCCESS, TIMEOUT, CANCEL or REPLACE (pd-api.md
§1.3). A SUCCESS only means PD saw the steps finish, so the region is re-read and the action's
own target check decides; a record older than 10 minutes disappears, so "no operator" falls
back to the region's state.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar, TypeVar

from operator_tikv.actions import state
from operator_tikv.actions.base import (
    Action,
    ActionParams,
    RegionState,
    Snapshot,
    Verification,
)
from operator_tikv.actions.params import RegionId

if TYPE_CHECKING:
    from operator_tikv.actions.ports import PDApi

#: Given the region re-read now (None if gone): (target state reached?, what was observed).
TargetCheck = Callable[[RegionState | None], tuple[bool, str]]


def judge(
    region_id: int,
    desc: str,
    operator: state.OperatorView | None,
    region: RegionState | None,
    reached: TargetCheck,
) -> Verification | None:
    """The verdict from one look at the operator and the region; None when PD shows neither
    our operator nor the target state (the write left no trace)."""
    done, observed = reached(region)
    if operator is None or operator.desc != desc:
        if done:
            return Verification.succeeded(f"{observed}, as requested")
        if operator is not None and operator.running:
            return Verification.failed(
                f"{operator.desc} ({operator.brief}) now runs on region {region_id} instead "
                f"of {desc}, and {observed}"
            )
        return None
    if operator.running:
        return Verification.pending(f"{desc} running on region {region_id} ({operator.brief})")
    if operator.status == state.SUCCESS:
        if done:
            return Verification.succeeded(f"{desc} finished: {observed}")
        return Verification.failed(f"PD reports {desc} finished, but {observed}")
    if operator.status == state.TIMEOUT:
        return Verification.timed_out(
            f"PD timed out {desc} on region {region_id} ({operator.brief}); {observed}"
        )
    if operator.status == state.CANCEL:
        return Verification.failed(
            f"PD cancelled {desc} on region {region_id} ({operator.brief}); {observed}"
        )
    return Verification.failed(
        f"PD replaced {desc} on region {region_id} by another operator; {observed}"
    )


async def follow_operator(
    pd: PDApi, region_id: int, desc: str, reached: TargetCheck
) -> Verification:
    """One verification poll of an operator this action created."""
    operator = await state.read_operator(pd, region_id)
    region = await state.read_region(pd, region_id)
    verdict = judge(region_id, desc, operator, region, reached)
    if verdict is not None:
        return verdict
    _done, observed = reached(region)
    return Verification.failed(f"PD shows no {desc} on region {region_id} and {observed}")


async def reconcile_operator(
    pd: PDApi, region_id: int, desc: str, reached: TargetCheck
) -> Verification | None:
    """After a crash: the operator's state if PD has it, success if the region is already in
    the target state, else None (no sign the write was applied). Sends nothing."""
    operator = await state.read_operator(pd, region_id)
    region = await state.read_region(pd, region_id)
    return judge(region_id, desc, operator, region, reached)


class RegionParams(ActionParams):
    """Parameters of an action on one region: `region_id` first, then the action's own."""

    region_id: RegionId


RP = TypeVar("RP", bound=RegionParams)


class RegionOperatorAction(Action[RP]):
    """An action whose request makes PD run one admin operator (`operator_desc`) on the
    region `p.region_id`. Its snapshot is that region; verification follows the operator and
    reconciliation reads it after a crash, both judged by the action's `reached` check on the
    region re-read (`judge`)."""

    operator_desc: ClassVar[str]

    @abstractmethod
    def reached(self, p: RP, before: Snapshot) -> TargetCheck:
        """The target-state check for this run (`before` is the snapshot taken before it)."""

    async def snapshot(self, p: RP, pd: PDApi) -> Snapshot:
        return Snapshot(region=await state.read_region(pd, p.region_id))

    async def verify(self, p: RP, pd: PDApi, before: Snapshot) -> Verification:
        return await follow_operator(pd, p.region_id, self.operator_desc, self.reached(p, before))

    async def reconcile(self, p: RP, pd: PDApi, before: Snapshot) -> Verification | None:
        return await reconcile_operator(
            pd, p.region_id, self.operator_desc, self.reached(p, before)
        )
