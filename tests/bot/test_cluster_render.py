"""Messages name the cluster when the bot watches several (records of cluster `default`, the
single-cluster case, name none): the incident and proposal cards' header, fields and
notification text, and the terminal's lines."""

from __future__ import annotations

import io
import json

from bot.render.incident import incident_parent
from bot.render.proposal import proposal_message
from tests.plugins.storage import T0, make_incident, make_proposal
from tikvops.terminal_notifier import TerminalNotifier


class _At:
    def now(self):  # type: ignore[no-untyped-def]
        return T0


def test_cards_name_the_cluster_only_when_there_are_several() -> None:
    named = incident_parent(make_incident(cluster="prod"), T0)
    assert named.text.startswith("CRITICAL: [prod] ")
    blocks = json.dumps(named.blocks)
    assert "[prod] store-down" in blocks and "*Cluster*" in blocks
    single = incident_parent(make_incident(), T0)
    assert "[default]" not in json.dumps(single.blocks) and "Cluster" not in json.dumps(
        single.blocks
    )
    card = proposal_message(make_proposal(cluster="staging"), T0)
    assert card.text.startswith("[staging] Proposal P-7")
    assert "*Cluster*" in json.dumps(card.blocks)
    assert "Cluster" not in json.dumps(proposal_message(make_proposal(), T0).blocks)


async def test_terminal_lines_name_the_cluster() -> None:
    out = io.StringIO()
    terminal = TerminalNotifier(out, clock=_At())
    await terminal.incident_opened(make_incident(cluster="prod"))
    await terminal.incident_opened(make_incident(id="I-2"))
    first, second = out.getvalue().splitlines()
    assert " prod/I-1 " in first
    assert " I-2 " in second and "/I-2" not in second
