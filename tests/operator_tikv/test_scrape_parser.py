"""The /metrics parser against `prometheus_client`'s parser as the oracle.

Hypothesis writes whole pages in text format 0.0.4: the three families the parser reads, mixed
with families whose names share a prefix, label values with escaped quotes, backslashes,
newlines, commas and braces, `le` buckets, `+Inf`/`-Inf`/`NaN` and exponent values,
timestamps, comments, blank lines and irregular blanks. Both parsers must read the same
numbers. Broken lines of the three families must be refused by both.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from operator_tikv.scrape import ParsedStoreMetrics, ScrapeParseError, parse_metrics_text

BUCKET = "tikv_storage_engine_async_request_duration_seconds_bucket"
HISTOGRAM = "tikv_storage_engine_async_request_duration_seconds"
SIZE = "tikv_store_size_bytes"
COUNT = "tikv_raftstore_region_count"
FIXTURES = Path(__file__).parent.parent / "fixtures" / "metrics"


def oracle(text: str) -> ParsedStoreMetrics:
    """What the previous implementation computed from `prometheus_client`'s samples."""
    buckets: dict[float, float] = {}
    sizes: dict[str, float] = {}
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == BUCKET and labels.get("type") == "write":
                try:
                    bound = float(labels.get("le", ""))
                except ValueError:
                    continue
                buckets[bound] = buckets.get(bound, 0.0) + float(sample.value)
            elif sample.name == SIZE:
                kind = labels.get("type", "")
                sizes[kind] = sizes.get(kind, 0.0) + float(sample.value)
            elif sample.name == COUNT:
                kind = labels.get("type", "")
                counts[kind] = counts.get(kind, 0.0) + float(sample.value)

    def count(kind: str) -> int | None:
        value = counts.get(kind)
        return int(value) if value is not None and math.isfinite(value) else None

    return ParsedStoreMetrics(
        write_buckets=buckets,
        capacity_bytes=sizes.get("capacity"),
        available_bytes=sizes.get("available"),
        leader_count=count("leader"),
        region_count=count("region"),
    )


def same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return (math.isnan(a) and math.isnan(b)) or a == b


def assert_same(ours: ParsedStoreMetrics, theirs: ParsedStoreMetrics) -> None:
    assert set(ours.write_buckets) == set(theirs.write_buckets)
    for bound, value in theirs.write_buckets.items():
        assert same(ours.write_buckets[bound], value), bound
    assert same(ours.capacity_bytes, theirs.capacity_bytes)
    assert same(ours.available_bytes, theirs.available_bytes)
    assert ours.leader_count == theirs.leader_count
    assert ours.region_count == theirs.region_count


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


blank = st.sampled_from([" ", "\t", "  ", " \t"])
maybe_blank = st.sampled_from(["", "", " ", "\t"])
label_text = st.one_of(
    st.sampled_from(["write", "snapshot", "capacity", "available", "leader", "region", "used"]),
    st.sampled_from(['wr"ite', "a,b", "x}y", "{", "a=b", "back\\slash", "new\nline", '\\"']),
    st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=8),
)
bound_text = st.one_of(
    st.sampled_from(["+Inf", "0.00001", "1e-05", "21474.83648", "0.1", "+inf", "Inf"]),
    st.floats(min_value=0, max_value=1e6).map(repr),
)
value_text = st.one_of(
    st.integers(min_value=0, max_value=10**15).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.floats(min_value=0, max_value=1e13).map(lambda f: f"{f:e}"),
    st.sampled_from(["+Inf", "-Inf", "NaN", "0", "1.0", "5.36870912e+11", "-0"]),
)


@st.composite
def sample_line(draw: st.DrawFn, name: str) -> str:
    labels: dict[str, str] = {}
    wanted = ["write", "capacity", "available", "leader", "region"]
    kind = draw(st.one_of(st.sampled_from(wanted), label_text))
    if draw(st.booleans()) or name != COUNT:
        labels["type"] = kind
    if name == BUCKET:
        labels["le"] = draw(bound_text)
    for extra in draw(st.lists(st.sampled_from(["instance", "db", "a_b", "tid"]), max_size=2)):
        labels[extra] = draw(label_text)
    order = draw(st.permutations(list(labels)))
    pairs = [
        f"{draw(maybe_blank)}{key}{draw(maybe_blank)}={draw(maybe_blank)}"
        f'"{escape(labels[key])}"{draw(maybe_blank)}'
        for key in order
    ]
    empty_braces: bool = draw(st.booleans())
    trailing_comma: bool = draw(st.booleans())
    block = ""
    if pairs or empty_braces:
        block = "{" + ",".join(pairs) + ("," if pairs and trailing_comma else "") + "}"
    before = draw(blank) if not block else draw(maybe_blank)
    stamp = f"{draw(blank)}{draw(st.integers(0, 2 * 10**12))}" if draw(st.booleans()) else ""
    return (
        f"{draw(maybe_blank)}{name}{before}{block}{draw(blank) if block else ''}"
        f"{draw(value_text)}{stamp}{draw(maybe_blank)}"
    )


@st.composite
def family(draw: st.DrawFn) -> list[str]:
    choice = draw(
        st.sampled_from(["histogram", "size", "count"] * 2 + ["size_total", "count_x", "other"])
    )
    name, sample_name, kind = {
        "histogram": (HISTOGRAM, BUCKET, "histogram"),
        "size": (SIZE, SIZE, "gauge"),
        "count": (COUNT, COUNT, "gauge"),
        # prefixes shared with the families read: never to be mixed up with them
        "size_total": (SIZE + "_total", SIZE + "_total", "counter"),
        "count_x": (COUNT + "_x", COUNT + "_x", "gauge"),
        "other": ("process_cpu_seconds_total", "process_cpu_seconds_total", "counter"),
    }[choice]
    lines = []
    if draw(st.booleans()):
        help_text = draw(st.sampled_from(["Size of storage.", f"mentions {SIZE} and {BUCKET}"]))
        lines.append(f"# HELP {name} {help_text}")
    lines.append(f"# TYPE {name} {kind}")
    lines += draw(st.lists(sample_line(sample_name), max_size=6))
    if choice == "histogram":
        lines.append(f'{HISTOGRAM}_sum{{type="write"}} {draw(value_text)}')
        lines.append(f'{HISTOGRAM}_count{{type="write"}} {draw(value_text)}')
    if draw(st.booleans()):
        lines.append(draw(st.sampled_from(["", "# a comment", f"# about {COUNT}", "   "])))
    return lines


@st.composite
def page(draw: st.DrawFn) -> str:
    families = draw(st.lists(family(), max_size=6))
    # A family appears once per page (the format requires it); keep the first of each name.
    seen: set[str] = set()
    lines: list[str] = []
    for lines_of in families:
        declared = next(line.split()[2] for line in lines_of if line.startswith("# TYPE"))
        if declared in seen:
            continue
        seen.add(declared)
        lines += lines_of
    ending = draw(st.sampled_from(["\n", "", "\n\n"]))
    return "\n".join(lines) + ending


@settings(max_examples=400, deadline=None)
@given(page())
def test_parser_agrees_with_prometheus_client(text: str) -> None:
    assert_same(parse_metrics_text(text), oracle(text))


@pytest.mark.parametrize(
    "name", ["tikv_v8.5_store1_scrape1.txt", "tikv_v8.5_store1_after_restart.txt"]
)
def test_parser_agrees_on_recorded_tikv_pages(name: str) -> None:
    text = (FIXTURES / name).read_text()
    assert_same(parse_metrics_text(text), oracle(text))


def test_escaped_quotes_and_commas_in_labels() -> None:
    text = (
        f'{SIZE}{{type="capacity",note="say \\"hi\\", then }} and {{"}} 100\n'
        f'{SIZE}{{note="a\\\\",type="available"}} 25\n'
        f'{BUCKET}{{le="+Inf", type = "write" ,}} 7 1795441567000\n'
        f'{BUCKET}{{type="write",le="0.1"}}\t3\n'
        f'{COUNT}{{type="leader"}} NaN\n'
    )
    parsed = parse_metrics_text(text)
    assert parsed.capacity_bytes == 100
    assert parsed.available_bytes == 25
    assert parsed.write_buckets == {0.1: 3.0, math.inf: 7.0}
    assert parsed.leader_count is None  # NaN is no count
    assert_same(parsed, oracle(text))


@pytest.mark.parametrize(
    "line",
    [
        f'{SIZE}{{type="capacity" 12',  # unclosed label block
        f"{SIZE}{{type=capacity}} 12",  # unquoted value
        f'{SIZE}{{type="capacity"}} twelve',  # not a number
        f'{SIZE}{{type="capacity"}} 1_000',  # underscores are Python's, not the format's
        f'{SIZE}{{type="capacity",type="used"}} 1',  # a label twice
        f'{SIZE}{{type="capacity"}}',  # no value
        f'{SIZE}{{type="capa\ncity"}} 1',  # a raw newline inside a value
        f'{BUCKET}{{type="write",le="0.1"}} 1 notatime',  # a broken timestamp
        f'{COUNT}{{1type="leader"}} 1',  # not a label name
    ],
)
def test_broken_lines_of_the_families_read_are_refused_by_both(line: str) -> None:
    text = f"# TYPE {SIZE} gauge\n{line}\n"
    with pytest.raises(ScrapeParseError, match="unreadable /metrics text"):
        parse_metrics_text(text)
    with pytest.raises(ValueError):
        list(text_string_to_metric_families(text))


def test_other_families_are_not_read_at_all() -> None:
    # A line the parser has no use for is skipped unread, broken or not.
    parsed = parse_metrics_text(f'unrelated{{x="1" 2\n{SIZE}{{type="capacity"}} 5\n')
    assert parsed.capacity_bytes == 5
