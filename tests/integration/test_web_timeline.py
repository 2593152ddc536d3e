"""The web timeline in a real browser (issue 12): Debian's chromium, headless, driven by
Playwright, against a projector fed by a real worker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from ricochet.workers.client.client import Client
from ricochet.workers.read import api
from ricochet.workers.read.http import projector_app
from ricochet.workers.read.projector import Projector
from ricochet.workers.settings import Settings
from tests.integration import tasks, web_tasks
from tests.integration.harness import declare_topology, eventually, running_worker

CHROMIUM = "/usr/bin/chromium"
"""Debian's chromium (apt-get install chromium): Playwright's own browsers are never used."""


@dataclass
class Site:
    """A projector serving its pages, and the worker feeding it."""

    base: str
    projector: Projector

    async def has(self, execution_id: str, ended: bool = True) -> None:
        def folded() -> bool:
            state = self.projector.projection.get(execution_id)
            return state is not None and (state.is_terminal or not ended)

        await eventually(folded, timeout=20)


@pytest.fixture
async def site(settings: Settings) -> AsyncIterator[Site]:
    await declare_topology(settings)
    projector = Projector(settings)
    await projector.start()
    runner = await api.serve(projector_app(projector), "127.0.0.1", 0)
    try:
        async with running_worker(settings, [*tasks.ALL, *web_tasks.ALL]):
            yield Site(f"http://127.0.0.1:{runner.addresses[0][1]}", projector)
    finally:
        await runner.cleanup()
        await projector.stop()


@pytest.fixture
async def page() -> AsyncIterator[Page]:
    async with async_playwright() as playwright:
        browser: Browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield await browser.new_page(viewport={"width": 1100, "height": 800})
        finally:
            await browser.close()


async def test_the_list_shows_a_failed_and_a_succeeded_execution(
    site: Site, client: Client, page: Page
) -> None:
    """Given one execution that succeeded and one that failed, the executions page lists
    both with their status, and its status filter keeps only the failed one."""
    good = await client.submit("t.ok")
    bad = await client.submit("t.fails_once_no_retry")
    await asyncio.gather(good.wait(timeout=20), bad.wait(timeout=20))
    await site.has(good.id)
    await site.has(bad.id)

    await page.goto(f"{site.base}/ui")
    await expect(page.locator(f"tr:has-text('{good.id}')")).to_have_attribute(
        "data-status", "succeeded"
    )
    await expect(page.locator(f"tr:has-text('{bad.id}')")).to_have_attribute(
        "data-status", "failed"
    )
    await page.select_option("select[name=status]", "failed")
    await page.click("form.filters button")
    await expect(page.locator("tr.execution")).to_have_count(1)
    await expect(page.locator("tr.execution")).to_contain_text(bad.id)


async def test_the_execution_page_draws_three_bars_with_their_waits(
    site: Site, client: Client, page: Page, tmp_path: Path
) -> None:
    """Given retries=(2, 0.5, 1) failing twice, the page shows three attempt bars on one
    axis, the waits 0.50 s and 1.00 s, and each failure's cause and error."""
    handle = await client.submit("t.backoff")
    await handle.wait(timeout=20)
    await site.has(handle.id)

    await page.goto(f"{site.base}/ui/executions/{handle.id}")
    await expect(page.locator(".bar")).to_have_count(3)
    await expect(page.locator(".bar.failed")).to_have_count(2)
    await expect(page.locator(".bar.succeeded")).to_have_count(1)
    waits = await page.locator(".wait-text").all_inner_texts()
    assert [w.split(" (")[0] for w in waits] == ["waited 0.50 s", "waited 1.00 s"]
    await expect(page.locator(".attempt .error").first).to_contain_text("Boom: not yet")
    lefts = [
        await bar.evaluate("b => b.getBoundingClientRect().left")
        for bar in await page.locator(".bar").all()
    ]
    assert lefts == sorted(lefts)
    assert lefts[0] < lefts[-1]
    shot = tmp_path / "execution-page.png"
    await page.screenshot(path=str(shot), full_page=True)
    print(f"screenshot of the execution page: {shot}")


async def test_a_live_execution_page_updates_without_a_reload(
    site: Site, client: Client, page: Page
) -> None:
    """Given the page of an execution still running, it shows the attempt running, then,
    with no reload (a marker set on the window survives), its retry and final success."""
    handle = await client.submit("web.slow")
    await site.has(handle.id, ended=False)
    await page.goto(f"{site.base}/ui/executions/{handle.id}")
    await page.evaluate("window.notReloaded = true")
    await expect(page.locator(".status").first).not_to_have_text("succeeded")
    await expect(page.locator(".bar.running")).to_have_count(1, timeout=10_000)
    await expect(page.locator(".status").first).to_have_text("succeeded", timeout=20_000)
    await expect(page.locator(".bar")).to_have_count(2)
    assert await page.evaluate("window.notReloaded") is True


async def test_an_error_with_script_tags_is_shown_as_text(
    site: Site, client: Client, page: Page
) -> None:
    """Given an error message that is hostile HTML, the page shows it as text and runs none
    of it."""
    handle = await client.submit("web.xss")
    await handle.wait(timeout=20)
    await site.has(handle.id)

    await page.goto(f"{site.base}/ui/executions/{handle.id}")
    await expect(page.locator(".attempt .message")).to_have_text(web_tasks.XSS)
    await expect(page.locator(".final .message")).to_have_text(web_tasks.XSS)
    assert await page.evaluate("window.pwned") is None
    assert await page.locator("#live script, #live img").count() == 0
