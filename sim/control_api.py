"""The simulator's own control API under `/sim/...` on the PD port (JSON in, JSON out).

    GET    /sim/state                      clock, speed, stores, operators, faults
    POST   /sim/advance        {"seconds": 60}
    POST   /sim/speed          {"speed": 30}
    GET    /sim/requests       ?method=POST&path=/pd/api/v1/operators (filters optional)
    DELETE /sim/requests
    POST   /sim/stores/{id}/stop | /start
    POST   /sim/stores/{id}/slow  {"write_p99_ms": 250}
    POST   /sim/stores/{id}/disk  {"ratio": 0.9, "over_seconds": 0}
    POST   /sim/regions/{id}/hot  {"kind": "write"};  DELETE /sim/regions/{id}/hot
    POST   /sim/pd/errors      {"status": 503, "seconds": 60, "every": 1}
    POST   /sim/pd/timeouts    {"seconds": 60}
    POST   /sim/pd/partition   {"seconds": 30}
    POST   /sim/pd/heal
    POST   /sim/faults/clear
    GET    /sim/scenarios;     POST /sim/scenarios/{name}

Errors answer 400 or 404 with {"error": "<what went wrong and what to send instead>"}.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from sim.pderrors import SimError
from sim.scenarios import SCENARIOS

if TYPE_CHECKING:
    from sim.server import SimServer


def _ok(value: Any, status: int = 200) -> web.Response:
    return web.json_response(value, status=status, dumps=lambda v: json.dumps(v, indent=2))


class ControlError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        raise ControlError(400, "the body is not JSON; send a JSON object") from None
    if not isinstance(value, dict):
        raise ControlError(400, "the body must be a JSON object")
    return value


def _number(body: dict[str, Any], key: str, default: float | None = None) -> float | None:
    value = body.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ControlError(400, f"{key!r} must be a number, got {value!r}")
    return float(value)


def _id(request: web.Request, name: str) -> int:
    text = request.match_info[name]
    if not text.isdigit():
        raise ControlError(400, f"{name} must be a positive integer, got {text!r}")
    return int(text)


class ControlApi:
    def __init__(self, server: SimServer) -> None:
        self.server = server

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/state", self.state),
            web.post("/advance", self.advance),
            web.post("/speed", self.speed),
            web.get("/requests", self.requests),
            web.delete("/requests", self.clear_requests),
            web.post("/stores/{id}/{action}", self.store_action),
            web.post("/regions/{id}/hot", self.hot),
            web.delete("/regions/{id}/hot", self.cool),
            web.post("/pd/{action}", self.pd_action),
            web.post("/faults/clear", self.clear_faults),
            web.get("/scenarios", self.scenarios),
            web.post("/scenarios/{name}", self.apply_scenario),
        ]

    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            response: web.StreamResponse = await handler(request)
            return response
        except ControlError as exc:
            return _ok({"error": exc.message}, exc.status)
        except SimError as exc:
            return _ok({"error": exc.message}, 404 if exc.status == 404 else 400)
        except ValueError as exc:
            return _ok({"error": str(exc)}, 400)

    async def state(self, request: web.Request) -> web.Response:
        return _ok(self.server.state())

    async def advance(self, request: web.Request) -> web.Response:
        seconds = _number(await _body(request), "seconds")
        if seconds is None or seconds < 0:
            raise ControlError(400, 'send {"seconds": <non-negative number>}')
        self.server.cluster.advance(seconds)
        return _ok({"now": self.server.cluster.now})

    async def speed(self, request: web.Request) -> web.Response:
        speed = _number(await _body(request), "speed")
        if speed is None or speed <= 0:
            raise ControlError(400, 'send {"speed": <positive number>}')
        self.server.speed = speed
        return _ok({"speed": speed})

    async def requests(self, request: web.Request) -> web.Response:
        method = request.query.get("method")
        path = request.query.get("path")
        prefix = request.query.get("prefix")
        records = [
            r.to_json()
            for r in self.server.requests
            if (method is None or r.method == method.upper())
            and (path is None or r.path == path)
            and (prefix is None or r.path.startswith(prefix))
        ]
        return _ok({"count": len(records), "requests": records})

    async def clear_requests(self, request: web.Request) -> web.Response:
        self.server.clear_requests()
        return _ok({"cleared": True})

    async def store_action(self, request: web.Request) -> web.Response:
        store_id = _id(request, "id")
        action = request.match_info["action"]
        faults = self.server.faults
        self.server.cluster.store(store_id)
        body = await _body(request)
        if action == "stop":
            faults.stop_store(store_id)
        elif action == "start":
            faults.start_store(store_id)
        elif action == "slow":
            faults.slow_store(store_id, _number(body, "write_p99_ms", 250.0) or 250.0)
        elif action == "disk":
            ratio = _number(body, "ratio")
            if ratio is None:
                raise ControlError(400, 'send {"ratio": <0..1>, "over_seconds": <seconds>}')
            faults.fill_disk(store_id, ratio, _number(body, "over_seconds", 0.0) or 0.0)
        else:
            raise ControlError(404, f"unknown store action {action!r}; use stop, start, slow, disk")
        return _ok({"store_id": store_id, "action": action})

    async def hot(self, request: web.Request) -> web.Response:
        region_id = _id(request, "id")
        body = await _body(request)
        kind = body.get("kind", "write")
        leader = self.server.faults.hot_region(region_id, str(kind))
        return _ok({"region_id": region_id, "kind": kind, "leader_store_id": leader})

    async def cool(self, request: web.Request) -> web.Response:
        region_id = _id(request, "id")
        self.server.faults.cool_region(region_id)
        return _ok({"region_id": region_id, "hot": False})

    async def pd_action(self, request: web.Request) -> web.StreamResponse:
        action = request.match_info["action"]
        body = await _body(request)
        faults = self.server.faults
        seconds = _number(body, "seconds")
        if action == "errors":
            status = int(_number(body, "status", 503) or 503)
            every = int(_number(body, "every", 1) or 1)
            faults.pd_errors(status=status, seconds=seconds, every=every)
        elif action == "timeouts":
            faults.pd_timeouts(seconds=seconds)
        elif action == "partition":
            # answer first: the partition closes this very connection
            response = _ok({"action": action, "partitioned": True, "seconds": seconds})
            response.force_close()
            await response.prepare(request)
            await response.write_eof()
            faults.partition(seconds=seconds)
            return response
        elif action == "heal":
            faults.heal()
        else:
            raise ControlError(
                404, f"unknown PD fault {action!r}; use errors, timeouts, partition, heal"
            )
        return _ok({"action": action, "faults": faults.describe()})

    async def clear_faults(self, request: web.Request) -> web.Response:
        self.server.faults.clear()
        return _ok({"faults": self.server.faults.describe()})

    async def scenarios(self, request: web.Request) -> web.Response:
        return _ok({"scenarios": list(SCENARIOS)})

    async def apply_scenario(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in SCENARIOS:
            raise ControlError(404, f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")
        return _ok(self.server.apply_scenario(name).to_json())
