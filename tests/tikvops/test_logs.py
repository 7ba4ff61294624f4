"""Logging: JSON and text shapes, context fields, and that secrets never reach the output."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
from collections.abc import Iterator
from datetime import datetime

import pytest

from tikvops.logs import (
    add_secret,
    configure_from_settings,
    configure_logging,
    current_context,
    log_context,
    secret_values,
)
from tikvops.settings import Settings

# Fake credentials of each shape the redactor must catch (not real tokens).
BOT_TOKEN = "xoxb-1111111111-2222222222-FAKEfakeFAKEfake0000"
USER_TOKEN = "xoxp-1111111111-2222222222-3333333333-fakefakefake"
APP_TOKEN = "xapp-1-A05TIKVB0T-1234567890-fakefakefakefakefake"
ROTATED_TOKEN = "xoxe.xoxp-1-Mi0yLTEyMzQ1Njc4OTAtZmFrZQ"
REFRESH_TOKEN = "xoxe-1-My0xLTEyMzQ1Njc4OTAtZmFrZQ"
ANTHROPIC_KEY = "sk-ant-api03-FAKE_fake-FAKE_fake-0123456789abcdef"
TOKENS = [BOT_TOKEN, USER_TOKEN, APP_TOKEN, ROTATED_TOKEN, REFRESH_TOKEN, ANTHROPIC_KEY]

LEAK = re.compile(r"xox[a-z]|xapp-|sk-ant-")


@pytest.fixture
def out() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    stream = io.StringIO()
    yield stream
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


def json_lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


log = logging.getLogger("tikvops.test")


def test_json_shape(out: io.StringIO) -> None:
    configure_logging("INFO", "json", stream=out)
    log.debug("not shown at INFO")
    log.info("store %s is %s", 4, "down", extra={"request_id": "req-9", "attempt": 2})
    (line,) = json_lines(out)
    assert set(line) == {"ts", "level", "logger", "message", "request_id", "attempt"}
    assert line["level"] == "INFO"
    assert line["logger"] == "tikvops.test"
    assert line["message"] == "store 4 is down"
    assert line["request_id"] == "req-9"
    assert line["attempt"] == 2
    assert line["ts"].endswith("Z")
    assert datetime.fromisoformat(line["ts"]).utcoffset().total_seconds() == 0


def test_context_fields_nest_and_extra_wins(out: io.StringIO) -> None:
    configure_logging("DEBUG", "json", stream=out)
    with log_context(proposal_id="P-7"):
        with log_context(incident_id="I-3", request_id=None):
            assert current_context() == {"proposal_id": "P-7", "incident_id": "I-3"}
            log.info("inner")
        log.info("outer", extra={"proposal_id": "P-8"})
    log.info("none")
    inner, outer, none = json_lines(out)
    assert (inner["incident_id"], inner["proposal_id"]) == ("I-3", "P-7")
    assert "request_id" not in inner
    assert outer["proposal_id"] == "P-8"
    assert "incident_id" not in outer
    assert not {"incident_id", "proposal_id", "request_id"} & set(none)
    assert current_context() == {}


async def test_context_follows_asyncio_tasks(out: io.StringIO) -> None:
    configure_logging("INFO", "json", stream=out)

    async def work(name: str) -> None:
        with log_context(proposal_id=name):
            await asyncio.sleep(0)
            log.info("working on %s", name)
            await asyncio.sleep(0)
            log.info("done with %s", name)

    with log_context(request_id="req-1"):
        await asyncio.gather(work("P-1"), work("P-2"))
    lines = json_lines(out)
    assert len(lines) == 4
    for line in lines:
        assert line["message"].endswith(line["proposal_id"])
        assert line["request_id"] == "req-1"


def test_text_format_with_context_and_traceback(out: io.StringIO) -> None:
    configure_logging("INFO", "text", stream=out)
    with log_context(incident_id="I-3", proposal_id="P-7", cluster="c1", name="clash"):
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("execution failed")
    first, *rest = out.getvalue().splitlines()
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ERROR tikvops\.test: execution failed "
        r"\[incident_id=I-3 proposal_id=P-7 cluster=c1\]",
        first,
    ), first
    assert rest[0] == "Traceback (most recent call last):"
    assert rest[-1] == "ValueError: boom"


@pytest.mark.parametrize("fmt", ["text", "json"])
@pytest.mark.parametrize("token", TOKENS)
def test_tokens_are_redacted_everywhere(out: io.StringIO, fmt: str, token: str) -> None:
    configure_logging("DEBUG", fmt, stream=out)
    log.info("plain message with %s inside" % token)  # noqa: UP031 - the token is in msg itself
    log.info("as an argument: %s", token)
    log.info("as a mapping argument: %(tok)s", {"tok": token})
    log.info("as a repr argument: %r", {"headers": {"Authorization": f"Bearer {token}"}})
    log.warning("in extra", extra={"request_id": token, "nested": {"t": [token]}})
    try:
        raise RuntimeError(f"auth failed with {token}")
    except RuntimeError:
        log.exception("exception message")
    try:
        _fail_with_literal_tokens()
    except PermissionError:
        log.error("source line in traceback", exc_info=True)
    log.info("stack", stack_info=True, extra={"proposal_id": f"id-{token}"})
    with log_context(incident_id=token):
        log.info("from context")

    text = out.getvalue()
    assert token not in text
    assert not LEAK.search(text), LEAK.search(text)
    assert "[REDACTED:" in text
    assert text.count("\n") >= 9
    if fmt == "json":
        lines = json_lines(out)
        assert lines[1]["message"] == "as an argument: " + _marker(token)
        assert lines[4]["request_id"] == _marker(token)
        assert lines[4]["nested"] == {"t": [_marker(token)]}
        assert "RuntimeError: auth failed with " + _marker(token) in lines[5]["exception"]
        assert "_fail_with_literal_tokens" in lines[6]["exception"]
        assert "stack" in lines[7]


def _marker(token: str) -> str:
    if token.startswith("xapp-"):
        return "[REDACTED:slack-app-token]"
    if token.startswith("sk-ant-"):
        return "[REDACTED:anthropic-key]"
    return "[REDACTED:slack-token]"


def _fail_with_literal_tokens() -> None:
    raise PermissionError("xoxb-9999-8888-LITERALfake sk-ant-api03-LITERALfake xapp-1-LITERAL")


def test_socket_mode_ticket_is_redacted(out: io.StringIO) -> None:
    configure_logging("DEBUG", "text", stream=out)
    log.debug("connecting to wss://wss-primary.slack.com/link/?ticket=abc-123-DEF&app_id=A0X")
    text = out.getvalue()
    assert "abc-123-DEF" not in text
    assert "ticket=[REDACTED:ticket]&app_id=A0X" in text


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_configured_secret_values_are_redacted(out: io.StringIO, fmt: str) -> None:
    secret = 'p@ss"w\\rd-not-a-token'  # characters JSON escapes must not defeat redaction
    configure_logging("INFO", fmt, secrets=[secret, "abc"], stream=out)
    log.info("db password is %s", secret)
    log.info("value in extra", extra={"request_id": secret})
    add_secret("late-secret-value")
    log.info("learned later: late-secret-value")
    log.info("short secrets are not masked: abc")
    text = out.getvalue()
    assert "p@ss" not in text
    assert "late-secret-value" not in text
    assert text.count("[REDACTED]") == 3
    assert "not masked: abc" in text


def test_configure_from_settings_masks_secret_settings(out: io.StringIO) -> None:
    settings = Settings(
        _env_file=None,
        slack_bot_token="xoxb-1-2-fromsettings",
        anthropic_api_key="an-unusual-key-shape-42",
        log_level="warning",
        log_format="json",
    )
    assert sorted(secret_values(settings)) == ["an-unusual-key-shape-42", "xoxb-1-2-fromsettings"]
    configure_from_settings(settings, stream=out)
    log.info("below WARNING, not shown")
    log.warning("key an-unusual-key-shape-42 rejected")
    (line,) = json_lines(out)
    assert line["message"] == "key [REDACTED] rejected"


def test_bad_format_arguments_still_log_redacted(out: io.StringIO) -> None:
    handler = configure_logging("INFO", "json", stream=out)
    # Straight to our handler: pytest's own capture handler would raise on this record first.
    record = log.makeRecord(
        log.name, logging.INFO, __file__, 1, "two placeholders %s %s", (BOT_TOKEN,), None
    )
    handler.handle(record)
    (line,) = json_lines(out)
    assert BOT_TOKEN not in line["message"]
    assert "two placeholders" in line["message"]


def test_reconfiguring_replaces_the_handler(out: io.StringIO) -> None:
    first = io.StringIO()
    configure_logging("INFO", "text", stream=first)
    configure_logging("INFO", "json", stream=out)
    log.info("once")
    assert first.getvalue() == ""
    assert [line["message"] for line in json_lines(out)] == ["once"]


def test_invalid_level_and_format_are_refused(out: io.StringIO) -> None:
    with pytest.raises(ValueError, match="log level must be one of"):
        configure_logging("LOUD", "text", stream=out)
    with pytest.raises(ValueError, match="'text' or 'json'"):
        configure_logging("INFO", "xml", stream=out)
