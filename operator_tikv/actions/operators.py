"""Verification shared by the operator-based actions (transfer-leader, transfer-peer, split).

PD reports one region's operator as RUNNING, SUCCESS, TIMEOUT, CANCEL or REPLACE (pd-api.md
§1.3). A SUCCESS only means PD saw the steps finish, so the region is re-read and the action's
own target check decides; a record older than 10 minutes disappears, so "no operator" falls
back to the region's state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from operator_tikv.actions import state
from operator_tikv.actions.base import RegionState, Verification

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
