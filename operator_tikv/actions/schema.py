"""JSON schemas of the registered actions, for Claude's tool input and for validation.

`tool_input_schema()` is one object schema whose `action` property is a discriminated union
(`oneOf`, discriminator `action`) over `{"action": "<name>", "params": {...}}` for every
registered action. `parse_tool_input()` validates Claude's answer with the same pydantic
models that generated the schema, so the schema and the validation cannot drift apart.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any, Literal, Union, cast

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model

from operator_tikv.actions.base import ActionCall, describe_error
from operator_tikv.actions.errors import InvalidParams, UnknownAction
from operator_tikv.actions.registry import REGISTRY, get_action

JsonSchema = dict[str, Any]


class _Call(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@cache
def _call_models() -> tuple[type[_Call], ...]:
    models = []
    for name, action in REGISTRY.items():
        literal = cast(Any, Literal)[name]
        model = create_model(
            "Call_" + name.replace("-", "_"),
            __base__=_Call,
            __doc__=f"{action.summary}. Risk: {action.risk.value}.",
            action=(literal, Field(description=f"the action name, {name!r}")),
            params=(action.params_model, Field(description=f"parameters of {name}")),
        )
        models.append(model)
    return tuple(models)


@cache
def _union_adapter() -> TypeAdapter[Any]:
    union = Union[_call_models()]  # type: ignore[valid-type]  # noqa: UP007
    annotated: Any = Annotated[union, Field(discriminator="action")]
    return TypeAdapter(annotated)


def action_call_schema() -> JsonSchema:
    """The schema of one action call: `oneOf` over the registered actions, discriminated by
    `action`. Self-contained (no `$ref`), so it can be embedded anywhere in a larger tool
    schema, e.g. as the `items` of a list of proposed actions."""
    schema = _union_adapter().json_schema(ref_template="#/$defs/{model}")
    defs = schema.pop("$defs", {})
    inlined: JsonSchema = _inline(schema, defs)
    return inlined


def tool_input_schema() -> JsonSchema:
    """A complete tool `input_schema`: an object with a single required `action` property."""
    return {
        "type": "object",
        "properties": {
            "action": {
                **action_call_schema(),
                "description": "one action from the registered catalogue, with its parameters",
            }
        },
        "required": ["action"],
        "additionalProperties": False,
    }


def action_schema(name: str) -> JsonSchema:
    """The JSON schema of one action's params (raises UnknownAction); self-contained."""
    schema = get_action(name).params_model.model_json_schema()
    defs = schema.pop("$defs", {})
    inlined: JsonSchema = _inline(schema, defs)
    return inlined


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """Replace every `{"$ref": "#/$defs/X"}` by a copy of X (the models are not recursive)."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            target = _inline(defs[ref.removeprefix("#/$defs/")], defs)
            extra = {k: _inline(v, defs) for k, v in node.items() if k != "$ref"}
            return {**target, **extra}
        if set(node) >= {"propertyName", "mapping"}:  # a discriminator: its mapping holds refs
            return {"propertyName": node["propertyName"]}
        return {k: _inline(v, defs) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline(item, defs) for item in node]
    return node


def parse_action_call(data: Any) -> ActionCall:
    """Validate one `{"action": ..., "params": {...}}` with the union the schema comes from.
    UnknownAction for an unregistered name; InvalidParams (one sentence per problem)."""
    name = data.get("action") if isinstance(data, dict) else None
    if isinstance(name, str) and name not in REGISTRY:
        raise UnknownAction(name, tuple(REGISTRY))
    try:
        model = _union_adapter().validate_python(data)
    except ValidationError as exc:
        problems = [_problem(err) for err in exc.errors(include_url=False)]
        raise InvalidParams(name if isinstance(name, str) else "?", problems) from None
    return ActionCall(action=model.action, params=model.params.model_dump(mode="json"))


def _problem(err: Any) -> str:
    """One sentence from a union validation error located at (action, 'params', field)."""
    loc = tuple(err["loc"])
    if not loc and err["type"] not in {"union_tag_not_found", "union_tag_invalid"}:
        return 'an action call must be an object: {"action": "<name>", "params": {...}}'
    if err["type"] in {"union_tag_not_found", "union_tag_invalid"} or not loc:
        return "action must be the name of a registered action: " + ", ".join(REGISTRY)
    if len(loc) >= 2 and loc[1] == "params" and loc[0] in REGISTRY:
        if len(loc) == 2 and err["type"] == "missing":
            return "params is required"
        if len(loc) == 2 and err["type"] != "value_error":
            return "params must be an object"
        return describe_error(REGISTRY[str(loc[0])].params_model, err, skip=2)
    if err["type"] == "extra_forbidden":
        return f"unexpected key {loc[-1]!r}: an action call has only action and params"
    where = ".".join(str(part) for part in loc[1:]) or "input"
    if err["type"] == "missing":
        return f"{where} is required"
    return f"{where}: {err['msg']}"


def parse_tool_input(data: Any) -> ActionCall:
    """Validate a whole tool input (`{"action": {...}}`) as produced under tool_input_schema."""
    if not isinstance(data, dict) or set(data) != {"action"}:
        raise InvalidParams("?", ["the tool input must be an object with exactly one key, action"])
    return parse_action_call(data["action"])
