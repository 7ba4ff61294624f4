"""After an incident opens or worsens: the diagnosis is stored and reported, its actions become
proposals through the engine's `propose` (never executed), and the same action is not proposed
twice for one incident."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from engine.diagnose_flow import (
    DiagnoseFlow,
    DiagnoseOutcome,
    canonical_params,
    proposer_identity,
)
from engine.model import (
    SYSTEM,
    Diagnosis,
    DiagnosisSource,
    IdentityKind,
    Incident,
    ProposalOrigin,
    ProposalState,
    ProposedAction,
)
from engine.monitor import Monitor
from engine.relay import EventRelay, NotifierSink
from engine.transitions import ProposalEvent, transition
from operator_tikv.invariants import Thresholds
from operator_tikv.observation import Observation
from storage import Repositories
from tests.engine.monitor_fakes import (
    FakeCluster,
    RecordingNotifier,
    RecordingProposer,
    ScriptedDiagnoser,
    build_monitor,
)
from tests.engine.test_service_support import engine_on
from tests.plugins.storage import make_incident

MOVE = ProposedAction(
    action="transfer-leader",
    params={"region_id": 12, "to_store_id": 1},
    reason="move the leader off the slow store",
)


class TellingFlow(DiagnoseFlow):
    """The flow, then a relay that tells `notifier` the events it wrote (the relay starts at
    the events written before the first run)."""

    def __init__(self, notifier: RecordingNotifier, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._notifier = notifier
        self._relay: EventRelay | None = None

    async def run(self, incident: Incident, observation: Any) -> DiagnoseOutcome:
        if self._relay is None:
            start = await self.events.head()
            sink = NotifierSink(self._notifier, self.events, start_after=start)
            self._relay = EventRelay(self.events, sink, name="test")
        try:
            return await super().run(incident, observation)
        finally:
            await self._relay.drain()


def flow_for(
    repos: Repositories, diagnoser: Any, notifier: RecordingNotifier | None = None
) -> tuple[DiagnoseFlow, RecordingProposer, RecordingNotifier]:
    from engine.clock import FakeClock

    notifier = notifier or RecordingNotifier()
    clock = FakeClock()
    proposer = RecordingProposer(repos, notifier, clock)
    flow = TellingFlow(
        notifier,
        diagnoser=diagnoser,
        diagnoses=repos.diagnoses,
        proposals=repos.proposals,
        proposer=proposer,
        events=repos.events,
        clock=clock,
    )
    return flow, proposer, notifier


async def stored_incident(repos: Repositories, **changes: Any) -> Incident:
    fields: dict[str, Any] = {"kind": "write_latency", "subject": "store:2"}
    fields.update(changes)
    return await repos.incidents.create(make_incident(**fields))


async def observation() -> Observation:
    return await FakeCluster().observe(1_700_000_000.0)


def test_params_compare_after_the_registry_normalises_them() -> None:
    a = canonical_params("transfer-leader", {"region_id": 12, "to_store_id": 1})
    b = canonical_params("transfer-leader", {"to_store_id": 1, "region_id": 12})
    assert a == b
    # a default filled in by the registry is the same call as the default left out
    assert canonical_params("split", {"region_id": 7}) == canonical_params(
        "split", {"region_id": 7, "policy": "approximate"}
    )
    assert canonical_params("split", {"region_id": 7}) != canonical_params(
        "split", {"region_id": 7, "policy": "scan"}
    )
    assert canonical_params("no-such-action", {"x": 1}) == '{"x": 1}'


def test_who_proposes() -> None:
    incident = make_incident(kind="write_latency")
    claude = Diagnosis(
        incident_id="I-1",
        source=DiagnosisSource.CLAUDE,
        model="claude-x",
        summary="s",
        created_at=incident.opened_at,
    )
    actor, origin = proposer_identity(claude, incident)
    assert actor.kind is IdentityKind.CLAUDE and actor.id == "claude-x"
    assert origin is ProposalOrigin.CLAUDE
    playbook = claude.model_copy(update={"source": DiagnosisSource.PLAYBOOK, "model": None})
    actor, origin = proposer_identity(playbook, incident)
    assert actor.key == "playbook:write_latency" and origin is ProposalOrigin.PLAYBOOK


async def test_diagnosis_is_stored_reported_and_proposed(repos: Repositories) -> None:
    incident = await stored_incident(repos)
    flow, proposer, notifier = flow_for(repos, ScriptedDiagnoser([MOVE]))
    outcome = await flow.run(incident, await observation())

    assert outcome.diagnosis.id is not None
    stored = await repos.diagnoses.latest_for(incident.id)
    assert stored == outcome.diagnosis
    assert notifier.events[0] == ("diagnosis", incident.id)
    [proposal] = outcome.proposals
    assert notifier.events[1] == ("proposal", proposal.id)
    assert proposer.calls == [("transfer-leader", MOVE.params, incident.id)]
    saved = await repos.proposals.get(proposal.id)
    assert saved is not None and saved.state is ProposalState.PROPOSED
    assert saved.incident_id == incident.id and saved.origin is ProposalOrigin.PLAYBOOK
    assert saved.reason == MOVE.reason
    assert await repos.executions.get(proposal.id) is None  # validated, never executed


async def test_the_same_action_is_not_proposed_twice(repos: Repositories) -> None:
    incident = await stored_incident(repos)
    other = MOVE.model_copy(update={"params": {"region_id": 13, "to_store_id": 1}})
    flow, proposer, _ = flow_for(repos, ScriptedDiagnoser([MOVE, MOVE]))
    first = await flow.run(incident, await observation())
    assert len(first.proposals) == 1
    assert [s.duplicate_of for s in first.skipped] == [first.proposals[0].id]

    flow.diagnoser = ScriptedDiagnoser(
        [MOVE.model_copy(update={"params": {"to_store_id": 1, "region_id": 12}}), other]
    )
    second = await flow.run(incident, await observation())
    assert [p.params for p in second.proposals] == [{"region_id": 13, "to_store_id": 1}]
    assert len(proposer.calls) == 2
    assert len(await repos.proposals.list(incident_id=incident.id)) == 2


async def test_an_expired_proposal_may_be_proposed_again(repos: Repositories) -> None:
    incident = await stored_incident(repos)
    flow, _, _ = flow_for(repos, ScriptedDiagnoser([MOVE]))
    [first] = (await flow.run(incident, await observation())).proposals
    expired = transition(first, ProposalEvent.EXPIRE, actor=SYSTEM, now=first.expires_at)
    await repos.proposals.apply(expired)

    [again] = (await flow.run(incident, await observation())).proposals
    assert again.id != first.id and again.action == first.action


async def test_a_rejected_proposal_is_not_proposed_again(repos: Repositories) -> None:
    from tests.plugins.storage import alice

    incident = await stored_incident(repos)
    flow, _, _ = flow_for(repos, ScriptedDiagnoser([MOVE]))
    [first] = (await flow.run(incident, await observation())).proposals
    rejected = transition(first, ProposalEvent.REJECT, actor=alice(), now=first.created_at)
    await repos.proposals.apply(rejected)
    outcome = await flow.run(incident, await observation())
    assert outcome.proposals == () and outcome.skipped[0].duplicate_of == first.id


async def test_the_same_action_for_another_incident_is_proposed(repos: Repositories) -> None:
    one = await stored_incident(repos)
    two = await stored_incident(repos, id="I-2", kind="hot_write_skew")
    flow, proposer, _ = flow_for(repos, ScriptedDiagnoser([MOVE]))
    await flow.run(one, await observation())
    await flow.run(two, await observation())
    assert [c[2] for c in proposer.calls] == [one.id, two.id]


async def test_a_refused_action_is_reported_to_the_notifier_with_the_reason(
    repos: Repositories,
) -> None:
    incident = await stored_incident(repos)
    flow, proposer, notifier = flow_for(repos, ScriptedDiagnoser([MOVE]))
    proposer.refuse.add("transfer-leader")
    outcome = await flow.run(incident, await observation())
    assert outcome.proposals == ()
    assert outcome.skipped[0].reason == "transfer-leader: preflight failed"
    # the surfaces hear it, after the diagnosis that announced the action
    assert notifier.events == [("diagnosis", incident.id), ("not_proposed", incident.id)]
    [reported] = notifier.not_proposed
    assert reported.suggested == MOVE
    assert reported.reason == "transfer-leader: preflight failed"
    assert reported.duplicate_of is None


async def test_only_the_refused_action_is_reported_and_after_the_proposals(
    repos: Repositories,
) -> None:
    incident = await stored_incident(repos)
    split = ProposedAction(action="split", params={"region_id": 7}, reason="hot region")
    flow, proposer, notifier = flow_for(repos, ScriptedDiagnoser([split, MOVE]))
    proposer.refuse.add("transfer-leader")
    outcome = await flow.run(incident, await observation())
    [proposal] = outcome.proposals
    assert [e for e, _ in notifier.events] == ["diagnosis", "proposal", "not_proposed"]
    assert [n.suggested.action for n in notifier.not_proposed] == ["transfer-leader"]
    assert proposal.action == "split"


async def test_a_repeated_suggestion_is_reported_with_the_earlier_proposal(
    repos: Repositories,
) -> None:
    incident = await stored_incident(repos)
    flow, _, notifier = flow_for(repos, ScriptedDiagnoser([MOVE]))
    [first] = (await flow.run(incident, await observation())).proposals
    assert notifier.not_proposed == []  # nothing left out the first time
    await flow.run(incident, await observation())
    [repeated] = notifier.not_proposed
    assert repeated.duplicate_of == first.id
    assert repeated.reason == f"already proposed for {incident.id} as {first.id}"


async def test_a_notifier_failing_on_the_refusals_does_not_stop_the_flow(
    repos: Repositories,
) -> None:
    class Failing(RecordingNotifier):
        async def actions_not_proposed(self, *args: Any) -> None:
            raise RuntimeError("chat is down")

    incident = await stored_incident(repos)
    flow, proposer, _ = flow_for(repos, ScriptedDiagnoser([MOVE]), Failing())
    proposer.refuse.add("transfer-leader")
    outcome = await flow.run(incident, await observation())
    assert [s.reason for s in outcome.skipped] == ["transfer-leader: preflight failed"]


async def test_the_engine_refusal_sentence_reaches_the_notifier(sim: Any, db_path: Path) -> None:
    # Store 2 stopped heartbeating: the real Engine refuses draining it in its preflight.
    sim.faults.stop_store(2)
    sim.cluster.advance(25)
    async with engine_on(sim, db_path) as h:
        incident = await h.repos.incidents.create(
            make_incident(kind="slow_store", subject="store:2")
        )
        drain = ProposedAction(action="drain", params={"store_id": 2}, reason="store 2 is slow")
        flow = DiagnoseFlow(
            diagnoser=ScriptedDiagnoser([drain]),
            diagnoses=h.repos.diagnoses,
            proposals=h.repos.proposals,
            proposer=h.engine,
            events=h.repos.events,
            clock=h.clock,
        )
        outcome = await flow.run(incident, await observation())
        await h.engine.wait_idle()  # the engine's relay tells its notifier the events
        assert outcome.proposals == ()
        assert h.notifier.names() == [
            "incident_opened",
            "diagnosis_ready",
            "actions_not_proposed",
        ]
        [(_, reported)] = [c for c in h.notifier.calls if c[0] == "actions_not_proposed"]
        [item] = reported
        assert item.suggested == drain
        assert item.reason.startswith("Refused drain: store 2 is Disconnected (last heartbeat ")
        assert item.reason.endswith("Wait until it is Up again. Nothing was sent to PD.")
        assert h.writes() == []


async def test_a_failing_diagnoser_leaves_a_diagnosis_with_the_error(repos: Repositories) -> None:
    incident = await stored_incident(repos)
    flow, proposer, notifier = flow_for(repos, ScriptedDiagnoser([MOVE], fail=True))
    outcome = await flow.run(incident, await observation())
    assert outcome.diagnosis.error == "diagnosis unavailable: model exploded"
    assert await repos.diagnoses.latest_for(incident.id) == outcome.diagnosis
    assert notifier.diagnoses == [outcome.diagnosis]
    assert proposer.calls == []


async def test_concurrent_runs_for_one_incident_propose_once(repos: Repositories) -> None:
    class Slow(ScriptedDiagnoser):
        async def diagnose(self, incident: Incident, observation: Observation) -> Diagnosis:
            await asyncio.sleep(0)
            return await super().diagnose(incident, observation)

    incident = await stored_incident(repos)
    flow, proposer, _ = flow_for(repos, Slow([MOVE]))
    obs = await observation()
    await asyncio.gather(flow.run(incident, obs), flow.run(incident, obs))
    assert len(proposer.calls) == 1
    assert len(await repos.diagnoses.list_for(incident.id)) == 2


# --------------------------------------------------------------------------- from the monitor


async def test_the_monitor_diagnoses_on_open_and_on_worsening(repos: Repositories) -> None:
    diagnoser = ScriptedDiagnoser([MOVE])
    rig = build_monitor(repos, diagnoser=diagnoser, thresholds=Thresholds(disk_used_ratio=0.7))
    rig.cluster.store(2).disk = 0.75
    await rig.tick()
    [incident] = await repos.incidents.list_open()
    assert diagnoser.calls == [incident.id]
    for ratio in (0.76, 0.85, 0.75, 0.86):  # worse once; back and worse again is not new
        rig.cluster.store(2).disk = ratio
        await rig.tick()
    assert diagnoser.calls == [incident.id, incident.id]
    assert rig.proposer is not None and len(rig.proposer.calls) == 1
    kinds = [e for e, _ in rig.notifier.events]
    assert kinds[:3] == ["opened", "diagnosis", "proposal"]
    assert kinds.count("proposal") == 1


async def test_after_a_restart_undiagnosed_incidents_are_diagnosed_once(
    repos: Repositories,
) -> None:
    cluster = FakeCluster()
    cluster.store(3).state = "Down"
    without = build_monitor(repos, cluster=cluster)  # the bot died before diagnosing
    await without.tick()
    [incident] = await repos.incidents.list_open()
    assert await repos.diagnoses.latest_for(incident.id) is None

    diagnoser = ScriptedDiagnoser()
    restarted = build_monitor(repos, cluster=cluster, diagnoser=diagnoser)
    await restarted.tick()
    await restarted.tick()
    assert diagnoser.calls == [incident.id]
    assert await repos.diagnoses.latest_for(incident.id) is not None


async def test_background_diagnosis_does_not_hold_up_the_tick(repos: Repositories) -> None:
    gate = asyncio.Event()

    class Waiting(ScriptedDiagnoser):
        async def diagnose(self, incident: Incident, observation: Observation) -> Diagnosis:
            await gate.wait()
            return await super().diagnose(incident, observation)

    rig = build_monitor(repos, diagnoser=Waiting())
    rig.monitor.background_diagnosis = True
    rig.cluster.store(3).state = "Down"
    report = await rig.tick()
    [incident_id] = report.diagnoses_started
    assert await repos.diagnoses.latest_for(incident_id) is None
    second = await rig.tick()  # still running: not started twice
    assert second.diagnoses_started == ()
    gate.set()
    await rig.monitor.wait_idle()
    assert await repos.diagnoses.latest_for(incident_id) is not None


async def test_close_cancels_background_diagnoses(repos: Repositories) -> None:
    class Never(ScriptedDiagnoser):
        async def diagnose(self, incident: Incident, observation: Observation) -> Diagnosis:
            await asyncio.Event().wait()
            raise AssertionError("unreachable")

    rig = build_monitor(repos, diagnoser=Never())
    rig.monitor.background_diagnosis = True
    rig.cluster.store(3).state = "Down"
    await rig.tick()
    await rig.monitor.close()
    await rig.monitor.wait_idle()
    assert isinstance(rig.monitor, Monitor)
    assert [e for e, _ in rig.notifier.events] == ["opened"]
