"""Issue 18, item 2: a write PD accepted, then verification reads that fail. The bot runs
against PD through a loopback proxy in front of the simulator that passes everything until the
write has been answered (200), then answers every read with 503s, a proxy's HTML page, or
nothing at all (a timeout). The run keeps verifying with back-off until the action's
deadline, then ends "sent and accepted, not verified": never "failed", never "retry", the
Undo still offered, and PD saw exactly one write."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot import callbacks
from engine.model import ExecutionStatus
from engine.model import ProposalState as S
from tests.bot.conftest import ALICE, BOB, CHANNEL, Harness
from tests.bot.render_text import text_of

Make = Callable[..., Awaitable[Harness]]

DEADLINE = 2.0
"""Seconds the drain's verification may take here (the bot harness's clock is real)."""


class AcceptThenFailReads:
    """A PD in front of the simulator: forwards requests until a write was answered, then
    fails every read the way `mode` says ("503", "html", "timeout")."""

    def __init__(self, upstream: str, mode: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.mode = mode
        self.writes: list[tuple[str, str]] = []
        self.failed_reads = 0
        self.healed = False
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.url = ""

    async def start(self) -> None:
        self._session = aiohttp.ClientSession()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if self.writes and not self.healed and request.method == "GET":
            self.failed_reads += 1
            if self.mode == "503":
                return web.Response(status=503, text="no healthy upstream")
            if self.mode == "html":
                page = "<html><head><title>Sign in</title></head><body>Proxy</body></html>"
                return web.Response(status=200, text=page, content_type="text/html")
            await asyncio.sleep(5)  # longer than the client's timeout: it gives up first
            return web.Response(status=504, text="too late")
        assert self._session is not None
        body = await request.read()
        headers = {"Content-Type": request.headers.get("Content-Type", "application/json")}
        async with self._session.request(
            request.method, self.upstream + request.path_qs, data=body or None, headers=headers
        ) as answer:
            data = await answer.read()
            status = answer.status
            kind = answer.content_type
        if request.method != "GET" and request.path.startswith("/pd/"):
            self.writes.append((request.method, request.path))
        return web.Response(status=status, body=data, content_type=kind)


@pytest.fixture
async def failing_pd(cluster: Any) -> AsyncIterator[Callable[[str], Awaitable[Any]]]:
    started: list[AcceptThenFailReads] = []

    async def make(mode: str) -> AcceptThenFailReads:
        proxy = AcceptThenFailReads(cluster.pd_url, mode)
        await proxy.start()
        started.append(proxy)
        return proxy

    yield make
    for proxy in started:
        await proxy.stop()


async def _drain_approved(h: Harness) -> Any:
    await h.fake.slash_command(user=BOB, text="drain 4", channel=CHANNEL)
    await h.settle()
    message = h.top()[-1]
    assert callbacks.APPROVE in message.action_ids()
    await h.fake.click(
        user=ALICE, channel=CHANNEL, message_ts=message.ts, action_id=callbacks.APPROVE
    )
    return message


async def _wait_finished(h: Harness, proposal_id: str) -> Any:
    async with asyncio.timeout(60):
        while True:
            await h.settle()
            proposal = await h.runtime.repos.proposals.get(proposal_id)
            if proposal is not None and proposal.state.is_terminal:
                await h.settle()
                return proposal
            await asyncio.sleep(0.05)


@pytest.mark.parametrize("mode", ["503", "html", "timeout"])
async def test_an_accepted_write_whose_verification_reads_fail_is_sent_not_verified(
    bot_harness: Make, failing_pd: Callable[[str], Awaitable[Any]], mode: str
) -> None:
    proxy = await failing_pd(mode)
    h = await bot_harness(
        pd_url=proxy.url,
        pd_timeout=0.5,
        engine_options={"deadlines": {"drain": DEADLINE}, "poll_intervals": {"drain": 0.05}},
    )
    message = await _drain_approved(h)
    proposal = await _wait_finished(h, "P-1")

    assert proxy.writes == [("POST", "/pd/api/v1/schedulers")]  # exactly one write, never again
    assert h.sim.cluster.schedulers.evicted_stores() == [4]  # PD did apply it
    assert proxy.failed_reads >= 2  # it kept looking, with back-off, until the deadline
    assert proposal.state is S.UNVERIFIED
    execution = await h.runtime.repos.executions.get("P-1")
    assert execution is not None and execution.status is ExecutionStatus.UNVERIFIED

    outcome = h.thread(message.ts)[-1]
    said = text_of(outcome.blocks)
    assert "sent and accepted, not verified" in said
    assert "store 4" in said and "store 4`" in said  # what to check, and how
    lowered = said.lower()
    assert (
        "failed:" not in lowered and " retry" not in lowered and "propose it again" not in lowered
    )
    assert callbacks.UNDO in outcome.action_ids()  # the undo is still offered
    edited = h.fake.message(CHANNEL, message.ts)
    assert edited is not None and edited.action_ids() == []
    assert "Sent and accepted, not verified" in text_of(edited.blocks)
    audit = [e.action for e in await h.runtime.repos.audit.list_recent(subject="P-1")]
    assert "execution.unverified" in audit and "execution.failed" not in audit

    # Once PD answers again, the undo it offers goes through the engine like any proposal.
    proxy.healed = True
    await h.fake.click(user=ALICE, channel=CHANNEL, message_ts=outcome.ts, action_id=callbacks.UNDO)
    async with asyncio.timeout(30):
        while (await h.runtime.repos.proposals.get("P-2")) is None:
            await h.settle()
            await asyncio.sleep(0.05)
    undo = await h.runtime.repos.proposals.get("P-2")
    assert undo is not None and undo.action == "undrain" and undo.params == {"store_id": 4}
