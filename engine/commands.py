"""The command grammar shared by Slack (`/tikv drain 4`) and the terminal (`tikvops drain 4`).

`parse_command(text, prog=..., clusters=...)` turns words into a typed command, or a
`CommandError` naming what was wrong together with the usage line of that command. With
several clusters, a first word naming one (`/tikv prod drain 4`) sets the command's `cluster`.
It is pure: it checks words, numbers and arity; whether store 4 exists is preflight's job
against the live cluster.

Action commands, their usage lines and their help text come from the action registry: a
params model's required fields are positional (in declaration order), optional fields are
`--name value` options, and every action accepts `--dry-run` (`engine.command_help` writes the
usage lines and help, re-exported here).
"""

from __future__ import annotations

import re
import shlex
import types
import typing
from collections.abc import Collection, Sequence
from difflib import get_close_matches
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny
from pydantic.fields import FieldInfo

from engine.attention_commands import AttentionCommand, WordError, parse_attention
from engine.command_help import (
    _BUILTIN_BY_NAME,
    AUDIT_DEFAULT,
    AUDIT_MAX,
    CLI_PROG,
    DRY_RUN,
    SLACK_PROG,
    _canonical,
    _choices,
    _option_flag,
    _options,
    _positional,
    command_names,
    example_words,
    help_text,
    usage,
)
from operator_tikv.actions import REGISTRY, Action, ActionCall, ActionParams, InvalidParams

ReadView = Literal[
    "status",
    "stores",
    "store",
    "region",
    "incidents",
    "proposals",
    "proposal",
    "audit",
    "clusters",
]


class _Command(BaseModel):
    """`cluster`: the cluster the command names (`/tikv prod drain 4`), or that its channel or
    `tikvops --cluster` gives; None: not said (one cluster, or records that know theirs)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cluster: str | None = None


class HelpCommand(_Command):
    """`help [command]`: `topic` is a canonical command name, or None for the overview."""

    kind: Literal["help"] = "help"
    topic: str | None = None


class ReadCommand(_Command):
    """A read-only view. Only the field of that view is set (`store_id` for `store`, ...)."""

    kind: Literal["read"] = "read"
    view: ReadView
    store_id: int | None = None
    region_id: int | None = None
    proposal_id: str | None = None
    count: int | None = None


class ActionCommand(_Command):
    """A registered action with typed params; `dry_run` stops after preflight."""

    kind: Literal["action"] = "action"
    action: str
    params: SerializeAsAny[ActionParams]
    dry_run: bool = False

    @property
    def call(self) -> ActionCall:
        return ActionCall(action=self.action, params=self.params.model_dump(mode="json"))


class DecisionCommand(_Command):
    """`approve <proposal>` or `reject <proposal> [reason...]`."""

    kind: Literal["decision"] = "decision"
    decision: Literal["approve", "reject"]
    proposal_id: str
    reason: str | None = None


class KillSwitchCommand(_Command):
    """`kill-switch on|off|status`; `on` may carry a reason."""

    kind: Literal["kill-switch"] = "kill-switch"
    mode: Literal["on", "off", "status"]
    reason: str | None = None


_Asks = HelpCommand | ReadCommand | ActionCommand | DecisionCommand
Parsed = _Asks | KillSwitchCommand | AttentionCommand
Command = Annotated[Parsed, Field(discriminator="kind")]


class CommandError(BaseModel):
    """What was wrong with the words, and the usage line of the command (when known)."""

    model_config = ConfigDict(frozen=True)

    message: str
    command: str | None = None
    usage: str | None = None
    suggestion: str | None = None

    def text(self) -> str:
        """The whole reply: "store ID must be a whole number, got 'four'. Usage: ..."."""
        message = self.message if self.message.endswith((".", "?", "!")) else self.message + "."
        return f"{message} Usage: {self.usage}" if self.usage else message


# ---------------------------------------------------------------- parsing


_WHOLE = re.compile(r"^[+-]?[0-9]+$")
_DECIMAL = re.compile(r"^\+?(?:[0-9]+\.?[0-9]*|\.[0-9]+)$")
_PROPOSAL = re.compile(r"^(?:p-?|#)?([0-9]{1,18})$", re.IGNORECASE)
_MAX_DIGITS = 20
"""IDs and counts are at most 20 digits (PD's IDs are unsigned 64-bit); longer numbers are
refused before conversion (Python refuses to convert more than 4,300 digits)."""
_SPACES = re.compile(r"\s")  # Slack may send non-breaking spaces
_SMART_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "‘": "'", "’": "'", "‚": "'"})


class _Refusal(Exception):
    def __init__(self, message: str, suggestion: str | None = None) -> None:
        self.message = message
        self.suggestion = suggestion
        super().__init__(message)


def tokenize(text: str) -> list[str]:
    """Split like a shell (quotes group words); Slack's smart quotes count as quotes."""
    try:
        return shlex.split(_SPACES.sub(" ", text.translate(_SMART_QUOTES)))
    except ValueError as exc:
        raise _Refusal(f"could not read the command ({exc}); check the quotes") from None


def parse_command(
    text: str | Sequence[str], prog: str = SLACK_PROG, clusters: Collection[str] = ()
) -> Parsed | CommandError:
    """Words (a string, or argv without the program name) to a command or a CommandError.
    `clusters`: the configured cluster names; a first word naming one sets the command's
    `cluster` (only given when there are several). Never raises for any input."""
    try:
        words = tokenize(text) if isinstance(text, str) else [str(w) for w in text]
    except _Refusal as refusal:
        return CommandError(message=refusal.message, usage=f"{prog} help")
    if words and _canonical(words[0]) in {_canonical(prog), "tikv", "/tikv", "tikvops"}:
        words = words[1:]
    cluster: str | None = None
    if words and words[0].lower() in clusters:
        cluster, words = words[0].lower(), words[1:]
    parsed = _parse_words(words, prog, clusters)
    if cluster is not None and isinstance(parsed, _Command):
        return parsed.model_copy(update={"cluster": cluster})
    return parsed


def _parse_words(words: list[str], prog: str, clusters: Collection[str]) -> Parsed | CommandError:
    if not words:
        return HelpCommand()
    name = _canonical(words[0])
    args = words[1:]
    if name not in _BUILTIN_BY_NAME and name not in REGISTRY:
        guess = get_close_matches(name, command_names(), n=1, cutoff=0.6)
        hint = f" Did you mean '{guess[0]}'?" if guess else ""
        message = f"unknown command '{words[0]}'.{hint} Try {prog} help for the list"
        if clusters:
            message = (
                f"unknown command or cluster '{words[0]}'.{hint} Try {prog} help for the "
                f"commands; the clusters are {', '.join(clusters)}"
            )
        return CommandError(message=message, suggestion=guess[0] if guess else None)
    if any(a in {"-h", "--help"} for a in args):
        return HelpCommand(topic=name)
    try:
        if name in REGISTRY:
            return _parse_action(REGISTRY[name], args)
        return _parse_builtin(name, args)
    except (_Refusal, WordError) as refusal:
        return CommandError(
            message=str(refusal),
            command=name,
            usage=usage(name, prog),
            suggestion=getattr(refusal, "suggestion", None),
        )


def _parse_builtin(name: str, args: list[str]) -> Parsed:
    if DRY_RUN in args:
        raise _Refusal(f"{DRY_RUN} only applies to actions, not to {name}")
    if name in {"ack", "silence", "unsilence"}:
        return parse_attention(name, args)
    if name == "help":
        _arity(args, 0, 1)
        if not args:
            return HelpCommand()
        topic = _canonical(args[0])
        if topic not in _BUILTIN_BY_NAME and topic not in REGISTRY:
            guess = get_close_matches(topic, command_names(), n=1, cutoff=0.6)
            hint = f" Did you mean '{guess[0]}'?" if guess else ""
            raise _Refusal(f"there is no command '{args[0]}'.{hint}", guess[0] if guess else None)
        return HelpCommand(topic=topic)
    if name in {"status", "stores", "incidents", "proposals", "clusters"}:
        _arity(args, 0, 0)
        return ReadCommand(view=name)
    if name == "store":
        _arity(args, 1, 1, "store ID")
        return ReadCommand(view="store", store_id=_whole(args[0], "store ID", minimum=1))
    if name == "region":
        _arity(args, 1, 1, "region ID")
        return ReadCommand(view="region", region_id=_whole(args[0], "region ID", minimum=1))
    if name == "proposal":
        _arity(args, 1, 1, "proposal ID")
        return ReadCommand(view="proposal", proposal_id=_proposal_id(args[0]))
    if name == "audit":
        _arity(args, 0, 1)
        count = _whole(args[0], "the number of records", minimum=1) if args else AUDIT_DEFAULT
        if count > AUDIT_MAX:
            raise _Refusal(f"the number of records must be at most {AUDIT_MAX}, got {count}")
        return ReadCommand(view="audit", count=count)
    if name == "approve":
        _arity(args, 1, 1, "proposal ID")
        return DecisionCommand(decision="approve", proposal_id=_proposal_id(args[0]))
    if name == "reject":
        _arity(args, 1, None, "proposal ID")
        reason = " ".join(args[1:]).strip() or None
        return DecisionCommand(decision="reject", proposal_id=_proposal_id(args[0]), reason=reason)
    # kill-switch
    _arity(args, 1, None, "on, off or status")
    mode = args[0].lower()
    if mode not in {"on", "off", "status"}:
        raise _Refusal(f"kill-switch takes on, off or status, got '{args[0]}'")
    reason = " ".join(args[1:]).strip() or None
    if reason and mode != "on":
        raise _Refusal(f"only kill-switch on takes a reason; got extra words after {mode}")
    return KillSwitchCommand(mode=mode, reason=reason)


def _arity(args: list[str], low: int, high: int | None, missing: str = "argument") -> None:
    if len(args) < low:
        raise _Refusal(f"missing {missing}")
    if high is not None and len(args) > high:
        extra = " ".join(args[high:])
        raise _Refusal(f"too many arguments: '{_clip(extra)}'")


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _whole(word: str, label: str, minimum: int = 0) -> int:
    cleaned = word.lstrip("#")
    if not _WHOLE.match(cleaned):
        raise _Refusal(f"{label} must be a whole number, got '{_clip(word)}'")
    sign = "-" if cleaned.startswith("-") else ""
    digits = cleaned.lstrip("+-").lstrip("0") or "0"
    if len(digits) > _MAX_DIGITS:
        raise _Refusal(f"{label} is too large ({len(digits)} digits; at most {_MAX_DIGITS})")
    value = int(sign + digits)
    if value < minimum:
        raise _Refusal(f"{label} must be at least {minimum}, got {value}")
    return value


def _decimal(word: str, label: str) -> float:
    if not _DECIMAL.match(word):
        raise _Refusal(f"{label} must be a decimal number such as 0.85, got '{_clip(word)}'")
    return float(word)


def _proposal_id(word: str) -> str:
    """`P-7`, `p-7`, `P7`, `#7` and `7` all mean proposal P-7."""
    match = _PROPOSAL.match(word.strip())
    if not match:
        raise _Refusal(f"proposal ID looks like P-7, got '{_clip(word)}'")
    return f"P-{int(match.group(1))}"


def _parse_action(action: Action[Any], args: list[str]) -> ActionCommand:
    model = action.params_model
    dry_run = False
    values: dict[str, Any] = {}
    positional: list[str] = []
    options = {_option_flag(n): (n, i) for n, i in _options(model)}
    index = 0
    while index < len(args):
        word = args[index]
        index += 1
        if word == DRY_RUN:
            dry_run = True
            continue
        if word.startswith(DRY_RUN + "="):
            raise _Refusal(f"{DRY_RUN} takes no value")
        if word.startswith("--") and len(word) > 2:
            flag, _, inline = word.partition("=")
            if flag not in options:
                known = ", ".join([*options, DRY_RUN])
                raise _Refusal(
                    f"unknown option '{_clip(flag)}' for {action.name} (options: {known})"
                )
            field_name, info = options[flag]
            if inline:
                raw = inline
            elif index < len(args):
                raw = args[index]
                index += 1
            else:
                raise _Refusal(f"{flag} needs a value")
            values[field_name] = _convert(model, field_name, info, raw)
            continue
        positional.append(word)
    wanted = _positional(model)
    if len(positional) < len(wanted):
        missing = wanted[len(positional)][1].title or wanted[len(positional)][0]
        raise _Refusal(f"missing {missing}")
    if len(positional) > len(wanted):
        raise _Refusal(f"too many arguments: '{_clip(' '.join(positional[len(wanted) :]))}'")
    for (field_name, info), raw in zip(wanted, positional, strict=True):
        values[field_name] = _convert(model, field_name, info, raw)
    try:
        params = action.validate(values)
    except InvalidParams as exc:
        raise _Refusal("; ".join(exc.problems)) from None
    return ActionCommand(action=action.name, params=params, dry_run=dry_run)


def _convert(model: type[ActionParams], field_name: str, info: FieldInfo, raw: str) -> object:
    label = info.title or field_name.replace("_", " ")
    choices = _choices(info)
    if choices is not None:
        lowered = raw.lower()
        if lowered not in choices:
            raise _Refusal(f"{label} must be one of {', '.join(choices)}, got '{_clip(raw)}'")
        return lowered
    annotation = _base_type(info.annotation)
    if annotation is int:
        minimum = 1 if field_name.endswith("_id") else 0
        return _whole(raw, label, minimum=minimum)
    if annotation is float:
        return _decimal(raw, label)
    return raw


def _base_type(annotation: Any) -> Any:
    """int for `int`, `int | None`; the annotation itself otherwise."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        inner = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return inner[0] if len(inner) == 1 else annotation
    return annotation


__all__ = [
    "AUDIT_DEFAULT",
    "AUDIT_MAX",
    "CLI_PROG",
    "DRY_RUN",
    "SLACK_PROG",
    "ActionCommand",
    "Command",
    "CommandError",
    "DecisionCommand",
    "HelpCommand",
    "KillSwitchCommand",
    "Parsed",
    "ReadCommand",
    "ReadView",
    "command_names",
    "example_words",
    "help_text",
    "parse_command",
    "tokenize",
    "usage",
]
