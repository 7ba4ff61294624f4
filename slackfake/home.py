"""App Home tabs: `views.publish` stores one `home` view per user (Slack's checks: a known
`user_id`, a view of type `home`, at most 100 valid blocks, an optional `hash` that must match
the current view's); the page shows it in its Home tab, opening that tab sends the app an
`app_home_opened` event, and clicks in it arrive as `block_actions` from a `view` container.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from slackfake import ids
from slackfake.errors import ApiError
from slackfake.limits import MAX_BLOCKS_VIEW, check_blocks
from slackfake.params import opt_json, opt_str

if TYPE_CHECKING:
    from slackfake.webapi import Params, WebApi


@dataclass
class HomeView:
    user: str
    body: dict[str, Any]
    published_at: float


class HomeTabs:
    """The published home view of each user."""

    def __init__(self) -> None:
        self.views: dict[str, HomeView] = {}
        self.opened: list[str] = []  # users, in the order they opened the tab
        self.version = 0

    def publish(
        self, user: str, spec: dict[str, Any], *, team_id: str, app_id: str, bot_id: str
    ) -> HomeView:
        current = self.views.get(user)
        view_id = current.body["id"] if current else ids.random_id("V0")
        body = copy.deepcopy(spec)
        body.update(
            id=view_id,
            team_id=team_id,
            state={"values": {}},
            hash=f"{int(time.time())}.{ids.token(6)}",
            root_view_id=view_id,
            previous_view_id=None,
            app_id=app_id,
            app_installed_team_id=team_id,
            bot_id=bot_id,
        )
        body.setdefault("private_metadata", "")
        body.setdefault("callback_id", "")
        body.setdefault("external_id", "")
        view = HomeView(user, body, time.time())
        self.views[user] = view
        self.version += 1
        return view

    def get(self, user: str) -> HomeView | None:
        return self.views.get(user)


def app_home_opened(user: str, channel: str, view: HomeView | None) -> dict[str, Any]:
    """The event Slack sends when `user` opens the app's Home tab."""
    event: dict[str, Any] = {
        "type": "app_home_opened",
        "user": user,
        "channel": channel,
        "tab": "home",
        "event_ts": f"{time.time():.6f}",
    }
    if view is not None:
        event["view"] = copy.deepcopy(view.body)
    return event


def home_container(view: HomeView) -> dict[str, Any]:
    return {"type": "view", "view_id": view.body["id"]}


async def views_publish(api: WebApi, params: Params, token: str) -> dict[str, Any]:
    user = opt_str(params, "user_id")
    if not user:
        raise ApiError("invalid_arguments", response_metadata={"messages": ["missing `user_id`"]})
    if user not in api.ws.users:
        raise ApiError("user_not_found")
    spec = opt_json(params, "view", "invalid_arguments")
    if not isinstance(spec, dict):
        raise ApiError("invalid_arguments", response_metadata={"messages": ["missing `view`"]})
    if spec.get("type") != "home":
        raise ApiError(
            "invalid_arguments",
            response_metadata={"messages": ["views.publish takes a view of type `home`"]},
        )
    errors = check_blocks(spec.get("blocks", []), max_blocks=MAX_BLOCKS_VIEW)
    if errors:
        raise ApiError(
            "invalid_arguments", response_metadata={"messages": [f"[ERROR] {e}" for e in errors]}
        )
    current = api.homes.get(user)
    wanted = opt_str(params, "hash")
    if wanted and current is not None and wanted != current.body.get("hash"):
        raise ApiError("hash_conflict")
    view = api.homes.publish(
        user, spec, team_id=api.ws.team_id, app_id=api.ws.app_id, bot_id=api.ws.bot_id
    )
    return {"ok": True, "view": copy.deepcopy(view.body)}


__all__ = ["HomeTabs", "HomeView", "app_home_opened", "home_container", "views_publish"]
