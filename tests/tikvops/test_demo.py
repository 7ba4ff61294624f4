"""`tikvops demo`: as a subprocess it prints the page's URL, an incident shows up on the Slack
stand-in (read through the page's own `/ui/state`), and SIGINT stops it cleanly; in process,
its settings point the bot at what it started and leave alone what the user configured."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from sim.server import SimServer
from tikvops.cli import build_parser
from tikvops.demo import (
    DEMO_APPROVER,
    DEMO_CHANNEL,
    DEMO_GROUP,
    DemoOptions,
    demo_settings,
    open_demo,
)
from tikvops.demo_terminal import banner, next_steps
from tikvops.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
PAGE = re.compile(r"open (http://127\.0\.0\.1:(\d+)/\?user=U0ALICE&channel=C0OPS)")
WAIT = 30.0

SCRUBBED = (
    "TIKVOPS_PD_URL",
    "TIKVOPS_DB",
    "SLACK_BOT_TOKEN",
    "SLACK_APP_TOKEN",
    "SLACK_API_URL",
    "ANTHROPIC_API_KEY",
    "TIKVOPS_APPROVERS",
    "TIKVOPS_HEALTH_ADDR",
)


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        env.pop(name, None)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


@asynccontextmanager
async def demo_process(tmp_path: Path, *args: str) -> AsyncIterator[asyncio.subprocess.Process]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tikvops",
        "demo",
        *args,
        cwd=tmp_path,  # no .env from the working tree
        env=clean_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def read_until(
    stream: asyncio.StreamReader, pattern: re.Pattern[str], seen: list[str]
) -> re.Match[str]:
    while True:
        raw = await asyncio.wait_for(stream.readline(), WAIT)
        if not raw:
            raise AssertionError("the demo ended before printing:\n" + "".join(seen))
        line = raw.decode()
        seen.append(line)
        found = pattern.search(line)
        if found:
            return found


async def test_the_demo_shows_an_incident_on_the_page_and_stops_on_sigint(
    tmp_path: Path,
) -> None:
    async with demo_process(
        tmp_path, "--port", "0", "--scenario", "store-down", "--delay", "0", "--speed", "20"
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        seen: list[str] = []
        url = (await read_until(proc.stdout, PAGE, seen)).group(1)
        await read_until(proc.stdout, re.compile(r"Ctrl-C stops everything"), seen)
        await read_until(proc.stdout, re.compile(r"Injected `store-down`: store 5 stopped"), seen)
        state_url = url.replace("/?", "/ui/state?")
        async with httpx.AsyncClient(trust_env=False, timeout=5.0) as http:

            async def incident() -> dict[str, Any] | None:
                state = (await http.get(state_url)).json()
                assert state["ok"] and state["me"]["id"] == DEMO_APPROVER
                for message in state["messages"]:
                    if "Store 5" in message["html"] and message["author"]["is_bot"]:
                        return dict(message)
                return None

            found = None
            deadline = asyncio.get_running_loop().time() + WAIT
            while found is None and asyncio.get_running_loop().time() < deadline:
                found = await incident()
                if found is None:
                    await asyncio.sleep(0.2)
            assert found is not None, "no incident about store 5 on the page"
            assert (await http.get(state_url)).json()["app_connected"] is True

        proc.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(proc.communicate(), WAIT)
    text = "".join(seen) + out.decode()
    assert proc.returncode in (0, 130), err.decode()
    assert "Traceback" not in err.decode()
    assert "tikvops demo: stopped" in text
    assert "OPENED" in text  # the terminal echoes the incident too
    with pytest.raises(httpx.ConnectError):  # the stand-in is gone
        async with httpx.AsyncClient(trust_env=False, timeout=2.0) as http:
            await http.get(state_url)


async def test_the_demo_says_what_to_do_when_its_port_is_taken(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        async with demo_process(tmp_path, "--port", str(port), "--scenario", "none") as proc:
            out, err = await asyncio.wait_for(proc.communicate(), WAIT)
    assert proc.returncode == 2
    message = err.decode()
    assert "--port" in message and "Traceback" not in message
    assert "tikvops demo is running" not in out.decode()


def test_the_command_line_offers_every_scenario_and_refuses_others(
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = build_parser()
    args = parser.parse_args(["demo", "--scenario", "hot-region", "--port", "0"])
    assert (args.scenario, args.port, args.delay) == ("hot-region", 0, 5.0)
    for bad in (["--scenario", "meteor"], ["--port", "70000"], ["--delay", "-2"]):
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args(["demo", *bad])
        assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "slow-store" in err and "meteor" in err and "65535" in err and "0 or more" in err


# ----------------------------------------------------------------------------- in process


def no_env_settings(**values: Any) -> Settings:
    base: dict[str, Any] = {
        "pd_url": None,
        "slack_bot_token": None,
        "slack_app_token": None,
        "anthropic_api_key": None,
        "approvers": [],
    }
    base.update(values)
    return Settings(_env_file=None, **base)


def test_demo_settings_point_the_bot_at_the_simulator_and_the_stand_in() -> None:
    class Sim:
        pd_url = "http://127.0.0.1:1234"

    class Workspace:
        bot_token = "xoxb-demo"
        app_token = "xapp-1-A0TIKVOPS-1-demo"
        app_id = "A0TIKVOPS"
        team_id = "T0TIKV"

    class Fake:
        workspace = Workspace()
        api_url = "http://127.0.0.1:4321/api/"

    base = no_env_settings(poll_interval=60.0, prometheus_url="http://prom:9090")
    settings = demo_settings(
        base,
        DemoOptions(),
        sim=Sim(),  # type: ignore[arg-type]
        fake=Fake(),  # type: ignore[arg-type]
        db_dir=Path("/tmp/demo-x"),
        overrides={"resolve_after": 1.5},
    )
    assert settings.pd_url == "http://127.0.0.1:1234" and settings.prometheus_url is None
    assert settings.uses_real_slack and settings.slack_api_url == "http://127.0.0.1:4321/api/"
    assert settings.slack_bot_token is not None
    assert settings.slack_bot_token.get_secret_value() == "xoxb-demo"
    assert settings.channel == DEMO_CHANNEL
    assert settings.approvers == [DEMO_APPROVER, DEMO_GROUP]
    assert settings.poll_interval == 2.0 and settings.resolve_after == 1.5
    assert settings.db == Path("/tmp/demo-x/tikvops.db")


def test_demo_settings_keep_the_users_cluster_slack_and_database() -> None:
    base = no_env_settings(
        pd_url="http://pd0:2379",
        slack_bot_token="xoxb-real",
        slack_app_token="xapp-real",
        approvers=["U1REAL"],
        channel="ops",
    )
    settings = demo_settings(
        base, DemoOptions(db=Path("mine.db")), sim=None, fake=None, db_dir=Path("/tmp/x")
    )
    assert settings.pd_url == "http://pd0:2379"
    assert settings.slack_bot_token is not None
    assert settings.slack_bot_token.get_secret_value() == "xoxb-real"
    assert settings.approvers == ["U1REAL"] and settings.channel == "ops"
    assert settings.db == Path("mine.db")


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"scenario": "meteor"}, "unknown scenario"),
        ({"delay": -1.0}, "0 or more"),
        ({"speed": 0.0}, "positive"),
    ],
)
def test_demo_options_are_checked(options: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        DemoOptions(**options)


async def test_against_a_real_pd_the_demo_injects_nothing(
    sim_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    cluster: SimServer = await sim_factory(stores=3, regions=30, auto_tick=True)
    base = no_env_settings(pd_url=cluster.pd_url)
    options = DemoOptions(port=0, db=tmp_path / "demo.db")
    async with open_demo(base, options, overrides={"poll_interval": 0.3}) as demo:
        assert demo.sim is None and demo.fake is not None
        assert demo.settings.pd_url == cluster.pd_url
        assert demo.inject() is None and demo.injected == []
        assert cluster.faults.describe()["slow_stores"] == {}
        text = "\n".join(banner(demo) + next_steps(demo))
        assert f"your PD at {cluster.pd_url} (nothing will be injected)" in text
        assert "injects" not in text
        await demo.fake.wait_for(
            lambda: any(r.path == "/pd/api/v1/stores" for r in cluster.requests), timeout=WAIT
        )
    assert (tmp_path / "demo.db").exists()
