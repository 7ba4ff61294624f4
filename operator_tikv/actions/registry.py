"""The catalogue: every registered action by name, lookup and parameter validation.

`REGISTRY` is the single list the command parser, the Claude tool schema (`schema.py`),
rendering and the executor read. Adding an action means adding one module and one line here.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel

from operator_tikv.actions.base import Action, ActionCall, ActionParams
from operator_tikv.actions.config import LIMIT, SPACE_RATIO
from operator_tikv.actions.drain import DRAIN, UNDRAIN
from operator_tikv.actions.errors import InvalidParams, UnknownAction
from operator_tikv.actions.leader import TRANSFER_LEADER
from operator_tikv.actions.peer import TRANSFER_PEER
from operator_tikv.actions.split import SPLIT

_ACTIONS: tuple[Action[Any], ...] = (
    TRANSFER_LEADER,
    TRANSFER_PEER,
    DRAIN,
    UNDRAIN,
    SPLIT,
    LIMIT,
    SPACE_RATIO,
)

REGISTRY: Mapping[str, Action[Any]] = MappingProxyType({a.name: a for a in _ACTIONS})


def action_names() -> tuple[str, ...]:
    return tuple(REGISTRY)


def get_action(name: str) -> Action[Any]:
    """The action called `name`, or UnknownAction listing the known names (with a guess)."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise UnknownAction(name, tuple(REGISTRY)) from None


def validate_params(name: str, raw: Mapping[str, Any] | BaseModel) -> ActionParams:
    """Typed params for action `name`; UnknownAction or InvalidParams with clear sentences."""
    result: ActionParams = get_action(name).validate(raw)
    return result


def validate_call(call: ActionCall | Mapping[str, Any]) -> tuple[Action[Any], ActionParams]:
    """The action and typed params of a stored or proposed call (`{"action", "params"}`)."""
    if not isinstance(call, ActionCall):
        name = call.get("action")
        params = call.get("params", {})
        if not isinstance(name, str):
            raise InvalidParams("?", ["action must be the name of a registered action"])
        if not isinstance(params, Mapping):
            raise InvalidParams(name, ["params must be an object"])
        call = ActionCall(action=name, params=dict(params))
    action = get_action(call.action)
    return action, action.validate(call.params)
