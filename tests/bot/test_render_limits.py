"""Every rendered message passes slack_sdk's validation, Slack's server-side limits (as the
stand-in enforces them) and our extra limits, also with huge inputs; long content is cut
visibly ("… 312 more regions"), never rejected."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slack_sdk.models.blocks import Block

from bot.render import limits
from bot.render.diagnosis import diagnosis_reply
from bot.render.execution import execution_outcome, execution_progress, execution_started
from bot.render.incident import incident_parent
from bot.render.kit import Rendered
from bot.render.proposal import proposal_message
from bot.render.views import outcome_view
from engine.model import (
    AuditEvent,
    Evidence,
    ExecutionStatus,
    Hypothesis,
    ProgressNote,
    ProposalState,
    ProposedAction,
)
from engine.results import (
    AuditView,
    IncidentsView,
    PeerSummary,
    ProposalsView,
    RegionView,
    StoresView,
)
from slackfake.limits import check_blocks as slack_check_blocks
from tests.bot import records
from tests.bot.records import NOW, T0


def assert_valid(message: Rendered) -> None:
    """What Slack would accept: slack_sdk's models validate, the stand-in's server-side checks
    pass, and our own extra limits hold."""
    parsed = Block.parse_all(message.blocks)
    assert [b.to_dict() for b in parsed] == message.blocks  # validates every block and element
    assert slack_check_blocks(message.blocks) == []
    assert limits.check_blocks(message.blocks) == []
    assert limits.check_text(message.text) == []
    assert len(message.text) <= limits.MAX_FALLBACK_TEXT
    assert 0 < len(message.plain) <= limits.MAX_PLAIN_TEXT
    assert slack_check_blocks([]) == []  # plain-text fallback carries no blocks


@pytest.mark.parametrize("name", sorted(records.all_messages()))
def test_every_message_kind_is_valid(name: str) -> None:
    assert_valid(records.all_messages()[name])


# ------------------------------------------------------------------ huge inputs

texts = st.text(min_size=0, max_size=6000)
long_texts = st.text(alphabet=st.characters(codec="utf-8"), min_size=2000, max_size=30_000)
slow = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@slow
@given(title=texts, message=long_texts, regions=st.integers(0, 20_000), extra=st.integers(0, 60))
def test_incident_with_huge_details(title: str, message: str, regions: int, extra: int) -> None:
    details: dict[str, Any] = {
        "message": message,
        "unit": "ms",
        "region_ids": list(range(regions)),
        "address": message[:300],
    }
    details.update({f"detail_{i}_{message[:50]}": i for i in range(extra)})
    incident = records.incident(title=title or "x", details=details, value=1e300)
    diagnosis = records.diagnosis(summary=message)
    proposals = [records.proposal(id=f"P-{i}") for i in range(30)]
    out = incident_parent(incident, NOW, diagnosis=diagnosis, proposals=proposals)
    assert_valid(out)
    if regions > 10:
        assert f"{regions - 10:,} more" in out.plain


@slow
@given(summary=long_texts, n=st.integers(0, 400))
def test_diagnosis_with_many_causes_and_facts(summary: str, n: int) -> None:
    diagnosis = records.diagnosis(
        summary=summary,
        causes=[Hypothesis(statement=summary[:500] + str(i), confidence=0.1) for i in range(n)],
        evidence=[Evidence(fact=f"fact {i} {summary[:200]}", value=i, unit="s") for i in range(n)],
        actions=[ProposedAction(action="drain", params={"store_id": i + 1}) for i in range(n)],
    )
    out = diagnosis_reply(records.incident(), diagnosis, NOW)
    assert_valid(out)
    if n > 15:
        assert "more facts" in out.plain


@slow
@given(
    reason=long_texts,
    checks=st.integers(0, 300),
    requests=st.integers(0, 200),
    state=st.sampled_from(list(ProposalState)),
    unknown_action=st.booleans(),
)
def test_proposal_with_huge_checks_and_preview(
    reason: str, checks: int, requests: int, state: ProposalState, unknown_action: bool
) -> None:
    preview = records.dry_run().model_dump(mode="json")
    preview["requests"] = [
        {"method": "POST", "path": "/pd/api/v1/operators", "body": {"note": reason[:400], "i": i}}
        for i in range(requests)
    ]
    preview["expected_effect"] = reason
    changes: dict[str, Any] = {
        "reason": reason,
        "preflight": [
            {
                "name": f"check-{i}",
                "ok": i % 3 != 0,
                "observed": reason[:300],
                "message": reason[:900],
            }
            for i in range(checks)
        ],
        "preview": preview,
        "decision_reason": reason[:5000] or None,
        "outcome": reason[:5000] or None,
    }
    if unknown_action:
        changes.update(
            action="x" * 500, params={f"p{i}": reason[:100] for i in range(50)}, undo=None
        )
    proposal = records.proposal(state, **changes)
    execution = records.execution(
        error=reason,
        pd_message=reason,
        progress=[ProgressNote(at=T0, message=reason[:2000])] * 50,
    )
    out = proposal_message(proposal, NOW, execution=execution, approvals_needed=3)
    assert_valid(out)
    if checks > 20:
        assert "more checks" in out.plain or "not shown" in out.plain


@slow
@given(text=long_texts, status=st.sampled_from(list(ExecutionStatus)))
def test_execution_replies_with_huge_answers(text: str, status: ExecutionStatus) -> None:
    proposal = records.proposal(ProposalState.SUCCEEDED, outcome=text)
    execution = records.execution(
        status,
        error=text,
        pd_message=text,
        requests=[{"method": "POST", "path": "/x" + text[:500], "body": {"t": text[:900]}}] * 30,
        progress=[
            ProgressNote(at=T0 + timedelta(seconds=i), message=text[:3000]) for i in range(40)
        ],
    )
    for out in (
        execution_started(proposal, execution, NOW),
        execution_progress(proposal, execution, NOW),
        execution_outcome(proposal, execution, NOW),
    ):
        assert_valid(out)


@slow
@given(n=st.integers(0, 3000), text=texts)
def test_read_views_with_thousands_of_rows(n: int, text: str) -> None:
    base = records.stores()[0]
    stores = [base.model_copy(update={"id": i + 1, "address": text[:100] or "a"}) for i in range(n)]
    out = outcome_view(StoresView(stores=stores), NOW, channel_mention="#ops")
    assert_valid(out)
    if n > 100:
        assert "more stores" in out.plain
    events = [
        AuditEvent(at=T0, actor=records.BOB, action=text[:80] or "a", subject="P-1", reason=text)
        for _ in range(min(n, 500))
    ]
    assert_valid(outcome_view(AuditView(events=events), NOW, channel_mention="#ops"))
    incidents = [records.incident(id=f"I-{i}", title=text or "t") for i in range(min(n, 300))]
    assert_valid(outcome_view(IncidentsView(incidents=incidents), NOW, channel_mention="#ops"))
    proposals = [records.proposal(id=f"P-{i}", reason=text) for i in range(min(n, 300))]
    assert_valid(
        outcome_view(
            ProposalsView(proposals=proposals, recent=proposals), NOW, channel_mention="#o"
        )
    )
    peers = [
        PeerSummary(
            peer_id=i,
            store_id=i,
            role=text[:30] or "Voter",
            leader=i == 0,
            down=False,
            pending=True,
        )
        for i in range(min(n, 1000))
    ]
    region = RegionView(
        region_id=1,
        start_key=text,
        end_key=text,
        epoch_version=1,
        conf_ver=1,
        leader_store_id=None,
        peers=peers,
        approximate_size_mib=1,
        approximate_keys=1,
        operator=None,
    )
    assert_valid(outcome_view(region, NOW, channel_mention="#ops"))


def test_mentions_and_links_in_outside_text_are_neutralised() -> None:
    """Text from PD, Claude or users cannot ping @channel or make links."""
    evil = "<!channel> <https://evil.example|click> & <@U0ALICE>"
    diagnosis = records.diagnosis(summary=evil, causes=[Hypothesis(statement=evil)])
    out = diagnosis_reply(records.incident(title=evil), diagnosis, NOW)
    body = str(out.blocks)
    assert "<!channel>" not in body and "<https://" not in body
    assert "&lt;!channel&gt;" in body
