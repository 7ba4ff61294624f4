"""What the long-running commands (`tikvops run`, `tikvops monitor`, `tikvops demo`) share in
the foreground: an event set by SIGINT or SIGTERM, and printing one status line that never
raises when the terminal or pipe has gone away."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import TextIO


def stop_on_signals() -> asyncio.Event:
    """An event set on SIGINT or SIGTERM (where the loop supports signal handlers). Call it
    inside the running loop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    return stop


def say(out: TextIO, line: str) -> None:
    """Print `line` and flush at once (a pipe or a test reads it immediately); a closed output
    is ignored."""
    with contextlib.suppress(OSError, ValueError):
        out.write(line + "\n")
        out.flush()


__all__ = ["say", "stop_on_signals"]
