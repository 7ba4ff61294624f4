"""Answers to `/tikv` commands: compact ephemeral Block Kit for every engine outcome (read views,
proposal created, dry run, decision, refusal, kill switch, help). `render_outcome` is the one
entry point. Pure: outcome, `now` and a few names in, `Rendered` out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot import messages
from bot.render import action as act
from bot.render import fmt
from bot.render.attention import attended_view, attention_suffix
from bot.render.execution import execution_outcome
from bot.render.kit import (
    Rendered,
    code,
    code_span,
    context,
    esc,
    fields,
    header,
    rendered,
    section,
    sentence,
)
from bot.render.limits import cap_items, clip
from bot.render.proposal import dry_run_message, proposal_message
from engine.incident_facts import consequence_text, consequences_of
from engine.model import AuditEvent, AuditOutcome, Incident, Proposal, ProposalState
from engine.results import (
    Attended,
    AuditView,
    ClustersView,
    Decided,
    DryRunOutcome,
    ExecutionReport,
    HelpView,
    IncidentsView,
    KillSwitchOutcome,
    Outcome,
    ProposalCreated,
    ProposalsView,
    ProposalView,
    RefusalKind,
    Refused,
    RegionView,
    StatusView,
    StoreSummary,
    StoresView,
    StoreView,
)
from operator_tikv.sentences import end_sentence

MAX_LIST = 25


@dataclass(frozen=True)
class ClusterNaming:
    """What an answer needs to know about clusters: whether records name theirs (`named`: the
    bot watches several), the cluster the command was for, and each proposal's quorum (by its
    own cluster's policy)."""

    named: bool = False
    cluster: str | None = None
    quorum: Callable[[Proposal], int] | None = None

    def approvals_needed(self, proposal: Proposal) -> int:
        return self.quorum(proposal) if self.quorum is not None else 1


MAX_HISTORY = 20


def _bytes(value: int) -> str:
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def _used(store: StoreSummary) -> str:
    return "?" if store.used_ratio is None else f"{store.used_ratio * 100:.0f}%"


def store_table(stores: Sequence[StoreSummary]) -> str:
    """A monospace table of stores (cut with "… N more stores" when long)."""
    rows = [("ID", "ADDRESS", "STATE", "LEADERS", "REGIONS", "USED", "NOTE")]
    for s in stores:
        rows.append(
            (
                str(s.id),
                clip(s.address, 28),
                s.state,
                f"{s.leader_count:,}",
                f"{s.region_count:,}",
                _used(s),
                "drained" if s.drained else "",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows
    ]
    return code(lines, "stores")


def _incident_line(incident: Incident, now: datetime, named: bool = False) -> str:
    """One incident in a list; `named`: with several clusters, its cluster first."""
    icon = fmt.SEVERITY_ICON[incident.severity] if incident.is_open else fmt.RESOLVED_ICON
    line = (
        f"{icon} {fmt.cluster_prefix(incident.cluster, named)}*{esc(incident.id)}* "
        f"{esc(clip(incident.title, 120))} · "
        f"since {fmt.ago(incident.opened_at, now)}"
    )
    return line + attention_suffix(incident, now) if incident.is_open else line


def _proposal_line(proposal: Proposal, now: datetime, named: bool = False) -> str:
    """One proposal in a list; `named`: with several clusters, its cluster first."""
    icon = fmt.STATE_ICON[proposal.state]
    title = esc(act.short_title(proposal.action, proposal.params))
    named_id = f"{fmt.cluster_prefix(proposal.cluster, named)}*{esc(proposal.id)}*"
    line = f"{icon} {named_id} {title} · {proposal.risk.value} risk · {proposal.state.value}"
    if proposal.state is ProposalState.PROPOSED:
        line += f" · expires {fmt.until(proposal.expires_at, now)}"
    line += f" · by {fmt.origin_text(proposal.requested_by)}"
    return line


def _lines(items: list[str], noun: str, empty: str) -> str:
    return "\n".join(cap_items(items, MAX_LIST, noun)) if items else empty


def status_view(
    view: StatusView, now: datetime, *, cluster: str | None = None, named: bool = False
) -> Rendered:
    """`/tikv status`; `cluster`: the cluster read, named in the header when there are several
    (`named`, which also names each listed record's)."""
    counts = ", ".join(f"{n} {state}" for state, n in sorted(view.state_counts.items()))
    switch = messages.switch_state(view.kill_switch, view.observe_only, fmt.who)
    if view.kill_switch.on:
        switch = f":octagonal_sign: {switch}"
    summary = (
        f"*{fmt.count(len(view.stores), 'store')}* ({counts or 'none'}) · "
        f"*{fmt.count(len(view.open_incidents), 'open incident')}* · "
        f"*{fmt.count(len(view.active_proposals), 'proposal')} in flight* · {switch}"
    )
    title = f"TiKV cluster status: {cluster}" if named and cluster else "TiKV cluster status"
    blocks: list[Any] = [header(title), section(summary)]
    if view.pd_error:
        blocks.append(section(f":warning: *PD could not be read:* {esc(view.pd_error)}"))
    if view.stores:
        blocks.append(section(store_table(view.stores), noun="stores"))
    incidents = [_incident_line(i, now, named) for i in view.open_incidents]
    blocks.append(
        section("*Open incidents*\n" + _lines(incidents, "incidents", "none"), noun="incidents")
    )
    proposals = [_proposal_line(p, now, named) for p in view.active_proposals]
    blocks.append(
        section(
            "*Proposals in flight*\n" + _lines(proposals, "proposals", "none"), noun="proposals"
        )
    )
    blocks.append(
        context(f"as of {fmt.at(now, now)} · `/tikv stores`, `/tikv store <id>` for more")
    )
    return rendered(
        f"Cluster status: {fmt.count(len(view.stores), 'store')}, "
        f"{fmt.count(len(view.open_incidents), 'open incident')}",
        blocks,
    )


def stores_view(view: StoresView, now: datetime) -> Rendered:
    if not view.stores:
        return rendered("No stores", [section("PD reports no stores.")])
    blocks: list[Any] = [
        header(f"Stores ({len(view.stores)})"),
        section(store_table(view.stores), noun="stores"),
        context(f"as of {fmt.at(now, now)} · `/tikv store <id>` for one store"),
    ]
    return rendered(fmt.count(len(view.stores), "store"), blocks)


def store_view(view: StoreView, now: datetime) -> Rendered:
    s = view.store
    heartbeat = fmt.ago(s.last_heartbeat, now) if s.last_heartbeat else "never"
    pairs = [
        ("State", esc(s.state) + (" · drained (evict-leader)" if s.drained else "")),
        ("Address", code_span(s.address)),
        ("Leaders", f"{s.leader_count:,}"),
        ("Regions", f"{s.region_count:,}"),
        (
            "Disk",
            f"{_used(s)} used · {_bytes(s.available_bytes)} free of {_bytes(s.capacity_bytes)}",
        ),
        ("Last heartbeat", heartbeat),
    ]
    if s.version:
        pairs.append(("Version", esc(s.version)))
    if s.labels:
        labels = ", ".join(f"{esc(k)}={esc(v)}" for k, v in sorted(s.labels.items()))
        pairs.append(("Labels", labels))
    blocks: list[Any] = [header(f"Store {s.id}"), *fields(pairs)]
    incidents = [_incident_line(i, now) for i in view.incidents]
    proposals = [_proposal_line(p, now) for p in view.proposals]
    blocks.append(section("*Open incidents*\n" + _lines(incidents, "incidents", "none")))
    blocks.append(
        section("*Proposals naming this store*\n" + _lines(proposals, "proposals", "none"))
    )
    return rendered(f"Store {s.id}: {s.state}, {s.leader_count:,} leaders", blocks)


def region_view(view: RegionView, now: datetime) -> Rendered:
    rows = [("PEER", "STORE", "ROLE", "STATUS")]
    for p in view.peers:
        flags = [
            f for f, on in (("leader", p.leader), ("down", p.down), ("pending", p.pending)) if on
        ]
        rows.append((str(p.peer_id), str(p.store_id), p.role, ", ".join(flags) or "ok"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    table = code(
        ["  ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip() for r in rows], "peers"
    )
    leader = f"store {view.leader_store_id}" if view.leader_store_id is not None else "*no leader*"
    pairs = [
        ("Leader", leader),
        ("Size", f"{view.approximate_size_mib:,} MiB · {view.approximate_keys:,} keys"),
        (
            "Keys",
            f"{code_span(clip(view.start_key or '(start)', 60))} → "
            f"{code_span(clip(view.end_key or '(end)', 60))}",
        ),
        ("Epoch", f"version {view.epoch_version} · conf_ver {view.conf_ver}"),
    ]
    operator = (
        f"{esc(view.operator.desc)} ({esc(view.operator.status)}): {esc(view.operator.brief)}"
        if view.operator
        else "none"
    )
    pairs.append(("Operator", operator))
    blocks: list[Any] = [
        header(f"Region {view.region_id}"),
        *fields(pairs),
        section(f"*Peers* ({len(view.peers)})\n{table}", noun="peers"),
        context(f"as of {fmt.at(now, now)}"),
    ]
    return rendered(f"Region {view.region_id}: leader on {leader}", blocks)


MAX_CONSEQUENCE_LINES = 4
"""Consequences listed under one incident in `/tikv incidents`; the card has them all."""


def _consequence_lines(incident: Incident) -> list[str]:
    """The incident's consequences with their current counts, indented under it (one incident
    per cause: what the cause brought with it, as on its card and in `tikvops incidents`)."""
    shown: list[str] = []
    lost = incident.details.get("quorum_lost")
    if isinstance(lost, dict) and isinstance(lost.get("count"), int) and lost["count"]:
        shown.append(f"{fmt.number(lost['count'])} regions lost quorum")
    shown += [esc(consequence_text(c)) for c in consequences_of(incident)]
    if incident.details.get("cause_cleared"):
        shown.insert(0, "the cause cleared; waiting for these to clear")
    return [f"      ↳ {line}" for line in cap_items(shown, MAX_CONSEQUENCE_LINES, "consequences")]


def _incident_with_consequences(incident: Incident, now: datetime, named: bool) -> str:
    return "\n".join([_incident_line(incident, now, named), *_consequence_lines(incident)])


def incidents_view(view: IncidentsView, now: datetime, *, named: bool = False) -> Rendered:
    """`/tikv incidents`; `named`: several clusters, each line names its incident's."""
    lines = [_incident_with_consequences(i, now, named) for i in view.incidents]
    blocks: list[Any] = [
        header(f"Open incidents ({len(view.incidents)})"),
        section(_lines(lines, "incidents", "No open incidents."), noun="incidents"),
    ]
    return rendered(fmt.count(len(view.incidents), "open incident"), blocks)


def proposals_view(view: ProposalsView, now: datetime, *, named: bool = False) -> Rendered:
    """`/tikv proposals`; `named`: several clusters, each line names its proposal's."""
    lines = [_proposal_line(p, now, named) for p in view.proposals]
    blocks: list[Any] = [
        header(f"Proposals in flight ({len(view.proposals)})"),
        section(_lines(lines, "proposals", "No proposal is waiting or running."), noun="proposals"),
    ]
    if view.recent:
        recent = [_proposal_line(p, now, named) for p in view.recent]
        blocks.append(section("*Recently finished*\n" + _lines(recent, "proposals", "none")))
    blocks.append(
        context("`/tikv proposal <id>` for one proposal, `/tikv approve <id>` to approve")
    )
    return rendered(f"{fmt.count(len(view.proposals), 'proposal')} in flight", blocks)


def audit_line(event: AuditEvent, now: datetime, named: bool = False) -> str:
    """One audit record; `named`: several clusters, its cluster before its subject."""
    mark = {AuditOutcome.OK: "", AuditOutcome.REFUSED: " :no_entry:", AuditOutcome.ERROR: " :x:"}
    reason = f" — {sentence(clip(event.reason, 200))}" if event.reason else ""
    return (
        f"{fmt.at(event.at, now)} · {fmt.who(event.actor)} · `{esc(event.action)}` · "
        f"{fmt.cluster_prefix(event.cluster, named)}{esc(event.subject)}{mark[event.outcome]}"
        f"{reason}"
    )


def audit_view(view: AuditView, now: datetime, *, named: bool = False) -> Rendered:
    lines = [audit_line(e, now, named) for e in view.events]
    blocks: list[Any] = [
        header(f"Audit log (last {len(view.events)})"),
        section(_lines(lines, "records", "The audit log is empty."), noun="records"),
    ]
    return rendered(fmt.count(len(view.events), "audit record"), blocks)


def proposal_view(
    view: ProposalView, now: datetime, *, approvals_needed: int = 1, named: bool = False
) -> Rendered:
    """`/tikv proposal ID`: its card (with its cluster's quorum, `approvals_needed`) and its
    history."""
    base = proposal_message(
        view.proposal,
        now,
        execution=view.execution,
        approvals_needed=approvals_needed,
        clusters_named=named,
    )
    history = [audit_line(e, now) for e in view.history[-MAX_HISTORY:]]
    extra: list[Any] = []
    if history:
        extra.append(section("*History*\n" + "\n".join(history), noun="records"))
    if view.undo is not None:
        extra.append(
            context(
                f"Undo available: `{esc(act.command_line(view.undo.action, view.undo.params))}`"
            )
        )
    return rendered(base.text, [*base.blocks, *extra])


def clusters_view(view: ClustersView) -> Rendered:
    """`/tikv clusters`: one line per cluster with its health at a glance."""
    icons = {
        "ok": ":large_green_circle:",
        "incidents": ":large_orange_circle:",
        "pd-unreachable": ":red_circle:",
        "unknown": ":white_circle:",
    }
    lines = [
        f"{icons[c.state]} *{c.name}*"
        + (f" (#{c.channel})" if c.channel else "")
        + f": {c.sentence}"
        + (" — kill switch *on*" if c.kill_switch else "")
        for c in view.clusters
    ]
    text = "Clusters: " + "; ".join(view.lines())
    return rendered(text, [section("\n".join(lines))])


def help_view(view: HelpView) -> Rendered:
    lines = view.text.split("\n")
    title = f"Help: {view.topic}" if view.topic else "tikvops commands"
    return rendered(title, [header(title), section(code(lines, "lines"))])


def refused_view(refused: Refused, now: datetime) -> Rendered:
    """A refusal: what happened and why (worded from the refusing check and what it saw, by
    `bot.messages.refusal`), and what to do next."""
    icon = ":no_entry:" if refused.kind is not RefusalKind.PARSE else ":grey_question:"
    text = messages.refusal(refused, fmt.who, fmt.approver, now)
    blocks: list[Any] = [section(f"{icon} {sentence(text)}")]
    if refused.dry_run is not None:
        checks = act.check_lines([c.model_dump() for c in refused.dry_run.preflight.checks])
        blocks.append(section("*Preflight checks*\n" + "\n".join(cap_items(checks, 20, "checks"))))
    hint = messages.REFUSAL_HINTS.get(refused.kind.value)
    if hint:
        blocks.append(context(hint))
    return rendered(text, blocks)


def outcome_view(
    outcome: Outcome,
    now: datetime,
    *,
    channel_mention: str,
    action_params: Mapping[str, Any] | None = None,
    clusters: ClusterNaming | None = None,
) -> Rendered:
    """The ephemeral answer to a command. `channel_mention` names where proposals are posted;
    `action_params` are the parameters of the action command (shown with a dry run);
    `clusters`: with several clusters, the cluster the command was for and each proposal's
    quorum (records then name their cluster)."""
    naming = clusters or ClusterNaming()
    named = naming.named
    if isinstance(outcome, StatusView):
        return status_view(outcome, now, cluster=naming.cluster, named=named)
    if isinstance(outcome, StoresView):
        return stores_view(outcome, now)
    if isinstance(outcome, StoreView):
        return store_view(outcome, now)
    if isinstance(outcome, RegionView):
        return region_view(outcome, now)
    if isinstance(outcome, IncidentsView):
        return incidents_view(outcome, now, named=named)
    if isinstance(outcome, ProposalsView):
        return proposals_view(outcome, now, named=named)
    if isinstance(outcome, ProposalView):
        needed = naming.approvals_needed(outcome.proposal)
        return proposal_view(outcome, now, approvals_needed=needed, named=named)
    if isinstance(outcome, AuditView):
        return audit_view(outcome, now, named=named)
    if isinstance(outcome, HelpView):
        return help_view(outcome)
    if isinstance(outcome, ClustersView):
        return clusters_view(outcome)
    if isinstance(outcome, Refused):
        return refused_view(outcome, now)
    if isinstance(outcome, DryRunOutcome):
        dry = outcome.dry_run
        return dry_run_message(
            dry.action,
            dict(action_params or {}),
            dry.model_dump(mode="json"),
            now,
            title=dry.description,
        )
    if isinstance(outcome, ProposalCreated):
        return created_view(outcome, now, channel_mention=channel_mention, named=named)
    if isinstance(outcome, Decided):
        text = messages.decided(outcome, fmt.who, now)
        return rendered(text, [section(f":white_check_mark: {sentence(end_sentence(text))}")])
    if isinstance(outcome, KillSwitchOutcome):
        icon = ":octagonal_sign:" if outcome.settings.kill_switch.on else ":large_green_circle:"
        text = messages.switches(outcome.settings, fmt.who, outcome.cluster)
        return rendered(text, [section(f"{icon} {sentence(text)}")])
    if isinstance(outcome, ExecutionReport):
        return execution_outcome(outcome.proposal, outcome.execution, now)
    if isinstance(outcome, Attended):
        return attended_view(outcome, now)
    raise TypeError(f"no rendering for {type(outcome).__name__}")


def created_view(
    outcome: ProposalCreated, now: datetime, *, channel_mention: str, named: bool = False
) -> Rendered:
    p = outcome.proposal
    title = fmt.cluster_prefix(p.cluster, named) + esc(act.short_title(p.action, p.params))
    if outcome.auto_approved:
        text = (
            f":white_check_mark: Proposal *{esc(p.id)}* ({title}, {p.risk.value} risk) was "
            f"approved automatically (low-risk auto-approval is on) and runs now; follow it in "
            f"{channel_mention}."
        )
    else:
        text = (
            f":white_check_mark: Proposal *{esc(p.id)}* ({title}, {p.risk.value} risk) is "
            f"posted in {channel_mention} for approval. Nothing runs until an approver approves "
            f"it; it expires {fmt.until(p.expires_at, now)}."
        )
    return rendered(f"Proposal {p.id} created: {title}", [section(text)])


__all__ = [
    "ClusterNaming",
    "audit_line",
    "audit_view",
    "created_view",
    "help_view",
    "incidents_view",
    "outcome_view",
    "proposal_view",
    "proposals_view",
    "refused_view",
    "region_view",
    "status_view",
    "store_table",
    "store_view",
    "stores_view",
]
