"""Prometheus behind authentication and TLS, through `open_metrics_source`: a small loopback
server answers the query API only when the request carries the expected `Authorization`
header (basic auth, a bearer token from the environment or from a file), optionally over
HTTPS with its own CA. Secrets are `SecretStr` and appear in no log line."""

from __future__ import annotations

import base64
import logging
import ssl
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from operator_tikv.metrics import PrometheusUnavailable
from operator_tikv.queries import PrometheusSource
from tests.tls_certs import Certs, make_certs
from tikvops.connect import prometheus_auth
from tikvops.settings import ConfigError, Settings
from tikvops.wiring import open_metrics_source

EMPTY_VECTOR = {"status": "success", "data": {"resultType": "vector", "result": []}}
PASSWORD = "pr0m-s3cret-passw0rd"
TOKEN = "eyJ-bearer-token-never-logged"

Serve = Callable[..., Coroutine[Any, Any, str]]


class Guarded:
    """Prometheus's query endpoint behind one accepted `Authorization` value."""

    def __init__(self) -> None:
        self.accept = ""
        self.seen: list[str | None] = []

    async def query(self, request: web.Request) -> web.Response:
        got = request.headers.get("Authorization")
        self.seen.append(got)
        if got != self.accept:
            return web.Response(status=401, text="Unauthorized\n")
        return web.json_response(EMPTY_VECTOR)


@pytest.fixture
async def guarded() -> AsyncIterator[tuple[Guarded, Serve]]:
    state = Guarded()
    runners: list[web.AppRunner] = []

    async def serve(ssl_context: ssl.SSLContext | None = None) -> str:
        app = web.Application()
        app.router.add_post("/api/v1/query", state.query)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        return f"{'https' if ssl_context else 'http'}://127.0.0.1:{port}"

    yield state, serve
    for runner in runners:
        await runner.cleanup()


def settings(url: str, **values: Any) -> Settings:
    return Settings.model_validate(
        {"pd_url": "http://127.0.0.1:2379", "prometheus_url": url, **values}
    )


async def query(config: Settings) -> None:
    async with open_metrics_source(config) as source:
        assert isinstance(source, PrometheusSource)
        await source.client.query_vector("up")


async def test_basic_auth(guarded: tuple[Guarded, Serve], caplog: pytest.LogCaptureFixture) -> None:
    state, serve = guarded
    url = await serve()
    state.accept = "Basic " + base64.b64encode(f"tikvops:{PASSWORD}".encode()).decode()
    config = settings(url, prometheus_username="tikvops", prometheus_password=PASSWORD)
    with caplog.at_level(logging.DEBUG):
        await query(config)
    assert state.seen == [state.accept]
    with pytest.raises(PrometheusUnavailable, match="HTTP 401"):
        await query(settings(url, prometheus_username="tikvops", prometheus_password="wrong"))
    assert PASSWORD not in caplog.text and PASSWORD not in repr(config)
    assert PASSWORD not in str(config.model_dump())


async def test_bearer_token_from_the_environment(
    guarded: tuple[Guarded, Serve],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    state, serve = guarded
    url = await serve()
    state.accept = f"Bearer {TOKEN}"
    monkeypatch.setenv("TIKVOPS_PROMETHEUS_BEARER_TOKEN", TOKEN)
    monkeypatch.setenv("TIKVOPS_PROMETHEUS_URL", url)
    config = Settings(_env_file=None)
    with caplog.at_level(logging.DEBUG):
        await query(config)
    assert state.seen == [f"Bearer {TOKEN}"]
    assert TOKEN not in caplog.text and TOKEN not in repr(config)
    assert TOKEN not in repr(prometheus_auth(config))


async def test_bearer_token_file_is_read_for_every_request(
    guarded: tuple[Guarded, Serve], tmp_path: Path
) -> None:
    state, serve = guarded
    url = await serve()
    token_file = tmp_path / "token"
    token_file.write_text("first-token\n")
    config = settings(url, prometheus_bearer_token_file=token_file)
    state.accept = "Bearer first-token"
    await query(config)
    token_file.write_text("rotated-token\n")  # rotated: used at once, no restart
    state.accept = "Bearer rotated-token"
    await query(config)
    assert state.seen == ["Bearer first-token", "Bearer rotated-token"]
    token_file.unlink()
    with pytest.raises(
        PrometheusUnavailable, match="cannot read TIKVOPS_PROMETHEUS_BEARER_TOKEN_FILE"
    ):
        await query(config)


async def test_prometheus_over_https_with_its_own_ca_and_client_certificate(
    guarded: tuple[Guarded, Serve], tmp_path: Path
) -> None:
    certs: Certs = make_certs(tmp_path / "certs")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(
        str(certs.server_dir / "server.pem"), str(certs.server_dir / "server-key.pem")
    )
    server_context.load_verify_locations(cafile=str(certs.ca))
    server_context.verify_mode = ssl.CERT_REQUIRED
    state, serve = guarded
    url = await serve(server_context)
    state.accept = f"Bearer {TOKEN}"
    config = settings(
        url,
        prometheus_bearer_token=TOKEN,
        prometheus_tls_ca=certs.ca,
        prometheus_tls_cert=certs.client_cert,
        prometheus_tls_key=certs.client_key,
    )
    await query(config)
    assert state.seen == [f"Bearer {TOKEN}"]
    # Without its CA, Prometheus's certificate is refused with the Prometheus setting's name.
    no_ca = settings(url, prometheus_bearer_token=TOKEN)
    with pytest.raises(PrometheusUnavailable, match="set TIKVOPS_PROMETHEUS_TLS_CA"):
        await query(no_ca)


def test_contradicting_auth_settings_are_refused() -> None:
    config = settings(
        "http://127.0.0.1:9090",
        prometheus_username="u",
        prometheus_password="p",
        prometheus_bearer_token="t",
    )
    with pytest.raises(ConfigError) as caught:
        prometheus_auth(config)
    assert caught.value.problems == [
        "Prometheus basic auth and a bearer token are both set: give one"
    ]
