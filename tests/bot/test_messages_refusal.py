"""`bot.messages.refusal`: a refusal worded from which check refused and what it observed, once
for both surfaces (a Slack mention or the terminal's plain name), never from engine text."""

from __future__ import annotations

from datetime import UTC, datetime

from bot import messages
from bot.render.fmt import approver, who
from engine.model import Identity, KillSwitch, RiskLevel
from engine.results import Decided, Observed, RefusalCheck, RefusalKind, Refused
from tests.bot.records import proposal
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


def test_checks_without_people_show_the_engines_sentence() -> None:
    stale = Refused(reason="proposal P-7 changed since you saw it", kind=RefusalKind.STALE)
    assert stale.check is RefusalCheck.STALE_VERSION  # named from its kind when not given
    assert messages.refusal(stale, who) == "proposal P-7 changed since you saw it"
    assert render(stale) == "Refused: proposal P-7 changed since you saw it"


def test_the_terminal_renders_the_same_refusal_without_slack_syntax() -> None:
    r = refused(RefusalCheck.LOCAL_OPERATOR, actor=Identity.cli("ops@bastion"))
    text = render(r)
    assert text == (
        "Refused: decisions from the command line (ops@bastion) are not enabled; decide in "
        "Slack, or allow the local operator in the approval settings"
    )
    assert RECORD not in text and "<@" not in text
