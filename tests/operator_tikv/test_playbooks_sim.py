"""The playbooks on every simulator scenario, over real HTTP: the expected kind of proposal (or
none) comes out, and each proposal passes its action's preflight against the live simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx

from operator_tikv.actions import PreflightContext, PreflightReport, get_action
from operator_tikv.invariants import Thresholds, Violation, evaluate
from operator_tikv.models.writes import PDWrite
from operator_tikv.observation import Observation, observe
from operator_tikv.pd import PDClient
from operator_tikv.playbooks import DiagnosisKind, PlaybookResult, Problem, diagnose
from operator_tikv.scrape import ScrapeSource
from sim.server import SimServer
from tests.plugins.sim import SimFactory


@dataclass
class Seen:
    observation: Observation
    violations: dict[str, Violation]  # by "kind subject"


@asynccontextmanager
async def pd_of(server: SimServer, retries: int = 2) -> AsyncIterator[PDClient]:
    async with httpx.AsyncClient(timeout=5.0) as http:
        yield PDClient(http, server.pd_url, retries=retries)


async def look(
    server: SimServer, pd: PDClient, thresholds: Thresholds | None = None, window: float = 15.0
) -> Seen:
    """Two observations `window` virtual seconds apart (the write P99 needs both)."""
    async with httpx.AsyncClient(timeout=5.0) as http:
        scrape = ScrapeSource(http, timeout=5.0)
        await observe(pd, scrape, at=server.cluster.now, pd_url=server.pd_url)
        server.cluster.advance(window)
        observation = await observe(pd, scrape, at=server.cluster.now, pd_url=server.pd_url)
    evaluation = evaluate(observation, thresholds or Thresholds(), ignore_grace=True)
    return Seen(observation, {f"{v.kind.value} {v.subject}": v for v in evaluation.violations})


async def preflight_all(result: PlaybookResult, pd: PDClient) -> list[PreflightReport]:
    reports = []
    for suggestion in result.actions:
        action = get_action(suggestion.action)
        reports.append(
            await action.preflight(action.validate(suggestion.params), pd, PreflightContext())
        )
    return reports


async def test_slow_store_is_drained_and_the_drain_passes_preflight(
    sim_factory: SimFactory,
) -> None:
    server = await sim_factory(stores=5)
    scenario = server.apply_scenario("slow-store")
    server.cluster.advance(30)
    async with pd_of(server) as pd:
        seen = await look(server, pd)
        violation = seen.violations[f"write_latency store:{scenario.store_id}"]
        result = await diagnose(Problem.from_violation(violation), seen.observation, pd)
        assert result.kind is DiagnosisKind.SLOW_STORE
        assert [(a.action, a.params) for a in result.actions] == [
            ("drain", {"store_id": scenario.store_id})
        ]
        [report] = await preflight_all(result, pd)
        assert report.ok, report.refusal()


async def test_slow_store_on_three_stores_proposes_a_drain_that_passes_preflight(
    sim: SimServer,
) -> None:
    scenario = sim.apply_scenario("slow-store")
    sim.cluster.advance(30)
    async with pd_of(sim) as pd:
        seen = await look(sim, pd)
        violation = seen.violations[f"write_latency store:{scenario.store_id}"]
        result = await diagnose(Problem.from_violation(violation), seen.observation, pd)
        assert result.kind is DiagnosisKind.SLOW_STORE
        assert [(a.action, a.params) for a in result.actions] == [
            ("drain", {"store_id": scenario.store_id})
        ]
        assert "(2 Up, undrained store(s)" in result.actions[0].reason
        # The playbook proposes exactly what the drain's own preflight lets run.
        [report] = await preflight_all(result, pd)
        assert report.ok, report.refusal()
        assert report.warnings == ()


async def test_hot_region_is_split_and_the_split_passes_preflight(
    sim_factory: SimFactory,
) -> None:
    server = await sim_factory(stores=5)
    scenario = server.apply_scenario("hot-region")
    server.cluster.advance(60)
    async with pd_of(server) as pd:
        seen = await look(server, pd, Thresholds(hot_write_min_regions=1))
        violation = seen.violations[f"hot_write_skew store:{scenario.store_id}"]
        result = await diagnose(Problem.from_violation(violation), seen.observation, pd)
        assert result.kind is DiagnosisKind.HOT_REGION
        assert [(a.action, a.params["region_id"]) for a in result.actions] == [
            ("split", scenario.region_id)
        ]
        [report] = await preflight_all(result, pd)
        assert report.ok, report.refusal()


async def test_several_hot_regions_move_a_leader_that_passes_preflight(
    sim_factory: SimFactory,
) -> None:
    server = await sim_factory(stores=5)
    led = [r for r in server.cluster.ordered_regions() if r.leader_store == 1][100:103]
    for r in led:
        server.faults.hot_region(r.id, "write")
    server.cluster.advance(60)
    async with pd_of(server) as pd:
        seen = await look(server, pd, Thresholds(hot_write_min_regions=2))
        result = await diagnose(
            Problem.from_violation(seen.violations["hot_write_skew store:1"]),
            seen.observation,
            pd,
        )
        [action] = result.actions
        assert action.action == "transfer-leader"
        assert action.params["region_id"] in {r.id for r in led}
        assert action.params["to_store_id"] != 1
        [report] = await preflight_all(result, pd)
        assert report.ok, report.refusal()


async def test_filling_disk_moves_a_peer_that_passes_preflight(sim_factory: SimFactory) -> None:
    server = await sim_factory(stores=5)
    scenario = server.apply_scenario("disk-filling")
    server.cluster.advance(30)
    async with pd_of(server) as pd:
        seen = await look(server, pd)
        violation = seen.violations[f"disk_usage store:{scenario.store_id}"]
        result = await diagnose(Problem.from_violation(violation), seen.observation, pd)
        assert result.kind is DiagnosisKind.DISK_FULL
        [action] = result.actions
        assert action.action == "transfer-peer"
        assert action.params["from_store_id"] == scenario.store_id
        [report] = await preflight_all(result, pd)
        assert report.ok, report.refusal()


async def test_filling_disk_in_three_stores_has_nowhere_to_move(sim: SimServer) -> None:
    scenario = sim.apply_scenario("disk-filling")
    sim.cluster.advance(30)
    async with pd_of(sim) as pd:
        seen = await look(sim, pd)
        violation = seen.violations[f"disk_usage store:{scenario.store_id}"]
        result = await diagnose(Problem.from_violation(violation), seen.observation, pd)
        assert result.kind is DiagnosisKind.DISK_FULL and result.actions == ()
        assert "already have a peer on every store with room" in result.summary


async def test_stopped_store_is_watched_then_explained_never_acted_on(
    sim_factory: SimFactory,
) -> None:
    server = await sim_factory(stores=5)
    scenario = server.apply_scenario("store-down")
    subject = f"store:{scenario.store_id}"
    async with pd_of(server) as pd:
        server.cluster.advance(30)
        seen = await look(server, pd)
        early = await diagnose(
            Problem.from_violation(seen.violations[f"store_disconnected {subject}"]),
            seen.observation,
            pd,
        )
        assert early.kind is DiagnosisKind.STORE_DISCONNECTED and early.actions == ()

        server.cluster.advance(1900)
        seen = await look(server, pd)
        results = [
            await diagnose(Problem.from_violation(v), seen.observation, pd)
            for v in seen.violations.values()
        ]
        kinds = {r.kind for r in results}
        assert DiagnosisKind.STORE_DOWN in kinds
        assert DiagnosisKind.UNHEALTHY_REGIONS in kinds
        assert all(r.actions == () for r in results)
        down = next(r for r in results if r.kind is DiagnosisKind.STORE_DOWN)
        assert "max-store-down-time (30 min)" in down.summary


async def test_flaky_pd_is_explained_and_never_acted_on(sim: SimServer) -> None:
    sim.apply_scenario("pd-flaky")
    async with pd_of(sim, retries=0) as flaky:
        # The scenario fails every second request: the first, the store list, fails.
        observation = await observe(flaky, None, at=sim.cluster.now, pd_url=sim.pd_url)
        evaluation = evaluate(observation, Thresholds(), ignore_grace=True)
        assert [v.kind.value for v in evaluation.violations] == ["pd_unreachable"]
        result = await diagnose(
            Problem.from_violation(evaluation.violations[0]), observation, flaky
        )
    assert result.kind is DiagnosisKind.PD_UNREACHABLE and result.actions == ()
    assert "redirect failed" in result.summary
    async with pd_of(sim, retries=2) as patient:
        seen = await look(sim, patient, window=0.0)
    assert "pd_unreachable cluster" not in seen.violations


async def test_flaky_pd_during_a_slow_store_never_proposes_on_partial_facts(
    sim_factory: SimFactory,
) -> None:
    server = await sim_factory(stores=5)
    scenario = server.apply_scenario("slow-store")
    server.cluster.advance(30)
    async with pd_of(server) as pd:
        seen = await look(server, pd)
    violation = seen.violations[f"write_latency store:{scenario.store_id}"]
    server.apply_scenario("pd-flaky")
    async with pd_of(server, retries=0) as flaky:
        result = await diagnose(Problem.from_violation(violation), seen.observation, flaky)
    assert result.actions == ()
    assert result.notes and "redirect failed" in result.notes[0]


async def test_filling_disk_never_picks_a_region_pd_is_already_operating_on(
    sim_factory: SimFactory,
) -> None:
    server = await sim_factory(stores=5)
    scenario = server.apply_scenario("disk-filling")
    server.cluster.advance(30)
    async with pd_of(server) as pd:
        seen = await look(server, pd)
        problem = Problem.from_violation(seen.violations[f"disk_usage store:{scenario.store_id}"])
        [first] = (await diagnose(problem, seen.observation, pd)).actions
        region_id = first.params["region_id"]
        assert isinstance(region_id, int)
        # Someone acts on that region: PD now runs an operator on it (a leader move, so its
        # peers look exactly as before). Moving a peer now would be refused by the preflight.
        region = await pd.get_region(region_id)
        other = next(s for s in region.voter_store_ids if s != region.leader_store_id)
        await pd.execute(PDWrite.transfer_leader(region_id, other))
        assert (await pd.get_operator(region_id)).is_running
        [stale] = await preflight_all(
            PlaybookResult.model_validate(
                {"playbook": "disk-full", "kind": "disk_full", "summary": "", "actions": [first]}
            ),
            pd,
        )
        assert [c.name for c in stale.failures] == ["no-running-operator"]
        again = await diagnose(problem, seen.observation, pd)
        [action] = again.actions
        assert action.params["region_id"] != region_id
        [report] = await preflight_all(again, pd)
        assert report.ok, report.refusal()
