"""`tikvops demo --clusters N`: N simulated clusters, one channel each in the stand-in, and the
`[clusters.NAME]` tables the bot gets (also written out as TOML a user could copy)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from sim.fleet import SimFleet
from tests.tikvops.test_demo import no_env_settings
from tikvops.cli import build_parser
from tikvops.commands import demo as demo_command
from tikvops.demo import (
    DEMO_APPROVER,
    DEMO_CHANNEL,
    DEMO_GROUP,
    DemoOptions,
    cluster_channel,
    cluster_tables,
    clusters_toml,
    demo_channels,
    open_demo,
)
from tikvops.demo_terminal import banner, next_steps

WAIT = 30.0


def test_two_clusters_get_prod_and_staging_with_three_stores_and_a_channel_each() -> None:
    options = DemoOptions(clusters=2)
    assert options.cluster_names == ["prod", "staging"]
    assert options.stores_per_cluster == 3
    assert DemoOptions().stores_per_cluster == 5 and DemoOptions().cluster_names == []
    assert DemoOptions(clusters=2, stores=4).stores_per_cluster == 4
    assert demo_channels(options) == {
        DEMO_CHANNEL: "tikv-ops",
        "C0PROD": "tikv-prod",
        "C0STAGING": "tikv-staging",
    }
    assert cluster_channel("c3") == ("C0C3", "tikv-c3")


@pytest.mark.parametrize(("clusters", "problem"), [(0, "at least 1"), (101, "between 1 and 100")])
def test_the_cluster_count_is_checked(clusters: int, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        DemoOptions(clusters=clusters)


def test_the_command_line_refuses_a_bad_cluster_count(capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(["demo", "--clusters", "0"])
    assert args.clusters == 0
    assert demo_command.run(args) == 2
    assert "tikvops demo: the demo needs at least 1 cluster" in capsys.readouterr().err


async def test_cluster_tables_name_each_pd_and_channel_and_read_back_as_toml() -> None:
    async with SimFleet(["prod", "staging"], stores=1, regions=5, auto_tick=False) as fleet:
        tables = cluster_tables(fleet, with_slack=True)
        assert tables == {
            name: {
                "pd_url": fleet[name].pd_url,
                "prometheus_url": None,
                "channel": cluster_channel(name)[0],
                "approvers": [DEMO_APPROVER, DEMO_GROUP],
            }
            for name in ("prod", "staging")
        }
        parsed = tomllib.loads(clusters_toml(tables))
        assert parsed["clusters"]["prod"] == {
            "pd_url": fleet["prod"].pd_url,
            "channel": "C0PROD",
            "approvers": [DEMO_APPROVER, DEMO_GROUP],
        }
        assert set(parsed["clusters"]) == {"prod", "staging"}
        without_slack = cluster_tables(fleet, with_slack=False)
        assert without_slack["staging"] == {
            "pd_url": fleet["staging"].pd_url,
            "prometheus_url": None,
        }


async def test_several_clusters_against_a_configured_pd_are_refused(tmp_path: Path) -> None:
    base = no_env_settings(pd_url="http://pd0:2379")
    with pytest.raises(ValueError, match="unset TIKVOPS_PD_URL"):
        async with open_demo(base, DemoOptions(clusters=2, port=0, db=tmp_path / "d.db")):
            pass


async def test_the_two_cluster_demo_runs_both_with_a_channel_each(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    options = DemoOptions(clusters=2, port=0, regions=40, speed=20.0, db=tmp_path / "d.db")
    async with open_demo(no_env_settings(), options, overrides={"poll_interval": 0.3}) as demo:
        assert demo.fleet is not None and demo.fake is not None
        prod, staging = demo.fleet["prod"], demo.fleet["staging"]
        assert len(prod.cluster.stores) == 3 and len(staging.cluster.stores) == 3
        assert set(demo.fake.workspace.channels) == {DEMO_CHANNEL, "C0PROD", "C0STAGING"}
        assert demo.page_url is not None and demo.page_url.endswith("channel=C0PROD")
        assert demo.config_file is not None
        written = tomllib.loads(demo.config_file.read_text())["clusters"]
        assert written["staging"]["pd_url"] == staging.pd_url
        text = "\n".join(banner(demo) + next_steps(demo))
        assert f"prod: simulated TiKV, 3 stores and 40 regions, PD at {prod.pd_url}" in text
        assert "-> #tikv-staging" in text and "into cluster prod (#tikv-prod)" in text
        # the bot watches both: each PD is read
        await demo.fake.wait_for(
            lambda: all(
                any(r.path == "/pd/api/v1/stores" for r in sim.requests) for sim in (prod, staging)
            ),
            timeout=WAIT,
        )
        result = demo.inject()
        assert result is not None
        assert staging.faults.describe()["slow_stores"] == {}  # only the first cluster
