"""ClaudeDiagnoser against a stand-in Messages API behind the SDK's `http_client` seam (real
response and error shapes; `messages_api.MessagesAPI`).

A good proposal comes back with checked actions. Every bad answer (a hallucinated action, wrong
parameter types, a store or region that does not exist, text only, a refusal, 529 overloaded,
500, a timeout, 429 beyond the retries) gives Claude's own diagnosis with an error and no
actions, which is recorded, and the playbook fallback's diagnosis is used instead.
"""

from __future__ import annotations

import json
import typing
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest
from anthropic.types import Model

from diagnosis.claude import ClaudeDiagnoser
from diagnosis.client import DEFAULT_MODEL, ClaudeClient
from diagnosis.prompt import MAX_SNAPSHOT_BYTES, PROMPT_VERSION, TOOL_NAME
from engine.clock import FakeClock
from engine.model import Diagnosis, DiagnosisSource
from engine.playbook_diagnoser import PlaybookDiagnoser
from operator_tikv.actions import REGISTRY
from tests.diagnosis.builders import (
    FakePD,
    api_error,
    incident,
    message,
    metrics,
    observation,
    proposal,
    region,
    store,
    text,
    tool_use,
)
from tests.diagnosis.messages_api import MessagesAPI
from tikvops.settings import Settings

BASE = "https://api.anthropic.test"
KEY = "sk-ant-api03-test-key-never-in-bodies"
MODEL = "claude-sonnet-4-5"


@pytest.fixture
def api() -> MessagesAPI:
    return MessagesAPI()


def claude(api: MessagesAPI, **options: Any) -> ClaudeClient:
    options = {"model": MODEL, "timeout": 5.0, "max_retries": 0, "base_url": BASE} | options
    return ClaudeClient(KEY, http_client=api.http_client(), **options)


@pytest.fixture
async def client(api: MessagesAPI) -> AsyncIterator[ClaudeClient]:
    async with claude(api) as c:
        yield c


def five_stores() -> Any:
    return observation(
        [store(i) for i in range(1, 6)], reading=metrics({1: 20, 2: 300, 3: 20, 4: 20, 5: 20})
    )


SLOW = incident("write_latency", "store:2", value=300.0, threshold=100.0)


class Recorder:
    def __init__(self) -> None:
        self.recorded: list[Diagnosis] = []

    async def __call__(self, diagnosis: Diagnosis) -> Diagnosis:
        self.recorded.append(diagnosis)
        return diagnosis


def diagnoser(client: ClaudeClient, pd: FakePD | None = None) -> tuple[ClaudeDiagnoser, Recorder]:
    pd = pd or FakePD([region(7, [1, 2, 3]), region(8, [2, 3, 4])])
    recorder = Recorder()
    clock = FakeClock()
    fallback = PlaybookDiagnoser(pd, clock)
    return (
        ClaudeDiagnoser(client, pd, clock, fallback=fallback, on_unavailable=recorder),
        recorder,
    )


def tool_reply(actions: list[dict[str, Any]], kind: str = "slow_store") -> httpx2.Response:
    return httpx2.Response(200, json=message([tool_use(proposal(actions, kind=kind))]))


# --------------------------------------------------------------------------- good


async def test_a_good_proposal_is_returned_with_checked_actions(
    client: ClaudeClient, api: MessagesAPI
) -> None:
    api.answer(
        tool_reply(
            [{"action": "drain", "params": {"store_id": 2}, "reason": "P99 300 ms vs 20 ms"}]
        )
    )
    subject, recorder = diagnoser(client)
    assessment = await subject.assess(SLOW, five_stores())
    diagnosis = assessment.used
    assert not assessment.fell_back and recorder.recorded == []
    assert diagnosis.source is DiagnosisSource.CLAUDE
    assert diagnosis.error is None
    assert diagnosis.model == "claude-sonnet-4-5-20250929"
    assert diagnosis.prompt_version == PROMPT_VERSION
    assert diagnosis.incident_id == SLOW.id
    assert [(a.action, a.params) for a in diagnosis.actions] == [("drain", {"store_id": 2})]
    assert diagnosis.causes[0].confidence == 0.7
    assert assessment.claude.kind is not None and assessment.claude.kind.value == "slow_store"
    assert api.call_count == 1


async def test_the_request_carries_the_registry_tool_and_no_secrets(
    client: ClaudeClient, api: MessagesAPI
) -> None:
    api.answer(tool_reply([]))
    subject, _ = diagnoser(client)
    await subject.diagnose(SLOW, five_stores())
    request = api.requests[-1]
    assert request.headers["authorization"] == f"Bearer {KEY}"  # 2.x sends the key as a bearer
    assert "anthropic-version" in request.headers
    raw = request.content.decode()
    assert KEY not in raw
    body = json.loads(raw)
    assert body["model"] == MODEL
    assert body["tool_choice"] == {"type": "tool", "name": TOOL_NAME}
    [tool] = body["tools"]
    assert tool["name"] == TOOL_NAME
    variants = tool["input_schema"]["properties"]["actions"]["items"]["oneOf"]
    assert {v["properties"]["action"]["const"] for v in variants} == set(REGISTRY)
    [user] = body["messages"]
    assert user["role"] == "user"
    assert len(user["content"].encode()) <= MAX_SNAPSHOT_BYTES + 1000
    assert "pd:2379" not in raw  # the PD URL is not sent
    assert body["max_tokens"] > 0 and isinstance(body["system"], str)
    # Current models reject (or ignore) sampling parameters: none is sent.
    assert not {"temperature", "top_p", "top_k"} & set(body)


def test_the_default_model_is_the_newest_sonnet_the_sdk_lists() -> None:
    listed = typing.get_args(typing.get_args(Model)[0])
    sonnets = [m for m in listed if m.startswith("claude-sonnet-")]
    assert DEFAULT_MODEL in sonnets

    def version(name: str) -> tuple[int, ...]:
        return tuple(int(p) for p in name.removeprefix("claude-sonnet-").split("-") if len(p) < 8)

    assert version(DEFAULT_MODEL) == max(version(m) for m in sonnets)
    assert Settings.model_fields["anthropic_model"].default == DEFAULT_MODEL


async def test_a_valid_region_id_is_checked_with_pd(client: ClaudeClient, api: MessagesAPI) -> None:
    api.answer(
        tool_reply(
            [{"action": "transfer-leader", "params": {"region_id": 7, "to_store_id": 3}}],
            kind="hot_region",
        )
    )
    pd = FakePD([region(7, [1, 2, 3])])
    subject, _ = diagnoser(client, pd)
    diagnosis = await subject.diagnose(incident("hot_write_skew", "store:1"), five_stores())
    assert diagnosis.source is DiagnosisSource.CLAUDE and diagnosis.error is None
    assert [a.params for a in diagnosis.actions] == [{"region_id": 7, "to_store_id": 3}]
    assert "get_region" in pd.calls


# --------------------------------------------------------------------------- bad answers


BAD_REPLIES: dict[str, tuple[httpx2.Response, str]] = {
    "hallucinated action": (
        tool_reply([{"action": "restart-store", "params": {"store_id": 2}, "reason": "reboot"}]),
        "'restart-store', which is not a registered action",
    ),
    "wrong parameter types": (
        tool_reply([{"action": "drain", "params": {"store_id": "2"}, "reason": "slow"}]),
        "invalid parameters for drain: store ID must be a whole number",
    ),
    "non-existent store": (
        tool_reply([{"action": "drain", "params": {"store_id": 9}, "reason": "slow"}]),
        "store 9 does not exist (stores: 1, 2, 3, 4, 5)",
    ),
    "non-existent region": (
        tool_reply([{"action": "split", "params": {"region_id": 4242}, "reason": "hot"}]),
        "region 4242 does not exist",
    ),
    "text only": (
        httpx2.Response(
            200, json=message([text("I would drain store 2.")], stop_reason="end_turn")
        ),
        f"answered without calling {TOOL_NAME}",
    ),
    "refusal": (
        httpx2.Response(200, json=message([], stop_reason="refusal")),
        "declined to answer",
    ),
    "max tokens": (
        httpx2.Response(200, json=message([tool_use({"kind": "slow"})], stop_reason="max_tokens")),
        "cut off at the max_tokens limit",
    ),
    "overloaded 529": (
        httpx2.Response(529, json=api_error("overloaded_error", "Overloaded")),
        "the Anthropic API is overloaded (529): Overloaded",
    ),
    "server error 500": (
        httpx2.Response(500, json=api_error("api_error", "Internal server error")),
        "the Anthropic API failed (500): Internal server error",
    ),
    "rate limited 429": (
        httpx2.Response(
            429,
            json=api_error("rate_limit_error", "Number of request tokens has exceeded"),
            headers={"retry-after": "30"},
        ),
        "rate-limited by the Anthropic API (429); it asked to retry after 30 s",
    ),
    "bad key 401": (
        httpx2.Response(401, json=api_error("authentication_error", "invalid x-api-key")),
        "rejected the key (401): invalid x-api-key; check ANTHROPIC_API_KEY",
    ),
    "unknown model 404": (
        httpx2.Response(404, json=api_error("not_found_error", "model: claude-nope")),
        f"does not know model '{MODEL}' (404)",
    ),
}


@pytest.mark.parametrize("case", list(BAD_REPLIES))
async def test_a_bad_answer_is_recorded_and_the_playbooks_answer_instead(
    case: str, client: ClaudeClient, api: MessagesAPI
) -> None:
    response, reason = BAD_REPLIES[case]
    api.answer(response)
    subject, recorder = diagnoser(client)
    assessment = await subject.assess(SLOW, five_stores())

    failed = assessment.claude.diagnosis
    assert assessment.fell_back
    assert failed.source is DiagnosisSource.CLAUDE
    assert failed.actions == []
    assert failed.error is not None and failed.error.startswith("diagnosis unavailable: ")
    assert reason in failed.error
    assert recorder.recorded == [failed]

    used = assessment.used
    assert used.source is DiagnosisSource.PLAYBOOK and used.error is None
    assert used.model == "slow-store"
    # The playbook's own proposal (drain the slow store), never Claude's.
    assert [(a.action, a.params) for a in used.actions] == [("drain", {"store_id": 2})]
    assert await subject.diagnose(SLOW, five_stores()) == used


async def test_a_timeout_falls_back(api: MessagesAPI) -> None:
    api.answer(httpx2.ReadTimeout("timed out"))
    async with claude(api, timeout=2.0, max_retries=0) as c:
        subject, recorder = diagnoser(c)
        assessment = await subject.assess(SLOW, five_stores())
    assert assessment.fell_back
    assert "the Anthropic API timed out (2 s per attempt)" in (
        assessment.claude.diagnosis.error or ""
    )
    assert assessment.claude.diagnosis.actions == []
    assert assessment.used.source is DiagnosisSource.PLAYBOOK
    assert len(recorder.recorded) == 1


async def test_a_connection_error_falls_back(api: MessagesAPI) -> None:
    api.answer(httpx2.ConnectError("refused"))
    async with claude(api, max_retries=0) as c:
        subject, _ = diagnoser(c)
        assessment = await subject.assess(SLOW, five_stores())
    assert "could not connect to the Anthropic API" in (assessment.claude.diagnosis.error or "")


async def test_429_with_retry_after_is_retried_then_succeeds(api: MessagesAPI) -> None:
    api.answer(
        *[
            httpx2.Response(
                429,
                json=api_error("rate_limit_error", "slow down"),
                headers={"retry-after": "0.01"},
            ),
            tool_reply([{"action": "drain", "params": {"store_id": 2}, "reason": "slow"}]),
        ]
    )
    async with claude(api, max_retries=1) as c:
        subject, recorder = diagnoser(c)
        diagnosis = await subject.diagnose(SLOW, five_stores())
    assert api.call_count == 2
    assert diagnosis.source is DiagnosisSource.CLAUDE and diagnosis.error is None
    assert recorder.recorded == []


async def test_529_is_retried_as_configured(api: MessagesAPI) -> None:
    overloaded = httpx2.Response(
        529, json=api_error("overloaded_error", "Overloaded"), headers={"retry-after-ms": "5"}
    )
    api.answer(overloaded)
    async with claude(api, max_retries=2) as c:
        subject, _ = diagnoser(c)
        assessment = await subject.assess(SLOW, five_stores())
    assert api.call_count == 3
    assert "overloaded (529) after 3 attempts" in (assessment.claude.diagnosis.error or "")


async def test_without_a_fallback_the_failed_diagnosis_is_returned(
    client: ClaudeClient, api: MessagesAPI
) -> None:
    api.answer(httpx2.Response(529, json=api_error("overloaded_error", "Overloaded")))
    subject = ClaudeDiagnoser(client, FakePD(), FakeClock())
    diagnosis = await subject.diagnose(SLOW, five_stores())
    assert diagnosis.source is DiagnosisSource.CLAUDE
    assert diagnosis.actions == [] and diagnosis.error


async def test_region_ids_are_refused_when_pd_cannot_confirm_them(
    client: ClaudeClient, api: MessagesAPI
) -> None:
    api.answer(tool_reply([{"action": "split", "params": {"region_id": 7}, "reason": "h"}]))
    subject, _ = diagnoser(client, FakePD([region(7, [1, 2, 3])], failing=["get_region"]))
    assessment = await subject.assess(SLOW, five_stores())
    assert "region 7 could not be checked" in (assessment.claude.diagnosis.error or "")
    no_pd = ClaudeDiagnoser(client, None, FakeClock())
    failed = (await no_pd.assess(SLOW, five_stores())).claude.diagnosis
    assert "cannot be checked without PD" in (failed.error or "")


async def test_a_failing_recorder_does_not_stop_the_fallback(
    client: ClaudeClient, api: MessagesAPI
) -> None:
    api.answer(httpx2.Response(200, json=message([], stop_reason="refusal")))

    async def broken(_: Diagnosis) -> None:
        raise RuntimeError("database is locked")

    pd = FakePD()
    subject = ClaudeDiagnoser(
        client, pd, FakeClock(), fallback=PlaybookDiagnoser(pd, FakeClock()), on_unavailable=broken
    )
    used = await subject.diagnose(SLOW, five_stores())
    assert used.source is DiagnosisSource.PLAYBOOK
