"""TLS for PD, TiKV status ports and Prometheus: contexts from PEM files, reloaded when the files
change, and one-line reasons for every way a TLS connection fails.

A TLS-enabled cluster (TiUP's `enable_tls`, TiDB Operator's `tlsCluster`) accepts only clients
that present a certificate signed by the cluster CA; `TLSFiles` holds the three paths pd-ctl
takes (`--cacert`, `--cert`, `--key`). Verification is always on unless
`insecure_skip_verify` is set explicitly (the composition root warns at start).

- `load_context(files)` builds an `ssl.SSLContext` or raises `TLSFileError` naming the setting
  and the file: unreadable, not PEM, a key that does not match its certificate, a certificate
  without a key.
- `TLSContext` keeps the current context and rebuilds it when a file's size or modification
  time changes (checked at most once a second) or on `reload()` (SIGHUP), so certificates are
  rotated without a restart. A rotation caught half-written keeps the previous context and
  logs why, once.
- `describe_failure(exc, host, files)` turns an `ssl`/aiohttp failure into one sentence:
  unknown CA, expired (or not yet valid) certificate, a certificate for another name, a server
  that wants a client certificate we do not have or refuses ours, a server that does not speak
  TLS.
"""

from __future__ import annotations

import errno
import logging
import os
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp

logger = logging.getLogger(__name__)

__all__ = [
    "TLSContext",
    "TLSError",
    "TLSFileError",
    "TLSFiles",
    "describe_failure",
    "load_context",
]

# OpenSSL X509_V_ERR_* codes (`ssl.SSLCertVerificationError.verify_code`).
_UNTRUSTED = {2, 18, 19, 20, 21, 27}
_EXPIRED = 10
_NOT_YET_VALID = 9
_NAME_MISMATCH = {62, 64}
# Alerts a server sends when it refuses our client certificate (or its absence).
_CERT_REQUIRED = {"TLSV13_ALERT_CERTIFICATE_REQUIRED"}
_CERT_REFUSED = {
    "SSLV3_ALERT_BAD_CERTIFICATE",
    "TLSV1_ALERT_UNKNOWN_CA",
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
    "TLSV1_ALERT_ACCESS_DENIED",
    "SSLV3_ALERT_HANDSHAKE_FAILURE",
}


class TLSError(Exception):
    """A TLS problem; `str()` is one sentence for people."""


class TLSFileError(TLSError):
    """The certificate files cannot be used: unreadable, not PEM, or a key that does not match."""


@dataclass(frozen=True)
class TLSFiles:
    """PEM paths as pd-ctl takes them, and the names of the settings that give them (for
    messages). Without `ca` the system's CAs are trusted; `cert` and `key` come together."""

    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    insecure_skip_verify: bool = False
    ca_setting: str = "TIKVOPS_TLS_CA"
    cert_setting: str = "TIKVOPS_TLS_CERT"
    key_setting: str = "TIKVOPS_TLS_KEY"

    @property
    def has_client_cert(self) -> bool:
        return self.cert is not None and self.key is not None

    @property
    def configured(self) -> bool:
        return self.ca is not None or self.cert is not None or self.insecure_skip_verify

    def paths(self) -> tuple[Path, ...]:
        return tuple(p for p in (self.ca, self.cert, self.key) if p is not None)


def _readable(path: Path, setting: str) -> None:
    try:
        with path.open("rb") as handle:
            handle.read(1)
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise TLSFileError(f"cannot read {setting} file {path}: {why}") from None


def _no_password() -> bytes:
    raise TLSFileError("encrypted")


def load_context(files: TLSFiles) -> ssl.SSLContext:
    """A client context for these files; raises `TLSFileError` with one line."""
    if (files.cert is None) != (files.key is None):
        missing = files.key_setting if files.key is None else files.cert_setting
        given = files.cert_setting if files.key is None else files.key_setting
        raise TLSFileError(f"{given} is set but {missing} is not: a client certificate needs both")
    for path, setting in (
        (files.ca, files.ca_setting),
        (files.cert, files.cert_setting),
        (files.key, files.key_setting),
    ):
        if path is not None:
            _readable(path, setting)
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if files.ca is not None:
        try:
            context.load_verify_locations(cafile=str(files.ca))
        except (ssl.SSLError, ValueError) as exc:
            raise TLSFileError(
                f"{files.ca_setting} file {files.ca} holds no PEM CA certificate ({_short(exc)})"
            ) from None
    if files.cert is not None and files.key is not None:
        _load_client_cert(context, files, files.cert, files.key)
    if files.insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _load_client_cert(context: ssl.SSLContext, files: TLSFiles, cert: Path, key: Path) -> None:
    try:
        context.load_cert_chain(str(cert), str(key), password=_no_password)
    except TLSFileError:
        raise TLSFileError(
            f"{files.key_setting} file {key} is encrypted; give an unencrypted PEM key "
            "(as pd-ctl and TiKV take it)"
        ) from None
    except ssl.SSLError as exc:
        text = str(exc)
        if "KEY_VALUES_MISMATCH" in text or "key values mismatch" in text:
            raise TLSFileError(
                f"{files.key_setting} file {key} does not match the certificate in "
                f"{files.cert_setting} file {cert}; give the key the certificate was issued for"
            ) from None
        raise TLSFileError(
            f"{files.cert_setting} file {cert} or {files.key_setting} file {key} is not a PEM "
            f"certificate and private key ({_short(exc)})"
        ) from None


def _short(exc: BaseException) -> str:
    text = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
    return str(text)


Signature = tuple[tuple[str, int, int], ...]


def _signature(paths: tuple[Path, ...]) -> Signature:
    found: list[tuple[str, int, int]] = []
    for path in paths:
        try:
            stat = os.stat(path)
        except OSError:
            found.append((str(path), -1, -1))
        else:
            found.append((str(path), stat.st_mtime_ns, stat.st_size))
    return tuple(found)


class TLSContext:
    """The current client context for `files`, rebuilt when they change or on `reload()`.

    Construction loads the files (raising `TLSFileError`). `current()` is cheap: it looks at
    the files at most every `check_interval` seconds. `generation` counts successful loads.
    """

    def __init__(
        self,
        files: TLSFiles,
        *,
        check_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.files = files
        self.check_interval = check_interval
        self._clock = clock
        self._lock = threading.Lock()
        self._signature = _signature(files.paths())
        self._context = load_context(files)
        self._checked = clock()
        self._failed_signature: Signature | None = None
        self.generation = 1
        self.last_error: str | None = None

    def current(self) -> ssl.SSLContext:
        now = self._clock()
        if now - self._checked >= self.check_interval:
            self._checked = now
            if _signature(self.files.paths()) != self._signature:
                self.reload()
        return self._context

    def reload(self) -> bool:
        """Load the files again now; True when the new context is in use. On failure the
        previous context stays and the reason is logged (once per state of the files)."""
        with self._lock:
            signature = _signature(self.files.paths())
            try:
                context = load_context(self.files)
            except TLSFileError as exc:
                self.last_error = str(exc)
                if signature != self._failed_signature:
                    self._failed_signature = signature
                    logger.warning("TLS certificates not reloaded, keeping the previous: %s", exc)
                return False
            self._context = context
            self._signature = signature
            self._failed_signature = None
            self.last_error = None
            self.generation += 1
            logger.info("TLS certificates reloaded (%s)", ", ".join(map(str, self.files.paths())))
            return True


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _reset(exc: BaseException) -> bool:
    """Whether the peer reset the connection: after TLS 1.3's handshake, a server that refuses
    our certificate may close with our request unread, which resets the connection before its
    alert can be read (seen under load)."""
    return any(isinstance(item, OSError) and item.errno == errno.ECONNRESET for item in _chain(exc))


def describe_failure(
    exc: BaseException, host: str, files: TLSFiles | None, *, https: bool = True
) -> str | None:
    """One sentence for a TLS failure reaching `host`, or None when `exc` is not one.

    A server that closes a fresh TLS connection without answering is, in practice, a server
    that refused our client certificate or wanted one (TLS 1.3 checks it after our side of
    the handshake, and not every server sends the alert, or the alert is lost to a reset), so it
    is described as such when
    `https` is true."""
    files = files or TLSFiles()
    for item in _chain(exc):
        if isinstance(item, aiohttp.ClientError):
            continue  # aiohttp's wrappers also subclass ssl's errors; the cause is the real one
        if isinstance(item, ssl.SSLCertVerificationError):
            return _verify_failure(item, host, files)
        if isinstance(item, ssl.SSLError):
            reason = str(getattr(item, "reason", "") or "")
            if reason in _CERT_REQUIRED or (reason in _CERT_REFUSED and not files.has_client_cert):
                return _no_client_cert(host, files)
            if reason in _CERT_REFUSED:
                return _client_cert_refused(host, files)
            if reason in {"WRONG_VERSION_NUMBER", "UNKNOWN_PROTOCOL", "HTTP_REQUEST"}:
                return (
                    f"{host} does not speak TLS (the handshake got a plain answer); use an "
                    "http:// URL for it, or enable TLS on the server"
                )
            return f"TLS with {host} failed: {_short(item)}"
    if https and (isinstance(exc, aiohttp.ServerDisconnectedError) or _reset(exc)):
        if files.has_client_cert:
            return _client_cert_refused(host, files)
        return _no_client_cert(host, files)
    return None


def _verify_failure(exc: ssl.SSLCertVerificationError, host: str, files: TLSFiles) -> str:
    code = exc.verify_code
    said = str(exc.verify_message or "").strip().rstrip(".")
    if code in _UNTRUSTED:
        trusted = f"{files.ca_setting} file {files.ca}" if files.ca else "the system's CAs"
        advice = (
            f"check that {files.ca_setting} is the CA that signed the cluster's certificates"
            if files.ca
            else f"set {files.ca_setting} to the cluster's CA file"
        )
        return (
            f"the TLS certificate of {host} is not signed by a CA we trust ({said}; trusted: "
            f"{trusted}); {advice}"
        )
    if code == _EXPIRED:
        return (
            f"the TLS certificate of {host} has expired; renew the server's certificate "
            "(or check this machine's clock)"
        )
    if code == _NOT_YET_VALID:
        return f"the TLS certificate of {host} is not valid yet; check this machine's clock"
    if code in _NAME_MISMATCH:
        return (
            f"the TLS certificate of {host} is not issued for {host} ({said}); use an address "
            "the certificate names, or reissue it with this one in its subject alternative names"
        )
    return f"the TLS certificate of {host} was refused: {said or _short(exc)}"


def _no_client_cert(host: str, files: TLSFiles) -> str:
    return (
        f"{host} requires a TLS client certificate and none is configured; set "
        f"{files.cert_setting} and {files.key_setting} (a certificate signed by the cluster CA)"
    )


def _client_cert_refused(host: str, files: TLSFiles) -> str:
    return (
        f"{host} refused our TLS client certificate ({files.cert_setting} file {files.cert}); "
        "it must be signed by the CA the server trusts, and its CN allowed by cert-allowed-cn"
    )
