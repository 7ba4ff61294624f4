"""The action contract: what every cluster-changing action declares, once.

An action is a singleton subclass of `Action[P]`, where `P` is its pydantic params model. It
declares its name, summary, risk, reversibility and undo, the exact PD requests it makes, and
the async steps the executor runs: `preflight` (fresh checks, nothing sent on failure),
`snapshot` (before/after state), `execute` (the PD write), `verify` (one poll of the outcome)
and `reconcile` (after a crash: was the write applied? never re-sends). The registry
(`operator_tikv.actions.registry`) feeds the command parser, the Claude tool schema, rendering
and the executor from these declarations.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError

from operator_tikv.actions.errors import InvalidParams, PreflightRefused
from operator_tikv.models.writes import PDWrite
from operator_tikv.sentences import end_sentence

if TYPE_CHECKING:
    from operator_tikv.actions.ports import PDApi


class Risk(StrEnum):
    """How much harm a mistaken run can do; the approval policy keys on it."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class ActionParams(BaseModel):
    """Base of every params model. Field order is the positional order in the command grammar;
    required fields are positional, optional ones are `--name value` options. Field titles are
    the human labels ("store ID") used in errors, help and rendering."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: Command-grammar placeholder per field, when the field name is not the right word
    #: (e.g. {"value": "n"} gives `limit <leader|region|replica> <n>`).
    metavars: ClassVar[Mapping[str, str]] = {}


P = TypeVar("P", bound=ActionParams)


class Check(BaseModel):
    """One preflight check: its stable name, whether it passed, what was observed, and the
    sentence shown to the user (on failure: why the action is refused). A passed check may be
    a `warning`: the action may run, but the message says what the approver should weigh."""

    model_config = ConfigDict(frozen=True)

    name: str
    ok: bool
    observed: str
    message: str
    warning: bool = False


class PreflightReport(BaseModel):
    """Every check run for one action against fresh cluster state."""

    model_config = ConfigDict(frozen=True)

    action: str
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(check for check in self.checks if not check.ok)

    @property
    def warnings(self) -> tuple[Check, ...]:
        """Passed checks that warn (the action may run; the approver should read them)."""
        return tuple(check for check in self.checks if check.ok and check.warning)

    def raise_if_refused(self) -> None:
        """Raise PreflightRefused (carrying this report) when any check failed."""
        if not self.ok:
            raise PreflightRefused(self)

    def refusal(self) -> str:
        """The user-facing refusal ("Refused transfer-leader: store 5 is Disconnected ...");
        empty when every check passed."""
        failed = self.failures
        if not failed:
            return ""
        reasons = end_sentence("; ".join(check.message.strip().rstrip(".") for check in failed))
        return f"Refused {self.action}: {reasons} Nothing was sent to PD."


class PreflightContext(BaseModel):
    """Policy knobs and the clock preflight needs besides the cluster itself."""

    model_config = ConfigDict(frozen=True)

    max_drained_stores: int = Field(
        default=1, ge=1, description="how many stores may be under evict-leader at once"
    )
    now: datetime | None = Field(
        default=None,
        description="current time, to say how long ago a store last sent a heartbeat",
    )


class RegionState(BaseModel):
    """The part of a region an action changes or depends on."""

    model_config = ConfigDict(frozen=True)

    id: int
    leader_store_id: int | None
    peer_store_ids: tuple[int, ...]
    voter_store_ids: tuple[int, ...] = ()
    down_store_ids: tuple[int, ...] = ()
    pending_store_ids: tuple[int, ...] = ()
    start_key: str = ""
    end_key: str = ""
    version: int = 0
    conf_ver: int = 0
    approximate_size_mib: int = 0
    approximate_keys: int = 0


class Snapshot(BaseModel):
    """State before (or after) an action: what verification compares against and what undo
    restores. JSON-serialisable so the executor can persist it with the step record."""

    model_config = ConfigDict(frozen=True)

    region: RegionState | None = None
    store_leader_counts: dict[int, int] = Field(default_factory=dict)
    evicted_store_ids: tuple[int, ...] = ()
    config: dict[str, float] = Field(
        default_factory=dict, description="schedule config values by PD key"
    )


class Outcome(StrEnum):
    """Result of one verification poll."""

    SUCCEEDED = "succeeded"
    PENDING = "pending"
    FAILED = "failed"
    TIMED_OUT = "timed_out"


class Verification(BaseModel):
    """One look at whether the action reached its target state. `message` is a sentence:
    progress while pending ("leaders on store 4: 1,203 → 312"), the reason when failed."""

    model_config = ConfigDict(frozen=True)

    outcome: Outcome
    message: str

    @property
    def finished(self) -> bool:
        return self.outcome is not Outcome.PENDING

    @classmethod
    def succeeded(cls, message: str) -> Self:
        return cls(outcome=Outcome.SUCCEEDED, message=message)

    @classmethod
    def pending(cls, message: str) -> Self:
        return cls(outcome=Outcome.PENDING, message=message)

    @classmethod
    def failed(cls, message: str) -> Self:
        return cls(outcome=Outcome.FAILED, message=message)

    @classmethod
    def timed_out(cls, message: str) -> Self:
        return cls(outcome=Outcome.TIMED_OUT, message=message)


class ActionCall(BaseModel):
    """An action name with its parameters as plain JSON: an undo step, a proposal's action,
    the choice Claude makes through the tool."""

    model_config = ConfigDict(frozen=True)

    action: str
    params: dict[str, JsonValue]


class DryRun(BaseModel):
    """What would happen: the checks, the exact requests, and the expected effect."""

    model_config = ConfigDict(frozen=True)

    action: str
    description: str
    preflight: PreflightReport
    requests: tuple[PDWrite, ...]
    expected_effect: str

    @property
    def would_run(self) -> bool:
        return self.preflight.ok

    def text(self) -> str:
        """A plain-text summary for the terminal and logs."""
        lines = [f"Dry run: {self.description}"]
        lines += [f"  [{_mark(c)}] {c.name}: {c.message}" for c in self.preflight.checks]
        if self.would_run:
            lines.append(f"Would send: {'; '.join(r.describe() for r in self.requests)}")
            lines.append(f"Expected effect: {self.expected_effect}")
        else:
            lines.append(self.preflight.refusal())
        return "\n".join(lines)


def _mark(check: Check) -> str:
    if not check.ok:
        return "FAIL"
    return "WARN" if check.warning else "ok"


class ActionText(BaseModel):
    """Everything a surface shows about one action with its params (pure, no cluster reads)."""

    model_config = ConfigDict(frozen=True)

    action: str
    title: str
    params: tuple[tuple[str, str], ...]
    risk: Risk
    reversible: bool
    undo: str
    requests: tuple[str, ...]


class Action(ABC, Generic[P]):
    """One registered action. Subclasses set the class attributes and implement the steps.

    Contract for the executor (see module docstring): preflight → (record started) → execute →
    verify in a loop until finished or `deadline_seconds` (`follow()` does this loop); after a
    crash, `reconcile` instead of execute. `snapshot` is taken before execute and after the
    outcome; `undo(params, before)` gives the inverse call from the before snapshot.
    """

    name: str
    summary: str
    params_model: type[P]
    risk: Risk
    reversible: bool
    undo_action: str | None = None
    deadline_seconds: float = 120.0
    poll_interval: float = 2.0
    example: P

    # ---- pure declarations -------------------------------------------------------------

    def validate(self, raw: Mapping[str, Any] | BaseModel) -> P:
        """Typed params from JSON-ish input, or InvalidParams with one sentence per problem."""
        if isinstance(raw, self.params_model):
            return raw
        data = raw.model_dump() if isinstance(raw, BaseModel) else dict(raw)
        try:
            return self.params_model.model_validate(data)
        except ValidationError as exc:
            raise InvalidParams(self.name, describe_validation(self.params_model, exc)) from None

    @abstractmethod
    def describe(self, p: P) -> str:
        """A human sentence for the action with its params ("Drain store 4: ...")."""

    @abstractmethod
    def requests(self, p: P) -> tuple[PDWrite, ...]:
        """The exact PD requests `execute` sends, in order."""

    @abstractmethod
    def undo_sentence(self, p: P) -> str:
        """How to undo, said before execution (from the params alone)."""

    @abstractmethod
    def undo(self, p: P, before: Snapshot) -> ActionCall | None:
        """The call that reverses this action, from the before snapshot; None if irreversible."""

    def present(self, p: P) -> ActionText:
        """Title, params listing, risk, undo sentence and request lines for rendering."""
        return ActionText(
            action=self.name,
            title=self.describe(p),
            params=tuple(param_lines(p)),
            risk=self.risk,
            reversible=self.reversible,
            undo=self.undo_sentence(p),
            requests=tuple(r.describe() for r in self.requests(p)),
        )

    def call(self, p: P) -> ActionCall:
        return ActionCall(action=self.name, params=p.model_dump(mode="json"))

    # ---- steps against PD ---------------------------------------------------------------

    @abstractmethod
    async def preflight(self, p: P, pd: PDApi, ctx: PreflightContext) -> PreflightReport:
        """Check the preconditions against fresh state; reads only, never writes."""

    @abstractmethod
    async def expected_effect(self, p: P, pd: PDApi) -> str:
        """What a run would change, with counts, for dry-run ("1,203 leaders would move ...")."""

    async def dry_run(self, p: P, pd: PDApi, ctx: PreflightContext) -> DryRun:
        """Preflight plus the requests and expected effect; sends no write."""
        report = await self.preflight(p, pd, ctx)
        effect = await self.expected_effect(p, pd) if report.ok else "nothing (refused)"
        return DryRun(
            action=self.name,
            description=self.describe(p),
            preflight=report,
            requests=self.requests(p),
            expected_effect=effect,
        )

    @abstractmethod
    async def snapshot(self, p: P, pd: PDApi) -> Snapshot:
        """The state this action changes, read now."""

    async def execute(self, p: P, pd: PDApi) -> str:
        """Send `requests(p)` in order, each exactly once; return PD's messages joined. Raises
        operator_tikv.errors types. Every action in the catalogue is exactly its requests."""
        messages = [await pd.execute(write) for write in self.requests(p)]
        return "; ".join(message for message in messages if message) or "PD accepted the request."

    @abstractmethod
    async def verify(self, p: P, pd: PDApi, before: Snapshot) -> Verification:
        """One poll of the outcome: succeeded, pending (with progress), failed or timed out."""

    @abstractmethod
    async def reconcile(self, p: P, pd: PDApi, before: Snapshot) -> Verification | None:
        """After a crash between 'started' and the outcome: the state of the write if PD shows
        it was applied (or the target state holds), else None. Never sends a write."""


def param_lines(p: ActionParams) -> list[tuple[str, str]]:
    """(label, value) pairs from the field titles, in declaration order."""
    lines = []
    for field_name, info in type(p).model_fields.items():
        value = getattr(p, field_name)
        label = info.title or field_name.replace("_", " ")
        lines.append((label, str(value.value if isinstance(value, StrEnum) else value)))
    return lines


def describe_validation(model: type[BaseModel], exc: ValidationError) -> list[str]:
    """One sentence per pydantic error, naming the field by its title."""
    return [describe_error(model, err) for err in exc.errors(include_url=False)]


def describe_error(model: type[BaseModel], err: Mapping[str, Any], skip: int = 0) -> str:
    """A sentence for one pydantic error dict of `model` ("store ID must be a whole number,
    got 'four'"). `skip` drops leading location parts (e.g. a union tag and "params")."""
    loc = tuple(err.get("loc", ()))[skip:]
    field_name = str(loc[0]) if loc else ""
    info = model.model_fields.get(field_name)
    label = info.title if info is not None and info.title else field_name.replace("_", " ")
    kind = str(err.get("type", ""))
    ctx: Mapping[str, Any] = err.get("ctx") or {}
    got = _shown(err.get("input"))
    message = str(err.get("msg", "")).removeprefix("Value error, ")
    if kind == "missing":
        return f"{label} is required"
    if kind == "extra_forbidden":
        return f"{field_name} is not a parameter of this action"
    if kind in {"value_error", "assertion_error"} or not label:
        return message
    templates = {
        "int_type": "must be a whole number",
        "int_parsing": "must be a whole number",
        "int_from_float": "must be a whole number",
        "float_type": "must be a number",
        "float_parsing": "must be a number",
        "finite_number": "must be a finite number",
        "greater_than_equal": f"must be at least {ctx.get('ge')}",
        "greater_than": f"must be greater than {ctx.get('gt')}",
        "less_than_equal": f"must be at most {ctx.get('le')}",
        "less_than": f"must be less than {ctx.get('lt')}",
        "literal_error": f"must be {ctx.get('expected')}",
    }
    if kind in templates:
        return f"{label} {templates[kind]}, got {got}"
    return f"{label}: {message}"


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
