"""A tikvops engine in its own process, for the crash-recovery tests (not a test module).

    python -m tests.reliability.engine_child run <pd_url> <db> <words...>
    python -m tests.reliability.engine_child approve-only <pd_url> <db> <words...>
    python -m tests.reliability.engine_child restart <pd_url> <db>

`run` proposes the words as the local operator, approves and executes in the foreground.
`approve-only` proposes and approves but does not execute (the state a crash right after an
approval leaves). `restart` is a start-up: `engine.reconcile()`, then waits for resumed work.
Each prints one JSON line with the proposals' states and executions.

With `TIKVOPS_TEST_PAUSE_AT=<checkpoint>` (started, before_request, after_request, verifying)
and `TIKVOPS_TEST_MARKER=<file>`, the executor stops at that step: it writes the step name to
the marker file and waits forever, so the test can SIGKILL the process at exactly that point.
Verification polls every 50 ms of real time (the test advances the simulated cluster).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from engine.model import Identity, ProposalOrigin
from engine.results import ProposalCreated
from tikvops.runtime import open_runtime
from tikvops.settings import load_settings

POLL = 0.05


async def pause_point(step: str) -> None:
    if os.environ.get("TIKVOPS_TEST_PAUSE_AT") != step:
        return
    marker = os.environ.get("TIKVOPS_TEST_MARKER")
    if marker:
        partial = Path(marker + ".partial")
        partial.write_text(step)
        partial.replace(marker)  # appears at once, complete
    await asyncio.Event().wait()  # until killed


async def main(argv: list[str]) -> int:
    mode, pd_url, db = argv[0], argv[1], argv[2]
    words = argv[3:]
    settings = load_settings(env_file=None, pd_url=pd_url, db=db, proposal_ttl=3600)
    options: dict[str, Any] = {
        "checkpoint": pause_point,
        "poll_intervals": {name: POLL for name in ("drain", "undrain", "limit", "split")},
        "auto_execute": False,
    }
    actor = Identity.cli("crash@test")
    async with open_runtime(
        settings, terminal=True, reconcile=mode == "restart", engine_options=options
    ) as runtime:
        engine = runtime.engine
        if mode in ("run", "approve-only"):
            action, *rest = words
            params = json.loads(rest[0]) if rest else {}
            created = await engine.propose(action, params, actor=actor, origin=ProposalOrigin.USER)
            if not isinstance(created, ProposalCreated):
                print(json.dumps({"refused": created.reason}))
                return 1
            await engine.approve(created.proposal.id, actor)
            if mode == "run":
                await engine.execute(created.proposal.id)
        await engine.wait_idle()
        report = []
        for proposal in await runtime.repos.proposals.list(limit=100):
            execution = await runtime.repos.executions.get(proposal.id)
            report.append(
                {
                    "id": proposal.id,
                    "state": proposal.state.value,
                    "outcome": proposal.outcome,
                    "execution": execution.status.value if execution else None,
                }
            )
        print(json.dumps({"proposals": report}))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
