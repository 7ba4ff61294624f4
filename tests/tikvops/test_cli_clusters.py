"""`tikvops --cluster NAME ...` at the terminal with two clusters in the TOML file: the command
reaches only that cluster's PD; without a cluster, or with an unknown one, it is refused with
the list of clusters."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import pytest

from tikvops import cli
from tikvops.commands import actions

FAST_POLLS = {"poll_intervals": {name: 0.05 for name in ("drain", "undrain", "limit")}}


@pytest.fixture
async def two(sim_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    for name in list(os.environ):
        if name.startswith(("TIKVOPS_", "SLACK_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(actions, "ENGINE_OPTIONS", FAST_POLLS)
    monkeypatch.setattr(actions, "local_identity", lambda: actions.Identity.cli("sre@ops-box"))
    alpha = await sim_factory(stores=4, auto_tick=True, speed=100, start_time=time.time())
    beta = await sim_factory(stores=4, auto_tick=True, speed=100, start_time=time.time())
    config = tmp_path / "tikvops.toml"
    config.write_text(
        f'db = "{tmp_path / "t.db"}"\n'
        f'[clusters.alpha]\npd_url = "{alpha.pd_url}"\nchannel = "tikv-alpha"\n'
        f'[clusters.beta]\npd_url = "{beta.pd_url}"\nchannel = "tikv-beta"\n'
    )
    return {"alpha": alpha, "beta": beta, "config": config}


def writes(sim: Any) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in sim.requests if r.store_id is None and r.method != "GET"]


async def run(two: dict[str, Any], capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code = await asyncio.to_thread(cli.main, ["--config", str(two["config"]), *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


async def test_cluster_option_targets_one_cluster(
    two: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = await run(two, capsys, "--cluster", "beta", "drain", "4", "--yes")
    assert code == 0, out
    assert ("POST", "/pd/api/v1/schedulers") in writes(two["beta"])
    assert writes(two["alpha"]) == []
    assert "EXECUTING beta/P-1" in out  # the terminal names the cluster


async def test_without_or_with_an_unknown_cluster_the_clusters_are_listed(
    two: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = await run(two, capsys, "drain", "4")
    assert code == 1
    assert "several clusters (alpha, beta)" in out + err
    code, out, err = await run(two, capsys, "--cluster", "gamma", "stores")
    assert code == 1
    assert "there is no cluster 'gamma': the clusters are alpha, beta" in out + err
    assert writes(two["alpha"]) == [] and writes(two["beta"]) == []
    with pytest.raises(SystemExit) as stopped:
        cli.main(["--config", str(two["config"]), "--cluster", "beta", "run"])
    assert stopped.value.code == 2
    # (`check` and `eval` take it: tests/tikvops/test_check_clusters.py)
    assert "--cluster does not apply to 'run'" in capsys.readouterr().err
