"""The writing side of the outbox: the messages one event becomes (`Batch`), queued in one
transaction by `SlackOutbox.send`, with the move of the Slack deliverer's cursor past that
event. The delivering side (`bot.outbox.Deliverer`) sends them.

Payloads: `{"op": "post", "channel", "owner"?, "thread"?, "text", "blocks", "plain"}` posts a
message (`owner` records it as that incident's or proposal's own, `thread` posts it in the
thread of that record's message); `{"op": "update", "target", "channel", "text", "blocks",
"plain"}` edits the message `target` owns. Items with the same key (one per incident, or per
proposal without an incident) are delivered in order.
"""

from __future__ import annotations

from collections.abc import Callable

from bot.render.kit import Rendered
from engine.model import DEFAULT_CLUSTER, JsonDict, OwnerKind
from engine.ports import Clock, Outbox

KIND = "slack"


def key_for_incident(incident_id: str) -> str:
    return f"incident:{incident_id}"


def key_for_proposal(proposal_id: str, incident_id: str | None) -> str:
    """Proposals of an incident share its key (their messages live in its thread)."""
    return key_for_incident(incident_id) if incident_id else f"proposal:{proposal_id}"


def owner(kind: OwnerKind, owner_id: str) -> JsonDict:
    return {"kind": kind.value, "id": owner_id}


class Batch:
    """The messages of one notification (e.g. a proposal's edited message and the outcome
    reply in its thread), queued together by `SlackOutbox.send`; `cluster` is the cluster they
    are about (each outbox row records it)."""

    def __init__(self, cluster: str = DEFAULT_CLUSTER) -> None:
        self.items: list[tuple[str, JsonDict]] = []
        self.cluster = cluster

    def post(
        self,
        key: str,
        message: Rendered,
        *,
        channel: str,
        owned_by: JsonDict | None = None,
        thread_of: JsonDict | None = None,
    ) -> None:
        """Post `message`; `owned_by` records it as that record's own message, `thread_of`
        posts it in the thread of that record's message."""
        payload: JsonDict = {
            "op": "post",
            "channel": channel,
            "owner": owned_by,
            "thread": thread_of,
            **_content(message),
        }
        self.items.append((key, payload))

    def update(self, key: str, message: Rendered, *, target: JsonDict, channel: str) -> None:
        """Edit the message `target` owns; if it never gets posted, post this version to
        `channel` instead."""
        payload: JsonDict = {
            "op": "update",
            "target": target,
            "channel": channel,
            **_content(message),
        }
        self.items.append((key, payload))


class SlackOutbox:
    """The writing side: what the notifier calls. `wake` tells the deliverer there is work."""

    def __init__(
        self, outbox: Outbox, clock: Clock, *, wake: Callable[[], None] | None = None
    ) -> None:
        self._outbox = outbox
        self._clock = clock
        self._wake = wake

    async def send(self, batch: Batch, *, consumed: tuple[str, int] | None = None) -> bool:
        """Queue `batch` in one transaction. With `consumed` (deliverer, event seq: the event
        the batch renders), move that deliverer's cursor to the event in the same transaction,
        and queue nothing if it was there already; returns False then."""
        if not batch.items and consumed is None:
            return True
        return await self._queue(batch, consumed) is not None

    async def _queue(self, batch: Batch, consumed: tuple[str, int] | None) -> list[int] | None:
        ids = await self._outbox.enqueue_batch(
            KIND, batch.items, now=self._clock.now(), consumed=consumed, cluster=batch.cluster
        )
        if ids and self._wake is not None:
            self._wake()
        return ids

    async def post(
        self,
        key: str,
        message: Rendered,
        *,
        channel: str,
        owned_by: JsonDict | None = None,
        thread_of: JsonDict | None = None,
        cluster: str = DEFAULT_CLUSTER,
    ) -> int:
        """Queue one post (no mark) about `cluster`; returns the outbox item's ID."""
        batch = Batch(cluster)
        batch.post(key, message, channel=channel, owned_by=owned_by, thread_of=thread_of)
        return await self._single(batch)

    async def update(
        self,
        key: str,
        message: Rendered,
        *,
        target: JsonDict,
        channel: str,
        cluster: str = DEFAULT_CLUSTER,
    ) -> int:
        """Queue one edit (no mark) about `cluster`; returns the outbox item's ID."""
        batch = Batch(cluster)
        batch.update(key, message, target=target, channel=channel)
        return await self._single(batch)

    async def _single(self, batch: Batch) -> int:
        ids = await self._queue(batch, None)
        assert ids, "an unmarked batch is always queued"
        return ids[0]


def _content(message: Rendered) -> JsonDict:
    return {"text": message.text, "blocks": message.blocks, "plain": message.plain}


__all__ = ["KIND", "Batch", "SlackOutbox", "key_for_incident", "key_for_proposal", "owner"]
