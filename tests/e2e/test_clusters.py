"""Two simulated clusters, one bot: `prod` and `staging` (3 stores each, each its own PD on its
own port, each its own channel in the Slack stand-in), the bot configured with one
`[clusters.NAME]` table per cluster, all over real sockets.

What a bug would break: a command in one cluster's channel reaching the other cluster's PD (both
request logs are read); one cluster's PD being down or hanging delaying the other's detection
(cycles are counted in the other cluster's request log, never wall-clock); approvers and kill
switches leaking across clusters; `/tikv clusters` not listing both.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot import callbacks
from engine.model import Incident, ProposalState
from sim.fleet import SimFleet
from sim.requestlog import RequestRecord
from sim.server import SimServer
from slackfake.server import SlackFake
from slackfake.store import Message
from tests.e2e.conftest import (
    ALICE,
    BOB,
    CAROL,
    ENGINE_OPTIONS,
    ONCALL,
    WAIT,
    block_text,
    e2e_settings,
    is_write,
)
from tikvops.demo import cluster_channel, cluster_settled
from tikvops.stack import SlackOptions, Stack, open_stack

PROD, STAGING = "prod", "staging"
PROD_CHANNEL = cluster_channel(PROD)[0]
STAGING_CHANNEL = cluster_channel(STAGING)[0]
OPS_CHANNEL = "C0OPS"
STORES_REQUEST = "/pd/api/v1/stores"


def cycles(sim: SimServer, since: int = 0) -> int:
    """Monitor cycles the bot ran against `sim` from request number `since`: each cycle reads
    the store list once."""
    return sum(1 for r in sim.requests[since:] if r.method == "GET" and r.path == STORES_REQUEST)


@dataclass
class Two:
    fleet: SimFleet
    fake: SlackFake
    stack: Stack

    @property
    def prod(self) -> SimServer:
        return self.fleet[PROD]

    @property
    def staging(self) -> SimServer:
        return self.fleet[STAGING]

    def writes(self, sim: SimServer) -> list[RequestRecord]:
        return [r for r in sim.requests if is_write(r)]

    async def command(self, user: str, channel: str, text: str) -> str:
        """`/tikv <text>` typed by `user` in `channel`; what the user is shown back."""
        seen_eph = len(self.fake.ephemerals(user=user, channel=channel))
        seen_posts = len(self.fake.response_posts("commands"))
        await self.fake.slash_command(user=user, channel=channel, text=text)

        def reply() -> str | None:
            ephemerals = self.fake.ephemerals(user=user, channel=channel)[seen_eph:]
            posts = self.fake.response_posts("commands")[seen_posts:]
            texts = [e.text + "\n" + block_text(e) for e in ephemerals]
            texts += [str(p.body) for p in posts]
            return "\n".join(texts) if texts else None

        result: str = await self.fake.wait_for(reply, timeout=WAIT)
        return result

    async def proposal_in(self, channel: str, needle: str) -> Message:
        """The top-level proposal with an Approve button mentioning `needle` in `channel`."""

        def find() -> Message | None:
            for message in self.fake.messages(channel):
                if callbacks.APPROVE in message.action_ids() and needle in message.text:
                    return message
            return None

        found: Message = await self.fake.wait_for(find, timeout=WAIT)
        return found

    async def click(self, user: str, channel: str, message: Message, action_id: str) -> None:
        await self.fake.click(
            user=user, channel=channel, message_ts=message.ts, action_id=action_id
        )

    async def open_incidents(self, cluster: str, kind: str | None = None) -> list[Incident]:
        incidents = await self.stack.runtime.repos.incidents.list_open()
        return [i for i in incidents if i.cluster == cluster and (kind is None or i.kind == kind)]

    async def incident(self, cluster: str, kind: str) -> Incident:
        async def find() -> Incident | None:
            found = await self.open_incidents(cluster, kind)
            return found[0] if found else None

        incident: Incident = await self.fake.wait_for(find, timeout=WAIT)
        return incident

    def told(self, user: str, channel: str, needle: str) -> Callable[[], str | None]:
        def find() -> str | None:
            for eph in self.fake.ephemerals(user=user, channel=channel):
                text = eph.text + "\n" + block_text(eph)
                if needle.lower() in text.lower():
                    return text
            return None

        return find


Make = Callable[..., Awaitable[Two]]


@pytest.fixture
async def two(tmp_path: Path) -> AsyncIterator[Make]:
    exits = AsyncExitStack()

    async def make(
        *, cluster_overrides: dict[str, dict[str, Any]] | None = None, **over: Any
    ) -> Two:
        fleet = SimFleet([PROD, STAGING], stores=3, regions=150, speed=20.0)
        await fleet.start()
        exits.push_async_callback(fleet.stop)
        fake = SlackFake(
            users={
                ALICE: "alice",
                BOB: "bob",
                CAROL: "carol",
                GUEST: {"name": "guest", "is_restricted": True},
            },
            usergroups={ONCALL: [ALICE, CAROL]},
            channels={
                OPS_CHANNEL: "tikv-ops",
                PROD_CHANNEL: "tikv-prod",
                STAGING_CHANNEL: "tikv-staging",
            },
        )
        await fake.start(host="127.0.0.1", port=0)
        exits.push_async_callback(fake.stop)
        tables: dict[str, dict[str, Any]] = {
            PROD: {"pd_url": fleet[PROD].pd_url, "channel": PROD_CHANNEL, "approvers": [ALICE]},
            STAGING: {
                "pd_url": fleet[STAGING].pd_url,
                "channel": STAGING_CHANNEL,
                "approvers": [CAROL],
            },
        }
        for name, extra in (cluster_overrides or {}).items():
            tables[name].update(extra)
        settings = e2e_settings(
            fleet[PROD],
            fake,
            tmp_path / "tikvops.db",
            pd_url=None,
            channel=OPS_CHANNEL,
            clusters=tables,
            **over,
        )
        stack = await exits.enter_async_context(
            open_stack(
                settings,
                engine_options=ENGINE_OPTIONS,
                slack=SlackOptions(outbox_poll=0.1, outbox_backoff_base=0.05),
            )
        )
        await fake.wait_for_socket()
        await fake.wait_for(
            lambda: all(cluster_settled(s) for s in fleet.servers.values()), timeout=WAIT
        )
        return Two(fleet=fleet, fake=fake, stack=stack)

    try:
        yield make
    finally:
        await exits.aclose()


async def test_a_drain_in_prods_channel_touches_only_prod(two: Make) -> None:
    h = await two()
    await h.command(BOB, PROD_CHANNEL, "drain 2")
    proposal = await h.proposal_in(PROD_CHANNEL, "store 2")
    assert PROD in proposal.text + block_text(proposal)  # the message names its cluster
    assert not any(callbacks.APPROVE in m.action_ids() for m in h.fake.messages(STAGING_CHANNEL))
    await h.click(ALICE, PROD_CHANNEL, proposal, callbacks.APPROVE)
    await h.fake.wait_for(lambda: h.prod.cluster.stores[2].leader_count == 0, timeout=WAIT)
    await h.stack.wait_idle()
    [write] = h.writes(h.prod)
    assert write.body == {"name": "evict-leader-scheduler", "store_id": 2}
    assert h.writes(h.staging) == []  # staging's PD received no write at all
    assert h.staging.cluster.stores[2].leader_count > 0


async def test_naming_the_cluster_elsewhere_targets_it_and_ambiguity_lists_them(
    two: Make,
) -> None:
    h = await two()
    ambiguous = await h.command(CAROL, OPS_CHANNEL, "drain 3")
    assert PROD in ambiguous and STAGING in ambiguous  # the error lists the clusters
    await h.command(BOB, OPS_CHANNEL, f"{STAGING} drain 3")
    # the proposal is posted in staging's own channel, where its approvers look
    proposal = await h.proposal_in(STAGING_CHANNEL, "store 3")
    await h.click(CAROL, STAGING_CHANNEL, proposal, callbacks.APPROVE)
    await h.fake.wait_for(lambda: h.staging.cluster.stores[3].leader_count == 0, timeout=WAIT)
    await h.stack.wait_idle()
    assert [w.body for w in h.writes(h.staging)] == [
        {"name": "evict-leader-scheduler", "store_id": 3}
    ]
    assert h.writes(h.prod) == []


async def test_prod_pd_down_gives_one_incident_and_staging_slow_store_is_detected_in_time(
    two: Make,
) -> None:
    h = await two()
    h.prod.faults.partition()
    prod_down = await h.incident(PROD, "pd_unreachable")
    start = len(h.staging.requests)
    result = h.staging.apply_scenario("slow-store")
    slow = await h.incident(STAGING, "write_latency")
    assert slow.subject == f"store:{result.store_id}"
    # staging's normal detection: the grace period in cycles, plus a few for the slow store's
    # p99 to rise in the scraped histogram and for the observation to land
    settings = h.stack.settings
    normal = int(settings.latency_grace / settings.poll_interval) + 6
    assert cycles(h.staging, start) <= normal
    # exactly one incident for prod, however many cycles PD stayed down
    prod_open = await h.open_incidents(PROD)
    assert [i.id for i in prod_open] == [prod_down.id]
    assert all(i.cluster == STAGING for i in await h.open_incidents(STAGING))


async def test_a_hanging_pd_never_slows_the_other_clusters_cycles(two: Make) -> None:
    # prod's PD accepts connections and never answers; the bot gives up after 5 s
    h = await two(pd_timeout=5.0)
    h.prod.faults.pd_timeouts()
    prod_start = len(h.prod.requests)
    staging_start = len(h.staging.requests)
    # staging keeps its rhythm: 10 cycles while prod's requests hang unanswered
    await h.fake.wait_for(lambda: cycles(h.staging, staging_start) >= 10, timeout=WAIT)
    hanging = len(h.prod.requests) - prod_start
    assert hanging <= 2, f"prod was asked {hanging} times while staging ran 10 cycles"
    await h.incident(PROD, "pd_unreachable")
    assert await h.open_incidents(STAGING) == []


async def test_approvers_are_per_cluster(two: Make) -> None:
    h = await two()
    await h.command(BOB, STAGING_CHANNEL, "drain 2")
    staging_proposal = await h.proposal_in(STAGING_CHANNEL, "store 2")
    # alice approves prod, not staging: refused, with the reason and who can approve
    await h.click(ALICE, STAGING_CHANNEL, staging_proposal, callbacks.APPROVE)
    refusal = await h.fake.wait_for(
        h.told(ALICE, STAGING_CHANNEL, "is not an approver"), timeout=WAIT
    )
    assert f"<@{CAROL}>" in refusal  # who can approve on staging
    await h.stack.wait_idle()
    assert h.writes(h.staging) == [] and h.writes(h.prod) == []
    # carol, staging's approver, can
    await h.click(CAROL, STAGING_CHANNEL, staging_proposal, callbacks.APPROVE)
    await h.fake.wait_for(lambda: h.staging.cluster.stores[2].leader_count == 0, timeout=WAIT)
    assert h.writes(h.prod) == []


async def test_kill_switch_per_cluster_and_global(two: Make) -> None:
    h = await two(cluster_overrides={STAGING: {"approvers": [ALICE, CAROL]}})
    reply = await h.command(ALICE, PROD_CHANNEL, "kill-switch on upgrading the prod PD")
    assert "kill switch" in reply.lower()
    await h.command(BOB, PROD_CHANNEL, "drain 2")
    await h.command(BOB, STAGING_CHANNEL, "drain 2")
    prod_p = await h.proposal_in(PROD_CHANNEL, "store 2")
    staging_p = await h.proposal_in(STAGING_CHANNEL, "store 2")
    await h.click(ALICE, PROD_CHANNEL, prod_p, callbacks.APPROVE)
    await h.click(ALICE, STAGING_CHANNEL, staging_p, callbacks.APPROVE)
    await h.fake.wait_for(h.told(ALICE, PROD_CHANNEL, "kill switch is on"), timeout=WAIT)
    await h.fake.wait_for(lambda: h.staging.cluster.stores[2].leader_count == 0, timeout=WAIT)
    await h.stack.wait_idle()
    assert h.writes(h.prod) == []  # approved, held back
    assert len(h.writes(h.staging)) == 1
    proposals = await h.stack.runtime.repos.proposals.list(limit=50)
    held = [p for p in proposals if p.cluster == PROD]
    assert [p.state for p in held] == [ProposalState.APPROVED]

    # the global kill switch (set outside any cluster's channel, naming none) holds every
    # cluster: with it on, turning prod's own switch off still runs nothing; turning the global
    # one off too lets prod's approved drain run
    reply = await h.command(ALICE, OPS_CHANNEL, "kill-switch on maintenance window")
    assert "kill switch" in reply.lower()
    await h.command(ALICE, PROD_CHANNEL, "kill-switch off")
    await h.stack.wait_idle()
    assert h.writes(h.prod) == []
    assert [
        p.state for p in await h.stack.runtime.repos.proposals.list(limit=50) if p.cluster == PROD
    ] == [ProposalState.APPROVED]
    await h.command(ALICE, OPS_CHANNEL, "kill-switch off")
    await h.fake.wait_for(lambda: h.prod.cluster.stores[2].leader_count == 0, timeout=WAIT)
    assert [w.body for w in h.writes(h.prod)] == [{"name": "evict-leader-scheduler", "store_id": 2}]
    assert len(h.writes(h.staging)) == 1


async def test_turning_a_clusters_kill_switch_on_says_so(two: Make) -> None:
    h = await two()
    reply = await h.command(ALICE, PROD_CHANNEL, "kill-switch on upgrading the prod PD")
    assert "is off" not in reply and PROD in reply and "upgrading the prod PD" in reply
    reply = await h.command(ALICE, PROD_CHANNEL, "kill-switch off")
    assert f"kill switch of cluster {PROD} is off" in reply


async def test_tikv_clusters_lists_both_with_health(two: Make) -> None:
    h = await two()
    h.prod.faults.partition()
    await h.incident(PROD, "pd_unreachable")
    listing = await h.command(BOB, OPS_CHANNEL, "clusters")
    assert PROD in listing and STAGING in listing
    assert h.prod.pd_url.split("//")[1] in listing or "unreachable" in listing.lower()
    lines = {
        name: line for line in listing.splitlines() for name in (PROD, STAGING) if name in line
    }
    assert "unreachable" in lines[PROD].lower() or "down" in lines[PROD].lower()


async def test_a_misconfigured_cluster_never_stops_the_other(two: Make) -> None:
    # prod points at a port nobody listens on (a typo in its pd_url): prod's incident says its
    # PD is unreachable, and staging's monitor keeps detecting within its normal cycles
    h = await two(cluster_overrides={PROD: {"pd_url": "http://127.0.0.1:9"}})
    await h.incident(PROD, "pd_unreachable")
    assert h.prod.requests == [] or all(r.path.startswith("/sim") for r in h.prod.requests)
    start = len(h.staging.requests)
    result = h.staging.apply_scenario("slow-store")
    slow = await h.incident(STAGING, "write_latency")
    assert slow.subject == f"store:{result.store_id}"
    settings = h.stack.settings
    assert cycles(h.staging, start) <= int(settings.latency_grace / settings.poll_interval) + 6


GUEST = "U0GUEST"  # a guest account: refused at the Slack edge, before the engine


async def test_a_refusal_at_the_slack_edge_is_audited_under_its_cluster(two: Make) -> None:
    # refused before any engine sees it: in staging's channel, or naming staging elsewhere
    h = await two()
    replies = [
        await h.command(GUEST, STAGING_CHANNEL, "drain 2"),
        await h.command(GUEST, PROD_CHANNEL, "staging drain 3"),
    ]
    assert all("guest account" in reply for reply in replies), replies
    rows = await h.stack.runtime.db.fetchall(
        "SELECT cluster, detail FROM audit_log WHERE action = 'slack.command.refused' ORDER BY id"
    )
    assert [(r[0], json.loads(r[1])["command"]) for r in rows] == [
        (STAGING, "/tikv drain 2"),
        (STAGING, "/tikv staging drain 3"),
    ]
    assert h.writes(h.prod) == [] and h.writes(h.staging) == []


RECORD_TABLES = ("incidents", "proposals", "executions", "audit_log", "events", "outbox")


async def test_every_record_of_a_staging_drain_and_incident_names_staging(two: Make) -> None:
    # a drain and an incident in staging (not the default cluster): every row any table holds
    # about them, including each Slack message owed in the outbox, says `staging`
    h = await two()
    await h.command(BOB, STAGING_CHANNEL, "drain 2")
    proposal = await h.proposal_in(STAGING_CHANNEL, "store 2")
    await h.click(CAROL, STAGING_CHANNEL, proposal, callbacks.APPROVE)
    repos = h.stack.runtime.repos

    async def succeeded() -> bool:
        return [p.state for p in await repos.proposals.list(limit=5)] == [ProposalState.SUCCEEDED]

    await h.fake.wait_for(succeeded, timeout=WAIT)  # verified before staging's PD goes away
    h.staging.faults.partition()
    await h.incident(STAGING, "pd_unreachable")
    await h.stack.wait_idle()
    db = h.stack.runtime.db

    async def outbox_settled() -> bool:
        rows = await db.fetchall("SELECT count(*) FROM outbox WHERE status = 'pending'")
        return int(rows[0][0]) == 0

    await h.fake.wait_for(outbox_settled, timeout=WAIT)
    for table in RECORD_TABLES:
        rows = await db.fetchall(f"SELECT cluster, count(*) FROM {table} GROUP BY cluster")
        counts = {r[0]: r[1] for r in rows}
        assert set(counts) == {STAGING}, f"{table}: {counts}"
    # the messages were delivered in staging's channel, none in prod's
    assert not any(m.text for m in h.fake.messages(PROD_CHANNEL))


async def test_each_proposal_card_shows_its_own_clusters_quorum(two: Make) -> None:
    # staging needs two approvals for a high-risk action, prod one: each card says its own
    h = await two(cluster_overrides={STAGING: {"high_risk_approvals": 2}})
    await h.command(BOB, PROD_CHANNEL, "drain 2")
    await h.command(BOB, STAGING_CHANNEL, "drain 2")
    prod_card = await h.proposal_in(PROD_CHANNEL, "store 2")
    staging_card = await h.proposal_in(STAGING_CHANNEL, "store 2")
    assert "Waiting for approval* (one approval)" in block_text(prod_card)
    assert "Waiting for approval* (2 approvals from different people)" in block_text(staging_card)


async def test_lists_status_and_app_home_name_each_records_cluster(two: Make) -> None:
    h = await two()
    h.prod.faults.partition()
    prod_down = await h.incident(PROD, "pd_unreachable")
    listing = await h.command(BOB, OPS_CHANNEL, "incidents")
    assert f"[{PROD}] *{prod_down.id}*" in listing
    created = await h.command(BOB, OPS_CHANNEL, f"{STAGING} drain 3")
    # the answer names the proposal's cluster and the channel it is posted in: staging's
    assert f"[{STAGING}]" in created and f"<#{STAGING_CHANNEL}>" in created
    proposals = await h.command(BOB, OPS_CHANNEL, "proposals")
    assert f"[{STAGING}] *P-" in proposals
    # staging's status is staging's: its header, none of prod's incidents
    status = await h.command(BOB, STAGING_CHANNEL, "status")
    assert f"TiKV cluster status: {STAGING}" in status and prod_down.id not in status
    prod_status = await h.command(BOB, PROD_CHANNEL, "status")
    assert prod_down.id in prod_status
    # App Home: every cluster's row, and each incident and proposal names its cluster
    await h.fake.open_home(user=BOB)

    def home() -> str | None:
        view = h.fake.home(BOB)
        text = json.dumps(view) if view is not None else ""
        return text if f"[{PROD}] *{prod_down.id}*" in text and f"[{STAGING}] *P-" in text else None

    shown = await h.fake.wait_for(home, timeout=WAIT)
    assert f"*{PROD}*" in shown and f"*{STAGING}*" in shown
