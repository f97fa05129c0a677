"""Chromium (Debian's, headless) and its pages against the live server. Each page fails the test
on a script error, a Content-Security-Policy violation or a leaked API key."""

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright

from tests.browser.helpers import DESKTOP, TIMEOUT_MS
from tests.conftest import API_KEY

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    # A conftest cannot skip its directory at import (pytest fails when it is named on the command
    # line), so the tests that need Chromium skip here, each with the reason.
    if not CHROMIUM.exists():
        pytest.skip(
            "Chromium is not installed (/usr/bin/chromium): browser tests skipped; "
            "install with apt-get install chromium"
        )
    # Playwright's sync API keeps an event loop running in the main thread, so Django would refuse
    # the ORM calls these tests make themselves (fixtures and checks of what was stored). The
    # switch is on only while a module that uses Chromium runs.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]


ELSEWHERE = re.compile(r"^https?://(?!(localhost|127\.0\.0\.1)[:/])")


@pytest.fixture
def open_page(browser, live_server):
    """Opens a page in a fresh browser context (`browser.new_context` options: viewport, color_scheme...).

    Each page fails the test on a script error or a leaked API key.
    """
    opened = []

    def open_page(**options) -> Page:
        context = browser.new_context(base_url=live_server.url, **{"viewport": DESKTOP, **options})
        context.set_default_timeout(TIMEOUT_MS)
        # Nothing but this machine is asked: the identity provider's own sign-in page loads Google
        # Fonts, and with no internet that request hung its page's load for seconds (a flaky test).
        context.route(ELSEWHERE, lambda route: route.abort())
        page = context.new_page()
        script_errors, blocked = [], []
        page.on("pageerror", lambda error: script_errors.append(error))
        # Chromium reports what the Content-Security-Policy refused on the console.
        page.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)
        opened.append((page, script_errors, blocked))
        return page

    yield open_page
    for page, script_errors, blocked in opened:
        html = page.content()
        page.context.close()
        assert not script_errors, f"JavaScript errors on the page: {script_errors}"
        assert not blocked, f"the Content-Security-Policy blocked something: {blocked}"
        assert API_KEY not in html, "the upstream API key appeared in the page"


@pytest.fixture
def page(open_page):
    """A desktop-sized page in a fresh browser context."""
    return open_page()
