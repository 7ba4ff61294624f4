"""Listeners: `commands` (`/tikv`), `actions` (Approve, Reject and its modal, Undo; each click
checked against its message by `origin`), `events` (mentions), and `unsupported` (everything
else: acked, and told "not supported" where Slack allows an answer). Each module has
`register(app, deps)`; every listener acks first and hands the work to `BotDeps.tasks`."""
