"""The App Home tab as a `views.publish` view: the kill switch, the clusters, the open incidents
(with their owner and silence state, worded as on the cards), and the proposals
waiting for approval with the same Approve / Reject buttons as their cards (same action IDs and
block IDs, so the card's handlers decide them). Pure: data and `now` in, a view dict out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import Block

from bot.render import action as act
from bot.render import fmt
from bot.render.attention import attention_lines
from bot.render.kit import context, divider, esc, header, section
from bot.render.limits import clip
from bot.render.proposal import decision_buttons
from engine.model import Incident, KillSwitch, Proposal

MAX_INCIDENTS = 15
MAX_PROPOSALS = 10
MAX_VIEW_BLOCKS = 100


@dataclass(frozen=True)
class Cluster:
    """One cluster the bot watches: its name, and its stores by state (empty: unknown)."""

    name: str
    stores: Mapping[str, int] = field(default_factory=dict)
    problem: str | None = None


@dataclass(frozen=True)
class HomeData:
    """What the home tab shows (each incident's owner and silence are on its record)."""

    kill_switch: KillSwitch
    observe_only: bool
    clusters: Sequence[Cluster]
    incidents: Sequence[Incident]
    pending: Sequence[Proposal]
    named: bool = False
    """Several clusters: each incident and proposal row names its cluster."""


def _incident(incident: Incident, now: datetime, named: bool) -> str:
    lines = [
        f"{fmt.SEVERITY_ICON[incident.severity]} "
        f"{fmt.cluster_prefix(incident.cluster, named)}*{esc(incident.id)}* "
        f"{esc(clip(incident.title, 120))}\nsince {fmt.ago(incident.opened_at, now)}",
        *attention_lines(incident, now),
    ]
    return "\n".join(lines)


def _proposal(proposal: Proposal, now: datetime, named: bool) -> str:
    title = esc(act.short_title(proposal.action, proposal.params))
    about = f" · incident {esc(proposal.incident_id)}" if proposal.incident_id else ""
    return (
        f"{fmt.STATE_ICON[proposal.state]} "
        f"{fmt.cluster_prefix(proposal.cluster, named)}*{esc(proposal.id)}* {title}\n"
        f"{fmt.risk(proposal.risk)} risk{about} · by {fmt.origin_text(proposal.requested_by)}"
        f" · expires {fmt.until(proposal.expires_at, now)}"
    )


def _switch(data: HomeData, now: datetime) -> str:
    ks = data.kill_switch
    if ks.on:
        text = f":octagonal_sign: *Kill switch ON* by {fmt.who(ks.by)}"
        if ks.at is not None:
            text += f" at {fmt.at(ks.at, now)}"
        if ks.reason:
            text += f": {esc(ks.reason)}"
        text += ". Nothing executes until `/tikv kill-switch off`."
    else:
        text = ":large_green_circle: *Kill switch off*: approved actions execute."
    if data.observe_only:
        text += "\n:eyes: *Observe-only mode*: the bot proposes but never executes."
    return text


def _cluster(cluster: Cluster) -> str:
    counts = ", ".join(f"{n} {state}" for state, n in sorted(cluster.stores.items()))
    line = f"*{esc(cluster.name)}*: {counts or 'stores unknown'}"
    if cluster.problem:
        line += f"\n:warning: {esc(clip(cluster.problem, 300))}"
    return line


def home_view(data: HomeData, now: datetime) -> dict[str, Any]:
    """The `home` view for `views.publish`."""
    blocks: list[Any] = [header("tikvops"), section(_switch(data, now))]
    blocks.append(section("*Clusters*\n" + "\n".join(_cluster(c) for c in data.clusters)))
    blocks.append(divider())
    blocks.append(header(f"Open incidents ({len(data.incidents)})"))
    if not data.incidents:
        blocks.append(section("None. :large_green_circle:"))
    for incident in data.incidents[:MAX_INCIDENTS]:
        blocks.append(section(_incident(incident, now, data.named)))
    if len(data.incidents) > MAX_INCIDENTS:
        more = len(data.incidents) - MAX_INCIDENTS
        blocks.append(context(f"{more} more: `/tikv incidents`"))
    blocks.append(divider())
    blocks.append(header(f"Waiting for approval ({len(data.pending)})"))
    if not data.pending:
        blocks.append(section("Nothing is waiting for a decision."))
    for proposal in data.pending[:MAX_PROPOSALS]:
        blocks.append(section(_proposal(proposal, now, data.named)))
        blocks.append(decision_buttons(proposal))
    if len(data.pending) > MAX_PROPOSALS:
        more = len(data.pending) - MAX_PROPOSALS
        blocks.append(context(f"{more} more: `/tikv proposals`"))
    blocks.append(context(f"Updated {fmt.at(now, now)} · `/tikv help` for commands"))
    dicts = [b.to_dict() if isinstance(b, Block) else b for b in blocks]
    return {"type": "home", "blocks": dicts[:MAX_VIEW_BLOCKS]}


__all__ = ["Cluster", "HomeData", "home_view"]
