"""Direct metrics source for clusters without Prometheus: scrape each TiKV's `/metrics`.

Every store's `status_address` is fetched concurrently within a total deadline (`timeout`
seconds for the whole answer, not per read) and a size cap (`max_body`: a page larger than
that is abandoned, never buffered whole), over an `httpx` client
or (in the long-running monitor) an aiohttp session from `open_scrape_session()` that keeps
one connection per store between cycles. Pages are read by our own parser of only the three
families we use (found with `str.find`, so a real TiKV's ~10k-line page stays cheap; checked
against `prometheus_client`'s parser by a property test). From one scrape we get disk usage
and region counts; the write P99 needs two: it is computed from the histogram bucket deltas
between the previous scrape of the same store and this one, the way
`histogram_quantile(rate(...))` does. The first scrape, a counter reset, or a window without
writes gives no P99 ("no data"). A failed scrape gives a reading with `up=False` and every
value `None`.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import re
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import aiohttp
import httpx

from operator_tikv.limits import MIB, BodyTooLarge, read_capped
from operator_tikv.metrics import (
    MetricsReading,
    SourceName,
    StoreMetrics,
    StoreTarget,
    disk_ratio,
)
from operator_tikv.queries import REGION_COUNT, STORE_SIZE, WRITE_HISTOGRAM
from operator_tikv.sessions import open_session
from operator_tikv.tls import TLSContext, describe_failure

#: The largest /metrics page read: a real TiKV's is a few MiB.
DEFAULT_MAX_PAGE = 64 * MIB

_BUCKET = f"{WRITE_HISTOGRAM}_bucket"

# One sample line after its metric name (text format 0.0.4): optional `{labels}`, the value,
# an optional timestamp. Inside braces, quoted strings may hold `}` `,` `=` and escapes.
_SAMPLE = re.compile(
    r"""(?:[ \t]*+\{(?P<labels>(?:[^"}]++|"(?:[^"\\\n]++|\\.)*+")*+)\}[ \t]*+|[ \t]++)"""
    r"(?P<value>[^ \t]++)(?:[ \t]++(?P<ts>[^ \t]++))?+[ \t]*+"
)
# One `name="value"` pair and the comma after it (or the end of the label block).
_PAIR = re.compile(
    r"""[ \t]*+([a-zA-Z_][a-zA-Z0-9_]*+)[ \t]*+=[ \t]*+"((?:[^"\\\n]++|\\.)*+)"[ \t]*+(?:,|$)"""
)
_ESCAPE = re.compile(r'\\[\\n"]')
_UNESCAPED = {"\\\\": "\\", "\\n": "\n", '\\"': '"'}


class ScrapeParseError(ValueError):
    """A /metrics page that the Prometheus text parser cannot read."""


class _ScrapeFailed(Exception):
    """No page: the store refused, timed out or answered an HTTP error (the message says)."""


@dataclass(frozen=True)
class ParsedStoreMetrics:
    """What one /metrics page says, before any delta with an earlier page."""

    write_buckets: Mapping[float, float]  # upper bound (le) -> cumulative count, type="write"
    capacity_bytes: float | None
    available_bytes: float | None
    leader_count: int | None
    region_count: int | None


def _number(token: str, line: str) -> float:
    """A sample value or timestamp as `prometheus_client` reads it (`+Inf`, `NaN`, `1e3`...)."""
    if "_" not in token:  # float() accepts `1_000`, the text format does not
        try:
            return float(token)
        except ValueError:
            pass
    raise ScrapeParseError(f"unreadable /metrics text: bad number {token!r} in line {line!r:.200}")


_LABEL_CACHE: dict[str, dict[str, str]] = {}
_LABEL_CACHE_SIZE = 4096


def _labels(raw: str | None, line: str) -> dict[str, str]:
    """The label block's pairs (unescaped). Every page of every store repeats the same blocks
    (`le="0.00001",type="write"`), so parsed blocks are remembered; never mutate the result."""
    if not raw:
        return {}
    cached = _LABEL_CACHE.get(raw)
    if cached is not None:
        return cached
    labels: dict[str, str] = {}
    at, size = 0, len(raw)
    while at < size:
        pair = _PAIR.match(raw, at)
        if pair is None:
            if raw[at:].isspace():
                break
            raise ScrapeParseError(
                f"unreadable /metrics text: invalid labels in line {line!r:.200}"
            )
        name, value = pair.groups()
        if name in labels:
            raise ScrapeParseError(
                f"unreadable /metrics text: label {name!r} twice in line {line!r:.200}"
            )
        labels[name] = _ESCAPE.sub(_unescape, value) if "\\" in value else value
        at = pair.end()
    if len(_LABEL_CACHE) >= _LABEL_CACHE_SIZE:
        _LABEL_CACHE.clear()
    _LABEL_CACHE[raw] = labels
    return labels


def _unescape(found: re.Match[str]) -> str:
    return _UNESCAPED[found.group(0)]


def _samples(
    text: str, name: str, must_contain: str = ""
) -> Iterator[tuple[dict[str, str], float]]:
    """(labels, value) of every sample line of metric `name`.

    The text format keeps a family's lines together, so only the stretch of the page between
    the first and the last mention of `name` (found with `str.find`, in C) is split into
    lines; every line in that stretch is still checked, so an out-of-order page reads the
    same. `must_contain` skips, unparsed, the lines that cannot hold the wanted series (e.g.
    `"write"` for `type="write"`: no escape sequence produces letters, so a line whose label
    value is `write` holds that text verbatim).
    """
    first = text.find(name)
    if first == -1:
        return
    last = text.rfind(name)
    end = text.find("\n", last)
    block = text[text.rfind("\n", 0, first) + 1 : end if end != -1 else len(text)]
    skip = len(name)
    for raw in block.split("\n"):
        line = raw.strip()
        if not line.startswith(name):
            continue  # another metric, a comment, a blank line
        if must_contain and must_contain not in line:
            continue
        found = _SAMPLE.fullmatch(line, skip)
        if found is None:
            if len(line) > skip and line[skip] not in "{ \t":
                continue  # a longer name, e.g. tikv_store_size_bytes_total
            raise ScrapeParseError(f"unreadable /metrics text: bad sample line {line!r:.200}")
        value, stamp = found.group("value", "ts")
        if stamp is not None:
            _number(stamp, line)
        try:
            number = float(value)
        except ValueError:
            number = _number(value, line)  # raises
        if "_" in value:
            _number(value, line)  # raises: float() accepts `1_000`, the text format does not
        yield _labels(found["labels"], line), number


def parse_metrics_text(text: str) -> ParsedStoreMetrics:
    """Parse a TiKV /metrics page (text format 0.0.4) into the values the invariants need.

    Reads only the three families the invariants use (the write histogram's buckets, store
    sizes, region counts); their lines are parsed strictly (a broken line raises
    `ScrapeParseError`), every other line is skipped unread. Values sum over any labels not
    asked for, as `sum by (le)` / `sum by (type)` would. Agrees with `prometheus_client`'s
    parser on these families (property-tested); unlike it, the `{__name__="..."}` form is not
    recognised (no exporter of TiKV uses it).
    """
    buckets: dict[float, float] = {}
    sizes: dict[str, float] = {}
    counts: dict[str, float] = {}
    for labels, value in _samples(text, _BUCKET, must_contain='"write"'):
        if labels.get("type") != "write":
            continue
        try:
            bound = float(labels.get("le", ""))
        except ValueError:
            continue
        buckets[bound] = buckets.get(bound, 0.0) + value
    for labels, value in _samples(text, STORE_SIZE):
        kind = labels.get("type", "")
        sizes[kind] = sizes.get(kind, 0.0) + value
    for labels, value in _samples(text, REGION_COUNT):
        kind = labels.get("type", "")
        counts[kind] = counts.get(kind, 0.0) + value
    return ParsedStoreMetrics(
        write_buckets=buckets,
        capacity_bytes=sizes.get("capacity"),
        available_bytes=sizes.get("available"),
        leader_count=_int_or_none(counts.get("leader")),
        region_count=_int_or_none(counts.get("region")),
    )


def _decode(body: bytes, charset: str) -> str:
    try:
        return body.decode(charset, errors="replace")
    except LookupError:  # an unknown charset: TiKV only ever sends UTF-8 anyway
        return body.decode("utf-8", errors="replace")


def _int_or_none(value: float | None) -> int | None:
    if value is None or not math.isfinite(value):
        return None
    return int(value)


def histogram_quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """Quantile `q` of a cumulative histogram {upper bound: count}, like PromQL's.

    Linear interpolation inside the bucket holding the rank (the first bucket starts at 0);
    a rank in the +Inf bucket gives the highest finite bound. Counts that dip (rounding in an
    exporter, float error in deltas) are made monotonic first, as Prometheus does. None when
    there are no observations or no +Inf bucket.
    """
    if not buckets or math.inf not in buckets:
        return None
    bounds = sorted(buckets)
    counts = list(itertools.accumulate((buckets[b] for b in bounds), max))
    total = counts[-1]
    if total <= 0 or math.isnan(total):
        return None
    rank = q * total
    for i, bound in enumerate(bounds):
        if counts[i] >= rank:
            if math.isinf(bound):
                return bounds[i - 1] if i > 0 else None
            lower = bounds[i - 1] if i > 0 else 0.0
            below = counts[i - 1] if i > 0 else 0.0
            in_bucket = counts[i] - below
            if in_bucket <= 0:
                return bound
            return lower + (bound - lower) * (rank - below) / in_bucket
    return None  # pragma: no cover - the +Inf bucket always holds the rank


def bucket_delta(
    previous: Mapping[float, float], current: Mapping[float, float]
) -> dict[float, float] | None:
    """Per-bucket increase between two scrapes; None on a counter reset or changed buckets."""
    if set(previous) != set(current):
        return None
    delta = {bound: current[bound] - previous[bound] for bound in current}
    if any(value < 0 for value in delta.values()):
        return None
    return delta


@dataclass
class _History:
    status_address: str
    buckets: Mapping[float, float]


@dataclass
class ScrapeSource:
    """`MetricsSource` that reads every TiKV's status address directly.

    One instance keeps the previous bucket counts per store between reads, so reuse it across
    monitor cycles. `quantile` is 0.99. `max_concurrency` bounds parallel scrapes. With `tls`
    (a cluster with TLS) status addresses are read over https with its client certificate
    (aiohttp sessions only).
    """

    http: httpx.AsyncClient | aiohttp.ClientSession
    timeout: float = 3.0
    scheme: str = "http"
    max_concurrency: int = 16
    quantile: float = 0.99
    max_body: int = DEFAULT_MAX_PAGE
    #: Seconds a whole read (every store) may take; default twice `timeout`. Stores still
    #: queued or answering then count as failed scrapes, so many slow stores cannot hold the
    #: monitor cycle for `timeout` per batch of `max_concurrency`.
    deadline: float | None = None
    name: SourceName = "scrape"
    tls: TLSContext | None = None
    _history: dict[int, _History] = field(default_factory=dict)
    _aiohttp_timeout: aiohttp.ClientTimeout | None = field(default=None, repr=False)

    async def read(self, targets: Sequence[StoreTarget], at: float) -> MetricsReading:
        semaphore = asyncio.Semaphore(self.max_concurrency)

        async def one(target: StoreTarget) -> StoreMetrics:
            async with semaphore:
                return await self._read_store(target)

        tasks = [asyncio.ensure_future(one(t)) for t in targets]
        done: set[asyncio.Future[StoreMetrics]] = set()
        if tasks:
            done, _ = await asyncio.wait(tasks, timeout=self.read_deadline)
        results = [
            task.result() if task in done else self._unfinished(target)
            for task, target in zip(tasks, targets, strict=True)
        ]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        wanted = {t.store_id for t in targets}
        for store_id in list(self._history):
            if store_id not in wanted:
                del self._history[store_id]
        return MetricsReading(source=self.name, at=at, stores={m.store_id: m for m in results})

    async def _read_store(self, target: StoreTarget) -> StoreMetrics:
        if not target.status_address:
            return StoreMetrics(
                store_id=target.store_id,
                up=None,
                error="PD lists no status_address for this store, so its /metrics is unknown",
            )
        url = f"{self.scheme}://{target.status_address}/metrics"
        try:
            if isinstance(self.http, aiohttp.ClientSession):
                text = await self._get_aiohttp(self.http, url)
            else:
                text = await self._get_httpx(self.http, url)
            parsed = parse_metrics_text(text)
        except _ScrapeFailed as exc:
            return self._failed(target, str(exc))
        except ScrapeParseError as exc:
            return self._failed(target, f"{url}: {exc}")
        return self._reading(target, parsed)

    async def _get_httpx(self, http: httpx.AsyncClient, url: str) -> str:
        try:
            async with (
                asyncio.timeout(self.timeout),
                http.stream("GET", url, timeout=self.timeout) as response,
            ):
                if not response.is_success:
                    raise _ScrapeFailed(f"{url} answered HTTP {response.status_code}")
                body = await read_capped(response, self.max_body)
                charset = response.charset_encoding or "utf-8"
        except (httpx.TimeoutException, TimeoutError) as exc:
            raise _ScrapeFailed(f"{url} did not answer within {self.timeout:g} s") from exc
        except BodyTooLarge as exc:
            raise _ScrapeFailed(f"{url}: {exc}") from exc
        except httpx.HTTPError as exc:
            raise _ScrapeFailed(f"could not read {url}: {exc or type(exc).__name__}") from exc
        return _decode(body, charset)

    async def _get_aiohttp(self, http: aiohttp.ClientSession, url: str) -> str:
        if self._aiohttp_timeout is None or self._aiohttp_timeout.total != self.timeout:
            self._aiohttp_timeout = aiohttp.ClientTimeout(total=self.timeout)
        try:
            async with http.get(
                url,
                timeout=self._aiohttp_timeout,
                allow_redirects=False,
                ssl=self.tls.current() if self.tls is not None else True,
            ) as response:
                if not 200 <= response.status < 300:
                    raise _ScrapeFailed(f"{url} answered HTTP {response.status}")
                body = await self._read_capped(response)
                charset = response.charset or "utf-8"
        except TimeoutError as exc:
            raise _ScrapeFailed(f"{url} did not answer within {self.timeout:g} s") from exc
        except BodyTooLarge as exc:
            raise _ScrapeFailed(f"{url}: {exc}") from exc
        except aiohttp.ClientError as exc:
            reason = None
            if url.startswith("https://"):
                files = self.tls.files if self.tls is not None else None
                reason = describe_failure(exc, url.split("/")[2], files)
            raise _ScrapeFailed(
                f"could not read {url}: {reason or exc or type(exc).__name__}"
            ) from exc
        return _decode(body, charset)

    async def _read_capped(self, response: aiohttp.ClientResponse) -> bytes:
        """The page, or `BodyTooLarge` as soon as it passes `max_body` (the connection is then
        closed by the response's context, not reused)."""
        declared = response.content_length
        if declared is not None and declared > self.max_body:
            raise BodyTooLarge(self.max_body, declared=declared)
        chunks: list[bytes] = []
        received = 0
        async for chunk in response.content.iter_chunked(256 * 1024):
            received += len(chunk)
            if received > self.max_body:
                raise BodyTooLarge(self.max_body, received=received)
            chunks.append(chunk)
        return b"".join(chunks)

    @property
    def read_deadline(self) -> float:
        return self.deadline if self.deadline is not None else 2 * self.timeout

    def _unfinished(self, target: StoreTarget) -> StoreMetrics:
        return self._failed(
            target,
            f"{self.scheme}://{target.status_address}/metrics was not read within the "
            f"{self.read_deadline:g} s every scrape of a cycle shares",
        )

    def _failed(self, target: StoreTarget, error: str) -> StoreMetrics:
        # A failed scrape breaks the delta chain: the next good scrape starts afresh.
        self._history.pop(target.store_id, None)
        return StoreMetrics(store_id=target.store_id, up=False, error=error)

    def _reading(self, target: StoreTarget, parsed: ParsedStoreMetrics) -> StoreMetrics:
        previous = self._history.get(target.store_id)
        p99: float | None = None
        idle = False
        if previous is not None and previous.status_address == target.status_address:
            delta = bucket_delta(previous.buckets, parsed.write_buckets)
            if delta is not None:
                p99 = histogram_quantile(self.quantile, delta)
                idle = p99 is None and delta.get(math.inf, 0.0) == 0.0
        if parsed.write_buckets:
            self._history[target.store_id] = _History(
                target.status_address, dict(parsed.write_buckets)
            )
        else:
            self._history.pop(target.store_id, None)
        found_any = bool(parsed.write_buckets) or any(
            value is not None
            for value in (parsed.capacity_bytes, parsed.leader_count, parsed.region_count)
        )
        return StoreMetrics(
            store_id=target.store_id,
            up=True,
            error=None
            if found_any
            else f"{self.scheme}://{target.status_address}/metrics has none of TiKV's metrics "
            "(is it a TiKV status address?)",
            write_p99_seconds=p99,
            write_idle=idle,
            disk_used_ratio=disk_ratio(parsed.capacity_bytes, parsed.available_bytes),
            capacity_bytes=parsed.capacity_bytes,
            available_bytes=parsed.available_bytes,
            leader_count=parsed.leader_count,
            region_count=parsed.region_count,
        )


@asynccontextmanager
async def open_scrape_session(
    *, keepalive: float = 60.0, connections: int = 100
) -> AsyncIterator[aiohttp.ClientSession]:
    """The HTTP session `ScrapeSource` should scrape with in a long-running monitor.

    Keeps one idle connection per store between cycles (`keepalive` seconds: make it longer
    than the poll interval), at most `connections` open at once. Measured on the simulator at
    100 stores, scraping every store costs about 0.3 ms of CPU per store with this session
    against about 1 ms with `httpx` at best: httpx's pool re-checks every pooled connection
    on each request (quadratic in the store count when it keeps them all), and by default
    keeps 20 idle connections for 5 s, so a 100-store cluster polled every 15 s reconnects
    to every store each cycle. Status addresses are cluster-internal: proxy variables in the
    environment are not used for them (Prometheus does not use them for its scrapes either),
    and cookies are neither kept nor sent.
    """
    async with open_session(keepalive=keepalive, connections=connections) as session:
        yield session
