"""The Engine facade against the simulator: commands become proposals (never direct writes),
preflight refusals create nothing, the approval policy decides, every decision and refusal is
audited, the notifier hears every change, kill switch, observe-only, expiry and redelivered
requests."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from bot import messages
from bot.render.fmt import approver, who
from engine.commands import parse_command
from engine.model import AuditOutcome, ExecutionStatus, ProposalOrigin, ProposalState
from engine.policy import ApprovalPolicy
from engine.results import (
    Decided,
    DryRunOutcome,
    HelpView,
    KillSwitchOutcome,
    ProposalCreated,
    RefusalCheck,
    RefusalKind,
    Refused,
)
from tests.engine.test_service_support import (
    ALICE,
    BOB,
    CAROL,
    MALLORY,
    OPERATOR,
    POLICY,
    engine_on,
)
from tests.engine.words import handle_text
from tests.plugins.sim import SimFactory
from tikvops.outcome_text import plain_name


def slack_words(decided: Decided) -> str:
    """How Slack words the decision (the engine returns it as data)."""
    return messages.decided(decided, who)


def slack_refusal(refused: Refused) -> str:
    """How Slack words a refusal (from which check refused and what it saw)."""
    return messages.refusal(refused, who, approver)


EVICT_4 = ("POST", "/pd/api/v1/schedulers", {"name": "evict-leader-scheduler", "store_id": 4})


async def test_dry_run_shows_checks_request_and_effect_and_creates_nothing(
    sim_factory: SimFactory, db_path: Path
) -> None:
    sim = await sim_factory(stores=4)
    async with engine_on(sim, db_path) as h:
        leaders = sim.cluster.store(4).leader_count
        outcome = await handle_text(h.engine, "drain 4 --dry-run", ALICE)
        assert isinstance(outcome, DryRunOutcome)
        dry = outcome.dry_run
        assert dry.would_run
        assert [c.name for c in dry.preflight.checks] == [
            "store-exists",
            "store-up",
            "not-drained",
            "drained-stores-limit",
            "enough-leader-stores",
            "healthy-voters-elsewhere",
            "leader-load",
        ]
        assert dry.preflight.checks[4].observed == "3 other Up store(s) can take leaders (1, 2, 3)"
        assert dry.preflight.checks[-1].observed.startswith("leaders after the drain, estimated")
        assert [r.describe() for r in dry.requests] == [
            'POST /pd/api/v1/schedulers {"name": "evict-leader-scheduler", "store_id": 4}'
        ]
        assert dry.expected_effect.startswith(f"{leaders:,} leaders would move off store 4")
        assert await h.repos.proposals.list() == []
        assert h.writes() == []
        assert h.notifier.calls == []


async def test_an_action_command_creates_a_proposal_and_never_executes_directly(
    sim_factory: SimFactory, db_path: Path
) -> None:
    sim = await sim_factory(stores=4)
    async with engine_on(sim, db_path) as h:
        outcome = await handle_text(h.engine, "drain 4", BOB)
        assert isinstance(outcome, ProposalCreated)
        proposal = outcome.proposal
        assert proposal.id == "P-1"
        assert proposal.state is ProposalState.PROPOSED
        assert proposal.action == "drain"
        assert proposal.params == {"store_id": 4}
        assert proposal.origin is ProposalOrigin.USER
        assert proposal.requested_by == BOB
        assert proposal.undo is not None
        assert (proposal.undo.action, proposal.undo.params) == ("undrain", {"store_id": 4})
        assert proposal.preflight[0]["name"] == "store-exists"
        assert all(c["ok"] for c in proposal.preflight)
        assert proposal.preview is not None
        assert proposal.preview["requests"][0]["body"] == EVICT_4[2]
        assert proposal.expires_at - proposal.created_at == timedelta(minutes=30)

        sim.cluster.advance(60)
        assert h.writes() == []
        assert await h.repos.executions.get("P-1") is None
        await h.engine.wait_idle()  # the surfaces hear the events from the log
        assert h.notifier.names() == ["proposal_made"]
        events = await h.repos.audit.list_recent(subject="P-1")
        assert [(e.action, e.actor) for e in events] == [("proposal.created", BOB)]


async def test_a_failed_preflight_creates_no_proposal_and_says_why(sim: Any, db_path: Path) -> None:
    # Store 2 stopped heartbeating: a store that is not Up is not drained.
    sim.faults.stop_store(2)
    sim.cluster.advance(25)
    async with engine_on(sim, db_path) as h:
        outcome = await handle_text(h.engine, "drain 2", BOB)
        assert isinstance(outcome, Refused)
        assert outcome.kind is RefusalKind.PREFLIGHT
        assert outcome.reason.startswith("Refused drain: store 2 is Disconnected (last heartbeat ")
        assert outcome.reason.endswith("Wait until it is Up again. Nothing was sent to PD.")
        assert outcome.dry_run is not None
        assert [c.name for c in outcome.dry_run.preflight.failures] == ["store-up"]
        assert await h.repos.proposals.list() == []
        assert h.writes() == []
        refused = await h.repos.audit.list_recent(action_prefix="proposal.create")
        assert len(refused) == 1
        assert refused[0].action == "proposal.create.refused"
        assert refused[0].outcome is AuditOutcome.REFUSED
        assert refused[0].actor == BOB
        assert refused[0].reason == outcome.reason
        assert refused[0].detail["failed"] == ["store-up"]


async def test_unknown_store_and_bad_words_are_refused_with_the_reason(
    sim: Any, db_path: Path
) -> None:
    async with engine_on(sim, db_path) as h:
        missing = await handle_text(h.engine, "drain 9", BOB)
        assert isinstance(missing, Refused) and missing.kind is RefusalKind.PREFLIGHT
        assert "store 9 does not exist (known stores: 1, 2, 3)" in missing.reason

        words = await handle_text(h.engine, "drain four", BOB)
        assert isinstance(words, Refused) and words.kind is RefusalKind.PARSE
        assert words.reason == (
            "store ID must be a whole number, got 'four'. Usage: /tikv drain <store-id> [--dry-run]"
        )
        cli_words = await h.engine.handle(parse_command("drain", prog="tikvops"), OPERATOR)
        assert isinstance(cli_words, Refused)
        assert cli_words.reason.endswith("Usage: tikvops drain <store-id> [--dry-run]")

        unknown = await h.engine.propose("reboot", {}, actor=BOB, origin=ProposalOrigin.CLAUDE)
        assert isinstance(unknown, Refused) and unknown.kind is RefusalKind.INVALID
        assert unknown.reason.startswith("Unknown action 'reboot'.")
        invalid = await h.engine.propose(
            "limit", {"kind": "leader", "value": -1}, actor=BOB, origin=ProposalOrigin.CLAUDE
        )
        assert isinstance(invalid, Refused) and invalid.kind is RefusalKind.INVALID
        assert "leader limit must be between 0 and 1024" in invalid.reason
        assert await h.repos.proposals.list() == []
        assert h.writes() == []


async def test_help_is_written_for_the_surface(sim: Any, db_path: Path) -> None:
    async with engine_on(sim, db_path) as h:
        slack = await handle_text(h.engine, "help drain", BOB)
        cli = await handle_text(h.engine, "help drain", OPERATOR)
        assert isinstance(slack, HelpView) and isinstance(cli, HelpView)
        assert slack.text.startswith("Usage: /tikv drain <store-id> [--dry-run]")
        assert cli.text.startswith("Usage: tikvops drain <store-id> [--dry-run]")


async def test_non_approver_is_refused_audited_and_nothing_changes(
    sim_factory: SimFactory, db_path: Path
) -> None:
    sim = await sim_factory(stores=4)
    async with engine_on(sim, db_path) as h:
        created = await handle_text(h.engine, "drain 4", BOB)
        assert isinstance(created, ProposalCreated)
        refused = await h.engine.approve("P-1", MALLORY)
        assert isinstance(refused, Refused)
        assert refused.kind is RefusalKind.POLICY
        assert refused.check is RefusalCheck.NOT_APPROVER
        assert (refused.observed.actor, refused.observed.approvers) == (
            MALLORY,
            ("U1ALICE", "U2BOB"),
        )
        assert "<@" not in refused.reason  # the engine writes no Slack syntax
        assert slack_refusal(refused) == (
            "<@U9MALLORY> is not an approver for high-risk actions; ask one of <@U1ALICE>, <@U2BOB>"
        )
        proposal = await h.repos.proposals.get("P-1")
        assert proposal is not None and proposal.state is ProposalState.PROPOSED
        assert proposal.version == 1
        events = await h.repos.audit.list_recent(subject="P-1")
        assert events[0].action == "proposal.approve.refused"
        assert events[0].actor == MALLORY
        assert events[0].reason == refused.reason
        assert h.writes() == []


async def test_self_approval_of_a_high_risk_action_is_refused(
    sim_factory: SimFactory, db_path: Path
) -> None:
    sim = await sim_factory(stores=4)
    async with engine_on(sim, db_path) as h:
        await handle_text(h.engine, "drain 4", ALICE)
        refused = await h.engine.approve("P-1", ALICE)
        assert isinstance(refused, Refused) and refused.kind is RefusalKind.POLICY
        assert refused.check is RefusalCheck.SELF_APPROVAL
        assert refused.observed.actor == ALICE and refused.observed.proposal_id == "P-1"
        assert refused.reason == (
            "alice requested proposal P-1; self-approval of high-risk actions is not allowed"
        )
        assert slack_refusal(refused) == (
            "<@U1ALICE> requested proposal P-1 and cannot approve it too: high-risk actions "
            "need someone else's approval"
        )
        decided = await h.engine.approve("P-1", BOB)
        assert isinstance(decided, Decided) and decided.executing
        assert (decided.decision, decided.by, decided.approvals, decided.needed) == (
            "approve",
            BOB,
            1,
            1,
        )
        assert slack_words(decided) == (
            "<@U2BOB> approved proposal P-1 (approval 1 of 1); executing now"
        )
        await h.engine.wait_idle()
        assert h.writes() == [EVICT_4]


async def test_high_risk_needs_the_configured_number_of_approvals(
    sim_factory: SimFactory, db_path: Path
) -> None:
    sim = await sim_factory(stores=4)
    policy = POLICY.model_copy(update={"high_risk_approvals": 2})
    async with engine_on(sim, db_path, policy=policy) as h:
        await handle_text(h.engine, "drain 4", CAROL)
        first = await h.engine.approve("P-1", ALICE)
        assert isinstance(first, Decided) and not first.executing
        assert (first.approvals, first.needed, first.missing) == (1, 2, 1)
        assert slack_words(first) == (
            "<@U1ALICE> approved proposal P-1 (approval 1 of 2); it needs 1 more approval from "
            "someone else"
        )
        again = await h.engine.approve("P-1", ALICE)
        assert isinstance(again, Refused) and again.kind is RefusalKind.STATE
        assert again.check is RefusalCheck.ALREADY_APPROVED
        assert (again.observed.approvals, again.observed.needed) == (1, 2)
        assert again.observed.approved_by == (ALICE,)
        assert again.reason.startswith("alice already approved proposal P-1 at ")
        assert slack_refusal(again).startswith("<@U1ALICE> already approved proposal P-1 at ")
        assert slack_refusal(again).endswith("it still needs 1 approval from someone else")
        await h.engine.wait_idle()
        assert h.writes() == []
        second = await h.engine.approve("P-1", BOB)
        assert isinstance(second, Decided) and second.executing
        await h.engine.wait_idle()
        assert h.writes() == [EVICT_4]
        proposal = await h.repos.proposals.get("P-1")
        assert proposal is not None
        assert [a.by for a in proposal.approvals] == [ALICE, BOB]
        assert proposal.state is ProposalState.SUCCEEDED


async def test_reject_records_who_and_why_and_blocks_later_approval(
    sim: Any, db_path: Path
) -> None:
    async with engine_on(sim, db_path) as h:
        await handle_text(h.engine, "limit leader 8", CAROL)
        rejected = await handle_text(h.engine, "reject P-1 not during the sale", BOB)
        assert isinstance(rejected, Decided)
        assert (rejected.decision, rejected.reason) == ("reject", "not during the sale")
        assert slack_words(rejected) == (
            "<@U2BOB> rejected proposal P-1 (not during the sale); nothing was sent to PD"
        )
        assert rejected.proposal.state is ProposalState.REJECTED
        late = await h.engine.approve("P-1", ALICE)
        assert isinstance(late, Refused) and late.kind is RefusalKind.STATE
        assert late.check is RefusalCheck.WRONG_STATE
        assert late.observed.proposal_state is ProposalState.REJECTED
        assert late.observed.decided_by == BOB and late.observed.event == "approve"
        assert late.observed.decision_reason == "not during the sale"
        assert late.reason.startswith("proposal P-1 approve refused: it is rejected, by bob at ")
        events = await h.repos.audit.list_recent(subject="P-1")
        assert [e.action for e in reversed(events)] == [
            "proposal.created",
            "proposal.reject",
            "proposal.approve.refused",
        ]
        assert events[1].reason == "not during the sale"
        assert h.writes() == []


async def test_a_stale_button_is_refused_with_the_current_state(sim: Any, db_path: Path) -> None:
    policy = POLICY.model_copy(update={"high_risk_approvals": 2})
    async with engine_on(sim, db_path, policy=policy) as h:
        await handle_text(h.engine, "limit leader 8", CAROL)
        await h.engine.reject("P-1", BOB, reason="no")
        stale = await h.engine.approve("P-1", ALICE, expected_version=1)
        assert isinstance(stale, Refused) and stale.kind is RefusalKind.STATE
        assert stale.check is RefusalCheck.WRONG_STATE and stale.observed.decided_by == BOB

        await handle_text(h.engine, "drain 3", CAROL)  # refused by preflight: 3 stores
        await handle_text(h.engine, "limit region 100", CAROL)  # P-2
        moved = await h.engine.reject("P-2", BOB, expected_version=7)
        assert isinstance(moved, Refused) and moved.kind is RefusalKind.STALE
        assert moved.observed.raced is False  # an old button, not a lost race
        assert moved.check is RefusalCheck.STALE_VERSION
        assert (moved.observed.expected_version, moved.observed.proposal_version) == (7, 1)


async def test_unknown_proposal_is_refused(sim: Any, db_path: Path) -> None:
    async with engine_on(sim, db_path) as h:
        outcome = await handle_text(h.engine, "approve P-42", ALICE)
        assert isinstance(outcome, Refused) and outcome.kind is RefusalKind.UNKNOWN
        assert outcome.check is RefusalCheck.NOT_FOUND and outcome.observed.proposal_id == "P-42"
        assert messages.refusal(outcome, who) == (
            "there is no proposal P-42; list proposals with `/tikv proposals`"
        )


async def test_redelivered_request_is_handled_once(sim: Any, db_path: Path) -> None:
    async with engine_on(sim, db_path) as h:
        first = await handle_text(h.engine, "limit leader 8", CAROL, request_id="cmd-1")
        again = await handle_text(h.engine, "limit leader 8", CAROL, request_id="cmd-1")
        assert isinstance(first, ProposalCreated)
        assert isinstance(again, Refused) and again.kind is RefusalKind.DUPLICATE
        assert again.reason == "request cmd-1 was already handled; it is not applied twice"
        assert len(await h.repos.proposals.list()) == 1

        approved = await h.engine.approve("P-1", ALICE, request_id="click-1")
        retried = await h.engine.approve("P-1", ALICE, request_id="click-1")
        assert isinstance(approved, Decided)
        assert isinstance(retried, Refused) and retried.kind is RefusalKind.DUPLICATE
        await h.engine.wait_idle()
        assert len(h.writes()) == 1
        assert "request.duplicate" in await h.audit_actions("P-1")


async def test_unanswered_proposals_expire_and_cannot_be_approved(sim: Any, db_path: Path) -> None:
    async with engine_on(sim, db_path) as h:
        await handle_text(h.engine, "limit leader 8", CAROL)
        await handle_text(h.engine, "limit region 100", CAROL)
        await h.engine.approve("P-2", ALICE)
        await h.engine.wait_idle()
        sim.cluster.advance(29 * 60)
        assert await h.engine.expire_due() == []
        sim.cluster.advance(61)
        expired = await h.engine.expire_due()
        assert [p.id for p in expired] == ["P-1"]
        assert expired[0].state is ProposalState.EXPIRED
        assert expired[0].decision_reason == "no approval within 30 min"
        late = await h.engine.approve("P-1", ALICE)
        assert isinstance(late, Refused) and late.kind is RefusalKind.STATE
        assert late.observed.proposal_state is ProposalState.EXPIRED
        assert late.observed.expires_at == expired[0].expires_at
        assert ("proposal_changed" in h.notifier.names()) is True
        assert "proposal.expire" in h.notifier.changes()
        assert await h.engine.expire_due() == []


async def test_kill_switch_blocks_execution_says_why_and_resumes_when_off(
    sim: Any, db_path: Path
) -> None:
    async with engine_on(sim, db_path) as h:
        on = await handle_text(h.engine, "kill-switch on bad deploy", ALICE)
        assert isinstance(on, KillSwitchOutcome) and on.changed
        assert on.settings.kill_switch.on
        assert on.settings.kill_switch.by == ALICE
        assert on.settings.kill_switch.reason == "bad deploy"
        assert messages.switches(on.settings, who) == (
            "The kill switch is ON by <@U1ALICE> (bad deploy): nothing will execute until it is "
            "turned off."
        )
        await handle_text(h.engine, "limit leader 8", CAROL)
        decided = await h.engine.approve("P-1", BOB)
        assert isinstance(decided, Decided) and not decided.executing
        assert decided.waiting is not None
        assert decided.waiting.check is RefusalCheck.KILL_SWITCH
        switch = decided.waiting.observed.kill_switch
        assert switch is not None and (switch.by, switch.reason) == (ALICE, "bad deploy")
        assert slack_words(decided).startswith(
            "<@U2BOB> approved proposal P-1 (approval 1 of 1), but the kill switch is on by "
            "<@U1ALICE>"
        )
        assert "(bad deploy); proposal P-1 stays approved" in slack_words(decided)
        await h.engine.wait_idle()
        assert h.writes() == []
        status = await handle_text(h.engine, "kill-switch status", MALLORY)
        assert isinstance(status, KillSwitchOutcome) and not status.changed
        assert status.settings.kill_switch.on

        denied = await h.engine.set_kill_switch(False, MALLORY)
        assert isinstance(denied, Refused) and denied.kind is RefusalKind.POLICY
        assert "killswitch.off.refused" in [
            e.action for e in await h.repos.audit.list_recent(subject="engine")
        ]

        off = await h.engine.set_kill_switch(False, ALICE)
        assert isinstance(off, KillSwitchOutcome) and not off.settings.kill_switch.on
        await h.engine.wait_idle()
        assert h.writes() == [("POST", "/pd/api/v1/config/schedule", {"leader-schedule-limit": 8})]
        execution = await h.repos.executions.get("P-1")
        assert execution is not None and execution.status is ExecutionStatus.SUCCEEDED
        actions = [e.action for e in reversed(await h.repos.audit.list_recent(limit=100))]
        assert actions.index("killswitch.on") < actions.index("proposal.start.refused")
        assert actions.index("killswitch.off") < actions.index("proposal.start")


async def test_observe_only_keeps_proposing_but_never_executes(sim: Any, db_path: Path) -> None:
    async with engine_on(sim, db_path) as h:
        switched = await h.engine.set_observe_only(True, ALICE, "read-only week")
        assert isinstance(switched, KillSwitchOutcome) and switched.settings.observe_only
        created = await handle_text(h.engine, "limit leader 8", CAROL)
        assert isinstance(created, ProposalCreated)
        decided = await h.engine.approve("P-1", BOB)
        assert isinstance(decided, Decided) and not decided.executing
        assert decided.waiting is not None
        assert decided.waiting.check is RefusalCheck.OBSERVE_ONLY
        assert "observe-only mode" in slack_words(decided)
        await h.engine.wait_idle()
        assert h.writes() == []


async def test_low_risk_auto_approval_does_not_touch_medium_risk(sim: Any, db_path: Path) -> None:
    policy = POLICY.model_copy(update={"auto_approve_low": True})
    async with engine_on(sim, db_path, policy=policy) as h:
        created = await handle_text(h.engine, "limit leader 8", CAROL)
        assert isinstance(created, ProposalCreated) and not created.auto_approved
        assert created.proposal.state is ProposalState.PROPOSED
        assert h.writes() == []


async def test_the_notifier_hears_every_change_of_a_run(
    sim_factory: SimFactory, db_path: Path
) -> None:
    sim = await sim_factory(stores=4)
    async with engine_on(sim, db_path) as h:
        await handle_text(h.engine, "drain 4", CAROL)
        await h.engine.approve("P-1", BOB)
        await h.engine.wait_idle()
        assert h.notifier.names()[0] == "proposal_made"
        assert h.notifier.changes() == ["proposal.approve", "proposal.start", "proposal.succeed"]
        final = [arg for name, arg in h.notifier.calls if name == "proposal_changed"][-1]
        assert final[0].state is ProposalState.SUCCEEDED
        assert final[1].detail["undo"] == {"action": "undrain", "params": {"store_id": 4}}
        progress = [arg[1] for name, arg in h.notifier.calls if name == "execution_progress"]
        assert progress[0].status is ExecutionStatus.VERIFYING
        assert progress[-1].status is ExecutionStatus.SUCCEEDED


async def test_a_cli_operator_is_refused_unless_the_policy_allows_the_local_operator(
    sim: Any, db_path: Path
) -> None:
    closed = ApprovalPolicy(approvers=frozenset({"U1ALICE"}))
    async with engine_on(sim, db_path, policy=closed) as h:
        await handle_text(h.engine, "limit leader 8", CAROL)
        refused = await handle_text(h.engine, "approve P-1", OPERATOR)
        assert isinstance(refused, Refused) and refused.kind is RefusalKind.POLICY
        assert refused.check is RefusalCheck.LOCAL_OPERATOR
        assert refused.reason == "command-line decisions are not enabled (ops@bastion)"
        assert messages.refusal(refused, plain_name) == (
            "decisions from the command line (ops@bastion) are not enabled; decide in Slack, "
            "or allow the local operator in the approval settings"
        )
