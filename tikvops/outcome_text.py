"""The terminal's wording of engine outcomes (pure): what `tikvops <command>` prints for each
outcome type, and the lines of a proposal, an execution, an audit record. The Slack wording
of the same outcomes is `bot/render/`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

from bot import messages
from engine.commands import (
    CLI_PROG,
)
from engine.model import (
    AuditEvent,
    Execution,
    ExecutionStatus,
    Identity,
    Incident,
    Proposal,
)
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
    Refused,
    RegionView,
    StatusView,
    StoreSummary,
    StoresView,
    StoreView,
)
from operator_tikv.actions import DryRun
from tikvops.attention_text import attended_text, attention_suffix


def plain_name(identity: Identity) -> str:
    """A person or agent in terminal text: the display name, else the identity key
    (`slack:U123`, `cli:alice@host`)."""
    return identity.display_name or identity.key


def clock_text(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%H:%M:%S")


def _stamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def params_text(proposal: Proposal) -> str:
    return " ".join(f"{k}={v}" for k, v in proposal.params.items())


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]


def _store_rows(stores: Sequence[StoreSummary]) -> list[str]:
    return _table(
        ("STORE", "ADDRESS", "STATE", "LEADERS", "REGIONS", "USED", "DRAINED"),
        [
            (
                s.id,
                s.address,
                s.state,
                f"{s.leader_count:,}",
                f"{s.region_count:,}",
                _ratio(s.used_ratio),
                "yes" if s.drained else "",
            )
            for s in stores
        ],
    )


def record_id(cluster: str, record: str, named: bool) -> str:
    """`prod/P-3` when the bot watches several clusters (`named`); `P-3` with one."""
    return f"{cluster}/{record}" if named else record


def _proposal_line(p: Proposal, named: bool = False) -> str:
    ident = record_id(p.cluster, p.id, named)
    return (
        f"{ident:<6} {p.state.value:<10} {p.action} {params_text(p)}  (risk {p.risk.value}, by "
        f"{plain_name(p.requested_by)}, {_stamp(p.created_at)})"
    )


def _incident_line(i: Incident, named: bool = False) -> str:
    ident = record_id(i.cluster, i.id, named)
    line = f"{ident:<6} {i.severity.value:<8} {i.title}  (since {_stamp(i.opened_at)})"
    return line + attention_suffix(i) if i.is_open else line


def _dry_run_lines(dry: DryRun) -> list[str]:
    return dry.text().splitlines()


def _execution_lines(execution: Execution) -> list[str]:
    lines = [f"Execution: {execution.status.value}"]
    for request in execution.requests:
        body = json.dumps(request.get("body")) if request.get("body") is not None else ""
        lines.append(f"  sent {request.get('method')} {request.get('path')} {body}".rstrip())
    lines += [f"  {clock_text(n.at)}  {n.message}" for n in execution.progress]
    return lines


def render(outcome: Outcome, *, named: bool = False) -> str:
    """The plain-text rendering of any outcome; `named`: the bot watches several clusters, so
    listed incidents and proposals name theirs (`prod/I-3`)."""
    lines: list[str]
    if isinstance(outcome, StatusView):
        counts = ", ".join(f"{n} {state}" for state, n in sorted(outcome.state_counts.items()))
        drained = [str(s.id) for s in outcome.stores if s.drained]
        lines = []
        if outcome.pd_error:
            lines.append(f"PD could not be read: {outcome.pd_error}")
        else:
            lines.append(f"Stores: {len(outcome.stores)} ({counts or 'none'})")
            if drained:
                lines.append(f"Drained (evict-leader): store {', '.join(drained)}")
        switch = messages.switch_state(outcome.kill_switch, outcome.observe_only, plain_name)
        lines.append(switch[:1].upper() + switch[1:])
        lines.append(f"Open incidents: {len(outcome.open_incidents)}")
        lines += [f"  {_incident_line(i, named)}" for i in outcome.open_incidents]
        lines.append(f"Active proposals: {len(outcome.active_proposals)}")
        lines += [f"  {_proposal_line(p, named)}" for p in outcome.active_proposals]
        return "\n".join(lines)
    if isinstance(outcome, StoresView):
        return "\n".join(_store_rows(outcome.stores))
    if isinstance(outcome, StoreView):
        s = outcome.store
        lines = [
            f"Store {s.id} ({s.address}): {s.state}",
            f"  leaders {s.leader_count:,}, regions {s.region_count:,}, disk used "
            f"{_ratio(s.used_ratio)}, version {s.version or '-'}",
            f"  drained (evict-leader): {'yes' if s.drained else 'no'}",
        ]
        if s.last_heartbeat is not None:
            lines.append(f"  last heartbeat {_stamp(s.last_heartbeat)} UTC")
        if outcome.incidents:
            lines.append("Open incidents:")
            lines += [f"  {_incident_line(i, named)}" for i in outcome.incidents]
        if outcome.proposals:
            lines.append("Proposals naming it:")
            lines += [f"  {_proposal_line(p, named)}" for p in outcome.proposals]
        return "\n".join(lines)
    if isinstance(outcome, RegionView):
        lines = [
            f"Region {outcome.region_id}: leader on store {outcome.leader_store_id}, "
            f"{outcome.approximate_size_mib:,} MiB, {outcome.approximate_keys:,} keys, epoch "
            f"version {outcome.epoch_version} conf_ver {outcome.conf_ver}",
            f"  keys [{outcome.start_key or '-inf'}, {outcome.end_key or '+inf'})",
        ]
        for peer in outcome.peers:
            marks = [
                m
                for m, on in (
                    ("leader", peer.leader),
                    ("down", peer.down),
                    ("pending", peer.pending),
                )
                if on
            ]
            lines.append(
                f"  peer {peer.peer_id} on store {peer.store_id}: {peer.role}"
                + (f" ({', '.join(marks)})" if marks else "")
            )
        op = outcome.operator
        lines.append(
            f"  operator: {op.desc} {op.status} ({op.brief})" if op else "  operator: none"
        )
        return "\n".join(lines)
    if isinstance(outcome, IncidentsView):
        if not outcome.incidents:
            return "No open incidents."
        return "\n".join(_incident_line(i, named) for i in outcome.incidents)
    if isinstance(outcome, ProposalsView):
        lines = [f"Proposals not finished: {len(outcome.proposals)}"]
        lines += [f"  {_proposal_line(p, named)}" for p in outcome.proposals]
        if outcome.recent:
            lines.append("Recently finished:")
            lines += [
                f"  {_proposal_line(p, named)}" + (f"\n      {p.outcome}" if p.outcome else "")
                for p in outcome.recent
            ]
        return "\n".join(lines)
    if isinstance(outcome, ProposalView):
        return "\n".join(_proposal_view_lines(outcome))
    if isinstance(outcome, AuditView):
        if not outcome.events:
            return "The audit log is empty."
        return "\n".join(_audit_line(e) for e in outcome.events)
    if isinstance(outcome, HelpView):
        return outcome.text
    if isinstance(outcome, ClustersView):
        return "\n".join(["Clusters:", *(f"  {line}" for line in outcome.lines())])
    if isinstance(outcome, ProposalCreated):
        p = outcome.proposal
        lines = [
            f"Proposal {p.id} created by {plain_name(p.requested_by)}: "
            f"{outcome.dry_run.description}",
            f"  risk {p.risk.value}; state {p.state.value}"
            + ("; approved automatically (low risk)" if outcome.auto_approved else ""),
            *[f"  {line}" for line in _dry_run_lines(outcome.dry_run)],
        ]
        if p.undo is not None:
            lines.append(f"  Undo: {p.undo.action} {' '.join(map(str, p.undo.params.values()))}")
        elif not p.reversible:
            lines.append("  Not reversible.")
        return "\n".join(lines)
    if isinstance(outcome, DryRunOutcome):
        return outcome.dry_run.text()
    if isinstance(outcome, Decided):
        return messages.decided(outcome, plain_name, datetime.now(UTC)) + "."
    if isinstance(outcome, Refused):
        lines = []
        if outcome.dry_run is not None:
            lines.append(f"Preflight: {outcome.dry_run.description}")
            lines += [
                f"  [{'FAIL' if not c.ok else 'WARN' if c.warning else 'ok'}] {c.name}: {c.message}"
                for c in outcome.dry_run.preflight.checks
            ]
        reason = messages.refusal(outcome, plain_name, now=datetime.now(UTC), prog=CLI_PROG)
        lines.append(reason if reason.startswith("Refused") else f"Refused: {reason}")
        return "\n".join(lines)
    if isinstance(outcome, KillSwitchOutcome):
        return messages.switches(outcome.settings, plain_name, outcome.cluster)
    if isinstance(outcome, Attended):
        return attended_text(outcome)
    return "\n".join(_report_lines(outcome))


def _audit_line(event: AuditEvent) -> str:
    mark = "" if event.outcome.value == "ok" else f" [{event.outcome.value}]"
    reason = event.reason or event.detail.get("policy")
    why = f": {reason}" if reason else ""
    return (
        f"{_stamp(event.at)}  {event.actor.key:<24} {event.action:<26} {event.subject}{mark}{why}"
    )


def _proposal_view_lines(view: ProposalView) -> list[str]:
    p = view.proposal
    title = view.text.title if view.text else f"{p.action} {params_text(p)}"
    lines = [
        f"Proposal {p.id}: {title}",
        f"  state {p.state.value} (version {p.version}), risk {p.risk.value}, origin "
        f"{p.origin.value}",
        f"  requested by {plain_name(p.requested_by)} at {_stamp(p.created_at)}; expires "
        f"{_stamp(p.expires_at)}",
    ]
    if p.reason:
        lines.append(f"  reason: {p.reason}")
    if p.approvals:
        lines.append(
            "  approved by "
            + ", ".join(f"{plain_name(a.by)} at {clock_text(a.at)}" for a in p.approvals)
        )
    if p.decided_by is not None and p.decision_reason:
        lines.append(f"  decision: {p.decision_reason}")
    if view.text is not None:
        lines += [f"  request: {r}" for r in view.text.requests]
        lines.append(f"  undo: {view.text.undo}")
    for check in p.preflight:
        mark = "FAIL" if not check.get("ok") else "WARN" if check.get("warning") else "ok"
        lines.append(f"  [{mark}] {check.get('name')}: {check.get('message')}")
    if p.outcome:
        lines.append(f"  outcome: {p.outcome}")
    if view.execution is not None:
        lines += [f"  {line}" for line in _execution_lines(view.execution)]
    if view.undo is not None:
        lines.append(
            f"  Undo available: {view.undo.action} {json.dumps(view.undo.params)} "
            f"(`{CLI_PROG} undo {p.id}`)"
        )
    lines.append("History:")
    lines += [f"  {_audit_line(e)}" for e in view.history]
    return lines


def _report_lines(report: ExecutionReport) -> list[str]:
    p, execution = report.proposal, report.execution
    ok = execution.status in (ExecutionStatus.SUCCEEDED, ExecutionStatus.RECONCILED_SUCCEEDED)
    verdict = "succeeded" if ok else execution.status.value.replace("_", " ")
    told = p.outcome or execution.error or ""
    if execution.status is ExecutionStatus.UNVERIFIED:
        lines = [f"{p.id}: {told}"]  # "sent and accepted, not verified: ..."
    else:
        lines = [f"{p.id} {verdict}: {told}".rstrip()]
    if report.undo is not None:
        lines.append(
            f"Undo: `{CLI_PROG} undo {p.id}` proposes {report.undo.action} "
            f"{json.dumps(report.undo.params)}"
        )
    return lines


__all__ = ["clock_text", "params_text", "plain_name", "render"]
