"""Claude's reply (a Messages API response as JSON) to a typed diagnosis. Pure.

`parse_reply(message)` finds the `propose_remediation` tool call and returns a `ParsedReply`, or
raises `ReplyError` with one sentence saying why the reply is unusable: no tool call (text
only, a refusal, cut off at max_tokens), another tool, or an action that is not registered or
whose parameters do not fit the registry's types. Actions are validated with the same
registry models that generated the tool schema (`operator_tikv.actions.parse_action_call`);
whether their IDs exist in the live cluster is checked later (`claude.py`), against PD.

Tolerant where it is harmless: the descriptive fields (summary, causes, evidence, confidence)
accept strings for numbers, percentages for confidences, plain strings for causes and facts,
and drop malformed entries; `params` sent as a JSON string is decoded. Strict where it matters:
any doubt about an action rejects the whole reply, so nothing half-understood is proposed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from diagnosis.prompt import MAX_ACTIONS, TOOL_NAME
from engine.model import Evidence, Hypothesis, ProposedAction
from operator_tikv.actions import InvalidParams, UnknownAction, parse_action_call
from operator_tikv.playbooks import DiagnosisKind

MAX_SUMMARY = 2000
MAX_TEXT = 500
MAX_CAUSES = 5
MAX_EVIDENCE = 10


class ReplyError(ValueError):
    """Claude's reply cannot be used; the message says why in one sentence."""


@dataclass(frozen=True)
class ParsedReply:
    kind: DiagnosisKind
    summary: str
    causes: list[Hypothesis] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    confidence: float = 0.0
    actions: list[ProposedAction] = field(default_factory=list)
    model: str | None = None
    raw_kind: str | None = None


def _text(value: object, limit: int = MAX_TEXT) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip().rstrip("%"))
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _confidence(value: object) -> float | None:
    """0..1; a percentage (2..100) is scaled down, a slight overshoot (1..2) capped at 1;
    anything else is dropped."""
    number = _number(value)
    if number is None or number < 0 or number > 100:
        return None
    if number >= 2:
        return number / 100.0
    return min(number, 1.0)


def _kind(value: object) -> DiagnosisKind:
    if isinstance(value, str):
        normal = value.strip().lower().replace("-", "_").replace(" ", "_")
        try:
            return DiagnosisKind(normal)
        except ValueError:
            pass
    return DiagnosisKind.UNKNOWN


def _causes(raw: object) -> list[Hypothesis]:
    items = raw if isinstance(raw, list) else []
    causes = []
    for item in items:
        if isinstance(item, str):
            statement, conf = _text(item), None
        elif isinstance(item, Mapping):
            statement = _text(item.get("statement") or item.get("cause") or item.get("text"))
            conf = _confidence(item.get("confidence"))
        else:
            continue
        if statement:
            causes.append(Hypothesis(statement=statement, confidence=conf))
        if len(causes) >= MAX_CAUSES:
            break
    return causes


def _evidence(raw: object) -> list[Evidence]:
    items = raw if isinstance(raw, list) else []
    facts = []
    for item in items:
        if isinstance(item, str):
            fact, value, unit, source = _text(item), None, None, None
        elif isinstance(item, Mapping):
            fact = _text(item.get("fact") or item.get("text"))
            value = _number(item.get("value"))
            unit = _text(item.get("unit"), 20) or None
            source = _text(item.get("source"), 80) or None
        else:
            continue
        if fact:
            facts.append(Evidence(fact=fact, value=value, unit=unit, source=source))
        if len(facts) >= MAX_EVIDENCE:
            break
    return facts


def _params(raw: object) -> object:
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def parse_actions(raw: object) -> list[ProposedAction]:
    """Registry-valid actions, or ReplyError naming the first problem."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ReplyError("Claude's actions were not a list")
    if len(raw) > MAX_ACTIONS:
        raise ReplyError(f"Claude proposed {len(raw)} actions; at most {MAX_ACTIONS} are accepted")
    actions = []
    for item in raw:
        if not isinstance(item, Mapping):
            raise ReplyError("Claude proposed an action that is not an object")
        name = item.get("action")
        call = {"action": name, "params": _params(item.get("params", {}))}
        try:
            checked = parse_action_call(call)
        except UnknownAction as exc:
            raise ReplyError(
                f"Claude proposed {exc.name!r}, which is not a registered action "
                f"(registered: {', '.join(exc.known)})"
            ) from None
        except InvalidParams as exc:
            raise ReplyError(
                f"Claude proposed invalid parameters for {exc.action}: {'; '.join(exc.problems)}"
            ) from None
        actions.append(
            ProposedAction(
                action=checked.action,
                params=dict(checked.params),
                reason=_text(item.get("reason")),
            )
        )
    return actions


def _tool_calls(content: Sequence[Any]) -> list[Mapping[str, Any]]:
    return [b for b in content if isinstance(b, Mapping) and b.get("type") == "tool_use"]


def _text_of(content: Sequence[Any]) -> str:
    parts = [
        str(b.get("text", ""))
        for b in content
        if isinstance(b, Mapping) and b.get("type") == "text"
    ]
    return _text(" ".join(parts), 160)


def parse_reply(message: Mapping[str, Any]) -> ParsedReply:
    """The diagnosis in a Messages API response (see the module docstring)."""
    content = message.get("content")
    if not isinstance(content, list):
        content = []
    stop = message.get("stop_reason")
    calls = _tool_calls(content)
    if stop == "refusal":
        raise ReplyError("Claude declined to answer (stop_reason refusal)")
    if stop == "max_tokens":
        raise ReplyError("Claude's answer was cut off at the max_tokens limit")
    if not calls:
        said = _text_of(content)
        shown = f": {said!r}" if said else ""
        raise ReplyError(f"Claude answered without calling {TOOL_NAME} (stop_reason {stop}){shown}")
    ours = [c for c in calls if c.get("name") == TOOL_NAME]
    if not ours:
        raise ReplyError(f"Claude called an unknown tool {_text(calls[0].get('name'), 60)!r}")
    data = ours[0].get("input")
    if isinstance(data, str):
        data = _params(data)
    if not isinstance(data, Mapping):
        raise ReplyError(f"Claude's {TOOL_NAME} input was not an object")
    summary = _text(data.get("summary"), MAX_SUMMARY)
    if not summary:
        raise ReplyError("Claude's diagnosis has no summary")
    causes = _causes(data.get("causes"))
    confidence = _confidence(data.get("confidence"))
    if confidence is None:
        known = [c.confidence for c in causes if c.confidence is not None]
        confidence = max(known) if known else 0.0
    raw_kind = data.get("kind")
    model = message.get("model")
    return ParsedReply(
        kind=_kind(raw_kind),
        summary=summary,
        causes=causes,
        evidence=_evidence(data.get("evidence")),
        confidence=confidence,
        actions=parse_actions(data.get("actions")),
        model=model if isinstance(model, str) else None,
        raw_kind=raw_kind if isinstance(raw_kind, str) else None,
    )


__all__ = ["ParsedReply", "ReplyError", "parse_actions", "parse_reply"]
