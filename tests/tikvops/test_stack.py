"""`tikvops.stack.open_stack`: the parts start in order and stop in reverse (also when a later
part fails to start), Slack is used only when configured, the health server answers, Claude is
chosen with a key (falling back to the playbooks when it fails, without leaving the machine), and
the caller's notifier hears every event next to Slack."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.app import SlackBot
from diagnosis.claude import ClaudeDiagnoser
from diagnosis.client import ClaudeClient, ClaudeUnavailable
from engine.model import DiagnosisSource, Incident
from engine.monitor import Monitor
from engine.playbook_diagnoser import PlaybookDiagnoser
from engine.service import Engine
from sim.server import SimServer
from slackfake.server import SlackFake
from tests.engine.monitor_fakes import RecordingNotifier
from tikvops import stack as stack_module
from tikvops.observability import ObservabilityError, ObservabilityServer
from tikvops.scheduling import JobScheduler
from tikvops.settings import ConfigError, Settings
from tikvops.stack import bot_config, open_stack

WAIT = 20.0

SimFactory = Callable[..., Awaitable[SimServer]]
FakeFactory = Callable[..., Awaitable[SlackFake]]


def settings_for(
    sim: SimServer, db: Path, fake: SlackFake | None = None, **values: Any
) -> Settings:
    base: dict[str, Any] = {
        "pd_url": sim.pd_url,
        "db": db,
        "poll_interval": 0.3,
        "latency_grace": 0.3,
        "region_health_grace": 600.0,
        "health_addr": "127.0.0.1:0",
        "slack_bot_token": None,
        "slack_app_token": None,
        "anthropic_api_key": None,
        "approvers": ["U0ALICE"],
    }
    if fake is not None:
        base.update(
            slack_bot_token=fake.workspace.bot_token,
            slack_app_token=fake.workspace.app_token,
            slack_api_url=fake.api_url,
            slack_app_id=fake.workspace.app_id,
            slack_team_id=fake.workspace.team_id,
            channel="C0OPS",
        )
    base.update(values)
    return Settings(_env_file=None, **base)


@pytest.fixture
async def cluster(sim_factory: SimFactory) -> SimServer:
    return await sim_factory(stores=4, regions=60, speed=20.0, auto_tick=True)


@pytest.fixture
def steps(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records every start and stop of the stack's parts, in order."""
    events: list[str] = []
    original_runtime = stack_module.open_runtime

    @asynccontextmanager
    async def runtime(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        events.append("runtime started")
        try:
            async with original_runtime(*args, **kwargs) as opened:
                yield opened
        finally:
            events.append("runtime stopped")

    monkeypatch.setattr(stack_module, "open_runtime", runtime)

    def record(cls: type, name: str, label: str) -> None:
        original = getattr(cls, name)

        async def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            events.append(label)
            return await original(self, *args, **kwargs)

        monkeypatch.setattr(cls, name, wrapper)

    record(Engine, "reconcile", "reconcile")
    record(SlackBot, "start", "slack started")
    record(SlackBot, "stop", "slack stopped")
    record(JobScheduler, "stop", "scheduler stopped")
    record(Monitor, "close", "monitor closed")
    record(ObservabilityServer, "start", "health started")
    record(ObservabilityServer, "stop", "health stopped")
    original_start = JobScheduler.start

    def start(self: JobScheduler) -> None:
        events.append("scheduler started")
        original_start(self)

    monkeypatch.setattr(JobScheduler, "start", start)
    return events


async def test_parts_start_in_order_and_stop_in_reverse(
    cluster: SimServer, make_slack_fake: FakeFactory, tmp_path: Path, steps: list[str]
) -> None:
    fake = await make_slack_fake()
    settings = settings_for(cluster, tmp_path / "t.db", fake)
    async with open_stack(settings) as stack:
        assert stack.bot is not None
        await fake.wait_for_socket()
        assert stack.scheduler.running and stack.bot.connected
        started = list(steps)
    assert started == [
        "runtime started",
        "reconcile",
        "scheduler started",
        "slack started",
        "health started",
    ]
    assert steps[len(started) :] == [
        "health stopped",
        "slack stopped",
        "scheduler stopped",
        "monitor closed",
        "runtime stopped",
    ]
    assert fake.active_sockets == 0
    assert not stack.scheduler.running


async def test_a_part_that_cannot_start_stops_the_ones_before_it(
    cluster: SimServer, make_slack_fake: FakeFactory, tmp_path: Path, steps: list[str]
) -> None:
    fake = await make_slack_fake()
    async with ObservabilityServer(*_metrics_and_health(), "127.0.0.1", 0) as taken:
        settings = settings_for(
            cluster, tmp_path / "t.db", fake, health_addr=f"127.0.0.1:{taken.port}"
        )
        with pytest.raises(ObservabilityError, match="TIKVOPS_HEALTH_ADDR"):
            async with open_stack(settings):
                pytest.fail("the stack must not start")
        after = list(steps)
    assert after[-6:] == [
        "slack started",
        "health started",  # refused: the port is taken
        "slack stopped",
        "scheduler stopped",
        "monitor closed",
        "runtime stopped",
    ]
    assert fake.active_sockets == 0


def _metrics_and_health() -> tuple[Any, Any]:
    from tikvops.observability import BotMetrics, Health

    return BotMetrics(), Health(poll_interval=1.0, slack_required=False)


async def test_without_slack_the_monitor_runs_and_health_answers(
    cluster: SimServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    async with open_stack(settings_for(cluster, tmp_path / "t.db")) as stack:
        assert stack.bot is None
        assert isinstance(stack.diagnoser, PlaybookDiagnoser)
        text = "\n".join(stack.describe())
        assert "slack: not configured" in text and "playbooks" in text
        assert "silences" in stack.scheduler.job_names()  # incident silences end on time
        assert stack.health_url is not None
        async with httpx.AsyncClient(trust_env=False, timeout=3.0) as http:

            async def healthy() -> bool:
                return (await http.get(f"{stack.health_url}/healthz")).status_code == 200

            await _wait(healthy)
            # the engine's reads answer from what the monitor saw: one knowledge, given to both
            # at construction, so a cycle the monitor ran is known to the reads
            reads = stack.runtime.engine.reads
            assert reads.knowledge is stack.monitor.knowledge
            assert reads.knowledge is not None and reads.knowledge.current.cycle_at is not None
            body = (await http.get(f"{stack.health_url}/healthz")).json()
            assert body["checks"]["slack"]["ok"] and body["checks"]["scheduler"]["ok"]
            metrics = (await http.get(f"{stack.health_url}/metrics")).text
            assert "tikvops_monitor_cycle_duration_seconds_count" in metrics
            assert 'tikvops_pd_requests_total{endpoint="/pd/api/v1/stores",outcome="ok"}' in (
                metrics
            )
        url = stack.health_url
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient(trust_env=False, timeout=2.0) as http:
            await http.get(f"{url}/healthz")


async def test_the_callers_notifier_hears_what_slack_hears(
    cluster: SimServer, make_slack_fake: FakeFactory, tmp_path: Path
) -> None:
    fake = await make_slack_fake()
    recorder = RecordingNotifier()
    settings = settings_for(cluster, tmp_path / "t.db", fake)
    async with open_stack(settings, notifier=recorder, serve_health=False) as stack:
        assert stack.server is None
        await fake.wait_for_socket()
        assert "slack" not in stack.health.report().failing  # the socket is up
        cluster.faults.slow_store(2, 300.0)
        await _wait(lambda: recorder.of("opened"))
        [incident] = [i for i in recorder.of("opened") if i.kind == "write_latency"]
        await _wait(lambda: any(m.text.endswith("on store 2") for m in fake.messages("C0OPS")))
        await _wait(lambda: recorder.proposals)
    assert incident.subject == "store:2"


async def test_without_slack_by_choice_the_tokens_are_not_used(
    cluster: SimServer, make_slack_fake: FakeFactory, tmp_path: Path
) -> None:
    """`tikvops monitor` is this stack with `use_slack=False`: Slack is never contacted even
    with both tokens set, the health check does not wait for it, and the caller's notifier
    hears every event."""
    fake = await make_slack_fake()
    recorder = RecordingNotifier()
    settings = settings_for(cluster, tmp_path / "t.db", fake, max_drained_stores=2)
    async with open_stack(settings, notifier=recorder, use_slack=False) as stack:
        assert stack.bot is None
        assert stack.runtime.notifier is recorder
        assert isinstance(stack.diagnoser, PlaybookDiagnoser)
        assert stack.diagnoser.limits.max_drained_stores == 2
        cluster.faults.slow_store(2, 300.0)
        await _wait(lambda: recorder.of("opened"))
        assert "slack" not in stack.health.report().failing
    assert fake.active_sockets == 0 and fake.messages("C0OPS") == []


async def test_with_a_key_claude_diagnoses_and_falls_back_to_the_playbooks(
    cluster: SimServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[str] = []
    closed: list[bool] = []

    async def propose(self: ClaudeClient, *, system: str, user: str, tool: Any) -> Any:
        asked.append(user)
        raise ClaudeUnavailable("Anthropic API is overloaded (529); try again later")

    original_close = ClaudeClient.aclose

    async def aclose(self: ClaudeClient) -> None:
        closed.append(True)
        await original_close(self)

    monkeypatch.setattr(ClaudeClient, "propose", propose)  # nothing leaves the machine
    monkeypatch.setattr(ClaudeClient, "aclose", aclose)
    recorder = RecordingNotifier()
    settings = settings_for(cluster, tmp_path / "t.db", anthropic_api_key="sk-ant-test-key")
    async with open_stack(settings, notifier=recorder, serve_health=False) as stack:
        assert isinstance(stack.diagnoser, ClaudeDiagnoser)
        assert isinstance(stack.diagnoser.fallback, PlaybookDiagnoser)
        assert "Claude" in stack.diagnoser_name
        cluster.faults.slow_store(2, 300.0)
        await _wait(lambda: recorder.diagnoses)
        await stack.wait_idle()
        [used] = recorder.diagnoses
        incident: Incident = recorder.of("opened")[0]
        stored = await stack.runtime.repos.diagnoses.list_for(incident.id)
    assert asked, "Claude was asked first"
    assert used.source is DiagnosisSource.PLAYBOOK and used.actions
    failed = [d for d in stored if d.source is DiagnosisSource.CLAUDE]
    assert failed and failed[0].error is not None and "529" in failed[0].error
    assert closed == [True]


async def test_one_slack_token_without_the_other_is_a_configuration_error(
    cluster: SimServer, tmp_path: Path
) -> None:
    settings = settings_for(cluster, tmp_path / "t.db", slack_bot_token="xoxb-only")
    with pytest.raises(ConfigError) as error:
        async with open_stack(settings):
            pytest.fail("must not start")
    assert any("SLACK_APP_TOKEN" in line for line in error.value.problems)
    assert not (tmp_path / "t.db").exists()  # refused before anything was opened
    with pytest.raises(ConfigError):
        bot_config(settings)


async def _wait(predicate: Callable[[], Any]) -> Any:
    import asyncio
    import inspect

    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError("condition not met")
        await asyncio.sleep(0.05)


async def test_an_execution_cut_short_is_reconciled_at_the_next_start(
    cluster: SimServer, tmp_path: Path
) -> None:
    """The first process stops right after PD accepted a drain, before it recorded the outcome;
    the next start finds the drain in PD and finishes the record. PD is asked exactly once."""
    import asyncio

    from engine.model import Identity, IdentityKind, ProposalOrigin, ProposalState
    from engine.results import ProposalCreated

    bob = Identity(kind=IdentityKind.SLACK_USER, id="U0BOB")
    alice = Identity(kind=IdentityKind.SLACK_USER, id="U0ALICE")
    reached = asyncio.Event()

    async def stop_after_request(name: str) -> None:
        if name == "after_request":
            reached.set()
            await asyncio.Event().wait()  # the process "dies" here

    settings = settings_for(cluster, tmp_path / "t.db")
    options = {"checkpoint": stop_after_request}
    async with open_stack(settings, serve_health=False, engine_options=options) as first:
        created = await first.engine.propose(
            "drain", {"store_id": 2}, actor=bob, origin=ProposalOrigin.USER
        )
        assert isinstance(created, ProposalCreated)
        pid = created.proposal.id
        await first.engine.approve(pid, alice)
        await asyncio.wait_for(reached.wait(), WAIT)
        assert first.reconciled == 0
    writes = [r for r in cluster.requests if r.method == "POST"]
    assert [w.body for w in writes] == [{"name": "evict-leader-scheduler", "store_id": 2}]
    fast = {"poll_intervals": {"drain": 0.1}}
    async with open_stack(settings, serve_health=False, engine_options=fast) as second:
        assert second.reconciled == 1
        assert "1 interrupted execution(s)" in "\n".join(second.describe())

        async def finished() -> bool:
            proposal = await second.runtime.repos.proposals.get(pid)
            return proposal is not None and proposal.state is ProposalState.SUCCEEDED

        await _wait(finished)
    assert [r for r in cluster.requests if r.method == "POST"] == writes  # never sent again


async def test_freeze_heap_freezes_the_start_up_heap_only_when_asked(
    cluster: SimServer, tmp_path: Path
) -> None:
    gc.unfreeze()
    try:
        async with open_stack(settings_for(cluster, tmp_path / "t.db"), serve_health=False):
            assert gc.get_freeze_count() == 0
        async with open_stack(
            settings_for(cluster, tmp_path / "t.db"), serve_health=False, freeze_heap=True
        ):
            assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()  # back to normal for the rest of the test process
