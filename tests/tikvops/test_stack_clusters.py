"""The composition root with two clusters: one PD client, policy, engine and monitor per
cluster, each monitor its own scheduler job; cluster A's PD down never stops B's monitor, and
each cluster's incidents are its own."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from engine.results import ClustersView
from operator_tikv.metric_history import ChartMetric
from sim.server import SimServer
from tikvops.charts import RecordingSource
from tikvops.cluster_settings import cluster_configs
from tikvops.runtime import open_runtime
from tikvops.settings import Settings
from tikvops.stack import open_stack

SimFactory = Callable[..., Awaitable[SimServer]]
WAIT = 30.0


def two_cluster_settings(a: SimServer, b: SimServer, db: Path) -> Settings:
    return Settings(
        _env_file=None,
        db=db,
        poll_interval=0.3,
        pd_timeout=1.0,
        pd_retries=0,
        region_health_grace=600.0,
        health_addr="127.0.0.1:0",
        slack_bot_token=None,
        slack_app_token=None,
        anthropic_api_key=None,
        approvers=["U0ALICE"],
        clusters={
            "alpha": {"pd_url": a.pd_url, "channel": "tikv-alpha"},
            "beta": {"pd_url": b.pd_url, "channel": "tikv-beta", "approvers": ["U0BOB"]},
        },
    )


async def _wait(check: Callable[[], Awaitable[Any]]) -> Any:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError("condition not met in time")


async def test_each_cluster_has_its_own_runtime_parts(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    a = await sim_factory(stores=4, regions=60)
    b = await sim_factory(stores=4, regions=60)
    settings = two_cluster_settings(a, b, tmp_path / "t.db")
    assert [c.name for c in cluster_configs(settings)] == ["alpha", "beta"]
    async with open_runtime(settings) as runtime:
        alpha, beta = runtime.clusters["alpha"], runtime.clusters["beta"]
        assert alpha.pd.base_url != beta.pd.base_url
        assert alpha.policy.approvers == frozenset({"U0ALICE"})
        assert beta.policy.approvers == frozenset({"U0BOB"})
        assert runtime.engine is alpha.engine and runtime.engine.clusters == ["alpha", "beta"]
        assert beta.engine.cluster == "beta" and beta.engine.channel == "tikv-beta"


async def test_one_clusters_pd_down_does_not_stop_the_others_monitor(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    a = await sim_factory(stores=4, regions=60, speed=20.0, auto_tick=True)
    b = await sim_factory(stores=4, regions=60, speed=20.0, auto_tick=True)
    settings = two_cluster_settings(a, b, tmp_path / "t.db")
    async with open_stack(settings, use_slack=False, serve_health=False) as stack:
        assert {"monitor", "monitor:beta"} <= set(stack.scheduler.job_names())
        assert set(stack.monitors) == {"alpha", "beta"}
        banner = "\n".join(stack.describe())
        assert "cluster alpha: PD" in banner and "incidents in tikv-beta, approvers U0BOB" in banner
        await a.stop()  # alpha's PD goes away entirely
        b.cluster.stop_store(4)  # beta's store 4 stops heartbeating
        repos = stack.runtime.repos

        async def beta_store_4() -> Any:
            found = [i for i in await repos.incidents.list_open("beta") if i.subject == "store:4"]
            return found

        [incident] = await _wait(beta_store_4)
        assert incident.cluster == "beta"
        assert all(i.cluster in {"alpha", "beta"} for i in await repos.incidents.list_open())
        assert [i for i in await repos.incidents.list_open("alpha") if i.subject == "store:4"] == []

        async def alpha_failing() -> bool:
            return stack.monitors["alpha"].knowledge.current.pd_failing

        await _wait(alpha_failing)
        view = await stack.engine.clusters_view()
        assert isinstance(view, ClustersView)
        states = {c.name: c.state for c in view.clusters}
        assert states["alpha"] == "pd-unreachable"
        assert states["beta"] == "incidents"


async def test_healthz_and_metrics_report_every_cluster(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    # alpha's PD goes away: /healthz stays 200 (the bot watches beta still) and says alpha's PD
    # is not healthy while beta's is; /metrics has each cluster's cycles and PD state by name
    a = await sim_factory(stores=4, regions=60, speed=20.0, auto_tick=True)
    b = await sim_factory(stores=4, regions=60, speed=20.0, auto_tick=True)
    settings = two_cluster_settings(a, b, tmp_path / "t.db")
    async with (
        open_stack(settings, use_slack=False) as stack,
        httpx.AsyncClient(trust_env=False, timeout=3.0) as http,
    ):

        async def both_reached() -> Any:
            answer = await http.get(f"{stack.health_url}/healthz")
            clusters = answer.json().get("clusters", {})
            ok = answer.status_code == 200 and all(c["ok"] for c in clusters.values())
            return answer.json() if ok and set(clusters) == {"alpha", "beta"} else None

        body = await _wait(both_reached)
        assert body["checks"]["monitors"]["ok"] and "pd" not in body["checks"]
        await a.stop()

        async def alpha_down() -> Any:
            answer = await http.get(f"{stack.health_url}/healthz")
            body = answer.json()
            return (answer.status_code, body) if not body["clusters"]["alpha"]["ok"] else None

        status, body = await _wait(alpha_down)
        assert status == 200 and body["status"] == "ok"
        assert body["clusters"]["beta"]["ok"] and "PD reached" in body["clusters"]["beta"]["detail"]
        assert "alpha" in body["checks"]["monitors"]["detail"]
        assert body["clusters"]["alpha"]["monitor"].startswith("reporting")
        incident = 'tikvops_cluster_open_incidents{cluster="alpha",kind="pd_unreachable"} 1.0'

        async def alpha_incident_counted() -> Any:
            metrics = (await http.get(f"{stack.health_url}/metrics")).text
            return metrics if incident in metrics else None

        metrics = await _wait(alpha_incident_counted)
        assert 'tikvops_cluster_open_incidents{cluster="beta"' not in metrics
        assert 'tikvops_incidents_open{kind="pd_unreachable"} 1.0' in metrics  # the sum
        assert 'tikvops_cluster_pd_up{cluster="alpha"} 0.0' in metrics
        assert 'tikvops_cluster_pd_up{cluster="beta"} 1.0' in metrics
        assert 'tikvops_cluster_cycle_seconds_count{cluster="beta"}' in metrics
        assert 'tikvops_cluster_cycle_failures_total{cluster="alpha"}' in metrics


async def test_each_clusters_monitor_records_its_own_chart_history(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    # charts work with several clusters: alpha (4 stores) and beta (3 stores) each record
    # their own history, which the charts of their incidents read
    a = await sim_factory(stores=4, regions=60, speed=20.0, auto_tick=True)
    b = await sim_factory(stores=3, regions=60, speed=20.0, auto_tick=True)
    settings = two_cluster_settings(a, b, tmp_path / "t.db")
    async with open_stack(settings, use_slack=False, serve_health=False) as stack:
        alpha = stack.monitors["alpha"].source
        beta = stack.monitors["beta"].source
        assert isinstance(alpha, RecordingSource) and isinstance(beta, RecordingSource)
        assert alpha.history is not beta.history

        async def stores_charted() -> Any:
            end = time.time() + 3600
            found = []
            for source in (alpha, beta):
                series = await source.history.range(ChartMetric.LEADER_COUNT, start=0, end=end)
                found.append(sorted(series))
            return found if all(found) else None

        assert await _wait(stores_charted) == [[1, 2, 3, 4], [1, 2, 3]]


async def test_a_lone_cluster_table_records_its_name_and_names_nothing(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    # one [clusters.solo] table: every record says `solo` (incidents as well as proposals),
    # and since it is the only cluster no message names it
    a = await sim_factory(stores=4, regions=60, speed=20.0, auto_tick=True)
    settings = two_cluster_settings(a, a, tmp_path / "t.db").model_copy(
        update={"clusters": {"solo": {"pd_url": a.pd_url, "channel": "tikv-solo"}}}
    )
    async with open_stack(settings, use_slack=False, serve_health=False) as stack:
        assert not stack.runtime.multi_cluster and not stack.engine.multi_cluster
        a.cluster.stop_store(4)
        repos = stack.runtime.repos

        async def store_4() -> Any:
            return [i for i in await repos.incidents.list_open() if i.subject == "store:4"]

        [incident] = await _wait(store_4)
        assert incident.cluster == "solo"
        assert stack.engine.reads.cluster is None  # one cluster: status reads everything
