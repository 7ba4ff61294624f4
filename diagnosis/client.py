"""A thin wrapper around the Anthropic Messages API: model, timeout, retries, and our own error.

`ClaudeClient.propose()` sends one request that forces a single tool call and returns the raw
Message as JSON (`parse.py` reads it). Every failure of the SDK (timeout, connection error,
429 rate limit, 529 overloaded, 5xx, 4xx) becomes `ClaudeUnavailable` with one plain sentence:
what happened and what to check. The SDK retries 408/409/429/5xx itself (`max_retries`, with
backoff and `retry-after`); an overall deadline bounds the whole call. The API key lives only in
the SDK client (sent as an `Authorization: Bearer` header) and never appears in messages or
logs.

The SDK is the 2.x line, which speaks HTTP through `httpx2`; its test seam is `http_client`
(an `httpx2.AsyncClient`, e.g. with an `httpx2.MockTransport`). No sampling parameters are sent
(current models choose their own; the 2.x Messages API no longer takes `temperature`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from types import TracebackType
from typing import Any, cast

import anthropic
import httpx2
from anthropic.types import ToolParam

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "claude-sonnet-5-5"
"""The newest Sonnet the SDK lists (`anthropic.types.Model`); a setting overrides it."""
DEFAULT_MAX_TOKENS = 2048


class ClaudeUnavailable(Exception):
    """The Messages API gave no usable answer; `reason` is one sentence for the user."""

    def __init__(self, reason: str, *, status: int | None = None) -> None:
        self.reason = reason
        self.status = status
        super().__init__(reason)


class ClaudeClient:
    """One AsyncAnthropic client for diagnoses. `http_client` and `base_url` are for tests and
    proxies; close with `aclose()` (or use `async with`)."""

    def __init__(
        self,
        api_key: str,
        *,
        model: str = DEFAULT_MODEL,
        timeout: float = 30.0,
        max_retries: int = 2,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        base_url: str | None = None,
        http_client: httpx2.AsyncClient | None = None,
    ) -> None:
        if not api_key:
            raise ValueError("an Anthropic API key is required (set ANTHROPIC_API_KEY)")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout!r}")
        self.model = model
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.max_tokens = int(max_tokens)
        self._sdk = anthropic.AsyncAnthropic(
            api_key=api_key,
            base_url=base_url or "https://api.anthropic.com",
            timeout=self.timeout,
            max_retries=self.max_retries,
            http_client=http_client,
        )

    @property
    def deadline(self) -> float:
        """Seconds the whole call may take: every attempt's timeout plus backoff room."""
        return self.timeout * (self.max_retries + 1) + 10.0 * self.max_retries + 5.0

    async def propose(self, *, system: str, user: str, tool: Mapping[str, Any]) -> dict[str, Any]:
        """Ask for one call of `tool`; the Message as JSON. Raises ClaudeUnavailable."""
        name = str(tool["name"])
        try:
            async with asyncio.timeout(self.deadline):
                message = await self._sdk.messages.create(
                    model=self.model,
                    max_tokens=self.max_tokens,
                    system=system,
                    messages=[{"role": "user", "content": user}],
                    tools=[cast(ToolParam, dict(tool))],
                    tool_choice={"type": "tool", "name": name},
                )
        except TimeoutError:
            raise ClaudeUnavailable(
                f"the Anthropic API did not answer within {self.deadline:g} s "
                f"({self.max_retries + 1} attempts)"
            ) from None
        except anthropic.APIError as exc:
            raise translate(exc, self) from None
        answer: dict[str, Any] = message.model_dump(mode="json")
        return answer

    async def aclose(self) -> None:
        await self._sdk.close()

    async def __aenter__(self) -> ClaudeClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def _api_message(exc: anthropic.APIError) -> str:
    """The `error.message` of an API error body, shortened; empty when there is none."""
    body = exc.body
    if isinstance(body, Mapping):
        error = body.get("error")
        if isinstance(error, Mapping) and isinstance(error.get("message"), str):
            text = str(error["message"]).strip()
            return text if len(text) <= 200 else text[:197] + "..."
    return ""


def translate(exc: anthropic.APIError, client: ClaudeClient) -> ClaudeUnavailable:
    """One sentence for an SDK error (after the SDK's own retries)."""
    said = _api_message(exc)
    suffix = f": {said}" if said else ""
    tries = f" after {client.max_retries + 1} attempts" if client.max_retries else ""
    if isinstance(exc, anthropic.APITimeoutError):
        return ClaudeUnavailable(
            f"the Anthropic API timed out ({client.timeout:g} s per attempt{tries})"
        )
    if isinstance(exc, anthropic.APIConnectionError):
        return ClaudeUnavailable(
            f"could not connect to the Anthropic API{tries}; check the network or proxy"
        )
    if isinstance(exc, anthropic.APIStatusError):
        status = exc.status_code
        if status == 529 or isinstance(exc, anthropic.OverloadedError):
            text = f"the Anthropic API is overloaded (529){tries}{suffix}"
        elif status == 429:
            after = exc.response.headers.get("retry-after")
            wait = f"; it asked to retry after {after} s" if after else ""
            text = f"rate-limited by the Anthropic API (429){tries}{wait}{suffix}"
        elif status == 401:
            text = f"the Anthropic API rejected the key (401){suffix}; check ANTHROPIC_API_KEY"
        elif status == 403:
            text = f"the Anthropic API key may not use this model (403){suffix}"
        elif status == 404:
            text = f"the Anthropic API does not know model {client.model!r} (404){suffix}"
        elif status >= 500:
            text = f"the Anthropic API failed ({status}){tries}{suffix}"
        else:
            text = f"the Anthropic API refused the request ({status}){suffix}"
        return ClaudeUnavailable(text, status=status)
    return ClaudeUnavailable(f"the Anthropic API gave an unexpected answer{suffix}")


__all__ = ["DEFAULT_MAX_TOKENS", "DEFAULT_MODEL", "ClaudeClient", "ClaudeUnavailable", "translate"]
