"""The Slack edge of tikvops: a slack-bolt `AsyncApp` over Socket Mode, pure Block Kit
rendering (`bot.render`), the handlers of `/tikv` and the buttons, the Slack deliverer of the
event log (`SlackNotifier`), and the outbox that delivers every message until Slack accepts it.

Entry points for the composition root:

- `BotConfig`: plain configuration values (tokens, Web API URL, app/team, channels, timings);
- `SlackBot`: the running bot (`start()` / `stop()`), given the engine, the repositories, the
  clock and the policy; it renders the event log to Slack itself (`SlackNotifier`);
- `SlackStartError`: raised by `SlackBot.start()` when Slack refuses a token.
"""

from bot.app import SlackBot, approver_groups, build_app
from bot.config import BotConfig
from bot.errors import BotError, SlackStartError
from bot.notifier import SlackNotifier
from bot.outbox import Deliverer
from bot.queue import SlackOutbox
from bot.retry import Backoff, DeliveryHooks

__all__ = [
    "Backoff",
    "BotConfig",
    "BotError",
    "Deliverer",
    "DeliveryHooks",
    "SlackBot",
    "SlackNotifier",
    "SlackOutbox",
    "SlackStartError",
    "approver_groups",
    "build_app",
]
