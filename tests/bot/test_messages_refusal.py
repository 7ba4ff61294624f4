"""`bot.messages.refusal`: a refusal worded from which check refused and what it observed, once
for both surfaces (a Slack mention or the terminal's plain name), never from engine text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot import messages
from bot.render.fmt import approver, who
from engine.errors import TransitionError
from engine.model import Identity, KillSwitch, ProposalState, RiskLevel
from engine.refusals import as_refused
from engine.results import Decided, Observed, RefusalCheck, RefusalKind, Refused
from engine.transitions import ProposalEvent, transition
from tests.bot.records import proposal
from tests.plugins.storage import T0, make_proposal
from tests.plugins.storage import bob as storage_bob
from tikvops.outcome_text import plain_name, render

NOW = datetime(2026, 5, 1, 14, 10, tzinfo=UTC)
ALICE = Identity.slack("U0ALICE", name="alice")
BOB = Identity.slack("U0BOB")
# The engine's record: the surfaces must not show it for checks they word themselves.
RECORD = "engine record (not shown)"


def refused(check: RefusalCheck, kind: RefusalKind = RefusalKind.POLICY, **seen: object) -> Refused:
    return Refused(reason=RECORD, kind=kind, check=check, observed=Observed.model_validate(seen))


def test_not_approver_names_the_approvers_per_surface() -> None:
    r = refused(
        RefusalCheck.NOT_APPROVER,
        actor=BOB,
        risk=RiskLevel.HIGH,
        approvers=("S0SRE", "U0ALICE"),
    )
    assert messages.refusal(r, who, approver) == (
        "<@U0BOB> is not an approver for high-risk actions; ask one of <!subteam^S0SRE>, <@U0ALICE>"
    )
    assert messages.refusal(r, plain_name) == (
        "slack:U0BOB is not an approver for high-risk actions; ask one of group S0SRE, U0ALICE"
    )
    nobody = refused(RefusalCheck.NOT_APPROVER, actor=BOB, risk=RiskLevel.LOW)
    assert "no approvers are configured" in messages.refusal(nobody, who, approver)


def test_self_and_second_approval_say_who_and_how_many_are_missing() -> None:
    own = refused(RefusalCheck.SELF_APPROVAL, actor=ALICE, proposal_id="P-7", risk=RiskLevel.HIGH)
    assert messages.refusal(own, who, approver) == (
        "<@U0ALICE> requested proposal P-7 and cannot approve it too: high-risk actions need "
        "someone else's approval"
    )
    twice = refused(
        RefusalCheck.ALREADY_APPROVED,
        RefusalKind.STATE,
        actor=ALICE,
        proposal_id="P-7",
        approvals=1,
        needed=3,
        approved_at=datetime(2026, 5, 1, 14, 3, tzinfo=UTC),
    )
    assert messages.refusal(twice, plain_name, now=NOW) == (
        "alice already approved proposal P-7 at 14:03 UTC; it still needs 2 approvals from "
        "someone else"
    )


def test_switches_are_worded_from_the_switch_seen() -> None:
    switch = KillSwitch(on=True, by=ALICE, at=datetime(2026, 5, 1, 14, 0, tzinfo=UTC), reason="x")
    killed = refused(
        RefusalCheck.KILL_SWITCH, RefusalKind.KILL_SWITCH, proposal_id="P-7", kill_switch=switch
    )
    assert messages.refusal(killed, who, now=NOW) == (
        "the kill switch is on by <@U0ALICE> at 14:00 UTC (x); proposal P-7 stays approved and "
        "will not run until someone turns the kill switch off"
    )
    observing = refused(RefusalCheck.OBSERVE_ONLY, RefusalKind.OBSERVE_ONLY, proposal_id="P-7")
    assert "observe-only mode is turned off" in messages.refusal(observing, plain_name)
    # The decision that the gate held back says the same, from the same data.
    decided = Decided(
        proposal=proposal(),
        decision="approve",
        by=BOB,
        approvals=1,
        needed=1,
        waiting=killed,
    )
    assert messages.decided(decided, who, NOW) == (
        "<@U0BOB> approved proposal P-7 (approval 1 of 1), but "
        + messages.refusal(killed, who, now=NOW)
    )


def test_checks_without_data_show_the_engines_sentence() -> None:
    stale = Refused(reason="proposal P-7 changed since you saw it", kind=RefusalKind.STALE)
    assert stale.check is RefusalCheck.STALE_VERSION  # named from its kind when not given
    assert messages.refusal(stale, who) == "proposal P-7 changed since you saw it"
    assert render(stale) == "Refused: proposal P-7 changed since you saw it"


def _state_refusal(state: ProposalState, event: ProposalEvent, now: datetime) -> Refused:
    """The refusal the state machine gives `bob` trying `event` on a proposal in `state`."""
    with pytest.raises(TransitionError) as caught:
        transition(make_proposal(state), event, actor=storage_bob(), now=now)
    return as_refused(caught.value)


def test_wrong_state_refusals_name_who_decided_per_surface() -> None:
    now = T0 + timedelta(minutes=10)
    approved = _state_refusal(ProposalState.APPROVED, ProposalEvent.APPROVE, now)
    assert approved.check is RefusalCheck.WRONG_STATE
    assert messages.refusal(approved, who, now=now) == (
        "proposal P-7 was already approved by <@U1ALICE> at 14:03 UTC"
    )
    assert messages.refusal(approved, plain_name, now=now) == (
        "proposal P-7 was already approved by alice at 14:03 UTC"
    )
    assert approved.reason not in messages.refusal(approved, who, now=now)  # not the record
    assert "cancel it instead" in messages.refusal(
        _state_refusal(ProposalState.APPROVED, ProposalEvent.REJECT, now), who, now=now
    )
    assert messages.refusal(
        _state_refusal(ProposalState.EXECUTING, ProposalEvent.REJECT, now), who, now=now
    ) == ("proposal P-7 is executing; it cannot be rejected")
    expired = messages.refusal(
        _state_refusal(ProposalState.EXPIRED, ProposalEvent.APPROVE, now), who, now=now
    )
    assert expired.startswith("proposal P-7 expired at 14:30 UTC") and "Propose it again" in expired
    rejected = _state_refusal(ProposalState.REJECTED, ProposalEvent.APPROVE, now)
    assert messages.refusal(rejected, who, now=now) == (
        "proposal P-7 was rejected by <@U2BOB> at 14:04 UTC (not now); it cannot be approved"
    )
    assert messages.refusal(rejected, plain_name, now=now) == (
        "proposal P-7 was rejected by bob at 14:04 UTC (not now); it cannot be approved"
    )
    assert "never runs twice" in messages.refusal(
        _state_refusal(ProposalState.SUCCEEDED, ProposalEvent.START, now), who, now=now
    )
    assert "started before it is approved" in messages.refusal(
        _state_refusal(ProposalState.PROPOSED, ProposalEvent.START, now), who, now=now
    )
    # On another day the date is shown.
    assert "2024-05-01 14:03 UTC" in messages.refusal(approved, who, now=now + timedelta(days=1))


def test_stale_versions_say_what_was_seen_and_what_is_there_now() -> None:
    button = refused(
        RefusalCheck.STALE_VERSION,
        RefusalKind.STALE,
        proposal_id="P-7",
        proposal_state="approved",
        proposal_version=3,
        expected_version=1,
    )
    assert messages.refusal(button, who) == (
        "proposal P-7 changed since you saw it (version 1, now approved, version 3); look at its "
        "latest message and try again"
    )
    raced = button.model_copy(
        update={"observed": button.observed.model_copy(update={"raced": True})}
    )
    assert messages.refusal(raced, plain_name) == (
        "proposal P-7 changed while you were deciding (it is now approved, version 3); look at its "
        "latest message and try again"
    )


def test_incident_refusals_are_worded_from_the_incident_seen() -> None:
    missing = refused(
        RefusalCheck.NOT_FOUND,
        RefusalKind.UNKNOWN,
        actor=ALICE,
        event="acknowledge",
        record_kind="incident",
        incident_id="I-9",
    )
    assert messages.refusal(missing, who).startswith("there is no incident I-9; list the open")
    resolved = refused(
        RefusalCheck.WRONG_STATE,
        RefusalKind.STATE,
        actor=ALICE,
        event="silence",
        incident_id="I-3",
        incident_state="resolved",
        resolved_at=datetime(2026, 5, 1, 14, 2, tzinfo=UTC),
    )
    assert messages.refusal(resolved, who, now=NOW) == (
        "incident I-3 was resolved at 14:02 UTC, so there is nothing to silence; if the problem "
        "is back, a new incident opens by itself"
    )
    busy = refused(RefusalCheck.STALE_VERSION, RefusalKind.STALE, incident_id="I-3", raced=True)
    assert "kept changing while this was saved" in messages.refusal(busy, who)
    no_silence = refused(
        RefusalCheck.NOT_APPROVER,
        actor=BOB,
        event="silence",
        incident_id="I-3",
        risk=RiskLevel.LOW,
        approvers=("S0SRE",),
    )
    assert messages.refusal(no_silence, who, approver) == (
        "<@U0BOB> is not an approver for low-risk actions, so may not silence incident I-3 "
        "(silencing needs the same people); acknowledge it instead, or ask one of "
        "<!subteam^S0SRE> to silence it"
    )


def test_the_terminal_renders_the_same_refusal_without_slack_syntax() -> None:
    r = refused(RefusalCheck.LOCAL_OPERATOR, actor=Identity.cli("ops@bastion"))
    text = render(r)
    assert text == (
        "Refused: decisions from the command line (ops@bastion) are not enabled; decide in "
        "Slack, or allow the local operator in the approval settings"
    )
    assert RECORD not in text and "<@" not in text
