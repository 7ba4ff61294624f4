"""`python -m sim` as a child process for the command-line tests: start it, read its banner."""

from __future__ import annotations

import os
import subprocess
import sys
import time


def start_sim(*args: str) -> tuple[subprocess.Popen[str], list[str]]:
    """Start `python -m sim ARGS` and read its output up to "Press Ctrl-C" (30 s at most)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "sim", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.strip())
        if line.startswith("Press Ctrl-C"):
            break
    return proc, lines


def stop_sim(proc: subprocess.Popen[str]) -> None:
    """Kill it if it still runs; close its pipes."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()
