"""Sentences from the engine and PD end once in the messages: a proposal's outcome that already
ends with a full stop ("...then retry.") is followed by " Approved by", never "retry.. Approved";
the same for progress notes and decisions."""

from __future__ import annotations

from bot import messages
from bot.render.execution import execution_outcome
from bot.render.proposal import proposal_message, status_line
from bot.render.views import outcome_view
from engine.model import ExecutionStatus, Identity, KillSwitch, ProgressNote, ProposalState
from engine.results import Decided, Observed, RefusalKind, Refused
from operator_tikv.errors import PDRejectedError
from tests.bot.records import NOW, execution, proposal
from tests.bot.render_text import text_of

PD_REFUSED = PDRejectedError(
    "region 2008 has abnormal peer", status=500, method="POST", path="/pd/api/v1/operators"
).describe(lead="PD refused the request")


def test_the_pd_refusal_is_composed_once() -> None:
    assert PD_REFUSED.count("PD refused the request") == 1
    assert PD_REFUSED.endswith("then retry.")


def test_a_failed_proposal_ending_with_a_full_stop_is_not_doubled() -> None:
    failed = proposal(ProposalState.FAILED, outcome=PD_REFUSED)
    line = status_line(failed, NOW)
    assert "then retry. Approved by" in line
    assert ".." not in line
    shown = text_of(proposal_message(failed, NOW).blocks)
    assert "retry.." not in shown and "retry. Approved by" in shown


def test_a_succeeded_outcome_with_or_without_a_full_stop_reads_the_same() -> None:
    bare = status_line(proposal(ProposalState.SUCCEEDED, outcome="leaders on store 4: 9 → 0"), NOW)
    ended = status_line(
        proposal(ProposalState.SUCCEEDED, outcome="leaders on store 4: 9 → 0."), NOW
    )
    assert bare == ended
    assert "9 → 0. Approved by" in bare


def test_running_progress_ending_with_a_full_stop_is_not_doubled() -> None:
    run = execution(ExecutionStatus.VERIFYING)
    run = run.model_copy(
        update={"progress": [*run.progress, ProgressNote(at=NOW, message="PD accepted it.")]}
    )
    line = status_line(proposal(ProposalState.EXECUTING), NOW, execution=run)
    assert line.endswith(": PD accepted it.")
    assert ".." not in line


def test_decisions_end_once() -> None:
    assert messages.decision_recorded("approved P-7.") == "Approved P-7."
    assert messages.decision_recorded("approved P-7") == "Approved P-7."
    decided = Decided(
        proposal=proposal(ProposalState.APPROVED),
        decision="approve",
        by=Identity.slack("U0ALICE"),
        approvals=1,
        needed=1,
        waiting=Refused(
            reason="the kill switch is on",
            kind=RefusalKind.KILL_SWITCH,
            observed=Observed(
                proposal_id="P-7",
                kill_switch=KillSwitch(on=True, by=Identity.slack("U0BOB"), reason="review."),
            ),
        ),
    )
    text = text_of(outcome_view(decided, NOW, channel_mention="<#C0OPS>").blocks)
    assert text.startswith(":white_check_mark: <@U0ALICE> approved proposal P-7 (approval 1 of")
    # Worded from the data: who turned the switch on (a Slack mention) and what happens next.
    assert ", but the kill switch is on by <@U0BOB> (review.); proposal P-7 stays approved" in text
    assert text.endswith("until someone turns the kill switch off.") and ".." not in text


def test_pds_words_are_quoted_once_in_a_failed_execution() -> None:
    failed = proposal(ProposalState.FAILED, outcome=PD_REFUSED)
    run = execution(
        ExecutionStatus.FAILED, error=PD_REFUSED, pd_message="region 2008 has abnormal peer"
    )
    text = text_of(execution_outcome(failed, run, NOW).blocks)
    assert text.count("region 2008 has abnormal peer") == 1
    assert "*What happened:* PD refused the request: PD said 'region 2008" in text
