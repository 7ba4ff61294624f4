"""The mark of each notification: a stable name for "this change of this record was told to
Slack", queued with the notification's messages in one transaction (`SlackOutbox.send`). A
record version has one mark, so a change is told once even if it is reported twice (the live
path and the start-up catch-up, `bot.catchup`), and a change whose mark is missing was never
told. Migration 0003 writes the same names for records stored before marks existed."""

from __future__ import annotations


def incident_opened(incident_id: str) -> str:
    return f"incident:{incident_id}:opened"


def incident_version(incident_id: str, version: int) -> str:
    return f"incident:{incident_id}:v{version}"


def incident_resolved(incident_id: str) -> str:
    return f"incident:{incident_id}:resolved"


def diagnosis_ready(diagnosis_id: int | None) -> str | None:
    return None if diagnosis_id is None else f"diagnosis:{diagnosis_id}"


def actions_not_proposed(diagnosis_id: int | None) -> str | None:
    return None if diagnosis_id is None else f"diagnosis:{diagnosis_id}:not-proposed"


def proposal_made(proposal_id: str) -> str:
    return f"proposal:{proposal_id}:made"


def proposal_version(proposal_id: str, version: int) -> str:
    return f"proposal:{proposal_id}:v{version}"


def audit_event(event_id: int | None) -> str | None:
    """Events that change no record (a reminder) are marked by their audit row."""
    return None if event_id is None else f"audit:{event_id}"


__all__ = [
    "actions_not_proposed",
    "audit_event",
    "diagnosis_ready",
    "incident_opened",
    "incident_resolved",
    "incident_version",
    "proposal_made",
    "proposal_version",
]
