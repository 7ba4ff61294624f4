"""JSON written and read the way PD's Go code does."""

from __future__ import annotations

import json

import pytest

from sim.gojson import GoJSONError, GoMap, encode_compact, encode_indent, parse_object


def test_indent_matches_go_marshal_indent_with_trailing_newline() -> None:
    value = {"b": [1, 2], "a": {}, "c": [], "d": None, "e": True, "f": 1.0}
    text = encode_indent(value)
    assert text.endswith("}\n")
    assert text == (
        '{\n  "b": [\n    1,\n    2\n  ],\n  "a": {},\n  "c": [],\n  "d": null,\n'
        '  "e": true,\n  "f": 1\n}\n'
    )
    assert encode_indent("The operator is created.") == '"The operator is created."\n'


def test_go_maps_sort_keys_as_strings_but_structs_keep_field_order() -> None:
    assert encode_compact(GoMap({"10": 1, "2": 2, "1": 3})) == '{"1":3,"10":1,"2":2}'
    assert encode_compact({"z": 1, "a": 2}) == '{"z":1,"a":2}'


def test_html_characters_are_escaped_like_go() -> None:
    assert encode_compact("a<b>&c") == '"a\\u003cb\\u003e\\u0026c"'
    assert json.loads(encode_compact("a<b>&c")) == "a<b>&c"


@pytest.mark.parametrize(
    ("body", "msg", "offset"),
    [
        (b"", "unexpected end of JSON input", 0),
        (b"{name:1}", "invalid character 'n' looking for beginning of object key string", 2),
        (b'{"a" 1}', "invalid character '1' after object key", 6),
        (b'{"a":1 "b":2}', "invalid character '\"' after object key:value pair", 8),
        (b'{"a":1} x', "invalid character 'x' after top-level value", 9),
        (b'{"a":', "unexpected end of JSON input", 5),
    ],
)
def test_syntax_errors_carry_go_message_and_offset(body: bytes, msg: str, offset: int) -> None:
    with pytest.raises(GoJSONError) as info:
        parse_object(body)
    assert info.value.msg == msg
    assert info.value.data == {"Offset": offset}


def test_non_object_body_is_a_go_type_error_and_null_is_an_empty_map() -> None:
    with pytest.raises(GoJSONError) as info:
        parse_object(b"[1]")
    assert info.value.msg == (
        "json: cannot unmarshal array into Go value of type map[string]interface {}"
    )
    assert info.value.data["Value"] == "array"
    assert parse_object(b"null") is None
    assert parse_object(b'{"a": 1}') == {"a": 1}
