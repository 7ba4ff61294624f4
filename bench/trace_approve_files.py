"""Measurement only: which product files an Approve click passes through until the PD write
is handed to the transport. Run it by copying it into tests/bot/ and running pytest on it
(TRACE_OUT names the output file); it is not part of the test suite."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from bot import callbacks
from engine.model import ProposalState as S
from tests.bot.conftest import ALICE, CHANNEL
from tests.bot.test_app import propose_drain, wait_state

PRODUCT = ("bot", "engine", "storage", "operator_tikv", "tikvops", "diagnosis")


async def test_trace(bot_harness: Any) -> None:
    h = await bot_harness()
    message = await propose_drain(h)
    await h.bot.deliverer.stop()
    root = os.getcwd() + os.sep
    files: list[str] = []
    state = {"executing": False, "done": False}

    def prof(frame: Any, event: str, arg: Any) -> None:
        if event != "call" or state["done"]:
            return
        name = frame.f_code.co_filename
        if not name.startswith(root):
            return
        rel = name[len(root) :]
        if not rel.startswith(PRODUCT):
            return
        if rel == "operator_tikv/pd.py" and frame.f_code.co_name == "execute":
            state["executing"] = True
        if state["executing"] and rel == "operator_tikv/transport.py":
            if rel not in files:
                files.append(rel)
            state["done"] = True
            return
        if rel not in files:
            files.append(rel)

    sys.setprofile(prof)
    try:
        await h.fake.click(
            user=ALICE, channel=CHANNEL, message_ts=message.ts, action_id=callbacks.APPROVE
        )
        for _ in range(500):
            if state["done"]:
                break
            await asyncio.sleep(0.01)
    finally:
        sys.setprofile(None)
    await wait_state(h, "P-1", S.SUCCEEDED, S.FAILED)
    out = os.environ.get("TRACE_OUT", "/tmp/engtrace/files.txt")
    await asyncio.to_thread(Path(out).write_text, f"{len(files)} files\n" + "\n".join(files) + "\n")
    assert state["done"]
