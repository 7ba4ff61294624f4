"""Errors of the action registry: unknown action names, invalid parameters, refused preflights.

PD's own refusals are not here: `execute()` lets `operator_tikv.errors` types through unchanged.
Every message is a full sentence a user can act on.
"""

from __future__ import annotations

from collections.abc import Sequence
from difflib import get_close_matches
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from operator_tikv.actions.base import PreflightReport


class ActionError(Exception):
    """Base of every error raised by the action registry."""


class UnknownAction(ActionError):
    """An action name that is not in the registry; `known` lists the registered names."""

    def __init__(self, name: str, known: Sequence[str]) -> None:
        self.name = name
        self.known = tuple(known)
        self.suggestion = next(iter(get_close_matches(name, self.known, n=1, cutoff=0.6)), None)
        hint = f" Did you mean '{self.suggestion}'?" if self.suggestion else ""
        super().__init__(f"Unknown action '{name}'.{hint} Known actions: {', '.join(self.known)}.")


class InvalidParams(ActionError):
    """Parameters that do not fit an action's params model.

    `problems` holds one sentence per problem, naming the parameter ("to_store_id: must be a
    whole number, got 'four'").
    """

    def __init__(self, action: str, problems: Sequence[str]) -> None:
        self.action = action
        self.problems = tuple(problems)
        super().__init__(f"Invalid parameters for {action}: " + "; ".join(self.problems) + ".")


class PreflightRefused(ActionError):
    """A preflight check failed, so nothing was sent to PD; `report` holds every check."""

    def __init__(self, report: PreflightReport) -> None:
        self.report = report
        super().__init__(report.refusal())
