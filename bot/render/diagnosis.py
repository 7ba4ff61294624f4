"""The diagnosis thread reply: summary, likely causes (interpretations, with confidence) kept
apart from the evidence (observed facts, with numbers and sources), and the actions proposed;
and the follow-up reply naming the suggested actions that were not proposed, with the engine's
reason for each. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bot import messages
from bot.render import action as act
from bot.render import fmt
from bot.render.kit import Rendered, context, esc, rendered, section, sentence
from bot.render.limits import cap_items
from engine.model import Diagnosis, Incident, NotProposed

MAX_CAUSES = 8
MAX_EVIDENCE = 15
MAX_ACTIONS = 10
NO_ACTION = "*No action proposed.* The incident is still watched; nothing will change the cluster."


def _bullets(lines: list[str], limit: int, noun: str) -> str:
    return "\n".join(f"• {line}" for line in cap_items(lines, limit, noun))


def diagnosis_reply(incident: Incident, diagnosis: Diagnosis, now: datetime) -> Rendered:
    """The diagnosis of `incident`, for its thread."""
    by = fmt.origin_text_for_diagnosis(diagnosis)
    if diagnosis.error:
        error = diagnosis.error.removeprefix("diagnosis unavailable: ")
        text = (
            f":warning: *Diagnosis unavailable* for {esc(incident.id)} ({by}): {esc(error)}\n"
            "The incident is still watched and updated here; check the numbers in the message "
            "above, or ask for a proposal with `/tikv help`."
        )
        blocks: list[Any] = [section(text)]
        if diagnosis.summary:
            blocks.append(section(esc(diagnosis.summary)))
        return rendered(f"Diagnosis unavailable for {incident.title}", blocks)
    confidence = f" · confidence {diagnosis.confidence:.0%}"
    blocks = [section(f":mag: *Diagnosis* by {by}{confidence}\n{esc(diagnosis.summary)}")]
    if diagnosis.causes:
        causes = [
            esc(c.statement) + (f" _({c.confidence:.0%})_" if c.confidence is not None else "")
            for c in diagnosis.causes
        ]
        blocks.append(
            section("*Likely causes* (interpretation)\n" + _bullets(causes, MAX_CAUSES, "causes"))
        )
    if diagnosis.evidence:
        facts = []
        for item in diagnosis.evidence:
            line = esc(item.fact)
            if item.value is not None:
                line += f": {fmt.with_unit(item.value, item.unit or '')}"
            if item.source:
                line += f" _({esc(item.source)})_"
            facts.append(line)
        blocks.append(
            section(
                "*Evidence* (observed)\n" + _bullets(facts, MAX_EVIDENCE, "facts"), noun="facts"
            )
        )
    if diagnosis.actions:
        proposed = [
            f"{esc(act.short_title(a.action, a.params))}"
            + (f": {esc(a.reason)}" if a.reason else "")
            for a in diagnosis.actions
        ]
        blocks.append(
            section(
                "*Proposed actions* (each is posted below with Approve / Reject, or with the "
                "reason it was not proposed)\n" + _bullets(proposed, MAX_ACTIONS, "actions")
            )
        )
    else:
        blocks.append(section(NO_ACTION))
    notes = [f"{esc(incident.id)} · diagnosed {fmt.at(diagnosis.created_at, now)}"]
    if diagnosis.prompt_version:
        notes.append(f"prompt {esc(diagnosis.prompt_version)}")
    blocks.append(context(*notes))
    return rendered(f"Diagnosis of {incident.title}: {diagnosis.summary}", blocks)


def not_proposed_reply(
    incident: Incident,
    diagnosis: Diagnosis,
    not_proposed: Sequence[NotProposed],
    now: datetime,
) -> Rendered:
    """The suggested actions of `diagnosis` that did not become proposals, for the incident's
    thread: each one with the engine's refusal sentence, or the proposal it repeats."""
    refused = [n for n in not_proposed if n.duplicate_of is None]
    repeated = [n for n in not_proposed if n.duplicate_of is not None]
    blocks: list[Any] = []
    if refused:
        lines = [
            f"*{esc(act.short_title(n.suggested.action, n.suggested.params))}*: "
            + sentence(n.reason)
            for n in refused
        ]
        count = "action was" if len(refused) == 1 else "actions were"
        blocks.append(
            section(
                f":no_entry: *{len(refused)} suggested {count} not proposed*\n"
                + _bullets(lines, MAX_ACTIONS, "actions"),
                noun="actions",
            )
        )
    if repeated:
        lines = [
            f"{esc(act.short_title(n.suggested.action, n.suggested.params))}: already proposed "
            f"as {esc(n.duplicate_of)} (above in this thread)"
            for n in repeated
        ]
        blocks.append(
            section(
                "*Suggested again, not proposed twice*\n" + _bullets(lines, MAX_ACTIONS, "actions"),
                noun="actions",
            )
        )
    notes = [f"{esc(incident.id)} · diagnosed {fmt.at(diagnosis.created_at, now)}"]
    blocks.append(context(*notes))
    if refused:
        blocks.append(context(messages.NOT_PROPOSED_HINT))
    titles = ", ".join(
        act.short_title(n.suggested.action, n.suggested.params) for n in not_proposed
    )
    return rendered(f"Not proposed for {incident.title}: {titles}", blocks)


__all__ = ["diagnosis_reply", "not_proposed_reply"]
