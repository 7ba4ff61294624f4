"""A real browser (Debian's Chromium, Playwright) against the demo stack: after the slow-store
fault, the incident's thread shows the chart the bot uploaded (an image that loads), times on
the card are Slack date tokens rendered for the viewer, and the Home tab (opening it sends
`app_home_opened`) lists the open incident and the proposal waiting for approval with its
buttons. Screenshots: `artifacts/browser-chart-thread.png`, `artifacts/browser-app-home.png`.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.e2e.test_browser import ARTIFACTS, CHROMIUM_ARGS, ENGINE, FAST, WAIT_MS, chromium
from tikvops.demo import DEMO_APPROVER, DemoOptions, open_demo
from tikvops.settings import Settings

__all__ = ["chromium"]  # the fixture, shared with test_browser

pytestmark = pytest.mark.browser


@pytest.fixture
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


async def test_the_chart_in_the_thread_and_the_home_tab_in_a_real_browser(
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
        assert demo.fake is not None and demo.page_url is not None
        context = await pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=str(chromium),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1200},
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
            # Times on the card are date tokens, shown for alice (Europe/Amsterdam), with the
            # UTC fallback as their title.
            since = incident.locator("time.date-token").first
            await expect(since).to_have_attribute("title", re.compile(r"\d\d:\d\d UTC"))
            await incident.get_by_test_id("reply-count").click()
            thread = page.get_by_test_id("thread-panel")
            image = thread.get_by_test_id("file-image")
            await expect(image).to_have_count(1, timeout=WAIT_MS)
            await expect(image).to_have_attribute("alt", re.compile("store 2 highlighted"))
            loaded = await image.evaluate("img => img.complete && img.naturalWidth")
            assert loaded and loaded >= 600  # the PNG loaded from the stand-in
            await expect(thread.get_by_test_id("file")).to_contain_text("last")
            ARTIFACTS.mkdir(exist_ok=True)
            await thread.get_by_test_id("thread-messages").evaluate(
                "box => { box.scrollTop = box.scrollHeight; }"
            )
            await page.screenshot(path=str(ARTIFACTS / "browser-chart-thread.png"))

            await expect(
                thread.locator('[data-testid=button][data-action-id="tikvops.approve"]')
            ).to_have_count(1, timeout=WAIT_MS)
            await page.get_by_test_id("home-link").click()
            home = page.get_by_test_id("home-view")
            await expect(home).to_contain_text("Waiting for approval (1)", timeout=WAIT_MS)
            await expect(home).to_contain_text("Open incidents (1)")
            await expect(home).to_contain_text("High write latency on store 2")
            await expect(home).to_contain_text("Kill switch off")
            approve = home.locator('[data-testid=button][data-action-id="tikvops.approve"]')
            await expect(approve).to_have_count(1)
            await page.screenshot(path=str(ARTIFACTS / "browser-app-home.png"), full_page=True)
            assert DEMO_APPROVER in demo.fake.api.homes.opened
        finally:
            await context.close()
