"""The approval policy: who may approve, reject or cancel which proposal, how many approvals a
high-risk action needs, when unanswered proposals expire, whether low-risk actions approve
themselves, and whether the kill switch or observe-only mode blocks execution.

The policy is configured with plain values (the composition root maps settings onto
`ApprovalPolicy`). Each `check_*` returns a `Decision` (`engine.decision`, re-exported here);
a refused decision carries the audit event to append. The `approve`/`reject`/`cancel`/`start`
helpers check and then call `engine.transitions.transition()`, raising a `Refusal` (with its
audit event) when refused.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from engine.clock import format_time, utc
from engine.decision import Decision, Rule
from engine.model import (
    SYSTEM,
    AuditEvent,
    AuditOutcome,
    EngineSettings,
    Identity,
    IdentityKind,
    KillSwitch,
    Proposal,
    ProposalState,
    RiskLevel,
)
from engine.results import Observed
from engine.transitions import (
    ProposalEvent,
    TransitionResult,
    refusal_audit,
    refusal_record,
    transition,
)

ANYONE = "*"
"""In an approver list: any Slack user of the workspace."""


_STATE_RULES = frozenset({Rule.STATE, Rule.EXPIRED, Rule.DUPLICATE})


class ApprovalPolicy(BaseModel):
    """Approval rules. Approver entries are Slack user IDs (`U…`/`W…`) or user-group IDs
    (`S…`; a user matches when their identity's `groups` contains it) or `*` for anyone.
    `approvers` may approve low- and medium-risk actions; `approvers_high` high-risk ones
    (empty: the same people as `approvers`). With no approvers configured, no Slack user may
    approve."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    approvers: frozenset[str] = frozenset()
    approvers_high: frozenset[str] = frozenset()
    allow_local_operator: bool = False
    self_approve: bool = True
    self_approve_high: bool = False
    high_risk_approvals: int = Field(default=1, ge=1, le=5)
    proposal_ttl: timedelta = Field(default=timedelta(minutes=30), gt=timedelta(0))
    auto_approve_low: bool = False
    silence_needs_approver: bool = True
    """Who may silence an incident (and end a silence): the people who may approve low-risk
    actions (True), or any person (False). Acknowledging is open to any person."""

    # ------------------------------------------------------------------ plain rules

    def approvers_for(self, risk: RiskLevel) -> frozenset[str]:
        if risk is RiskLevel.HIGH and self.approvers_high:
            return self.approvers_high
        return self.approvers

    def approvals_needed(self, risk: RiskLevel) -> int:
        return self.high_risk_approvals if risk is RiskLevel.HIGH else 1

    def expires_at(self, created_at: datetime) -> datetime:
        return utc(created_at) + self.proposal_ttl

    def is_expired(self, proposal: Proposal, now: datetime) -> bool:
        return proposal.state is ProposalState.PROPOSED and utc(now) >= proposal.expires_at

    # ------------------------------------------------------------------ decisions

    def check_approval(self, proposal: Proposal, actor: Identity, now: datetime) -> Decision:
        now = utc(now)
        action = "proposal.approve"
        if proposal.state is not ProposalState.PROPOSED:
            why = refusal_record(proposal, ProposalEvent.APPROVE, now)
            return self._refuse(proposal, actor, now, action, rule=Rule.STATE, why=why)
        if now >= proposal.expires_at:
            why = (
                f"proposal {proposal.id} approve refused: it expired at "
                f"{format_time(proposal.expires_at, now)}"
            )
            return self._refuse(proposal, actor, now, action, rule=Rule.EXPIRED, why=why)
        who = self._authorize(actor, proposal.risk, subject=proposal.id, action=action, now=now)
        if not who.allowed:
            return who
        if actor.same_as(proposal.requested_by) and not self._may_self_approve(proposal.risk):
            why = (
                f"{actor.name} requested proposal {proposal.id}; self-approval of "
                f"{proposal.risk.value}-risk actions is not allowed"
            )
            return self._refuse(proposal, actor, now, action, rule=Rule.SELF_APPROVAL, why=why)
        needed = self.approvals_needed(proposal.risk)
        earlier = proposal.approved_by(actor)
        if earlier is not None:
            missing = max(needed - len(proposal.approvals), 0)
            why = (
                f"{actor.name} already approved proposal {proposal.id} at "
                f"{format_time(earlier.at, now)}; {missing} more needed"
            )
            return self._refuse(proposal, actor, now, action, rule=Rule.DUPLICATE, why=why)
        count = len(proposal.approvals) + 1
        why = f"{who.reason} (approval {count} of {needed})"
        return Decision(allowed=True, reason=why, rule=Rule.ALLOWED)

    def check_rejection(self, proposal: Proposal, actor: Identity, now: datetime) -> Decision:
        """Approvers for the proposal's risk, and its requester, may reject it while proposed."""
        return self._check_decline(proposal, actor, now, ProposalEvent.REJECT)

    def check_cancel(self, proposal: Proposal, actor: Identity, now: datetime) -> Decision:
        """Approvers for the proposal's risk, its requester and the system may cancel it while
        it is proposed or approved (not once it is executing)."""
        return self._check_decline(proposal, actor, now, ProposalEvent.CANCEL)

    def check_execution(
        self, proposal: Proposal, settings: EngineSettings, now: datetime
    ) -> Decision:
        """Whether an approved proposal may start now: the kill switch and observe-only mode
        block every execution."""
        now = utc(now)
        action = "proposal.start"
        if proposal.state is not ProposalState.APPROVED:
            why = refusal_record(proposal, ProposalEvent.START, now)
            return self._refuse(proposal, SYSTEM, now, action, rule=Rule.STATE, why=why)
        switch = settings.switch_for(proposal.cluster)
        if switch.on:
            by = f" by {switch.by.name}" if switch.by else ""
            at = f" at {format_time(switch.at, now)}" if switch.at else ""
            because = f" ({switch.reason})" if switch.reason else ""
            # The audit record's words; people read the sentence `bot.messages.refusal` makes
            # from the same facts (`Observed.kill_switch`).
            why = f"kill switch on{by}{at}{because}; proposal {proposal.id} not started"
            return self._refuse(
                proposal, SYSTEM, now, action, rule=Rule.KILL_SWITCH, why=why, switch=switch
            )
        if settings.observe_only:
            why = f"observe-only mode on; proposal {proposal.id} not started"
            return self._refuse(proposal, SYSTEM, now, action, rule=Rule.OBSERVE_ONLY, why=why)
        return Decision(
            allowed=True, reason="kill switch off and not observe-only", rule=Rule.ALLOWED
        )

    def check_kill_switch(self, actor: Identity, on: bool, now: datetime) -> Decision:
        """Anyone who may approve something may turn the kill switch on (stopping is always
        safe); turning it off needs a high-risk approver."""
        now = utc(now)
        action = "killswitch.on" if on else "killswitch.off"
        if on:
            low = self._authorize(actor, RiskLevel.LOW, subject="engine", action=action, now=now)
            if low.allowed:
                return Decision(allowed=True, reason=low.reason, rule=Rule.ALLOWED)
            high = self._authorize(actor, RiskLevel.HIGH, subject="engine", action=action, now=now)
            return high if high.allowed else low
        return self._authorize(actor, RiskLevel.HIGH, subject="engine", action=action, now=now)

    def check_attention(
        self, actor: Identity, incident_id: str, now: datetime, *, silence: bool
    ) -> Decision:
        """May `actor` acknowledge (`silence=False`) or silence / unsilence (`silence=True`)
        incident `incident_id`? Acknowledging: any person (not Claude, a playbook or the system).
        Silencing: with `silence_needs_approver`, the people who may approve low-risk actions
        (the local operator at the terminal when allowed); otherwise any person."""
        now = utc(now)
        action = "incident.silence" if silence else "incident.acknowledge"
        if actor.kind in (IdentityKind.CLAUDE, IdentityKind.PLAYBOOK, IdentityKind.SYSTEM):
            why = f"{action} of {incident_id} refused: {actor.name} is not a person"
            return self._deny(
                actor, now, action=action, subject=incident_id, rule=Rule.NOT_A_PERSON, why=why
            )
        if not silence or not self.silence_needs_approver:
            return Decision(allowed=True, reason="any person may do this", rule=Rule.ALLOWED)
        decision = self._authorize(
            actor, RiskLevel.LOW, subject=incident_id, action=action, now=now
        )
        if decision.allowed or decision.rule != Rule.NOT_APPROVER:
            return decision
        why = f"{action} of {incident_id} refused: {decision.reason}"
        return self._deny(
            actor,
            now,
            action=action,
            subject=incident_id,
            rule=Rule.NOT_APPROVER,
            why=why,
            risk=RiskLevel.LOW,
        )

    # ------------------------------------------------------------------ check + transition

    def decide(
        self,
        event: ProposalEvent,
        proposal: Proposal,
        actor: Identity,
        now: datetime,
        *,
        expected_version: int | None = None,
        reason: str | None = None,
    ) -> TransitionResult:
        """One decision on a proposal by a person or the system: `approve`, `reject`, `cancel`
        or `expire`, checked by the rule of that decision, then the transition. Raises
        `TransitionError` subclasses for state problems (already approved, expired, same
        person twice) and `PolicyRefusal` for authorization; both carry the audit event of the
        refusal."""
        if event is ProposalEvent.EXPIRE:
            return transition(proposal, event, actor=SYSTEM, now=now)
        checks = {
            ProposalEvent.APPROVE: self.check_approval,
            ProposalEvent.REJECT: self.check_rejection,
            ProposalEvent.CANCEL: self.check_cancel,
        }
        if event not in checks:
            raise ValueError(f"{event.value} is not a decision on a proposal")
        return self._apply(
            checks[event](proposal, actor, now),
            proposal,
            event,
            actor=actor,
            now=now,
            expected_version=expected_version,
            reason=reason,
        )

    def start(
        self, proposal: Proposal, settings: EngineSettings, now: datetime
    ) -> TransitionResult:
        """Check the kill switch / observe-only and move an approved proposal to executing
        (actor: the system)."""
        decision = self.check_execution(proposal, settings, now)
        return self._apply(
            decision,
            proposal,
            ProposalEvent.START,
            actor=SYSTEM,
            now=now,
            expected_version=None,
            reason=None,
        )

    def auto_approve(self, proposal: Proposal, now: datetime) -> TransitionResult | None:
        """With auto-approval of low-risk actions on, the approval of a fresh low-risk proposal
        by the system; otherwise None."""
        if not (
            self.auto_approve_low
            and proposal.risk is RiskLevel.LOW
            and proposal.state is ProposalState.PROPOSED
            and not proposal.approvals
        ):
            return None
        return transition(
            proposal,
            ProposalEvent.APPROVE,
            actor=SYSTEM,
            now=now,
            reason="low-risk actions are approved automatically",
            approvals_needed=1,
            detail={"policy": "auto-approval of low-risk actions is on"},
        )

    # ------------------------------------------------------------------ internals

    def _may_self_approve(self, risk: RiskLevel) -> bool:
        return self.self_approve_high if risk is RiskLevel.HIGH else self.self_approve

    def _authorize(
        self,
        actor: Identity,
        risk: RiskLevel,
        *,
        subject: str | None,
        action: str,
        now: datetime | None,
    ) -> Decision:
        level = f"{risk.value}-risk actions"

        def deny(rule: str, why: str) -> Decision:
            return self._deny(
                actor, now, action=action, subject=subject, rule=rule, why=why, risk=risk
            )

        if actor.kind in (IdentityKind.CLAUDE, IdentityKind.PLAYBOOK):
            why = f"{actor.name} is not a person; only people decide"
            return deny(Rule.NOT_A_PERSON, why)
        if actor.kind is IdentityKind.SYSTEM:
            if action in ("proposal.cancel", "proposal.start"):
                return Decision(allowed=True, reason="the system may do this", rule=Rule.ALLOWED)
            why = (
                "the system approves nothing by itself unless auto-approval of low-risk "
                "actions is on"
            )
            return deny(Rule.NOT_A_PERSON, why)
        if actor.kind is IdentityKind.CLI_USER:
            if self.allow_local_operator:
                why = f"{actor.name} is the local operator, allowed to decide on the command line"
                return Decision(allowed=True, reason=why, rule=Rule.ALLOWED)
            why = f"command-line decisions are not enabled ({actor.name})"
            return deny(Rule.LOCAL_OPERATOR, why)
        allowed = self.approvers_for(risk)
        if ANYONE in allowed:
            return Decision(allowed=True, reason=f"anyone may approve {level}", rule=Rule.ALLOWED)
        if actor.id in allowed:
            return Decision(
                allowed=True,
                reason=f"{actor.name} is an approver for {level}",
                rule=Rule.ALLOWED,
            )
        via = sorted(set(actor.groups) & allowed)
        if via:
            return Decision(
                allowed=True,
                reason=f"{actor.name} is an approver for {level} through {_group(via[0])}",
                rule=Rule.ALLOWED,
            )
        if not allowed:
            why = f"{actor.name} refused: no approvers are configured for {level}"
        else:
            names = ", ".join(_mention(entry) for entry in sorted(allowed))
            why = f"{actor.name} is not an approver for {level} (approvers: {names})"
        return deny(Rule.NOT_APPROVER, why)

    def _check_decline(
        self, proposal: Proposal, actor: Identity, now: datetime, event: ProposalEvent
    ) -> Decision:
        now = utc(now)
        action = f"proposal.{event.value}"
        allowed_states = (
            (ProposalState.PROPOSED,)
            if event is ProposalEvent.REJECT
            else (ProposalState.PROPOSED, ProposalState.APPROVED)
        )
        if proposal.state not in allowed_states:
            why = refusal_record(proposal, event, now)
            return self._refuse(proposal, actor, now, action, rule=Rule.STATE, why=why)
        if actor.same_as(proposal.requested_by) and actor.kind in (
            IdentityKind.SLACK_USER,
            IdentityKind.CLI_USER,
        ):
            return Decision(
                allowed=True,
                reason=f"{actor.name} requested proposal {proposal.id}",
                rule=Rule.ALLOWED,
            )
        return self._authorize(actor, proposal.risk, subject=proposal.id, action=action, now=now)

    def _apply(
        self,
        decision: Decision,
        proposal: Proposal,
        event: ProposalEvent,
        *,
        actor: Identity,
        now: datetime,
        expected_version: int | None,
        reason: str | None,
    ) -> TransitionResult:
        if not decision.allowed and decision.rule in _STATE_RULES:
            # Let the state machine raise its typed error (AlreadyDecided, ProposalExpired,
            # DuplicateApproval) with the same sentence and its own refusal audit event.
            transition(
                proposal,
                event,
                actor=actor,
                now=now,
                approvals_needed=self.approvals_needed(proposal.risk),
            )
        decision.raise_if_refused()
        return transition(
            proposal,
            event,
            actor=actor,
            now=now,
            reason=reason,
            expected_version=expected_version,
            approvals_needed=self.approvals_needed(proposal.risk),
            detail={"policy": decision.reason},
        )

    def _refuse(
        self,
        proposal: Proposal,
        actor: Identity,
        now: datetime,
        action: str,
        *,
        rule: str,
        why: str,
        switch: KillSwitch | None = None,
    ) -> Decision:
        observed = Observed.of_proposal(
            proposal, actor, action.removeprefix("proposal.")
        ).model_copy(
            update={
                "needed": self.approvals_needed(proposal.risk),
                "approvers": tuple(sorted(self.approvers_for(proposal.risk))),
                "kill_switch": switch,
            }
        )
        audit = refusal_audit(
            proposal.id,
            action,
            actor=actor,
            now=now,
            why=why,
            detail={
                "rule": rule,
                "state": proposal.state.value,
                "version": proposal.version,
                "risk": proposal.risk.value,
                "action": proposal.action,
            },
        )
        return Decision(allowed=False, reason=why, rule=rule, audit=audit, observed=observed)

    def _deny(
        self,
        actor: Identity,
        now: datetime | None,
        *,
        action: str,
        subject: str | None,
        rule: str,
        why: str,
        risk: RiskLevel | None = None,
    ) -> Decision:
        named = subject if subject not in (None, "engine") else None
        on_incident = action.startswith("incident.")
        observed = Observed(
            actor=actor,
            event=action.split(".", 1)[1] if "." in action else action,
            proposal_id=None if on_incident else named,
            incident_id=named if on_incident else None,
            risk=risk,
            approvers=tuple(sorted(self.approvers_for(risk))) if risk is not None else (),
        )
        audit = None
        if now is not None:
            audit = AuditEvent(
                at=now,
                actor=actor,
                action=f"{action}.refused",
                subject=subject or "engine",
                detail={"rule": rule},
                outcome=AuditOutcome.REFUSED,
                reason=why,
            )
        return Decision(allowed=False, reason=why, rule=rule, audit=audit, observed=observed)


def _group(group_id: str) -> str:
    return f"group {group_id}"


def _mention(entry: str) -> str:
    """An approver entry in plain words (no surface's syntax: Slack words the list itself from
    `Observed.approvers`): user IDs start with U or W, group IDs with S."""
    if entry.startswith("S"):
        return _group(entry)
    return entry


__all__ = ["ANYONE", "ApprovalPolicy", "Decision", "Rule"]
