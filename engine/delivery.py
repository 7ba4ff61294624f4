"""The delivery records: the chat message an incident or a proposal owns, and the outbox of
messages waiting to be delivered (re-exported by `engine.model`)."""

from __future__ import annotations

from enum import StrEnum

from engine.records import DEFAULT_CLUSTER, JsonDict, Record, UtcDatetime

# --------------------------------------------------------------------------- message refs


class OwnerKind(StrEnum):
    INCIDENT = "incident"
    PROPOSAL = "proposal"


class MessageRef(Record):
    """The chat message an incident or a proposal owns (Slack: channel ID and message ts;
    `thread_ts` when the message lives in a thread)."""

    owner_kind: OwnerKind
    owner_id: str
    channel: str
    ts: str
    thread_ts: str | None = None


# --------------------------------------------------------------------------- outbox


class OutboxStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"  # given up after too many attempts


class OutboxItem(Record):
    """A message waiting to be delivered (e.g. a Slack post), retried until delivered.
    Items with the same `key` are delivered in order."""

    id: int
    kind: str
    key: str
    payload: JsonDict
    status: OutboxStatus = OutboxStatus.PENDING
    attempts: int = 0
    created_at: UtcDatetime
    next_attempt_at: UtcDatetime
    last_error: str | None = None
    delivered_at: UtcDatetime | None = None
    result: JsonDict | None = None
    cluster: str = DEFAULT_CLUSTER
    """The cluster the message is about (`default` with one cluster)."""


__all__ = ["MessageRef", "OutboxItem", "OutboxStatus", "OwnerKind"]
