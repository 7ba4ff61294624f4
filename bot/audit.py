"""Audit records of refusals decided at the Slack edge (the engine audits its own): commands
from a channel that does not take them, buttons that are not ours, accounts that may not act."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from bot import payload
from engine.errors import EngineError
from engine.model import DEFAULT_CLUSTER, AuditEvent, AuditOutcome, Identity, JsonDict
from engine.ports import AuditLog, Clock

logger = logging.getLogger(__name__)


async def audit_refusal(
    audit: AuditLog,
    clock: Clock,
    body: Mapping[str, Any],
    *,
    action: str,
    reason: str,
    detail: JsonDict | None = None,
    subject: str = "engine",
    cluster: str = DEFAULT_CLUSTER,
) -> None:
    """Append `<action>` (outcome refused) for the user of `body`, about `cluster` (see
    `BotDeps.cluster_of`); never raises."""
    user = payload.user_id(body) or "unknown"
    event = AuditEvent(
        at=clock.now(),
        actor=Identity.slack(user, name=payload.user_name(body)),
        action=action,
        subject=subject,
        detail={"channel": payload.channel_id(body), **(detail or {})},
        outcome=AuditOutcome.REFUSED,
        reason=reason,
        cluster=cluster,
    )
    try:
        await audit.append(event)
    except EngineError:
        logger.exception("could not audit the refusal %s", action)


__all__ = ["audit_refusal"]
