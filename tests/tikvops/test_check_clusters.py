"""`tikvops check` and `tikvops eval` with several clusters (`--cluster NAME`, before or after
the command): check observes the chosen cluster's PD and metrics only (both simulators' request
logs are read), a configuration with several clusters and no name, or an unknown name, gets one
line listing the clusters; eval refuses an unknown name the same way and builds its PD clients
with the chosen cluster's options."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from sim.server import SimServer
from tests.plugins.sim import SimFactory
from tikvops.cli import main
from tikvops.cluster_settings import chosen_cluster
from tikvops.commands.eval import simulate, simulator
from tikvops.settings import ConfigError, load_settings

CASES = Path(__file__).parents[1] / "eval" / "cases"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith(("TIKVOPS_", "SLACK_", "ANTHROPIC_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def write_config(tmp_path: Path, prod: SimServer, staging: SimServer) -> Path:
    config = tmp_path / "tikvops.toml"
    config.write_text(
        f'[clusters.prod]\npd_url = "{prod.pd_url}"\nchannel = "tikv-prod"\n\n'
        f'[clusters.staging]\npd_url = "{staging.pd_url}"\nchannel = "tikv-staging"\n'
        "pd_timeout = 7.5\npd_retries = 1\n"
    )
    return config


async def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = await asyncio.to_thread(main, ["--env-file", "missing.env", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


async def test_check_observes_only_the_chosen_cluster(
    sim_factory: SimFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prod = await sim_factory(stores=3, auto_tick=True, speed=30)
    staging = await sim_factory(stores=4, auto_tick=True, speed=30)
    staging.faults.fill_disk(2, 0.9)
    config = write_config(tmp_path, prod, staging)
    code, out, _ = await cli(
        capsys, "--config", str(config), "--cluster", "staging", "check", "--json", "--window", "0"
    )
    report = json.loads(out)
    assert code == 1  # staging's disk is over the threshold
    assert [s["id"] for s in report["stores"]] == [1, 2, 3, 4]  # staging has 4 stores
    assert ("disk_usage", 2) in {(v["kind"], v["store_id"]) for v in report["violations"]}
    assert staging.requests and not [r for r in prod.requests if r.path.startswith("/pd")]
    # the option after the command works the same; prod is healthy
    code, out, _ = await cli(
        capsys, "--config", str(config), "check", "--cluster", "prod", "--json", "--window", "0"
    )
    assert code == 0 and [s["id"] for s in json.loads(out)["stores"]] == [1, 2, 3]


async def test_check_without_a_name_or_with_an_unknown_one_lists_the_clusters(
    sim_factory: SimFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prod, staging = await sim_factory(), await sim_factory()
    config = write_config(tmp_path, prod, staging)
    code, out, err = await cli(capsys, "--config", str(config), "check")
    assert code == 2 and out == ""
    assert err.strip().count("\n") == 0  # one line
    assert "several clusters (prod, staging)" in err and "--cluster NAME check" in err
    code, out, err = await cli(capsys, "--config", str(config), "--cluster", "nope", "check")
    assert code == 2 and out == ""
    assert err.strip() == (
        "tikvops: configuration: there is no cluster 'nope': the clusters are prod, staging"
    )
    assert prod.requests == [] and staging.requests == []  # nothing was asked


async def test_eval_refuses_an_unknown_cluster_and_takes_the_chosen_ones_pd_options(
    sim_factory: SimFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prod, staging = await sim_factory(), await sim_factory()
    config = write_config(tmp_path, prod, staging)
    code, out, err = await cli(capsys, "--config", str(config), "--cluster", "nope", "eval")
    assert code == 2 and out == ""
    assert err.strip() == "tikvops eval: there is no cluster 'nope': the clusters are prod, staging"
    settings = load_settings(config_file=config, env_file=None)
    chosen = chosen_cluster(settings, "staging", command="eval")
    factory = simulator(chosen.settings)
    assert factory.keywords == {"pd_timeout": 7.5, "pd_retries": 1}  # type: ignore[attr-defined]
    assert simulator(None) is simulate
    with pytest.raises(ConfigError, match="several clusters"):
        chosen_cluster(settings, None, command="check")
    over = chosen_cluster(settings, "prod", command="check", pd_url="http://127.0.0.1:1")
    assert over.settings.pd_url == "http://127.0.0.1:1" and over.name == "prod"
    code, out, err = await cli(
        capsys,
        "--config",
        str(config),
        "--cluster",
        "staging",
        "eval",
        "--cases",
        str(CASES),
        "--case",
        "pd-unreachable",
        "--json",
    )
    assert "cluster staging" in err
    assert code == 0, out
