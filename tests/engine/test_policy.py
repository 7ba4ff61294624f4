"""The approval policy: approvers by risk, groups, self-approval, quorum, expiry, auto-approval,
kill switch and observe-only, and the audit events of refusals."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine.errors import (
    AlreadyDecided,
    DuplicateApproval,
    PolicyRefusal,
    ProposalExpired,
    TransitionError,
)
from engine.model import (
    SYSTEM,
    AuditOutcome,
    EngineSettings,
    Identity,
    KillSwitch,
    ProposalState,
    RiskLevel,
)
from engine.policy import ANYONE, ApprovalPolicy, Rule
from engine.switches import KILL_SWITCH, OBSERVE_ONLY, switched
from engine.transitions import ProposalEvent
from tests.plugins.storage import T0, alice, bob, make_proposal

S = ProposalState
CAROL = Identity.slack("U3CAROL", name="carol")
NOW = T0 + timedelta(minutes=5)

POLICY = ApprovalPolicy(
    approvers=frozenset({"U1ALICE", "U2BOB", "U3CAROL"}),
    approvers_high=frozenset({"U1ALICE", "S_SRE"}),
)


def test_approver_for_low_and_medium() -> None:
    for risk in (RiskLevel.LOW, RiskLevel.MEDIUM):
        decision = POLICY.check_approval(make_proposal(risk=risk), bob(), NOW)
        assert decision.allowed, decision.reason
        assert decision.rule == Rule.ALLOWED
        assert decision.audit is None
        assert (
            decision.reason == f"bob is an approver for {risk.value}-risk actions (approval 1 of 1)"
        )


def test_non_approver_is_refused_with_names_and_audit() -> None:
    stranger = Identity.slack("U9NOPE")
    decision = POLICY.check_approval(make_proposal(), stranger, NOW)
    assert not decision.allowed
    assert decision.rule == Rule.NOT_APPROVER
    # The engine's record is plain text; the approvers are data the surfaces word themselves.
    assert decision.reason == (
        "U9NOPE is not an approver for medium-risk actions (approvers: U1ALICE, U2BOB, U3CAROL)"
    )
    assert decision.observed is not None
    assert decision.observed.approvers == ("U1ALICE", "U2BOB", "U3CAROL")
    assert decision.observed.risk is RiskLevel.MEDIUM
    assert decision.audit is not None
    assert decision.audit.action == "proposal.approve.refused"
    assert decision.audit.actor == stranger
    assert decision.audit.subject == "P-7"
    assert decision.audit.outcome is AuditOutcome.REFUSED
    assert decision.audit.reason == decision.reason


def test_high_risk_uses_high_approvers_and_groups() -> None:
    high = make_proposal(risk=RiskLevel.HIGH)
    assert not POLICY.check_approval(high, bob(), NOW).allowed  # bob approves medium only
    assert POLICY.check_approval(high, alice(), NOW).allowed
    sre = Identity.slack("U7DAVE", groups=("S_OTHER", "S_SRE"))
    decision = POLICY.check_approval(high, sre, NOW)
    assert decision.allowed
    assert "through group S_SRE" in decision.reason
    refused = POLICY.check_approval(high, bob(), NOW)
    assert "group S_SRE" in refused.reason  # group entries are shown as groups
    assert refused.observed is not None and "S_SRE" in refused.observed.approvers


def test_high_approvers_default_to_approvers() -> None:
    policy = ApprovalPolicy(approvers=frozenset({"U2BOB"}))
    assert policy.check_approval(make_proposal(risk=RiskLevel.HIGH), bob(), NOW).allowed


def test_no_approvers_configured_means_nobody_and_star_means_anyone() -> None:
    nobody = ApprovalPolicy()
    decision = nobody.check_approval(make_proposal(), bob(), NOW)
    assert not decision.allowed and "no approvers are configured" in decision.reason
    anyone = ApprovalPolicy(approvers=frozenset({ANYONE}))
    assert anyone.check_approval(make_proposal(risk=RiskLevel.HIGH), bob(), NOW).allowed


def test_self_approval_of_high_risk_is_refused_by_default() -> None:
    own_high = make_proposal(risk=RiskLevel.HIGH, requested_by=alice())
    decision = POLICY.check_approval(own_high, alice(), NOW)
    assert not decision.allowed
    assert decision.rule == Rule.SELF_APPROVAL
    assert decision.reason == (
        "alice requested proposal P-7; self-approval of high-risk actions is not allowed"
    )
    with pytest.raises(PolicyRefusal) as caught:
        POLICY.decide(ProposalEvent.APPROVE, own_high, alice(), NOW)
    assert caught.value.rule == Rule.SELF_APPROVAL
    assert caught.value.audit is not None
    # Low/medium: allowed by default; both switches configurable.
    own_medium = make_proposal(risk=RiskLevel.MEDIUM, requested_by=bob())
    assert POLICY.check_approval(own_medium, bob(), NOW).allowed
    strict = POLICY.model_copy(update={"self_approve": False})
    assert strict.check_approval(own_medium, bob(), NOW).rule == Rule.SELF_APPROVAL
    lenient = POLICY.model_copy(update={"self_approve_high": True})
    assert lenient.check_approval(own_high, alice(), NOW).allowed


def test_two_approvals_for_high_risk_same_person_counts_once() -> None:
    policy = POLICY.model_copy(update={"high_risk_approvals": 2})
    sre = Identity.slack("U7DAVE", groups=("S_SRE",))
    proposal = make_proposal(risk=RiskLevel.HIGH)
    first = policy.decide(ProposalEvent.APPROVE, proposal, alice(), NOW)
    assert first.proposal.state is S.PROPOSED
    assert first.audit.detail["policy"].endswith("(approval 1 of 2)")

    decision = policy.check_approval(first.proposal, alice(), NOW)
    assert decision.rule == Rule.DUPLICATE
    assert decision.reason.endswith("; 1 more needed")
    assert decision.observed is not None
    assert (decision.observed.approvals, decision.observed.needed) == (1, 2)
    with pytest.raises(DuplicateApproval):
        policy.decide(ProposalEvent.APPROVE, first.proposal, alice(), NOW)

    second = policy.decide(ProposalEvent.APPROVE, first.proposal, sre, NOW)
    assert second.proposal.state is S.APPROVED
    assert second.audit.detail["policy"].endswith("(approval 2 of 2)")
    # Low risk still needs one.
    assert (
        policy.decide(
            ProposalEvent.APPROVE, make_proposal(risk=RiskLevel.LOW), bob(), NOW
        ).proposal.state
        is S.APPROVED
    )


def test_expiry() -> None:
    proposal = make_proposal()
    assert POLICY.expires_at(T0) == T0 + timedelta(minutes=30)
    assert not POLICY.is_expired(proposal, T0 + timedelta(minutes=29))
    with pytest.raises(TransitionError):  # not due yet
        POLICY.decide(ProposalEvent.EXPIRE, proposal, SYSTEM, T0 + timedelta(minutes=29))
    late = T0 + timedelta(minutes=30)
    decision = POLICY.check_approval(proposal, bob(), late)
    assert decision.rule == Rule.EXPIRED and "expired at 14:30 UTC" in decision.reason
    with pytest.raises(ProposalExpired):
        POLICY.decide(ProposalEvent.APPROVE, proposal, bob(), late)
    expired = POLICY.decide(ProposalEvent.EXPIRE, proposal, bob(), late)
    assert expired.proposal.state is S.EXPIRED
    assert expired.audit.actor == SYSTEM
    short = ApprovalPolicy(proposal_ttl=timedelta(minutes=5))
    assert short.expires_at(T0) == T0 + timedelta(minutes=5)


def test_already_approved_is_refused_with_who_and_when() -> None:
    approved = make_proposal(S.APPROVED)
    decision = POLICY.check_approval(approved, bob(), NOW)
    assert decision.rule == Rule.STATE
    assert decision.reason == "proposal P-7 approve refused: it is approved, by alice at 14:03 UTC"
    seen = decision.observed
    assert seen is not None and seen.proposal_state is S.APPROVED and seen.event == "approve"
    assert (seen.decided_by, seen.decided_at) == (approved.decided_by, approved.decided_at)
    with pytest.raises(AlreadyDecided, match="it is approved, by alice at 14:03 UTC") as caught:
        POLICY.decide(ProposalEvent.APPROVE, approved, bob(), NOW)
    assert caught.value.observed is not None and caught.value.observed.decided_by == alice()


def test_auto_approval_of_low_risk() -> None:
    low = make_proposal(risk=RiskLevel.LOW)
    assert POLICY.auto_approve(low, NOW) is None  # off by default
    auto = POLICY.model_copy(update={"auto_approve_low": True})
    result = auto.auto_approve(low, NOW)
    assert result is not None
    assert result.proposal.state is S.APPROVED and result.proposal.decided_by == SYSTEM
    assert auto.auto_approve(make_proposal(risk=RiskLevel.MEDIUM), NOW) is None
    # The system cannot approve through the normal path.
    assert POLICY.check_approval(low, SYSTEM, NOW).rule == Rule.NOT_A_PERSON


def test_claude_and_playbooks_never_approve() -> None:
    for bot in (Identity.claude("claude-x"), Identity.playbook("store-down")):
        decision = POLICY.check_approval(make_proposal(risk=RiskLevel.LOW), bot, NOW)
        assert not decision.allowed and decision.rule == Rule.NOT_A_PERSON


def test_local_operator_needs_explicit_flag() -> None:
    me = Identity.cli("alice@laptop")
    decision = POLICY.check_approval(make_proposal(), me, NOW)
    assert decision.rule == Rule.LOCAL_OPERATOR
    assert decision.reason == "command-line decisions are not enabled (alice@laptop)"
    local = POLICY.model_copy(update={"allow_local_operator": True})
    assert local.check_approval(make_proposal(risk=RiskLevel.HIGH), me, NOW).allowed


def test_rejection_and_cancel() -> None:
    proposal = make_proposal(requested_by=Identity.slack("U8REQ"))
    assert (
        POLICY.decide(
            ProposalEvent.REJECT, proposal, bob(), NOW, reason="wrong store"
        ).proposal.state
        is S.REJECTED
    )
    # The requester may withdraw their own proposal even though not an approver.
    assert POLICY.check_rejection(proposal, Identity.slack("U8REQ"), NOW).allowed
    assert POLICY.check_cancel(proposal, Identity.slack("U8REQ"), NOW).allowed
    assert not POLICY.check_rejection(proposal, Identity.slack("U9NOPE"), NOW).allowed
    # Approved: can be cancelled (also by the system), not rejected.
    approved = make_proposal(S.APPROVED)
    assert POLICY.decide(ProposalEvent.CANCEL, approved, SYSTEM, NOW).proposal.state is S.CANCELLED
    refused = POLICY.check_rejection(approved, bob(), NOW)
    assert refused.rule == Rule.STATE and refused.reason.startswith("proposal P-7 reject refused")
    assert refused.observed is not None and refused.observed.event == "reject"
    with pytest.raises(AlreadyDecided):
        POLICY.decide(ProposalEvent.REJECT, approved, bob(), NOW)
    executing = POLICY.check_cancel(make_proposal(S.EXECUTING), bob(), NOW)
    assert executing.reason == "proposal P-7 cancel refused: it is executing, by alice at 14:03 UTC"
    assert executing.observed is not None
    assert (executing.observed.proposal_state, executing.observed.event) == (
        S.EXECUTING,
        "cancel",
    )


def test_kill_switch_and_observe_only_block_execution() -> None:
    approved = make_proposal(S.APPROVED)
    assert POLICY.check_execution(approved, EngineSettings(), NOW).allowed
    assert POLICY.start(approved, EngineSettings(), NOW).proposal.state is S.EXECUTING

    killed = EngineSettings(kill_switch=KillSwitch(on=True, by=alice(), at=T0, reason="PD upgrade"))
    decision = POLICY.check_execution(approved, killed, NOW)
    assert decision.rule == Rule.KILL_SWITCH
    assert decision.reason.startswith(
        "kill switch on by alice at 14:00 UTC (PD upgrade); proposal P-7 not started"
    )
    assert decision.observed is not None and decision.observed.kill_switch == killed.kill_switch
    assert decision.audit is not None and decision.audit.action == "proposal.start.refused"
    with pytest.raises(PolicyRefusal, match="kill switch on"):
        POLICY.start(approved, killed, NOW)

    observing = EngineSettings(observe_only=True)
    assert POLICY.check_execution(approved, observing, NOW).rule == Rule.OBSERVE_ONLY
    assert POLICY.check_execution(make_proposal(), EngineSettings(), NOW).rule == Rule.STATE


def test_switching_the_kill_switch() -> None:
    settings, event = switched(
        POLICY, EngineSettings(), KILL_SWITCH, on=True, actor=bob(), now=NOW, reason="maintenance"
    )
    assert settings.kill_switch.on and settings.kill_switch.by == bob()
    assert event.action == "killswitch.on" and event.reason == "maintenance"
    # Off needs a high-risk approver: bob is not one.
    with pytest.raises(PolicyRefusal) as caught:
        switched(POLICY, settings, KILL_SWITCH, on=False, actor=bob(), now=NOW)
    assert caught.value.audit is not None
    assert caught.value.audit.action == "killswitch.off.refused"
    off, event = switched(POLICY, settings, KILL_SWITCH, on=False, actor=alice(), now=NOW)
    assert not off.kill_switch.on and event.action == "killswitch.off"
    with pytest.raises(PolicyRefusal):
        switched(
            POLICY, EngineSettings(), KILL_SWITCH, on=True, actor=Identity.slack("U9NOPE"), now=NOW
        )

    observing, event = switched(
        POLICY, EngineSettings(), OBSERVE_ONLY, on=True, actor=bob(), now=NOW
    )
    assert observing.observe_only and event.action == "observe_only.on"
    with pytest.raises(PolicyRefusal) as refused:
        switched(POLICY, observing, OBSERVE_ONLY, on=False, actor=bob(), now=NOW)
    assert refused.value.audit is not None
    assert refused.value.audit.action == "observe_only.off.refused"


# ---------------------------------------------------------------- acknowledging and silencing


def test_anyone_may_acknowledge_but_only_approvers_may_silence_by_default() -> None:
    policy = ApprovalPolicy(approvers=frozenset({"S_ONCALL"}))
    assert policy.check_attention(bob(), "I-3", NOW, silence=False).allowed
    assert policy.check_attention(alice(), "I-3", NOW, silence=True).allowed  # via the group
    refused = policy.check_attention(bob(), "I-3", NOW, silence=True)
    assert not refused.allowed and refused.rule == Rule.NOT_APPROVER
    assert "not an approver for low-risk actions" in refused.reason  # the audit record
    seen = refused.observed
    assert seen is not None and (seen.incident_id, seen.event) == ("I-3", "silence")
    assert seen.proposal_id is None and seen.approvers == ("S_ONCALL",)
    assert refused.audit is not None and refused.audit.action == "incident.silence.refused"
    assert refused.audit.subject == "I-3"


def test_silencing_may_be_opened_to_anyone_but_never_to_claude_or_the_system() -> None:
    policy = ApprovalPolicy(approvers=frozenset({"S_ONCALL"}), silence_needs_approver=False)
    assert policy.check_attention(bob(), "I-3", NOW, silence=True).allowed
    for agent in (Identity.claude("claude-x"), SYSTEM):
        for silence in (False, True):
            decision = policy.check_attention(agent, "I-3", NOW, silence=silence)
            assert not decision.allowed and decision.rule == Rule.NOT_A_PERSON


def test_the_local_operator_silences_only_when_allowed_to_decide() -> None:
    operator = Identity.cli("sre@box")
    closed = ApprovalPolicy(approvers=frozenset({"S_ONCALL"}))
    assert closed.check_attention(operator, "I-3", NOW, silence=False).allowed
    refused = closed.check_attention(operator, "I-3", NOW, silence=True)
    assert not refused.allowed and refused.rule == Rule.LOCAL_OPERATOR
    opened = closed.model_copy(update={"allow_local_operator": True})
    assert opened.check_attention(operator, "I-3", NOW, silence=True).allowed
