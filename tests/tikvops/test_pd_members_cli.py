"""`TIKVOPS_PD_URL` with several PD members, through the commands: the first member dead, a
check and an approved action go through the next one; the write is sent once."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from pathlib import Path

import pytest

from tests.plugins.sim import SimFactory
from tikvops import cli
from tikvops.commands import actions
from tikvops.settings import ConfigError, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith(("TIKVOPS_", "SLACK_", "ANTHROPIC_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


async def test_check_and_an_action_use_the_next_member(
    sim_factory: SimFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sim = await sim_factory(stores=4, auto_tick=True, speed=100, start_time=time.time())
    members = f"{dead_url()}, {sim.pd_url}, http://localhost:{sim.pd_port}"
    monkeypatch.setenv("TIKVOPS_PD_URL", members)
    monkeypatch.setattr(
        actions,
        "ENGINE_OPTIONS",
        {"poll_intervals": {name: 0.05 for name in ("drain", "undrain", "limit")}},
    )
    code = await asyncio.to_thread(cli.main, ["check", "--window", "0"])
    out = capsys.readouterr().out
    assert code == 0, out
    argv = ["drain", "4", "--yes", "--db", str(tmp_path / "t.db")]
    code = await asyncio.to_thread(cli.main, argv)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "P-1 succeeded" in out
    posts = [r for r in sim.requests if r.method == "POST"]
    assert len(posts) == 1


def test_a_member_list_is_validated_member_by_member(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIKVOPS_PD_URL", "http://pd-0:2379, pd-1:2379")
    with pytest.raises(ConfigError) as caught:
        load_settings(env_file=None)
    assert caught.value.problems == [
        "TIKVOPS_PD_URL: each PD address must start with http:// or https:// ('pd-1:2379')"
    ]
    monkeypatch.setenv("TIKVOPS_PD_URL", "http://pd-0:2379, http://pd-1:2379,")
    settings = load_settings(env_file=None)
    assert settings.pd_urls == ["http://pd-0:2379", "http://pd-1:2379"]
