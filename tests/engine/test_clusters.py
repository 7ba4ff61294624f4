"""Several clusters, one engine each on one database: commands and decisions reach the engine
(PD client and approval policy) of their cluster, ambiguity is refused naming the clusters, and
kill switches hold one cluster or all. Two simulators; each one's PD request log is checked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.commands import parse_command
from engine.model import ProposalState
from engine.policy import ApprovalPolicy
from engine.results import (
    ClustersView,
    Decided,
    KillSwitchOutcome,
    Outcome,
    ProposalCreated,
    RefusalKind,
    Refused,
)
from engine.service import Engine, prog_for
from operator_tikv.pd import open_pd_client
from sim.server import SimServer
from storage import Database, Repositories
from tests.engine.test_service_support import (
    ALICE,
    BOB,
    CAROL,
    POLICY,
    WRITE_METHODS,
    engine_kwargs,
)
from tests.plugins.sim import SimFactory

STAGING_POLICY = ApprovalPolicy(
    approvers=frozenset({"U3CAROL"}), approvers_high=frozenset({"U3CAROL"})
)


@dataclass
class Two:
    prod_sim: SimServer
    staging_sim: SimServer
    prod: Engine
    staging: Engine
    repos: Repositories

    async def say(self, text: str, actor: Any, engine: Engine | None = None) -> Outcome:
        entry = engine or self.prod
        command = parse_command(text, prog=prog_for(actor), clusters=entry.clusters)
        return await entry.handle(command, actor)

    def writes(self, sim: SimServer) -> list[tuple[str, str]]:
        return [
            (r.method, r.path)
            for r in sim.requests
            if r.store_id is None and r.method in WRITE_METHODS
        ]

    async def settle(self) -> None:
        await self.prod.wait_idle()
        await self.staging.wait_idle()


@asynccontextmanager
async def two_clusters(sim_factory: SimFactory, db_path: Path) -> AsyncIterator[Two]:
    prod_sim = await sim_factory(stores=4)
    staging_sim = await sim_factory(stores=4, seed=1)
    db = await Database.open(db_path)
    try:
        repos = Repositories.on(db)
        async with AsyncExitStack() as exits:
            engines = {}
            for name, sim, policy in (
                ("prod", prod_sim, POLICY),
                ("staging", staging_sim, STAGING_POLICY),
            ):
                pd = await exits.enter_async_context(open_pd_client(sim.pd_url, retries=0))
                engine = Engine(
                    pd=pd,
                    repos=repos,
                    cluster=name,
                    channel=f"tikv-{name}",
                    **engine_kwargs(sim, policy=policy),
                )
                exits.push_async_callback(engine.close)
                engines[name] = engine
            for engine in engines.values():
                engine.join(engines)
            yield Two(prod_sim, staging_sim, engines["prod"], engines["staging"], repos)
    finally:
        await db.close()


async def test_a_drain_named_for_a_cluster_touches_only_that_cluster(
    sim_factory: SimFactory, db_path: Path
) -> None:
    async with two_clusters(sim_factory, db_path) as two:
        created = await two.say("staging drain 4", BOB, engine=two.prod)
        assert isinstance(created, ProposalCreated)
        assert created.proposal.cluster == "staging" and created.proposal.id == "P-1"
        # the preflight read staging's PD, not prod's
        assert any(r.path.endswith("/stores") for r in two.staging_sim.requests)
        assert not any(r.path.endswith("/stores") for r in two.prod_sim.requests)
        # staging's approvers decide: alice approves prod, not staging
        refused = await two.prod.approve("P-1", ALICE)
        assert isinstance(refused, Refused) and refused.kind is RefusalKind.POLICY
        assert refused.observed.approvers == ("U3CAROL",)
        decided = await two.say("approve P-1", CAROL)  # typed anywhere, routed by the record
        assert isinstance(decided, Decided)
        await two.settle()
        staged = await two.repos.proposals.get("P-1")
        assert staged is not None and staged.state is ProposalState.SUCCEEDED
        assert ("POST", "/pd/api/v1/schedulers") in two.writes(two.staging_sim)
        assert two.writes(two.prod_sim) == []  # nothing reached prod's PD

        staging_writes = len(two.writes(two.staging_sim))
        other = await two.say("prod drain 4", BOB)
        assert isinstance(other, ProposalCreated) and other.proposal.cluster == "prod"
        assert other.proposal.id == "P-2"  # IDs are global across clusters
        approved = await two.say("approve P-2", ALICE, engine=two.staging)
        assert isinstance(approved, Decided)
        await two.settle()
        done = await two.repos.proposals.get("P-2")
        assert done is not None and done.state is ProposalState.SUCCEEDED
        assert ("POST", "/pd/api/v1/schedulers") in two.writes(two.prod_sim)
        assert len(two.writes(two.staging_sim)) == staging_writes
        execution = await two.repos.executions.get("P-2")
        assert execution is not None and execution.cluster == "prod"
        assert {a.cluster for a in await two.repos.audit.list_recent(subject="P-2")} == {"prod"}
        assert {a.cluster for a in await two.repos.audit.list_recent(subject="P-1")} == {"staging"}


async def test_without_a_cluster_the_refusal_lists_the_clusters(
    sim_factory: SimFactory, db_path: Path
) -> None:
    async with two_clusters(sim_factory, db_path) as two:
        for text in ("drain 4", "status", "stores", "store 4"):
            refused = await two.say(text, BOB)
            assert isinstance(refused, Refused), text
            assert "several clusters (prod, staging)" in refused.reason
        unknown = await two.say("qa drain 4", BOB)
        assert isinstance(unknown, Refused) and unknown.kind is RefusalKind.PARSE
        assert "the clusters are prod, staging" in unknown.reason
        assert await two.repos.proposals.list() == []
        # reads of records answer for every cluster
        assert not isinstance(await two.say("incidents", BOB), Refused)
        assert not isinstance(await two.say("proposals", BOB), Refused)
        status = await two.say("staging status", BOB)
        assert not isinstance(status, Refused)
        assert not any(r.path.endswith("/stores") for r in two.prod_sim.requests)


async def test_a_cluster_kill_switch_holds_that_cluster_and_the_global_one_all(
    sim_factory: SimFactory, db_path: Path
) -> None:
    async with two_clusters(sim_factory, db_path) as two:
        on = await two.say("prod kill-switch on upgrading PD", ALICE)
        assert isinstance(on, KillSwitchOutcome) and on.changed
        assert on.settings.cluster_switches["prod"].on and not on.settings.kill_switch.on
        created = await two.say("prod drain 4", BOB)
        assert isinstance(created, ProposalCreated)
        held = await two.prod.approve(created.proposal.id, ALICE)
        assert isinstance(held, Decided)
        await two.settle()
        still = await two.repos.proposals.get(created.proposal.id)
        assert still is not None and still.state is ProposalState.APPROVED
        assert two.writes(two.prod_sim) == []
        # staging is not held by prod's switch
        staged = await two.say("staging drain 4", BOB)
        assert isinstance(staged, ProposalCreated)
        assert isinstance(await two.staging.approve(staged.proposal.id, CAROL), Decided)
        await two.settle()
        ran = await two.repos.proposals.get(staged.proposal.id)
        assert ran is not None and ran.state is ProposalState.SUCCEEDED
        staging_writes = two.writes(two.staging_sim)
        assert staging_writes != []
        # turning prod's switch off resumes prod's approved proposal
        off = await two.say("prod kill-switch off", ALICE)
        assert isinstance(off, KillSwitchOutcome) and not off.settings.switch_for("prod").on
        await two.settle()
        done = await two.repos.proposals.get(created.proposal.id)
        assert done is not None and done.state is ProposalState.SUCCEEDED
        assert two.writes(two.prod_sim) != []
        assert two.writes(two.staging_sim) == staging_writes
        # the global switch (no cluster named, or in any cluster's engine) holds both
        everything = await two.prod.set_kill_switch(True, ALICE, "freeze")
        assert isinstance(everything, KillSwitchOutcome)
        assert everything.settings.switch_for("staging").on
        audit = await two.repos.audit.list_recent(action_prefix="killswitch")
        assert [(a.action, a.cluster) for a in reversed(audit)] == [
            ("killswitch.on", "prod"),
            ("killswitch.off", "prod"),
            ("killswitch.on", "default"),
        ]


async def test_clusters_lists_every_cluster_with_its_health(
    sim_factory: SimFactory, db_path: Path
) -> None:
    async with two_clusters(sim_factory, db_path) as two:
        view = await two.say("clusters", BOB)
        assert isinstance(view, ClustersView)
        assert [(c.name, c.channel, c.state) for c in view.clusters] == [
            ("prod", "tikv-prod", "unknown"),
            ("staging", "tikv-staging", "unknown"),
        ]
        assert two.prod.cluster_of_channel("#tikv-staging") == "staging"
        assert two.prod.cluster_of_channel("general") is None


def test_a_first_word_naming_a_cluster_sets_the_commands_cluster() -> None:
    clusters = ("prod", "staging")
    drain = parse_command("prod drain 4", clusters=clusters)
    assert drain.cluster == "prod" and drain.kind == "action"  # type: ignore[union-attr]
    assert parse_command("/tikv staging status", clusters=clusters).cluster == "staging"  # type: ignore[union-attr]
    assert parse_command("drain 4", clusters=clusters).cluster is None  # type: ignore[union-attr]
    # with one cluster nothing changes: a cluster-looking word is an unknown command
    single = parse_command("prod drain 4")
    assert single.__class__.__name__ == "CommandError"
    assert single.message.startswith("unknown command 'prod'.")  # type: ignore[union-attr]
    unknown = parse_command("qa drain 4", clusters=clusters)
    assert "the clusters are prod, staging" in unknown.message  # type: ignore[union-attr]
    listed = parse_command("clusters")
    assert listed.kind == "read" and listed.view == "clusters"  # type: ignore[union-attr]
