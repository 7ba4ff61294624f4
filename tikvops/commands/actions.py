"""The terminal surface: `tikvops drain 4`, `tikvops approve P-3`, `tikvops stores`, ...

Every command of the shared grammar (`engine.commands`, prog `tikvops`) is a subcommand here,
plus `undo <proposal>`. The engine runs in-process against the same database and PD the bot
uses, as the local operator (`Identity.cli("user@host")`), and every change is audited as
such. An action command creates a proposal, shows its preflight and dry run, and executes only
with `--yes` (or a typed `yes` on an interactive terminal); `--dry-run` shows without creating
anything. Whether the local operator may decide is the approval policy's
`allow_local_operator` (on by default, see `tikvops.wiring.build_policy`).

Options, anywhere after the subcommand: `--pd URL`, `--db PATH`, `--yes`/`-y`, `--json`.
Exit codes: 0 done (or shown), 1 refused or the execution failed / timed out, 2 could not run
(bad words, configuration, database).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from engine.clock import format_time
from engine.commands import (
    CLI_PROG,
    CommandError,
    HelpCommand,
    ReadCommand,
    help_text,
    parse_command,
    usage,
)
from engine.errors import StorageError
from engine.model import (
    ExecutionStatus,
    Identity,
    ProposalState,
)
from engine.ports import Notifier, NullNotifier
from engine.results import (
    Decided,
    DryRunOutcome,
    ExecutionReport,
    Outcome,
    ProposalCreated,
    RefusalKind,
    Refused,
)
from engine.service import Engine
from operator_tikv.actions import REGISTRY
from tikvops.outcome_text import plain_name, render
from tikvops.runtime import open_runtime
from tikvops.settings import load_settings
from tikvops.terminal import local_identity
from tikvops.terminal_notifier import TerminalNotifier

READ_COMMANDS = ("status", "stores", "store", "region", "incidents", "proposals", "proposal")
DECISION_COMMANDS = ("approve", "reject", "audit", "kill-switch")
ATTENTION_COMMANDS = ("ack", "silence", "unsilence")
UNDO = "undo"

ENGINE_OPTIONS: dict[str, Any] = {}
"""Extra `Engine` keyword arguments for every terminal command. Empty in production; tests and
the demo set poll intervals or a sleep that drives a simulated cluster."""

_SUMMARIES = {
    "status": "cluster overview: stores, open incidents, proposals, kill switch",
    "stores": "every store with its state, leaders, regions and disk use",
    "store": "one store in detail",
    "region": "one region: peers, leader, operator",
    "incidents": "open incidents",
    "proposals": "proposals not finished yet, and the last finished ones",
    "proposal": "one proposal with its checks, execution and history",
    "approve": "approve a proposal as the local operator (it executes if the quorum is met)",
    "reject": "reject a proposal, with an optional reason",
    "audit": "the last n audit records",
    "kill-switch": "block (on) or allow (off) every execution, or show it (status)",
    UNDO: "propose (and with --yes run) the undo of a proposal that succeeded",
    "ack": "take an incident as the local operator: you own it, reminders stop",
    "silence": "post nothing new about an incident for a while (30m, 2h, 1d; at most 7d)",
    "unsilence": "end an incident's silence now",
}


def register(subparsers: Any) -> None:
    """One subcommand per command word. Their words are parsed by the shared grammar, so
    argparse only collects them (prefix `+`: no word is taken for an argparse option)."""
    # `incidents` is answered from the database alone by tikvops.commands.monitor (no PD needed).
    names = (
        *(c for c in READ_COMMANDS if c != "incidents"),
        *DECISION_COMMANDS,
        *ATTENTION_COMMANDS,
        *REGISTRY,
        UNDO,
    )
    for name in names:
        summary = _SUMMARIES.get(name) or f"{REGISTRY[name].summary} (risk {REGISTRY[name].risk})"
        parser: argparse.ArgumentParser = subparsers.add_parser(
            name,
            help=summary,
            description=f"{summary}. Options: --pd URL, --db PATH, --yes, --json.",
            prefix_chars="+",
            add_help=False,
        )
        parser.add_argument("words", nargs="*", help=argparse.SUPPRESS)
        parser.set_defaults(handler=run, surface_command=name)


# ---------------------------------------------------------------- options and identity


class UsageError(Exception):
    pass


@dataclass
class Flags:
    pd: str | None = None
    db: str | None = None
    yes: bool = False
    json: bool = False
    words: list[str] = field(default_factory=list)


def split_flags(words: Sequence[str]) -> Flags:
    """Take the surface's own options out of the words; the rest goes to the grammar."""
    flags = Flags()
    items = list(words)
    index = 0
    while index < len(items):
        word = items[index]
        index += 1
        name, eq, inline = word.partition("=")
        if name in ("--pd", "--db"):
            if eq:
                value = inline
            elif index < len(items):
                value = items[index]
                index += 1
            else:
                raise UsageError(f"{name} needs a value")
            setattr(flags, name[2:], value)
        elif word in ("--yes", "-y"):
            flags.yes = True
        elif word == "--json":
            flags.json = True
        else:
            flags.words.append(word)
    return flags


def command_usage(name: str) -> str:
    if name == UNDO:
        return f"{CLI_PROG} undo <proposal-id> [--yes]"
    return usage(name, CLI_PROG)


# ---------------------------------------------------------------- entry point


def run(args: argparse.Namespace) -> int:
    name: str = args.surface_command
    try:
        flags = split_flags(args.words)
    except UsageError as exc:
        print(f"{CLI_PROG}: {exc}. Usage: {command_usage(name)}", file=sys.stderr)
        return 2
    if name == UNDO:
        if len(flags.words) != 1:
            print(
                f"{CLI_PROG}: give one proposal ID. Usage: {command_usage(name)}", file=sys.stderr
            )
            return 2
        command: Any = ("undo", flags.words[0])
    else:
        command = parse_command([name, *flags.words], prog=CLI_PROG)
        if isinstance(command, CommandError):
            print(f"{CLI_PROG}: {command.text()}", file=sys.stderr)
            return 2
        cluster = getattr(args, "global_cluster", None)
        if cluster is not None and hasattr(command, "cluster"):
            # `tikvops --cluster prod drain 4`; the engine refuses a name it does not know,
            # listing the clusters
            command = command.model_copy(update={"cluster": cluster})
        if isinstance(command, HelpCommand):
            print(help_text(command.topic, CLI_PROG))
            return 0
    settings = load_settings(
        config_file=args.config, env_file=args.env_file, pd_url=flags.pd, db=flags.db
    )
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    terminal = Terminal(
        out=sys.stdout, as_json=flags.json, yes=flags.yes, confirm=_ask if interactive else None
    )
    try:
        return asyncio.run(terminal.run(settings, command))
    except StorageError as exc:
        print(f"{CLI_PROG}: {exc}", file=sys.stderr)
        return 2


def _ask(question: str) -> bool:
    try:
        return input(question).strip().lower() in ("y", "yes")
    except EOFError:
        return False


# ---------------------------------------------------------------- the session


class Terminal:
    """One terminal command against one runtime: handle, render, and (when confirmed) approve
    and follow the execution to its end."""

    def __init__(
        self,
        *,
        out: TextIO,
        as_json: bool = False,
        yes: bool = False,
        confirm: Callable[[str], bool] | None = None,
        actor: Identity | None = None,
    ) -> None:
        self.out = out
        self.as_json = as_json
        self.yes = yes
        self.confirm = confirm
        self.actor = actor or local_identity()
        self.named = False  # several clusters: listed records name theirs

    def say(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    async def run(self, settings: Any, command: Any) -> int:
        # A run's start and progress, as `tikvops monitor` prints them (the decisions are
        # printed by this session); nothing besides the outcome with --json.
        notifier: Notifier = (
            NullNotifier() if self.as_json else TerminalNotifier(self.out, executions_only=True)
        )
        async with open_runtime(
            settings, notifier=notifier, terminal=True, engine_options=ENGINE_OPTIONS
        ) as runtime:
            if isinstance(notifier, TerminalNotifier):
                notifier.named = runtime.multi_cluster
            return await self.drive(runtime.engine, command)

    async def drive(self, engine: Engine, command: Any) -> int:
        """Handle the command and everything it leads to; returns the exit code."""
        self.named = engine.multi_cluster
        if isinstance(command, tuple) and command[0] == UNDO:
            parsed = parse_command(["proposal", command[1]], prog=CLI_PROG)
            if isinstance(parsed, CommandError):
                self.say(f"{CLI_PROG}: {parsed.message}. Usage: {command_usage(UNDO)}")
                return 2
            assert isinstance(parsed, ReadCommand) and parsed.proposal_id is not None
            outcome: Outcome = await engine.propose_undo(parsed.proposal_id, self.actor)
        else:
            outcome = await engine.handle(command, self.actor)
        self.show(outcome)
        if isinstance(outcome, ProposalCreated):
            return await self._after_proposal(engine, outcome)
        if isinstance(outcome, Decided):
            return await self._follow(engine, outcome)
        return exit_code(outcome)

    async def _after_proposal(self, engine: Engine, created: ProposalCreated) -> int:
        proposal = created.proposal
        if created.auto_approved:
            await engine.wait_idle()
            return await self._report(engine, proposal.id)
        question = (
            f"Approve and execute {proposal.id} now as {plain_name(self.actor)}? "
            "Type yes to go ahead: "
        )
        go = self.yes or (self.confirm is not None and not self.as_json and self.confirm(question))
        if not go:
            self.say(
                f"{proposal.id} waits for approval: `{CLI_PROG} approve {proposal.id}` here, or "
                f"the Approve button in Slack. It expires at {format_time(proposal.expires_at)}."
            )
            return 0
        decided = await engine.approve(proposal.id, self.actor)
        self.show(decided)
        if isinstance(decided, Refused):
            return 1
        return await self._follow(engine, decided)

    async def _follow(self, engine: Engine, decided: Decided) -> int:
        if not decided.executing:
            # Waiting for more approvals is fine; approved but blocked (kill switch,
            # observe-only) means what was asked for did not happen.
            return 1 if decided.proposal.state is ProposalState.APPROVED else 0
        await engine.wait_idle()
        return await self._report(engine, decided.proposal.id)

    async def _report(self, engine: Engine, proposal_id: str) -> int:
        report = await engine.execution_report(proposal_id)
        self.show(report)
        return exit_code(report)

    # ------------------------------------------------------------ rendering

    def show(self, outcome: Outcome) -> None:
        if self.as_json:
            self.say(json.dumps(outcome.model_dump(mode="json"), indent=2))
            return
        self.say(render(outcome, named=self.named))


def exit_code(outcome: Outcome) -> int:
    if isinstance(outcome, Refused):
        return 2 if outcome.kind in (RefusalKind.PARSE, RefusalKind.STORAGE) else 1
    if isinstance(outcome, DryRunOutcome):
        return 0 if outcome.dry_run.would_run else 1
    if isinstance(outcome, ExecutionReport):
        ok = outcome.execution.status in (
            ExecutionStatus.SUCCEEDED,
            ExecutionStatus.RECONCILED_SUCCEEDED,
        )
        return 0 if ok else 1
    return 0


__all__ = [
    "ENGINE_OPTIONS",
    "Flags",
    "Terminal",
    "exit_code",
    "local_identity",
    "register",
    "render",
    "run",
    "split_flags",
]
