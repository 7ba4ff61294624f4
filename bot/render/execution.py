"""Execution replies for the thread: started (the exact PD requests), progress, and the verified
outcome, with an Undo button when the action can be reversed, or, on failure, PD's own message
and what to do next. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from bot import callbacks
from bot.render import action as act
from bot.render import fmt
from bot.render.kit import Rendered, actions, button, code, confirm, context, esc, rendered, section
from bot.render.limits import cap_items
from engine.model import Execution, ExecutionStatus, Proposal, ProposalState

MAX_REQUESTS = 10

E = ExecutionStatus

NEXT_STEPS = {
    E.FAILED: (
        "Nothing more will be sent for this proposal. Check the cluster with `/tikv status`; "
        "if the action is still needed, propose it again once the cause is fixed."
    ),
    E.TIMED_OUT: (
        "PD accepted the request but the target state was not reached before the deadline; "
        "the change may still be in progress. Check it with `/tikv status` before proposing "
        "anything else."
    ),
    E.RECONCILED_FAILED: (
        "tikvops restarted while this ran and found the change not applied. Nothing was "
        "re-sent. Check the cluster with `/tikv status` and propose it again if still needed."
    ),
}


def _requests(execution: Execution, proposal: Proposal) -> list[str]:
    lines = [act.describe_request(r) for r in execution.requests if isinstance(r, Mapping)]
    return lines or act.request_lines(proposal.action, proposal.params, proposal.preview)


def execution_started(proposal: Proposal, execution: Execution, now: datetime) -> Rendered:
    title = act.short_title(proposal.action, proposal.params)
    sent = bool(execution.requests)
    step = (
        "Sent to PD:"
        if sent
        else "The preflight checks run again on fresh cluster state; if they pass, PD is asked:"
    )
    text = (
        f":arrow_forward: *{esc(proposal.id)} started* at {fmt.at(execution.started_at, now)}: "
        f"{esc(title)} (approved by {fmt.who(proposal.decided_by)}).\n{step}\n"
        + code(cap_items(_requests(execution, proposal), MAX_REQUESTS, "requests"), "requests")
    )
    return rendered(f"{proposal.id} started: {title}", [section(text, noun="requests")])


def execution_progress(proposal: Proposal, execution: Execution, now: datetime) -> Rendered:
    title = act.short_title(proposal.action, proposal.params)
    latest = execution.progress[-1].message if execution.progress else "waiting for PD"
    text = (
        f":hourglass_flowing_sand: *{esc(proposal.id)}* {esc(title)}, running for "
        f"{fmt.duration(execution.started_at, now)}: {esc(latest)}"
    )
    return rendered(f"{proposal.id} running: {latest}", [section(text)])


def _undo_button(proposal: Proposal) -> Any:
    assert proposal.undo is not None
    undo_command = esc(act.command_line(proposal.undo.action, proposal.undo.params))
    undo_title = act.short_title(proposal.undo.action, proposal.undo.params)
    value = callbacks.ButtonValue(proposal.id, proposal.version).encode()
    return actions(
        callbacks.block_id("undo", proposal.id, proposal.version),
        [
            button(
                f"Undo: {undo_title}",
                action_id=callbacks.UNDO,
                value=value,
                confirm_with=confirm(
                    title=f"Propose the undo of {proposal.id}?",
                    text=(
                        f"This proposes `{undo_command}` for approval; nothing runs until "
                        "it is approved."
                    ),
                    ok="Propose undo",
                ),
            )
        ],
    )


def execution_outcome(proposal: Proposal, execution: Execution, now: datetime) -> Rendered:
    """The verified outcome: "leaders on store 4: 1,203 → 0 in 42 s", or the failure with PD's
    message and what to do next."""
    title = act.short_title(proposal.action, proposal.params)
    end = execution.finished_at or execution.updated_at
    took = fmt.duration(execution.started_at, end)
    result = proposal.outcome or (execution.progress[-1].message if execution.progress else "")
    blocks: list[Any] = []
    succeeded = execution.status in (E.SUCCEEDED, E.RECONCILED_SUCCEEDED) or (
        proposal.state is ProposalState.SUCCEEDED
    )
    if succeeded:
        reconciled = (
            " (found done after a restart; nothing was re-sent)"
            if execution.status is E.RECONCILED_SUCCEEDED
            else ""
        )
        text = (
            f":white_check_mark: *{esc(proposal.id)} succeeded* in {took}{reconciled}: {esc(title)}"
        )
        if result:
            text += f"\n*Verified:* {esc(result)} in {took}"
        if execution.pd_message:
            text += f"\n*PD said:* {esc(execution.pd_message)}"
        blocks.append(section(text))
        if proposal.reversible and proposal.undo is not None:
            undo_command = esc(act.command_line(proposal.undo.action, proposal.undo.params))
            blocks.append(_undo_button(proposal))
            blocks.append(context(f"Undo proposes `{undo_command}` for approval."))
        return rendered(f"{proposal.id} succeeded: {result or title}", blocks)
    if execution.status is E.UNVERIFIED or proposal.state is ProposalState.UNVERIFIED:
        return _unverified(proposal, execution, title, took)
    status = execution.status if execution.status in NEXT_STEPS else E.FAILED
    verb = "did not finish in time" if status is E.TIMED_OUT else "failed"
    text = f":x: *{esc(proposal.id)} {verb}* after {took}: {esc(title)}"
    why = execution.error or result
    if why:
        text += f"\n*What happened:* {esc(why)}"
    if execution.pd_message and execution.pd_message not in why:  # not quoted twice
        text += f"\n*PD said:* {esc(execution.pd_message)}"
    text += f"\n*What to do next:* {NEXT_STEPS[status]}"
    blocks.append(section(text))
    return rendered(f"{proposal.id} {verb}: {why or title}", blocks)


def _unverified(proposal: Proposal, execution: Execution, title: str, took: str) -> Rendered:
    """PD accepted the write; reading PD to verify it kept failing until the deadline."""
    why = execution.error or proposal.outcome or ""
    text = f":warning: *{esc(proposal.id)} sent and accepted, not verified* after {took}: "
    text += esc(title)
    if why:
        text += f"\n*What happened:* {esc(why)}"
    text += (
        "\n*What to do next:* look at the cluster before anything else (`/tikv status`); the "
        "request is not sent again."
    )
    blocks: list[Any] = [section(text)]
    if proposal.reversible and proposal.undo is not None:
        undo_command = esc(act.command_line(proposal.undo.action, proposal.undo.params))
        blocks.append(_undo_button(proposal))
        blocks.append(context(f"Undo proposes `{undo_command}` for approval."))
    return rendered(f"{proposal.id} sent and accepted, not verified: {why or title}", blocks)


__all__ = ["NEXT_STEPS", "execution_outcome", "execution_progress", "execution_started"]
