"""Actions in words, from the action registry: title, parameters, undo, the PD requests, the
command that proposes it again, and the preflight checks and dry-run preview stored on a
proposal. Tolerates unknown actions and unexpected JSON (shows what it has). Pure."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from bot.render.kit import esc
from bot.render.limits import clip
from engine.commands import DRY_RUN, SLACK_PROG
from operator_tikv.actions import REGISTRY, ActionError, ActionText


def action_text(action: str, params: Mapping[str, Any]) -> ActionText | None:
    """The registry's description of `action` with `params`; None if it cannot be described."""
    entry = REGISTRY.get(action)
    if entry is None:
        return None
    try:
        typed = entry.validate(dict(params))
        result: ActionText = entry.present(typed)
    except (ActionError, ValueError, TypeError):
        return None
    return result


def short_title(action: str, params: Mapping[str, Any]) -> str:
    """ "Drain store 4" (the part of the description before the colon)."""
    text = action_text(action, params)
    if text is None:
        shown = " ".join(str(v) for v in params.values())
        return f"{action} {shown}".strip()
    return text.title.split(":", 1)[0].strip()


def param_lines(action: str, params: Mapping[str, Any]) -> list[str]:
    """ "store ID: 4" per parameter (labels from the registry when known), escaped."""
    text = action_text(action, params)
    pairs = text.params if text is not None else tuple((k, str(v)) for k, v in params.items())
    return [f"{esc(label)}: {esc(value)}" for label, value in pairs]


def command_line(action: str, params: Mapping[str, Any], *, dry_run: bool = False) -> str:
    """The slash command that proposes this action again: `/tikv drain 4`."""
    entry = REGISTRY.get(action)
    words = [SLACK_PROG, action]
    if entry is None:
        words += [str(v) for v in params.values()]
    else:
        model = entry.params_model
        for name, info in model.model_fields.items():
            if name not in params:
                continue
            value = params[name]
            if info.is_required():
                words.append(_word(value))
            elif value != info.default:
                words += ["--" + name.replace("_", "-"), _word(value)]
    if dry_run:
        words.append(DRY_RUN)
    return " ".join(words)


def _word(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def describe_request(request: Mapping[str, Any]) -> str:
    """One PD request (a stored PDWrite or execution request) on one line."""
    method = str(request.get("method", "?"))
    path = str(request.get("path", "?"))
    query = request.get("query")
    if isinstance(query, Mapping) and query:
        path += "?" + "&".join(f"{k}={v}" for k, v in query.items())
    body = request.get("body")
    if body is None:
        return f"{method} {path}"
    return f"{method} {path} {json.dumps(body, separators=(', ', ': '))}"


def request_lines(
    action: str, params: Mapping[str, Any], preview: Mapping[str, Any] | None
) -> list[str]:
    """The PD requests the action will send: from the dry-run preview when there is one,
    otherwise from the registry."""
    if preview is not None:
        requests = preview.get("requests")
        if isinstance(requests, Sequence) and not isinstance(requests, str):
            lines = [describe_request(r) for r in requests if isinstance(r, Mapping)]
            if lines:
                return lines
    text = action_text(action, params)
    return list(text.requests) if text is not None else []


def expected_effect(preview: Mapping[str, Any] | None) -> str | None:
    if preview is None:
        return None
    effect = preview.get("expected_effect")
    return str(effect) if effect else None


def check_lines(checks: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per preflight check: its result, name and what was observed (the reason when
    it failed, the warning when it passed with one)."""
    lines = []
    for check in checks:
        ok = bool(check.get("ok"))
        warning = ok and bool(check.get("warning"))
        name = esc(clip(str(check.get("name", "check")), 60))
        observed = str(check.get("observed") or "")
        message = str(check.get("message") or observed)
        icon = ":warning:" if warning else ":white_check_mark:" if ok else ":x:"
        shown = observed if ok and not warning else message
        if not ok and observed and observed not in message:
            shown = f"{message} (observed: {observed})"
        lines.append(f"{icon} *{name}*: {esc(shown)}")
    return lines


def preview_checks(
    preflight: Sequence[Mapping[str, Any]], preview: Mapping[str, Any] | None
) -> list[Mapping[str, Any]]:
    """The preflight checks of a proposal: stored ones, else those inside the preview."""
    if preflight:
        return list(preflight)
    if preview is not None:
        report = preview.get("preflight")
        if isinstance(report, Mapping):
            checks = report.get("checks")
            if isinstance(checks, Sequence) and not isinstance(checks, str):
                return [c for c in checks if isinstance(c, Mapping)]
    return []


__all__ = [
    "action_text",
    "check_lines",
    "command_line",
    "describe_request",
    "expected_effect",
    "param_lines",
    "preview_checks",
    "request_lines",
    "short_title",
]
