"""Test doubles for the monitor: a scriptable in-process cluster that answers observations, a
recording notifier, a scripted diagnoser, a recording proposer, and a monitor builder.

`FakeCluster` holds per-store state (PD state name, write P99, disk ratio, whether its metrics
are present) plus PD reachability and region problems; `observe(at)` builds the Observation
exactly the way `operator_tikv.observation.observe` would for that state, without any network.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from engine.clock import FakeClock
from engine.diagnose_flow import DiagnoseFlow
from engine.incidents import ChangePolicy
from engine.model import (
    AuditEvent,
    Diagnosis,
    DiagnosisSource,
    Execution,
    Identity,
    Incident,
    NotProposed,
    Proposal,
    ProposalOrigin,
    ProposedAction,
    RiskLevel,
)
from engine.monitor import Monitor
from engine.relay import EventRelay, NotifierSink
from engine.results import ProposalCreated, RefusalKind, Refused
from engine.transitions import propose
from operator_tikv.invariants import Thresholds
from operator_tikv.metrics import MetricsReading, StoreMetrics
from operator_tikv.models.region import Region
from operator_tikv.models.store import StoreInfo
from operator_tikv.observation import Observation, RegionCheck, RegionProblem
from storage import Repositories

PD_URL = "http://pd.test:2379"


@dataclass
class FakeStore:
    id: int
    state: str = "Up"
    p99_ms: float | None = 20.0
    disk: float | None = 0.40
    metrics: bool = True


@dataclass
class FakeCluster:
    """An in-process cluster for `Monitor(source=...)`. Change its fields between ticks."""

    stores: dict[int, FakeStore] = field(
        default_factory=lambda: {i: FakeStore(i) for i in (1, 2, 3)}
    )
    pd_down: bool = False
    metrics_down: bool = False
    down_peer_regions: list[int] = field(default_factory=list)
    observations: int = 0

    def store(self, store_id: int) -> FakeStore:
        return self.stores[store_id]

    async def observe(self, at: float) -> Observation:
        self.observations += 1
        if self.pd_down:
            return Observation(
                at=at,
                pd_url=PD_URL,
                pd_error=f"cannot reach PD at {PD_URL}: connection refused",
                metrics_source="scrape",
            )
        infos = tuple(self._info(s, at) for s in self.stores.values())
        checks = {p: RegionCheck.from_regions(p, []) for p in RegionProblem}
        if self.down_peer_regions:
            checks[RegionProblem.DOWN_PEER] = RegionCheck.from_regions(
                RegionProblem.DOWN_PEER, [_region(r) for r in self.down_peer_regions]
            )
        reading = None
        error = None
        if self.metrics_down:
            error = "prometheus: connection refused"
        else:
            reading = MetricsReading(
                source="scrape",
                at=at,
                stores={
                    s.id: StoreMetrics(
                        store_id=s.id,
                        up=True,
                        write_p99_seconds=None if s.p99_ms is None else s.p99_ms / 1000,
                        disk_used_ratio=s.disk,
                        leader_count=10,
                        region_count=30,
                    )
                    for s in self.stores.values()
                    if s.metrics
                },
            )
        return Observation(
            at=at,
            pd_url=PD_URL,
            stores=infos,
            region_checks=checks,
            metrics=reading,
            metrics_source="scrape",
            metrics_error=error,
        )

    @staticmethod
    def _info(store: FakeStore, at: float) -> StoreInfo:
        port = 20160 + store.id
        age = 5.0 if store.state == "Up" else 120.0
        return StoreInfo.model_validate(
            {
                "store": {
                    "id": store.id,
                    "address": f"127.0.0.1:{port}",
                    "status_address": f"127.0.0.1:{port + 20}",
                    "last_heartbeat": int((at - age) * 1e9),
                    "node_state": 1,
                    "state_name": store.state,
                },
                "status": {
                    # no PD capacity: disk comes only from metrics in these tests
                    "leader_count": 10,
                    "region_count": 30,
                },
            }
        )


def _region(region_id: int) -> Region:
    return Region.model_validate(
        {
            "id": region_id,
            "start_key": "",
            "end_key": "",
            "epoch": {"conf_ver": 5, "version": 3},
            "peers": [
                {"id": region_id * 10 + i, "store_id": i, "role_name": "Voter"} for i in (1, 2, 3)
            ],
            "leader": {"id": region_id * 10 + 1, "store_id": 1, "role_name": "Voter"},
            "down_peers": [
                {
                    "peer": {"id": region_id * 10 + 3, "store_id": 3, "role_name": "Voter"},
                    "down_seconds": 700,
                }
            ],
            "pending_peers": [],
        }
    )


class RecordingNotifier:
    """A Notifier that records every call as `(event, id)` plus the objects themselves."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.incidents: list[tuple[str, Incident]] = []
        self.diagnoses: list[Diagnosis] = []
        self.proposals: list[Proposal] = []
        self.not_proposed: list[NotProposed] = []

    def of(self, event: str) -> list[Incident]:
        return [i for e, i in self.incidents if e == event]

    async def incident_opened(self, incident: Incident) -> None:
        self.events.append(("opened", incident.id))
        self.incidents.append(("opened", incident))

    async def incident_updated(self, incident: Incident) -> None:
        self.events.append(("updated", incident.id))
        self.incidents.append(("updated", incident))

    async def incident_resolved(self, incident: Incident) -> None:
        self.events.append(("resolved", incident.id))
        self.incidents.append(("resolved", incident))

    async def diagnosis_ready(self, incident: Incident, diagnosis: Diagnosis) -> None:
        self.events.append(("diagnosis", incident.id))
        self.diagnoses.append(diagnosis)

    async def actions_not_proposed(
        self, incident: Incident, diagnosis: Diagnosis, not_proposed: Sequence[NotProposed]
    ) -> None:
        self.events.append(("not_proposed", incident.id))
        self.not_proposed.extend(not_proposed)

    async def proposal_made(self, proposal: Proposal) -> None:
        self.events.append(("proposal", proposal.id))
        self.proposals.append(proposal)

    async def proposal_changed(self, proposal: Proposal, event: AuditEvent) -> None:
        self.events.append((f"proposal.{event.action}", proposal.id))

    async def execution_progress(self, proposal: Proposal, execution: Execution) -> None:
        self.events.append(("progress", proposal.id))


class ScriptedDiagnoser:
    """A Diagnoser that proposes `actions` (a playbook diagnosis) and records its calls."""

    def __init__(self, actions: list[ProposedAction] | None = None, fail: bool = False) -> None:
        self.actions = actions or []
        self.fail = fail
        self.calls: list[str] = []

    async def diagnose(self, incident: Incident, observation: Observation) -> Diagnosis:
        self.calls.append(incident.id)
        if self.fail:
            raise RuntimeError("model exploded")
        return Diagnosis(
            incident_id=incident.id,
            source=DiagnosisSource.PLAYBOOK,
            model=incident.kind,
            summary=f"{incident.title}: scripted",
            confidence=0.6,
            actions=list(self.actions),
            created_at=incident.updated_at,
        )


class RecordingProposer:
    """Stands in for `Engine.propose`: stores a proposal via the real repository (so the
    duplicate check reads real records, and its `proposal.made` event is told like the engine's),
    and records each call.
    Actions named in `refuse` are refused like a failed preflight."""

    def __init__(self, repos: Repositories, notifier: RecordingNotifier, clock: FakeClock) -> None:
        self.repos = repos
        self.notifier = notifier
        self.clock = clock
        self.calls: list[tuple[str, dict[str, Any], str | None]] = []
        self.refuse: set[str] = set()

    async def propose(
        self,
        action: str,
        params: Any,
        *,
        actor: Identity,
        origin: ProposalOrigin,
        incident_id: str | None = None,
        reason: str = "",
    ) -> ProposalCreated | Refused:
        self.calls.append((action, dict(params), incident_id))
        if action in self.refuse:
            return Refused(reason=f"{action}: preflight failed", kind=RefusalKind.PREFLIGHT)
        result = propose(
            proposal_id=await self.repos.proposals.next_id(),
            action=action,
            params=dict(params),
            risk=RiskLevel.LOW,
            origin=origin,
            proposed_by=actor,
            now=self.clock.now(),
            ttl=timedelta(minutes=30),
            incident_id=incident_id,
            reason=reason,
        )
        stored = await self.repos.proposals.create(result)  # its event tells the notifier
        # the real engine attaches the dry run; the flow only reads `proposal`
        return ProposalCreated.model_construct(proposal=stored)


@dataclass
class Rig:
    """Everything a monitor test touches."""

    cluster: FakeCluster
    clock: FakeClock
    notifier: RecordingNotifier
    monitor: Monitor
    repos: Repositories
    diagnoser: ScriptedDiagnoser | None = None
    proposer: RecordingProposer | None = None
    relay: EventRelay | None = None

    async def tick(self, advance: float = 15.0) -> Any:
        """Advance the clock, run one tick, and let the notifier hear its events (the relay
        starts at the events written before the rig's first tick)."""
        if self.relay is None:
            start = await self.repos.events.head()
            sink = NotifierSink(self.notifier, self.repos.events, start_after=start)
            self.relay = EventRelay(self.repos.events, sink, name="test")
        self.clock.advance(advance)
        try:
            return await self.monitor.tick()
        finally:  # events written before a failure are told all the same
            await self.relay.drain()


def build_monitor(
    repos: Repositories,
    *,
    cluster: FakeCluster | None = None,
    clock: FakeClock | None = None,
    notifier: RecordingNotifier | None = None,
    thresholds: Thresholds | None = None,
    resolve_after: float = 60.0,
    diagnoser: ScriptedDiagnoser | None = None,
    metrics: Any = None,
    health: Any = None,
    policy: ChangePolicy | None = None,
) -> Rig:
    cluster = cluster or FakeCluster()
    clock = clock or FakeClock()
    notifier = notifier or RecordingNotifier()
    proposer = None
    flow = None
    if diagnoser is not None:
        proposer = RecordingProposer(repos, notifier, clock)
        flow = DiagnoseFlow(
            diagnoser=diagnoser,
            diagnoses=repos.diagnoses,
            proposals=repos.proposals,
            proposer=proposer,
            events=repos.events,
            clock=clock,
        )
    monitor = Monitor(
        source=cluster,
        incidents=repos.incidents,
        clock=clock,
        thresholds=thresholds or Thresholds(write_p99_ms=100.0, write_p99_grace=30.0),
        resolve_after=resolve_after,
        change_policy=policy,
        diagnose=flow,
        background_diagnosis=False,
        metrics=metrics,
        health=health,
    )
    return Rig(cluster, clock, notifier, monitor, repos, diagnoser, proposer)
