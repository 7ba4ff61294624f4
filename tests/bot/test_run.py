"""`tikvops run` (the Slack part of the service): it starts the whole stack against the Slack
stand-in and the simulator, answers `/tikv`, and stops cleanly; without tokens, or with tokens
Slack refuses, it says what to fix and exits with 2."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import pytest

from sim.server import SimServer
from slackfake.server import SlackFake
from tikvops.commands.run import missing_slack, serve
from tikvops.settings import Settings
from tikvops.stack import SlackOptions

FAST = SlackOptions(outbox_poll=0.05, ping_interval=0.5)


def settings(sim: SimServer, fake: SlackFake, db: Path, **changes: Any) -> Settings:
    values: dict[str, Any] = {
        "pd_url": sim.pd_url,
        "db": db,
        "slack_bot_token": "xoxb-test",
        "slack_app_token": "xapp-1-A0TIKVOPS-1-test",
        "slack_api_url": fake.api_url,
        "slack_app_id": "A0TIKVOPS",
        "slack_team_id": "T0TIKV",
        "channel": "C0OPS",
        "approvers": ["S0ONCALL"],
        "health_addr": "127.0.0.1:0",
        "poll_interval": 3600.0,
    }
    values.update(changes)
    return Settings(_env_file=None, **values)


async def test_serve_answers_slack_and_stops_cleanly(
    sim: SimServer, slack_fake: SlackFake, tmp_path: Path
) -> None:
    out = io.StringIO()
    stop = asyncio.Event()
    task = asyncio.create_task(
        serve(settings(sim, slack_fake, tmp_path / "db.sqlite"), out=out, stop=stop, slack=FAST)
    )
    await slack_fake.wait_for_socket(timeout=10)
    await slack_fake.slash_command(user="U0BOB", text="stores", channel="C0OPS")
    answer = await slack_fake.wait_for(lambda: slack_fake.ephemerals(user="U0BOB"), timeout=10)
    assert answer[0].text == "3 stores"
    stop.set()
    assert await asyncio.wait_for(task, 20) == 0
    text = out.getvalue()
    assert "tikvops run: started" in text and "slack: Socket Mode via" in text
    assert text.rstrip().endswith("tikvops run: stopped")
    assert slack_fake.active_sockets == 0


async def test_a_refused_app_token_is_explained(
    sim: SimServer,
    slack_fake: SlackFake,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    wrong = settings(sim, slack_fake, tmp_path / "db.sqlite", slack_app_token="xapp-1-WRONG-1-x")
    assert await serve(wrong, out=io.StringIO(), stop=asyncio.Event(), slack=FAST) == 2
    err = capsys.readouterr().err
    assert "Slack refused the Socket Mode connection" in err and "SLACK_APP_TOKEN" in err


def test_missing_tokens_say_what_to_do(tmp_path: Path) -> None:
    bare = Settings(_env_file=None, pd_url="http://127.0.0.1:1", db=tmp_path / "x.db")
    problems = missing_slack(bare)
    assert "SLACK_BOT_TOKEN, SLACK_APP_TOKEN not set" in problems[0]
    assert "tikvops demo" in problems[1]
    assert (
        missing_slack(bare.model_copy(update={"slack_bot_token": "x", "slack_app_token": "y"}))
        == []
    )
