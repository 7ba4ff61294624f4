"""The terminal's line for an incident's changes: the relay hands the `TerminalNotifier` the
event's changes (data) and the severity before them, and the line words them with the same
sentences as Slack's "Changed" reply (`bot.render.incident.change_sentence`), before the card's
text so a cut line keeps them."""

from __future__ import annotations

import io

from bot.render.incident import change_sentence
from engine.clock import FakeClock
from engine.events import ChangeKind, EventKind, IncidentChange, incident_event
from engine.model import Incident, Severity
from engine.relay import tell
from tests.plugins.storage import make_incident
from tikvops.terminal_notifier import TerminalNotifier

ESCALATED = IncidentChange(
    kind=ChangeKind.ESCALATED, title_from="Store 5 disconnected", title_to="Store 5 down"
)
APPEARED = IncidentChange(
    kind=ChangeKind.CONSEQUENCE_APPEARED,
    consequence="regions missing a replica",
    count=12,
    stores=(5,),
    by_presence=True,
)


def store_down() -> Incident:
    clock = FakeClock()
    return make_incident(
        id="I-3",
        kind="store_down",
        subject="store:5",
        at=clock.now(),
        severity=Severity.CRITICAL,
        worst_severity=Severity.CRITICAL,
        title="Store 5 down",
        details={"unit": "s", "message": "Store 5 is Down."},
    )


async def test_the_relay_gives_the_terminal_the_changes_and_it_words_them_once() -> None:
    out = io.StringIO()
    notifier = TerminalNotifier(out, clock=FakeClock())
    incident = store_down()
    event = incident_event(
        EventKind.INCIDENT_UPDATED,
        incident,
        (ESCALATED, APPEARED),
        Severity.WARNING,
    )
    await tell(notifier, event)
    [line] = out.getvalue().splitlines()
    assert " UPDATED   I-3   " in line
    said = (
        "Store 5 disconnected → Store 5 down. New consequence: 12 regions missing a replica "
        "(while store 5 is unhealthy). Severity warning → critical. Now: CRITICAL Store 5 down"
    )
    assert said in line
    # one place per sentence: the terminal's words are the Slack reply's
    assert change_sentence(APPEARED) in line and change_sentence(ESCALATED) in line


async def test_an_update_without_changes_is_the_card_alone() -> None:
    out = io.StringIO()
    notifier = TerminalNotifier(out, clock=FakeClock())
    await tell(notifier, incident_event(EventKind.INCIDENT_UPDATED, store_down()))
    [line] = out.getvalue().splitlines()
    assert "UPDATED   I-3   CRITICAL Store 5 down: 1 s. Store 5 is Down." in line
    assert "Now:" not in line and "Severity" not in line


def test_every_change_kind_has_its_sentence() -> None:
    sentences = {
        ChangeKind.ESCALATED: "Store 5 disconnected → Store 5 down.",
        ChangeKind.CONSEQUENCE_APPEARED: (
            "New consequence: 12 regions missing a replica (while store 5 is unhealthy)."
        ),
        ChangeKind.CONSEQUENCE_CLEARED: "Cleared: regions missing a replica.",
        ChangeKind.CAUSE_CLEARED: (
            "The cause cleared (Store 5 down); the incident stays open until its consequences "
            "clear too."
        ),
        ChangeKind.MERGED_INTO: "Merged into I-2 (Store 5 down): the same cause.",
        ChangeKind.MERGED_FROM: "I-2 (Store 5 down) merged into this incident: the same cause.",
    }
    changes = {
        ChangeKind.ESCALATED: ESCALATED,
        ChangeKind.CONSEQUENCE_APPEARED: APPEARED,
        ChangeKind.CONSEQUENCE_CLEARED: IncidentChange(
            kind=ChangeKind.CONSEQUENCE_CLEARED, consequence="regions missing a replica"
        ),
        ChangeKind.CAUSE_CLEARED: IncidentChange(
            kind=ChangeKind.CAUSE_CLEARED, title_from="Store 5 down"
        ),
        ChangeKind.MERGED_INTO: IncidentChange(
            kind=ChangeKind.MERGED_INTO, other_id="I-2", other_title="Store 5 down"
        ),
        ChangeKind.MERGED_FROM: IncidentChange(
            kind=ChangeKind.MERGED_FROM, other_id="I-2", other_title="Store 5 down"
        ),
    }
    assert set(changes) == set(ChangeKind)
    for kind, change in changes.items():
        assert change_sentence(change) == sentences[kind]


def test_an_event_written_with_sentences_still_reads() -> None:
    """Events stored before the changes were data held sentences: they still load."""
    event = incident_event(EventKind.INCIDENT_UPDATED, store_down())
    raw = event.model_dump(mode="json")
    raw["notes"] = ["Store 5 disconnected → Store 5 down."]
    loaded = type(event).model_validate(raw)
    assert loaded.notes == () and loaded.incident == event.incident
