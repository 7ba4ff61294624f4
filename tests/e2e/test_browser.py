"""A real browser against the demo: Debian's Chromium, driven by Playwright, opens the Slack
stand-in's page while the demo stack (simulator, stand-in, the real bot) runs in this process.
It sees the incident appear, takes it with "I'm on it" (the card names her owner), opens its
thread, clicks Approve as alice, confirms the dialog, sees
the verified outcome in the thread, and then the incident resolve (its parent edited). A
screenshot is saved as `artifacts/browser-approve.png`.

Chromium must be at /usr/bin/chromium (`apt-get install chromium`; `.ci/run` installs it). In
CI (`CI` set) its absence fails the test; elsewhere the test is skipped with the reason.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.model import ProposalState
from tikvops.demo import DEMO_APPROVER, DemoOptions, open_demo
from tikvops.settings import Settings

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
FAST = {"poll_interval": 0.5, "latency_grace": 1.0, "resolve_after": 1.0}
ENGINE = {"poll_intervals": {"drain": 0.2}, "deadlines": {"drain": 60.0}}
WAIT_MS = 30_000

pytestmark = pytest.mark.browser


def require_chromium(path: Path = CHROMIUM) -> Path:
    """`path` if Chromium is there; otherwise fail in CI (`CI` set) and skip elsewhere."""
    if path.exists():
        return path
    message = (
        f"{path} is missing: install Debian's Chromium "
        "(apt-get install -y --no-install-recommends chromium)"
    )
    if os.environ.get("CI"):
        pytest.fail(f"CI needs the browser test: {message}")
    pytest.skip(message)


@pytest.fixture
def chromium() -> Iterator[Path]:
    yield require_chromium()


def test_a_missing_chromium_fails_in_ci_and_skips_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "no-chromium"
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install"):
        require_chromium(missing)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI needs the browser test"):
        require_chromium(missing)
    assert require_chromium(tmp_path) == tmp_path  # present: used as it is


@pytest.fixture
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


async def test_alice_approves_the_drain_in_a_real_browser(
    chromium: Path, tmp_path: Path, no_proxy: None
) -> None:
    from playwright.async_api import async_playwright, expect

    base = Settings(
        _env_file=None,
        pd_url=None,
        slack_bot_token=None,
        slack_app_token=None,
        anthropic_api_key=None,
    )
    options = DemoOptions(port=0, scenario="slow-store", delay=0.0, speed=20.0, regions=150)
    async with (
        open_demo(base, options, overrides=FAST, engine_options=ENGINE) as demo,
        async_playwright() as pw,
    ):
        assert demo.fake is not None and demo.sim is not None and demo.page_url is not None
        context = await pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=str(chromium),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 900},
        )
        try:
            page = await context.new_page()
            await page.goto(demo.page_url)
            await expect(page.locator("body[data-ready=true]")).to_have_count(1, timeout=WAIT_MS)
            await expect(page.get_by_test_id("app-status")).to_have_attribute(
                "data-connected", "true", timeout=WAIT_MS
            )
            await expect(page.get_by_test_id("user-picker")).to_have_value(DEMO_APPROVER)

            result = demo.inject()
            assert result is not None and result.store_id == 2

            incident = page.get_by_test_id("message").filter(
                has_text="High write latency on store 2"
            )
            await expect(incident).to_have_count(1, timeout=WAIT_MS)
            # alice takes the incident: the card says she owns it (edited in place)
            ack = incident.locator('[data-testid=button][data-action-id="tikvops.incident.ack"]')
            await expect(ack).to_have_count(1, timeout=WAIT_MS)
            await ack.click()
            await expect(incident).to_contain_text("Owner:", timeout=WAIT_MS)
            await expect(incident).to_contain_text("alice", timeout=WAIT_MS)
            await incident.get_by_test_id("reply-count").click()
            thread = page.get_by_test_id("thread-panel")
            approve = thread.locator('[data-testid=button][data-action-id="tikvops.approve"]')
            await expect(approve).to_have_count(1, timeout=WAIT_MS)
            await approve.click()

            dialog = page.get_by_test_id("confirm-dialog")
            await expect(dialog).to_be_visible()
            await expect(dialog).to_contain_text("Drain store 2")
            await dialog.get_by_test_id("confirm-confirm").click()

            outcome = thread.get_by_test_id("thread-message").filter(
                has_text=re.compile(r"P-\d+ succeeded")
            )
            await expect(outcome.filter(has_text="Verified")).to_have_count(1, timeout=WAIT_MS)
            await expect(outcome).to_contain_text(re.compile(r"leaders on store 2: [\d,]+ → 0"))
            await expect(approve).to_have_count(0)  # the proposal shows its outcome, no buttons
            # the drained store no longer slows writes: the incident resolves, its parent edited
            await expect(incident.get_by_test_id("block-header")).to_contain_text(
                "RESOLVED", timeout=WAIT_MS
            )
            # the last text reply (the resolution's chart may be uploaded after it)
            texts = thread.locator("[data-testid=thread-message]:not(:has([data-testid=file]))")
            await expect(texts.last).to_contain_text("Resolved")

            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "browser-approve.png"), full_page=True)
        finally:
            await context.close()

        [taken] = await demo.stack.runtime.repos.audit.list_recent(action_prefix="incident.ack")
        assert taken.actor.id == DEMO_APPROVER
        [proposal] = await demo.stack.runtime.repos.proposals.list(limit=5)
        assert proposal.state is ProposalState.SUCCEEDED
        assert [a.by.id for a in proposal.approvals] == [DEMO_APPROVER]
        writes = [r for r in demo.sim.requests if r.method == "POST" and r.path.startswith("/pd/")]
        assert [w.body for w in writes] == [{"name": "evict-leader-scheduler", "store_id": 2}]
        assert demo.sim.cluster.stores[2].leader_count == 0
