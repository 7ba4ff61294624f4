"""A run between its gate and its request: the gate's saved transition and record (`Opened`) and
what the reads beside the gate found (`_Prepared`). Re-exported by `engine.executor`."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from engine.claims import Claim
from engine.model import Execution, JsonDict, ProgressNote
from engine.transitions import TransitionResult
from engine.verifying import Run
from operator_tikv.actions import PreflightReport


@dataclass(frozen=True, slots=True)
class _Prepared:
    """What the reads beside the gate found: a run ready to send (`run`, `report` ok), or the
    sentence saying why nothing will be sent (`failure`, with the audit `detail`)."""

    run: Run | None = None
    report: PreflightReport | None = None
    failure: str | None = None
    detail: JsonDict | None = None
    note: ProgressNote | None = None


@dataclass(frozen=True, slots=True)
class Opened:
    """A run whose gate is open: the start transition and record are saved; `prepare` is the
    preflight and before snapshot, read beside the gate."""

    result: TransitionResult
    record: Execution
    prepare: asyncio.Future[_Prepared]
    claim: Claim | None = None


__all__ = ["Opened"]
