"""Each store's /metrics is TiKV text format with TiKV's names and labels; PD serves pd_ metrics."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from sim.server import SimServer
from tests.sim.promql import buckets, quantile_from_delta

WRITE = "tikv_storage_engine_async_request_duration_seconds"


async def scrape(client: httpx.AsyncClient, address: str) -> str:
    response = await client.get(f"http://{address}/metrics")
    assert response.status_code == 200
    return response.text


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


async def test_store_metrics_have_tikv_names_labels_and_values(sim: SimServer) -> None:
    async with httpx.AsyncClient() as client:
        text = await scrape(client, sim.status_addresses[1])
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families[WRITE].type == "histogram"
    assert families["tikv_store_size_bytes"].type == "gauge"
    assert families["tikv_raftstore_region_count"].type == "gauge"
    for name in (
        "tikv_grpc_msg_duration_seconds",
        "tikv_scheduler_command_duration_seconds",
        "tikv_raftstore_append_log_duration_seconds",
        "tikv_raftstore_apply_log_duration_seconds",
        "tikv_thread_cpu_seconds_total",
        "process_start_time_seconds",
    ):
        assert name in families, name
    values = samples(text)
    store = sim.cluster.stores[1]
    assert values[("tikv_store_size_bytes", (("type", "capacity"),))] == store.capacity
    assert values[("tikv_store_size_bytes", (("type", "available"),))] == store.available_bytes(
        sim.cluster.now
    )
    assert values[("tikv_store_size_bytes", (("type", "used"),))] == store.used_bytes()
    assert values[("tikv_raftstore_region_count", (("type", "leader"),))] == store.leader_count
    assert values[("tikv_raftstore_region_count", (("type", "region"),))] == 1000
    assert ("instance", "x") not in [label for key in values for label in key[1]]
    # TiKV's own text form: le="0.00001" (no exponent), integral counts without ".0"
    assert f'{WRITE}_bucket{{type="write",le="0.00001"}} ' in text
    assert 'le="21474.83648"' in text
    assert "e-05" not in text
    write = buckets(text, WRITE, {"type": "write"})
    assert len(write) == 33  # 32 exponential buckets + Inf
    ordered = [write[b] for b in sorted(write)]
    assert ordered == sorted(ordered)


async def test_histograms_grow_and_p99_from_deltas_shows_the_slow_store(sim: SimServer) -> None:
    sim.faults.slow_store(2, 250)
    async with httpx.AsyncClient() as client:
        before = {sid: await scrape(client, a) for sid, a in sim.status_addresses.items()}
        sim.cluster.advance(60)
        after = {sid: await scrape(client, a) for sid, a in sim.status_addresses.items()}
    p99 = {
        sid: quantile_from_delta(before[sid], after[sid], WRITE, {"type": "write"}, 0.99)
        for sid in before
    }
    assert 0.16 < p99[2] < 0.33
    assert 0.01 < p99[1] < 0.03 and 0.01 < p99[3] < 0.03
    p50 = quantile_from_delta(before[2], after[2], WRITE, {"type": "write"}, 0.5)
    assert p50 < p99[2]


async def test_counts_only_grow_with_time_and_reset_on_restart(sim: SimServer) -> None:
    key = ("tikv_storage_engine_async_request_total", (("status", "all"), ("type", "write")))
    address = sim.status_addresses[1]
    async with httpx.AsyncClient() as client:
        first = samples(await scrape(client, address))
        sim.cluster.advance(30)
        second = samples(await scrape(client, address))
        assert second[key] > first[key]
        started = second[("process_start_time_seconds", ())]
    sim.faults.stop_store(1)
    sim.cluster.advance(10)
    sim.faults.start_store(1)
    sim.cluster.advance(5)
    async with httpx.AsyncClient() as client:  # the old keep-alive connection died with the store
        third = samples(await scrape(client, address))
    assert third[key] < second[key]
    assert third[("process_start_time_seconds", ())] > started


async def test_pd_metrics(sim: SimServer) -> None:
    sim.faults.stop_store(3)
    sim.cluster.advance(65)
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"{sim.pd_url}/metrics")).text
    values = samples(text)
    status = "pd_cluster_status"
    assert (
        values[(status, (("engine", "tikv"), ("store", "3"), ("type", "store_disconnected_count")))]
        == 1
    )
    assert values[(status, (("engine", "tikv"), ("store", "1"), ("type", "store_up_count")))] == 1
    assert values[("pd_regions_status", (("type", "pending-peer-region-count"),))] == 1000
    assert values[("pd_regions_status", (("type", "down-peer-region-count"),))] == 0
    assert ("pd_regions_status", (("type", "empty-region-count"),)) in values
    leader_count = (
        "pd_scheduler_store_status",
        (("address", "127.0.0.1:20160"), ("store", "1"), ("type", "leader_count")),
    )
    assert values[leader_count] == sim.cluster.stores[1].leader_count
