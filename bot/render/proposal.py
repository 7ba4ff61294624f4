"""The proposal message: the action in words and its parameters, risk, reversibility and undo,
the preflight checks with what was observed, the dry-run preview (what PD will be asked and what
will move), who proposed it, when it expires, and Approve / Reject buttons (a confirm dialog for
high risk). Once decided, the buttons give way to who decided, when, and the outcome so far; an
expired proposal says so. Also the answer to `--dry-run`. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from bot import callbacks
from bot.render import action as act
from bot.render import fmt
from bot.render.kit import (
    Rendered,
    actions,
    button,
    code,
    confirm,
    context,
    esc,
    fields,
    header,
    rendered,
    section,
    sentence,
)
from bot.render.limits import cap_items, clip
from engine.clock import utc
from engine.model import (
    AuditEvent,
    Execution,
    Proposal,
    ProposalOrigin,
    ProposalState,
    RiskLevel,
)
from operator_tikv.sentences import join_sentences

MAX_CHECKS = 20
MAX_REQUESTS = 10

S = ProposalState

STATE_WORDS = {
    S.PROPOSED: "waiting for approval",
    S.APPROVED: "approved",
    S.EXECUTING: "running",
    S.SUCCEEDED: "succeeded",
    S.FAILED: "failed",
    S.UNVERIFIED: "sent and accepted, not verified",
    S.REJECTED: "rejected",
    S.EXPIRED: "expired without approval",
    S.CANCELLED: "cancelled",
}


def is_open_for_decision(proposal: Proposal, now: datetime) -> bool:
    """Whether the message should offer Approve / Reject."""
    return proposal.state is S.PROPOSED and utc(now) < proposal.expires_at


def _proposer(proposal: Proposal) -> str:
    text = fmt.origin_text(proposal.proposed_by)
    if proposal.origin is ProposalOrigin.UNDO:
        text += " (undo)"
    if not proposal.requested_by.same_as(proposal.proposed_by):
        text += f", requested by {fmt.who(proposal.requested_by)}"
    return text


def _reversible(proposal: Proposal) -> str:
    text = act.action_text(proposal.action, proposal.params)
    undo = esc(text.undo) if text is not None else ""
    if proposal.reversible:
        return f"yes; undo: {undo}" if undo else "yes"
    return f"no; {undo}" if undo else "no"


def _checks_section(proposal: Proposal) -> str:
    checks = act.preview_checks(proposal.preflight, proposal.preview)
    if not checks:
        return (
            "*Preflight checks:* not run yet; they run against fresh cluster state right "
            "before execution."
        )
    failed = sum(1 for c in checks if not c.get("ok"))
    warned = sum(1 for c in checks if c.get("ok") and c.get("warning"))
    summary = "all passed" if failed == 0 else f"{failed} failed"
    if warned:
        summary += f", {warned} warning{'s' if warned > 1 else ''}"
    lines = cap_items(act.check_lines(checks), MAX_CHECKS, "checks")
    return (
        f"*Preflight checks* ({len(checks)}, {summary}; run again right before execution)\n"
        + "\n".join(lines)
    )


def _requests_code(requests: list[str]) -> str:
    return code(cap_items(requests, MAX_REQUESTS, "requests") or ["(no request)"], "requests", 1800)


def _preview_section(proposal: Proposal) -> str:
    requests = act.request_lines(proposal.action, proposal.params, proposal.preview)
    parts = ["*Dry run:* PD will be asked:"]
    parts.append(_requests_code(requests))
    effect = act.expected_effect(proposal.preview)
    if effect:
        parts.append(f"*Expected effect:* {esc(effect)}")
    return "\n".join(parts)


def _approvals(proposal: Proposal, now: datetime) -> str:
    return ", ".join(f"{fmt.who(a.by)} at {fmt.at(a.at, now)}" for a in proposal.approvals)


def _decided(proposal: Proposal, now: datetime) -> str:
    when = fmt.at(proposal.decided_at or proposal.updated_at, now)
    return f"{fmt.who(proposal.decided_by)} at {when}"


def status_line(
    proposal: Proposal,
    now: datetime,
    *,
    execution: Execution | None = None,
    approvals_needed: int = 1,
) -> str:
    """Where the proposal stands, as one short paragraph."""
    state = proposal.state
    icon = fmt.STATE_ICON[state]
    approved = f"Approved by {_approvals(proposal, now)}" if proposal.approvals else "Approved"
    if state is S.PROPOSED:
        if utc(now) >= proposal.expires_at:
            return (
                f":hourglass: *Expired* at {fmt.at(proposal.expires_at, now)} without approval; "
                "it can no longer be approved."
            )
        count = len(proposal.approvals)
        if count:
            missing = max(approvals_needed - count, 1)
            return (
                f"{icon} *Waiting for {missing} more approval{'s' if missing != 1 else ''}*: "
                f"approved so far by {_approvals(proposal, now)}. "
                f"Expires {fmt.until(proposal.expires_at, now)}."
            )
        needed = (
            f"{approvals_needed} approvals from different people"
            if approvals_needed > 1
            else "one approval"
        )
        return (
            f"{icon} *Waiting for approval* ({needed}). "
            f"Expires {fmt.until(proposal.expires_at, now)}."
        )
    if state is S.APPROVED:
        return f"{icon} *{approved}.* It runs after its preflight checks pass again."
    if state is S.EXECUTING:
        progress = None
        if execution is not None:
            progress = f"Running for {fmt.duration(execution.started_at, now)}"
            if execution.progress:
                progress += f": {esc(execution.progress[-1].message)}"
        return join_sentences(f"{icon} *Running.*", approved, progress)
    if state is S.SUCCEEDED:
        outcome = f": {esc(proposal.outcome)}" if proposal.outcome else ""
        return join_sentences(
            f"{icon} *Succeeded* at {fmt.at(proposal.updated_at, now)}{outcome}",
            approved,
            "Details in the thread.",
        )
    if state is S.UNVERIFIED:
        return join_sentences(
            f"{icon} *Sent and accepted, not verified* at {fmt.at(proposal.updated_at, now)}",
            approved,
            "PD accepted the request but could not be read to verify it: what to check is in "
            "the thread.",
        )
    if state is S.FAILED:
        outcome = f": {esc(proposal.outcome)}" if proposal.outcome else ""
        return join_sentences(
            f"{icon} *Failed* at {fmt.at(proposal.updated_at, now)}{outcome}",
            approved,
            "PD's answer and what to do next are in the thread.",
        )
    if state is S.REJECTED:
        reason = f": “{esc(proposal.decision_reason)}”" if proposal.decision_reason else ""
        return f"{icon} *Rejected* by {_decided(proposal, now)}{reason}. Nothing was sent to PD."
    if state is S.EXPIRED:
        return (
            f"{icon} *Expired* at {fmt.at(proposal.expires_at, now)} without the approvals it "
            f"needed. Nothing was sent to PD. If it is still needed, propose it again: "
            f"`{esc(act.command_line(proposal.action, proposal.params))}`"
        )
    reason = f": “{esc(proposal.decision_reason)}”" if proposal.decision_reason else ""
    return f"{icon} *Cancelled* by {_decided(proposal, now)}{reason}. Nothing was sent to PD."


def decision_buttons(proposal: Proposal) -> Any:
    """Approve / Reject, carrying only the proposal ID and the version shown."""
    value = callbacks.ButtonValue(proposal.id, proposal.version).encode()
    title = act.short_title(proposal.action, proposal.params)
    high = proposal.risk is RiskLevel.HIGH
    approve_confirm = None
    if high:
        text = act.action_text(proposal.action, proposal.params)
        body = f"{esc(text.title) if text else esc(title)}. This is a high-risk action."
        if text is not None and text.reversible:
            body += f" Undo: {esc(text.undo)}"
        approve_confirm = confirm(
            title=f"Approve {proposal.id}: {title}?", text=body, ok="Approve", danger=True
        )
    return actions(
        callbacks.block_id("decide", proposal.id, proposal.version),
        [
            button(
                "Approve",
                action_id=callbacks.APPROVE,
                value=value,
                style="primary",
                confirm_with=approve_confirm,
            ),
            button("Reject", action_id=callbacks.REJECT, value=value, style="danger"),
        ],
    )


def proposal_message(
    proposal: Proposal,
    now: datetime,
    *,
    execution: Execution | None = None,
    approvals_needed: int = 1,
    clusters_named: bool = False,
) -> Rendered:
    """The proposal's own message, for any state (the same message is edited as it moves).
    `clusters_named`: the bot watches several clusters, so the header, the text and a field
    name the proposal's."""
    title = act.short_title(proposal.action, proposal.params)
    described = act.action_text(proposal.action, proposal.params)
    icon = fmt.STATE_ICON[proposal.state]
    named = fmt.cluster_prefix(proposal.cluster, clusters_named)
    blocks: list[Any] = [header(f"{icon} {named}Proposal {proposal.id}: {clip(title, 110)}")]
    what = f"*{esc(described.title if described else title)}*"
    if proposal.reason:
        what += f"\n_Why:_ {esc(proposal.reason)}"
    blocks.append(section(what))
    params = act.param_lines(proposal.action, proposal.params) or ["(none)"]
    pairs = [
        *fmt.cluster_field(proposal.cluster, clusters_named),
        ("Risk", fmt.risk(proposal.risk)),
        ("Reversible", _reversible(proposal)),
        ("Proposed by", _proposer(proposal)),
        ("Parameters", "\n".join(params)),
    ]
    if proposal.state is S.PROPOSED:
        pairs.append(("Expires", fmt.until(proposal.expires_at, now)))
    if proposal.incident_id:
        pairs.append(("Incident", esc(proposal.incident_id)))
    blocks.extend(fields(pairs))
    blocks.append(section(_checks_section(proposal), noun="checks"))
    blocks.append(section(_preview_section(proposal), noun="requests"))
    blocks.append(
        section(
            status_line(proposal, now, execution=execution, approvals_needed=approvals_needed),
            block_id=callbacks.block_id("status", proposal.id, proposal.version),
        )
    )
    if is_open_for_decision(proposal, now):
        blocks.append(decision_buttons(proposal))
    blocks.append(
        context(
            f"{esc(proposal.id)} · version {proposal.version} · `{esc(proposal.action)}` · "
            f"proposed {fmt.at(proposal.created_at, now)}"
        )
    )
    state = STATE_WORDS[proposal.state]
    text = f"{named}Proposal {proposal.id} ({title}, {proposal.risk.value} risk): {state}"
    return rendered(text, blocks)


def proposal_reminder(proposal: Proposal, event: AuditEvent, now: datetime) -> Rendered:
    """A reminder in the thread that a proposal still waits for a decision."""
    title = act.short_title(proposal.action, proposal.params)
    why = sentence(event.reason) if event.reason else f"{esc(proposal.id)} still waits"
    text = (
        f":bell: *Reminder:* {why}. {esc(proposal.id)} ({esc(title)}, {proposal.risk.value} "
        "risk) needs an approver's decision; use the buttons on its message above."
    )
    return rendered(f"Reminder: {proposal.id} ({title}) waits for a decision", [section(text)])


def dry_run_message(
    action: str,
    params: Mapping[str, Any],
    preview: Mapping[str, Any],
    now: datetime,
    *,
    title: str | None = None,
) -> Rendered:
    """The answer to `--dry-run`: the checks, the requests and the expected effect; nothing
    was proposed or sent. `title` defaults to the action's short description."""
    if title is None or params:
        title = act.short_title(action, params)
    else:
        title = title.split(":", 1)[0].strip()
    checks = act.preview_checks([], preview)
    ok = all(bool(c.get("ok")) for c in checks)
    verdict = (
        ":white_check_mark: *Would run:* every check passed."
        if ok
        else ":x: *Would be refused:* a check failed, so nothing would be sent to PD."
    )
    lines = cap_items(act.check_lines(checks), MAX_CHECKS, "checks") or ["(no checks)"]
    requests = act.request_lines(action, params, preview)
    blocks: list[Any] = [
        header(f"Dry run: {clip(title, 130)}"),
        section(f"{verdict}\nNothing was proposed and nothing was sent to PD."),
        section("*Preflight checks*\n" + "\n".join(lines), noun="checks"),
        section(
            "*PD would be asked:*\n"
            + _requests_code(requests)
            + (
                f"\n*Expected effect:* {esc(act.expected_effect(preview))}"
                if act.expected_effect(preview)
                else ""
            ),
            noun="requests",
        ),
        context(
            (
                f"To propose it for approval, run `{esc(act.command_line(action, params))}`"
                if params
                else "To propose it for approval, run the same command without --dry-run"
            )
            + f" · checked {fmt.at(now, now)}"
        ),
    ]
    return rendered(f"Dry run of {title}: {'would run' if ok else 'would be refused'}", blocks)


__all__ = [
    "decision_buttons",
    "dry_run_message",
    "is_open_for_decision",
    "proposal_message",
    "proposal_reminder",
    "status_line",
]
