"""Pure rendering: engine records (and `now`) in, Block Kit dicts out. No I/O, no clock reads, no
settings. Built with slack_sdk's block models (validated when turned into dicts); the limits
slack_sdk does not check are enforced in `bot.render.limits`.

- `incident`: the incident's parent message and its thread replies;
- `diagnosis`: the diagnosis reply;
- `proposal`: the proposal message in every state, the dry-run answer, reminders;
- `execution`: started, progress and outcome replies (with Undo);
- `views`: ephemeral answers to `/tikv` (read views, refusals, confirmations);
- `kit` / `fmt` / `action` / `limits`: builders, formatting, actions in words, Slack limits.
"""

from bot.render.kit import Rendered

__all__ = ["Rendered"]
