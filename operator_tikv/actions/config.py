"""limit and space-ratio: change one value of PD's schedule configuration.

PD request: `POST /pd/api/v1/config/schedule` with a partial object such as
`{"leader-schedule-limit": 8}` or `{"low-space-ratio": 0.85}` (pd-api.md §5.2). PD ignores
misspelled keys silently, so verification re-reads `/config/schedule`. The undo restores the
value read right before execution (kept in the before snapshot).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import Field, model_validator

from operator_tikv.actions import preflight as checks
from operator_tikv.actions import state
from operator_tikv.actions.base import (
    Action,
    ActionCall,
    ActionParams,
    Check,
    PreflightContext,
    PreflightReport,
    Risk,
    Snapshot,
    Verification,
)
from operator_tikv.models.writes import PDWrite

if TYPE_CHECKING:
    from operator_tikv.actions.ports import PDApi

LimitKind = Literal["leader", "region", "replica"]
RatioKind = Literal["low", "high"]

#: Sane upper bounds per limit (PD's defaults: leader 4, region 2048, replica 64).
LIMIT_MAX: Mapping[str, int] = {"leader": 1024, "region": 4096, "replica": 1024}
LIMIT_MEANING: Mapping[str, str] = {
    "leader": "leader transfers PD schedules at once",
    "region": "region (peer) moves PD schedules at once",
    "replica": "replica repairs PD schedules at once",
}


def limit_key(kind: str) -> str:
    return f"{kind}-schedule-limit"


def ratio_key(which: str) -> str:
    return f"{which}-space-ratio"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


class LimitParams(ActionParams):
    """Which schedule limit, and its new value."""

    metavars: ClassVar[Mapping[str, str]] = {"value": "n"}

    kind: Annotated[
        LimitKind,
        Field(title="limit", description="leader, region or replica (…-schedule-limit in PD)"),
    ]
    value: Annotated[
        int,
        Field(
            strict=True,
            ge=0,
            le=max(LIMIT_MAX.values()),
            title="limit value",
            description="operators at once; 0 turns that kind of scheduling off. At most 1024 "
            "for leader and replica, 4096 for region",
        ),
    ]

    @model_validator(mode="before")
    @classmethod
    def _in_range(cls, data: Any) -> Any:
        """Say the per-kind range (and what 0 means) before the generic bound errors."""
        if isinstance(data, Mapping):
            kind, value = data.get("kind"), data.get("value")
            top = LIMIT_MAX.get(kind) if isinstance(kind, str) else None
            is_int = isinstance(value, int) and not isinstance(value, bool)
            if top is not None and isinstance(value, int) and is_int and not 0 <= value <= top:
                raise ValueError(
                    f"{kind} limit must be between 0 and {top} (0 turns {kind} scheduling "
                    f"off), got {value}"
                )
        return data


class SpaceRatioParams(ActionParams):
    """Which space ratio, and its new value."""

    which: Annotated[
        RatioKind,
        Field(title="which ratio", description="low or high (…-space-ratio in PD)"),
    ]
    ratio: Annotated[
        float,
        Field(
            gt=0,
            lt=1,
            allow_inf_nan=False,
            title="space ratio",
            description="fraction of disk used, strictly between 0 and 1; low must stay above high",
        ),
    ]


def _value_check(key: str, current: float | None, wanted: float) -> Check:
    if current is None:
        return checks.failed(
            "config-readable", f"PD's schedule config has no {key}", f"PD did not report {key}"
        )
    if math.isclose(current, wanted):
        return checks.failed(
            "changes-value",
            f"{key} is {_number(current)}",
            f"{key} is already {_number(wanted)}; nothing to change",
        )
    return checks.passed("changes-value", f"{key} is {_number(current)}")


def _config_verdict(key: str, wanted: float, before: Snapshot, now: float | None) -> Verification:
    was = before.config.get(key)
    previously = f" (was {_number(was)})" if was is not None else ""
    if now is not None and math.isclose(now, wanted):
        return Verification.succeeded(f"{key} is now {_number(wanted)}{previously}")
    seen = _number(now) if now is not None else "missing"
    return Verification.failed(
        f"PD accepted the change but {key} reads {seen}, not {_number(wanted)}"
    )


class Limit(Action[LimitParams]):
    name = "limit"
    summary = "Change a schedule limit (how many leader/region/replica operators run at once)"
    params_model = LimitParams
    risk = Risk.MEDIUM
    reversible = True
    undo_action = "limit"
    deadline_seconds = 30.0
    poll_interval = 1.0
    example = LimitParams(kind="leader", value=8)

    def describe(self, p: LimitParams) -> str:
        off = f" (turns {p.kind} scheduling off)" if p.value == 0 else ""
        return f"Set {limit_key(p.kind)} to {p.value}{off}: {LIMIT_MEANING[p.kind]}"

    def requests(self, p: LimitParams) -> tuple[PDWrite, ...]:
        return (PDWrite.set_schedule_config({limit_key(p.kind): p.value}),)

    def undo_sentence(self, p: LimitParams) -> str:
        return f"Restore {limit_key(p.kind)} to its previous value (read right before execution)."

    def undo(self, p: LimitParams, before: Snapshot) -> ActionCall | None:
        previous = before.config.get(limit_key(p.kind))
        if previous is None:
            return None
        return self.call(LimitParams(kind=p.kind, value=int(previous)))

    async def preflight(self, p: LimitParams, pd: PDApi, ctx: PreflightContext) -> PreflightReport:
        key = limit_key(p.kind)
        values = await state.read_schedule_values(pd)
        top = LIMIT_MAX[p.kind]
        note = " (turns scheduling of this kind off)" if p.value == 0 else ""
        in_range = checks.passed("value-in-range", f"{p.value} is within 0..{top}{note}")
        return PreflightReport(
            action=self.name, checks=(in_range, _value_check(key, values.get(key), p.value))
        )

    async def expected_effect(self, p: LimitParams, pd: PDApi) -> str:
        key = limit_key(p.kind)
        current = (await state.read_schedule_values(pd)).get(key)
        was = _number(current) if current is not None else "unknown"
        off = f"; 0 stops {p.kind} scheduling" if p.value == 0 else ""
        return f"{key} would change from {was} to {p.value}{off}"

    async def snapshot(self, p: LimitParams, pd: PDApi) -> Snapshot:
        values = await state.read_schedule_values(pd)
        key = limit_key(p.kind)
        return Snapshot(config={key: values[key]} if key in values else {})

    async def verify(self, p: LimitParams, pd: PDApi, before: Snapshot) -> Verification:
        key = limit_key(p.kind)
        now = (await state.read_schedule_values(pd)).get(key)
        return _config_verdict(key, p.value, before, now)

    async def reconcile(self, p: LimitParams, pd: PDApi, before: Snapshot) -> Verification | None:
        verdict = await self.verify(p, pd, before)
        return verdict if verdict.outcome == "succeeded" else None


class SpaceRatio(Action[SpaceRatioParams]):
    name = "space-ratio"
    summary = "Change PD's low- or high-space-ratio (when PD treats a store as short of space)"
    params_model = SpaceRatioParams
    risk = Risk.MEDIUM
    reversible = True
    undo_action = "space-ratio"
    deadline_seconds = 30.0
    poll_interval = 1.0
    example = SpaceRatioParams(which="low", ratio=0.85)

    def describe(self, p: SpaceRatioParams) -> str:
        meaning = (
            "above this used fraction PD avoids placing data on a store"
            if p.which == "low"
            else "below this used fraction PD balances by data size alone"
        )
        return f"Set {ratio_key(p.which)} to {p.ratio:g}: {meaning}"

    def requests(self, p: SpaceRatioParams) -> tuple[PDWrite, ...]:
        return (PDWrite.set_schedule_config({ratio_key(p.which): p.ratio}),)

    def undo_sentence(self, p: SpaceRatioParams) -> str:
        return f"Restore {ratio_key(p.which)} to its previous value (read right before execution)."

    def undo(self, p: SpaceRatioParams, before: Snapshot) -> ActionCall | None:
        previous = before.config.get(ratio_key(p.which))
        if previous is None:
            return None
        return self.call(SpaceRatioParams(which=p.which, ratio=previous))

    async def preflight(
        self, p: SpaceRatioParams, pd: PDApi, ctx: PreflightContext
    ) -> PreflightReport:
        values = await state.read_schedule_values(pd)
        key = ratio_key(p.which)
        other_which = "high" if p.which == "low" else "low"
        other_key = ratio_key(other_which)
        other = values.get(other_key)
        found = [
            checks.passed("value-in-range", f"{p.ratio:g} is strictly between 0 and 1"),
            _order_check(p, other_key, other),
            _value_check(key, values.get(key), p.ratio),
        ]
        return PreflightReport(action=self.name, checks=tuple(found))

    async def expected_effect(self, p: SpaceRatioParams, pd: PDApi) -> str:
        key = ratio_key(p.which)
        current = (await state.read_schedule_values(pd)).get(key)
        was = _number(current) if current is not None else "unknown"
        return f"{key} would change from {was} to {p.ratio:g}"

    async def snapshot(self, p: SpaceRatioParams, pd: PDApi) -> Snapshot:
        values = await state.read_schedule_values(pd)
        keys = (ratio_key("low"), ratio_key("high"))
        return Snapshot(config={k: values[k] for k in keys if k in values})

    async def verify(self, p: SpaceRatioParams, pd: PDApi, before: Snapshot) -> Verification:
        key = ratio_key(p.which)
        now = (await state.read_schedule_values(pd)).get(key)
        return _config_verdict(key, p.ratio, before, now)

    async def reconcile(
        self, p: SpaceRatioParams, pd: PDApi, before: Snapshot
    ) -> Verification | None:
        verdict = await self.verify(p, pd, before)
        return verdict if verdict.outcome == "succeeded" else None


def _order_check(p: SpaceRatioParams, other_key: str, other: float | None) -> Check:
    """PD requires low-space-ratio > high-space-ratio."""
    if other is None:
        return checks.failed(
            "ratio-order", f"PD did not report {other_key}", f"PD did not report {other_key}"
        )
    low, high = (p.ratio, other) if p.which == "low" else (other, p.ratio)
    observed = f"{other_key} is {_number(other)}"
    if not low > high:
        return checks.failed(
            "ratio-order",
            observed,
            f"low-space-ratio must stay above high-space-ratio, but this would make them "
            f"{low:g} and {high:g} ({other_key} is {_number(other)}); PD would refuse it",
        )
    return checks.passed("ratio-order", f"{observed}; low stays above high")


LIMIT = Limit()
SPACE_RATIO = SpaceRatio()
