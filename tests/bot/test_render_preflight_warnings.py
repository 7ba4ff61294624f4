"""The drain's preflight as a proposal shows it: the checks of a 3-store drain (built by the real
drain checks from store counts), the leader load each remaining store would carry, and a
warning marked apart from passed and failed checks."""

from __future__ import annotations

from bot.render.action import check_lines
from bot.render.proposal import proposal_message
from operator_tikv.actions import Check, PreflightContext
from operator_tikv.actions.preflight import drain_checks
from operator_tikv.actions.state import StoreView
from tests.bot.records import NOW, proposal
from tests.bot.render_text import text_of


def three_stores(leaders: tuple[int, int, int]) -> dict[int, StoreView]:
    return {
        sid: StoreView(id=sid, state_name="Up", leader_count=count, region_count=1000)
        for sid, count in zip((1, 2, 3), leaders, strict=True)
    }


def checks_for(leaders: tuple[int, int, int]) -> list[Check]:
    return drain_checks(2, three_stores(leaders), (), 3, PreflightContext())


def test_a_three_store_drain_shows_every_check_passed_and_the_leader_load() -> None:
    checks = checks_for((334, 333, 333))
    shown = text_of(
        proposal_message(
            proposal(preflight=[c.model_dump(mode="json") for c in checks]), NOW
        ).blocks
    )
    assert "*Preflight checks* (7, all passed; run again right before execution)" in shown
    assert (
        ":white_check_mark: *enough-leader-stores*: 2 other Up store(s) can take leaders (1, 3)"
        in shown
    )
    assert (
        ":white_check_mark: *healthy-voters-elsewhere*: every region store 2 leads has another "
        "voter on stores 1 or 3, able to take its leader" in shown
    )
    assert (
        ":white_check_mark: *leader-load*: leaders after the drain, estimated (the 333 of store "
        "2 spread over stores 1, 3 by the voters held): store 1 ≈ 501 (50%, now 334), store 3 ≈ "
        "499 (50%, now 333)" in shown
    )
    assert ":warning:" not in shown and ":x:" not in shown


def test_a_warning_is_marked_and_shows_its_reason() -> None:
    checks = checks_for((900, 100, 10))
    lines = check_lines([c.model_dump(mode="json") for c in checks])
    [warned] = [line for line in lines if line.startswith(":warning:")]
    assert warned.startswith(":warning: *leader-load*: leaders after the drain, estimated")
    assert "Store 1 would lead 94% of all leaders, more than 60%" in warned
    shown = text_of(
        proposal_message(
            proposal(preflight=[c.model_dump(mode="json") for c in checks]), NOW
        ).blocks
    )
    assert "*Preflight checks* (7, all passed, 1 warning; run again right before execution)" in (
        shown
    )


def test_checks_stored_before_warnings_existed_still_render() -> None:
    old = {"name": "store-exists", "ok": True, "observed": "store 4 exists (Up)", "message": ""}
    assert check_lines([old]) == [":white_check_mark: *store-exists*: store 4 exists (Up)"]
