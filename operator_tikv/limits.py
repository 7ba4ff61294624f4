"""Bounds on what the bot accepts from a peer: the size of an answer's body.

A PD, a Prometheus or a TiKV status port behind a misbehaving proxy can answer with a body of
any size. `read_capped` reads a streamed `httpx.Response` chunk by chunk and stops as soon as
the body passes the limit (or at once when `Content-Length` already says it will), so the bot
never buffers more than the limit plus one chunk. The caller turns `BodyTooLarge` into its own
error type (`PDResponseTooLargeError`, `PrometheusProtocolError`, a failed scrape).

Deadlines are the callers' business (`asyncio.timeout` around the whole call), because only
they know how long the answer may take; this module only says how big it may be.
"""

from __future__ import annotations

import httpx

MIB = 1024 * 1024


def human_size(size: int) -> str:
    """`16 MiB`, `512 KiB`, `300 bytes`."""
    if size >= MIB and size % MIB == 0:
        return f"{size // MIB} MiB"
    if size >= MIB:
        return f"{size / MIB:.1f} MiB"
    if size >= 1024:
        return f"{size // 1024} KiB"
    return f"{size} bytes"


class BodyTooLarge(Exception):
    """An answer's body is larger than `limit` bytes; the rest of it was not read.

    `declared` is the `Content-Length` when the peer announced the size, `received` how many
    bytes had been read when reading stopped."""

    def __init__(self, limit: int, *, declared: int | None = None, received: int = 0) -> None:
        self.limit = limit
        self.declared = declared
        self.received = received
        if declared is not None:
            seen = f"it announced {human_size(declared)} (Content-Length)"
        else:
            seen = f"more than {human_size(received)} had arrived when the bot stopped reading"
        super().__init__(f"the answer is larger than the {human_size(limit)} accepted: {seen}")


def declared_length(headers: httpx.Headers) -> int | None:
    """The `Content-Length` as a number, or None when absent or unreadable."""
    raw = headers.get("content-length")
    if raw is None or not raw.strip().isdigit():
        return None
    return int(raw.strip())


async def read_capped(response: httpx.Response, limit: int) -> bytes:
    """The (decoded) body of a streamed response, or `BodyTooLarge` once it passes `limit`.

    The response must have been opened with `stream=True` (or `AsyncClient.stream`); the
    caller closes it. Decoded bytes are counted, so a compressed answer cannot expand past the
    limit either."""
    declared = declared_length(response.headers)
    if declared is not None and declared > limit:
        raise BodyTooLarge(limit, declared=declared)
    chunks: list[bytes] = []
    received = 0
    async for chunk in response.aiter_bytes():
        received += len(chunk)
        if received > limit:
            raise BodyTooLarge(limit, received=received)
        chunks.append(chunk)
    return b"".join(chunks)


__all__ = ["MIB", "BodyTooLarge", "declared_length", "human_size", "read_capped"]
