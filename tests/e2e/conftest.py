"""End-to-end fixtures: the simulator as PD, the Slack stand-in as Slack, and the whole bot as
`tikvops run` starts it (`tikvops.stack.open_stack`: monitor, scheduler, engine, playbook
diagnosis, Socket Mode bot, outbox deliverer, health server), all over real sockets on 127.0.0.1.

`await e2e()` starts a bot with fast timings (poll every 0.3 s, short grace and resolve periods,
a simulator whose time runs 20x faster than the clock); keyword arguments override settings.
The returned `E2E` has helpers that read like the test: the incident's parent message, its
thread, the proposal in it, clicking as a user, and the PD writes the simulator received.
Everything waits on conditions (`fake.wait_for`), never on durations.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bot import callbacks
from engine.model import Incident, OwnerKind, Proposal
from sim.requestlog import RequestRecord
from sim.server import SimServer
from slackfake.server import SlackFake
from slackfake.store import Message
from tikvops.demo import cluster_settled, wait_settled
from tikvops.settings import Settings
from tikvops.stack import SlackOptions, Stack, open_stack

ALICE = "U0ALICE"  # approver by user ID and through @oncall
BOB = "U0BOB"  # not an approver
CAROL = "U0CAROL"  # member of @oncall only
ONCALL = "S0ONCALL"
CHANNEL = "C0OPS"

WAIT = 30.0
"""Upper bound for any one condition; each is normally met in well under a second or two."""

E2E_SETTINGS: dict[str, Any] = {
    "poll_interval": 0.3,
    "latency_grace": 0.5,
    "resolve_after": 0.6,
    "disk_grace": 0.0,
    "disconnected_grace": 0.0,
    # the simulator's start-up leaves a few extra/pending peers for some seconds: not the subject
    "region_health_grace": 600.0,
    "hot_write_min_regions": 1,
    "proposal_ttl": 1800.0,
    "pd_timeout": 3.0,
    "health_addr": "127.0.0.1:0",
}

ENGINE_OPTIONS: dict[str, Any] = {
    "poll_intervals": {
        "drain": 0.1,
        "undrain": 0.1,
        "transfer-leader": 0.1,
        "transfer-peer": 0.1,
        "split": 0.1,
    },
    "deadlines": {"drain": 60.0, "transfer-peer": 60.0, "split": 30.0, "transfer-leader": 30.0},
}


def is_write(record: RequestRecord) -> bool:
    return record.path.startswith("/pd/") and record.method not in ("GET", "HEAD")


@dataclass
class E2E:
    sim: SimServer
    fake: SlackFake
    stack: Stack
    exits: AsyncExitStack
    notes: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------ reading the channel

    def top(self) -> list[Message]:
        return self.fake.messages(CHANNEL)

    def thread(self, parent: Message) -> list[Message]:
        return [m for m in self.fake.thread(CHANNEL, parent.ts) if m.ts != parent.ts]

    def current(self, message: Message) -> Message:
        now = self.fake.message(CHANNEL, message.ts)
        assert now is not None
        return now

    def thread_text(self, parent: Message) -> str:
        return "\n".join(m.text + "\n" + block_text(m) for m in self.thread(parent))

    async def incident(self, kind: str, *, timeout: float = WAIT) -> Incident:
        """Wait for an open incident of `kind` and return it."""

        async def find() -> Incident | None:
            for incident in await self.stack.runtime.repos.incidents.list_open():
                if incident.kind == kind:
                    return incident
            return None

        found: Incident = await self.fake.wait_for(find, timeout=timeout)
        return found

    async def parent_of(self, incident: Incident, *, timeout: float = WAIT) -> Message:
        """The channel message the incident owns, once delivered."""
        refs = self.stack.runtime.repos.slack_refs

        async def find() -> Message | None:
            ref = await refs.get(OwnerKind.INCIDENT, incident.id)
            return self.fake.message(CHANNEL, ref.ts) if ref is not None else None

        message: Message = await self.fake.wait_for(find, timeout=timeout)
        return message

    async def proposal_message(self, parent: Message, *, timeout: float = WAIT) -> Message:
        """The proposal with an Approve button in the incident's thread."""

        def find() -> Message | None:
            for reply in self.thread(parent):
                if callbacks.APPROVE in reply.action_ids():
                    return reply
            return None

        try:
            message: Message = await self.fake.wait_for(find, timeout=timeout)
        except TimeoutError:
            raise AssertionError(
                f"no proposal in the thread; it has:\n{self.thread_text(parent)}"
            ) from None
        return message

    async def proposal_for(self, incident: Incident) -> Proposal:
        proposals = await self.stack.runtime.repos.proposals.list(limit=50)
        [proposal] = [p for p in proposals if p.incident_id == incident.id]
        return proposal

    async def proposal(self, proposal_id: str) -> Proposal:
        found = await self.stack.runtime.repos.proposals.get(proposal_id)
        assert found is not None
        return found

    async def wait_text(self, parent: Message, *needles: str, timeout: float = WAIT) -> str:
        """Wait until the thread contains every needle; returns the thread's text."""

        def found() -> str | None:
            text = self.thread_text(parent)
            return text if all(n in text for n in needles) else None

        try:
            result: str = await self.fake.wait_for(found, timeout=timeout)
        except TimeoutError:
            raise AssertionError(
                f"thread never showed {needles!r}; it has:\n{self.thread_text(parent)}"
            ) from None
        return result

    # ------------------------------------------------------------ acting

    async def click(self, user: str, message: Message, action_id: str) -> None:
        await self.fake.click(
            user=user, channel=CHANNEL, message_ts=message.ts, action_id=action_id
        )

    async def command(self, user: str, text: str) -> str:
        """`/tikv <text>` as `user`; returns the text of what the user sees in reply (the
        ack, and ephemerals or response_url posts that came after the command)."""
        seen_eph = len(self.fake.ephemerals(user=user, channel=CHANNEL))
        seen_posts = len(self.fake.response_posts("commands"))
        await self.fake.slash_command(user=user, channel=CHANNEL, text=text)

        def reply() -> str | None:
            ephemerals = self.fake.ephemerals(user=user, channel=CHANNEL)[seen_eph:]
            posts = self.fake.response_posts("commands")[seen_posts:]
            texts = [e.text + "\n" + block_text(e) for e in ephemerals]
            texts += [str(p.body) for p in posts]
            return "\n".join(texts) if texts else None

        result: str = await self.fake.wait_for(reply, timeout=WAIT)
        return result

    # ------------------------------------------------------------ the cluster side

    def pd_writes(self) -> list[RequestRecord]:
        return [r for r in self.sim.requests if is_write(r)]

    def leaders(self, store_id: int) -> int:
        return self.sim.cluster.stores[store_id].leader_count


def block_text(message: Any) -> str:
    """All text inside a message's blocks (sections, fields, context), one piece per line."""
    parts: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            text = node.get("text")
            if isinstance(text, str):
                parts.append(text)
            for value in node.values():
                if isinstance(value, dict | list):
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(getattr(message, "blocks", None) or [])
    return "\n".join(parts)


def e2e_settings(sim: SimServer, fake: SlackFake, db: Path, **overrides: Any) -> Settings:
    workspace = fake.workspace
    values: dict[str, Any] = {
        **E2E_SETTINGS,
        "pd_url": sim.pd_url,
        "db": db,
        "slack_bot_token": workspace.bot_token,
        "slack_app_token": workspace.app_token,
        "slack_api_url": fake.api_url,
        "slack_app_id": workspace.app_id,
        "slack_team_id": workspace.team_id,
        "channel": CHANNEL,
        "approvers": [ALICE, ONCALL],
        "anthropic_api_key": None,  # playbooks, whatever the environment says
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture
async def e2e(
    sim_factory: Callable[..., Awaitable[SimServer]],
    make_slack_fake: Callable[..., Awaitable[SlackFake]],
    tmp_path: Path,
) -> AsyncIterator[Callable[..., Awaitable[E2E]]]:
    started: list[AsyncExitStack] = []

    async def make(
        *,
        stores: int = 5,
        speed: float = 20.0,
        expire_every: float | None = None,
        settle_first: bool = False,
        sim_options: dict[str, Any] | None = None,
        **overrides: Any,
    ) -> E2E:
        sim = await sim_factory(
            stores=stores, regions=150, speed=speed, auto_tick=True, **(sim_options or {})
        )
        if settle_first:
            # the bot starts on a quiet cluster: start-up rebalancing is not an incident
            await wait_settled(sim, limit=WAIT)
        fake = await make_slack_fake(
            users={ALICE: "alice", BOB: "bob", CAROL: "carol"},
            usergroups={ONCALL: [ALICE, CAROL]},
        )
        exits = AsyncExitStack()
        started.append(exits)
        settings = e2e_settings(sim, fake, tmp_path / "tikvops.db", **overrides)
        stack = await exits.enter_async_context(
            open_stack(
                settings,
                engine_options=ENGINE_OPTIONS,
                slack=SlackOptions(outbox_poll=0.1, outbox_backoff_base=0.05),
                expire_every=expire_every,
            )
        )
        await fake.wait_for_socket()
        # a fault injected while PD still rebalances the new cluster could be diagnosed
        # against a region that is moving; tests start from a quiet cluster
        await fake.wait_for(lambda: cluster_settled(sim), timeout=WAIT)
        return E2E(sim=sim, fake=fake, stack=stack, exits=exits)

    try:
        yield make
    finally:
        for exits in reversed(started):
            await exits.aclose()
