"""A Prometheus stand-in for the monitor-cost benchmark (run in its own process):
`/api/v1/query` answers each of the monitor's instant queries with one healthy series per store
(`instance` = the store's status address), the way Prometheus would for a healthy cluster.

    python bench/fake_prometheus.py '{"1": "127.0.0.1:20180", ...}'   # prints its URL
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from aiohttp import web


def series(addresses: dict[str, str], query: str) -> list[dict[str, Any]]:
    now = time.time()
    out: list[dict[str, Any]] = []
    for address in addresses.values():

        def one(value: float, address: str = address, **labels: str) -> dict[str, Any]:
            return {"metric": {"instance": address, **labels}, "value": [now, repr(value)]}

        if query.startswith("up"):
            out.append(one(1.0))
        elif query.startswith("histogram_quantile"):
            out.append(one(0.012))
        elif query.startswith("1 - "):
            out.append(one(0.41))
        elif "tikv_store_size_bytes" in query:
            out += [one(2e12, type="capacity"), one(1.2e12, type="available")]
        elif "tikv_raftstore_region_count" in query:
            out += [one(300.0, type="leader"), one(900.0, type="region")]
    return out


async def main(addresses: dict[str, str]) -> None:
    async def query(request: web.Request) -> web.Response:
        form = await request.post() if request.method == "POST" else request.query
        promql = str(form.get("query", ""))
        body = {
            "status": "success",
            "data": {"resultType": "vector", "result": series(addresses, promql)},
        }
        return web.json_response(body)

    app = web.Application()
    app.router.add_route("*", "/api/v1/query", query)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(f"http://127.0.0.1:{port}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
