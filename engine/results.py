"""What the engine answers: typed outcomes that Slack, the terminal and tests render.

`Engine.handle()` returns one `Outcome`: a read view (`StatusView`, `StoresView`, `StoreView`,
`RegionView`, `IncidentsView`, `ProposalsView`, `ProposalView`, `AuditView`, `HelpView`), a
`ProposalCreated`, a `DryRunOutcome`, a `Decided`, a `Refused` or a `KillSwitchOutcome`. Every
model is frozen pydantic with a `result` tag, so a surface can switch on it or dump it as JSON
(`model_dump(mode="json")`). Nothing here decides anything. `Decided` and `KillSwitchOutcome`
are data only (who, which approval of how many, the switch settings); a `Refused` names the
check that refused (`RefusalCheck`) and what it observed (`Observed`). The surfaces word them
(`bot.messages`, with a Slack mention or the terminal's plain name). `Refused.reason` is the
engine's plain record (also its audit row's reason), which surfaces show only for the checks
they do not word from the data (parse, invalid, PD, storage); the read views' notes are still
sentences the engine wrote.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from engine.model import (
    ActionRef,
    AuditEvent,
    EngineSettings,
    Execution,
    Identity,
    Incident,
    KillSwitch,
    Proposal,
    ProposalState,
    RiskLevel,
)
from operator_tikv.actions import ActionText, DryRun


class Result(BaseModel):
    """Base of every outcome: immutable."""

    model_config = ConfigDict(frozen=True)


# --------------------------------------------------------------------------- read views


class StoreSummary(Result):
    """One TiKV store as PD reports it, flattened for tables."""

    id: int
    address: str
    state: str = Field(description="PD's state_name: Up, Offline, Down, Disconnected, Tombstone")
    leader_count: int
    region_count: int
    capacity_bytes: int
    available_bytes: int
    used_ratio: float | None
    last_heartbeat: datetime | None
    drained: bool = Field(description="under evict-leader-scheduler")
    version: str = ""
    labels: dict[str, str] = Field(default_factory=dict)


class StatusView(Result):
    """The cluster at a glance: stores, open incidents, proposals in flight, safety switches.
    `pd_error` is set (and `stores` empty) when PD could not be read; the rest still shows."""

    result: Literal["status"] = "status"
    stores: list[StoreSummary]
    state_counts: dict[str, int]
    open_incidents: list[Incident]
    active_proposals: list[Proposal]
    kill_switch: KillSwitch
    observe_only: bool
    pd_error: str | None = None


class StoresView(Result):
    result: Literal["stores"] = "stores"
    stores: list[StoreSummary]


class StoreView(Result):
    """One store, its open incidents and the unfinished proposals that name it."""

    result: Literal["store"] = "store"
    store: StoreSummary
    incidents: list[Incident]
    proposals: list[Proposal]


class PeerSummary(Result):
    peer_id: int
    store_id: int
    role: str
    leader: bool
    down: bool
    pending: bool


class OperatorSummary(Result):
    """The operator PD runs (or ran in the last 10 minutes) on a region."""

    desc: str
    status: str
    brief: str


class RegionView(Result):
    result: Literal["region"] = "region"
    region_id: int
    start_key: str
    end_key: str
    epoch_version: int
    conf_ver: int
    leader_store_id: int | None
    peers: list[PeerSummary]
    approximate_size_mib: int
    approximate_keys: int
    operator: OperatorSummary | None


class IncidentsView(Result):
    result: Literal["incidents"] = "incidents"
    incidents: list[Incident]


class ProposalsView(Result):
    """Proposals not finished yet (proposed, approved, executing), newest first, and the most
    recent finished ones."""

    result: Literal["proposals"] = "proposals"
    proposals: list[Proposal]
    recent: list[Proposal] = Field(default_factory=list)


class ProposalView(Result):
    """One proposal: the record, how the action reads, its execution, its audit history (oldest
    first), and the undo available now (after a successful reversible run)."""

    result: Literal["proposal"] = "proposal"
    proposal: Proposal
    text: ActionText | None
    execution: Execution | None
    history: list[AuditEvent]
    undo: ActionRef | None = None


class AuditView(Result):
    """The last audit records, newest first."""

    result: Literal["audit"] = "audit"
    events: list[AuditEvent]


class HelpView(Result):
    result: Literal["help"] = "help"
    topic: str | None
    text: str


class ClusterHealth(Result):
    """One cluster at a glance (`/tikv clusters`), from its monitor's last cycle: `state` is
    `ok`, `incidents` (open incidents), `pd-unreachable` or `unknown` (no cycle yet)."""

    name: str
    channel: str | None = None
    state: Literal["ok", "incidents", "pd-unreachable", "unknown"]
    stores: int | None = None
    stores_up: int | None = None
    open_incidents: int = 0
    kill_switch: bool = False
    sentence: str = ""


class ClustersView(Result):
    """Every cluster this bot watches, with its health (`/tikv clusters`)."""

    result: Literal["clusters"] = "clusters"
    clusters: tuple[ClusterHealth, ...]

    def lines(self) -> list[str]:
        """One line per cluster: `prod (#tikv-prod): OK, 6 stores Up`."""
        out = []
        for c in self.clusters:
            where = f" (#{c.channel})" if c.channel else ""
            switch = "; kill switch ON" if c.kill_switch else ""
            out.append(f"{c.name}{where}: {c.sentence}{switch}")
        return out


# --------------------------------------------------------------------------- actions


class ProposalCreated(Result):
    """A proposal was stored (state `proposed`, or `approved` when auto-approved) with the dry
    run of its preflight. Nothing was sent to PD."""

    result: Literal["proposal_created"] = "proposal_created"
    proposal: Proposal
    dry_run: DryRun
    auto_approved: bool = False


class DryRunOutcome(Result):
    """A dry run: the preflight checks with what was observed, the exact PD request(s) and the
    expected effect. No proposal was created and nothing was sent."""

    result: Literal["dry_run"] = "dry_run"
    dry_run: DryRun


class RefusalKind(StrEnum):
    """Why something was refused, for surfaces that colour or count refusals."""

    PARSE = "parse"  # the words did not make a command
    INVALID = "invalid"  # unknown action or parameters that do not fit it
    PREFLIGHT = "preflight"  # a preflight check failed against the live cluster
    POLICY = "policy"  # the approval policy does not allow this person to do this
    KILL_SWITCH = "kill_switch"
    OBSERVE_ONLY = "observe_only"
    STATE = "state"  # the proposal is not in a state where this can happen
    STALE = "stale"  # the proposal changed since the person saw it
    UNKNOWN = "unknown"  # no such proposal, store or region
    DUPLICATE = "duplicate"  # this request ID was already handled
    PD = "pd"  # PD could not be read or refused
    STORAGE = "storage"  # the database could not be used


class RefusalCheck(StrEnum):
    """Which check refused (finer than `RefusalKind`): surfaces word a refusal from this and
    `Observed`."""

    PARSE = "parse"
    INVALID = "invalid"
    PREFLIGHT = "preflight"  # `Observed.failed_checks` names the preflight checks that failed
    NOT_APPROVER = "not_approver"
    SELF_APPROVAL = "self_approval"
    NOT_A_PERSON = "not_a_person"
    LOCAL_OPERATOR = "local_operator"
    ALREADY_APPROVED = "already_approved"  # the same person approving twice
    EXPIRED = "expired"
    WRONG_STATE = "wrong_state"
    KILL_SWITCH = "kill_switch"
    OBSERVE_ONLY = "observe_only"
    STALE_VERSION = "stale_version"
    NOT_FOUND = "not_found"
    DUPLICATE_REQUEST = "duplicate_request"
    PD = "pd"
    STORAGE = "storage"
    CHANNEL = "channel"  # a surface's own rule (e.g. a Slack channel not allowed)


class Observed(Result):
    """What the refusing check saw, as data. Every field is optional: a check fills what it
    looked at. `approvers` are the configured approver entries (Slack user IDs, user-group IDs,
    `*`) for the proposal's risk; `approved_at` is when `actor` approved before (a second
    approval). `event` is what was tried (approve, reject, cancel, expire, start...);
    `decided_by`/`decided_at`/`decision_reason` who decided the proposal, when and why;
    `updated_at` its last change and `expires_at` its expiry. For a stale version:
    `expected_version` is the version the person saw (a button) or the engine read, and `raced`
    is True when the engine lost a compare-and-set race while deciding (not an old button).
    For an incident: `incident_id`, `incident_state` and `resolved_at`; for a store or region
    looked up: `store_id` or `region_id`."""

    actor: Identity | None = None
    proposal_id: str | None = None
    proposal_state: ProposalState | None = None
    proposal_version: int | None = None
    expected_version: int | None = None
    risk: RiskLevel | None = None
    approvals: int | None = None
    needed: int | None = None
    approved_by: tuple[Identity, ...] = ()
    approved_at: datetime | None = None
    approvers: tuple[str, ...] = ()
    kill_switch: KillSwitch | None = None
    failed_checks: tuple[str, ...] = ()
    record_kind: str | None = None
    request_id: str | None = None
    event: str | None = None
    decided_by: Identity | None = None
    decided_at: datetime | None = None
    decision_reason: str | None = None
    updated_at: datetime | None = None
    expires_at: datetime | None = None
    raced: bool = False
    incident_id: str | None = None
    incident_state: str | None = None
    resolved_at: datetime | None = None
    store_id: int | None = None  # a store the check looked for (`record_kind` "store")
    region_id: int | None = None  # a region the check looked for (`record_kind` "region")

    @classmethod
    def of_proposal(
        cls, proposal: Proposal, actor: Identity | None = None, event: str | None = None
    ) -> Observed:
        """What a check on `proposal` saw of it: its state and version, who decided it and
        when (with their reason), its approvals so far and `actor`'s own earlier approval.
        `event` is what was tried (approve, reject, cancel, expire, start...)."""
        earlier = proposal.approved_by(actor) if actor is not None else None
        return cls(
            actor=actor,
            event=event,
            proposal_id=proposal.id,
            proposal_state=proposal.state,
            proposal_version=proposal.version,
            risk=proposal.risk,
            approvals=len(proposal.approvals),
            approved_by=tuple(a.by for a in proposal.approvals),
            approved_at=earlier.at if earlier is not None else None,
            decided_by=proposal.decided_by,
            decided_at=proposal.decided_at,
            decision_reason=proposal.decision_reason,
            updated_at=proposal.updated_at,
            expires_at=proposal.expires_at,
        )

    @property
    def missing(self) -> int | None:
        """Approvals still needed (None when the check did not count them)."""
        if self.approvals is None or self.needed is None:
            return None
        return max(0, self.needed - self.approvals)


_KIND_CHECKS = {
    RefusalKind.PARSE: RefusalCheck.PARSE,
    RefusalKind.INVALID: RefusalCheck.INVALID,
    RefusalKind.PREFLIGHT: RefusalCheck.PREFLIGHT,
    RefusalKind.POLICY: RefusalCheck.NOT_APPROVER,
    RefusalKind.KILL_SWITCH: RefusalCheck.KILL_SWITCH,
    RefusalKind.OBSERVE_ONLY: RefusalCheck.OBSERVE_ONLY,
    RefusalKind.STATE: RefusalCheck.WRONG_STATE,
    RefusalKind.STALE: RefusalCheck.STALE_VERSION,
    RefusalKind.UNKNOWN: RefusalCheck.NOT_FOUND,
    RefusalKind.DUPLICATE: RefusalCheck.DUPLICATE_REQUEST,
    RefusalKind.PD: RefusalCheck.PD,
    RefusalKind.STORAGE: RefusalCheck.STORAGE,
}


class Refused(Result):
    """Something was refused: `check` is which check refused and `observed` what it saw (the
    surfaces word the refusal from these); `reason` is the engine's plain record, the same
    one its audit row records, shown for checks a surface does not word itself. `dry_run` is
    set for preflight refusals so the failed checks can be shown."""

    result: Literal["refused"] = "refused"
    reason: str
    kind: RefusalKind
    check: RefusalCheck = RefusalCheck.PARSE  # when not given: the check `kind` stands for
    observed: Observed = Field(default_factory=Observed)
    dry_run: DryRun | None = None
    proposal: Proposal | None = None

    @model_validator(mode="before")
    @classmethod
    def _check_from_kind(cls, data: Any) -> Any:
        """A refusal built with only its `kind` names the check that kind stands for."""
        if isinstance(data, dict) and data.get("check") is None and "kind" in data:
            data = {**data, "check": _KIND_CHECKS[RefusalKind(data["kind"])]}
        return data


class Decided(Result):
    """A decision was recorded, as data (the surfaces word it: `bot.messages.decided` for
    Slack, `tikvops.outcome_text` for the terminal). `decision`: approve, reject or cancel,
    by `by`, with the person's `reason`. For an approval: `approvals` of `needed` recorded;
    once the quorum is met, `executing` is True when the execution was started, and
    `waiting` is the gate's refusal as data (check `kill_switch` or `observe_only`, with the
    switch seen) when it was not;
    `auto_execute` False means this engine leaves execution to another process."""

    result: Literal["decided"] = "decided"
    proposal: Proposal
    decision: Literal["approve", "reject", "cancel"]
    by: Identity
    reason: str | None = None
    approvals: int = 0
    needed: int = 0
    executing: bool = False
    auto_execute: bool = True
    waiting: Refused | None = None

    @property
    def missing(self) -> int:
        """Approvals still needed from other people (0 once the quorum is met)."""
        return max(0, self.needed - self.approvals)


class KillSwitchOutcome(Result):
    """The kill switch (and observe-only mode) after the command, as data (worded by
    `bot.messages.switches` for both surfaces); `changed` is False for `status` or when it
    already was in the requested position."""

    result: Literal["kill_switch"] = "kill_switch"
    settings: EngineSettings
    changed: bool
    cluster: str | None = None  # a cluster's own switch was set (None: the global one)


class AttentionChange(StrEnum):
    """What an acknowledge / silence / unsilence did (`Attended.change`)."""

    ACKNOWLEDGED = "acknowledged"  # nobody owned it; now `by` does
    TAKEN_OVER = "taken_over"  # `previous_owner` owned it; now `by` does
    ALREADY_OWNER = "already_owner"  # `by` already owned it: nothing changed
    SILENCED = "silenced"  # silenced until `until` (replacing `previous_until` if set)
    UNSILENCED = "unsilenced"  # the silence was ended early by `by`
    NOT_SILENCED = "not_silenced"  # unsilence of an incident that was not silenced: nothing


class Attended(Result):
    """Who attends to an incident after an acknowledge, silence or unsilence, as data (worded
    by the surfaces). `incident` is the record after the change (with its `attention`);
    `previous_owner` is set when someone took it over; `until` is the silence's end,
    `previous_until` the end of a silence it replaced; `reason` the silence's reason."""

    result: Literal["attended"] = "attended"
    change: AttentionChange
    incident: Incident
    by: Identity
    previous_owner: Identity | None = None
    until: datetime | None = None
    previous_until: datetime | None = None
    reason: str | None = None

    @property
    def changed(self) -> bool:
        return self.change not in (AttentionChange.ALREADY_OWNER, AttentionChange.NOT_SILENCED)


class ExecutionReport(Result):
    """A finished (or still verifying) execution with the proposal it ran and, after a
    successful reversible action, the undo a surface may offer as a button."""

    result: Literal["execution"] = "execution"
    proposal: Proposal
    execution: Execution
    undo: ActionRef | None = None


Outcome = Annotated[
    StatusView
    | StoresView
    | StoreView
    | RegionView
    | IncidentsView
    | ProposalsView
    | ProposalView
    | AuditView
    | HelpView
    | ClustersView
    | ProposalCreated
    | DryRunOutcome
    | Decided
    | Refused
    | KillSwitchOutcome
    | ExecutionReport
    | Attended,
    Field(discriminator="result"),
]
"""Everything `Engine.handle()` can answer."""


__all__ = [
    "Attended",
    "AttentionChange",
    "AuditView",
    "ClusterHealth",
    "ClustersView",
    "Decided",
    "DryRunOutcome",
    "ExecutionReport",
    "HelpView",
    "IncidentsView",
    "KillSwitchOutcome",
    "Observed",
    "OperatorSummary",
    "Outcome",
    "PeerSummary",
    "ProposalCreated",
    "ProposalView",
    "ProposalsView",
    "RefusalCheck",
    "RefusalKind",
    "Refused",
    "RegionView",
    "Result",
    "StatusView",
    "StoreSummary",
    "StoreView",
    "StoresView",
]
