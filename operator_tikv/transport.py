"""An `httpx` transport that sends requests over an `aiohttp` session.

The clients of PD and Prometheus keep httpx's API (and tests keep mocking it with respx);
only the connection layer underneath changes. Measured on this project's simulator, httpx's
own transport (httpcore, anyio, h11) costs about 3 ms of CPU per PD store-list request and
about 1 ms per small request; over aiohttp the same requests cost about a third of that,
which is most of the monitor's per-cycle CPU.

Semantics kept from httpx's own transport:

- timeouts come from the request (`httpx.Timeout` of the client or the call): `connect`
  bounds connecting, `read` each wait for data; they raise `httpx.ConnectTimeout` and
  `httpx.ReadTimeout`;
- errors are httpx's: `httpx.ConnectError` when no connection was made (the request was not
  sent), `httpx.RemoteProtocolError` when the server closed the connection or sent a broken
  answer, `httpx.ReadError` for other socket errors after connecting;
- redirects are not followed here (the httpx client decides), the body is handed back
  undecoded (httpx decodes `Content-Encoding`), cookies are httpx's business (the session
  keeps none);
- the body is streamed, not buffered: the response returns once its headers have arrived and
  its body is read as the caller iterates it (`httpx.AsyncClient.stream`, or `send(...,
  stream=True)`), so a caller can stop reading an answer that is too large
  (`operator_tikv.limits.read_capped`) and a total deadline around the call (`asyncio.timeout`)
  also bounds the body; closing the response early closes its connection;
- proxy variables of the environment (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY`)
  are honoured, as httpx does by default; they are read once per host (httpx reads them once
  per client), not on every request as aiohttp's `trust_env` would (in a thread, together
  with `~/.netrc`, whose credentials httpx never sends).

Idle connections are kept per host for `keepalive` seconds (httpx keeps them 5 s, so a
15 s poll reconnects every cycle).

TLS (`tls=`, an `operator_tikv.tls.TLSContext`): `https://` requests use its current context
(reloaded when the certificate files change), and a TLS failure is raised as `TLSConnectError`
(no request was sent) or `TLSDisconnectError` (the server closed the TLS connection without
answering), whose message is the one-line reason from `operator_tikv.tls.describe_failure`.
"""

from __future__ import annotations

import ssl
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import httpx

from operator_tikv.sessions import open_session
from operator_tikv.tls import TLSContext, describe_failure

# The body is read whole before sending, so it goes out with its Content-Length, never chunked.
_NOT_FORWARDED = frozenset({"transfer-encoding"})


_CHUNK = 64 * 1024


class TLSConnectError(httpx.ConnectError):
    """No TLS connection could be made (the request was not sent); the message says why."""


class TLSDisconnectError(httpx.RemoteProtocolError):
    """The server closed a TLS connection without answering; the message says why."""


class _Body(httpx.AsyncByteStream):
    """The response body, read from the socket as it is iterated; aiohttp's errors become
    httpx's. Closing it before the end closes the connection (it cannot be reused)."""

    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_chunked(_CHUNK):
                yield chunk
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _translate(exc, self._request) from exc

    async def aclose(self) -> None:
        if self._response.content.is_eof():
            self._response.release()
        else:
            self._response.close()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """`httpx.AsyncBaseTransport` over an `aiohttp.ClientSession` the caller owns."""

    def __init__(self, session: aiohttp.ClientSession, *, tls: TLSContext | None = None) -> None:
        self._session = session
        self._proxies: dict[tuple[str, str, int | None], str | None] = {}
        self._tls = tls

    def _ssl_for(self, url: httpx.URL) -> ssl.SSLContext | bool:
        if self._tls is not None and url.scheme == "https":
            return self._tls.current()
        return True  # aiohttp's default: verify against the system's CAs

    def _tls_failure(self, exc: BaseException, request: httpx.Request) -> httpx.HTTPError | None:
        """The TLS error for `exc` when it is a TLS failure of an https request, else None."""
        if request.url.scheme != "https" or not isinstance(
            exc, aiohttp.ClientSSLError | aiohttp.ServerDisconnectedError
        ):
            return None
        files = self._tls.files if self._tls is not None else None
        reason = describe_failure(exc, f"{request.url.host}:{request.url.port or 443}", files)
        if reason is None:
            return None
        if isinstance(exc, aiohttp.ClientConnectorError):
            return TLSConnectError(reason, request=request)
        return TLSDisconnectError(reason, request=request)

    def _proxy_for(self, url: httpx.URL) -> str | None:
        key = (url.scheme, url.host, url.port)
        if key not in self._proxies:
            self._proxies[key] = env_proxy(url.scheme, url.host, url.port)
        return self._proxies[key]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout") or {}
        timeout = aiohttp.ClientTimeout(
            total=None,
            sock_connect=timeouts.get("connect"),
            sock_read=timeouts.get("read"),
        )
        headers = [
            (name, value)
            for name, value in request.headers.multi_items()
            if name.lower() not in _NOT_FORWARDED
        ]
        body = await request.aread()
        try:
            response = await self._session.request(
                request.method,
                str(request.url),
                headers=headers,
                data=body or None,
                allow_redirects=False,
                auto_decompress=False,
                timeout=timeout,
                proxy=self._proxy_for(request.url),
                ssl=self._ssl_for(request.url),
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise (self._tls_failure(exc, request) or _translate(exc, request)) from exc
        reason = (response.reason or "").encode("latin-1", errors="replace")
        return httpx.Response(
            response.status,
            headers=list(response.raw_headers),
            stream=_Body(response, request),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": reason},
        )


def _translate(exc: BaseException, request: httpx.Request) -> httpx.HTTPError:
    """The httpx error that matches an aiohttp one (see the module docstring)."""
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(_say(exc), request=request)
    if isinstance(exc, aiohttp.ServerTimeoutError | TimeoutError):
        return httpx.ReadTimeout(_say(exc), request=request)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError(_say(exc), request=request)
    if isinstance(exc, aiohttp.InvalidURL):
        return httpx.UnsupportedProtocol(_say(exc), request=request)
    if isinstance(
        exc,
        aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError | aiohttp.ClientResponseError,
    ):
        return httpx.RemoteProtocolError(_say(exc), request=request)
    return httpx.ReadError(_say(exc), request=request)


def env_proxy(scheme: str, host: str, port: int | None = None) -> str | None:
    """The proxy URL the environment sets for this origin, or None (none set, or `NO_PROXY`)."""
    proxies = urllib.request.getproxies_environment()
    if not proxies:
        return None
    if _bypassed(host, port, proxies.get("no", "")):
        return None
    return proxies.get(scheme) or proxies.get("all") or None


def _bypassed(host: str, port: int | None, no_proxy: str) -> bool:
    """`NO_PROXY` as curl and httpx read it: `*`, or hosts and domain suffixes, with an
    optional port (`.example.com`, `example.com`, `10.0.0.1`, `pd:2379`)."""
    host = host.lower().strip("[]")
    for entry in (e.strip().lower() for e in no_proxy.split(",")):
        if not entry:
            continue
        if entry == "*":
            return True
        name, entry_port = entry, ""
        if entry.count(":") == 1 or entry.startswith("["):  # a port, unless a bare IPv6
            name, _, entry_port = entry.rpartition(":")
        if entry_port and port is not None and entry_port != str(port):
            continue
        name = name.strip("[]").lstrip(".")
        if host == name or host.endswith("." + name):
            return True
    return False


def _say(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


@asynccontextmanager
async def open_aiohttp_transport(
    *, keepalive: float = 60.0, tls: TLSContext | None = None
) -> AsyncIterator[AiohttpTransport]:
    """An `AiohttpTransport` over its own session (no connection limit), closed on exit.

    `tls` gives the context for https:// requests (client certificate, cluster CA).

    Pass it as `transport=` to an `httpx.AsyncClient`; the client's timeouts still apply.
    """
    async with open_session(keepalive=keepalive) as session:
        yield AiohttpTransport(session, tls=tls)
