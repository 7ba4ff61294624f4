"""`handle_text`: a command typed as words, handled by an engine (parsed with the grammar, the
program name chosen by the actor, as the CLI and the Slack handlers do before calling
`Engine.handle`)."""

from __future__ import annotations

from collections.abc import Sequence

from engine.commands import parse_command
from engine.model import Identity
from engine.results import Outcome
from engine.service import Engine, prog_for


async def handle_text(
    engine: Engine, text: str | Sequence[str], actor: Identity, *, request_id: str | None = None
) -> Outcome:
    return await engine.handle(
        parse_command(text, prog=prog_for(actor)), actor, request_id=request_id
    )
