"""summarise_region_list: a region list reduced with bounded memory, equal to the full parse."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from operator_tikv import region_lists
from operator_tikv.models.region import parse_regions_brief
from operator_tikv.region_checks import RegionCheck, RegionProblem
from operator_tikv.region_lists import (
    ListReadError,
    PeerField,
    fetch_and_summarise,
    summarise_region_list,
)

FIXTURES = Path(__file__).parent.parent / "fixtures"


def region(rid: int, stores: tuple[int, ...], down: tuple[int, ...], learner: int = 0) -> dict:
    return {
        "id": rid,
        "peers": [
            {
                "id": rid * 10 + s,
                "store_id": s,
                **({"role_name": "Learner", "is_learner": True} if s == learner else {}),
            }
            for s in stores
        ],
        "down_peers": [{"peer": {"id": rid * 10 + s, "store_id": s}} for s in down],
        "pending_peers": [{"id": rid * 10 + s, "store_id": s} for s in down[:1]],
        "cpu_usage": 0.5,
    }


BODY = json.dumps(
    {
        "count": 6,
        "regions": [
            region(90, (1, 2, 3), (3,)),
            region(12, (1, 2, 3), (2, 3)),  # lost its majority
            region(55, (1, 2, 3, 4), (3, 4), learner=4),  # 1 of 3 voters down: fine
            region(7, (2, 3), (3,)),  # 1 of 2 voters down: no majority left
            region(31, (1, 2, 3), ()),
            region(44, (1, 2, 3), (1,)),
        ],
    }
).encode()


def test_summary_matches_the_full_brief_parse() -> None:
    summary = summarise_region_list(BODY, peers=PeerField.DOWN, quorum=True)
    full = RegionCheck.from_briefs(RegionProblem.DOWN_PEER, parse_regions_brief(BODY).regions)
    assert summary.count == full.count == 6
    assert summary.sample_ids == full.region_ids
    assert summary.peer_stores == full.peer_stores
    assert summary.quorum_lost_ids == full.quorum_lost == (7, 12)
    assert summary.quorum_lost_count == 2


def test_examples_are_the_smallest_ids_and_capped() -> None:
    summary = summarise_region_list(BODY, sample=2)
    assert summary.sample_ids == (7, 12) and summary.count == 6
    assert summary.peer_stores == {} and not summary.quorum_checked


def test_pending_peers_are_counted_per_store() -> None:
    summary = summarise_region_list(BODY, peers=PeerField.PENDING)
    assert summary.peer_stores == {3: 3, 2: 1, 1: 1}


def test_a_long_list_keeps_only_a_sample() -> None:
    body = json.dumps(
        {"count": 5000, "regions": [region(i, (1, 2, 3), (3,)) for i in range(5000, 0, -1)]}
    ).encode()
    summary = summarise_region_list(body, peers=PeerField.DOWN, sample=20)
    assert summary.count == 5000
    assert summary.sample_ids == tuple(range(1, 21))
    assert summary.peer_stores == {3: 5000}


def test_the_pd_fixture_is_summarised() -> None:
    body = (FIXTURES / "pd" / "regions_check_down_peer.json").read_bytes()
    summary = summarise_region_list(body, peers=PeerField.DOWN, quorum=True)
    assert summary.sample_ids == (2008, 2716, 3325) and summary.peer_stores == {5: 3}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<html>", "not a region list"),
        (b'{"count": 1, "regions": [{"id": "x"}]}', "not an integer"),
        (b'{"count": 1, "regions": [{"peers": []}]}', "lacks a field"),
        (b'{"count": 1, "regions": [{"id": 1, "down_peers": [{"peer": 5}]}]}', "wrong type"),
        (
            b'{"count": 1, "regions": [{"id": 1, "down_peers": [{"peer": {"store_id": "a"}}]}]}',
            "not an integer",
        ),
        (b'{"count": 2, "regions": [{"id": 1}', "not a region list"),
    ],
)
def test_a_broken_body_is_a_clear_error(body: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        summarise_region_list(body, peers=PeerField.DOWN, quorum=True)


class _Peer:
    """A loopback HTTP server whose region list trickles (a byte per 50 ms) or never ends."""

    def __init__(self, mode: str) -> None:
        import http.server
        import threading

        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                try:
                    if mode == "trickle":
                        for byte in b'{"count": 1, "regions": [':
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                            time.sleep(0.05)
                    else:  # endless: a valid-looking list that never closes
                        self.wfile.write(b'{"count": 1, "regions": [')
                        item = json.dumps(region(1, (1, 2, 3), (3,))).encode() + b","
                        while not outer.stopped.is_set():
                            self.wfile.write(item * 100)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.stopped = threading.Event()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/pd/api/v1/regions/check/x"

    def close(self) -> None:
        self.stopped.set()
        self.server.shutdown()
        self.server.server_close()


def test_the_worker_read_of_a_trickling_list_stops_at_its_total_deadline() -> None:
    peer = _Peer("trickle")
    try:
        with pytest.raises(ListReadError, match="not read whole within its deadline"):
            fetch_and_summarise(peer.url, PeerField.NONE, False, 20, 0.3)
    finally:
        peer.close()


def test_the_worker_read_of_an_endless_list_stops_at_its_size_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(region_lists, "MAX_LIST_BYTES", 2 * 1024 * 1024)
    peer = _Peer("endless")
    try:
        with pytest.raises(ListReadError, match="larger than 2 MiB"):
            fetch_and_summarise(peer.url, PeerField.NONE, False, 20, 30)
    finally:
        peer.close()
