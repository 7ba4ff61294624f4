"""Prometheus HTTP API client: instant and range queries returning typed results.

Talks to `/api/v1/query` and `/api/v1/query_range` over an injected `httpx.AsyncClient`
(queries are POSTed as a form, so long PromQL is fine). Sample values arrive as JSON strings
(`"0.75"`, `"NaN"`, `"+Inf"`) and become floats. Bodies are validated by hand as strictly as
the documented shapes (no per-sample model validation: a vector of 100s of series is read
in about a microsecond per series). Every failure becomes a
`operator_tikv.metrics.PrometheusError` subclass carrying Prometheus's own `errorType` and
`error`:

- 400 `bad_data` and 422 `execution` -> `PrometheusQueryError` (the query is wrong);
- 503 `timeout`/`canceled`/`unavailable`, other non-2xx, connection errors and timeouts
  -> `PrometheusUnavailable`;
- a 2xx body that is not the documented envelope, or a body larger than `max_body` (read in
  chunks and abandoned past the limit, never buffered whole) -> `PrometheusProtocolError`.

Every call has a total deadline (the query timeout plus 2 s, or `deadline`): a server or proxy
that trickles its answer fails the call with `PrometheusUnavailable` instead of holding the
monitor cycle.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import httpx

from operator_tikv.limits import MIB, BodyTooLarge, read_capped
from operator_tikv.metrics import (
    PrometheusError,
    PrometheusProtocolError,
    PrometheusQueryError,
    PrometheusUnavailable,
)
from operator_tikv.urls import redact_url

_QUERY_ERROR_TYPES = frozenset({"bad_data", "execution", "not_found"})
_MAX_BODY_IN_MESSAGE = 200

#: The largest answer accepted: the monitor's queries return one series per store.
DEFAULT_MAX_BODY = 16 * MIB


class Sample(NamedTuple):
    """One value at one time. `value` may be NaN or +/-Inf: check with `math.isnan` first."""

    timestamp: float
    value: float

    @property
    def is_nan(self) -> bool:
        return math.isnan(self.value)


class VectorSeries(NamedTuple):
    """One series of an instant vector: its labels and one sample."""

    labels: Mapping[str, str]
    sample: Sample

    @property
    def value(self) -> float:
        return self.sample.value


class MatrixSeries(NamedTuple):
    """One series of a range result: its labels and samples in time order."""

    labels: Mapping[str, str]
    samples: tuple[Sample, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class VectorResult:
    series: tuple[VectorSeries, ...]
    warnings: tuple[str, ...] = ()
    result_type: Literal["vector"] = "vector"


@dataclass(frozen=True, slots=True, kw_only=True)
class MatrixResult:
    series: tuple[MatrixSeries, ...]
    warnings: tuple[str, ...] = ()
    result_type: Literal["matrix"] = "matrix"


@dataclass(frozen=True, slots=True, kw_only=True)
class ScalarResult:
    sample: Sample
    warnings: tuple[str, ...] = ()
    result_type: Literal["scalar"] = "scalar"


@dataclass(frozen=True, slots=True, kw_only=True)
class StringResult:
    timestamp: float
    text: str
    warnings: tuple[str, ...] = ()
    result_type: Literal["string"] = "string"


QueryResult = VectorResult | MatrixResult | ScalarResult | StringResult


class _Shape(Exception):
    """The wire document differs from the documented shape (turned into a protocol error)."""


def parse_value(text: str) -> float:
    """A Prometheus sample string (`"0.5"`, `"NaN"`, `"+Inf"`, `"-Inf"`, `"2.7e-01"`) as float."""
    try:
        return float(text)
    except ValueError as exc:
        raise PrometheusProtocolError(
            f"Prometheus sent a sample value that is not a number: {text!r}"
        ) from exc


def _pair(raw: object, where: str) -> Sample:
    """`[<unix seconds>, "<value>"]` -> Sample; the value must be a JSON string."""
    if type(raw) is not list or len(raw) != 2:
        raise _Shape(f'{where} is not a [timestamp, "value"] pair: {raw!r:.80}')
    ts, text = raw
    if type(ts) is not float and type(ts) is not int:
        raise _Shape(f"{where} has a timestamp that is not a number: {ts!r:.40}")
    if type(text) is not str:
        raise _Shape(f"{where} has a value that is not a string: {text!r:.40}")
    return Sample(float(ts), parse_value(text))


def _labels(item: dict[str, Any], where: str) -> dict[str, str]:
    metric = item.get("metric")
    if metric is None:
        return {}
    if type(metric) is not dict:
        raise _Shape(f"{where} has a `metric` that is not an object: {metric!r:.80}")
    for value in metric.values():
        if type(value) is not str:
            raise _Shape(f"{where} has a label value that is not a string: {value!r:.40}")
    return metric


def _items(result: object, kind: str) -> list[dict[str, Any]]:
    if type(result) is not list:
        raise _Shape(f"`result` of a {kind} is not a list: {result!r:.80}")
    for i, item in enumerate(result):
        if type(item) is not dict:
            raise _Shape(f"series {i} is not an object: {item!r:.80}")
    return result


def _vector(result: object) -> tuple[VectorSeries, ...]:
    items = _items(result, "vector")
    out: list[VectorSeries] = []
    append = out.append
    for item in items:
        # The common case in one pass; anything unusual goes through the checks of
        # `_vector_series`, which either accept it or say exactly what is wrong.
        metric = item.get("metric")
        pair = item.get("value")
        if type(metric) is dict and type(pair) is list and len(pair) == 2:
            ts, text = pair
            if type(text) is str and (type(ts) is float or type(ts) is int):
                for label in metric.values():
                    if type(label) is not str:
                        break
                else:
                    try:
                        append(VectorSeries(metric, Sample(float(ts), float(text))))
                        continue
                    except ValueError:
                        pass
        append(_vector_series(item, f"series {len(out)}"))
    return tuple(out)


def _vector_series(item: dict[str, Any], where: str) -> VectorSeries:
    if "value" not in item:
        raise _Shape(f"{where} has no `value`")
    return VectorSeries(_labels(item, where), _pair(item["value"], where))


def _matrix(result: object) -> tuple[MatrixSeries, ...]:
    out: list[MatrixSeries] = []
    for i, item in enumerate(_items(result, "matrix")):
        where = f"series {i}"
        values = item.get("values")
        if type(values) is not list:
            raise _Shape(f"{where} has no `values` list")
        samples = tuple(_pair(v, f"{where} point {j}") for j, v in enumerate(values))
        out.append(MatrixSeries(_labels(item, where), samples))
    return tuple(out)


def parse_envelope(body: Any) -> QueryResult:
    """Turn a successful `{"status":"success","data":{...}}` body into a typed result.

    Validated by hand, as strictly as the documented shapes (tikv-metrics.md §6): sample
    values must be JSON strings, timestamps numbers, label values strings. Unknown keys are
    ignored. Any other shape raises `PrometheusProtocolError`.
    """
    if not isinstance(body, dict) or body.get("status") != "success":
        raise PrometheusProtocolError(
            f"Prometheus answered without a success envelope: {body!r:.200}"
        )
    data = body.get("data")
    raw_warnings = body.get("warnings") or []
    warnings = tuple(str(w) for w in raw_warnings) if isinstance(raw_warnings, list) else ()
    if not isinstance(data, dict):
        raise PrometheusProtocolError("Prometheus answered success without a `data` object")
    kind = data.get("resultType")
    result = data.get("result")
    try:
        if kind == "vector":
            return VectorResult(series=_vector(result), warnings=warnings)
        if kind == "matrix":
            return MatrixResult(series=_matrix(result), warnings=warnings)
        if kind == "scalar":
            return ScalarResult(sample=_pair(result, "the scalar"), warnings=warnings)
        if kind == "string":
            if type(result) is not list or len(result) != 2:
                raise _Shape(f'the string is not a [timestamp, "text"] pair: {result!r:.80}')
            sample = _pair([result[0], "0"], "the string")
            if type(result[1]) is not str:
                raise _Shape(f"the string's text is not a string: {result[1]!r:.40}")
            return StringResult(timestamp=sample.timestamp, text=result[1], warnings=warnings)
    except _Shape as exc:
        raise PrometheusProtocolError(
            f"Prometheus sent a {kind} result of an unexpected shape: {exc}; is the URL a "
            "Prometheus server's (or a compatible API's)?"
        ) from exc
    raise PrometheusProtocolError(f"Prometheus sent an unknown resultType {kind!r}")


class PrometheusClient:
    """Queries one Prometheus server. The caller owns (and closes) the `httpx.AsyncClient`."""

    def __init__(
        self,
        base_url: str,
        http: httpx.AsyncClient,
        *,
        timeout: float | None = 10.0,
        deadline: float | None = None,
        max_body: int = DEFAULT_MAX_BODY,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._shown = redact_url(self.base_url)
        self._http = http
        self._timeout = timeout
        #: Seconds one call may take in total, the whole answer included.
        self.deadline = deadline if deadline is not None else (timeout or 10.0) + 2.0
        self.max_body = max_body

    async def query(self, promql: str, *, at: float | None = None) -> QueryResult:
        """Instant query (`/api/v1/query`); `at` is unix seconds, default the server's now."""
        form: dict[str, str] = {"query": promql}
        if at is not None:
            form["time"] = _fmt_time(at)
        return await self._call("/api/v1/query", form)

    async def query_vector(self, promql: str, *, at: float | None = None) -> VectorResult:
        """Instant query that must return a vector (every per-store query does)."""
        result = await self.query(promql, at=at)
        if not isinstance(result, VectorResult):
            raise PrometheusProtocolError(
                f"expected a vector from {promql!r}, Prometheus returned a {result.result_type}"
            )
        return result

    async def query_range(
        self, promql: str, *, start: float, end: float, step: float
    ) -> MatrixResult:
        """Range query (`/api/v1/query_range`); `step` in seconds."""
        form = {
            "query": promql,
            "start": _fmt_time(start),
            "end": _fmt_time(end),
            "step": _fmt_time(step),
        }
        result = await self._call("/api/v1/query_range", form)
        if not isinstance(result, MatrixResult):
            raise PrometheusProtocolError(
                f"expected a matrix from a range query, Prometheus returned a {result.result_type}"
            )
        return result

    async def _call(self, path: str, form: dict[str, str]) -> QueryResult:
        if self._timeout is not None:
            form = {**form, "timeout": f"{self._timeout:g}s"}
        url = self.base_url + path
        try:
            async with (
                asyncio.timeout(self.deadline),
                self._http.stream(
                    "POST", url, data=form, timeout=_http_timeout(self._timeout)
                ) as streamed,
            ):
                content = await read_capped(streamed, self.max_body)
        except (httpx.TimeoutException, TimeoutError) as exc:
            raise PrometheusUnavailable(
                f"Prometheus at {self._shown} did not answer in time (no complete answer "
                f"within {self.deadline:g} s); check that it is running and not overloaded, "
                "or raise the timeout."
            ) from exc
        except BodyTooLarge as exc:
            raise PrometheusProtocolError(
                f"Prometheus at {self._shown} sent an answer too large to read ({exc}); is the "
                "URL a Prometheus server's, and the query the bot's?"
            ) from exc
        except httpx.HTTPError as exc:
            raise PrometheusUnavailable(
                f"could not reach Prometheus at {self._shown}: {exc or type(exc).__name__}; "
                "check the Prometheus URL and that the server is up."
            ) from exc
        response = httpx.Response(streamed.status_code, content=content)
        return _interpret(self._shown, response)


def _interpret(base_url: str, response: httpx.Response) -> QueryResult:
    status = response.status_code
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        excerpt = response.text[:_MAX_BODY_IN_MESSAGE].strip()
        if response.is_success:
            raise PrometheusProtocolError(
                f"Prometheus at {base_url} answered {status} with a body that is not JSON "
                f"(or is nested too deeply to read): {excerpt!r}",
                status_code=status,
            ) from exc
        raise PrometheusUnavailable(
            f"Prometheus at {base_url} answered HTTP {status} without a JSON body "
            f"({excerpt!r}); a proxy or authentication layer may be in the way.",
            status_code=status,
        ) from exc
    if isinstance(body, dict) and body.get("status") == "error":
        raise _error_from(base_url, status, body)
    if not response.is_success:
        raise PrometheusUnavailable(
            f"Prometheus at {base_url} answered HTTP {status}", status_code=status
        )
    return parse_envelope(body)


def _error_from(base_url: str, status: int, body: Mapping[str, Any]) -> PrometheusError:
    error_type = str(body.get("errorType") or "")
    detail = str(body.get("error") or "")
    if error_type in _QUERY_ERROR_TYPES or status in (400, 422):
        return PrometheusQueryError(
            f"Prometheus rejected the query ({error_type or status}): {detail}",
            status_code=status,
            error_type=error_type or None,
            detail=detail,
        )
    return PrometheusUnavailable(
        f"Prometheus at {base_url} could not answer ({error_type or status}): {detail}; "
        "retry later, or check the server's load and query timeout.",
        status_code=status,
        error_type=error_type or None,
        detail=detail,
    )


def _fmt_time(seconds: float) -> str:
    return repr(float(seconds)) if not float(seconds).is_integer() else str(int(seconds))


def _http_timeout(query_timeout: float | None) -> httpx.Timeout | None:
    if query_timeout is None:
        return None
    # Leave Prometheus time to answer its own `timeout` with a 503 before we give up.
    return httpx.Timeout(query_timeout + 2.0)
