"""Messages name the cluster when the bot watches several (`clusters_named`/`named`), and never
with one cluster, whatever that cluster is called: the incident and proposal cards' header,
fields and notification text, the `/tikv incidents`, `/tikv proposals`, `/tikv audit` and
`/tikv status` lists, the answer to a new proposal, the App Home rows, and the terminal's lines
and lists."""

from __future__ import annotations

import io
import json

from bot.render.home import Cluster, HomeData, home_view
from bot.render.incident import incident_parent
from bot.render.proposal import proposal_message
from bot.render.views import ClusterNaming, outcome_view
from engine.model import AuditEvent, KillSwitch, ProposalState
from engine.results import (
    AuditView,
    IncidentsView,
    ProposalCreated,
    ProposalsView,
    ProposalView,
    StatusView,
)
from tests.bot.records import dry_run
from tests.bot.render_text import text_of
from tests.plugins.storage import T0, alice, make_incident, make_proposal
from tikvops.outcome_text import render
from tikvops.terminal_notifier import TerminalNotifier

SEVERAL = ClusterNaming(named=True, cluster="prod")


class _At:
    def now(self):  # type: ignore[no-untyped-def]
        return T0


def _text(rendered) -> str:  # type: ignore[no-untyped-def]
    return rendered.text + "\n" + json.dumps(rendered.blocks)


def test_cards_name_the_cluster_only_when_there_are_several() -> None:
    named = incident_parent(make_incident(cluster="prod"), T0, clusters_named=True)
    assert named.text.startswith("CRITICAL: [prod] ")
    blocks = json.dumps(named.blocks)
    assert "[prod] store-down" in blocks and "*Cluster*" in blocks
    # one cluster, even one called `prod` (a lone [clusters.prod] table): no name anywhere
    for incident in (make_incident(), make_incident(cluster="prod")):
        single = incident_parent(incident, T0)
        assert "[prod]" not in _text(single) and "[default]" not in _text(single)
        assert "Cluster" not in json.dumps(single.blocks)
    card = proposal_message(make_proposal(cluster="staging"), T0, clusters_named=True)
    assert card.text.startswith("[staging] Proposal P-7")
    assert "*Cluster*" in json.dumps(card.blocks)
    lone = proposal_message(make_proposal(cluster="staging"), T0)
    assert "Cluster" not in json.dumps(lone.blocks) and "[staging]" not in lone.text


def test_lists_name_each_records_cluster_only_when_there_are_several() -> None:
    prod_incident = make_incident(cluster="prod")
    staging_proposal = make_proposal(cluster="staging")
    audit = AuditEvent(at=T0, actor=alice(), action="proposal.approve", subject="P-7")
    outcomes = [
        IncidentsView(incidents=[prod_incident]),
        ProposalsView(proposals=[staging_proposal]),
        AuditView(events=[audit.model_copy(update={"cluster": "staging"})]),
        StatusView(
            stores=[],
            state_counts={},
            open_incidents=[prod_incident],
            active_proposals=[staging_proposal],
            kill_switch=KillSwitch(),
            observe_only=False,
        ),
    ]
    for outcome in outcomes:
        several = _text(outcome_view(outcome, T0, channel_mention="#ops", clusters=SEVERAL))
        one = _text(outcome_view(outcome, T0, channel_mention="#ops"))
        assert "[prod]" in several or "[staging]" in several, type(outcome).__name__
        assert "[prod]" not in one and "[staging]" not in one, type(outcome).__name__
    status = outcome_view(outcomes[-1], T0, channel_mention="#ops", clusters=SEVERAL)
    assert "TiKV cluster status: prod" in _text(status)
    created = ProposalCreated(proposal=staging_proposal, dry_run=dry_run())
    said = outcome_view(created, T0, channel_mention="#tikv-staging", clusters=SEVERAL)
    assert "[staging]" in said.text + text_of(said.blocks) and "#tikv-staging" in _text(said)


def test_a_proposal_view_shows_its_own_clusters_quorum() -> None:
    high = make_proposal(cluster="staging")
    view = ProposalView(proposal=high, text=None, execution=None, history=[])
    quorum = ClusterNaming(named=True, quorum=lambda p: 3 if p.cluster == "staging" else 1)
    shown = _text(outcome_view(view, T0, channel_mention="#ops", clusters=quorum))
    assert "3 approvals from different people" in shown
    assert "one approval" in _text(outcome_view(view, T0, channel_mention="#ops"))


def test_home_rows_name_their_cluster_only_when_there_are_several() -> None:
    def view(named: bool) -> str:
        data = HomeData(
            kill_switch=KillSwitch(),
            observe_only=False,
            clusters=[Cluster(name="prod", stores={"Up": 3}), Cluster(name="staging")],
            incidents=[make_incident(cluster="prod")],
            pending=[make_proposal(cluster="staging")],
            named=named,
        )
        return text_of(home_view(data, T0)["blocks"])

    several, one = view(True), view(False)
    assert "[prod] I-1" in several.replace("*", "")
    assert "[staging] P-7" in several.replace("*", "")
    assert "[prod]" not in one and "[staging]" not in one


async def test_terminal_lines_name_the_cluster_only_when_there_are_several() -> None:
    out = io.StringIO()
    terminal = TerminalNotifier(out, clock=_At(), named=True)
    await terminal.incident_opened(make_incident(cluster="prod"))
    single = TerminalNotifier(out, clock=_At())
    await single.incident_opened(make_incident(id="I-2", cluster="prod"))
    first, second = out.getvalue().splitlines()
    assert " prod/I-1 " in first
    assert " I-2 " in second and "/I-2" not in second
    listing = IncidentsView(incidents=[make_incident(cluster="prod")])
    assert render(listing, named=True).startswith("prod/I-1 ")
    assert render(listing).startswith("I-1 ")
    proposals = ProposalsView(proposals=[make_proposal(ProposalState.PROPOSED, cluster="prod")])
    assert "prod/P-7" in render(proposals, named=True) and "prod/" not in render(proposals)
