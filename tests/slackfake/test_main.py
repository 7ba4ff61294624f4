"""``python -m slackfake`` runs the stand-in on its own and prints where it is."""

from __future__ import annotations

import asyncio
import signal
import sys

import aiohttp


async def test_standalone_server_prints_its_url_and_stops_on_sigint() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "slackfake",
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        first = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        assert first.startswith("Local Slack page: http://127.0.0.1:")
        url = first.split(": ", 1)[1].strip()
        rest = (await asyncio.wait_for(proc.stdout.readline(), 5)).decode()
        assert rest.strip() == f"Web API base_url: {url}api/"
        async with aiohttp.ClientSession() as session:
            async with session.get(url) as page:
                assert page.status == 200
            async with session.post(
                f"{url}api/auth.test", headers={"Authorization": "Bearer xoxb-test"}
            ) as auth:
                assert (await auth.json())["user_id"] == "U0TIKVBOT"
        proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
