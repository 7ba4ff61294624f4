"""Global middleware, one job each, run before any listener (and so before its ack: each is
fast, local, and does no I/O):

- `RequestGuard`: requests from another app or workspace (including users of another
  organisation in a shared channel) are acknowledged and ignored; so are the bot's own events,
  and, when the app or workspace ID is configured, requests that do not name one (Slack always
  sends both, so a request without them is forged or broken).
- `Deduplicate`: a redelivered envelope (same envelope ID) or a repeated request (same
  trigger, `action_ts` or event ID) that this process already let through is acknowledged and
  not handled again. Everything else goes on with a `bot.redelivery.Claim` in the context: the
  durable check (`DedupRepo`, which survives a restart) that handlers make after their ack and
  before any work (`bot.redelivery.once`).
- `RequestContext`: puts the request key (`request_id`, passed to the engine so a mutation is
  applied once) into the listener context.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta

from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from bot import payload
from bot.config import BotConfig
from bot.redelivery import CLAIM, Claim, RecentKeys
from engine.ports import Clock, DedupRepo

logger = logging.getLogger(__name__)

Next = Callable[[], Awaitable[BoltResponse]]

ENVELOPE_PREFIX = "slack-envelope:"
REQUEST_PREFIX = "slack-request:"
ENGINE_PREFIX = "slack:"
"""Request IDs given to the engine (a separate namespace from the middleware's own keys)."""


def _ignored() -> BoltResponse:
    """Acknowledge without doing anything (so Slack does not retry)."""
    return BoltResponse(status=200, body="")


class RequestGuard(AsyncMiddleware):
    def __init__(self, config: BotConfig) -> None:
        self._config = config

    async def async_process(
        self, *, req: AsyncBoltRequest, resp: BoltResponse, next: Next
    ) -> BoltResponse | None:
        body: Mapping[str, object] | object = req.body
        if not isinstance(body, Mapping):
            logger.warning("ignored a request whose payload is not an object")
            return _ignored()
        app = payload.app_id(body)
        if self._config.app_id and app != self._config.app_id:
            logger.warning(
                "ignored a request for app %s (this app is %s)",
                app or "(none named)",
                self._config.app_id,
            )
            return _ignored()
        teams = payload.team_ids(body)
        if self._config.team_id and not teams:
            logger.warning(
                "ignored a request that names no workspace (this app serves %s), user %s",
                self._config.team_id,
                payload.user_id(body),
            )
            return _ignored()
        if self._config.team_id and teams - {self._config.team_id}:
            logger.warning(
                "ignored a request from workspace(s) %s (this app serves %s), user %s",
                sorted(teams - {self._config.team_id}),
                self._config.team_id,
                payload.user_id(body),
            )
            return _ignored()
        if payload.is_own_event(body, req.context.bot_user_id, req.context.bot_id):
            return _ignored()
        return await next()


class Deduplicate(AsyncMiddleware):
    def __init__(
        self, dedup: DedupRepo, clock: Clock, ttl: timedelta, *, recent: RecentKeys | None = None
    ) -> None:
        self._dedup = dedup
        self._clock = clock
        self._ttl = ttl
        self._recent = recent if recent is not None else RecentKeys(ttl)

    async def async_process(
        self, *, req: AsyncBoltRequest, resp: BoltResponse, next: Next
    ) -> BoltResponse | None:
        keys = request_keys(req)
        now = self._clock.now()
        if self._recent.repeat(keys, now):
            logger.info("ignored a redelivered request %s", ", ".join(keys))
            return _ignored()
        req.context[CLAIM] = Claim(self._dedup, keys, now=now, ttl=self._ttl)
        return await next()


def request_keys(req: AsyncBoltRequest) -> list[str]:
    """The deduplication keys of a request: its envelope ID and its request key (if any)."""
    keys = []
    envelope = payload.header(req.headers, payload.ENVELOPE_HEADER)
    if envelope:
        keys.append(ENVELOPE_PREFIX + envelope)
    key = payload.request_key(req.body)
    if key:
        keys.append(REQUEST_PREFIX + key)
    return keys


class RequestContext(AsyncMiddleware):
    async def async_process(
        self, *, req: AsyncBoltRequest, resp: BoltResponse, next: Next
    ) -> BoltResponse | None:
        key = payload.request_key(req.body)
        envelope = payload.header(req.headers, payload.ENVELOPE_HEADER)
        if key:
            req.context["request_id"] = ENGINE_PREFIX + key
        elif envelope:
            req.context["request_id"] = ENGINE_PREFIX + "envelope:" + envelope
        return await next()


def request_id(context: dict[str, object]) -> str | None:
    value = context.get("request_id")
    return str(value) if value else None


__all__ = [
    "ENGINE_PREFIX",
    "Deduplicate",
    "RequestContext",
    "RequestGuard",
    "request_id",
    "request_keys",
]
