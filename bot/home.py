"""Keeps each user's App Home tab current: `opened(user)` (the `app_home_opened` event) publishes
their view with `views.publish`; `changed()` (called after every commit that wrote events)
refreshes the view of every user who opened it. Publishing is rate-limited per user (at most
one `views.publish` per `min_interval` seconds; a change inside the interval is published at
its end, once), done by one background task, and one read of the engine serves every user of a
pass. The users remembered are bounded (`max_users`, least recently opened forgotten first).

Owner and silence state of incidents are on the incident records (`Incident.attention`);
`bot.render.home` words them as the cards do.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Sequence

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.render.home import Cluster, HomeData, home_view
from engine.errors import EngineError
from engine.model import ProposalState
from engine.ports import Clock
from engine.service import Engine

logger = logging.getLogger(__name__)


class HomePublisher:
    """See the module docstring. `clusters`: the names of the clusters watched."""

    def __init__(
        self,
        client: AsyncWebClient,
        engine: Engine,
        clock: Clock,
        *,
        clusters: Sequence[str],
        min_interval: float = 5.0,
        max_users: int = 500,
        read_timeout: float = 10.0,
    ) -> None:
        self._client = client
        self._engine = engine
        self._clock = clock
        self._clusters = tuple(clusters)
        self.min_interval = min_interval
        self.max_users = max_users
        self.read_timeout = read_timeout
        self._users: OrderedDict[str, float] = OrderedDict()  # user -> last publish (loop time)
        self._dirty: set[str] = set()
        self._wake = asyncio.Event()
        self._settled = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.published = 0

    # ------------------------------------------------------------------ triggers

    def opened(self, user: str) -> None:
        """`user` opened the tab: publish their view (now, or when their interval ends)."""
        self._users[user] = self._users.pop(user, float("-inf"))  # most recent last
        while len(self._users) > self.max_users:
            forgotten, _ = self._users.popitem(last=False)
            self._dirty.discard(forgotten)
        self._dirty.add(user)
        self._kick()

    def changed(self, _seq: int | None = None) -> None:
        """Something changed: refresh every user who opened the tab (rate-limited)."""
        if not self._users:
            return
        self._dirty.update(self._users)
        self._kick()

    def _kick(self) -> None:
        self._settled.clear()
        self._wake.set()
        if self._task is None or self._task.done():
            with contextlib.suppress(RuntimeError):  # no running loop: started on next kick
                self._task = asyncio.get_running_loop().create_task(self._run(), name="app home")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def idle(self) -> None:
        """Until nothing is waiting to be published (tests)."""
        if self._dirty and self._task is not None and not self._task.done():
            await self._settled.wait()

    # ------------------------------------------------------------------ the worker

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._wake.clear()
            if not self._dirty:
                self._settled.set()
                await self._wake.wait()
                continue
            now = loop.time()
            due = [u for u in self._dirty if self._users.get(u, 0.0) + self.min_interval <= now]
            if due:
                await self._publish(due)
                continue
            wait = min(self._users.get(u, now) + self.min_interval for u in self._dirty) - now
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(wait, 0.01))

    async def _publish(self, users: list[str]) -> None:
        loop = asyncio.get_running_loop()
        try:
            view = home_view(await self.data(), self._clock.now())
        except (EngineError, TimeoutError) as exc:
            logger.warning("App Home not refreshed: the records could not be read: %s", exc)
            for user in users:  # try again after the interval
                self._users[user] = loop.time()
            return
        for user in users:
            self._dirty.discard(user)
            if user in self._users:
                self._users[user] = loop.time()
            try:
                await self._client.views_publish(user_id=user, view=view)
                self.published += 1
            except SlackApiError as exc:
                logger.warning(
                    "App Home of %s not published: Slack answered %s",
                    user,
                    exc.response.get("error"),
                )
            except (SlackClientError, aiohttp.ClientError, TimeoutError, OSError) as exc:
                logger.warning("App Home of %s not published: %s", user, exc)

    async def data(self) -> HomeData:
        """What the tab shows now (one read of the engine)."""
        engine = self._engine
        async with asyncio.timeout(self.read_timeout):
            if engine.multi_cluster:  # a cluster's status lists its own: every cluster's here
                clusters = await self._every_cluster()
                incidents = await engine.repos.incidents.list_open()
                pending = await engine.repos.proposals.list(states=[ProposalState.PROPOSED])
                settings = await engine.repos.settings.get()
                switch, observe_only = settings.kill_switch, settings.observe_only  # global
            else:
                status = await engine.reads.status()
                clusters = [
                    Cluster(name=name, stores=status.state_counts, problem=status.pd_error)
                    for name in self._clusters
                ]
                incidents = status.open_incidents
                pending = [p for p in status.active_proposals if p.state is ProposalState.PROPOSED]
                switch, observe_only = status.kill_switch, status.observe_only
        return HomeData(
            kill_switch=switch,
            observe_only=observe_only,
            clusters=clusters,
            incidents=incidents,
            pending=pending,
            named=engine.multi_cluster,
        )

    async def _every_cluster(self) -> list[Cluster]:
        """Several clusters: one row each, from its monitor's last cycle (`/tikv clusters`)."""
        rows = []
        for health in (await self._engine.clusters_view()).clusters:
            stores: dict[str, int] = {}
            if health.stores is not None and health.stores_up is not None:
                counted = {"Up": health.stores_up, "not Up": health.stores - health.stores_up}
                stores = {state: n for state, n in counted.items() if n}
            problem = health.sentence if health.state in ("pd-unreachable", "unknown") else None
            if health.kill_switch:
                problem = "; ".join(filter(None, [problem, "its kill switch is on"]))
            rows.append(Cluster(name=health.name, stores=stores, problem=problem))
        return rows


__all__ = ["HomePublisher"]
