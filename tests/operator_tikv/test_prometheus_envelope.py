"""`parse_envelope`, validated by hand: every documented shape is read, anything else is a
`PrometheusProtocolError` saying what is wrong (never a KeyError, TypeError or wrong value)."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from operator_tikv.metrics import PrometheusProtocolError
from operator_tikv.prometheus import (
    MatrixResult,
    ScalarResult,
    StringResult,
    VectorResult,
    parse_envelope,
)


def ok(kind: str, result: Any) -> dict[str, Any]:
    return {"status": "success", "data": {"resultType": kind, "result": result}}


def test_vector_labels_values_and_unknown_keys() -> None:
    body = ok(
        "vector",
        [
            {"metric": {"instance": "a:1", "type": "x"}, "value": [1795441567.843, "0.25"]},
            {"value": [1795441567, "+Inf"], "extra": {"ignored": True}},  # no labels at all
            {"metric": {}, "value": [1.5, "NaN"]},
        ],
    )
    result = parse_envelope(body)
    assert isinstance(result, VectorResult)
    first, second, third = result.series
    assert first.labels == {"instance": "a:1", "type": "x"}
    assert (first.sample.timestamp, first.value) == (1795441567.843, 0.25)
    assert second.labels == {} and second.value == math.inf
    assert isinstance(second.sample.timestamp, float)
    assert third.sample.is_nan


def test_matrix_scalar_string_and_warnings() -> None:
    matrix = parse_envelope(
        ok("matrix", [{"metric": {"job": "tikv"}, "values": [[1, "1"], [2, "0"]]}])
        | {"warnings": ["w"]}
    )
    assert isinstance(matrix, MatrixResult)
    assert [s.value for s in matrix.series[0].samples] == [1.0, 0.0]
    assert matrix.warnings == ("w",)
    scalar = parse_envelope(ok("scalar", [5, "2.7854297965714236e-01"]))
    assert isinstance(scalar, ScalarResult)
    assert scalar.sample.value == pytest.approx(0.27854297965714236)
    text = parse_envelope(ok("string", [5, "hello"]))
    assert isinstance(text, StringResult)
    assert (text.timestamp, text.text) == (5.0, "hello")


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("nope", "success envelope"),
        ({"status": "error"}, "success envelope"),
        ({"status": "success"}, "`data`"),
        (ok("histo", []), "unknown resultType"),
        (ok("vector", None), "not a list"),
        (ok("vector", {"metric": {}}), "not a list"),
        (ok("vector", ["x"]), "series 0 is not an object"),
        (ok("vector", [{"metric": {}}]), "has no `value`"),
        (ok("vector", [{"value": [1, "1"]}, {"value": [1]}]), "series 1"),
        (ok("vector", [{"value": [1, 0.5]}]), "value that is not a string"),
        (ok("vector", [{"value": ["1", "0.5"]}]), "timestamp that is not a number"),
        (ok("vector", [{"value": [True, "0.5"]}]), "timestamp that is not a number"),
        (ok("vector", [{"value": [1, "fast"]}]), "not a number: 'fast'"),
        (ok("vector", [{"value": {"t": 1, "v": "1"}}]), "pair"),
        (ok("vector", [{"metric": "up", "value": [1, "1"]}]), "`metric` that is not an object"),
        (ok("vector", [{"metric": {"a": 1}, "value": [1, "1"]}]), "label value"),
        (ok("vector", [{"metric": {"a": None}, "value": [1, "1"]}]), "label value"),
        (ok("matrix", [{"metric": {}, "value": [1, "1"]}]), "no `values` list"),
        (ok("matrix", [{"values": [[1, "1"], [2]]}]), "point 1"),
        (ok("scalar", [1, 2]), "not a string"),
        (ok("scalar", []), "pair"),
        (ok("string", [1, 2]), "text is not a string"),
        (ok("string", ["x", "y"]), "not a number"),
    ],
)
def test_malformed_documents_are_protocol_errors(body: Any, says: str) -> None:
    with pytest.raises(PrometheusProtocolError) as info:
        parse_envelope(body)
    assert says in str(info.value)


json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)
series = st.fixed_dictionaries(
    {},
    optional={
        "metric": st.one_of(st.dictionaries(st.text(max_size=5), st.text(max_size=5)), json_value),
        "value": st.one_of(
            st.tuples(
                st.one_of(st.integers(), st.floats(allow_nan=False)),
                st.one_of(st.sampled_from(["1", "NaN", "+Inf", "-Inf", "0.5e3"]), st.text()),
            ).map(list),
            json_value,
        ),
    },
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.lists(series, max_size=4), json_value))
def test_any_vector_result_is_read_exactly_or_refused(result: Any) -> None:
    body = json.loads(json.dumps(ok("vector", result)))  # as it arrives off the wire
    try:
        parsed = parse_envelope(body)
    except PrometheusProtocolError:
        return
    assert isinstance(parsed, VectorResult)
    assert len(parsed.series) == len(result)
    for got, sent in zip(parsed.series, body["data"]["result"], strict=True):
        assert got.labels == (sent.get("metric") or {})
        assert all(isinstance(v, str) for v in got.labels.values())
        ts, text = sent["value"]
        assert got.sample.timestamp == float(ts)
        assert isinstance(text, str)
        expected = float(text)
        assert got.value == expected or (math.isnan(got.value) and math.isnan(expected))
