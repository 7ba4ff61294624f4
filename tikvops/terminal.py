"""What the terminal commands share in the foreground: an event set by SIGINT or SIGTERM, printing
one status line that never raises when the terminal or pipe has gone away (`tikvops run`,
`monitor`, `demo`), and the local operator's identity (the action and outbox commands)."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import signal
import socket
from typing import TextIO

from engine.model import Identity


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


def local_identity() -> Identity:
    """The local operator: `user@host`."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return Identity.cli(f"{user}@{socket.gethostname()}")


__all__ = ["local_identity", "say", "stop_on_signals"]
