"""How to reach a production cluster, from the settings: TLS for PD and the TiKV status ports,
the PD member list, and Prometheus's authentication and TLS.

- `cluster_tls(settings)` / `prometheus_tls(settings)`: a reloading `TLSContext` (None when no
  TLS setting is given: plain http, or https against the system's CAs). Problems with the files
  raise `operator_tikv.tls.TLSFileError` (one line); inconsistent settings raise `ConfigError`.
  `TIKVOPS_TLS_INSECURE_SKIP_VERIFY=true` (or the Prometheus one) prints a warning at start.
- Several PD members: `TIKVOPS_PD_URL` may list them comma-separated; the PD client takes the
  list as it is (`operator_tikv.members`).
- `prometheus_auth(settings)`: basic auth or a bearer token (from the environment, or read
  from its file on every request, so a rotated token is used at once). Secrets stay
  `SecretStr` until the request is built and are never logged.
- `reload_on_sighup(context)`: SIGHUP reloads every live TLS context at once (certificates are
  also reloaded when their files change).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import weakref
from collections.abc import Generator, Iterator
from pathlib import Path

import httpx

from operator_tikv.tls import TLSContext, TLSFiles
from tikvops.settings import ConfigError, Settings

logger = logging.getLogger(__name__)

__all__ = [
    "BearerTokenFile",
    "check_settings",
    "cluster_tls",
    "prometheus_auth",
    "prometheus_tls",
    "reload_on_sighup",
]


def check_settings(settings: Settings) -> None:
    """Raise ConfigError when the TLS or Prometheus-auth settings contradict each other."""
    problems = settings.connectivity_problems()
    if problems:
        raise ConfigError(problems)


_WARNED: set[str] = set()


def _warn_insecure(what: str, setting: str) -> None:
    """Once per process (the PD client and the scrape source each build a context)."""
    if setting in _WARNED:
        return
    _WARNED.add(setting)
    text = (
        f"warning: {setting}=true: the certificates of {what} are NOT verified; anyone on the "
        "network path can impersonate them. Use this only in a lab."
    )
    logger.warning(text)
    sys.stderr.write(f"tikvops: {text}\n")
    sys.stderr.flush()


def _tls_files(settings: Settings, prefix: str) -> TLSFiles:
    """The TLS files of the settings `<prefix>_ca`, `_cert`, `_key`, `_insecure_skip_verify`,
    named by their environment variables in messages."""
    env = f"TIKVOPS_{prefix.upper()}"
    return TLSFiles(
        ca=getattr(settings, f"{prefix}_ca"),
        cert=getattr(settings, f"{prefix}_cert"),
        key=getattr(settings, f"{prefix}_key"),
        insecure_skip_verify=getattr(settings, f"{prefix}_insecure_skip_verify"),
        ca_setting=f"{env}_CA",
        cert_setting=f"{env}_CERT",
        key_setting=f"{env}_KEY",
    )


def _context(files: TLSFiles, https: bool, what: str) -> TLSContext | None:
    if not files.configured and not https:
        return None
    if files.insecure_skip_verify:
        _warn_insecure(what, files.ca_setting.removesuffix("_CA") + "_INSECURE_SKIP_VERIFY")
    return TLSContext(files)


def cluster_tls(settings: Settings) -> TLSContext | None:
    """The TLS context for PD and the TiKV status ports, or None without TLS settings (plain
    http, or https against the system's CAs through aiohttp's default)."""
    check_settings(settings)
    return _context(_tls_files(settings, "tls"), False, "PD and the TiKV stores")


def prometheus_tls(settings: Settings) -> TLSContext | None:
    """The TLS context for Prometheus (its own CA and client certificate), or None for plain
    http without TLS settings. An https URL without settings gets the system's CAs, with
    failures naming the Prometheus settings."""
    check_settings(settings)
    https = (settings.prometheus_url or "").startswith("https://")
    return _context(_tls_files(settings, "prometheus_tls"), https, "Prometheus")


class BearerTokenFile(httpx.Auth):
    """`Authorization: Bearer <token>` with the token read from `path` for every request (as
    Prometheus's own `credentials_file` does), so a rotated token is used at once."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        try:
            token = self.path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise httpx.RequestError(
                f"cannot read TIKVOPS_PROMETHEUS_BEARER_TOKEN_FILE {self.path}: "
                f"{exc.strerror or type(exc).__name__}",
                request=request,
            ) from None
        if not token:
            raise httpx.RequestError(
                f"TIKVOPS_PROMETHEUS_BEARER_TOKEN_FILE {self.path} is empty", request=request
            )
        request.headers["Authorization"] = f"Bearer {token}"
        yield request


class _BearerToken(httpx.Auth):
    def __init__(self, token: str) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request

    def __repr__(self) -> str:
        return "BearerToken(**********)"


def prometheus_auth(settings: Settings) -> httpx.Auth | None:
    """Basic auth, a bearer token, or None, from the Prometheus settings."""
    check_settings(settings)
    if settings.prometheus_username is not None:
        password = settings.prometheus_password
        return httpx.BasicAuth(
            settings.prometheus_username, password.get_secret_value() if password else ""
        )
    if settings.prometheus_bearer_token is not None:
        return _BearerToken(settings.prometheus_bearer_token.get_secret_value())
    if settings.prometheus_bearer_token_file is not None:
        return BearerTokenFile(settings.prometheus_bearer_token_file)
    return None


_LIVE: weakref.WeakSet[TLSContext] = weakref.WeakSet()
_INSTALLED: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()


def _reload_all() -> None:
    for context in list(_LIVE):
        if context.reload():
            logger.info("SIGHUP: TLS certificates reloaded")


@contextlib.contextmanager
def reload_on_sighup(*contexts: TLSContext | None) -> Iterator[None]:
    """While inside, SIGHUP reloads these contexts (with every other live one)."""
    live = [c for c in contexts if c is not None]
    for context in live:
        _LIVE.add(context)
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    if live and loop is not None and loop not in _INSTALLED:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGHUP, _reload_all)
            _INSTALLED.add(loop)
    try:
        yield
    finally:
        for context in live:
            _LIVE.discard(context)
