"""Operator models: ``GET /operators`` and ``GET /operators/{region_id}`` (pd-api.md §1.2-1.3).

PD does not answer operator objects: each operator is a string from ``Operator.String()``,
prefixed with ``status: <STATUS>, operator: `` on the single-region endpoint::

    status: RUNNING, operator: admin-transfer-leader {transfer leader: store 4 to 1}
    (kind:admin,leader, region:3325(88, 5), createAt:..., startAt:..., currentStep:0, size:93,
    steps:[0:{transfer leader from store 4 to store 1}], timeout:[1m0s])

:class:`OperatorInfo` parses that string (and also the ``?object`` form of v8.1+). The head,
up to ``region:<id>(<version>, <conf_ver>)``, is stable from v6.5; the tail (steps, timeout,
the full-width comma of 6.5/7.1) is read loosely.
"""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum
from typing import Any

from pydantic import Field, model_validator

from operator_tikv.models.common import PDModel, parse_go_duration

__all__ = [
    "OperatorInfo",
    "OperatorKindFilter",
    "OperatorStatus",
    "parse_operator_string",
]


class OperatorStatus(StrEnum):
    """``pdpb.OperatorStatus`` names as PD prints them. CREATED prints as ``5`` (derived)."""

    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    TIMEOUT = "TIMEOUT"
    CANCEL = "CANCEL"
    REPLACE = "REPLACE"
    CREATED = "CREATED"

    @property
    def is_terminal(self) -> bool:
        return self not in (OperatorStatus.RUNNING, OperatorStatus.CREATED)


class OperatorKindFilter(StrEnum):
    """``?kind=`` values of ``GET /operators``."""

    ADMIN = "admin"
    LEADER = "leader"
    REGION = "region"
    WAITING = "waiting"


# Internal OpStatus numbers of the ?object form (status.go) -> the pdpb names.
_OBJECT_STATUS = {
    0: OperatorStatus.CREATED,
    1: OperatorStatus.RUNNING,
    2: OperatorStatus.SUCCESS,
    3: OperatorStatus.CANCEL,
    4: OperatorStatus.REPLACE,
    5: OperatorStatus.TIMEOUT,
    6: OperatorStatus.TIMEOUT,
}

_HEAD_RE = re.compile(
    r"^\s*(?:status: (?P<status>\w+), operator: )?"
    r"(?P<desc>\S+) \{(?P<brief>.*?)\} "
    r"\(kind:(?P<kinds>.*?), region:(?P<region>\d+)\((?P<version>\d+), (?P<conf_ver>\d+)\)",
    re.DOTALL,
)
_CURRENT_STEP_RE = re.compile(r"currentStep:(\d+)")
_SIZE_RE = re.compile(r"size:(\d+)")
_STEPS_RE = re.compile(r"steps:\[(.*)\]\s*[,，]\s*timeout:\[(.*?)\]", re.DOTALL)
_NUMBERED_STEP_RE = re.compile(r"\d+:\{(.*?)\}(?=, \d+:\{|$)", re.DOTALL)


def _parse_status(value: str) -> OperatorStatus:
    if value in ("5", "CREATED"):
        return OperatorStatus.CREATED
    return OperatorStatus(value)


def parse_operator_string(text: str) -> dict[str, Any]:
    """Split PD's operator string into the fields of :class:`OperatorInfo`.

    Raises ValueError when the stable head does not match.
    """
    head = _HEAD_RE.match(text)
    if head is None:
        raise ValueError(f"not a PD operator string: {text[:120]!r}")
    rest = text[head.end() :]
    steps: list[str] = []
    timeout: timedelta | None = None
    steps_match = _STEPS_RE.search(rest)
    if steps_match:
        inner = steps_match.group(1).strip()
        numbered = _NUMBERED_STEP_RE.findall(inner)
        if numbered:
            steps = [step.strip() for step in numbered]
        elif inner:
            steps = [part.strip() for part in inner.split(", ") if part.strip()]
        try:
            timeout = timedelta(microseconds=parse_go_duration(steps_match.group(2)) / 1_000)
        except ValueError:
            timeout = None
    current = _CURRENT_STEP_RE.search(rest)
    size = _SIZE_RE.search(rest)
    tail = text.rstrip()
    return {
        "raw": text,
        "status": _parse_status(head.group("status")) if head.group("status") else None,
        "desc": head.group("desc"),
        "brief": head.group("brief"),
        "kinds": [kind.strip() for kind in head.group("kinds").split(",") if kind.strip()],
        "region_id": int(head.group("region")),
        "region_version": int(head.group("version")),
        "region_conf_ver": int(head.group("conf_ver")),
        "current_step": int(current.group(1)) if current else None,
        "size_mib": int(size.group(1)) if size else None,
        "steps": steps,
        "timeout": timeout,
        "finished": tail.endswith(") finished"),
        "timed_out": tail.endswith(") timeout"),
    }


def _from_object(value: dict[str, Any]) -> dict[str, Any]:
    epoch = value.get("region_epoch") or {}
    timeout: timedelta | None = None
    if isinstance(value.get("timeout"), str):
        try:
            timeout = timedelta(microseconds=parse_go_duration(value["timeout"]) / 1_000)
        except ValueError:
            timeout = None
    status = value.get("status")
    return {
        "raw": "",
        "status": _OBJECT_STATUS.get(status) if isinstance(status, int) else status,
        "desc": value.get("desc", ""),
        "brief": value.get("brief", ""),
        "kinds": [],
        "region_id": value.get("region_id", 0),
        "region_version": epoch.get("version", 0),
        "region_conf_ver": epoch.get("conf_ver", 0),
        "timeout": timeout,
    }


class OperatorInfo(PDModel):
    """One PD operator. ``status`` is None in ``GET /operators`` (running ones only)."""

    raw: str = ""
    status: OperatorStatus | None = None
    desc: str
    brief: str = ""
    kinds: list[str] = Field(default_factory=list)
    region_id: int
    region_version: int = 0
    region_conf_ver: int = 0
    current_step: int | None = None
    size_mib: int | None = None
    steps: list[str] = Field(default_factory=list)
    timeout: timedelta | None = None
    finished: bool = False
    timed_out: bool = False

    @model_validator(mode="before")
    @classmethod
    def _from_pd(cls, value: Any) -> Any:
        if isinstance(value, str):
            return parse_operator_string(value)
        if isinstance(value, dict) and "region_epoch" in value:
            return _from_object(value)
        if isinstance(value, dict) and isinstance(value.get("status"), str):
            return {**value, "status": _parse_status(value["status"])}
        return value

    @property
    def is_admin(self) -> bool:
        """Created through the HTTP API (``admin-*`` desc, kind contains ``admin``)."""
        return "admin" in self.kinds or self.desc.startswith("admin-")

    @property
    def is_running(self) -> bool:
        return self.status is None or not self.status.is_terminal
