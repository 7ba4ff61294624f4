"""The fake workspace's fixed cast: team, bot identity, users, channels and user groups.

Built once from the SlackFake constructor arguments; the Web API handlers and the page read it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

DEFAULT_SCOPES: tuple[str, ...] = (
    "app_mentions:read",
    "channels:history",
    "channels:read",
    "chat:write",
    "commands",
    "files:write",
    "groups:history",
    "groups:read",
    "reactions:write",
    "usergroups:read",
    "users:read",
)

_MENTION = re.compile(r"(?<![<\w])@([a-z0-9._-]+)")


@dataclass
class User:
    id: str
    name: str
    real_name: str = ""
    is_bot: bool = False
    is_admin: bool = False
    deleted: bool = False
    is_restricted: bool = False
    is_ultra_restricted: bool = False
    tz: str = "Europe/Amsterdam"
    email: str = ""

    def to_api(self, team_id: str) -> dict[str, Any]:
        real_name = self.real_name or self.name.title()
        return {
            "id": self.id,
            "team_id": team_id,
            "name": self.name,
            "deleted": self.deleted,
            "real_name": real_name,
            "tz": self.tz,
            "tz_label": "Central European Time",
            "tz_offset": 3600,
            "is_admin": self.is_admin,
            "is_owner": False,
            "is_primary_owner": False,
            "is_bot": self.is_bot,
            "is_restricted": self.is_restricted,
            "is_ultra_restricted": self.is_ultra_restricted,
            "is_app_user": False,
            "updated": 1716900000,
            "profile": {
                "display_name": self.name,
                "real_name": real_name,
                "email": self.email or f"{self.name}@example.invalid",
                "team": team_id,
            },
        }


@dataclass
class Channel:
    id: str
    name: str
    is_private: bool = False
    topic: str = ""
    purpose: str = ""

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "is_channel": not self.is_private,
            "is_group": self.is_private,
            "is_private": self.is_private,
            "is_im": False,
            "is_mpim": False,
            "is_archived": False,
            "is_general": False,
            "is_member": True,
            "is_ext_shared": False,
            "is_shared": False,
            "created": 1716800000,
            "creator": "U0ADMIN",
            "name_normalized": self.name,
            "topic": {"value": self.topic, "creator": "", "last_set": 0},
            "purpose": {"value": self.purpose, "creator": "", "last_set": 0},
        }


@dataclass
class Usergroup:
    id: str
    handle: str
    members: list[str] = field(default_factory=list)

    def to_api(self, team_id: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "team_id": team_id,
            "is_usergroup": True,
            "name": self.handle,
            "handle": self.handle,
            "description": "",
            "user_count": len(self.members),
            "users": list(self.members),
        }


@dataclass
class Workspace:
    team_id: str
    team_domain: str
    app_id: str
    bot_user_id: str
    bot_id: str
    bot_name: str
    bot_token: str
    app_token: str
    scopes: tuple[str, ...]
    users: dict[str, User]
    channels: dict[str, Channel]
    usergroups: dict[str, Usergroup]

    @property
    def team_name(self) -> str:
        return f"{self.team_domain} workspace"

    def channel(self, ref: str) -> Channel | None:
        """Find a channel by id, name or ``#name``."""
        if ref in self.channels:
            return self.channels[ref]
        name = ref.removeprefix("#")
        return next((c for c in self.channels.values() if c.name == name), None)

    def user_name(self, user_id: str) -> str:
        user = self.users.get(user_id)
        return user.name if user else user_id

    def humans(self) -> list[User]:
        return [u for u in self.users.values() if not u.is_bot]

    def groups_of(self, user_id: str) -> list[Usergroup]:
        return [g for g in self.usergroups.values() if user_id in g.members]

    def encode_mentions(self, text: str) -> str:
        """What Slack's composer does: ``@alice`` → ``<@U0ALICE>``, ``@oncall`` → subteam."""

        def repl(match: re.Match[str]) -> str:
            name = match.group(1)
            for user in self.users.values():
                if user.name == name:
                    return f"<@{user.id}>"
            for group in self.usergroups.values():
                if group.handle == name:
                    return f"<!subteam^{group.id}>"
            if name in ("here", "channel", "everyone"):
                return f"<!{name}>"
            return match.group(0)

        return _MENTION.sub(repl, text)


def build_users(users: Mapping[str, str | Mapping[str, Any]]) -> dict[str, User]:
    """Accept ``{"U1": "alice"}`` or ``{"U1": {"name": "alice", "is_admin": True, ...}}``."""
    built: dict[str, User] = {}
    for user_id, spec in users.items():
        if isinstance(spec, str):
            built[user_id] = User(id=user_id, name=spec)
        else:
            built[user_id] = User(id=user_id, **dict(spec))
    return built


def build_channels(channels: Mapping[str, str | Mapping[str, Any]]) -> dict[str, Channel]:
    built: dict[str, Channel] = {}
    for channel_id, spec in channels.items():
        if isinstance(spec, str):
            built[channel_id] = Channel(id=channel_id, name=spec)
        else:
            built[channel_id] = Channel(id=channel_id, **dict(spec))
    return built


def build_usergroups(
    groups: Mapping[str, Sequence[str]], handles: Mapping[str, str] | None = None
) -> dict[str, Usergroup]:
    handles = handles or {}
    built: dict[str, Usergroup] = {}
    for group_id, members in groups.items():
        default_handle = group_id.removeprefix("S0").lower() or group_id.lower()
        built[group_id] = Usergroup(
            id=group_id, handle=handles.get(group_id, default_handle), members=list(members)
        )
    return built
