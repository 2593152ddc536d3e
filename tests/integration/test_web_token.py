"""The web timeline behind the projector's token (issue 13, item 4), in Debian's chromium
driven by Playwright: a browser cannot add a header to a link, so the page takes the
token from a ``#token=`` fragment or a form, once, and keeps a session cookie."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, async_playwright, expect

from ricochet.workers.client.client import Client
from ricochet.workers.read import api
from ricochet.workers.read.http import projector_app
from ricochet.workers.read.projector import Projector
from ricochet.workers.settings import Settings
from tests.integration.harness import bind_target, declare_topology, eventually
from tests.integration.test_web_timeline import CHROMIUM

TOKEN = secrets.token_urlsafe(32)


@pytest.fixture
async def base(settings: Settings) -> AsyncIterator[str]:
    """A projector serving its pages behind ``TOKEN``, on loopback, any port."""
    await declare_topology(settings)  # a projector only reads: the deploy declares
    projector = Projector(settings)
    await projector.start()
    runner = await api.serve(projector_app(projector, TOKEN), "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()
        await projector.stop()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield launched
        finally:
            await launched.close()


async def _pending(settings: Settings, client: Client) -> str:
    """An execution no worker takes: it stays pending, and the pages list it."""
    await bind_target(settings, "t.waits_for_nobody", "nobody")
    return (await client.submit("t.waits_for_nobody")).id


async def test_a_link_with_the_token_in_its_fragment_opens_the_pages(
    settings: Settings, client: Client, base: str, browser: Browser
) -> None:
    """``/ui#token=…`` shows the list, the token leaves the address bar, and the
    execution's page (a link followed later) opens with the session alone."""
    execution_id = await _pending(settings, client)
    page = await browser.new_page()

    async def listed() -> bool:
        await page.goto(f"{base}/ui#token={TOKEN}")
        await page.wait_for_selector("h1")
        return await page.locator(f"tr:has-text('{execution_id}')").count() == 1

    await eventually(listed, timeout=20, every=0.5)
    assert TOKEN not in page.url
    await page.goto(f"{base}/ui/executions/{execution_id}")
    await expect(page.locator("h1, .status").first).to_be_visible()
    assert execution_id in await page.content()


async def test_without_the_token_the_page_asks_and_refuses_a_wrong_one(
    settings: Settings, client: Client, base: str, browser: Browser
) -> None:
    """A browser without the token gets a form, not the data; a wrong token is refused;
    the right one opens the list."""
    execution_id = await _pending(settings, client)
    page = await (await browser.new_context()).new_page()

    response = await page.goto(f"{base}/ui")
    assert response is not None
    assert 401 == response.status
    assert execution_id not in await page.content()
    await page.fill("#token", "not-the-token-at-all")
    await page.click("#login button")
    await expect(page.locator("#refused")).to_be_visible()

    await page.fill("#token", TOKEN)
    await page.click("#login button")
    await expect(page.locator("form.filters")).to_be_visible(timeout=10_000)
    await expect(page.locator(f"tr:has-text('{execution_id}')")).to_have_count(1, timeout=15_000)
