"""The engine's records: incidents, diagnoses, proposals, executions, audit events, identities and
engine settings. All are frozen pydantic models with aware-UTC timestamps that round-trip through
JSON (`model_dump(mode="json")` / `model_validate`). Only `engine.transitions` makes a proposal
with a different `state`. The base and shared field types are `engine.records`; the delivery
records (message refs, outbox) are `engine.delivery`, re-exported here.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import Field

from engine.delivery import MessageRef, OutboxItem, OutboxStatus, OwnerKind
from engine.records import DEFAULT_CLUSTER, JsonDict, Record, UtcDatetime

# --------------------------------------------------------------------------- identities


ClusterName = Annotated[str, Field(min_length=1, max_length=32)]
"""A configured cluster's name (`[clusters.NAME]`); records carry the cluster they concern."""


class IdentityKind(StrEnum):
    SLACK_USER = "slack_user"
    CLI_USER = "cli_user"
    SYSTEM = "system"
    CLAUDE = "claude"
    PLAYBOOK = "playbook"


_KEY_PREFIX = {
    IdentityKind.SLACK_USER: "slack",
    IdentityKind.CLI_USER: "cli",
    IdentityKind.SYSTEM: "system",
    IdentityKind.CLAUDE: "claude",
    IdentityKind.PLAYBOOK: "playbook",
}


class Identity(Record):
    """Who did something: a Slack user (`id` = user ID such as U123, `groups` = the user-group
    IDs they belong to), a local terminal user (`id` = user@host), the system itself, Claude
    (`id` = model) or a playbook (`id` = playbook name)."""

    kind: IdentityKind
    id: str = Field(min_length=1)
    display_name: str | None = None
    groups: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """Stable identity string for audit and comparison: `slack:U123`, `cli:alice@host`,
        `system`, `claude:<model>`, `playbook:<name>`. Two identities with the same key are the
        same person, whatever their display name or groups."""
        if self.kind is IdentityKind.SYSTEM and self.id == "system":
            return "system"
        return f"{_KEY_PREFIX[self.kind]}:{self.id}"

    @property
    def name(self) -> str:
        """A plain name for records (no surface's syntax; `bot.render.fmt.who` mentions a Slack
        user): the display name, else the Slack user ID, else the key."""
        if self.display_name:
            return self.display_name
        if self.kind is IdentityKind.SLACK_USER:
            return self.id
        return self.key

    def same_as(self, other: Identity | None) -> bool:
        return other is not None and self.key == other.key

    @classmethod
    def slack(
        cls, user_id: str, *, name: str | None = None, groups: tuple[str, ...] = ()
    ) -> Identity:
        return cls(kind=IdentityKind.SLACK_USER, id=user_id, display_name=name, groups=groups)

    @classmethod
    def cli(cls, user_at_host: str) -> Identity:
        return cls(kind=IdentityKind.CLI_USER, id=user_at_host, display_name=user_at_host)

    @classmethod
    def claude(cls, model: str) -> Identity:
        return cls(kind=IdentityKind.CLAUDE, id=model, display_name=f"Claude ({model})")

    @classmethod
    def playbook(cls, name: str) -> Identity:
        return cls(kind=IdentityKind.PLAYBOOK, id=name, display_name=f"playbook {name}")


SYSTEM = Identity(kind=IdentityKind.SYSTEM, id="system", display_name="tikvops")
"""The bot itself: expiry, auto-approval, restart reconciliation."""

Actor = Identity
"""Alias: the identity acting in an event."""


# --------------------------------------------------------------------------- incidents


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]

    def worst(self, other: Severity) -> Severity:
        return self if self.rank >= other.rank else other


_SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


class IncidentStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


def fingerprint(kind: str, subject: str) -> str:
    """The deduplication key of an incident: `store-down:store:4`."""
    return f"{kind}:{subject}"


class Attention(Record):
    """Who attends to an incident (`engine.attending`): the owner who acknowledged it ("I'm on
    it") and since when, and the silence: by whom, since and until when, why, and the severity
    it was silenced at (a higher one breaks it). Empty: nobody owns it, nothing is silenced."""

    owner: Identity | None = None
    owned_since: UtcDatetime | None = None
    silenced_by: Identity | None = None
    silenced_at: UtcDatetime | None = None
    silenced_until: UtcDatetime | None = None
    silence_reason: str | None = None
    silenced_severity: Severity | None = None

    def silenced(self, at: datetime) -> bool:
        """Whether a silence is set and has not run out at `at`."""
        return self.silenced_until is not None and at < self.silenced_until


class Incident(Record):
    """Something wrong with the cluster, deduplicated by `fingerprint` while open.

    `subject` is `store:<id>`, `region:<id>` or `cluster`. `severity` is the current one and
    `worst_severity` the worst seen while open. `clear_since` is when the condition stopped
    being observed (reset when it comes back), used to resolve only after a quiet period.
    `version` starts at 1 and is bumped by every stored update (compare-and-set)."""

    id: str
    cluster: ClusterName = DEFAULT_CLUSTER
    fingerprint: str
    kind: str
    subject: str
    severity: Severity
    worst_severity: Severity
    status: IncidentStatus = IncidentStatus.OPEN
    title: str
    value: float | None = None
    threshold: float | None = None
    details: JsonDict = Field(default_factory=dict)
    opened_at: UtcDatetime
    updated_at: UtcDatetime
    last_seen_at: UtcDatetime
    clear_since: UtcDatetime | None = None
    resolved_at: UtcDatetime | None = None
    version: int = Field(default=1, ge=1)
    attention: Attention = Field(default_factory=Attention)

    @property
    def is_open(self) -> bool:
        return self.status is IncidentStatus.OPEN


# --------------------------------------------------------------------------- diagnoses


class DiagnosisSource(StrEnum):
    CLAUDE = "claude"
    PLAYBOOK = "playbook"


class Hypothesis(Record):
    """A likely cause: an interpretation, kept apart from the facts that support it."""

    statement: str
    confidence: float | None = Field(default=None, ge=0, le=1)


class Evidence(Record):
    """A fact observed in the cluster, with its number when there is one."""

    fact: str
    value: float | None = None
    unit: str | None = None
    source: str | None = None  # e.g. "pd:/stores", "prometheus", "tikv:/metrics"


class ProposedAction(Record):
    """An action a diagnosis suggests: registry name, typed-checked params, and why."""

    action: str
    params: JsonDict = Field(default_factory=dict)
    reason: str = ""


class NotProposed(Record):
    """A suggested action that did not become a proposal, and why: the engine's refusal
    sentence (a failed preflight check, invalid parameters, the policy, PD unreachable), or,
    with `duplicate_of`, the earlier proposal of the same action for the same incident."""

    suggested: ProposedAction
    reason: str
    duplicate_of: str | None = None


class Diagnosis(Record):
    """What is probably wrong and what to do, from Claude or a playbook. `error` is set (and the
    rest may be thin) when the diagnosis could not be produced, e.g. `diagnosis unavailable:
    Anthropic API timed out`."""

    id: int | None = None
    incident_id: str
    source: DiagnosisSource
    model: str | None = None
    prompt_version: str | None = None
    summary: str
    causes: list[Hypothesis] = Field(default_factory=list)
    evidence: list[Evidence] = Field(default_factory=list)
    confidence: float = Field(default=0.0, ge=0, le=1)
    actions: list[ProposedAction] = Field(default_factory=list)
    error: str | None = None
    created_at: UtcDatetime


# --------------------------------------------------------------------------- proposals


class RiskLevel(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class ProposalState(StrEnum):
    PROPOSED = "proposed"
    APPROVED = "approved"
    EXECUTING = "executing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    UNVERIFIED = "unverified"  # PD accepted the write; it could not be verified in time
    REJECTED = "rejected"
    EXPIRED = "expired"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset(
    {
        ProposalState.SUCCEEDED,
        ProposalState.FAILED,
        ProposalState.UNVERIFIED,
        ProposalState.REJECTED,
        ProposalState.EXPIRED,
        ProposalState.CANCELLED,
    }
)


class ProposalOrigin(StrEnum):
    CLAUDE = "claude"
    PLAYBOOK = "playbook"
    USER = "user"  # a slash command or CLI command
    UNDO = "undo"  # the undo of an earlier proposal


class ActionRef(Record):
    """An action by registry name with its parameters (used for undo)."""

    action: str
    params: JsonDict = Field(default_factory=dict)


class Approval(Record):
    by: Identity
    at: UtcDatetime


class Proposal(Record):
    """One action proposed for the cluster, moving through the proposal state machine.

    `id` is short and human-friendly (`P-7`), allocated by the database. `version` starts at 1
    and every transition bumps it by one. `approvals` lists distinct approvers in order;
    `decided_by`/`decided_at`/`decision_reason` record the approve/reject/expire/cancel decision.
    `preflight` holds the latest preflight check results and `preview` the dry-run preview, both
    as produced by the action registry (JSON). `outcome` is the one-line result after execution.
    """

    id: str
    cluster: ClusterName = DEFAULT_CLUSTER
    incident_id: str | None = None
    action: str
    params: JsonDict = Field(default_factory=dict)
    risk: RiskLevel
    reversible: bool = False
    undo: ActionRef | None = None
    reason: str = ""
    origin: ProposalOrigin
    proposed_by: Identity
    requested_by: Identity
    state: ProposalState = ProposalState.PROPOSED
    version: int = Field(default=1, ge=1)
    approvals: tuple[Approval, ...] = ()
    decided_by: Identity | None = None
    decided_at: UtcDatetime | None = None
    decision_reason: str | None = None
    expires_at: UtcDatetime
    created_at: UtcDatetime
    updated_at: UtcDatetime
    preflight: list[JsonDict] = Field(default_factory=list)
    preview: JsonDict | None = None
    outcome: str | None = None

    def approved_by(self, who: Identity) -> Approval | None:
        """This person's approval, if they gave one."""
        return next((a for a in self.approvals if a.by.same_as(who)), None)


# --------------------------------------------------------------------------- executions


class ExecutionStatus(StrEnum):
    STARTED = "started"  # record written, PD request not sent yet
    REQUEST_SENT = "request_sent"  # the PD request went out (or may have)
    VERIFYING = "verifying"  # PD accepted; following the outcome
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    UNVERIFIED = "unverified"  # PD accepted the write; reading PD to verify it kept failing
    RECONCILED_SUCCEEDED = "reconciled_succeeded"  # found done after a restart
    RECONCILED_FAILED = "reconciled_failed"  # found not done after a restart

    @property
    def is_finished(self) -> bool:
        return self not in UNFINISHED_EXECUTION


UNFINISHED_EXECUTION = frozenset(
    {ExecutionStatus.STARTED, ExecutionStatus.REQUEST_SENT, ExecutionStatus.VERIFYING}
)


class ProgressNote(Record):
    at: UtcDatetime
    message: str


class Execution(Record):
    """The run of one approved proposal (at most one per proposal). Written before the PD request
    so that a crash leaves a trace to reconcile; `requests` are the PD requests sent (method,
    path, body), `response`/`pd_message` what PD answered, `before`/`after` cluster snapshots."""

    proposal_id: str
    cluster: ClusterName = DEFAULT_CLUSTER
    status: ExecutionStatus = ExecutionStatus.STARTED
    started_at: UtcDatetime
    updated_at: UtcDatetime
    finished_at: UtcDatetime | None = None
    requests: list[JsonDict] = Field(default_factory=list)
    response: JsonDict | None = None
    pd_message: str | None = None
    before: JsonDict | None = None
    after: JsonDict | None = None
    progress: list[ProgressNote] = Field(default_factory=list)
    error: str | None = None

    @property
    def is_finished(self) -> bool:
        return self.status.is_finished


# --------------------------------------------------------------------------- audit


class AuditOutcome(StrEnum):
    OK = "ok"
    REFUSED = "refused"
    ERROR = "error"


class AuditEvent(Record):
    """One line of the append-only audit log: who (`actor`) did what (`action`, e.g.
    `proposal.approve`, `proposal.approve.refused`, `execution.started`, `killswitch.on`) to
    what (`subject`: a proposal or incident ID, or `engine`), with what result and why."""

    id: int | None = None
    at: UtcDatetime
    actor: Identity
    cluster: ClusterName = DEFAULT_CLUSTER
    action: str
    subject: str
    detail: JsonDict = Field(default_factory=dict)
    outcome: AuditOutcome = AuditOutcome.OK
    reason: str | None = None


# --------------------------------------------------------------------------- engine settings


class KillSwitch(Record):
    on: bool = False
    by: Identity | None = None
    at: UtcDatetime | None = None
    reason: str | None = None


class EngineSettings(Record):
    """Runtime switches stored in the database: the kill switch blocks every execution;
    observe-only keeps monitoring and proposing but never executes."""

    kill_switch: KillSwitch = Field(default_factory=KillSwitch)
    observe_only: bool = False
    updated_at: UtcDatetime | None = None
    cluster_switches: dict[str, KillSwitch] = Field(
        default_factory=dict, description="per-cluster kill switches, beside the global one"
    )

    def switch_for(self, cluster: str) -> KillSwitch:
        """The kill switch that holds `cluster`'s executions: the global one when it is on,
        else the cluster's own (off when it has none)."""
        if self.kill_switch.on:
            return self.kill_switch
        return self.cluster_switches.get(cluster, KillSwitch())


__all__ = [
    "DEFAULT_CLUSTER",
    "SYSTEM",
    "TERMINAL_STATES",
    "UNFINISHED_EXECUTION",
    "ActionRef",
    "Actor",
    "Approval",
    "Attention",
    "AuditEvent",
    "AuditOutcome",
    "ClusterName",
    "Diagnosis",
    "DiagnosisSource",
    "EngineSettings",
    "Evidence",
    "Execution",
    "ExecutionStatus",
    "Hypothesis",
    "Identity",
    "IdentityKind",
    "Incident",
    "IncidentStatus",
    "JsonDict",
    "KillSwitch",
    "MessageRef",
    "NotProposed",
    "OutboxItem",
    "OutboxStatus",
    "OwnerKind",
    "ProgressNote",
    "Proposal",
    "ProposalOrigin",
    "ProposalState",
    "ProposedAction",
    "Record",
    "RiskLevel",
    "Severity",
    "UtcDatetime",
    "fingerprint",
]
