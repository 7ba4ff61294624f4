"""The proposal state machine: every (state, event) pair, the sentences of refusals, quorum,
expiry and the retry helper."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

import pytest

from engine.applying import apply_transition
from engine.errors import (
    AlreadyDecided,
    DuplicateApproval,
    NotFound,
    ProposalExpired,
    StaleVersion,
    TransitionError,
)
from engine.model import (
    SYSTEM,
    AuditOutcome,
    Identity,
    Proposal,
    ProposalOrigin,
    ProposalState,
    RiskLevel,
)
from engine.transitions import (
    TRANSITIONS,
    ProposalEvent,
    TransitionResult,
    is_allowed,
    propose,
    refusal_record,
    transition,
)
from tests.plugins.storage import T0, alice, bob, make_proposal

S = ProposalState
E = ProposalEvent

EXPECTED_TABLE = {
    (S.PROPOSED, E.APPROVE): S.APPROVED,
    (S.PROPOSED, E.REJECT): S.REJECTED,
    (S.PROPOSED, E.EXPIRE): S.EXPIRED,
    (S.PROPOSED, E.CANCEL): S.CANCELLED,
    (S.PROPOSED, E.RECORD_PREFLIGHT): S.PROPOSED,
    (S.APPROVED, E.START): S.EXECUTING,
    (S.APPROVED, E.CANCEL): S.CANCELLED,
    (S.APPROVED, E.RECORD_PREFLIGHT): S.APPROVED,
    (S.EXECUTING, E.SUCCEED): S.SUCCEEDED,
    (S.EXECUTING, E.FAIL): S.FAILED,
    (S.EXECUTING, E.RECONCILE_SUCCEEDED): S.SUCCEEDED,
    (S.EXECUTING, E.RECONCILE_FAILED): S.FAILED,
    (S.EXECUTING, E.UNVERIFIED): S.UNVERIFIED,  # issue 18: accepted, reads failed until the end
    (S.EXECUTING, E.RECORD_PREFLIGHT): S.EXECUTING,
}
ALL_PAIRS = list(itertools.product(S, E))
ALLOWED = [pair for pair in ALL_PAIRS if pair in EXPECTED_TABLE]
FORBIDDEN = [pair for pair in ALL_PAIRS if pair not in EXPECTED_TABLE]


def _now_for(event: ProposalEvent) -> object:
    # Expiry is only allowed once due; everything else happens before expiry.
    return T0 + timedelta(minutes=31) if event is E.EXPIRE else T0 + timedelta(minutes=10)


def test_table_is_exactly_the_design() -> None:
    assert dict(TRANSITIONS) == EXPECTED_TABLE
    for state in (S.SUCCEEDED, S.FAILED, S.UNVERIFIED, S.REJECTED, S.EXPIRED, S.CANCELLED):
        assert state.is_terminal
        assert not any(is_allowed(state, event) for event in E)


@pytest.mark.parametrize(("state", "event"), ALLOWED, ids=str)
def test_allowed_transition(state: ProposalState, event: ProposalEvent) -> None:
    proposal = make_proposal(state, version=3)
    now = _now_for(event)
    result = transition(proposal, event, actor=bob(), now=now, reason="because", outcome="done")
    assert result.proposal.state is EXPECTED_TABLE[(state, event)]
    assert result.proposal.version == 4
    assert result.expected_version == 3
    assert result.previous is proposal
    assert result.proposal.updated_at == now
    assert result.audit.action == f"proposal.{event.value}"
    assert result.audit.subject == "P-7"
    assert result.audit.actor == bob()
    assert result.audit.outcome is AuditOutcome.OK
    assert result.audit.detail["from"] == state.value
    assert result.audit.detail["to"] == result.proposal.state.value
    assert result.audit.detail["version"] == 4
    # The input record is untouched (records are frozen).
    assert proposal.state is state and proposal.version == 3


@pytest.mark.parametrize(("state", "event"), FORBIDDEN, ids=str)
def test_forbidden_transition(state: ProposalState, event: ProposalEvent) -> None:
    proposal = make_proposal(state, version=3)
    with pytest.raises(TransitionError) as caught:
        transition(proposal, event, actor=bob(), now=_now_for(event))
    error = caught.value
    assert error.proposal_id == "P-7"
    assert error.state == state.value
    assert error.event == event.value
    assert "proposal P-7" in str(error)
    assert error.audit is not None
    assert error.audit.action == f"proposal.{event.value}.refused"
    assert error.audit.outcome is AuditOutcome.REFUSED
    assert error.audit.reason == str(error)
    assert error.audit.actor == bob()


def test_decisions_on_decided_proposals_are_already_decided() -> None:
    for state in (S.APPROVED, S.EXECUTING, S.SUCCEEDED, S.FAILED, S.REJECTED, S.CANCELLED):
        with pytest.raises(AlreadyDecided):
            transition(make_proposal(state), E.APPROVE, actor=bob(), now=T0)
    with pytest.raises(ProposalExpired):
        transition(make_proposal(S.EXPIRED), E.APPROVE, actor=bob(), now=T0)


def _refusal(proposal: Proposal, event: E, now: datetime) -> TransitionError:
    with pytest.raises(TransitionError) as caught:
        transition(proposal, event, actor=bob(), now=now)
    return caught.value


def test_refusals_carry_what_they_saw_as_data_and_a_plain_record() -> None:
    now = T0 + timedelta(minutes=10)
    approved = make_proposal(S.APPROVED)
    error = _refusal(approved, E.REJECT, now)
    seen = error.observed
    assert seen is not None
    assert (seen.proposal_id, seen.proposal_state, seen.event) == ("P-7", S.APPROVED, "reject")
    assert seen.decided_by == approved.decided_by and seen.decided_at == approved.decided_at
    assert seen.actor == bob() and seen.proposal_version == approved.version
    # the audit record is plain: what was tried, the state, who decided it and when
    assert str(error) == "proposal P-7 reject refused: it is approved, by alice at 14:03 UTC"
    assert error.audit is not None and error.audit.reason == str(error)
    assert refusal_record(approved, E.APPROVE, now + timedelta(days=1)).endswith(
        "by alice at 2024-05-01 14:03 UTC"
    )
    rejected = _refusal(make_proposal(S.REJECTED), E.APPROVE, now).observed
    assert rejected is not None and rejected.decision_reason == "not now"
    expired = _refusal(make_proposal(S.EXPIRED), E.APPROVE, now)
    assert isinstance(expired, ProposalExpired) and expired.observed is not None
    assert expired.observed.expires_at == make_proposal(S.EXPIRED).expires_at


def test_approve_records_decision() -> None:
    now = T0 + timedelta(minutes=2)
    result = transition(make_proposal(), E.APPROVE, actor=alice(), now=now, reason="looks right")
    new = result.proposal
    assert new.state is S.APPROVED
    assert new.decided_by == alice() and new.decided_at == now
    assert new.decision_reason == "looks right"
    assert [a.by for a in new.approvals] == [alice()]
    assert result.audit.detail["approvals"] == 1 and result.audit.detail["approvals_needed"] == 1


def test_quorum_of_two_keeps_proposed_until_second_person() -> None:
    proposal = make_proposal(risk=RiskLevel.HIGH)
    first = transition(proposal, E.APPROVE, actor=alice(), now=T0, approvals_needed=2)
    assert first.proposal.state is S.PROPOSED
    assert first.proposal.version == 2
    assert first.proposal.decided_by is None
    assert first.state_changed is False
    assert len(first.proposal.approvals) == 1

    # The same person (even seen with different groups or name) does not count twice.
    alice_again = Identity.slack("U1ALICE", name="Alice Liddell")
    with pytest.raises(DuplicateApproval) as caught:
        transition(first.proposal, E.APPROVE, actor=alice_again, now=T0, approvals_needed=2)
    assert (
        str(caught.value)
        == "Alice Liddell already approved proposal P-7 at 14:00 UTC; 1 more needed"
    )
    assert caught.value.audit is not None

    second = transition(first.proposal, E.APPROVE, actor=bob(), now=T0, approvals_needed=2)
    assert second.proposal.state is S.APPROVED
    assert second.proposal.decided_by == bob()
    assert [a.by.key for a in second.proposal.approvals] == ["slack:U1ALICE", "slack:U2BOB"]
    assert second.proposal.version == 3


def test_approve_after_expiry_time_is_refused_even_if_not_yet_marked_expired() -> None:
    proposal = make_proposal()
    with pytest.raises(ProposalExpired, match="it expired at 14:30 UTC"):
        transition(proposal, E.APPROVE, actor=alice(), now=T0 + timedelta(minutes=30))
    # One second earlier it is fine.
    ok = transition(proposal, E.APPROVE, actor=alice(), now=T0 + timedelta(minutes=29, seconds=59))
    assert ok.proposal.state is S.APPROVED


def test_expire_only_when_due() -> None:
    proposal = make_proposal()
    with pytest.raises(TransitionError, match="does not expire until 14:30 UTC"):
        transition(proposal, E.EXPIRE, actor=SYSTEM, now=T0 + timedelta(minutes=29))
    result = transition(proposal, E.EXPIRE, actor=SYSTEM, now=T0 + timedelta(minutes=30))
    assert result.proposal.state is S.EXPIRED
    assert result.proposal.decision_reason == "no approval within 30 min"
    assert result.audit.reason == "no approval within 30 min"


def test_expected_version_mismatch_is_stale_but_state_refusal_wins() -> None:
    proposal = make_proposal(version=2)
    with pytest.raises(StaleVersion) as stale:
        transition(proposal, E.APPROVE, actor=alice(), now=T0, expected_version=1)
    assert (stale.value.expected, stale.value.actual, stale.value.seen) == (1, 2, True)
    assert transition(proposal, E.APPROVE, actor=alice(), now=T0, expected_version=2)
    # A stale button on an already-approved proposal gets the more useful refusal.
    with pytest.raises(AlreadyDecided, match="approve refused: it is approved, by alice"):
        transition(
            make_proposal(S.APPROVED, version=2), E.APPROVE, actor=bob(), now=T0, expected_version=1
        )


def test_outcome_and_preflight_recorded() -> None:
    running = make_proposal(S.EXECUTING)
    done = transition(running, E.SUCCEED, actor=SYSTEM, now=T0, outcome="leader moved to store 2")
    assert done.proposal.outcome == "leader moved to store 2"
    assert done.audit.detail["outcome"] == "leader moved to store 2"
    checks = [{"name": "target store is Up", "ok": True}]
    checked = transition(
        make_proposal(),
        E.RECORD_PREFLIGHT,
        actor=SYSTEM,
        now=T0,
        preflight=checks,
        preview={"leaders_to_move": 1},
    )
    assert checked.proposal.state is S.PROPOSED
    assert checked.proposal.preflight == checks
    assert checked.proposal.preview == {"leaders_to_move": 1}
    assert checked.proposal.version == 2


def test_unknown_event_is_refused() -> None:
    with pytest.raises(TransitionError, match="unknown proposal event 'launch'"):
        transition(make_proposal(), "launch", actor=alice(), now=T0)


def test_event_accepts_plain_strings() -> None:
    assert transition(make_proposal(), "reject", actor=bob(), now=T0).proposal.state is S.REJECTED


def test_propose_builds_version_one_with_expiry_and_audit() -> None:
    result = propose(
        proposal_id="P-1",
        action="drain-store",
        params={"store_id": 4},
        risk=RiskLevel.HIGH,
        origin=ProposalOrigin.USER,
        proposed_by=alice(),
        now=T0,
        ttl=timedelta(minutes=30),
        reversible=True,
    )
    assert result.previous is None and result.expected_version is None
    assert result.proposal.state is S.PROPOSED and result.proposal.version == 1
    assert result.proposal.requested_by == alice()
    assert result.proposal.expires_at == T0 + timedelta(minutes=30)
    assert result.audit.action == "proposal.created"
    assert result.audit.detail["params"] == {"store_id": 4}


class _MemoryRepo:
    """A dict-backed store with the compare-and-set semantics of ProposalRepo.apply."""

    def __init__(self, proposal: Proposal) -> None:
        self.proposals = {proposal.id: proposal}
        self.audits: list[object] = []
        self.interleave: Proposal | None = None

    async def get(self, proposal_id: str) -> Proposal | None:
        return self.proposals.get(proposal_id)

    async def apply(self, result: TransitionResult) -> Proposal:
        if self.interleave is not None:  # someone else wins the race just before us
            self.proposals[self.interleave.id] = self.interleave
            self.interleave = None
        current = self.proposals[result.proposal.id]
        if current.version != result.expected_version:
            raise StaleVersion("lost", record_id=current.id, expected=0, actual=current.version)
        self.proposals[current.id] = result.proposal
        self.audits.append(result.audit)
        return result.proposal


async def test_apply_transition_rereads_after_lost_race() -> None:
    repo = _MemoryRepo(make_proposal())
    winner = transition(make_proposal(), E.APPROVE, actor=alice(), now=T0).proposal
    repo.interleave = winner
    with pytest.raises(AlreadyDecided) as caught:
        await apply_transition(repo, "P-7", lambda p: transition(p, E.APPROVE, actor=bob(), now=T0))
    assert (
        str(caught.value) == "proposal P-7 approve refused: it is approved, by alice at 14:00 UTC"
    )
    assert caught.value.observed is not None and caught.value.observed.decided_by == alice()
    assert repo.proposals["P-7"].decided_by == alice()


async def test_apply_transition_saves_and_reports_unknown_ids() -> None:
    repo = _MemoryRepo(make_proposal())

    async def build(p: Proposal) -> TransitionResult:
        return transition(p, E.REJECT, actor=bob(), now=T0, reason="wrong store")

    result = await apply_transition(repo, "P-7", build)
    assert repo.proposals["P-7"].state is S.REJECTED
    assert repo.audits == [result.audit]
    with pytest.raises(NotFound, match="proposal P-99 not found"):
        await apply_transition(repo, "P-99", build)
