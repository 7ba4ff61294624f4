"""Every user-facing sentence of the Slack edge that the engine does not already provide, and the
wording of the engine's outcomes that is shared with the terminal (`decided`, `refusal`,
`switches`: each takes `name`, how the surface names a person). Each one says what happened,
why, and what to do next. Refusals are worded here from their data (which check, what it
observed: people, switches, a proposal's state and version, an incident's state); only parse,
validation, preflight, PD and storage refusals show the engine's own sentence."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from engine.clock import format_time
from engine.model import EngineSettings, Identity, IdentityKind, KillSwitch, ProposalState
from engine.results import Decided, Observed, RefusalCheck, Refused
from operator_tikv.sentences import end_sentence

REFUSAL_HINTS: dict[str, str] = {
    "parse": "Type `/tikv help` for every command, or `/tikv help <command>` for one.",
    "invalid": "Type `/tikv help` to see the actions and their parameters.",
    "preflight": "Nothing was proposed or sent to PD. Fix what the failed check names, or "
    "check the cluster with `/tikv status`.",
    "policy": "Ask an approver, or ask an admin to change the approver settings.",
    "kill_switch": "The kill switch blocks every execution; `/tikv kill-switch status` shows "
    "who turned it on.",
    "observe_only": "An admin can turn observe-only mode off; `/tikv kill-switch status` shows "
    "both switches.",
    "state": "See where it stands with `/tikv proposal <id>`.",
    "stale": "The message you clicked was out of date; use the buttons on its latest version.",
    "unknown": "List what exists with `/tikv proposals`, `/tikv stores` or `/tikv incidents`.",
    "duplicate": "Your first request was handled; nothing was done twice.",
    "pd": "PD could not answer; check that PD is up (`/tikv status`) and try again.",
    "storage": "tikvops could not use its database; an operator should check its logs.",
}

NOT_PROPOSED_HINT = (
    "No proposal means no change: the incident is still watched. Check the cluster with "
    "`/tikv status`, or request an action yourself (`/tikv help`)."
)
"""Under the reply listing a diagnosis' suggested actions that the engine refused to propose."""


def channel_not_allowed(command: str, allowed: str) -> str:
    return (
        f"{command} is not accepted in this channel: tikvops takes commands only in {allowed}, "
        "so that every change is seen by the on-call team. Run it there."
    )


def working(command: str) -> str:
    return f"Working on `{command}`…"


def internal_error(command: str) -> str:
    return (
        f"tikvops hit an internal error while handling `{command}`; it was logged. If it was a "
        "change, check `/tikv proposals` before trying again."
    )


def bad_button(reason: str) -> str:
    return (
        f"This button could not be used: {reason}. Use the buttons on the latest message of "
        "the proposal, or `/tikv proposals`."
    )


def bad_incident_button(reason: str) -> str:
    return (
        f"This button could not be used: {reason}. Use the buttons on the incident's own "
        "message, or `/tikv ack|silence|unsilence <incident-id>` (`/tikv incidents` lists them)."
    )


def command_without_user(command: str) -> str:
    """`command` is a code span made by the caller (it comes from outside)."""
    return (
        f"Slack did not say who sent {command}, so tikvops did nothing: every request is "
        "made by a named person. Send it again; if this keeps happening, an admin should check "
        "the Slack app's configuration."
    )


def command_too_long(length: int, limit: int, usage: str) -> str:
    return (
        f"This command is {length:,} characters long; tikvops reads at most {limit:,}, so it "
        f"did nothing. Usage: `{usage}` (`/tikv help` lists every command)."
    )


def not_our_command(command: str, ours: str) -> str:
    """`command` is a code span made by the caller (it comes from outside)."""
    return (
        f"{command} is not a tikvops command, so nothing was done. tikvops takes `{ours}`; "
        f"type `{ours} help` to see what it can do."
    )


def not_supported(what: str, ours: str) -> str:
    """`what` names the request ("the shortcut `x`"), escaped by the caller."""
    return (
        f"tikvops does not support {what}, so nothing was done. Type `{ours} help` in a channel "
        "to see what it can do."
    )


def form_not_supported(callback_id: str, ours: str) -> str:
    return (
        f"tikvops does not know the form {callback_id} (it may come from an older version), so "
        f"nothing was done. Close this window and type `{ours} help` to see what it can do."
    )


def click_unreadable() -> str:
    return bad_button("Slack's click did not say which button was pressed")


def request_failed(what: str) -> str:
    return (
        f"tikvops could not handle {what}; it was logged and nothing was done. Try again; if it "
        "keeps failing, an operator should check the bot's logs."
    )


def bad_form() -> str:
    return (
        "This form could not be used: it does not carry the proposal it was opened for, so "
        "nothing was rejected. Close it and reject with `/tikv reject <proposal-id> <reason>`."
    )


def reject_modal_title() -> str:
    return "Reject proposal"


def reject_modal_prompt(proposal_id: str) -> str:
    return (
        f"Why reject {proposal_id}? The reason is recorded in the audit log and shown on the "
        "proposal."
    )


def reject_modal_label() -> str:
    return "Reason (optional)"


def undo_proposed(proposal_id: str, undo_id: str, where: str) -> str:
    return (
        f"The undo of {proposal_id} is proposed as {undo_id} in {where}; it runs only once an "
        "approver approves it."
    )


_DECLINED = {"reject": "rejected", "cancel": "cancelled"}


def decided(outcome: Decided, name: Callable[[Identity], str], now: datetime | None = None) -> str:
    """The sentence of a recorded decision, without its final full stop ("<@U1> approved
    proposal P-7 (approval 1 of 1); executing now"). `name` names a person for the surface:
    a Slack mention (`bot.render.fmt.who`) or the terminal's plain name; `now` shortens the
    time the kill switch was turned on, when it holds the run back. The one place this
    sentence is written, for both surfaces."""
    p, by = outcome.proposal, name(outcome.by)
    if outcome.decision != "approve":
        because = f" ({outcome.reason})" if outcome.reason else ""
        return (
            f"{by} {_DECLINED[outcome.decision]} proposal {p.id}{because}; nothing was sent to PD"
        )
    head = f"{by} approved proposal {p.id} (approval {outcome.approvals} of {outcome.needed})"
    if outcome.missing:
        plural = "s" if outcome.missing != 1 else ""
        return f"{head}; it needs {outcome.missing} more approval{plural} from someone else"
    if outcome.waiting is not None:
        return f"{head}, but {refusal(outcome.waiting, name, now=now)}"
    return f"{head}; {'executing now' if outcome.auto_execute else 'ready to execute'}"


def plain_entry(entry: str) -> str:
    """An approver entry (Slack user ID, user-group ID starting with S, or `*`) in plain text."""
    if entry == "*":
        return "anyone"
    return f"group {entry}" if entry.startswith("S") else entry


def refusal(
    refused: Refused,
    name: Callable[[Identity], str],
    entry: Callable[[str], str] = plain_entry,
    now: datetime | None = None,
    prog: str = "/tikv",
) -> str:
    """The sentence of a refusal, without its final full stop, worded from which check refused
    and what it observed (`name` and `entry` name people and approver entries for the surface;
    `now` shortens times of today; `prog` is how the surface writes commands): a proposal's
    state, version, decider, approvals, the switches, an incident's state. Checks not worded
    from data (parse, invalid, preflight, PD, storage) show the engine's plain sentence. The
    one place these sentences are written, for both surfaces."""
    o, check, pid = refused.observed, refused.check, refused.observed.proposal_id
    if o.incident_id is not None:
        about = _incident_refusal(refused, name, entry, now)
        if about is not None:
            return about
    if check is RefusalCheck.NOT_FOUND and o.record_kind == "proposal" and pid:
        return f"there is no proposal {pid}; list proposals with `{prog} proposals`"
    if check is RefusalCheck.NOT_FOUND and o.record_kind == "store" and o.store_id is not None:
        return f"store {o.store_id} does not exist in PD; list the stores with `{prog} stores`"
    if check is RefusalCheck.NOT_FOUND and o.record_kind == "region" and o.region_id is not None:
        return (
            f"region {o.region_id} does not exist in PD (it may have been merged or split); look "
            f"up a store's regions with `{prog} store <id>` or PD's API"
        )
    if check is RefusalCheck.WRONG_STATE and pid and o.proposal_state and o.event:
        return _wrong_state(o, name, now)
    if check is RefusalCheck.EXPIRED and pid and o.expires_at and o.event:
        return (
            f"proposal {pid} expired at {format_time(o.expires_at, now)} without the approvals "
            f"it needed; it cannot be {_VERB.get(o.event, o.event)}. Propose it again if it is "
            "still needed"
        )
    if check is RefusalCheck.STALE_VERSION and pid and o.proposal_version is not None:
        state = f"{o.proposal_state.value}, " if o.proposal_state is not None else ""
        if o.raced:
            return (
                f"proposal {pid} changed while you were deciding (it is now {state}version "
                f"{o.proposal_version}); look at its latest message and try again"
            )
        seen = f"version {o.expected_version}, " if o.expected_version is not None else ""
        return (
            f"proposal {pid} changed since you saw it ({seen}now {state}version "
            f"{o.proposal_version}); look at its latest message and try again"
        )
    if check is RefusalCheck.KILL_SWITCH and o.kill_switch is not None and pid:
        switch = o.kill_switch
        by = f" by {name(switch.by)}" if switch.by else ""
        at = f" at {format_time(switch.at, now)}" if switch.at else ""
        because = f" ({switch.reason})" if switch.reason else ""
        return (
            f"the kill switch is on{by}{at}{because}; proposal {pid} stays approved and will "
            "not run until someone turns the kill switch off"
        )
    if check is RefusalCheck.OBSERVE_ONLY and pid:
        return (
            f"tikvops is in observe-only mode; proposal {pid} stays approved and will not run "
            "until observe-only mode is turned off"
        )
    actor = o.actor
    if actor is None:
        return refused.reason
    who = name(actor)
    level = f"{o.risk.value}-risk actions" if o.risk is not None else None
    if check is RefusalCheck.SELF_APPROVAL and pid and level:
        return (
            f"{who} requested proposal {pid} and cannot approve it too: {level} need someone "
            "else's approval"
        )
    if check is RefusalCheck.ALREADY_APPROVED and pid and o.approved_at and o.missing is not None:
        plural = "s" if o.missing != 1 else ""
        return (
            f"{who} already approved proposal {pid} at {format_time(o.approved_at, now)}; it "
            f"still needs {o.missing} approval{plural} from someone else"
        )
    if check is RefusalCheck.NOT_A_PERSON and actor.kind is not IdentityKind.SYSTEM:
        return f"{who} cannot approve or change anything; a person must decide"
    if check is RefusalCheck.LOCAL_OPERATOR:
        return (
            f"decisions from the command line ({who}) are not enabled; decide in Slack, or allow "
            "the local operator in the approval settings"
        )
    if check is RefusalCheck.NOT_APPROVER and level:
        if not o.approvers:
            return (
                f"{who} may not approve {level}: no approvers are configured for them; add "
                "Slack user or user-group IDs to the approvers setting"
            )
        names = ", ".join(entry(e) for e in o.approvers)
        return f"{who} is not an approver for {level}; ask one of {names}"
    return refused.reason


_VERB = {
    "approve": "approved",
    "reject": "rejected",
    "expire": "expired",
    "cancel": "cancelled",
    "start": "started",
    "succeed": "marked succeeded",
    "fail": "marked failed",
    "reconcile_succeeded": "reconciled as succeeded",
    "reconcile_failed": "reconciled as failed",
    "unverified": "marked sent but not verified",
    "record_preflight": "re-checked",
}
"""What a proposal event does, in the words of "it cannot be …"."""


def _wrong_state(o: Observed, name: Callable[[Identity], str], now: datetime | None) -> str:
    """Why the event `o.event` cannot happen to proposal `o.proposal_id` in the state seen."""
    pid, state, event = o.proposal_id, o.proposal_state, o.event or ""
    verb = _VERB.get(event, event)
    by = name(o.decided_by) if o.decided_by is not None else "tikvops"
    decided_at = o.decided_at or o.updated_at
    decided = f" at {format_time(decided_at, now)}" if decided_at else ""
    updated = f" at {format_time(o.updated_at, now)}" if o.updated_at else ""
    if state is ProposalState.PROPOSED:
        if event == "expire" and o.expires_at is not None:
            return f"proposal {pid} does not expire until {format_time(o.expires_at, now)}"
        so_far = ""
        if o.approvals:
            so_far = f" ({o.approvals} approval{'s' if o.approvals != 1 else ''} so far)"
        if event == "start":
            return (
                f"proposal {pid} is waiting for approval{so_far}; it cannot be started before "
                "it is approved"
            )
        return (
            f"proposal {pid} is waiting for approval{so_far} and not executing; it cannot be {verb}"
        )
    if state is ProposalState.APPROVED:
        head = f"proposal {pid} was already approved by {by}{decided}"
        if event == "approve":
            return head
        if event == "reject":
            return f"{head}; it can no longer be rejected (cancel it instead)"
        if event == "expire":
            return f"{head}; approved proposals do not expire"
        return f"{head} and is not executing yet; it cannot be {verb}"
    if state is ProposalState.EXECUTING:
        return f"proposal {pid} is executing; it cannot be {verb}"
    never = "it never runs twice" if event in ("approve", "start") else f"it cannot be {verb}"
    if state is ProposalState.SUCCEEDED:
        return f"proposal {pid} already ran and succeeded{updated}; {never}"
    if state is ProposalState.UNVERIFIED:
        return f"proposal {pid} was sent and accepted by PD{updated} but not verified; {never}"
    if state is ProposalState.FAILED:
        return (
            f"proposal {pid} already ran and failed{updated}; it cannot be {verb}. Propose it "
            "again to retry"
        )
    if state is ProposalState.REJECTED:
        why = f" ({o.decision_reason})" if o.decision_reason else ""
        return f"proposal {pid} was rejected by {by}{decided}{why}; it cannot be {verb}"
    if state is ProposalState.EXPIRED:
        expired = f" at {format_time(o.expires_at, now)}" if o.expires_at else ""
        return (
            f"proposal {pid} expired{expired} without the approvals it needed; it cannot be "
            f"{verb}. Propose it again if it is still needed"
        )
    return f"proposal {pid} was cancelled by {by}{decided}; it cannot be {verb}"


def _incident_refusal(
    refused: Refused,
    name: Callable[[Identity], str],
    entry: Callable[[str], str],
    now: datetime | None,
) -> str | None:
    """A refused acknowledge / silence / unsilence, from what the check saw of the incident."""
    o, check, iid = refused.observed, refused.check, refused.observed.incident_id
    verb = o.event or "change"
    if check is RefusalCheck.NOT_FOUND:
        return (
            f"there is no incident {iid}; list the open ones with `incidents` and use the ID "
            "shown there (like I-3)"
        )
    if check is RefusalCheck.WRONG_STATE and o.incident_state == "resolved":
        when = f" at {format_time(o.resolved_at, now)}" if o.resolved_at else ""
        return (
            f"incident {iid} was resolved{when}, so there is nothing to {verb}; if the problem "
            "is back, a new incident opens by itself"
        )
    if check is RefusalCheck.STALE_VERSION:
        return (
            f"incident {iid} kept changing while this was saved, so nothing was changed; try "
            "again in a few seconds"
        )
    if o.actor is None:
        return None
    who = name(o.actor)
    if check is RefusalCheck.NOT_A_PERSON:
        return f"{who} cannot take or silence an incident; a person must"
    if check is RefusalCheck.NOT_APPROVER:
        if o.approvers:
            whom = f"ask one of {', '.join(entry(e) for e in o.approvers)}"
        else:
            whom = "no approvers are configured; ask an admin"
        return (
            f"{who} is not an approver for low-risk actions, so may not silence incident {iid} "
            f"(silencing needs the same people); acknowledge it instead, or {whom} to silence it"
        )
    return None


def switch_state(
    kill_switch: KillSwitch, observe_only: bool, name: Callable[[Identity], str]
) -> str:
    """The switches in a status line ("kill switch ON by alice (maintenance) · observe-only
    mode on (nothing executes)"), the one place for both surfaces' status views."""
    if kill_switch.on:
        by = f" by {name(kill_switch.by)}" if kill_switch.by else ""
        because = f" ({kill_switch.reason})" if kill_switch.reason else ""
        text = f"kill switch ON{by}{because}"
    else:
        text = "kill switch off"
    return text + (" · observe-only mode on (nothing executes)" if observe_only else "")


def switches(
    settings: EngineSettings, name: Callable[[Identity], str], cluster: str | None = None
) -> str:
    """The kill switch and observe-only mode, in words (the one place, for both surfaces;
    `name` names the person who turned the switch on). With `cluster`, that cluster's own
    switch first, then the global one when it is on (it holds every cluster)."""
    switch = settings.kill_switch
    if cluster is not None:
        own = settings.cluster_switches.get(cluster)
        if own is not None and own.on:
            by = f" by {name(own.by)}" if own.by else ""
            because = f" ({own.reason})" if own.reason else ""
            text = (
                f"The kill switch of cluster {cluster} is ON{by}{because}: nothing will execute "
                f"in {cluster} until it is turned off."
            )
        else:
            text = f"The kill switch of cluster {cluster} is off."
        if switch.on:
            text += " The global kill switch is ON too: nothing executes in any cluster."
        if settings.observe_only:
            text += " Observe-only mode is on: tikvops monitors and proposes but never executes."
        return text
    if switch.on:
        by = f" by {name(switch.by)}" if switch.by else ""
        because = f" ({switch.reason})" if switch.reason else ""
        text = f"The kill switch is ON{by}{because}: nothing will execute until it is turned off."
    else:
        text = "The kill switch is off: approved proposals execute."
    if settings.observe_only:
        text += " Observe-only mode is on: tikvops monitors and proposes but never executes."
    return text


def decision_recorded(message: str) -> str:
    text = end_sentence(message)
    return f"{text[:1].upper()}{text[1:]}"


def dedup_note() -> str:
    return "This request was already received; it is handled once."


__all__ = [
    "NOT_PROPOSED_HINT",
    "REFUSAL_HINTS",
    "bad_button",
    "bad_form",
    "channel_not_allowed",
    "click_unreadable",
    "command_too_long",
    "command_without_user",
    "decision_recorded",
    "dedup_note",
    "form_not_supported",
    "internal_error",
    "not_our_command",
    "not_supported",
    "plain_entry",
    "refusal",
    "reject_modal_label",
    "reject_modal_prompt",
    "reject_modal_title",
    "request_failed",
    "switch_state",
    "switches",
    "undo_proposed",
    "working",
]


def mention_reply(command: str) -> str:
    return (
        f"I take commands through `{command}` (try `{command} help`). Incidents, proposals and "
        "their results are posted in the incidents channel."
    )
