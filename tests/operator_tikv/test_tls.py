"""`operator_tikv.tls`: contexts from PEM files, their one-line errors, and rotation without a
restart (files changed on disk, or SIGHUP), against the simulator serving HTTPS with client
certificates required (throwaway CAs from `trustme`)."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import shutil
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import httpx
import pytest

from operator_tikv.errors import PDUnavailableError
from operator_tikv.pd import PDClient
from operator_tikv.tls import TLSContext, TLSFileError, TLSFiles, describe_failure, load_context
from operator_tikv.transport import open_aiohttp_transport
from sim import tls as sim_tls
from sim.server import SimServer
from tests.tls_certs import Certs, make_certs
from tikvops.connect import reload_on_sighup


@pytest.fixture
def certs(tmp_path: Path) -> Certs:
    return make_certs(tmp_path / "certs")


@pytest.fixture
async def server(certs: Certs) -> AsyncIterator[SimServer]:
    sim = SimServer(stores=3, regions=50, auto_tick=False)
    await sim.start(ssl_context=sim_tls.server_context(certs.server_dir))
    yield sim
    await sim.stop()


def files(certs: Certs, cert: Path, key: Path) -> TLSFiles:
    return TLSFiles(ca=certs.ca, cert=cert, key=key)


async def stores(tls: TLSContext, url: str) -> int:
    async with (
        open_aiohttp_transport(tls=tls) as transport,
        httpx.AsyncClient(transport=transport, timeout=5.0) as http,
    ):
        return len(await PDClient(http, url, retries=0).list_stores())


async def test_rotated_files_are_used_without_a_restart(
    certs: Certs, server: SimServer, tmp_path: Path
) -> None:
    cert, key = tmp_path / "client.pem", tmp_path / "client-key.pem"
    shutil.copy(certs.other_client_cert, cert)
    shutil.copy(certs.other_client_key, key)
    tls = TLSContext(files(certs, cert, key), check_interval=0.0)
    with pytest.raises(PDUnavailableError, match="refused our TLS client certificate"):
        await stores(tls, server.pd_url)
    # Rotation: the good certificate is written in place; the same context object uses it.
    shutil.copy(certs.client_cert, cert)
    shutil.copy(certs.client_key, key)
    os.utime(cert, ns=(1, 10**18))  # a different mtime even within the clock's resolution
    assert await stores(tls, server.pd_url) == 3
    assert tls.generation == 2


async def test_a_half_written_rotation_keeps_the_previous_context(
    certs: Certs, server: SimServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cert, key = tmp_path / "client.pem", tmp_path / "client-key.pem"
    shutil.copy(certs.client_cert, cert)
    shutil.copy(certs.client_key, key)
    tls = TLSContext(files(certs, cert, key), check_interval=0.0)
    before = tls.current()
    cert.write_text("-----BEGIN CERTIFICATE-----\ntruncated")
    with caplog.at_level(logging.WARNING, logger="operator_tikv.tls"):
        assert tls.current() is before
        assert tls.current() is before
    assert await stores(tls, server.pd_url) == 3
    assert tls.last_error is not None and "is not a PEM certificate" in tls.last_error
    warnings = [r for r in caplog.records if "not reloaded" in r.getMessage()]
    assert len(warnings) == 1  # once per state of the files, not once per request


async def test_sighup_reloads_now(certs: Certs, tmp_path: Path) -> None:
    tls = TLSContext(files(certs, certs.client_cert, certs.client_key), check_interval=3600)
    with reload_on_sighup(tls):
        os.kill(os.getpid(), signal.SIGHUP)
        for _ in range(50):
            if tls.generation == 2:
                break
            await asyncio.sleep(0.02)
    assert tls.generation == 2


def test_file_errors_are_one_line(certs: Certs, tmp_path: Path) -> None:
    cases = {
        "cert without key": (
            TLSFiles(ca=certs.ca, cert=certs.client_cert),
            "TIKVOPS_TLS_CERT is set but TIKVOPS_TLS_KEY is not: a client certificate needs both",
        ),
        "unreadable key": (
            TLSFiles(cert=certs.client_cert, key=tmp_path / "nope.pem"),
            f"cannot read TIKVOPS_TLS_KEY file {tmp_path / 'nope.pem'}: No such file or directory",
        ),
        "not a CA": (
            TLSFiles(ca=certs.client_key),
            f"TIKVOPS_TLS_CA file {certs.client_key} holds no PEM CA certificate",
        ),
        "key mismatch": (
            TLSFiles(cert=certs.client_cert, key=certs.other_client_key),
            f"TIKVOPS_TLS_KEY file {certs.other_client_key} does not match the certificate in "
            f"TIKVOPS_TLS_CERT file {certs.client_cert}",
        ),
    }
    for name, (given, message) in cases.items():
        with pytest.raises(TLSFileError) as caught:
            load_context(given)
        assert message in str(caught.value), name
        assert "\n" not in str(caught.value)


async def test_a_plain_http_server_behind_an_https_url_is_named(certs: Certs) -> None:
    plain = SimServer(stores=1, regions=10, auto_tick=False)
    await plain.start()
    try:
        tls = TLSContext(files(certs, certs.client_cert, certs.client_key))
        url = plain.pd_url.replace("http://", "https://")
        with pytest.raises(PDUnavailableError, match="does not speak TLS"):
            await stores(tls, url)
    finally:
        await plain.stop()


def test_a_reset_right_after_the_handshake_is_described_as_the_certificate_refused(
    tmp_path: Path,
) -> None:
    """Under load a TLS 1.3 server's refusal can arrive as a connection reset (our request was
    unread when it closed): on https with a client certificate that is the refusal; a reset
    on plain http is not a TLS failure."""
    cert, key, ca = tmp_path / "c.pem", tmp_path / "k.pem", tmp_path / "ca.pem"
    reset = aiohttp.ClientOSError(errno.ECONNRESET, "Connection reset by peer")
    wrapped = RuntimeError("request failed")
    wrapped.__cause__ = reset
    with_cert = TLSFiles(ca=ca, cert=cert, key=key)
    said = describe_failure(wrapped, "pd:2379", with_cert)
    assert said is not None and "refused our TLS client certificate" in said and str(cert) in said
    without = describe_failure(wrapped, "pd:2379", TLSFiles(ca=ca))
    assert without is not None and "requires a TLS client certificate" in without
    assert describe_failure(wrapped, "pd:2379", with_cert, https=False) is None
    other = aiohttp.ClientOSError(errno.ECONNREFUSED, "Connection refused")
    assert describe_failure(other, "pd:2379", with_cert) is None
