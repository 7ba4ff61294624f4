"""JSON the way PD's Go code writes and reads it.

Writing: encoding/json conventions (struct fields in declaration order, map keys sorted by their
string form, HTML characters escaped, Go float text) in the two layouts PD uses: 2-space indented
with a trailing newline (unrolled/render `JSON`) and compact (easyjson region bodies).

Reading: request bodies are decoded into `map[string]any` by Go, so a syntax error or a non-object
body is reported with Go's own message and offset, which the simulator returns to the client.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sim.gotext import format_go_float


class GoMap(dict[Any, Any]):
    """A dict rendered like a Go map: keys sorted by their string form ("1" < "10" < "2")."""


_HTML_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}
_quote = json.encoder.encode_basestring  # C: escapes quotes, backslashes, control characters


def encode_string(text: str) -> str:
    """A JSON string literal as Go writes it (UTF-8 kept, HTML characters escaped)."""
    out: str = _quote(text)
    if "<" in out or ">" in out or "&" in out or "\u2028" in out or "\u2029" in out:
        for raw, escaped in _HTML_ESCAPES.items():
            out = out.replace(raw, escaped)
    return out


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _null(value: None) -> str:
    return "null"


_SCALARS: dict[type, Any] = {
    str: encode_string,
    int: str,
    bool: _bool,
    float: format_go_float,
    type(None): _null,
}


def _scalar(value: Any) -> str | None:
    encoder = _SCALARS.get(type(value))
    if encoder is not None:
        return str(encoder(value))
    if isinstance(value, bool):
        return _bool(value)
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        return format_go_float(value)
    if isinstance(value, str):
        return encode_string(value)
    return None


def _items(value: Mapping[Any, Any]) -> list[tuple[str, Any]]:
    pairs = [(str(k), v) for k, v in value.items()]
    if isinstance(value, GoMap):
        pairs.sort(key=lambda kv: kv[0])
    return pairs


def encode_compact(value: Any) -> str:
    """Compact JSON (no spaces), like json.Marshal / easyjson."""
    scalar = _scalar(value)
    if scalar is not None:
        return scalar
    if isinstance(value, Mapping):
        inner = ",".join(f"{encode_string(k)}:{encode_compact(v)}" for k, v in _items(value))
        return "{" + inner + "}"
    if isinstance(value, Sequence):
        return "[" + ",".join(encode_compact(v) for v in value) + "]"
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


_KEYS: dict[str, str] = {}


def _key(key: str) -> str:
    """Encoded object key (cached: the same few keys repeat in every answer)."""
    encoded = _KEYS.get(key)
    if encoded is None:
        encoded = encode_string(key) + ": "
        if len(_KEYS) < 4096:
            _KEYS[key] = encoded
    return encoded


def _encode_indent(value: Any, depth: int, out: list[str]) -> None:
    scalar = _scalar(value)
    if scalar is not None:
        out.append(scalar)
        return
    pad = "\n" + "  " * (depth + 1)
    if isinstance(value, Mapping):
        pairs = _items(value)
        if not pairs:
            out.append("{}")
            return
        out.append("{")
        for index, (key, item) in enumerate(pairs):
            out.append(pad if index == 0 else "," + pad)
            out.append(_key(key))
            _encode_indent(item, depth + 1, out)
        out.append("\n" + "  " * depth + "}")
        return
    if isinstance(value, Sequence):
        if not value:
            out.append("[]")
            return
        out.append("[")
        for index, item in enumerate(value):
            out.append(pad if index == 0 else "," + pad)
            _encode_indent(item, depth + 1, out)
        out.append("\n" + "  " * depth + "]")
        return
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def encode_indent(value: Any) -> str:
    """json.MarshalIndent(value, "", "  ") plus the renderer's trailing newline."""
    out: list[str] = []
    _encode_indent(value, 0, out)
    out.append("\n")
    return "".join(out)


@dataclass(frozen=True)
class GoJSONError(Exception):
    """A body Go's decoder refuses: its message and the errcode `data` object PD returns."""

    msg: str
    data: dict[str, Any]

    def __str__(self) -> str:
        return self.msg


def _quote_char(ch: str) -> str:
    if ch == "'":
        return "'\\''"
    if ch == '"':
        return "'\"'"
    escaped = json.dumps(ch)[1:-1]
    return f"'{escaped}'"


def _innermost_container(text: str, pos: int) -> str:
    stack: list[str] = []
    in_string = False
    escape = False
    for ch in text[:pos]:
        if in_string:
            if escape:
                escape = False
            elif ch == "\\":
                escape = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            stack.append(ch)
        elif ch in "]}" and stack:
            stack.pop()
    return stack[-1] if stack else ""


def _syntax_error(text: str, exc: json.JSONDecodeError) -> GoJSONError:
    pos = exc.pos
    rest = text[pos:]
    if not rest.strip() or exc.msg.startswith("Unterminated string"):
        return GoJSONError("unexpected end of JSON input", {"Offset": len(text.encode())})
    offset = len(text[: pos + 1].encode())
    quoted = _quote_char(text[pos])
    reason = exc.msg
    if reason.startswith("Expecting property name"):
        context = "looking for beginning of object key string"
    elif reason.startswith("Expecting ':'"):
        context = "after object key"
    elif reason.startswith("Expecting ','"):
        inner = _innermost_container(text, pos)
        context = "after object key:value pair" if inner == "{" else "after array element"
    elif reason.startswith("Extra data"):
        context = "after top-level value"
    elif reason.startswith("Invalid control character"):
        context = "in string literal"
    elif reason.startswith("Invalid \\"):
        context = "in string escape code"
    else:
        context = "looking for beginning of value"
    return GoJSONError(f"invalid character {quoted} {context}", {"Offset": offset})


_GO_KIND = {dict: "object", list: "array", str: "string", bool: "bool", int: "number"}


def go_kind(value: Any) -> str:
    """The JSON kind Go names in UnmarshalTypeError ("object", "array", "number", ...)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return _GO_KIND.get(type(value), "null")


def parse_json(body: bytes) -> Any:
    """Decode a request body as Go does, raising GoJSONError with Go's syntax-error text."""
    text = body.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise _syntax_error(text, exc) from None


def parse_object(body: bytes, go_type: str = "map[string]interface {}") -> dict[str, Any] | None:
    """Decode into Go's `map[string]any`: null gives None, a non-object gives a type error."""
    value = parse_json(body)
    if value is None or isinstance(value, dict):
        return value
    kind = go_kind(value)
    text = body.decode("utf-8", errors="replace").lstrip()
    offset = len(body) - len(text.encode()) + (1 if kind in ("array", "object") else len(text))
    raise GoJSONError(
        f"json: cannot unmarshal {kind} into Go value of type {go_type}",
        {"Value": kind, "Type": {}, "Offset": offset, "Struct": "", "Field": ""},
    )
