"""Hypothesis over whole Socket Mode envelopes, through the real socket: any envelope type and
any payload shape (random JSON, null, real payloads of every kind with one value replaced or
one key removed) is acknowledged within Slack's limit, nothing reaches PD, nobody is told
"internal error", and the bot still answers `/tikv` afterwards."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot import callbacks
from slackfake import ids, payloads
from tests.bot.conftest import BOB, CHANNEL, Harness
from tests.reliability.support import INPUT_COUNTS

TEAM = {"team_id": "T0TIKV", "team_domain": "tikvops-dev", "app_id": "A0TIKVOPS"}
WHO = {"user_id": BOB, "user_name": "bob"}


@pytest.fixture
async def running(bot_harness: Callable[..., Awaitable[Harness]]) -> AsyncIterator[Harness]:
    h = await bot_harness()
    await h.fake.slash_command(user=BOB, text="drain 4", channel=CHANNEL)  # P-1, buttons
    await h.settle()
    h.extra["real"] = real_payloads(h)  # built once: the strategy must not change between runs
    yield h


def real_payloads(h: Harness) -> dict[str, tuple[str, dict[str, Any]]]:
    """One real payload of each kind (with its envelope type), as bob, about P-1's message."""
    [message] = h.top()
    response_url = h.fake.response_url_for(user=BOB, channel=CHANNEL)
    trigger = h.fake.trigger_for(user=BOB, channel=CHANNEL)
    container = payloads.message_container(CHANNEL, message.ts, is_ephemeral=False, thread_ts=None)
    view = {
        "id": "V0FUZZ",
        "type": "modal",
        "callback_id": callbacks.REJECT_VIEW,
        "private_metadata": json.dumps({"value": '{"p":"P-1","v":1}', "channel": CHANNEL}),
        "state": {"values": {"reason": {"reason_input": {"type": "x", "value": "no"}}}},
        "hash": "1.x",
        "app_id": "A0TIKVOPS",
    }
    click = payloads.block_actions(
        **TEAM,
        **WHO,
        channel_id=CHANNEL,
        channel_name="tikv-ops",
        container=container,
        message=message.to_api(),
        action={
            "action_id": callbacks.APPROVE,
            "block_id": callbacks.block_id("decide", "P-1", 1),
            "type": "button",
            "value": '{"p":"P-1","v":1}',
            "action_ts": "1700000000.000001",
        },
        response_url=response_url,
        trigger_id=trigger,
    )
    return {
        "slash": (
            "slash_commands",
            payloads.slash_command(
                **TEAM,
                **WHO,
                channel_id=CHANNEL,
                channel_name="tikv-ops",
                command="/tikv",
                text="status",
                response_url=h.fake.response_url_for(user=BOB, channel=CHANNEL, kind="commands"),
                trigger_id=trigger,
            ),
        ),
        "click": ("interactive", click),
        "view_submission": (
            "interactive",
            payloads.view_submission(
                **TEAM, **WHO, bot_id="B0TIKVBOT", view=view, trigger_id=trigger
            ),
        ),
        "view_closed": (
            "interactive",
            {
                "type": "view_closed",
                "team": {"id": "T0TIKV"},
                "user": payloads.user_object(BOB, "bob", "T0TIKV"),
                "api_app_id": "A0TIKVOPS",
                "view": view,
            },
        ),
        "shortcut": (
            "interactive",
            payloads.shortcut(**TEAM, **WHO, callback_id="x", action_ts="1.2", trigger_id=trigger),
        ),
        "message_shortcut": (
            "interactive",
            payloads.message_action(
                **TEAM,
                **WHO,
                channel_id=CHANNEL,
                channel_name="tikv-ops",
                callback_id="y",
                action_ts="1.3",
                message=message.to_api(),
                response_url=response_url,
                trigger_id=trigger,
            ),
        ),
        "options": (
            "interactive",
            payloads.block_suggestion(
                **TEAM, **WHO, action_id="a", block_id="b", value="4", container=container
            ),
        ),
        "mention": (
            "events_api",
            payloads.event_callback(
                payloads.app_mention(
                    user_id=BOB,
                    text="<@U0TIKVBOT> hi",
                    ts=message.ts,
                    channel_id=CHANNEL,
                    team_id="T0TIKV",
                ),
                team_id="T0TIKV",
                app_id="A0TIKVOPS",
                bot_user_id="U0TIKVBOT",
                event_id="Ev0FUZZ",
                event_time=1,
            ),
        ),
    }


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)
hostile_values = st.one_of(
    json_values,
    st.sampled_from(["[" * 5_000, "9" * 5_000, "", "{}", "null", '{"p":"P-1","v":1}']),
)


def paths(document: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside the document."""
    found: list[tuple[Any, ...]] = []
    if isinstance(document, dict):
        for key, value in document.items():
            found.append((*prefix, key))
            found.extend(paths(value, (*prefix, key)))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found.append((*prefix, index))
            found.extend(paths(value, (*prefix, index)))
    return found


def changed(document: Any, path: tuple[Any, ...], value: Any, *, remove: bool) -> Any:
    copied = copy.deepcopy(document)
    parent = copied
    for step in path[:-1]:
        parent = parent[step]
    if remove and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return copied


@st.composite
def envelopes(draw: st.DrawFn, real: dict[str, tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    shape = draw(st.sampled_from(["real-mutated", "real-mutated", "random", "type-swapped"]))
    if shape == "random":
        kind = draw(
            st.sampled_from(["slash_commands", "interactive", "events_api"])
            | st.text(max_size=12).filter(lambda t: t not in ("hello", "disconnect"))
        )
        body: Any = draw(json_values)
    else:
        kind, body = real[draw(st.sampled_from(sorted(real)))]
        if shape == "type-swapped":
            kind = draw(st.sampled_from(["slash_commands", "interactive", "events_api", "x"]))
        places = paths(body)
        path = draw(st.sampled_from(places))
        body = changed(body, path, draw(hostile_values), remove=draw(st.booleans()))
    envelope = payloads.envelope(
        kind, body, envelope_id=ids.envelope_id(), accepts_response_payload=True
    )
    if draw(st.integers(0, 9)) == 0:
        del envelope[draw(st.sampled_from(["payload", "type"]))]
    return envelope


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_every_envelope_is_acked_and_the_bot_keeps_answering(
    running: Harness, data: st.DataObject
) -> None:
    INPUT_COUNTS["Socket Mode envelopes"] += 1
    h = running
    envelope = data.draw(envelopes(h.extra["real"]))
    ack = await h.fake.push(envelope)  # raises AckTimeout when no ack comes in time
    assert ack.envelope_id == envelope["envelope_id"]
    await h.settle()
    told = h.fake.ephemerals(user=BOB)
    assert not [e.text for e in told if "internal error" in e.text]
    assert [r for r in h.sim.requests if r.method not in ("GET", "HEAD")] == []
    before = len(told)
    await h.fake.slash_command(user=BOB, text="help", channel=CHANNEL)
    await h.settle()
    assert len(h.fake.ephemerals(user=BOB)) > before
