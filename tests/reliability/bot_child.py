"""`tikvops run` in a child process for the reliability tests (not a test module).

    python -m tests.reliability.bot_child

Runs `tikvops.commands.run.serve()` (the code behind `tikvops run`) with the settings from the
environment (`TIKVOPS_*`, `SLACK_*`), Slack timings shortened for tests, and verification polls
of 50 ms. Test hooks, also from the environment:

- `TIKVOPS_TEST_PAUSE_AT=<step>` with `TIKVOPS_TEST_MARKER=<file>`: the executor stops at that
  step (started, before_request, after_request, verifying), writes the marker file and waits
  (the hook of `tests.reliability.engine_child`), so the test can SIGKILL it exactly there;
- `TIKVOPS_TEST_AUTO_EXECUTE=0`: approved proposals are not executed (a crash right after an
  approval leaves that state);
- `TIKVOPS_TEST_OUTBOX_LEASE=<seconds>`: how long a replica's claim on an owed Slack message
  lasts (PostgreSQL; default 3 s, so a killed replica's messages move on soon);
- `TIKVOPS_TEST_TASKS_FILE=<file>`: the number of asyncio tasks is written there every 0.5 s.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from tests.reliability.engine_child import pause_point
from tikvops.commands.run import serve
from tikvops.logs import configure_from_settings
from tikvops.settings import Settings, load_settings
from tikvops.stack import SlackOptions

POLL = 0.05
FAST_SLACK = SlackOptions(
    outbox_poll=0.1,
    outbox_backoff_base=0.05,
    ping_interval=1.0,
    outbox_lease=float(os.environ.get("TIKVOPS_TEST_OUTBOX_LEASE", "3")),
)


async def hold_point(step: str) -> None:
    """At step `TIKVOPS_TEST_HOLD_AT`: write the marker, then wait until the file
    `TIKVOPS_TEST_RESUME` exists (the run goes on; `pause_point` waits until killed)."""
    if os.environ.get("TIKVOPS_TEST_HOLD_AT") != step:
        return
    marker = os.environ.get("TIKVOPS_TEST_MARKER")
    if marker:
        partial = Path(marker + ".partial")
        partial.write_text(step)
        partial.replace(marker)
    resume = Path(os.environ["TIKVOPS_TEST_RESUME"])
    while not resume.exists():
        await asyncio.sleep(0.05)


async def checkpoint(step: str) -> None:
    await hold_point(step)
    await pause_point(step)


async def report_tasks(path: Path) -> None:
    """Write the number of asyncio tasks to `path` every 0.5 s (for the soak test)."""
    while True:
        partial = path.with_suffix(".partial")
        partial.write_text(str(len(asyncio.all_tasks())))
        partial.replace(path)
        await asyncio.sleep(0.5)


async def run(settings: Settings, options: dict[str, Any]) -> int:
    tasks_file = os.environ.get("TIKVOPS_TEST_TASKS_FILE")
    reporter = asyncio.create_task(report_tasks(Path(tasks_file))) if tasks_file else None
    try:
        return await serve(settings, out=sys.stdout, slack=FAST_SLACK, engine_options=options)
    finally:
        if reporter is not None:
            reporter.cancel()


def main() -> int:
    settings = load_settings(env_file=None)
    configure_from_settings(settings, stream=sys.stderr)
    steps = ("drain", "undrain", "limit", "split", "transfer-peer", "transfer-leader")
    options: dict[str, Any] = {
        "checkpoint": checkpoint,
        "poll_intervals": {name: POLL for name in steps},
        "auto_execute": os.environ.get("TIKVOPS_TEST_AUTO_EXECUTE", "1") != "0",
    }
    return asyncio.run(run(settings, options))


if __name__ == "__main__":
    sys.exit(main())
