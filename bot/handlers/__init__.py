"""Listeners: `commands` (`/tikv`), `actions` (Approve, Reject and its modal, Undo), `events`
(mentions). Each module has `register(app, deps)`; every listener acks first and hands the work
to `BotDeps.tasks`."""
