"""Incident messages: the parent message in the channel (edited in place as the incident changes)
and the thread replies about it (resolved). Pure: records and `now` in, `Rendered` out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from bot.render import action as act
from bot.render import fmt
from bot.render.attention import attention_buttons, attention_lines
from bot.render.kit import Rendered, code_span, context, esc, fields, header, rendered, section
from bot.render.limits import cap_items, clip
from bot.render.links import Links, link_buttons
from engine.clock import utc
from engine.events import ChangeKind, IncidentChange
from engine.incident_facts import consequence_text, consequences_of
from engine.model import Diagnosis, Incident, Proposal, ProposalState, Severity

_KNOWN_DETAILS = frozenset(
    {
        "message",
        "unit",
        "address",
        "store_address",
        "store_id",
        "region_id",
        "region_ids",
        "first_seen",
        "stale",
        "kind",
        "severity",
        "value",
        "threshold",
        "consequences",
        "stores",
        "quorum_lost",
        "cause_cleared",
        "merged_into",
    }
)
MAX_EXTRA_DETAILS = 6
MAX_REGION_SAMPLE = 10


def _details(incident: Incident) -> Mapping[str, Any]:
    return incident.details if isinstance(incident.details, Mapping) else {}


def where(incident: Incident) -> str:
    """What is broken and where: "store 4 (`tikv-4:20160`)", "region 2008", "the cluster"."""
    details = _details(incident)
    kind, _, ident = incident.subject.partition(":")
    address = details.get("address") or details.get("store_address")
    stores = details.get("stores")
    if isinstance(stores, list) and len(stores) > 1:
        text = "stores " + ", ".join(esc(s) for s in stores)
    elif kind == "store" and ident:
        text = f"store {esc(ident)}"
        if address:
            text += f" ({code_span(address)})"
    elif kind == "region" and ident:
        text = f"region {esc(ident)}"
    else:
        text = "the cluster"
    regions = details.get("region_ids")
    if isinstance(regions, list | tuple) and regions:
        sample = [esc(r) for r in regions[:MAX_REGION_SAMPLE]]
        left = len(regions) - len(sample)
        more = f", {fmt.number(left)} more" if left > 0 else ""
        text += f"\nregions {', '.join(sample)}{more}"
    return text


def key_numbers(incident: Incident) -> str:
    """The measured value against its threshold: "250 ms (threshold 100 ms)"."""
    unit = str(_details(incident).get("unit") or "")
    if incident.value is None:
        return "not measured"
    text = fmt.with_unit(incident.value, unit)
    if incident.threshold is not None:
        text += f" (threshold {fmt.with_unit(incident.threshold, unit)})"
    return text


def _extra_details(incident: Incident) -> list[str]:
    lines = []
    for key, value in _details(incident).items():
        if key in _KNOWN_DETAILS or isinstance(value, dict | list | tuple) or value is None:
            continue
        shown = fmt.number(value) if isinstance(value, int | float) else esc(clip(str(value), 80))
        lines.append(f"{esc(key.replace('_', ' '))}: {shown}")
    return cap_items(lines, MAX_EXTRA_DETAILS, "details")


MAX_CONSEQUENCES = 6


def _consequences(incident: Incident) -> str | None:
    """The consequences section: what the cause brought with it, with current counts."""
    details = _details(incident)
    lines = [f"• {esc(consequence_text(c))}" for c in consequences_of(incident)]
    lost = details.get("quorum_lost")
    if isinstance(lost, dict) and isinstance(lost.get("count"), int) and lost["count"]:
        regions = [esc(r) for r in lost.get("regions") or []][:MAX_REGION_SAMPLE]
        sample = f" (e.g. {', '.join(regions)})" if regions else ""
        lines.insert(
            0,
            f":rotating_light: {fmt.number(lost['count'])} regions lost quorum and cannot serve "
            f"reads or writes{sample}",
        )
    if details.get("cause_cleared") and incident.is_open:
        lines.insert(0, "The cause cleared; waiting for these to clear too.")
    if not lines:
        return None
    shown = cap_items(lines, MAX_CONSEQUENCES, "consequences")
    when = "current counts" if incident.is_open else "last counts"
    return f"*Consequences* ({when})\n" + "\n".join(shown)


def _diagnosis_line(diagnosis: Diagnosis | None, *, resolved: bool) -> str | None:
    if diagnosis is None:
        return None if resolved else ":mag: *Diagnosis:* in progress; it will appear in the thread."
    if diagnosis.error:
        return f":warning: *Diagnosis unavailable:* {esc(diagnosis.error)}"
    by = fmt.origin_text_for_diagnosis(diagnosis)
    confidence = f", confidence {diagnosis.confidence:.0%}" if diagnosis.confidence else ""
    return f":mag: *Diagnosis* ({by}{confidence}): {esc(diagnosis.summary)}"


def _proposal_line(proposal: Proposal, now: datetime) -> str:
    label = f"{esc(proposal.id)} {esc(act.short_title(proposal.action, proposal.params))}"
    outcome = f": {esc(clip(proposal.outcome, 200))}" if proposal.outcome else ""
    state = proposal.state
    if state is ProposalState.EXECUTING:
        return f":gear: *Action running:* {label} (approved by {fmt.who(proposal.decided_by)})"
    if state is ProposalState.APPROVED:
        return f":white_check_mark: *Action approved:* {label}, about to run"
    if state is ProposalState.PROPOSED:
        if utc(now) >= proposal.expires_at:
            return f":hourglass: *Expired:* {label}"
        return (
            f":hourglass_flowing_sand: *Waiting for approval:* {label} "
            f"(expires {fmt.until(proposal.expires_at, now)})"
        )
    if state is ProposalState.SUCCEEDED:
        return f":white_check_mark: *Action done:* {label}{outcome}"
    if state is ProposalState.FAILED:
        return f":x: *Action failed:* {label}{outcome}"
    if state is ProposalState.UNVERIFIED:
        return f":warning: *Action sent, not verified:* {label}"
    return f"{fmt.STATE_ICON[state]} *{state.value.capitalize()}:* {label}"


def _proposal_lines(proposals: Sequence[Proposal], now: datetime) -> list[str]:
    """In flight ones before finished ones, otherwise in the given order (newest first)."""
    ordered = sorted(proposals, key=lambda p: p.state.is_terminal)
    return cap_items([_proposal_line(p, now) for p in ordered], 5, "proposals")


def incident_parent(
    incident: Incident,
    now: datetime,
    *,
    diagnosis: Diagnosis | None = None,
    proposals: Sequence[Proposal] = (),
    links: Links | None = None,
    clusters_named: bool = False,
) -> Rendered:
    """The incident's own message: severity, what and where, since when, the key numbers, the
    diagnosis summary and its actions (waiting, running, done); resolved incidents say when and
    after how long.
    `proposals` are the incident's proposals, newest first. `links`: the "Dashboard" and
    "Query" buttons (`bot.render.links`; none without configured URLs). `clusters_named`:
    the bot watches several clusters, so the header, the text and a field name the incident's."""
    details = _details(incident)
    resolved = not incident.is_open
    title = clip(incident.title, 110)
    named = fmt.cluster_prefix(incident.cluster, clusters_named)
    if resolved:
        head = f"{fmt.RESOLVED_ICON} RESOLVED · {named}{title}"
    else:
        head = f"{fmt.severity(incident.severity)} · {named}{title}"
    blocks: list[Any] = [header(head)]
    message = details.get("message")
    summary = esc(message) if isinstance(message, str) and message else esc(incident.title)
    if resolved and incident.resolved_at is not None:
        summary = (
            f":white_check_mark: Resolved at {fmt.at(incident.resolved_at, now)} after "
            f"{fmt.duration(incident.opened_at, incident.resolved_at)}. "
            f"Worst severity: {incident.worst_severity.value}.\n{summary}"
        )
    blocks.append(section(summary))
    pairs = [
        *fmt.cluster_field(incident.cluster, clusters_named),
        ("Where", where(incident)),
        ("Since", fmt.ago(incident.opened_at, now)),
        ("Now" if not resolved else "Last measured", key_numbers(incident)),
        (
            "Severity",
            incident.severity.value
            + (
                f" (worst {incident.worst_severity.value})"
                if incident.worst_severity is not incident.severity
                else ""
            ),
        ),
    ]
    if resolved and incident.resolved_at is not None:
        pairs.append(("Resolved", fmt.at(incident.resolved_at, now)))
        pairs.append(("Duration", fmt.duration(incident.opened_at, incident.resolved_at)))
    elif incident.clear_since is not None:
        pairs.append(("Clear since", fmt.ago(incident.clear_since, now)))
    blocks.extend(fields(pairs))
    consequences = _consequences(incident)
    if consequences:
        blocks.append(section(consequences, noun="consequences"))
    attending = [] if resolved else attention_lines(incident, now)
    if attending:
        blocks.append(section("\n".join(attending)))
    line = _diagnosis_line(diagnosis, resolved=resolved)
    if line:
        blocks.append(section(line))
    actions_taken = _proposal_lines(proposals, now)
    if actions_taken:
        blocks.append(section("\n".join(actions_taken), noun="proposals"))
    extra = _extra_details(incident)
    notes = [
        f"{esc(incident.id)} · {esc(incident.kind)} · "
        f"last seen {fmt.at(incident.last_seen_at, now)}",
        "Details, proposals and results are in the thread.",
    ]
    if extra:
        notes.insert(1, " · ".join(extra))
    buttons = link_buttons(links, incident, now) if links is not None else None
    if buttons is not None:
        blocks.append(buttons)
    blocks.append(context(*notes))
    if not resolved:
        blocks.append(attention_buttons(incident, now))
    text = (
        f"Resolved: {named}{incident.title} "
        f"({fmt.duration(incident.opened_at, incident.resolved_at)})"
        if resolved and incident.resolved_at is not None
        else f"{incident.severity.value.upper()}: {named}{incident.title}"
    )
    return rendered(text, blocks)


def incident_resolved_reply(incident: Incident, now: datetime) -> Rendered:
    """The thread reply when an incident resolves (no mention, no ping)."""
    end = incident.resolved_at or now
    into = _details(incident).get("merged_into")
    if isinstance(into, str) and into:
        text = (
            f":arrow_right: *Merged* into {esc(into)} at {fmt.at(end, now)}: the "
            f"same cause. Follow {esc(into)}'s thread from here."
        )
        return rendered(f"Merged into {into}: {incident.title}", [section(text)])
    text = (
        f":large_green_circle: *Resolved* at {fmt.at(end, now)} after "
        f"{fmt.duration(incident.opened_at, end)}: the condition has not been seen since "
        f"{fmt.at(incident.clear_since or incident.last_seen_at, now)}. "
        f"Worst severity was {incident.worst_severity.value}."
    )
    return rendered(f"Resolved: {incident.title}", [section(text)])


def incident_worsened_reply(incident: Incident, previous: str, now: datetime) -> Rendered:
    """The thread reply when an incident's severity goes up."""
    text = (
        f"{fmt.SEVERITY_ICON[incident.severity]} *Worsened* at {fmt.at(incident.updated_at, now)}: "
        f"{esc(previous)} → {incident.severity.value}. Now: {key_numbers(incident)}."
    )
    return rendered(f"Worsened: {incident.title}", [section(text)])


def change_sentence(change: IncidentChange) -> str:
    """One change of an incident as a plain sentence, for both surfaces (Slack escapes it, the
    terminal prints it): the one place each of these sentences is written."""
    kind = change.kind
    if kind is ChangeKind.ESCALATED:
        return f"{change.title_from} → {change.title_to}."
    if kind is ChangeKind.CONSEQUENCE_APPEARED:
        record = {
            "label": change.consequence,
            "count": change.count,
            "stores": list(change.stores),
            "by_presence": change.by_presence,
        }
        return f"New consequence: {consequence_text(record)}."
    if kind is ChangeKind.CONSEQUENCE_CLEARED:
        return f"Cleared: {change.consequence}."
    if kind is ChangeKind.CAUSE_CLEARED:
        return (
            f"The cause cleared ({change.title_from}); the incident stays open until its "
            "consequences clear too."
        )
    if kind is ChangeKind.MERGED_INTO:
        return f"Merged into {change.other_id} ({change.other_title}): the same cause."
    return f"{change.other_id} ({change.other_title}) merged into this incident: the same cause."


def severity_sentence(previous: Severity, now: Severity) -> str:
    """ "Severity warning → critical." (both surfaces)."""
    return f"Severity {previous.value} → {now.value}."


def incident_changed_reply(
    incident: Incident,
    notes: Sequence[IncidentChange],
    previous: Severity | None,
    now: datetime,
) -> Rendered:
    """The thread reply when an incident's cause escalated or its consequences appeared or
    cleared: one reply, saying what changed (and the severity change, if any: `previous` is
    the severity before, carried on the event)."""
    lines = [esc(change_sentence(note)) for note in notes]
    if previous is not None and previous is not incident.severity:
        lines.append(esc(severity_sentence(previous, incident.severity)))
    icon = fmt.SEVERITY_ICON[incident.severity]
    text = f"{icon} *Changed* at {fmt.at(incident.updated_at, now)}:\n" + "\n".join(
        f"• {line}" for line in cap_items(lines, 8, "changes")
    )
    return rendered(f"Changed: {incident.title}", [section(text)])


__all__ = [
    "change_sentence",
    "incident_changed_reply",
    "incident_parent",
    "incident_resolved_reply",
    "incident_worsened_reply",
    "key_numbers",
    "severity_sentence",
    "where",
]
