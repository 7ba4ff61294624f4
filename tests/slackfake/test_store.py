"""Message store and ts clock: ordering, threads, edits and deletion."""

from __future__ import annotations

import re

import pytest

import slackfake
from slackfake import ids
from slackfake.ids import TsClock, format_ts, parse_ts
from slackfake.store import MessageStore


def test_ts_strictly_increases_even_when_the_clock_stands_still(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ids.time, "time_ns", lambda: 1_716_900_000_123_456_000)
    clock = TsClock()
    stamps = [clock.next_ts() for _ in range(5)]
    assert stamps == [
        "1716900000.123456",
        "1716900000.123457",
        "1716900000.123458",
        "1716900000.123459",
        "1716900000.123460",
    ]


def test_ts_survives_a_clock_going_backwards(monkeypatch: pytest.MonkeyPatch) -> None:
    times = iter([2_000_000_000_000_000, 1_000_000_000_000_000])
    monkeypatch.setattr(ids.time, "time_ns", lambda: next(times))
    clock = TsClock()
    first, second = clock.next_ts(), clock.next_ts()
    assert parse_ts(second) == parse_ts(first) + 1


def test_ts_format_round_trip() -> None:
    assert format_ts(1_716_900_100_000_200) == "1716900100.000200"
    assert parse_ts("1716900100.000200") == 1_716_900_100_000_200
    with pytest.raises(ValueError, match="not a Slack ts"):
        parse_ts("1716900100.2")


def test_threads_edits_and_tombstones() -> None:
    store = MessageStore(TsClock())
    parent = store.post("C1", text="p", blocks=[], user="U1")
    reply = store.post("C1", text="r", blocks=[], user="U2", thread_ts=parent.ts)
    assert parent.thread_ts == parent.ts and parent.reply_count == 1
    assert reply.is_reply and not parent.is_reply
    assert store.top_level("C1") == [parent]

    version = store.version
    store.update("C1", parent.ts, text="p2", blocks=None)
    assert store.version > version
    assert (parent.text, parent.edits[0].text) == ("p2", "p")

    store.delete("C1", parent.ts)
    assert parent.deleted and store.get("C1", parent.ts) is parent, "kept as a tombstone"
    assert parent.to_api()["subtype"] == "tombstone"
    store.delete("C1", reply.ts)
    assert store.replies("C1", parent.ts) == []


def test_package_exports_are_sorted_and_importable() -> None:
    assert slackfake.__all__ == sorted(slackfake.__all__)
    for name in slackfake.__all__:
        assert getattr(slackfake, name) is not None
    assert re.match(r"^\d+\.\d{6}$", TsClock().next_ts())
