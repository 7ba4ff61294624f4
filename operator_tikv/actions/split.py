"""split: split a region in two, by default at PD's approximate middle key.

PD request: `POST /pd/api/v1/operators {"name":"split-region","region_id":R,"policy":"approximate"}`
(pd-api.md §1.1). PD builds `admin-split-region`. Verification follows the operator, then
checks that the region's epoch version grew or its key range shrank. Not reversible from the
catalogue: PD's merge checker may merge small halves back on its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

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
from operator_tikv.models.writes import PDWrite

if TYPE_CHECKING:
    from operator_tikv.actions.ports import PDApi

OPERATOR_DESC = "admin-split-region"


class SplitParams(RegionParams):
    """Which region, and how PD picks the split key."""

    policy: Annotated[
        Literal["approximate", "scan"],
        Field(
            title="split policy",
            description="approximate: from size estimates (cheap); scan: reads the region's "
            "keys to find the exact middle (costs I/O on the leader)",
        ),
    ] = "approximate"


class Split(RegionOperatorAction[SplitParams]):
    name = "split"
    operator_desc = OPERATOR_DESC
    summary = "Split a region in two at its middle key (PD's split-region operator)"
    params_model = SplitParams
    risk = Risk.MEDIUM
    reversible = False
    undo_action = None
    deadline_seconds = 120.0
    poll_interval = 1.0
    example = SplitParams(region_id=2008)

    def describe(self, p: SplitParams) -> str:
        return f"Split region {p.region_id} in two ({p.policy} policy)"

    def requests(self, p: SplitParams) -> tuple[PDWrite, ...]:
        return (PDWrite.split_region(p.region_id, p.policy),)

    def undo_sentence(self, p: SplitParams) -> str:
        return (
            "Not reversible from the catalogue; PD's merge checker may merge the two halves "
            "back if they stay small."
        )

    def undo(self, p: SplitParams, before: Snapshot) -> ActionCall | None:
        return None

    async def preflight(self, p: SplitParams, pd: PDApi, ctx: PreflightContext) -> PreflightReport:
        region = await state.read_region(pd, p.region_id)
        found = [checks.region_exists(p.region_id, region)]
        if region is None:
            return PreflightReport(action=self.name, checks=tuple(found))
        found.append(
            checks.no_running_operator(p.region_id, await state.read_operator(pd, p.region_id))
        )
        return PreflightReport(action=self.name, checks=tuple(found))

    async def expected_effect(self, p: SplitParams, pd: PDApi) -> str:
        region = await state.read_region(pd, p.region_id)
        if region is None:
            return f"nothing: region {p.region_id} does not exist"
        return (
            f"region {p.region_id} ({region.approximate_size_mib:,} MiB, "
            f"{region.approximate_keys:,} keys) would become two regions of about "
            f"{region.approximate_size_mib // 2:,} MiB each; no data moves between stores"
        )

    def reached(self, p: SplitParams, before: Snapshot) -> TargetCheck:
        def check(region: RegionState | None) -> tuple[bool, str]:
            if region is None:
                return False, f"region {p.region_id} no longer exists"
            old = before.region
            if old is None:
                return False, f"region {p.region_id} has epoch version {region.version}"
            split = region.version > old.version or (region.start_key, region.end_key) != (
                old.start_key,
                old.end_key,
            )
            if split:
                return True, (
                    f"region {p.region_id} split (epoch version {old.version} → {region.version})"
                )
            return False, f"region {p.region_id} did not split (epoch version {region.version})"

        return check


SPLIT = Split()
