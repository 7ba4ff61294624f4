"""Who is clicking: a Slack user as an engine `Identity`, with `groups` filled from the approver
user groups they belong to (`usergroups.users.list`, cached for a TTL). On an API error the
membership is unknown and treated as "not a member" (fail closed): the person is then refused
with the policy's reason, never let through by accident."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from engine.model import Identity

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Members:
    users: frozenset[str]
    fetched_at: float


class IdentityResolver:
    """`resolve(user_id, name)` → `Identity.slack(...)` with the approver groups the user is in.
    `groups` are the user-group IDs (`S…`) the approval policy names."""

    def __init__(
        self,
        client: AsyncWebClient,
        groups: Iterable[str],
        *,
        ttl: timedelta = timedelta(minutes=5),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._groups = tuple(dict.fromkeys(g for g in groups if g.startswith("S")))
        self._ttl = ttl.total_seconds()
        self._monotonic = monotonic
        self._cache: dict[str, _Members] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    @property
    def groups(self) -> tuple[str, ...]:
        return self._groups

    async def resolve(self, user_id: str, name: str | None = None) -> Identity:
        member_of = []
        for group in self._groups:
            members = await self.members(group)
            if user_id in members:
                member_of.append(group)
        return Identity.slack(user_id, name=name or None, groups=tuple(member_of))

    async def members(self, group: str) -> frozenset[str]:
        """The members of `group` (cached); empty if Slack cannot tell."""
        cached = self._cache.get(group)
        now = self._monotonic()
        if cached is not None and now - cached.fetched_at < self._ttl:
            return cached.users
        lock = self._locks.setdefault(group, asyncio.Lock())
        async with lock:
            cached = self._cache.get(group)
            if cached is not None and self._monotonic() - cached.fetched_at < self._ttl:
                return cached.users
            try:
                response = await self._client.usergroups_users_list(usergroup=group)
            except SlackApiError as exc:
                logger.error(
                    "could not list the members of user group %s (%s); treating them as not "
                    "approvers until it works",
                    group,
                    exc.response.get("error"),
                )
                return frozenset()
            except (SlackClientError, aiohttp.ClientError, TimeoutError, OSError) as exc:
                logger.error("could not reach Slack to list user group %s: %s", group, exc)
                return frozenset()
            users = frozenset(str(u) for u in response.get("users") or [])
            self._cache[group] = _Members(users=users, fetched_at=self._monotonic())
            return users

    def forget(self) -> None:
        """Drop the cache (tests, or after an approver change)."""
        self._cache.clear()


__all__ = ["IdentityResolver"]
