"""Hypothesis over slash-command text, through the real socket: every input is acknowledged,
gets exactly one answer, and nothing crashes (no internal-error answer, no unhandled error)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.commands import command_names
from tests.bot.conftest import BOB, CHANNEL, Harness

WORDS = [
    *command_names(),
    "P-1",
    "p-99",
    "#3",
    "4",
    "0",
    "-1",
    "2008",
    "99999999999999999999",
    "9" * 21,
    "9" * 3_000,
    "0" * 3_000 + "4",
    "P-" + "7" * 3_000,
    "0.8",
    "nan",
    "--dry-run",
    "--help",
    "--max",
    "on",
    "off",
    "status",
    "low",
    "leader",
    "“quoted words”",
    "'unclosed",
    '"',
    "<!channel>",
    "<@U0ALICE>",
    "&amp;",
    "é",
    "🙂",
    "\t",
]

command_texts = st.one_of(
    st.text(max_size=120),
    st.lists(st.sampled_from(WORDS), max_size=6).map(" ".join),
    st.tuples(st.sampled_from(list(command_names())), st.text(max_size=40)).map(" ".join),
    # numbers of any length, up to past the command text limit (4,000 characters)
    st.tuples(
        st.sampled_from(list(command_names())),
        st.integers(1, 5_000).map(lambda n: "9" * n),
    ).map(" ".join),
)


@pytest.fixture
async def running(bot_harness: Callable[..., Awaitable[Harness]]) -> AsyncIterator[Harness]:
    yield await bot_harness()


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=command_texts)
async def test_every_command_text_gets_one_answer(running: Harness, text: str) -> None:
    h = running
    before = len(h.fake.ephemerals(user=BOB))
    ack = await h.fake.slash_command(user=BOB, text=text, channel=CHANNEL)
    await h.settle()
    answers = h.fake.ephemerals(user=BOB)[before:]
    if ack.get("text"):
        answers = answers[:0] + [a for a in answers if a.source != "ack"]
    assert len(answers) == 1, [a.text for a in answers]
    answer = answers[0]
    assert answer.text.strip()
    assert "internal error" not in answer.text
