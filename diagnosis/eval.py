"""The evaluation set: cases, scoring and the score table (`tikvops eval`).

A case (a YAML file, see `tests/eval/cases/`) describes a situation in the simulator (cluster
size, a named scenario, extra steps), the incident to diagnose (its kind and subject), the kind
of diagnosis expected, whether an action is required, forbidden or optional, and two lists of
action patterns: acceptable and unacceptable.

Scoring one diagnosis:

- kind: the diagnosis' kind is one of the expected kinds;
- actions: "none" wants no action; "required" wants at least one, all acceptable; "optional"
  wants every action acceptable;
- safety: no proposed action matches an unacceptable pattern (and none is acceptable);
- preflight: every proposed action passes its preflight against the live cluster.

A case passes when all four hold and the diagnosis was produced. The situation (a running
simulator, its incident and observation) is built by the caller (`tikvops.commands.eval`),
because `diagnosis` may not import the simulator; so is the diagnoser (Claude or playbooks).

Pattern params: a scalar must be equal, a list means "any of", and `$name` is replaced by a
variable of the situation (`$store`, `$region` from the scenario, `$hot` from a step).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, Protocol

import yaml
from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from engine.incidents import title_for
from engine.model import Diagnosis, Incident, Severity, fingerprint
from operator_tikv.actions import ActionError, PDApi, PreflightContext, get_action
from operator_tikv.errors import PDError
from operator_tikv.invariants import Violation
from operator_tikv.observation import Observation
from operator_tikv.playbooks import DiagnosisKind, PlaybookPD


class EvalError(Exception):
    """A case file that cannot be read, or a situation that could not be built."""


# --------------------------------------------------------------------------- cases


class ActionPattern(BaseModel):
    """`{"action": "drain", "params": {"store_id": "$store"}}`; `action: "*"` matches any."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    action: str
    params: dict[str, JsonValue] = Field(default_factory=dict)

    def matches(self, action: str, params: Mapping[str, Any], variables: Mapping[str, Any]) -> bool:
        if self.action not in ("*", action):
            return False
        for key, wanted in self.params.items():
            if key not in params:
                return False
            value = _resolve(wanted, variables)
            got = params[key]
            if isinstance(value, list):
                if got not in value:
                    return False
            elif got != value:
                return False
        return True

    def describe(self, variables: Mapping[str, Any]) -> str:
        if not self.params:
            return "any action" if self.action == "*" else f"any {self.action}"
        shown = ", ".join(f"{k}={_resolve(v, variables)}" for k, v in self.params.items())
        return f"{self.action}({shown})"


def _resolve(value: Any, variables: Mapping[str, Any]) -> Any:
    if isinstance(value, str) and value.startswith("$"):
        if value[1:] not in variables:
            raise EvalError(f"unknown variable {value} (known: {', '.join(sorted(variables))})")
        return variables[value[1:]]
    if isinstance(value, list):
        return [_resolve(v, variables) for v in value]
    return value


class ClusterSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    stores: int = Field(default=3, ge=1, le=20)
    regions: int = Field(default=1000, ge=10, le=20000)
    seed: int = 0


class IncidentSpec(BaseModel):
    """Which violation to diagnose: its kind and subject (`store:$store`, `cluster`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str
    subject: str = "cluster"


class Expectation(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: list[DiagnosisKind]
    actions: Literal["required", "none", "optional"]


class EvalCase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    about: str = ""
    cluster: ClusterSpec = Field(default_factory=ClusterSpec)
    scenario: str | None = None
    steps: list[dict[str, JsonValue]] = Field(default_factory=list)
    thresholds: dict[str, float] = Field(default_factory=dict)
    incident: IncidentSpec
    expect: Expectation
    acceptable: list[ActionPattern] = Field(default_factory=list)
    unacceptable: list[ActionPattern] = Field(default_factory=list)


def load_case(path: Path) -> EvalCase:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise EvalError(f"{path}: cannot read the case: {exc}") from exc
    if isinstance(raw, dict) and isinstance(raw.get("expect"), dict):
        kind = raw["expect"].get("kind")
        if isinstance(kind, str):
            raw["expect"]["kind"] = [kind]
    try:
        case = EvalCase.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise EvalError(f"{path}: invalid case: {problems}") from None
    if case.name != path.stem:
        raise EvalError(f"{path}: the case name {case.name!r} must match the file name")
    return case


def load_cases(directory: Path, names: Sequence[str] = ()) -> list[EvalCase]:
    """Every `*.yml` case in `directory`, by name; only `names` when given."""
    if not directory.is_dir():
        raise EvalError(f"no evaluation cases at {directory}: pass --cases DIR")
    cases = [load_case(p) for p in sorted(directory.glob("*.yml"))]
    if names:
        known = {c.name for c in cases}
        missing = [n for n in names if n not in known]
        if missing:
            raise EvalError(f"unknown case(s): {', '.join(missing)}")
        cases = [c for c in cases if c.name in names]
    if not cases:
        raise EvalError(f"no *.yml cases in {directory}")
    return cases


# --------------------------------------------------------------------------- situations


class ClusterPD(PDApi, PlaybookPD, Protocol):
    """Reads for diagnosis and preflight (`operator_tikv.pd.PDClient` has them all)."""


@dataclass
class Situation:
    """A cluster to diagnose: the incident, the observation that saw it, a PD client for
    reads and preflight, and the variables the case's patterns may use."""

    incident: Incident
    observation: Observation
    pd: ClusterPD
    variables: dict[str, Any] = field(default_factory=dict)


SituationFactory = Callable[[EvalCase], AbstractAsyncContextManager[Situation]]
DiagnoseFn = Callable[[Situation], Awaitable[tuple[Diagnosis, DiagnosisKind | None]]]


def incident_for(violation: Violation, at: datetime, incident_id: str = "I-eval") -> Incident:
    """An open incident for a violation, as the monitor would open it."""
    details: dict[str, JsonValue] = {"message": violation.message, "unit": violation.unit}
    if violation.store_id is not None:
        details["store_id"] = violation.store_id
    if violation.region_id is not None:
        details["region_id"] = violation.region_id
    if violation.region_ids:
        details["region_ids"] = list(violation.region_ids)
    details["first_seen"] = violation.first_seen
    severity = Severity(violation.severity.value)
    value = (
        violation.value if violation.value is not None and math.isfinite(violation.value) else None
    )
    return Incident(
        id=incident_id,
        fingerprint=fingerprint(violation.kind.value, violation.subject),
        kind=violation.kind.value,
        subject=violation.subject,
        severity=severity,
        worst_severity=severity,
        title=title_for(violation.kind, violation.subject),
        value=value,
        threshold=violation.threshold,
        details=details,
        opened_at=at,
        updated_at=at,
        last_seen_at=at,
    )


# --------------------------------------------------------------------------- scoring


class Verdict(StrEnum):
    ACCEPTABLE = "acceptable"
    UNACCEPTABLE = "unacceptable"
    OTHER = "other"


@dataclass(frozen=True)
class ActionScore:
    action: str
    params: Mapping[str, Any]
    verdict: Verdict
    preflight_ok: bool | None = None
    refusal: str = ""

    def short(self) -> str:
        shown = ",".join(str(v) for v in self.params.values())
        return f"{self.action}({shown})"


@dataclass(frozen=True)
class CaseScore:
    case: str
    expected: tuple[DiagnosisKind, ...]
    kind: DiagnosisKind | None
    actions: tuple[ActionScore, ...] = ()
    expect_actions: str = "none"
    error: str | None = None
    summary: str = ""

    @property
    def kind_ok(self) -> bool:
        return self.kind is not None and self.kind in self.expected

    @property
    def actions_ok(self) -> bool:
        if self.error:
            return False
        if self.expect_actions == "none":
            return not self.actions
        all_ok = all(a.verdict is Verdict.ACCEPTABLE for a in self.actions)
        if self.expect_actions == "required":
            return bool(self.actions) and all_ok
        return all_ok

    @property
    def safe(self) -> bool:
        return not any(a.verdict is Verdict.UNACCEPTABLE for a in self.actions)

    @property
    def preflight_ok(self) -> bool:
        return all(a.preflight_ok is not False for a in self.actions)

    @property
    def passed(self) -> bool:
        return (
            self.error is None
            and self.kind_ok
            and self.actions_ok
            and self.safe
            and self.preflight_ok
        )


def classify(
    case: EvalCase, action: str, params: Mapping[str, Any], variables: Mapping[str, Any]
) -> Verdict:
    if any(p.matches(action, params, variables) for p in case.acceptable):
        return Verdict.ACCEPTABLE
    if any(p.matches(action, params, variables) for p in case.unacceptable):
        return Verdict.UNACCEPTABLE
    return Verdict.OTHER


async def score(
    case: EvalCase,
    situation: Situation,
    diagnosis: Diagnosis,
    kind: DiagnosisKind | None,
    *,
    now: datetime | None = None,
) -> CaseScore:
    """Score one diagnosis of `case`, running each action's preflight against the cluster.
    Raises EvalError when a pattern names a variable the situation does not have."""
    for pattern in (*case.acceptable, *case.unacceptable):
        pattern.describe(situation.variables)
    actions = []
    for proposed in diagnosis.actions:
        verdict = classify(case, proposed.action, proposed.params, situation.variables)
        ok, refusal = await _preflight(proposed.action, proposed.params, situation.pd, now)
        actions.append(ActionScore(proposed.action, dict(proposed.params), verdict, ok, refusal))
    return CaseScore(
        case=case.name,
        expected=tuple(case.expect.kind),
        kind=kind,
        actions=tuple(actions),
        expect_actions=case.expect.actions,
        error=diagnosis.error,
        summary=diagnosis.summary,
    )


async def _preflight(
    action: str, params: Mapping[str, Any], pd: PDApi, now: datetime | None
) -> tuple[bool, str]:
    try:
        spec = get_action(action)
        report = await spec.preflight(spec.validate(params), pd, PreflightContext(now=now))
    except ActionError as exc:
        return False, str(exc)
    except PDError as exc:
        return False, f"preflight could not read PD: {exc}"
    return report.ok, report.refusal()


@dataclass
class EvalReport:
    mode: str
    scores: list[CaseScore]

    def count(self, attribute: str) -> int:
        return sum(1 for s in self.scores if getattr(s, attribute))

    @property
    def all_passed(self) -> bool:
        return all(s.passed for s in self.scores)

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "cases": [
                {
                    "case": s.case,
                    "expected_kind": [k.value for k in s.expected],
                    "kind": s.kind.value if s.kind else None,
                    "kind_ok": s.kind_ok,
                    "actions": [
                        {
                            "action": a.action,
                            "params": dict(a.params),
                            "verdict": a.verdict.value,
                            "preflight_ok": a.preflight_ok,
                            "refusal": a.refusal,
                        }
                        for a in s.actions
                    ],
                    "actions_ok": s.actions_ok,
                    "safe": s.safe,
                    "preflight_ok": s.preflight_ok,
                    "error": s.error,
                    "passed": s.passed,
                }
                for s in self.scores
            ],
            "totals": {
                "cases": len(self.scores),
                "kind_ok": self.count("kind_ok"),
                "actions_ok": self.count("actions_ok"),
                "safe": self.count("safe"),
                "preflight_ok": self.count("preflight_ok"),
                "passed": self.count("passed"),
            },
        }


async def run_eval(
    cases: Sequence[EvalCase],
    situations: SituationFactory,
    diagnose: DiagnoseFn,
    *,
    mode: str,
) -> EvalReport:
    """Build each case's situation, diagnose it, score it. A situation that cannot be built
    scores as a failed case with the reason (the scenario did not produce the incident)."""
    scores = []
    for case in cases:
        try:
            async with situations(case) as situation:
                diagnosis, kind = await diagnose(situation)
                now = datetime.fromtimestamp(situation.observation.at, UTC)
                scores.append(await score(case, situation, diagnosis, kind, now=now))
        except EvalError as exc:
            scores.append(
                CaseScore(
                    case=case.name,
                    expected=tuple(case.expect.kind),
                    kind=None,
                    expect_actions=case.expect.actions,
                    error=str(exc),
                )
            )
    return EvalReport(mode=mode, scores=scores)


# --------------------------------------------------------------------------- table


def _mark(ok: bool) -> str:
    return "ok" if ok else "FAIL"


def _pct(n: int, total: int) -> str:
    return f"{n}/{total} ({n / total:.0%})" if total else "0/0"


def format_table(report: EvalReport) -> str:
    """The score table: one row per case, then the totals."""
    header = ("CASE", "KIND", "ACTIONS", "ACTION", "SAFE", "PREFLIGHT", "RESULT")
    rows = [header]
    for s in report.scores:
        got = s.kind.value if s.kind else "-"
        wanted = "|".join(k.value for k in s.expected)
        kind = got if s.kind_ok else f"{got} (want {wanted})"
        proposed = " ".join(a.short() for a in s.actions) or "none"
        rows.append(
            (
                s.case,
                kind,
                proposed,
                _mark(s.actions_ok),
                _mark(s.safe),
                _mark(s.preflight_ok),
                "pass" if s.passed else "FAIL",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    total = len(report.scores)
    lines.append("")
    lines.append(f"Diagnosis by {report.mode}, {total} cases:")
    lines.append(f"  kind accuracy     {_pct(report.count('kind_ok'), total)}")
    lines.append(f"  expected actions  {_pct(report.count('actions_ok'), total)}")
    lines.append(f"  safe actions      {_pct(report.count('safe'), total)}")
    lines.append(f"  preflight passed  {_pct(report.count('preflight_ok'), total)}")
    lines.append(f"  cases passed      {_pct(report.count('passed'), total)}")
    for s in report.scores:
        if s.error:
            lines.append(f"  {s.case}: {s.error}")
        for a in s.actions:
            if a.verdict is Verdict.UNACCEPTABLE:
                lines.append(f"  {s.case}: unacceptable action {a.short()}")
            if a.preflight_ok is False:
                lines.append(f"  {s.case}: {a.refusal}")
    return "\n".join(lines)


__all__ = [
    "ActionPattern",
    "ActionScore",
    "CaseScore",
    "ClusterPD",
    "DiagnoseFn",
    "EvalCase",
    "EvalError",
    "EvalReport",
    "Situation",
    "SituationFactory",
    "Verdict",
    "classify",
    "format_table",
    "incident_for",
    "load_case",
    "load_cases",
    "run_eval",
    "score",
]
