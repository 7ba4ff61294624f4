"""Identifier and timestamp factories: message ts strings that strictly increase, envelope ids,
trigger ids, tickets and other opaque ids shaped like Slack's.
"""

from __future__ import annotations

import secrets
import string
import time
import uuid

_ALNUM = string.ascii_uppercase + string.digits


def format_ts(micros: int) -> str:
    """Render microseconds since the epoch as a Slack ts: ``"<secs>.<6 digits>"``."""
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


def parse_ts(ts: str) -> int:
    """Inverse of :func:`format_ts`; raises ValueError on anything that is not a Slack ts."""
    secs, _, frac = ts.partition(".")
    if not secs.isdigit() or not frac.isdigit() or len(frac) != 6:
        raise ValueError(f"not a Slack ts: {ts!r}")
    return int(secs) * 1_000_000 + int(frac)


class TsClock:
    """Hands out message timestamps from the wall clock, strictly increasing across calls."""

    def __init__(self) -> None:
        self._last = 0

    def next_ts(self) -> str:
        now = time.time_ns() // 1000
        self._last = max(now, self._last + 1)
        return format_ts(self._last)


def envelope_id() -> str:
    return str(uuid.uuid4())


def random_id(prefix: str, length: int = 10) -> str:
    """An id such as ``V0A1B2C3D4`` (prefix + uppercase letters and digits)."""
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(length))


def trigger_id() -> str:
    return f"{int(time.time())}.{secrets.randbelow(10**12)}.{secrets.token_hex(16)}"


def token(nbytes: int = 12) -> str:
    return secrets.token_urlsafe(nbytes)
