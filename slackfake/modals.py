"""Trigger ids and modal views: ``views.open``/``views.update``/``views.push`` state, and what a
view looks like after a submission's ``response_action``.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any

from slackfake import ids
from slackfake.errors import ApiError


@dataclass
class Trigger:
    id: str
    user: str
    channel: str | None
    issued_at: float
    used: bool = False


@dataclass
class View:
    """An open (or closed) modal as Slack keeps it."""

    id: str
    user: str
    body: dict[str, Any]
    errors: dict[str, str] = field(default_factory=dict)
    closed: bool = False
    previous: str | None = None  # view underneath, for views.push


class Modals:
    """Trigger ids handed out with interactions, and the views opened with them."""

    def __init__(self, *, trigger_ttl: float, team_id: str, app_id: str, bot_id: str) -> None:
        self.trigger_ttl = trigger_ttl
        self.team_id = team_id
        self.app_id = app_id
        self.bot_id = bot_id
        self._triggers: dict[str, Trigger] = {}
        self._views: dict[str, View] = {}
        self.version = 0

    def issue_trigger(self, user: str, channel: str | None) -> str:
        trigger = Trigger(ids.trigger_id(), user, channel, time.monotonic())
        self._triggers[trigger.id] = trigger
        return trigger.id

    def consume_trigger(self, trigger_id: str) -> Trigger:
        trigger = self._triggers.get(trigger_id)
        if trigger is None:
            raise ApiError(
                "invalid_arguments", response_metadata={"messages": ["invalid `trigger_id`"]}
            )
        if trigger.used or time.monotonic() - trigger.issued_at > self.trigger_ttl:
            raise ApiError("expired_trigger_id")
        trigger.used = True
        return trigger

    def _body(self, view_id: str, spec: dict[str, Any], root: str | None) -> dict[str, Any]:
        body = copy.deepcopy(spec)
        body.update(
            id=view_id,
            team_id=self.team_id,
            state={"values": {}},
            hash=f"{int(time.time())}.{ids.token(6)}",
            root_view_id=root or view_id,
            previous_view_id=None,
            app_id=self.app_id,
            app_installed_team_id=self.team_id,
            bot_id=self.bot_id,
        )
        body.setdefault("private_metadata", "")
        body.setdefault("callback_id", "")
        body.setdefault("external_id", "")
        return body

    def open(self, user: str, spec: dict[str, Any], *, previous: str | None = None) -> View:
        view_id = ids.random_id("V0")
        root = self._views[previous].body["root_view_id"] if previous else None
        view = View(view_id, user, self._body(view_id, spec, root), previous=previous)
        self._views[view_id] = view
        self.version += 1
        return view

    def find(self, view_id: str | None, external_id: str | None) -> View:
        for view in self._views.values():
            if view_id and view.id == view_id:
                return view
            if external_id and view.body.get("external_id") == external_id:
                return view
        raise ApiError("not_found")

    def update(self, view: View, spec: dict[str, Any], hash_: str | None) -> View:
        if hash_ and hash_ != view.body.get("hash"):
            raise ApiError("hash_conflict")
        root = str(view.body.get("root_view_id") or view.id)
        view.body = self._body(view.id, spec, root)
        view.errors = {}
        self.version += 1
        return view

    def close(self, view: View) -> None:
        view.closed = True
        self.version += 1

    def set_errors(self, view: View, errors: dict[str, str]) -> None:
        view.errors = dict(errors)
        self.version += 1

    def get(self, view_id: str) -> View | None:
        return self._views.get(view_id)

    def views(self, user: str | None = None, *, include_closed: bool = False) -> list[View]:
        return [
            v
            for v in self._views.values()
            if (user is None or v.user == user) and (include_closed or not v.closed)
        ]
