"""The words of the command grammar and the help written from them: the built-in commands, and
each action's usage line and help from its params model in the registry."""

from __future__ import annotations

import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic.fields import FieldInfo

from engine.attention_commands import ATTENTION_SPECS
from operator_tikv.actions import REGISTRY, Action, ActionParams

SLACK_PROG = "/tikv"
CLI_PROG = "tikvops"
DRY_RUN = "--dry-run"
AUDIT_DEFAULT = 20
AUDIT_MAX = 500


# ---------------------------------------------------------------- the non-action commands


@dataclass(frozen=True)
class _Spec:
    name: str
    args: str
    summary: str
    group: str


_BUILTINS: tuple[_Spec, ...] = (
    _Spec("help", "[command]", "list the commands, or explain one", "Help"),
    _Spec("status", "", "cluster overview: stores, open incidents, pending proposals", "Read"),
    _Spec("stores", "", "every store with its state, leaders, regions and disk use", "Read"),
    _Spec("store", "<store-id>", "one store in detail", "Read"),
    _Spec("region", "<region-id>", "one region: peers, leader, health", "Read"),
    _Spec("incidents", "", "open incidents", "Read"),
    _Spec("clusters", "", "the clusters this bot watches, with their health", "Read"),
    _Spec("proposals", "", "proposals waiting for a decision", "Read"),
    _Spec("proposal", "<proposal-id>", "one proposal with its checks and history", "Read"),
    _Spec("audit", "[n]", f"the last n audit records (default {AUDIT_DEFAULT})", "Read"),
    _Spec("approve", "<proposal-id>", "approve a proposal (the approval policy applies)", "Decide"),
    _Spec(
        "reject",
        "<proposal-id> [reason...]",
        "reject a proposal, with an optional reason",
        "Decide",
    ),
    *(_Spec(name, args, summary, "Attend") for name, args, summary in ATTENTION_SPECS),
    _Spec(
        "kill-switch",
        "on|off|status [reason...]",
        "block (on) or allow (off) every execution, or show the switch",
        "Safety",
    ),
)
_BUILTIN_BY_NAME: Mapping[str, _Spec] = {spec.name: spec for spec in _BUILTINS}
_ALIASES: Mapping[str, str] = {"killswitch": "kill-switch", "?": "help", "acknowledge": "ack"}


def command_names() -> tuple[str, ...]:
    """Every command word, builtins first, then the registered actions."""
    return tuple(_BUILTIN_BY_NAME) + tuple(REGISTRY)


def _canonical(word: str) -> str:
    word = word.strip().lower().replace("_", "-")
    return _ALIASES.get(word, word)


# ---------------------------------------------------------------- usage and help from the registry


def _choices(info: FieldInfo) -> tuple[str, ...] | None:
    annotation = info.annotation
    if typing.get_origin(annotation) is Literal:
        return tuple(str(choice) for choice in typing.get_args(annotation))
    return None


def _metavar(model: type[ActionParams], field_name: str, info: FieldInfo) -> str:
    choices = _choices(info)
    if choices:
        return "|".join(choices)
    return model.metavars.get(field_name, field_name.replace("_", "-"))


def _positional(model: type[ActionParams]) -> list[tuple[str, FieldInfo]]:
    return [(n, i) for n, i in model.model_fields.items() if i.is_required()]


def _options(model: type[ActionParams]) -> list[tuple[str, FieldInfo]]:
    return [(n, i) for n, i in model.model_fields.items() if not i.is_required()]


def _option_flag(field_name: str) -> str:
    return "--" + field_name.replace("_", "-")


def usage(command: str, prog: str = SLACK_PROG) -> str:
    """The usage line of a command or action ("/tikv drain <store-id> [--dry-run]")."""
    name = _canonical(command)
    if name in REGISTRY:
        model = REGISTRY[name].params_model
        parts = [prog, name]
        parts += [f"<{_metavar(model, n, i)}>" for n, i in _positional(model)]
        parts += [f"[{_option_flag(n)} {_metavar(model, n, i)}]" for n, i in _options(model)]
        parts.append(f"[{DRY_RUN}]")
        return " ".join(parts)
    spec = _BUILTIN_BY_NAME.get(name)
    if spec is None:
        return f"{prog} help"
    return f"{prog} {spec.name} {spec.args}".rstrip()


def example_words(action: Action[Any]) -> list[str]:
    """The words that run `action` with its declared example params (for help and tests)."""
    model = action.params_model
    words = [action.name]
    for field_name, _info in _positional(model):
        words.append(_word(getattr(action.example, field_name)))
    for field_name, info in _options(model):
        value = getattr(action.example, field_name)
        if value != info.default:
            words += [_option_flag(field_name), _word(value)]
    return words


def _word(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def help_text(topic: str | None = None, prog: str = SLACK_PROG) -> str:
    """The overview of every command, or the details of one (generated from the registry)."""
    if topic is None:
        lines = [f"Commands ({prog} help <command> for details):"]
        for group in ("Read", "Decide", "Attend", "Safety", "Help"):
            lines.append(f"{group}:")
            lines += [
                f"  {usage(s.name, prog)}: {s.summary}" for s in _BUILTINS if s.group == group
            ]
        lines.append("Actions (each also takes --dry-run: run the checks, send nothing):")
        for action in REGISTRY.values():
            lines.append(
                f"  {usage(action.name, prog)}: {action.summary} (risk {action.risk.value})"
            )
        return "\n".join(lines)
    name = _canonical(topic)
    if name in REGISTRY:
        return _action_help(REGISTRY[name], prog)
    spec = _BUILTIN_BY_NAME[name]
    return f"Usage: {usage(name, prog)}\n{spec.summary[:1].upper()}{spec.summary[1:]}."


def _action_help(action: Action[Any], prog: str) -> str:
    model = action.params_model
    example = action.example
    lines = [
        f"Usage: {usage(action.name, prog)}",
        f"{action.summary}.",
        f"Risk: {action.risk.value}. "
        + (
            f"Undo: {action.undo_sentence(example)}"
            if action.reversible
            else action.undo_sentence(example)
        ),
        "Parameters:",
    ]
    for field_name, info in model.model_fields.items():
        metavar = _metavar(model, field_name, info)
        shown = f"<{metavar}>" if info.is_required() else f"{_option_flag(field_name)} {metavar}"
        default = "" if info.is_required() else f" (default {info.default})"
        lines.append(f"  {shown}: {info.title or field_name}, {info.description or ''}{default}")
    lines.append(f"  {DRY_RUN}: run the preflight checks and show the PD request; send nothing")
    lines.append(f"Example: {prog} {' '.join(example_words(action))}")
    lines.append(f"  sends {'; '.join(w.describe() for w in action.requests(example))}")
    return "\n".join(lines)
