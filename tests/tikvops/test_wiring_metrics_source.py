"""`open_metrics_source` and `open_runtime`'s default PD transport, against the simulator."""

from __future__ import annotations

from pathlib import Path

from operator_tikv.observation import targets_of
from operator_tikv.queries import PrometheusSource
from operator_tikv.scrape import ScrapeSource
from sim.server import SimServer
from tikvops.runtime import open_runtime
from tikvops.settings import Settings
from tikvops.wiring import open_metrics_source


def settings_for(tmp_path: Path, pd_url: str, prometheus_url: str | None = None) -> Settings:
    return Settings(
        _env_file=None,
        pd_url=pd_url,
        prometheus_url=prometheus_url,
        db=tmp_path / "bot.db",
        anthropic_api_key=None,
    )


async def test_pd_and_the_scrape_source_read_the_simulator(sim: SimServer, tmp_path: Path) -> None:
    settings = settings_for(tmp_path, sim.pd_url)
    async with open_runtime(settings) as runtime, open_metrics_source(settings) as source:
        assert isinstance(source, ScrapeSource)
        stores = await runtime.pd.list_stores()
        first = await source.read(targets_of(stores), at=0.0)
        second = await source.read(targets_of(stores), at=15.0)
    assert len(stores) == 3
    for reading in (first, second):
        assert {m.store_id for m in reading.stores.values() if m.up} == {s.id for s in stores}
        assert all(m.region_count is not None for m in reading.stores.values())
    scrapes = [r for r in sim.requests if r.store_id is not None]
    assert len(scrapes) == 2 * len(stores)


async def test_prometheus_url_gives_the_prometheus_source(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, "http://127.0.0.1:1", "http://127.0.0.1:9")
    async with open_metrics_source(settings) as source:
        assert isinstance(source, PrometheusSource)
        assert source.client.base_url == "http://127.0.0.1:9"
