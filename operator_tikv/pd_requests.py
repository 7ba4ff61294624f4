"""How PDClient talks to PD: one request at a time over members, within deadlines and caps.

- Only GETs are retried, with exponential backoff, on transport errors and on 5xx answers that
  are not a recognised PD refusal. Writes (POST/DELETE) are sent exactly once.
- Every call has a **total deadline** (``deadline`` seconds, retries and back-off included;
  region lists get ``large_deadline``), not only the transport's per-read idle timeout: a PD
  (or a proxy) that sends its answer one byte at a time fails the call with
  :class:`~operator_tikv.errors.PDUnavailableError` when the deadline passes.
- Every answer's body is **capped per endpoint** (:class:`BodyLimits`: generous for region
  lists, small for everything else) and read in chunks; a larger one fails the call with
  :class:`~operator_tikv.errors.PDResponseTooLargeError` without being buffered, and is not
  retried.
- Several PD members: a read moves on to the next member when one is unreachable or has no
  leader; a write moves on only when no connection was made (`_over_members`).
- ``stats`` counts every HTTP attempt by ``(method, path template, outcome)``;
  ``on_request(method, template, status_or_error, seconds)`` is called after every attempt.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from pydantic import TypeAdapter, ValidationError

from operator_tikv.errors import (
    PDNotFoundError,
    PDProtocolError,
    PDResponseTooLargeError,
    PDUnavailableError,
    classify,
    match_rule,
    parse_error_body,
    truncate,
)
from operator_tikv.limits import MIB, BodyTooLarge, human_size, read_capped
from operator_tikv.members import PDMembers, split_members
from operator_tikv.models import (
    API_PREFIX,
)
from operator_tikv.transport import TLSConnectError, TLSDisconnectError
from operator_tikv.urls import has_credentials, redact_url

__all__ = [
    "DEADLINE_OUTCOME",
    "DEFAULT_DEADLINE",
    "DEFAULT_TIMEOUT",
    "TOO_LARGE_OUTCOME",
    "BodyLimits",
    "PDRequests",
    "Params",
    "RequestHook",
    "Sleep",
]


logger = logging.getLogger(__name__)

T = TypeVar("T")

#: ``on_request(method, path_template, status_code_or_error_name, seconds)``.
RequestHook = Callable[[str, str, int | str, float], None]
Sleep = Callable[[float], Awaitable[None]]
Params = tuple[tuple[str, str], ...]

#: Timeouts for the client :func:`open_pd_client` builds: PD answers reads in milliseconds,
#: but a large ``/regions/store/{id}`` can take seconds.
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=3.0)

#: Seconds one call may take in total (every attempt, back-off and the whole body included).
DEFAULT_DEADLINE = 10.0
#: Region lists may take this many times the deadline (they can be long during a failure).
LARGE_DEADLINE_FACTOR = 4.0

#: Outcome recorded for an attempt cut short by the call's total deadline.
DEADLINE_OUTCOME = "DeadlineTimeout"
#: Outcome recorded for an answer abandoned because its body passed the endpoint's cap.
TOO_LARGE_OUTCOME = "TooLarge"


@dataclass(frozen=True, slots=True)
class BodyLimits:
    """The largest body (bytes) accepted per kind of endpoint.

    ``region_lists``: ``/regions/check/*``, ``/regions/store/*`` (every region of a failed store
    can be listed: about 0.5 kB a region, so 256 MiB is ~500,000 regions). ``lists``:
    ``/stores``, ``/operators``, ``/hotspot/*``, ``/stats/region`` (grow with stores and
    running operators). ``other``: one object, a config, a message."""

    region_lists: int = 256 * MIB
    lists: int = 16 * MIB
    other: int = 1 * MIB

    def for_template(self, template: str) -> int:
        if _is_region_list(template):
            return self.region_lists
        tail = template.removeprefix(API_PREFIX)
        if tail.startswith(("/stores", "/operators", "/hotspot/", "/stats/region")):
            return self.lists
        return self.other


def _is_region_list(template: str) -> bool:
    """``/regions/check/{state}``, ``/regions/store/{id}`` and the like (not the count)."""
    tail = template.removeprefix(API_PREFIX)
    return tail.startswith("/regions") and tail != "/regions/count"


@dataclass(frozen=True, slots=True)
class _Answer:
    """A PD answer, its body read whole (within the endpoint's limit)."""

    status_code: int
    content: bytes

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")


_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def _normalise_base_url(base_url: str) -> str:
    url = base_url.strip().rstrip("/")
    if url.endswith(API_PREFIX):
        url = url[: -len(API_PREFIX)]
    if not url.startswith(("http://", "https://")):
        raise ValueError(
            f"PD URL must start with http:// or https://, got {redact_url(base_url)!r}"
        )
    if has_credentials(url):
        raise ValueError(
            f"PD URL must not contain a user name or password ({redact_url(url)}): PD's API "
            "has no password authentication"
        )
    return url


def _too_deep(response: _Answer, method: str, path: str) -> PDProtocolError:
    """PD's body nests deeper than Python's JSON parser can follow (``[[[[...``)."""
    return PDProtocolError(
        "response nests too deeply to be read as JSON",
        status=response.status_code,
        method=method,
        path=path,
        body=response.content[:2000].decode("utf-8", errors="replace"),
        from_pd=False,
    )


def _request_of(exc: httpx.TransportError) -> httpx.Request | None:
    try:
        return exc.request
    except RuntimeError:  # raised without one (a test transport)
        return None


def _no_leader(response: _Answer) -> bool:
    """A member that cannot serve now: 503, or PD's ErrRedirectNoLeader (leader election)."""
    return response.status_code == 503 or (
        response.status_code >= 500 and b"ErrRedirectNoLeader" in response.content[:500]
    )


def _transport_reason(exc: httpx.TransportError) -> str:
    """A TLS failure is its own sentence (`operator_tikv.tls`); others name their type."""
    if isinstance(exc, TLSConnectError | TLSDisconnectError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


class PDRequests:
    """How one PD request is made: members, retries (GETs only), the total deadline, the
    per-endpoint body cap, accounting and decoding. `operator_tikv.pd.PDClient` adds the
    endpoints on top."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str | PDMembers,
        *,
        retries: int = 2,
        backoff: float = 0.2,
        on_request: RequestHook | None = None,
        sleep: Sleep = asyncio.sleep,
        deadline: float = DEFAULT_DEADLINE,
        large_deadline: float | None = None,
        limits: BodyLimits | None = None,
    ) -> None:
        if retries < 0 or backoff < 0:
            raise ValueError("retries and backoff must be >= 0")
        if deadline <= 0 or (large_deadline is not None and large_deadline <= 0):
            raise ValueError("deadlines must be positive")
        self._http = http
        # Several PD members (`http://a:2379,http://b:2379` or a PDMembers): see _over_members.
        self.members = (
            base_url
            if isinstance(base_url, PDMembers)
            else PDMembers([_normalise_base_url(u) for u in split_members(base_url)])
        )
        self.retries = retries
        self.backoff = backoff
        self.on_request = on_request
        self._sleep = sleep
        #: Seconds one call may take in total; region lists get ``large_deadline``.
        self.deadline = deadline
        self.large_deadline = (
            large_deadline if large_deadline is not None else deadline * LARGE_DEADLINE_FACTOR
        )
        self.limits = limits or BodyLimits()
        #: HTTP attempts by (method, path template, outcome).
        self.stats: Counter[tuple[str, str, str]] = Counter()

    @property
    def base_url(self) -> str:
        """The PD member that answered last (the first given, at start)."""
        return self.members.current

    # ------------------------------------------------------------------ accounting

    def request_count(self, method: str | None = None, template: str | None = None) -> int:
        """Attempts made so far, optionally only for one method and/or path template."""
        return sum(
            count
            for (m, t, _outcome), count in self.stats.items()
            if (method is None or m == method) and (template is None or t == template)
        )

    def reset_stats(self) -> None:
        self.stats.clear()

    def _record(self, method: str, template: str, outcome: int | str, started: float) -> None:
        self.stats[(method, template, str(outcome))] += 1
        if self.on_request is None:
            return
        try:
            self.on_request(method, template, outcome, time.perf_counter() - started)
        except Exception:
            logger.exception("on_request hook failed for %s %s", method, template)

    # ------------------------------------------------------------------ transport

    def deadline_for(self, template: str) -> float:
        """Seconds a call to this endpoint may take in total."""
        return self.large_deadline if _is_region_list(template) else self.deadline

    async def _send(
        self,
        method: str,
        template: str,
        path: str,
        *,
        params: Params | None = None,
        body: Mapping[str, Any] | None = None,
        not_found: type[PDNotFoundError] = PDNotFoundError,
        expected_404: bool = False,
    ) -> _Answer:
        """Send one request (GETs with retries) within the endpoint's total deadline and
        return a 2xx answer, else raise.

        With ``expected_404`` a 404 answer is returned instead of raised.
        """
        deadline = self.deadline_for(template)
        limit = self.limits.for_template(template)
        attempt_started: list[float] = []
        try:
            async with asyncio.timeout(deadline):
                return await self._attempts(
                    method,
                    template,
                    path,
                    params=params,
                    body=body,
                    not_found=not_found,
                    expected_404=expected_404,
                    limit=limit,
                    attempt_started=attempt_started,
                )
        except TimeoutError as exc:
            if attempt_started:
                self._record(method, template, DEADLINE_OUTCOME, attempt_started[-1])
            raise PDUnavailableError(
                f"no complete answer within {deadline:g} s (PD, or something between the bot "
                "and PD, is answering too slowly or not at all)",
                method=method,
                path=path,
                from_pd=False,
                outcome_unknown=method != "GET",
            ) from exc

    async def _attempts(
        self,
        method: str,
        template: str,
        path: str,
        *,
        params: Params | None,
        body: Mapping[str, Any] | None,
        not_found: type[PDNotFoundError],
        expected_404: bool,
        limit: int,
        attempt_started: list[float],
    ) -> _Answer:
        attempts = self.retries + 1 if method == "GET" else 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            started = time.perf_counter()
            attempt_started.append(started)
            try:
                response = await self._over_members(
                    method, template, path, params=params, body=body, limit=limit
                )
            except BodyTooLarge as exc:
                self._record(method, template, TOO_LARGE_OUTCOME, started)
                attempt_started.clear()
                raise PDResponseTooLargeError(
                    f"{exc}; the limit for this endpoint is {human_size(limit)}",
                    method=method,
                    path=path,
                    from_pd=False,
                ) from exc
            except httpx.TransportError as exc:
                self._record(method, template, type(exc).__name__, started)
                attempt_started.clear()
                if not last:
                    await self._sleep(self.backoff * 2**attempt)
                    continue
                raise PDUnavailableError(
                    _transport_reason(exc),
                    method=method,
                    path=path,
                    from_pd=False,
                    outcome_unknown=method != "GET" and not isinstance(exc, _NOT_SENT),
                ) from exc
            except httpx.HTTPError as exc:
                self._record(method, template, type(exc).__name__, started)
                attempt_started.clear()
                raise PDUnavailableError(
                    f"{type(exc).__name__}: {exc}",
                    method=method,
                    path=path,
                    from_pd=False,
                    outcome_unknown=method != "GET",
                ) from exc
            self._record(method, template, response.status_code, started)
            attempt_started.clear()
            if response.is_success or (expected_404 and response.status_code == 404):
                return response
            try:
                if (
                    response.status_code >= 500
                    and not last
                    and match_rule(parse_error_body(response.content)) is None
                ):
                    await self._sleep(self.backoff * 2**attempt)
                    continue
                error = classify(
                    response.status_code,
                    response.content,
                    method=method,
                    path=path,
                    not_found=not_found,
                )
            except RecursionError as exc:
                raise _too_deep(response, method, path) from exc
            raise error
        raise AssertionError("unreachable")  # pragma: no cover

    async def _request(
        self,
        method: str,
        url: str,
        params: Params | None,
        body: Mapping[str, Any] | None,
        limit: int,
    ) -> _Answer:
        """One HTTP exchange; the body is streamed and read only up to `limit` bytes."""
        request = self._http.build_request(
            method, url, params=httpx.QueryParams(params or ()), json=body
        )
        response = await self._http.send(request, stream=True)
        try:
            content = await read_capped(response, limit)
        finally:
            await response.aclose()
        return _Answer(response.status_code, content)

    async def _over_members(
        self,
        method: str,
        template: str,
        path: str,
        *,
        params: Params | None,
        body: Mapping[str, Any] | None,
        limit: int,
    ) -> _Answer:
        """One request, to the member that answered last, passing on to the next member when
        one is unreachable or (for reads) has no leader (503, ErrRedirectNoLeader). A write
        moves on only when no connection was made: one that may have reached PD is never sent
        again. The member that answers is remembered. When every member failed, the error
        names each member's failure; the caller backs off and retries reads."""
        members = self.members.in_order()
        failures: list[str] = []
        for index, member in enumerate(members):
            more = index < len(members) - 1
            started = time.perf_counter()
            try:
                response = await self._request(method, member + path, params, body, limit)
            except httpx.TransportError as exc:
                movable = method == "GET" or isinstance(exc, _NOT_SENT)
                if not (more and movable):
                    if failures:
                        failures.append(f"{member}: {_transport_reason(exc)}")
                        text = "no PD member answered: " + "; ".join(failures)
                        raise type(exc)(text, request=_request_of(exc)) from exc
                    raise
                self._record(method, template, type(exc).__name__, started)
                failures.append(f"{member}: {_transport_reason(exc)}")
                continue
            if more and method == "GET" and _no_leader(response):
                self._record(method, template, response.status_code, started)
                failures.append(f"{member}: HTTP {response.status_code} (no PD leader)")
                continue
            if not _no_leader(response):
                self.members.answered(member)
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _decode(response: _Answer, method: str, path: str) -> Any:
        try:
            return json.loads(response.content)
        except RecursionError as exc:
            raise _too_deep(response, method, path) from exc
        except ValueError as exc:
            raise PDProtocolError(
                f"response is not JSON: {exc}",
                status=response.status_code,
                method=method,
                path=path,
                body=response.text,
                from_pd=False,
            ) from exc

    @staticmethod
    def _validate(
        adapter: TypeAdapter[T], data: Any, response: _Answer, method: str, path: str
    ) -> T:
        try:
            return adapter.validate_python(data)
        except (ValidationError, ValueError) as exc:
            raise PDProtocolError(
                truncate(f"unexpected response shape: {exc}", 400),
                status=response.status_code,
                method=method,
                path=path,
                body=response.text,
                from_pd=False,
            ) from exc

    async def _get(
        self,
        adapter: TypeAdapter[T],
        template: str,
        path: str,
        *,
        params: Params | None = None,
        not_found: type[PDNotFoundError] = PDNotFoundError,
    ) -> T:
        response = await self._send("GET", template, path, params=params, not_found=not_found)
        data = self._decode(response, "GET", path)
        return self._validate(adapter, data, response, "GET", path)
