"""SlackFake: the local Slack stand-in that the real slack_bolt/slack_sdk talk to.

One aiohttp application on loopback serving the Web API (``/api/{method}``), Socket Mode
(``GET /link/``), response_url endpoints (``/commands/…``, ``/actions/…``) and the web page
(``/``, ``/ui/…``). Tests and the demo drive it through the methods below: send slash commands
and clicks as a user, inspect messages and recorded calls, and inject faults.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from types import TracebackType
from typing import Any

from aiohttp import web

from slackfake import ids, payloads
from slackfake.errors import AckTimeout, UnknownAction, UnknownMessage, UnknownView
from slackfake.faults import Faults
from slackfake.home import app_home_opened, home_container
from slackfake.modals import Modals, View
from slackfake.records import Ack, ApiCall, Delivery, ResponsePost
from slackfake.responses import ResponseTarget, ResponseUrls
from slackfake.socketmode import SocketHub
from slackfake.store import Ephemeral, Message, MessageStore
from slackfake.ui import PageRoutes
from slackfake.webapi import WebApi
from slackfake.workspace import (
    DEFAULT_SCOPES,
    Channel,
    User,
    Workspace,
    build_channels,
    build_usergroups,
    build_users,
)

log = logging.getLogger(__name__)

DEFAULT_CHANNELS: dict[str, str] = {"C0OPS": "tikv-ops"}
DEFAULT_USERS: dict[str, str] = {"U0ALICE": "alice", "U0BOB": "bob"}
DEFAULT_USERGROUPS: dict[str, list[str]] = {"S0ONCALL": ["U0ALICE"]}
SLACK_ACK_TIMEOUT = 3.0


class SlackFake:
    """A fake Slack workspace with one app installed, listening on loopback."""

    def __init__(
        self,
        *,
        bot_token: str = "xoxb-test",  # noqa: S107 - the fake's own test token
        app_token: str = "xapp-1-A0TIKVOPS-1-test",  # noqa: S107 - the fake's own test token
        team_id: str = "T0TIKV",
        app_id: str = "A0TIKVOPS",
        channels: Mapping[str, str | Mapping[str, Any]] | None = None,
        users: Mapping[str, str | Mapping[str, Any]] | None = None,
        usergroups: Mapping[str, Sequence[str]] | None = None,
        usergroup_handles: Mapping[str, str] | None = None,
        team_domain: str = "tikvops-dev",
        bot_user_id: str = "U0TIKVBOT",
        bot_id: str = "B0TIKVBOT",
        bot_name: str = "tikv-ops",
        scopes: Sequence[str] = DEFAULT_SCOPES,
        ack_timeout: float = SLACK_ACK_TIMEOUT,
        connect_timeout: float = 15.0,
        trigger_ttl: float = 3.0,
        event_retries: int = 0,
    ) -> None:
        if not bot_token.startswith("xoxb-"):
            raise ValueError("bot_token must start with xoxb- (Bolt treats only those as bots)")
        if not app_token.startswith("xapp-"):
            raise ValueError("app_token must start with xapp-")
        user_map = build_users(DEFAULT_USERS if users is None else users)
        user_map.setdefault(bot_user_id, User(id=bot_user_id, name=bot_name, is_bot=True))
        self.workspace = Workspace(
            team_id=team_id,
            team_domain=team_domain,
            app_id=app_id,
            bot_user_id=bot_user_id,
            bot_id=bot_id,
            bot_name=bot_name,
            bot_token=bot_token,
            app_token=app_token,
            scopes=tuple(scopes),
            users=user_map,
            channels=build_channels(DEFAULT_CHANNELS if channels is None else channels),
            usergroups=build_usergroups(
                DEFAULT_USERGROUPS if usergroups is None else usergroups, usergroup_handles
            ),
        )
        if not self.workspace.channels:
            raise ValueError("at least one channel is needed")
        self.ack_timeout = ack_timeout
        self.connect_timeout = connect_timeout
        self.store = MessageStore(ids.TsClock())
        self.hub = SocketHub(app_id)
        if event_retries < 0:
            raise ValueError("event_retries must be 0 or more")
        self.hub.event_retries = event_retries
        self.faults = Faults(drop_sockets=self.hub.drop_all)
        self.hub.faults = self.faults
        self.modals = Modals(trigger_ttl=trigger_ttl, team_id=team_id, app_id=app_id, bot_id=bot_id)
        self.responses = ResponseUrls(self.store, self.workspace)
        self.api = WebApi(
            workspace=self.workspace,
            store=self.store,
            faults=self.faults,
            hub=self.hub,
            modals=self.modals,
            ws_url=self._ws_url,
            page_url=lambda: self.page_url,
        )
        self.host = "127.0.0.1"
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._background: set[asyncio.Task[Any]] = set()

    # ----- lifecycle -------------------------------------------------------------------
    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self.api.handle)
        app.router.add_get("/link/", self.hub.handle)
        app.router.add_get("/link", self.hub.handle)
        app.router.add_post("/commands/{tail:.+}", self.responses.handle)
        app.router.add_post("/actions/{tail:.+}", self.responses.handle)
        app.router.add_post("/upload/v1/{upload_id}", self.api.files.handle_upload)
        app.router.add_get("/files/{file_id}/{name}", self.api.files.serve)
        app.router.add_get("/health", _health)
        app.router.add_get("/favicon.ico", _no_icon)
        PageRoutes(self).register(app)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen on ``host:port`` (port 0 = any free port; see ``port`` afterwards). A stopped
        fake can be started again (same port: Slack back after an outage); it keeps its
        messages."""
        if self._runner is not None:
            raise RuntimeError("SlackFake is already started")
        self.api.stopping.clear()
        runner = web.AppRunner(self.build_app(), handle_signals=False, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port, shutdown_timeout=1.0)
        await site.start()
        self._runner = runner
        self.host = host
        address = runner.addresses[0]
        self.port = int(address[1])
        log.info("slackfake listening on %s", self.page_url)

    async def stop(self) -> None:
        """Close sockets and the HTTP server. Safe to call twice."""
        if self._runner is None:
            return
        self.api.stopping.set()
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.hub.shutdown()
        await self._runner.cleanup()
        self._runner = None

    async def __aenter__(self) -> SlackFake:
        if self._runner is None:
            await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def _public_host(self) -> str:
        return "127.0.0.1" if self.host in ("0.0.0.0", "", "::") else self.host  # noqa: S104

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash)."""
        return f"http://{self._public_host}:{self.port}"

    @property
    def api_url(self) -> str:
        """Web API base URL for ``AsyncWebClient(base_url=...)``."""
        return f"{self.base_url}/api/"

    @property
    def page_url(self) -> str:
        return f"{self.base_url}/"

    def _ws_url(self, ticket: str) -> str:
        return f"ws://{self._public_host}:{self.port}/link/?ticket={ticket}&app_id={self.workspace.app_id}"

    # ----- the cast --------------------------------------------------------------------
    @property
    def bot_user_id(self) -> str:
        return self.workspace.bot_user_id

    def default_channel(self) -> str:
        return next(iter(self.workspace.channels))

    def _channel(self, ref: str | None) -> Channel:
        channel = self.workspace.channel(ref or self.default_channel())
        if channel is None:
            raise ValueError(f"unknown channel {ref!r}; known: {sorted(self.workspace.channels)}")
        return channel

    def _user(self, user_id: str) -> User:
        user = self.workspace.users.get(user_id)
        if user is None:
            raise ValueError(f"unknown user {user_id!r}; known: {sorted(self.workspace.users)}")
        return user

    # ----- acting as users -------------------------------------------------------------
    async def slash_command(
        self,
        *,
        user: str,
        text: str = "",
        channel: str | None = None,
        command: str = "/tikv",
        ack_timeout: float | None = None,
        via: int | None = None,
    ) -> Ack:
        """``user`` types ``{command} {text}`` in ``channel``. Waits for the ack (3 s) and
        returns it; an ack payload with text/blocks is shown like Slack does (ephemeral unless
        ``response_type`` is ``in_channel``). Raises AckTimeout when the app does not ack."""
        ch = self._channel(channel)
        who = self._user(user)
        target = ResponseTarget("commands", ch.id, who.id)
        payload = payloads.slash_command(
            team_id=self.workspace.team_id,
            team_domain=self.workspace.team_domain,
            app_id=self.workspace.app_id,
            channel_id=ch.id,
            channel_name=ch.name,
            user_id=who.id,
            user_name=who.name,
            command=command,
            text=text,
            response_url=self.responses.issue(self.base_url, target),
            trigger_id=self.modals.issue_trigger(who.id, ch.id),
        )
        envelope = payloads.envelope(
            "slash_commands", payload, envelope_id=ids.envelope_id(), accepts_response_payload=True
        )
        try:
            ack = await self.push(envelope, ack_timeout=ack_timeout, via=via)
        except AckTimeout:
            self._notice(who.id, ch.id, f'{command} failed with the error "operation_timeout"')
            raise
        if ack.get("text") or ack.get("blocks"):
            result = self.responses.apply(target, dict(ack), source="ack")
            if result.status != 200:
                self._notice(who.id, ch.id, f'{command} failed with the error "{result.outcome}"')
        return ack

    async def click(
        self,
        *,
        user: str,
        message_ts: str,
        action_id: str,
        channel: str | None = None,
        value: str | None = None,
        block_id: str | None = None,
        ack_timeout: float | None = None,
        via: int | None = None,
    ) -> Ack:
        """``user`` clicks the element ``action_id`` of the message (or of the user's ephemeral
        message) ``message_ts``. The block_actions payload is built from the stored message;
        ``value`` overrides the button's value (or picks a select option). Elements of earlier
        versions of an edited message can be clicked too (a stale client). Returns the ack."""
        ch = self._channel(channel)
        who = self._user(user)
        eph = self.store.ephemeral(who.id, message_ts)
        message: dict[str, Any] | None
        if eph is not None and eph.channel == ch.id:
            versions = [eph.blocks, *[r.blocks for r in reversed(eph.edits)]]
            message, thread_ts, is_ephemeral = None, eph.thread_ts, True
        else:
            msg = self.store.get(ch.id, message_ts)
            if msg is None or msg.deleted:
                raise UnknownMessage(
                    f"no message {message_ts} in {ch.id} (or ephemeral for {user})"
                )
            versions = [msg.blocks, *[r.blocks for r in reversed(msg.edits)]]
            message = msg.to_api()
            thread_ts = msg.thread_ts if msg.is_reply else None
            is_ephemeral = False
        element, found_block_id = _find_element(versions, action_id, block_id)
        target = ResponseTarget("actions", ch.id, who.id, message_ts, is_ephemeral, thread_ts)
        payload = payloads.block_actions(
            team_id=self.workspace.team_id,
            team_domain=self.workspace.team_domain,
            app_id=self.workspace.app_id,
            user_id=who.id,
            user_name=who.name,
            channel_id=ch.id,
            channel_name=ch.name,
            container=payloads.message_container(
                ch.id, message_ts, is_ephemeral=is_ephemeral, thread_ts=thread_ts
            ),
            message=message,
            action=payloads.action_from_element(
                element, block_id=found_block_id, action_ts=self.store.next_ts(), value=value
            ),
            response_url=self.responses.issue(self.base_url, target),
            trigger_id=self.modals.issue_trigger(who.id, ch.id),
        )
        envelope = payloads.envelope(
            "interactive", payload, envelope_id=ids.envelope_id(), accepts_response_payload=False
        )
        try:
            return await self.push(envelope, ack_timeout=ack_timeout, via=via)
        except AckTimeout:
            self._notice(
                who.id,
                ch.id,
                f"{self.workspace.bot_name} did not respond to your click in time "
                '(error "operation_timeout"). Try again in a moment.',
                thread_ts=thread_ts,
            )
            raise

    async def user_message(
        self,
        *,
        user: str,
        text: str,
        channel: str | None = None,
        thread_ts: str | None = None,
        ack_timeout: float | None = None,
        wait_for_ack: bool = True,
    ) -> Message:
        """``user`` posts a plain message; if it mentions the bot (``<@U0TIKVBOT>``) the app
        gets an ``app_mention`` event. With ``wait_for_ack`` (default) this waits for the ack
        and raises AckTimeout; otherwise the event is delivered in the background, as Slack
        does (the message is posted whatever the app does)."""
        ch = self._channel(channel)
        who = self._user(user)
        if thread_ts is not None:
            parent = self.store.get(ch.id, thread_ts)
            if parent is None:
                raise UnknownMessage(f"no message {thread_ts} in {ch.id} to reply to")
            thread_ts = parent.thread_ts if parent.is_reply and parent.thread_ts else parent.ts
        msg = self.store.post(
            ch.id,
            text=text,
            blocks=[],
            user=who.id,
            team=self.workspace.team_id,
            thread_ts=thread_ts,
        )
        if f"<@{self.workspace.bot_user_id}>" in text:
            event = payloads.app_mention(
                user_id=who.id,
                text=text,
                ts=msg.ts,
                channel_id=ch.id,
                team_id=self.workspace.team_id,
                thread_ts=thread_ts,
            )
            if wait_for_ack:
                await self.push_event(event, ack_timeout=ack_timeout)
            else:
                self._spawn(self.push_event(event, ack_timeout=ack_timeout), "app_mention")
        return msg

    async def push_event(
        self, event: dict[str, Any], *, ack_timeout: float | None = None, via: int | None = None
    ) -> Ack:
        """Deliver an Events API event (wrapped in ``event_callback``) and wait for the ack
        (redelivered ``event_retries`` times when none comes)."""
        outer = payloads.event_callback(
            event,
            team_id=self.workspace.team_id,
            app_id=self.workspace.app_id,
            bot_user_id=self.workspace.bot_user_id,
            event_id=ids.random_id("Ev0"),
            event_time=int(time.time()),
        )
        envelope = payloads.envelope(
            "events_api", outer, envelope_id=ids.envelope_id(), accepts_response_payload=False
        )
        return await self.push(envelope, ack_timeout=ack_timeout, via=via)

    # ----- App Home (slackfake.home) ---------------------------------------------------
    async def open_home(self, *, user: str, ack_timeout: float | None = None) -> Ack:
        """``user`` opens the app's Home tab: the app gets ``app_home_opened``."""
        who = self._user(user)
        self.api.homes.opened.append(who.id)
        event = app_home_opened(who.id, f"D0{who.id[1:]}", self.api.homes.get(who.id))
        return await self.push_event(event, ack_timeout=ack_timeout)

    def home(self, user: str) -> dict[str, Any] | None:
        """The home view last published for ``user`` (None: never published)."""
        view = self.api.homes.get(user)
        return view.body if view is not None else None

    async def click_home(
        self,
        *,
        user: str,
        action_id: str,
        block_id: str | None = None,
        value: str | None = None,
        ack_timeout: float | None = None,
    ) -> Ack:
        """``user`` clicks ``action_id`` in their Home tab (a ``view`` container)."""
        who = self._user(user)
        view = self.api.homes.get(who.id)
        if view is None:
            raise UnknownView(f"no home view published for {user}")
        element, found_block_id = _find_element(
            [view.body.get("blocks") or []], action_id, block_id
        )
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": payloads.user_object(who.id, who.name, self.workspace.team_id),
            "api_app_id": self.workspace.app_id,
            "token": payloads.LEGACY_VERIFICATION_TOKEN,
            "container": home_container(view),
            "trigger_id": self.modals.issue_trigger(who.id, None),
            "team": {"id": self.workspace.team_id, "domain": self.workspace.team_domain},
            "enterprise": None,
            "is_enterprise_install": False,
            "view": dict(view.body),
            "state": {"values": {}},
            "actions": [
                payloads.action_from_element(
                    element, block_id=found_block_id, action_ts=self.store.next_ts(), value=value
                )
            ],
        }
        return await self.push_interactive(payload, ack_timeout=ack_timeout)

    async def submit_view(
        self,
        *,
        user: str,
        view_id: str,
        values: Mapping[str, Any] | None = None,
        ack_timeout: float | None = None,
    ) -> Ack:
        """``user`` presses Submit on an open modal. ``values`` maps an input block_id (or
        action_id) to what was typed. The ack's ``response_action`` is applied."""
        view = self._open_view(user, view_id)
        body = dict(view.body)
        body["state"] = payloads.input_state(list(body.get("blocks") or []), dict(values or {}))
        who = self._user(user)
        payload = payloads.view_submission(
            team_id=self.workspace.team_id,
            team_domain=self.workspace.team_domain,
            app_id=self.workspace.app_id,
            bot_id=self.workspace.bot_id,
            user_id=who.id,
            user_name=who.name,
            view=body,
            trigger_id=self.modals.issue_trigger(who.id, None),
        )
        envelope = payloads.envelope(
            "interactive", payload, envelope_id=ids.envelope_id(), accepts_response_payload=True
        )
        ack = await self.push(envelope, ack_timeout=ack_timeout)
        action = ack.get("response_action")
        if action == "errors" and isinstance(ack.get("errors"), dict):
            self.modals.set_errors(view, {str(k): str(v) for k, v in ack["errors"].items()})
        elif action == "update" and isinstance(ack.get("view"), dict):
            self.modals.update(view, ack["view"], None)
        elif action == "push" and isinstance(ack.get("view"), dict):
            self.modals.open(who.id, ack["view"], previous=view.id)
        elif action == "clear":
            for open_view in self.modals.views(who.id):
                self.modals.close(open_view)
        else:
            self.modals.close(view)
        return ack

    async def close_view(
        self, *, user: str, view_id: str, ack_timeout: float | None = None
    ) -> None:
        """``user`` closes a modal; a ``view_closed`` payload is sent if it asked for one."""
        view = self._open_view(user, view_id)
        self.modals.close(view)
        if view.body.get("notify_on_close"):
            who = self._user(user)
            payload = {
                "type": "view_closed",
                "team": {"id": self.workspace.team_id, "domain": self.workspace.team_domain},
                "user": payloads.user_object(who.id, who.name, self.workspace.team_id),
                "api_app_id": self.workspace.app_id,
                "view": dict(view.body),
                "is_cleared": False,
                "is_enterprise_install": False,
            }
            envelope = payloads.envelope(
                "interactive",
                payload,
                envelope_id=ids.envelope_id(),
                accepts_response_payload=False,
            )
            await self.push(envelope, ack_timeout=ack_timeout)

    async def shortcut(
        self, *, user: str, callback_id: str, ack_timeout: float | None = None
    ) -> Ack:
        """``user`` runs the global shortcut ``callback_id`` (no channel, no response_url; the
        payload's trigger_id can open a modal). Returns the ack."""
        who = self._user(user)
        payload = payloads.shortcut(
            team_id=self.workspace.team_id,
            team_domain=self.workspace.team_domain,
            app_id=self.workspace.app_id,
            user_id=who.id,
            user_name=who.name,
            callback_id=callback_id,
            action_ts=self.store.next_ts(),
            trigger_id=self.modals.issue_trigger(who.id, None),
        )
        return await self.push_interactive(payload, ack_timeout=ack_timeout)

    async def message_shortcut(
        self,
        *,
        user: str,
        message_ts: str,
        callback_id: str,
        channel: str | None = None,
        ack_timeout: float | None = None,
    ) -> Ack:
        """``user`` runs the message shortcut ``callback_id`` on a stored message; its
        response_url shows answers to ``user`` in that channel. Returns the ack."""
        ch = self._channel(channel)
        who = self._user(user)
        msg = self.store.get(ch.id, message_ts)
        if msg is None or msg.deleted:
            raise UnknownMessage(f"no message {message_ts} in {ch.id}")
        payload = payloads.message_action(
            team_id=self.workspace.team_id,
            team_domain=self.workspace.team_domain,
            app_id=self.workspace.app_id,
            user_id=who.id,
            user_name=who.name,
            channel_id=ch.id,
            channel_name=ch.name,
            callback_id=callback_id,
            action_ts=self.store.next_ts(),
            message=msg.to_api(),
            response_url=self.response_url_for(user=who.id, channel=ch.id),
            trigger_id=self.modals.issue_trigger(who.id, ch.id),
        )
        return await self.push_interactive(payload, ack_timeout=ack_timeout)

    async def block_suggestion(
        self,
        *,
        user: str,
        action_id: str,
        value: str = "",
        block_id: str = "options",
        channel: str | None = None,
        ack_timeout: float | None = None,
    ) -> Ack:
        """``user`` types ``value`` into an external select ``action_id`` (in a message of
        ``channel``); the app's ack carries the options. Returns the ack."""
        ch = self._channel(channel)
        who = self._user(user)
        payload = payloads.block_suggestion(
            team_id=self.workspace.team_id,
            team_domain=self.workspace.team_domain,
            app_id=self.workspace.app_id,
            user_id=who.id,
            user_name=who.name,
            action_id=action_id,
            block_id=block_id,
            value=value,
            container=payloads.message_container(
                ch.id, self.store.next_ts(), is_ephemeral=False, thread_ts=None
            ),
        )
        return await self.push_interactive(payload, ack_timeout=ack_timeout)

    async def push_interactive(self, payload: Any, *, ack_timeout: float | None = None) -> Ack:
        """Deliver any payload (a dict, or anything else JSON can carry: a broken peer) in an
        ``interactive`` envelope and wait for the ack."""
        envelope = payloads.envelope(
            "interactive", payload, envelope_id=ids.envelope_id(), accepts_response_payload=True
        )
        return await self.push(envelope, ack_timeout=ack_timeout)

    def response_url_for(
        self, *, user: str, channel: str | None = None, kind: str = "actions"
    ) -> str:
        """A fresh response_url whose messages are shown to ``user`` in ``channel`` (for tests
        that build payloads themselves)."""
        ch = self._channel(channel)
        who = self._user(user)
        target = ResponseTarget("commands" if kind == "commands" else "actions", ch.id, who.id)
        return self.responses.issue(self.base_url, target)

    def trigger_for(self, *, user: str, channel: str | None = None) -> str:
        """A fresh trigger_id for ``user`` (valid for ``trigger_ttl`` s, once)."""
        return self.modals.issue_trigger(self._user(user).id, channel)

    def _open_view(self, user: str, view_id: str) -> View:
        view = self.modals.get(view_id)
        if view is None or view.closed or view.user != user:
            raise UnknownView(f"no open view {view_id} for {user}")
        return view

    # ----- Socket Mode control ---------------------------------------------------------
    async def push(
        self,
        envelope: dict[str, Any],
        *,
        ack_timeout: float | None = None,
        via: int | None = None,
    ) -> Ack:
        """Deliver a ready-made envelope to one connection (the next in turn, or connection
        ``via``) and wait for its ack (low level). Unacknowledged Events API envelopes are
        redelivered ``event_retries`` times, to another connection when there is one."""
        return await self.hub.push(
            envelope,
            ack_timeout=self.ack_timeout if ack_timeout is None else ack_timeout,
            connect_timeout=self.connect_timeout,
            via=via,
        )

    @property
    def event_retries(self) -> int:
        """How many times an unacknowledged Events API envelope is sent again (Slack: 3)."""
        return self.hub.event_retries

    @event_retries.setter
    def event_retries(self, value: int) -> None:
        if value < 0:
            raise ValueError("event_retries must be 0 or more")
        self.hub.event_retries = value

    def connection_ids(self) -> list[int]:
        """Ids of the connections that can take envelopes now, oldest first."""
        return [c.id for c in self.hub.usable()]

    def deliveries_by_connection(self) -> dict[int, int]:
        """How many envelope frames each connection was sent."""
        counts: dict[int, int] = {}
        for delivery in self.hub.deliveries:
            counts[delivery.connection_id] = counts.get(delivery.connection_id, 0) + 1
        return counts

    async def redeliver(
        self, envelope_id: str, *, reason: str = "timeout", ack_timeout: float | None = None
    ) -> Ack:
        """Send an envelope again with the same envelope_id (events get retry_attempt + 1)."""
        return await self.hub.redeliver(
            envelope_id,
            reason=reason,
            ack_timeout=self.ack_timeout if ack_timeout is None else ack_timeout,
            connect_timeout=self.connect_timeout,
        )

    async def disconnect(self, reason: str = "refresh_requested") -> int:
        """Send Slack's ``disconnect`` message (the client should reconnect)."""
        return await self.hub.disconnect(reason)

    async def close_sockets(self) -> int:
        """Close every socket from the server side with a close frame."""
        return await self.hub.close_all()

    async def wait_for_socket(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Wait until a Socket Mode client is connected and can take envelopes."""
        await self.hub.wait_for_connection(self.connect_timeout if timeout is None else timeout)

    @property
    def connections_opened(self) -> int:
        """How many times apps.connections.open succeeded."""
        return self.api.connections_opened

    @property
    def socket_connections(self) -> int:
        """How many websockets were accepted in total."""
        return self.hub.total_connections

    @property
    def active_sockets(self) -> int:
        return len(self.hub.active())

    @property
    def deliveries(self) -> list[Delivery]:
        return list(self.hub.deliveries)

    @property
    def acks(self) -> list[Ack]:
        return list(self.hub.acks)

    @property
    def ack_timeouts(self) -> list[str]:
        """Envelope ids that were not acknowledged in time (or whose ack was lost)."""
        return list(self.hub.timeouts)

    def acks_for(self, envelope_id: str) -> list[Ack]:
        return [a for a in self.hub.acks if a.envelope_id == envelope_id]

    # ----- inspection ------------------------------------------------------------------
    def messages(self, channel: str | None = None) -> list[Message]:
        """Top-level messages of a channel, oldest first (thread replies excluded)."""
        return [m for m in self.store.top_level(self._channel(channel).id) if not m.deleted]

    def thread(self, channel: str | None, ts: str) -> list[Message]:
        """Replies in the thread under ``ts``, oldest first (the parent excluded)."""
        return self.store.replies(self._channel(channel).id, ts)

    def message(self, channel: str | None, ts: str) -> Message | None:
        return self.store.get(self._channel(channel).id, ts)

    def ephemerals(self, user: str | None = None, channel: str | None = None) -> list[Ephemeral]:
        """Ephemeral messages the app sent (chat.postEphemeral, response_url, ack payloads)."""
        ch = self._channel(channel).id if channel else None
        return self.store.ephemerals(user=user, channel=ch)

    def notices(self, user: str | None = None) -> list[Ephemeral]:
        """Slackbot's own notes to users, e.g. '/tikv failed with the error "operation_timeout"'."""
        return [
            e for e in self.store.ephemerals(user, include_slackbot=True) if e.source == "slackbot"
        ]

    def views(self, user: str | None = None) -> list[View]:
        return self.modals.views(user)

    def calls(self, method: str | None = None) -> list[ApiCall]:
        """Recorded Web API calls (every request, including failed and faulted ones)."""
        return [c for c in self.api.calls if method is None or c.method == method]

    def response_posts(self, kind: str | None = None) -> list[ResponsePost]:
        """Recorded POSTs to response URLs (``kind`` is ``commands`` or ``actions``)."""
        return [p for p in self.responses.posts if kind is None or p.kind == kind]

    async def wait_for(
        self,
        predicate: Callable[[], Any],
        timeout: float = 5.0,  # noqa: ASYNC109 - agreed API
        interval: float = 0.02,
    ) -> Any:
        """Poll ``predicate`` until it returns something truthy and return that value."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            value = predicate()
            if inspect.isawaitable(value):
                value = await value
            if value:
                return value
            if loop.time() >= deadline:
                raise TimeoutError(f"condition not met within {timeout:g} s")
            await asyncio.sleep(interval)

    def _spawn(self, coro: Coroutine[Any, Any, Any], what: str) -> None:
        task = asyncio.create_task(coro, name=f"slackfake {what}")
        self._background.add(task)
        task.add_done_callback(self._reap)

    def _reap(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("%s failed: %s", task.get_name(), task.exception())

    def _notice(self, user: str, channel: str, text: str, thread_ts: str | None = None) -> None:
        self.store.post_ephemeral(
            channel,
            user,
            text=text,
            blocks=[],
            source="slackbot",
            thread_ts=thread_ts,
            author="USLACKBOT",
        )


def _find_element(
    versions: list[list[dict[str, Any]]], action_id: str, block_id: str | None
) -> tuple[dict[str, Any], str]:
    for blocks in versions:
        for block in blocks:
            bid = str(block.get("block_id", ""))
            if block_id is not None and bid != block_id:
                continue
            candidates: list[Any] = []
            if block.get("type") == "actions":
                candidates = list(block.get("elements") or [])
            elif block.get("type") == "section" and block.get("accessory"):
                candidates = [block["accessory"]]
            for element in candidates:
                if isinstance(element, dict) and element.get("action_id") == action_id:
                    return element, bid
    where = f" in block {block_id}" if block_id else ""
    raise UnknownAction(f"the message has no element with action_id {action_id!r}{where}")


async def _health(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def _no_icon(request: web.Request) -> web.Response:
    return web.Response(status=204)
