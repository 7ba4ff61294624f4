"""Logging setup: text or JSON lines, context fields, and redaction of secrets.

`configure_logging(level, fmt)` installs one handler on the root logger. Every record it emits
carries the context fields (`incident_id`, `proposal_id`, `request_id`, and anything else set
with `log_context(...)` or passed with `extra=`), and goes through a `RedactingFilter` that masks
Slack tokens (`xoxb-…`, `xoxp-…`, `xapp-…`, rotated `xoxe.xoxp-…`), Anthropic keys (`sk-ant-…`),
Socket Mode connection tickets and the exact values of configured secrets, in the message, its
%-arguments, exception tracebacks and stack traces. Tokens never reach the log output.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import IO, Any, Literal

from pydantic import SecretStr

from tikvops.settings import Settings

LogFormat = Literal["text", "json"]

CONTEXT_FIELDS: tuple[str, ...] = ("incident_id", "proposal_id", "request_id")

REDACTED = "[REDACTED]"

# (pattern, replacement); order matters only where one pattern could contain another.
TOKEN_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"xox[a-z](?:\.xox[a-z])?-[A-Za-z0-9][A-Za-z0-9-]*"), "[REDACTED:slack-token]"),
    (re.compile(r"xapp-[A-Za-z0-9][A-Za-z0-9-]*"), "[REDACTED:slack-app-token]"),
    (re.compile(r"sk-ant-[A-Za-z0-9_-]+"), "[REDACTED:anthropic-key]"),
    (re.compile(r"(?<=ticket=)[A-Za-z0-9_.~%-]+"), "[REDACTED:ticket]"),
)

# Secrets shorter than this are not masked by value: masking every "abc" in every line would make
# logs unreadable, and a secret that short protects nothing anyway.
MIN_SECRET_LENGTH = 4

_EMPTY: Mapping[str, object] = MappingProxyType({})
_context: ContextVar[Mapping[str, object]] = ContextVar("tikvops_log_context", default=_EMPTY)

# Attributes every LogRecord has; anything else on a record came from `extra=` or the context.
_RECORD_ATTRS = frozenset(
    logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None).__dict__
) | {"message", "asctime", "taskName"}
_CONTEXT_KEYS_ATTR = "_tikvops_context_keys"


@contextmanager
def log_context(**fields: object) -> Iterator[None]:
    """Add fields to every record logged inside the block (this task and tasks it creates).
    Nested blocks add to the outer fields; `None` values are left out."""
    merged = {**_context.get(), **{k: v for k, v in fields.items() if v is not None}}
    token = _context.set(MappingProxyType(merged))
    try:
        yield
    finally:
        _context.reset(token)


def current_context() -> dict[str, object]:
    """The fields `log_context` has set here."""
    return dict(_context.get())


class Redactor:
    """Masks token-shaped strings and the exact values of known secrets."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: tuple[str, ...] = ()
        for secret in secrets:
            self.add_secret(secret)

    def add_secret(self, value: str) -> None:
        if len(value) >= MIN_SECRET_LENGTH and value not in self._secrets:
            # Longest first, so a secret containing another is masked whole.
            self._secrets = tuple(sorted((*self._secrets, value), key=len, reverse=True))

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        for pattern, replacement in TOKEN_PATTERNS:
            text = pattern.sub(replacement, text)
        return text

    def redact_value(self, value: Any) -> Any:
        """`redact` applied to every string inside JSON-like data; other values as they are."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, Mapping):
            return {str(k): self.redact_value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.redact_value(v) for v in value]
        return value


class RedactingFilter(logging.Filter):
    """Rewrites a record so that nothing secret is left in it: the message is merged with its
    arguments and redacted, the traceback and stack are formatted and redacted."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # wrong %-arguments: keep what was logged, still redacted
            message = f"{record.msg!r} (arguments {record.args!r})"
        record.msg = self.redactor.redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = _PLAIN.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redactor.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redactor.redact(record.stack_info)
        for key in _extra_keys(record):
            value = getattr(record, key)
            if isinstance(value, str | Mapping | list | tuple):
                setattr(record, key, self.redactor.redact_value(value))
        return True


class ContextFilter(logging.Filter):
    """Copies the `log_context` fields onto the record, without overriding `extra=` values."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = _context.get()
        for key, value in context.items():
            if key not in _RECORD_ATTRS and not hasattr(record, key):
                setattr(record, key, value)
        setattr(record, _CONTEXT_KEYS_ATTR, tuple(context))
        return True


class TextFormatter(logging.Formatter):
    """`2026-11-23T14:50:01.123Z INFO engine.monitor: message [incident_id=… proposal_id=…]`"""

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.redactor = redactor or Redactor()

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return _iso(record.created)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = _context_fields(record)
        if fields:
            suffix = " ".join(f"{key}={value}" for key, value in fields.items())
            head, newline, rest = line.partition("\n")  # the traceback stays under the first line
            line = f"{head} [{suffix}]{newline}{rest}"
        return self.redactor.redact(line)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, context and extra fields, and
    `exception` / `stack` when present. Strings are redacted again before encoding."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self.redactor = redactor or Redactor()

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": _iso(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in _extra_keys(record):
            payload[key] = _jsonable(getattr(record, key))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            payload["exception"] = record.exc_text
        if record.stack_info:
            payload["stack"] = record.stack_info
        return json.dumps(self.redactor.redact_value(payload), ensure_ascii=False, default=str)


class _Handler(logging.StreamHandler[IO[str]]):
    """The handler `configure_logging` installs; its type marks it for replacement."""


_PLAIN = logging.Formatter()
_active = Redactor()


def configure_logging(
    level: str | int = "INFO",
    fmt: LogFormat | str = "text",
    *,
    secrets: Iterable[str] = (),
    stream: IO[str] | None = None,
) -> logging.Handler:
    """Install (or replace) tikvops' handler on the root logger and return it.

    `secrets` are masked by value in addition to the token patterns. Raises ValueError naming
    the accepted values when `level` or `fmt` is not one of them."""
    global _active
    numeric = _level(level)
    if fmt not in ("text", "json"):
        raise ValueError(f"log format must be 'text' or 'json', got {fmt!r}")
    redactor = Redactor(secrets)
    handler = _Handler(stream if stream is not None else sys.stderr)
    handler.addFilter(ContextFilter())
    handler.addFilter(RedactingFilter(redactor))
    handler.setFormatter(JsonFormatter(redactor) if fmt == "json" else TextFormatter(redactor))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(numeric)
    _active = redactor
    return handler


def configure_from_settings(settings: Settings, stream: IO[str] | None = None) -> logging.Handler:
    """`configure_logging` with the settings' level and format, masking every secret setting."""
    return configure_logging(
        settings.log_level, settings.log_format, secrets=secret_values(settings), stream=stream
    )


def add_secret(value: str) -> None:
    """Mask `value` from now on in the installed handler (e.g. a token obtained at run time)."""
    _active.add_secret(value)


def secret_values(settings: Settings) -> list[str]:
    """The values of all `SecretStr` settings that are set."""
    values = []
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr) and value.get_secret_value():
            values.append(value.get_secret_value())
    return values


def _level(level: str | int) -> int:
    if isinstance(level, int):
        return level
    numeric = logging.getLevelNamesMapping().get(level.strip().upper())
    if numeric is None:
        raise ValueError(
            f"log level must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got {level!r}"
        )
    return numeric


def _iso(created: float) -> str:
    stamp = datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def _extra_keys(record: logging.LogRecord) -> list[str]:
    return [k for k in record.__dict__ if k not in _RECORD_ATTRS and not k.startswith("_")]


def _context_fields(record: logging.LogRecord) -> dict[str, object]:
    keys = [*CONTEXT_FIELDS]
    keys += [
        k
        for k in getattr(record, _CONTEXT_KEYS_ATTR, ())
        if k not in keys and k not in _RECORD_ATTRS
    ]
    return {k: getattr(record, k) for k in keys if getattr(record, k, None) is not None}


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    return str(value)
