"""Incident at scale: is the bot responsive while a big cluster loses a store?

For each size (5 stores x 200,000 regions and 100 stores x 1,000,000 regions by default) and
each code version (this tree, and with `--baseline DIR` a checkout of the previous release):

- the simulator runs in a child process (`python -m sim`, virtual time 10x wall time), the
  Slack stand-in in this process, and the real `tikvops run` of that code version in its own
  process (poll interval 5 s, `disconnected_grace` 0);
- after the bot's first cycles, alice asks for `/tikv space-ratio low 0.79` (a proposal with
  buttons), then the last store is stopped at a random moment of the poll cycle. For `--outage`
  seconds (90 by default: the store turns Disconnected after 2 s, its peers are pending after
  6 s and down after 60 s, so the down-peer and pending-peer lists hold every region with a
  peer on it) alice sends `/tikv status` every 0.5 s, and twice (at 25 % and 75 % of the
  outage) 20 users click Approve or Reject on the proposal at once.

Printed per run: ack times of those envelopes (p50 / p99 / max, and how many took over Slack's
3 s), the monitor's cycle wall time (mean and max from the bot's own histogram) and the runs
apscheduler skipped because the previous one was still running, the bot's CPU per cycle over
the outage (everything the process did in that time, Slack commands included, divided by the
cycles; plus its list worker process's), the bot's peak RSS (VmHWM; the worker's apart), the
time from the store turning Disconnected to the incident's parent message in Slack saying so
(posted, or an earlier "No metrics" parent edited in place) minus the poll interval (grace
is 0), and the event loop's lag p99 from
`tikvops_event_loop_lag_seconds` (the previous release has no probe: "n/a").

    .venv/bin/python bench/incident_at_scale.py --baseline /tmp/baseline
    .venv/bin/python bench/incident_at_scale.py --baseline-rev 2f23c18   # a temporary worktree
    .venv/bin/python bench/incident_at_scale.py --quick          # 3 stores x 2,000, 20 s

Targets: ack p99 < 100 ms, max < 1 s, none over 3 s; no skipped monitor runs; bot RSS under
300 MiB at 1M regions; incident within poll + grace + 1 s; event-loop lag p99 < 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from prometheus_client.parser import text_string_to_metric_families

from bench.common import ROOT, SimProcess, no_proxy, percentile, print_facts, sim_process
from bench.harness import ALICE, CHANNEL, bot_env, free_port, slack_fake, users
from bot import callbacks
from slackfake.errors import AckTimeout
from slackfake.server import SlackFake
from slackfake.store import Message

POLL = 5.0
SPEED = 10.0
CLICKERS = 20
_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Bot:
    process: asyncio.subprocess.Process
    health_url: str
    lines: list[str] = field(default_factory=list)

    def cpu_seconds(self, pid: int | None = None) -> float:
        try:
            stat = Path(f"/proc/{pid or self.process.pid}/stat").read_text()
        except OSError:
            return 0.0
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS

    def worker_cpu_seconds(self) -> dict[int, float]:
        return {child: self.cpu_seconds(child) for child in self.children()}

    def peak_rss_mib(self, pid: int | None = None) -> float:
        try:
            status = Path(f"/proc/{pid or self.process.pid}/status").read_text()
        except OSError:
            return 0.0
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def children(self) -> list[int]:
        """Child processes (the list worker), from /proc."""
        pid = self.process.pid
        try:
            text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
        except OSError:
            return []
        return [int(x) for x in text.split()]


async def _drain(stream: asyncio.StreamReader, lines: list[str]) -> None:
    while line := await stream.readline():
        lines.append(line.decode(errors="replace").rstrip())


@contextlib.asynccontextmanager
async def bot_of(root: Path, pd_url: str, fake: SlackFake, db: Path) -> AsyncIterator[Bot]:
    """`tikvops run` of the code in `root` (this tree or a baseline checkout)."""
    port = free_port()
    env = bot_env(
        pd_url,
        fake,
        db,
        poll_interval=POLL,
        disconnected_grace=0,
        health_addr=f"127.0.0.1:{port}",
        log_level="WARNING",
    )
    env["PYTHONPATH"] = str(root)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(root / "bench" / "run_bot.py"),
        cwd=root,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    bot = Bot(process, f"http://127.0.0.1:{port}")
    assert process.stdout is not None and process.stderr is not None
    readers = [
        asyncio.create_task(_drain(process.stdout, bot.lines)),
        asyncio.create_task(_drain(process.stderr, bot.lines)),
    ]
    try:
        async with asyncio.timeout(300):
            while not any(line.startswith("tikvops run: started") for line in bot.lines):
                if process.returncode is not None:
                    raise RuntimeError("tikvops run exited:\n" + "\n".join(bot.lines[-30:]))
                await asyncio.sleep(0.1)
        await fake.wait_for_socket(timeout=60)
        yield bot
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                async with asyncio.timeout(30):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)


async def bot_metrics(http: httpx.AsyncClient, bot: Bot) -> dict[str, list[Any]]:
    text = (await http.get(f"{bot.health_url}/metrics")).text
    return {f.name: list(f.samples) for f in text_string_to_metric_families(text)}


def histogram(samples: dict[str, list[Any]], name: str) -> tuple[float, float, list[Any]]:
    """(count, sum, bucket samples) of a histogram family, zeros when absent."""
    rows = samples.get(name, [])
    count = sum(s.value for s in rows if s.name == f"{name}_count")
    total = sum(s.value for s in rows if s.name == f"{name}_sum")
    buckets = [s for s in rows if s.name == f"{name}_bucket"]
    return count, total, buckets


def bucket_quantile(buckets: list[Any], before: list[Any], q: float, unit: str = "ms") -> str:
    """The upper bound of the bucket holding the q-quantile of the samples added since
    `before` (a histogram says no more)."""
    old = {s.labels["le"]: s.value for s in before}
    rows = [(float(s.labels["le"]), s.value - old.get(s.labels["le"], 0.0)) for s in buckets]
    rows.sort()
    if not rows or rows[-1][1] == 0:
        return "n/a"
    need = q * rows[-1][1]
    for bound, cumulative in rows:
        if cumulative >= need:
            if bound == float("inf"):
                return "> largest bucket"
            return f"<= {bound * 1000:g} ms" if unit == "ms" else f"<= {bound:g} s"
    return "n/a"


async def proposal_message(fake: SlackFake) -> Message:
    def find() -> Message | None:
        for message in fake.messages(CHANNEL):
            if callbacks.APPROVE in message.action_ids():
                return message
            for reply in fake.thread(CHANNEL, message.ts):
                if callbacks.APPROVE in reply.action_ids():
                    return reply
        return None

    try:
        found: Message = await fake.wait_for(find, timeout=60)
    except TimeoutError:
        shown = [m.text[:200] for m in fake.messages(CHANNEL)]
        notes = [e.text[:200] for e in fake.ephemerals()]
        raise RuntimeError(f"no proposal posted; channel: {shown}; ephemerals: {notes}") from None
    return found


def incident_posted(fake: SlackFake, after: float, store: int) -> float | None:
    """When a parent message in the channel first said store `store` is disconnected or down.

    With correlation the store's incident may open earlier, as "No metrics from store N" (its
    /metrics refuses before PD notices), and is then escalated in place: the parent is edited
    (`chat.update`) to "Store N disconnected". Either way, this is when Slack showed it.
    """
    for call in sorted(fake.calls(), key=lambda c: c.at):
        if call.method not in ("chat.postMessage", "chat.update"):
            continue
        text = str(call.params.get("text", "")).lower()
        if (
            call.at >= after
            and call.ok
            and call.params.get("channel") == CHANNEL
            and not call.params.get("thread_ts")
            and f"store {store} " in f"{text} "
            and ("disconnected" in text or "down" in text)
        ):
            return call.at
    return None


async def timed(
    envelope: Any, kind: str = "", kinds: dict[str, list[float]] | None = None
) -> float:
    """Ack time in ms of one envelope (Slack's clock: written to the socket -> ack frame)."""
    started = time.perf_counter()
    try:
        await envelope
        took = (time.perf_counter() - started) * 1000
    except AckTimeout:
        took = 10_000.0
    if kinds is not None:
        kinds.setdefault(kind, []).append(took)
    return took


async def one_run(
    label: str, root: Path, stores: int, regions: int, outage: float, seed: int
) -> dict[str, Any]:
    rng = random.Random(seed)
    people = users(CLICKERS)
    clickers = [u for u in people if u[1:].isdigit()][:CLICKERS]
    stopped = stores
    with tempfile.TemporaryDirectory() as tmp:
        began = time.time()
        async with sim_process(stores=stores, regions=regions, speed=SPEED, seed=seed) as sim:
            sim_ready = time.time() - began
            async with (
                slack_fake(users=people, ack_timeout=10.0) as fake,
                bot_of(root, sim.pd_url, fake, Path(tmp) / "bench.db") as bot,
                httpx.AsyncClient(timeout=60) as http,
            ):
                return await _measure(
                    label,
                    sim,
                    fake,
                    bot,
                    http,
                    stores,
                    regions,
                    outage,
                    rng,
                    clickers,
                    stopped,
                    sim_ready,
                )


async def _measure(
    label: str,
    sim: SimProcess,
    fake: SlackFake,
    bot: Bot,
    http: httpx.AsyncClient,
    stores: int,
    regions: int,
    outage: float,
    rng: random.Random,
    clickers: list[str],
    stopped: int,
    sim_ready: float,
) -> dict[str, Any]:
    # two cycles done, then a proposal to click on
    await fake.wait_for(lambda: True, timeout=1)
    deadline = time.time() + 120
    while time.time() < deadline:
        count, _, _ = histogram(
            await bot_metrics(http, bot), "tikvops_monitor_cycle_duration_seconds"
        )
        if count >= 2:
            break
        await asyncio.sleep(0.5)
    await fake.slash_command(user=ALICE, channel=CHANNEL, text="space-ratio low 0.79")
    proposal = await proposal_message(fake)
    await asyncio.sleep(rng.uniform(0, POLL))

    before = await bot_metrics(http, bot)
    cycles0, cycle_sum0, cycle_before = histogram(before, "tikvops_monitor_cycle_duration_seconds")
    _, _, lag_before = histogram(before, "tikvops_event_loop_lag_seconds")
    cpu0 = bot.cpu_seconds()
    worker_cpu0 = bot.worker_cpu_seconds()
    skipped0 = sum("maximum number of running instances" in line for line in bot.lines)

    stop_at = time.time()
    await sim.control("POST", f"/stores/{stopped}/stop")
    visible: float | None = None
    acks: list[asyncio.Task[float]] = []
    kinds: dict[str, list[float]] = {}
    clicks_at = {outage * 0.25, outage * 0.75}
    next_status = time.time()
    while time.time() - stop_at < outage:
        now = time.time()
        if visible is None:
            state = (await http.get(f"{sim.pd_url}/pd/api/v1/store/{stopped}")).json()
            if state["store"].get("state_name") != "Up":
                visible = time.time()
        if now >= next_status:
            next_status += 0.5
            acks.append(
                asyncio.create_task(
                    timed(
                        fake.slash_command(user=ALICE, channel=CHANNEL, text="status"),
                        "status",
                        kinds,
                    )
                )
            )
        for at in sorted(clicks_at):
            if now - stop_at >= at:
                clicks_at.discard(at)
                for n, user in enumerate(clickers):
                    action = callbacks.APPROVE if n % 2 == 0 else callbacks.REJECT
                    acks.append(
                        asyncio.create_task(
                            timed(
                                fake.click(
                                    user=user,
                                    channel=CHANNEL,
                                    message_ts=proposal.ts,
                                    action_id=action,
                                ),
                                "click",
                                kinds,
                            )
                        )
                    )
        await asyncio.sleep(0.05)
    times = await asyncio.gather(*acks)
    cpu = bot.cpu_seconds() - cpu0
    worker_cpu = sum(
        spent - worker_cpu0.get(child, 0.0) for child, spent in bot.worker_cpu_seconds().items()
    )
    after = await bot_metrics(http, bot)
    cycles1, cycle_sum1, cycle_buckets = histogram(after, "tikvops_monitor_cycle_duration_seconds")
    _, _, lag_buckets = histogram(after, "tikvops_event_loop_lag_seconds")
    skipped = sum("maximum number of running instances" in line for line in bot.lines) - skipped0
    cycles = cycles1 - cycles0
    posted = incident_posted(fake, stop_at, stopped)
    if posted is None:
        for call in fake.calls("chat.postMessage"):
            if call.at >= stop_at and not call.params.get("thread_ts"):
                print("   (parent message after the stop:", str(call.params)[:300], ")")
    beyond = (posted - visible - POLL) if posted is not None and visible is not None else None
    largest_cycle = bucket_quantile(cycle_buckets, cycle_before, 1.0, unit="s")
    return {
        "label": label,
        "size": f"{stores} x {regions:,}",
        "sim_ready_s": sim_ready,
        "acks": times,
        "kinds": kinds,
        "cycles": cycles,
        "cycle_mean_s": (cycle_sum1 - cycle_sum0) / cycles if cycles else float("nan"),
        "cycle_max": largest_cycle,
        "skipped": skipped,
        "cpu_per_cycle_ms": cpu / cycles * 1000 if cycles else float("nan"),
        "worker_cpu_per_cycle_ms": worker_cpu / cycles * 1000 if cycles else float("nan"),
        "peak_rss_mib": bot.peak_rss_mib(),
        "worker_rss_mib": max((bot.peak_rss_mib(c) for c in bot.children()), default=0.0),
        "stall_lines": [line for line in bot.lines if "event loop stalled" in line][:3],
        "beyond_s": beyond,
        "lag_p99": bucket_quantile(lag_buckets, lag_before, 0.99) if lag_buckets else "n/a",
        "stalls": sum("event loop stalled" in line for line in bot.lines),
    }


def report(row: dict[str, Any]) -> None:
    times = row["acks"]
    over = sum(1 for t in times if t > 3000)
    beyond = row["beyond_s"]
    print(
        f"   {row['label']:<8} {row['size']:>13} | acks n={len(times)} p50 "
        f"{percentile(times, 50):7.1f} ms p99 {percentile(times, 99):7.1f} ms max "
        f"{max(times):7.1f} ms over 3 s: {over} | cycles {row['cycles']:.0f} mean "
        f"{row['cycle_mean_s']:.2f} s max {row['cycle_max']} skipped {row['skipped']} | CPU/cycle "
        f"{row['cpu_per_cycle_ms']:.0f} ms + list worker {row['worker_cpu_per_cycle_ms']:.0f} ms "
        f"| peak RSS {row['peak_rss_mib']:.0f} MiB (list worker "
        f"{row['worker_rss_mib']:.0f} MiB) | incident "
        f"beyond poll+grace {'never' if beyond is None else f'{beyond:+.2f} s'} | loop lag p99 "
        f"{row['lag_p99']} (stall warnings {row['stalls']}) | sim ready in "
        f"{row['sim_ready_s']:.0f} s",
        flush=True,
    )
    for kind, values in sorted(row["kinds"].items()):
        print(
            f"      {kind:<6} n={len(values)} p50 {percentile(values, 50):.1f} ms p99 "
            f"{percentile(values, 99):.1f} ms max {max(values):.1f} ms",
            flush=True,
        )
    for line in row["stall_lines"]:
        print(f"      {line[:400]}", flush=True)


async def main_async(args: argparse.Namespace) -> int:
    no_proxy()
    versions: list[tuple[str, Path]] = []
    if args.baseline:
        versions.append(("before", args.baseline))
    versions.append(("after", ROOT))
    print_facts(
        f"incident at scale: one store stopped, {args.outage:g} s of /tikv status every 0.5 s "
        f"and 2 x {CLICKERS} concurrent clicks; poll {POLL:g} s, sim speed {SPEED:g}x"
    )
    for size in args.sizes:
        stores, regions = (int(x) for x in size.split("x"))
        for label, root in versions:
            row = await one_run(label, root, stores, regions, args.outage, args.seed)
            report(row)
    print(
        "   targets: ack p99 < 100 ms, max < 1 s, none over 3 s; 0 skipped runs; RSS < 300 MiB "
        "at 1M regions; incident within poll + grace + 1 s; loop lag p99 < 50 ms"
    )
    return 0


@contextlib.contextmanager
def worktree(rev: str) -> Iterator[Path]:
    """A temporary `git worktree` of `rev` (removed on exit)."""
    with tempfile.TemporaryDirectory(prefix="tikvops-baseline-") as tmp:
        path = Path(tmp) / "tree"
        subprocess.run(
            ["git", "worktree", "add", "--detach", "-q", str(path), rev], cwd=ROOT, check=True
        )
        try:
            yield path
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(path)], cwd=ROOT, check=False
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="*", default=["5x200000", "100x1000000"])
    parser.add_argument("--outage", type=float, default=90.0)
    parser.add_argument(
        "--baseline",
        type=lambda text: Path(text).resolve(),
        help="a checkout of the previous release (before column)",
    )
    parser.add_argument(
        "--baseline-rev", help="a git revision to check out in a temporary worktree as baseline"
    )
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="3 stores x 2,000 regions, 20 s")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.outage = ["3x2000"], 20.0
    if args.baseline_rev and not args.baseline:
        with worktree(args.baseline_rev) as path:
            args.baseline = path
            return asyncio.run(main_async(args))
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
