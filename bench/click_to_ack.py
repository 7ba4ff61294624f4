"""Click to ack: how fast the bot acknowledges Slack envelopes under a burst.

The bot runs as `tikvops run` in its own process; the Slack stand-in and the simulator run in
this one. `/tikv drain 4` creates a proposal; then 100 users click its Approve button at once
(one approval wins, 99 are refused after the ack), and 100 users send `/tikv status` at once.
With `--rounds N` the command burst is repeated N times. Time to ack is measured by
the stand-in, per envelope: from the moment it wrote the envelope to the socket to the
moment the ack frame arrived (what Slack's 3 s limit measures).

Target: p99 under 50 ms (Slack's limit is 3 s).

    .venv/bin/python bench/click_to_ack.py [--burst 100] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import no_proxy, print_facts, summary
from bench.harness import ALICE, CHANNEL, bot_process, in_process_sim, slack_fake, users
from bot import callbacks
from slackfake.server import SlackFake
from slackfake.store import Message

TARGET_MS = 50.0


def ack_times_ms(fake: SlackFake, envelope_ids: list[str]) -> list[float]:
    sent = {d.envelope_id: d.at for d in fake.deliveries}
    acked = {a.envelope_id: a.at for a in fake.acks}
    return [(acked[e] - sent[e]) * 1000 for e in envelope_ids]


async def proposal_message(fake: SlackFake) -> Message:
    def find() -> Message | None:
        for message in fake.messages(CHANNEL):
            if callbacks.APPROVE in message.action_ids():
                return message
            for reply in fake.thread(CHANNEL, message.ts):
                if callbacks.APPROVE in reply.action_ids():
                    return reply
        return None

    found: Message = await fake.wait_for(find, timeout=30)
    return found


async def run(burst: int, rounds: int) -> dict[str, list[float]]:
    people = users(burst)
    clickers = [u for u in people if u.startswith("U0") and u[1:].isdigit()][:burst]
    results: dict[str, list[float]] = {"click": [], "command": []}
    with tempfile.TemporaryDirectory() as tmp:
        async with (
            slack_fake(users=people) as fake,
            in_process_sim(stores=4, regions=1000) as sim,
            bot_process(
                sim.pd_url,
                fake,
                Path(tmp) / "bench.db",
                approvers=",".join([ALICE, *clickers]),
                poll_interval=15,
            ),
        ):
            await fake.slash_command(user=ALICE, channel=CHANNEL, text="drain 4")
            message = await proposal_message(fake)
            acks = await asyncio.gather(
                *(
                    fake.click(
                        user=user,
                        channel=CHANNEL,
                        message_ts=message.ts,
                        action_id=callbacks.APPROVE,
                    )
                    for user in clickers
                )
            )
            results["click"] += ack_times_ms(fake, [a.envelope_id for a in acks])
            for _ in range(rounds):
                acks = await asyncio.gather(
                    *(fake.slash_command(user=u, channel=CHANNEL, text="status") for u in clickers)
                )
                results["command"] += ack_times_ms(fake, [a.envelope_id for a in acks])
                await asyncio.sleep(0.5)
    return results


async def main_async(args: argparse.Namespace) -> int:
    no_proxy()
    print_facts(
        f"click to ack: {args.burst} concurrent Approve clicks, then {args.rounds} burst(s) of "
        f"{args.burst} concurrent slash commands"
    )
    results = await run(args.burst, args.rounds)
    worst = 0.0
    for kind, label in (("click", "Approve clicks"), ("command", "/tikv status")):
        s = summary(results[kind])
        worst = max(worst, s["p99"])
        print(
            f"   {label:<15} n={int(s['n']):>4}  p50 {s['p50']:7.1f} ms  p99 {s['p99']:7.1f} ms  "
            f"max {s['max']:7.1f} ms"
        )
    verdict = "met" if worst < TARGET_MS else "MISSED"
    print(f"   target p99 < {TARGET_MS:.0f} ms: {verdict} (worst p99 {worst:.1f} ms)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=1)
    return asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
