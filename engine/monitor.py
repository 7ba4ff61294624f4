"""The monitor tick: observe the cluster, check the invariants, open, update and resolve
incidents, report them, and start their diagnosis.

`Monitor.tick()` is a plain coroutine. The scheduler (`tikvops.scheduling`) calls it every poll
interval; tests call it directly. One tick:

1. reads the time from the `Clock` port and takes one `Observation` from the
   `ObservationSource` (bounded requests: see `operator_tikv.observation`);
2. evaluates the invariants with the grace memory of earlier ticks, plus an entry for every
   open incident (`engine.incidents.remember_open_incidents`): after a restart the memory is
   rebuilt from the open incidents, and an incident's condition is re-checked until fresh data
   says it is clear;
3. applies the evaluation to the incidents (`engine.incidents.IncidentTracker`), one incident per
   cause: the violations are grouped first (`engine.correlation`: a store that stopped
   answering carries its regions' down, pending, missing and extra peers; two such stores are
   one incident, critical once regions lost quorum; PD unreachable freezes the rest), and the
   meaningful changes are reported as events written with them (opened, updated with what
   changed, resolved or merged; `engine.events`);
4. starts a diagnosis (`engine.diagnose_flow.DiagnoseFlow`) for every incident that opened or
   worsened (a higher severity, or its cause escalated: Disconnected → Down gets the Down
   playbook), in the background by default so a slow diagnoser never delays the next tick
   (`wait_idle()` waits for them). After a restart, open incidents that never got a diagnosis
   are diagnosed on the first tick.

PD unreachable is an incident of its own (`pd_unreachable`); while it lasts the invariants mark
everything else stale, so other incidents are neither resolved nor opened from missing data.
The same holds when PD answers something that cannot be true (`operator_tikv.trust`, applied
by `ClusterSource`) and when observing takes longer than `cycle_deadline`
(`engine.cycle_deadline`). Every cycle's observation is remembered in `knowledge`
(`engine.knowledge`) for answers to people while PD is slow.

Self-observation: `metrics` (`observe_cycle(seconds, ok)`, `set_open_incidents(counts)`) and
`health` (`pd_ok(at)`, `pd_failed(reason)`) are optional hooks; `tikvops.observability`'s
`BotMetrics` and `Health` implement them. A tick that fails is recorded as a failed cycle and
the error is raised to the caller (the scheduler logs and counts it).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from engine.cluster_scope import ClusterIncidents
from engine.cycle_deadline import observe_within
from engine.diagnose_flow import DiagnoseFlow
from engine.incidents import (
    ChangePolicy,
    IncidentEvent,
    IncidentTracker,
    remember_open_incidents,
)
from engine.knowledge import ClusterKnowledge
from engine.model import Incident
from engine.ports import Clock, IncidentRepo
from operator_tikv.invariants import Evaluation, InvariantMemory, Thresholds, evaluate
from operator_tikv.metrics import MetricsSource
from operator_tikv.observation import Observation, ObservationPD, RegionWatch, observe
from operator_tikv.region_watch import RegionCountsSource
from operator_tikv.trust import StoreLookup, TrustCheck, is_untrustworthy

logger = logging.getLogger(__name__)


class ObservationSource(Protocol):
    """Where observations come from: the live cluster, or a fake in tests."""

    async def observe(self, at: float) -> Observation: ...


class ClusterSource:
    """`ObservationSource` over PD and an optional metrics source (keep one instance: a scrape
    source remembers the previous scrape to compute the write P99)."""

    def __init__(
        self,
        pd: ObservationPD,
        metrics: MetricsSource | None,
        *,
        pd_url: str,
        regions: RegionWatch | None = None,
    ) -> None:
        self.pd = pd
        self.metrics = metrics
        self.pd_url = pd_url
        # region counts first, list summaries cached between ticks (operator_tikv.region_watch)
        if regions is None:
            fallback = metrics if isinstance(metrics, RegionCountsSource) else None
            regions = RegionWatch(lists="process", counts_fallback=fallback)
        self.regions = regions

        self.trust = TrustCheck(pd if isinstance(pd, StoreLookup) else None)

    async def observe(self, at: float) -> Observation:
        observation = await observe(
            self.pd, self.metrics, at=at, pd_url=self.pd_url, regions=self.regions
        )
        return await self.trust.vet(observation)


class CycleMetrics(Protocol):
    """Optional metrics hook (`tikvops.observability.BotMetrics` implements it)."""

    def observe_cycle(self, seconds: float, ok: bool) -> None: ...

    def set_open_incidents(self, counts_by_kind: Mapping[str, int]) -> None: ...


class PDHealth(Protocol):
    """Optional readiness hook (`tikvops.observability.Health` implements it)."""

    def pd_ok(self, at: float | datetime | None = None) -> None: ...

    def pd_failed(self, reason: str) -> None: ...


@runtime_checkable
class PDTrustHealth(Protocol):
    """Optional: readiness fails at once while PD's answers are not believable."""

    def pd_untrusted(self, reason: str) -> None: ...


@dataclass(frozen=True)
class TickReport:
    """What one tick saw and did."""

    at: datetime
    observation: Observation
    evaluation: Evaluation
    events: tuple[IncidentEvent, ...]
    open_incidents: tuple[Incident, ...]
    diagnoses_started: tuple[str, ...] = field(default=())

    @property
    def pd_reachable(self) -> bool:
        return self.observation.pd_reachable


class Monitor:
    """Runs ticks (see the module docstring). Keep one instance per process: it holds the
    invariants' grace memory. `close()` it on shutdown to stop background diagnoses."""

    def __init__(
        self,
        *,
        source: ObservationSource,
        incidents: IncidentRepo,
        clock: Clock,
        thresholds: Thresholds | None = None,
        resolve_after: float = 60.0,
        change_policy: ChangePolicy | None = None,
        diagnose: DiagnoseFlow | None = None,
        background_diagnosis: bool = True,
        metrics: CycleMetrics | None = None,
        health: PDHealth | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        cycle_deadline: float | None = None,
        knowledge: ClusterKnowledge | None = None,
        cluster: str | None = None,
    ) -> None:
        #: The cluster this monitor watches (None: the only one, records in `default`); its
        #: incidents are that cluster's (`engine.cluster_scope`).
        self.cluster = cluster
        if cluster is not None:
            incidents = ClusterIncidents(incidents, cluster)
        self.source = source
        self.clock = clock
        self.thresholds = thresholds or Thresholds()
        self.tracker = IncidentTracker(incidents, resolve_after=resolve_after, policy=change_policy)
        self.diagnose = diagnose
        self.background_diagnosis = background_diagnosis
        self.metrics = metrics
        self.health = health
        self._monotonic = monotonic
        #: Seconds observing the cluster may take in one cycle (None: unbounded).
        self.cycle_deadline = cycle_deadline
        #: What the last cycles saw, for answers to people while PD is slow (given by the
        #: composition root, which hands the same object to the engine's reads).
        self.knowledge = knowledge if knowledge is not None else ClusterKnowledge(clock)
        self._memory = InvariantMemory()
        self._first_tick = True
        self._diagnosing: dict[str, asyncio.Task[Any]] = {}
        self._closed = False
        self.ticks = 0

    @property
    def memory(self) -> InvariantMemory:
        """The invariants' memory after the last tick."""
        return self._memory

    async def tick(self) -> TickReport:
        """One cycle. Raises what it could not handle (storage down, a bug) after recording the
        failed cycle; PD and metrics failures are not errors, they are observations."""
        started = self._monotonic()
        try:
            report = await self._tick()
        except BaseException:
            self._record_cycle(started, ok=False)
            raise
        self._record_cycle(started, ok=True)
        return report

    async def _tick(self) -> TickReport:
        now = self.clock.now()
        observation = await observe_within(self.source, now.timestamp(), self.cycle_deadline)
        self.knowledge.record(observation, now)
        self._record_pd(observation, now)
        open_before = await self.tracker.open_incidents()
        memory = remember_open_incidents(self._memory, open_before)
        evaluation = evaluate(observation, self.thresholds, memory)
        events = await self.tracker.reconcile(
            evaluation,
            now=now,
            open_incidents=open_before,
            addresses={s.id: s.address for s in observation.stores if s.address},
            status_addresses={
                s.id: s.status_address for s in observation.stores if s.status_address
            },
        )
        self._memory = evaluation.memory
        self.ticks += 1

        open_after = _open_after(open_before, events)
        self._record_open(open_after)
        to_diagnose = [e.incident for e in events if e.worsened and e.incident.is_open]
        if self._first_tick and self.diagnose is not None:
            fresh = {i.id for i in to_diagnose}
            for incident in open_before:
                if incident.id not in fresh and await self.diagnose.needs_diagnosis(incident):
                    current = next((i for i in open_after if i.id == incident.id), None)
                    if current is not None:
                        to_diagnose.append(current)
        self._first_tick = False
        started = await self._start_diagnoses(to_diagnose, observation)
        return TickReport(
            at=now,
            observation=observation,
            evaluation=evaluation,
            events=tuple(events),
            open_incidents=tuple(open_after),
            diagnoses_started=tuple(started),
        )

    # ------------------------------------------------------------------ reporting

    def _record_cycle(self, started: float, *, ok: bool) -> None:
        if self.metrics is None:
            return
        try:
            self.metrics.observe_cycle(max(self._monotonic() - started, 0.0), ok)
        except Exception:
            logger.exception("recording the monitor cycle failed")

    def _record_pd(self, observation: Observation, now: datetime) -> None:
        if self.health is None:
            return
        try:
            if observation.pd_reachable:
                self.health.pd_ok(now)
            elif is_untrustworthy(observation) and isinstance(self.health, PDTrustHealth):
                self.health.pd_untrusted(observation.pd_error or "PD answer not trustworthy")
            else:
                self.health.pd_failed(observation.pd_error or "PD unreachable")
        except Exception:
            logger.exception("recording PD health failed")

    def _record_open(self, open_incidents: list[Incident]) -> None:
        if self.metrics is None:
            return
        try:
            self.metrics.set_open_incidents(Counter(i.kind for i in open_incidents))
        except Exception:
            logger.exception("recording open incidents failed")

    # ------------------------------------------------------------------ diagnosis

    async def _start_diagnoses(
        self, incidents: list[Incident], observation: Observation
    ) -> list[str]:
        flow = self.diagnose
        if flow is None or self._closed:
            return []
        started: list[str] = []
        for incident in incidents:
            if incident.id in self._diagnosing:
                continue  # one diagnosis at a time per incident
            started.append(incident.id)
            if not self.background_diagnosis:
                await self._diagnose_quietly(flow, incident, observation)
                continue
            task = asyncio.get_running_loop().create_task(
                self._diagnose_quietly(flow, incident, observation),
                name=f"diagnose {incident.id}",
            )
            self._diagnosing[incident.id] = task
            task.add_done_callback(self._forget(incident.id))
        return started

    def _forget(self, incident_id: str) -> Callable[[asyncio.Task[Any]], None]:
        def done(task: asyncio.Task[Any]) -> None:
            if self._diagnosing.get(incident_id) is task:
                del self._diagnosing[incident_id]

        return done

    @staticmethod
    async def _diagnose_quietly(
        flow: DiagnoseFlow, incident: Incident, observation: Observation
    ) -> None:
        try:
            await flow.run(incident, observation)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("diagnosis of incident %s failed", incident.id)

    async def wait_idle(self) -> None:
        """Wait until every background diagnosis has finished."""
        while self._diagnosing:
            await asyncio.gather(*list(self._diagnosing.values()), return_exceptions=True)

    async def close(self) -> None:
        """Cancel background diagnoses (an incident without a diagnosis is diagnosed again on
        the next start)."""
        self._closed = True
        tasks = list(self._diagnosing.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _open_after(before: list[Incident], events: list[IncidentEvent]) -> list[Incident]:
    current = {i.id: i for i in before}
    for event in events:
        if event.incident.is_open:
            current[event.incident.id] = event.incident
        else:
            current.pop(event.incident.id, None)
    return list(current.values())


__all__ = [
    "ClusterSource",
    "CycleMetrics",
    "Monitor",
    "ObservationSource",
    "PDHealth",
    "PDTrustHealth",
    "TickReport",
]
