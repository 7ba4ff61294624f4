"""Run the simulator in the foreground: `python -m sim` or `tikvops sim`.

Prints the PD URL and each store's status address, then serves until Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from sim import tls
from sim.cluster import MAX_REGIONS, MAX_STORES
from sim.fleet import MAX_CLUSTERS, SimFleet, fleet_names
from sim.scenarios import SCENARIOS
from sim.server import SimServer


def _say(text: str, *, error: bool = False) -> None:
    stream = sys.stderr if error else sys.stdout
    stream.write(text + "\n")
    stream.flush()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--stores", type=int, default=3, help=f"number of TiKV stores (1-{MAX_STORES})"
    )
    parser.add_argument(
        "--regions", type=int, default=1000, help=f"number of regions (1-{MAX_REGIONS})"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=2379, help="PD port (0 picks a free port)")
    parser.add_argument(
        "--speed", type=float, default=1.0, help="virtual seconds per wall second (e.g. 30)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed for the cluster layout")
    parser.add_argument(
        "--clusters",
        type=int,
        default=1,
        help=(
            f"number of independent clusters in this process (1-{MAX_CLUSTERS}), named prod, "
            "staging, c3, ...; their PD ports are --port, --port+1, ... (0: free ports)"
        ),
    )
    parser.add_argument(
        "--scenario", choices=sorted(SCENARIOS), help="fault scenario to inject at start"
    )
    parser.add_argument(
        "--tls-dir",
        type=Path,
        metavar="DIR",
        help=(
            f"serve HTTPS and require client certificates, like a TLS cluster: DIR holds "
            f"{tls.CA_FILE}, {tls.CERT_FILE} and {tls.KEY_FILE}"
        ),
    )


def check_arguments(args: argparse.Namespace) -> str | None:
    """A message explaining the first invalid argument, or None."""
    if not 1 <= args.stores <= MAX_STORES:
        return f"--stores must be between 1 and {MAX_STORES}, got {args.stores}"
    if not 1 <= args.regions <= MAX_REGIONS:
        return f"--regions must be between 1 and {MAX_REGIONS}, got {args.regions}"
    if args.speed <= 0:
        return f"--speed must be positive, got {args.speed}"
    clusters = getattr(args, "clusters", 1)
    if not 1 <= clusters <= MAX_CLUSTERS:
        return f"--clusters must be between 1 and {MAX_CLUSTERS}, got {clusters}"
    if clusters > 1 and getattr(args, "tls_dir", None) is not None:
        return "--tls-dir works with one cluster only; drop --clusters or --tls-dir"
    if not 0 <= args.port <= 65535:
        return f"--port must be between 0 and 65535, got {args.port}"
    return None


async def serve_fleet(args: argparse.Namespace) -> int:
    """Several clusters in this process (`--clusters N`), each on its own ports."""
    fleet = SimFleet(
        fleet_names(args.clusters),
        stores=args.stores,
        regions=args.regions,
        speed=args.speed,
        seed=args.seed,
    )
    try:
        await fleet.start(host=args.host, base_port=args.port)
    except OSError as exc:
        _say(
            f"sim: cannot listen on {args.host} from port {args.port}: {exc.strerror}; "
            "choose another --port (0 picks free ones)",
            error=True,
        )
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    for name in fleet:
        server = fleet[name]
        _say(f"cluster {name} PD URL: {server.pd_url}")
        if args.scenario:
            result = server.apply_scenario(args.scenario)
            _say(f"cluster {name} scenario {result.name}: {result.summary}")
    _say(f"speed: {args.speed:g}x virtual time; control API: <PD URL>/sim/state per cluster")
    _say("Press Ctrl-C to stop.")
    try:
        await stop.wait()
    finally:
        await fleet.stop()
        _say("simulator stopped")
    return 0


async def serve(args: argparse.Namespace) -> int:
    if getattr(args, "clusters", 1) > 1:
        return await serve_fleet(args)
    server = SimServer(
        stores=args.stores, regions=args.regions, speed=args.speed, seed=args.seed, auto_tick=True
    )
    ssl_context = None
    if getattr(args, "tls_dir", None) is not None:
        try:
            ssl_context = tls.server_context(args.tls_dir)
        except tls.TLSDirError as exc:
            _say(f"sim: {exc}", error=True)
            return 2
    try:
        await server.start(host=args.host, port=args.port, ssl_context=ssl_context)
    except OSError as exc:
        _say(
            f"sim: cannot listen on {args.host}:{args.port}: {exc.strerror}; "
            "choose another --port (0 picks a free one)",
            error=True,
        )
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    _say(f"PD URL: {server.pd_url}")
    if ssl_context is not None:
        _say(f"TLS: HTTPS on every port, client certificates signed by {args.tls_dir}/ca.pem")
    for store_id, address in server.status_addresses.items():
        _say(f"store {store_id} status address: {address}")
    _say(f"speed: {server.speed:g}x virtual time; control API: {server.pd_url}/sim/state")
    if args.scenario:
        result = server.apply_scenario(args.scenario)
        _say(f"scenario {result.name}: {result.summary}")
        _say(f"  expect: {result.expect}")
    _say("Press Ctrl-C to stop.")
    try:
        await stop.wait()
    finally:
        await server.stop()
        _say("simulator stopped")
    return 0


def run(args: argparse.Namespace) -> int:
    problem = check_arguments(args)
    if problem is not None:
        _say(f"sim: {problem}", error=True)
        return 2
    try:
        return asyncio.run(serve(args))
    except KeyboardInterrupt:
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sim", description="Simulated TiKV cluster behind a PD-compatible API."
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))
