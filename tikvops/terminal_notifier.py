"""A `Notifier` for the terminal: one readable line per event, printed as it happens.

Used by `tikvops monitor` (the engine without Slack) and, with `executions_only=True`, by the
terminal action commands for the progress of a run they started (the command prints the
decisions itself). Each line starts with the UTC time, a tag and the record's ID, then says
what happened and what to do next:

    14:03:05 OPENED    I-3   WARNING  High write latency on store 2: 250 ms (threshold 100 ms). ...
    14:03:06 DIAGNOSIS I-3   playbook write_latency (60 %): Store 2 is slow ...
    14:03:06 PROPOSAL  P-1   for I-3, risk medium: Transfer the leader of region 12 ... Approve
                             with `tikvops approve P-1` (expires 14:33 UTC).
    14:03:06 SKIPPED   I-3   not proposed: Drain store 2 ...: Refused drain: ... Nothing was
                             sent to PD.
    14:05:20 RESOLVED  I-3   High write latency on store 2 after 2 min 15 s; worst warning.
    14:06:01 EXECUTING P-2   Drain store 4 ... (approved by alice)
    14:06:02 EXECUTION P-2   running: 3 of 10 leaders moved

(one line each; wrapped above only for this docstring). Lines are flushed at once so a pipe
or a test reading the output sees them immediately. Writing never raises: a closed stdout is
logged and ignored, as the Notifier contract asks.
"""

from __future__ import annotations

import logging
import math
import sys
import threading
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TextIO

from bot.render.incident import change_sentence, severity_sentence
from engine.clock import SystemClock, format_duration, format_time
from engine.events import IncidentChange
from engine.incident_facts import consequence_text, consequences_of
from engine.model import (
    AuditEvent,
    Diagnosis,
    Execution,
    Incident,
    NotProposed,
    Proposal,
    Severity,
)
from engine.ports import Clock
from operator_tikv.actions import ActionError, get_action
from operator_tikv.sentences import join_sentences
from tikvops.attention_text import attention_event_text
from tikvops.outcome_text import plain_name, record_id

logger = logging.getLogger(__name__)

_EXECUTION_TAGS = ("EXECUTING", "EXECUTION")
"""What `executions_only` prints: a run's start and its progress."""

MAX_TEXT = 400
"""Longest text after the tag, so one event stays one line on a terminal log."""


def _one_line(text: str, limit: int = MAX_TEXT) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _number(value: float, unit: str) -> str:
    if math.isinf(value):
        return "above the largest bucket"
    if unit in ("ratio", "share"):
        return f"{value:.0%}"
    if unit == "ms":
        return f"{value:.0f} ms"
    if unit == "s":
        return format_duration_seconds(value)
    if unit == "regions":
        return f"{value:.0f} regions"
    return f"{value:g} {unit}".strip()


def format_duration_seconds(seconds: float) -> str:
    return format_duration(timedelta(seconds=max(seconds, 0.0)))


def key_numbers(incident: Incident) -> str:
    """ "250 ms (threshold 100 ms)", or "" when the incident has no measured value."""
    if incident.value is None:
        return ""
    unit = incident.details.get("unit")
    unit = unit if isinstance(unit, str) else ""
    text = _number(incident.value, unit)
    if incident.threshold is not None and unit != "s":
        text += f" (threshold {_number(incident.threshold, unit)})"
    return text


def describe_action(action: str, params: dict[str, object]) -> str:
    """The registry's sentence for an action with its params, or `action k=v ...`."""
    try:
        found = get_action(action)
        return found.describe(found.validate(params))
    except ActionError:
        shown = " ".join(f"{k}={v}" for k, v in params.items())
        return f"{action} {shown}".strip()


class TerminalNotifier:
    """Prints every engine event as one line (see the module docstring)."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        clock: Clock | None = None,
        executions_only: bool = False,
        named: bool = False,
    ) -> None:
        """`named`: the bot watches several clusters, so every line names its record's
        (`prod/I-3`); with one cluster, whatever its name, none does."""
        self.stream = stream if stream is not None else sys.stdout
        self.named = named
        self.clock = clock or SystemClock()
        self.executions_only = executions_only
        self._lock = threading.Lock()
        self._notes_shown: dict[str, int] = {}

    def _ident(self, cluster: str, record: str) -> str:
        return record_id(cluster, record, self.named)

    # ------------------------------------------------------------------ incidents

    async def incident_opened(self, incident: Incident) -> None:
        self._write(
            "OPENED", self._ident(incident.cluster, incident.id), self._incident_text(incident)
        )

    async def incident_updated(self, incident: Incident) -> None:
        await self.incident_changed(incident, (), None)

    async def incident_changed(
        self,
        incident: Incident,
        changes: Sequence[IncidentChange],
        previous_severity: Severity | None,
    ) -> None:
        """One UPDATED line: what changed first (the same sentences as Slack's thread reply,
        `bot.render.incident.change_sentence`), then the card's text, so a line cut at
        MAX_TEXT keeps the change."""
        said = [change_sentence(change) for change in changes]
        if previous_severity is not None and previous_severity is not incident.severity:
            said.append(severity_sentence(previous_severity, incident.severity))
        text = self._incident_text(incident)
        if said:
            text = f"{' '.join(said)} Now: {text}"
        self._write("UPDATED", self._ident(incident.cluster, incident.id), text)

    async def incident_resolved(self, incident: Incident) -> None:
        end = incident.resolved_at or self.clock.now()
        into = incident.details.get("merged_into")
        if isinstance(into, str) and into:
            self._write(
                "MERGED",
                self._ident(incident.cluster, incident.id),
                f"{incident.title}: into {into}, the same cause.",
            )
            return
        took = format_duration(end - incident.opened_at)
        self._write(
            "RESOLVED",
            self._ident(incident.cluster, incident.id),
            f"{incident.title} after {took}; not seen since "
            f"{format_time(incident.clear_since or incident.last_seen_at, end)}; "
            f"worst {incident.worst_severity.value}.",
        )

    async def incident_attention(self, incident: Incident, event: AuditEvent) -> None:
        tag = "SILENCE" if "silence" in event.action else "OWNER"
        self._write(
            tag, self._ident(incident.cluster, incident.id), attention_event_text(incident, event)
        )

    def _incident_text(self, incident: Incident) -> str:
        numbers = key_numbers(incident)
        head = f"{incident.severity.value.upper():8} {incident.title}"
        if numbers:
            head += f": {numbers}"
        consequences = [consequence_text(c) for c in consequences_of(incident)]
        if consequences:
            # before the message, so a long message cut at MAX_TEXT keeps them
            head += f". Consequences: {'; '.join(consequences)}"
        message = incident.details.get("message")
        if isinstance(message, str) and message:
            head += f". {message}"
        return head

    # ------------------------------------------------------------------ diagnosis

    async def diagnosis_ready(self, incident: Incident, diagnosis: Diagnosis) -> None:
        by = f"{diagnosis.source.value} {diagnosis.model}" if diagnosis.model else "playbook"
        if diagnosis.error:
            text = f"for {incident.title}: unavailable ({diagnosis.error})"
        else:
            actions = len(diagnosis.actions)
            suffix = f"{actions} action(s) suggested." if actions else "No action suggested."
            summary = diagnosis.summary.rstrip().rstrip(".")
            text = f"{by} ({diagnosis.confidence:.0%}): {summary}. {suffix}"
        self._write("DIAGNOSIS", self._ident(incident.cluster, incident.id), text)

    async def actions_not_proposed(
        self, incident: Incident, diagnosis: Diagnosis, not_proposed: Sequence[NotProposed]
    ) -> None:
        for item in not_proposed:
            what = describe_action(item.suggested.action, dict(item.suggested.params))
            self._write(
                "SKIPPED",
                self._ident(incident.cluster, incident.id),
                f"not proposed: {what}: {item.reason}",
            )

    # ------------------------------------------------------------------ proposals

    async def proposal_made(self, proposal: Proposal) -> None:
        now = self.clock.now()
        where = f"for {proposal.incident_id}, " if proposal.incident_id else ""
        what = describe_action(proposal.action, dict(proposal.params))
        self._write(
            "PROPOSAL",
            self._ident(proposal.cluster, proposal.id),
            f"{where}risk {proposal.risk.value}: {what}. Approve with `tikvops approve "
            f"{proposal.id}` or reject with `tikvops reject {proposal.id}` (expires "
            f"{format_time(proposal.expires_at, now)}).",
        )

    async def proposal_changed(self, proposal: Proposal, event: AuditEvent) -> None:
        if event.action == "proposal.start":
            what = describe_action(proposal.action, dict(proposal.params))
            approvers = ", ".join(plain_name(a.by) for a in proposal.approvals)
            by = f" (approved by {approvers})" if approvers else ""
            self._write("EXECUTING", self._ident(proposal.cluster, proposal.id), f"{what}{by}")
            return
        if self.executions_only:
            return
        verb = event.action.removeprefix("proposal.")
        if event.action == "proposal.reminder":
            text = event.reason or f"{proposal.id} is still waiting for a decision"
            self._write("REMINDER", self._ident(proposal.cluster, proposal.id), text)
            return
        text = f"now {proposal.state.value} ({verb} by {plain_name(event.actor)})"
        if event.reason:
            text += f": {event.reason}"
        self._write(
            "PROPOSAL",
            self._ident(proposal.cluster, proposal.id),
            join_sentences(text, proposal.outcome),
        )

    async def execution_progress(self, proposal: Proposal, execution: Execution) -> None:
        """The status with the latest progress note; notes written since the last event that
        this one does not show come first, one line each (none is skipped)."""
        seen = self._notes_shown.get(proposal.id, 0)
        self._notes_shown[proposal.id] = len(execution.progress)
        status = execution.status.value
        for note in execution.progress[seen:-1]:
            self._write(
                "EXECUTION", self._ident(proposal.cluster, proposal.id), f"{status}: {note.message}"
            )
        text = status
        if execution.progress:
            text += f": {execution.progress[-1].message}"
        if execution.error:
            text += f" ({execution.error})"
        self._write("EXECUTION", self._ident(proposal.cluster, proposal.id), text)

    # ------------------------------------------------------------------ output

    def _write(self, tag: str, ident: str, text: str) -> None:
        if self.executions_only and tag not in _EXECUTION_TAGS:
            return
        stamp = self._stamp(self.clock.now())
        line = f"{stamp} {tag:<9} {ident:<5} {_one_line(text)}\n"
        try:
            with self._lock:
                self.stream.write(line)
                self.stream.flush()
        except (OSError, ValueError):
            logger.warning("could not print an event to the terminal: %s", line.rstrip())

    @staticmethod
    def _stamp(now: datetime) -> str:
        return now.strftime("%H:%M:%S")


__all__ = ["MAX_TEXT", "TerminalNotifier", "describe_action", "key_numbers"]
