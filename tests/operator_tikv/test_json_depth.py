"""DepthLimitedStream: a JSON body nested deeper than any PD answer is refused before the
parser's quadratic prefixes can take the process down; legitimate bodies pass unchanged, however
they are cut into chunks and whatever their strings hold."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from operator_tikv.json_depth import DepthLimitedStream
from operator_tikv.region_lists import summarise_region_list


def read_all(body: bytes, chunk: int, max_depth: int) -> bytes:
    stream = DepthLimitedStream(io.BytesIO(body), max_depth)
    parts = []
    while part := stream.read(chunk):
        parts.append(part)
    return b"".join(parts)


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


HOSTILE = {
    "arrays in the list": b'{"regions":[' + b"[" * 200_000,
    "arrays in a field": b'{"regions":[{"peers":' + b"[" * 200_000,
    "objects outside the list": b'{"x":' + b'{"a":' * 100_000,
    "arrays with values between": b'{"regions":[' + b"[0," * 200_000,
    "closed again": b"[" * 100 + b"]" * 100,
}


@pytest.mark.parametrize("body", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_body_nested_deeper_than_any_pd_answer_is_refused_with_a_reason(body: bytes) -> None:
    with pytest.raises(ValueError, match="nests more than 64 levels deep"):
        summarise_region_list(body)


def test_a_real_region_list_passes_and_is_summarised() -> None:
    peers = [{"id": 10 + s, "store_id": s} for s in (1, 2, 3)]
    regions = [
        {
            "id": rid,
            "start_key": "[[[[" * 40,  # brackets inside strings do not count
            "end_key": '\\"[{' * 40,  # nor after escaped quotes and backslashes
            "epoch": {"conf_ver": 1, "version": 2},
            "peers": peers,
            "down_peers": [{"peer": peers[2], "down_seconds": 60}],
        }
        for rid in range(1, 301)
    ]
    body = json.dumps({"count": len(regions), "regions": regions}).encode()
    assert summarise_region_list(body).count == 300


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab\n', max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(value=json_values, chunk=st.sampled_from([1, 2, 3, 5, 16, 4096]))
def test_the_depth_is_judged_as_json_reads_it_whatever_the_chunks(value: Any, chunk: int) -> None:
    body = json.dumps(value, ensure_ascii=False).encode()
    real = depth(value)
    # never under the real depth: a body deeper than the limit is always refused
    if real >= 1:
        with pytest.raises(ValueError):
            read_all(body, chunk, max_depth=real - 1)
    # and within the limit with room for a chunk's own nesting: passed through unchanged
    assert read_all(body, chunk, max_depth=2 * real + 2) == body
