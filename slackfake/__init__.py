"""Local Slack stand-in: Web API, Socket Mode websocket, response_url endpoints and a web page.
Imports none of our packages.

Start one with ``SlackFake().start()`` (tests: the ``slack_fake`` fixture in tests/plugins/slack.py)
or ``python -m slackfake --port 3000``.
"""

from slackfake.errors import (
    AckTimeout,
    NoSocketConnection,
    SlackFakeError,
    UnknownAction,
    UnknownMessage,
    UnknownView,
)
from slackfake.records import Ack, ApiCall, Delivery, ResponsePost
from slackfake.server import SlackFake
from slackfake.store import Ephemeral, Message, Revision

__all__ = [
    "Ack",
    "AckTimeout",
    "ApiCall",
    "Delivery",
    "Ephemeral",
    "Message",
    "NoSocketConnection",
    "ResponsePost",
    "Revision",
    "SlackFake",
    "SlackFakeError",
    "UnknownAction",
    "UnknownMessage",
    "UnknownView",
]
