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
        self._accounts: dict[str, tuple[str | None, float]] = {}

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

    async def refusal(self, user_id: str) -> str | None:
        """Why this Slack account may not change anything (deleted, a bot or app, a guest), as a
        sentence; None when it may (the approval policy still decides what it may do). If Slack
        cannot tell (`users.info` fails), None: the approver list stays the authority."""
        now = self._monotonic()
        cached = self._accounts.get(user_id)
        if cached is not None and now - cached[1] < self._ttl:
            return cached[0]
        try:
            response = await self._client.users_info(user=user_id)
        except SlackApiError as exc:
            logger.warning("users.info %s failed (%s)", user_id, exc.response.get("error"))
            return None
        except (SlackClientError, aiohttp.ClientError, TimeoutError, OSError) as exc:
            logger.warning("could not reach Slack for users.info %s: %s", user_id, exc)
            return None
        user = response.get("user") or {}
        reason = account_refusal(user_id, user)
        self._accounts[user_id] = (reason, self._monotonic())
        return reason

    def forget(self) -> None:
        """Drop the caches (tests, or after an approver change)."""
        self._cache.clear()
        self._accounts.clear()


def account_refusal(user_id: str, user: dict[str, object]) -> str | None:
    """The sentence refusing a deleted, bot or guest account (from a `users.info` user)."""
    who = f"<@{user_id}>"
    if user.get("deleted"):
        return f"{who} is a deactivated account; it cannot change anything"
    if user.get("is_bot") or user.get("is_app_user"):
        return f"{who} is a bot or app; only people can propose, approve or reject changes"
    if user.get("is_restricted") or user.get("is_ultra_restricted"):
        return (
            f"{who} is a guest account; guests cannot propose, approve or reject changes. Ask a "
            "full member of the workspace"
        )
    return None


__all__ = ["IdentityResolver", "account_refusal"]
