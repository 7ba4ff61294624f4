"""The terminal marks a drain's preflight warnings as [WARN], apart from passed and failed
checks: a drain that would put every leader on the last Up store, on a 4-store simulator with
two stores stopped."""

from __future__ import annotations

from typing import Any

import pytest

from tests.tikvops.test_cli_actions import terminal, tikvops, writes

__all__ = ["terminal"]  # the fixture of the terminal tests, reused here


async def test_a_drain_with_warnings_is_proposed_and_shows_them(
    terminal: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    sim = terminal["sim"]
    sim.faults.stop_store(3)
    sim.faults.stop_store(4)
    sim.cluster.advance(60)

    code, out, _ = await tikvops(terminal, capsys, "drain", "1")
    assert code == 0, out
    assert "P-1 waits for approval" in out
    code, out, _ = await tikvops(terminal, capsys, "proposal", "P-1")
    assert code == 0
    assert "  [ok] enough-leader-stores: 1 other Up store(s) can take leaders (2)" in out
    assert "  [WARN] healthy-voters-elsewhere: up to " in out
    assert "stores 3 (Disconnected), 4 (Disconnected) cannot take leaders" in out
    assert "  [WARN] leader-load: leaders after the drain, estimated" in out
    # Stores 3 and 4 still report the leaders of regions that lost their quorum with them.
    assert "store 2 ≈ 667 (67%, now 333)" in out
    assert "Store 2 would lead 67% of all leaders, more than 60%" in out
    assert writes(terminal) == []

    code, out, _ = await tikvops(terminal, capsys, "drain", "3")
    assert code == 1
    assert "  [FAIL] store-up: store 3 is Disconnected" in out
