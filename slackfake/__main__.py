"""``python -m slackfake``: run the Slack stand-in on its own and print where to find it.

Point a bot at it with the printed Web API base URL and tokens; open the page to act as a user.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys

from slackfake.server import SlackFake


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m slackfake",
        description="Local Slack stand-in: Web API, Socket Mode and a web page, on loopback.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=3000, help="port (0 picks a free one)")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    return parser.parse_args(argv)


async def serve(host: str, port: int) -> None:
    fake = SlackFake()
    try:
        await fake.start(host=host, port=port)
    except OSError as exc:
        sys.stderr.write(
            f"slackfake: cannot listen on {host}:{port} ({exc.strerror}). "
            "Pick another port with --port, or --port 0 for any free one.\n"
        )
        raise SystemExit(2) from exc
    ws = fake.workspace
    sys.stdout.write(
        f"Local Slack page: {fake.page_url}\n"
        f"  Web API base_url: {fake.api_url}\n"
        f"  bot token: {ws.bot_token}   app token: {ws.app_token}\n"
        f"  channels: {', '.join(f'#{c.name} ({c.id})' for c in ws.channels.values())}\n"
        f"  users: {', '.join(f'{u.name} ({u.id})' for u in ws.humans())}\n"
        "Press Ctrl-C to stop.\n"
    )
    sys.stdout.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await fake.stop()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING)
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
