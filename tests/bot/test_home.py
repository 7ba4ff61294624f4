"""The App Home tab: rendered from records (pure), published with `views.publish` when a user
opens the tab (the real bot over Socket Mode, `app_home_opened` from the stand-in), refreshed
when something changes (coalesced, at most one publish per interval per user), and its Approve
button decides the proposal through the card's own handler."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from bot import callbacks
from bot.render.home import Cluster, HomeData, home_view
from engine.model import Identity, KillSwitch, ProposalState
from tests.bot.conftest import ALICE, BOB, CHANNEL, Harness
from tests.bot.records import NOW, T0, attended_incident, proposal
from tests.bot.render_text import text_of

Make = Callable[..., Awaitable[Harness]]


def action_ids(view: dict[str, Any]) -> list[str]:
    return [e["action_id"] for b in view["blocks"] if b["type"] == "actions" for e in b["elements"]]


def test_home_view_shows_switch_clusters_incidents_and_pending_proposals() -> None:
    pending = proposal()
    view = home_view(
        HomeData(
            kill_switch=KillSwitch(on=True, by=Identity.slack(ALICE), at=T0, reason="upgrade"),
            observe_only=False,
            clusters=[Cluster(name="http://pd:2379", stores={"Up": 4, "Down": 1})],
            incidents=[attended_incident()],
            pending=[pending],
        ),
        NOW,
    )
    assert view["type"] == "home"
    text = text_of(view["blocks"])
    assert "Kill switch ON" in text and "upgrade" in text
    assert "http://pd:2379" in text and "4 Up" in text and "1 Down" in text
    assert "Open incidents (1)" in text and "Store 4 is Down" in text
    assert "Owner:" in text and "<@U0BOB>" in text  # who took it, as on the card
    assert "Silenced" in text and "planned restart of store 4" in text
    assert "Waiting for approval (1)" in text and pending.id in text
    # The card's own buttons: same action IDs, same block ID naming the proposal and version.
    assert action_ids(view) == [callbacks.APPROVE, callbacks.REJECT]
    [decide] = [b for b in view["blocks"] if b["type"] == "actions"]
    assert callbacks.proposal_of_block(decide["block_id"]) == pending.id
    assert "<!date^" in text  # times in each reader's timezone


def test_an_empty_home_says_so() -> None:
    view = home_view(
        HomeData(
            kill_switch=KillSwitch(),
            observe_only=True,
            clusters=[Cluster(name="c")],
            incidents=[],
            pending=[],
        ),
        NOW,
    )
    text = text_of(view["blocks"])
    assert "Kill switch off" in text and "Observe-only" in text
    assert "Nothing is waiting for a decision." in text and action_ids(view) == []


async def test_opening_the_tab_publishes_it_and_a_change_refreshes_it(bot_harness: Make) -> None:
    h = await bot_harness()
    await h.fake.open_home(user=ALICE)
    await h.bot.home.idle()
    first = h.fake.home(ALICE)
    assert first is not None and "Waiting for approval (0)" in text_of(first["blocks"])
    assert h.fake.home(BOB) is None  # published only for who opened it

    await h.fake.slash_command(user=BOB, text="drain 4", channel=CHANNEL)
    await h.settle()
    await h.bot.home.idle()
    view = h.fake.home(ALICE)
    assert view is not None
    text = text_of(view["blocks"])
    assert "Waiting for approval (1)" in text and "P-1" in text
    assert action_ids(view) == [callbacks.APPROVE, callbacks.REJECT]
    assert h.fake.home(BOB) is None


async def test_approve_in_the_home_tab_decides_through_the_card_handler(bot_harness: Make) -> None:
    h = await bot_harness()
    await h.fake.slash_command(user=BOB, text="drain 4", channel=CHANNEL)
    await h.settle()
    await h.fake.open_home(user=ALICE)
    await h.bot.home.idle()
    await h.fake.click_home(user=ALICE, action_id=callbacks.APPROVE)
    for _ in range(200):
        await h.settle()
        found = await h.runtime.repos.proposals.get("P-1")
        if found is not None and found.state is not ProposalState.PROPOSED:
            break
    assert found is not None and found.state is not ProposalState.PROPOSED
    assert found.decided_by is not None and found.decided_by.key == f"slack:{ALICE}"
    await h.bot.home.idle()
    view = h.fake.home(ALICE)
    assert view is not None and "Waiting for approval (0)" in text_of(view["blocks"])


async def test_a_non_approver_clicking_in_home_is_refused(bot_harness: Make) -> None:
    h = await bot_harness()
    await h.fake.slash_command(user=BOB, text="drain 4", channel=CHANNEL)
    await h.settle()
    await h.fake.open_home(user=BOB)
    await h.bot.home.idle()
    await h.fake.click_home(user=BOB, action_id=callbacks.APPROVE)
    await h.settle()
    found = await h.runtime.repos.proposals.get("P-1")
    assert found is not None and found.state is ProposalState.PROPOSED
    # The Home tab has no channel: the refusal is shown to bob alone in the incidents channel.
    said = await h.fake.wait_for(
        lambda: [e for e in h.fake.ephemerals(user=BOB) if "not an approver" in e.text], timeout=10
    )
    assert said[-1].channel == CHANNEL


async def test_refreshes_are_coalesced_per_user_within_the_interval(bot_harness: Make) -> None:
    h = await bot_harness()
    home = h.bot.home
    home.min_interval = 3600.0  # nothing more within this test unless the interval ends
    await h.fake.open_home(user=ALICE)
    await h.fake.wait_for(lambda: home.published > 0)
    assert len(h.fake.calls("views.publish")) == 1
    for _ in range(10):
        home.changed()
    await h.fake.open_home(user=ALICE)  # opening again inside the interval: no extra publish
    await h.bot.tasks.wait_idle()
    assert len(h.fake.calls("views.publish")) == 1
    home.min_interval = 0.0
    home.changed()
    await home.idle()
    assert len(h.fake.calls("views.publish")) == 2  # the ten changes became one publish


async def test_a_link_button_click_is_only_acknowledged(bot_harness: Make) -> None:
    h = await bot_harness()
    link = {
        "type": "button",
        "text": {"type": "plain_text", "text": "Dashboard"},
        "action_id": "link:dashboard",
        "url": "https://grafana.example.com/d/RDVQiEzZz",
    }
    posted = await h.bot.client.chat_postMessage(
        channel=CHANNEL, text="card", blocks=[{"type": "actions", "elements": [link]}]
    )
    ack = await h.fake.click(
        user=BOB, channel=CHANNEL, message_ts=str(posted["ts"]), action_id="link:dashboard"
    )
    await h.settle()
    assert dict(ack) == {}
    assert h.fake.ephemerals(user=BOB) == []  # not answered as an unknown element
