"""The portal in a real browser (Debian's Chromium driven by Playwright) against the real app
served by uvicorn: log in with the virtual card through the reader page, fetch わたしの情報,
verify the exchange in やりとり履歴 against the signed log, log out, and find the session gone.

Needs /usr/bin/chromium (``sudo make system-deps`` or ``sudo apt-get install chromium
fonts-noto-cjk``); skipped with that message otherwise. Set MYNUMBER_BROWSER_SCREENSHOTS to a
directory to keep a screenshot of every step."""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from mynumber.app import Container, create_app
from mynumber.auth.interfaces import StaffPrincipal
from tests.portal.conftest import AUTH_PIN, CardHolder, issue_card_holder
from tests.portal.test_views import holder_data

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
CHALLENGE_HEX = re.compile(r"^[0-9a-f]{64}$")  # 32 random bytes
INSTALL = ("Chromium is not installed (/usr/bin/chromium): run `sudo make system-deps` or "
           "`sudo apt-get install chromium fonts-noto-cjk`")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=INSTALL),
]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def card_holder(container: Container, clerk: StaffPrincipal) -> CardHolder:
    return issue_card_holder(container, clerk)


@pytest.fixture
def server(container: Container) -> Iterator[str]:
    """The real app on a free loopback port, served by uvicorn in a background thread."""
    with serving(container, _free_port()) as base:
        yield base


@contextmanager
def serving(container: Container, port: int) -> Iterator[str]:
    """The real app on ``port``, served by uvicorn in a background thread, until the block
    ends."""
    config = uvicorn.Config(create_app(container=container), host="127.0.0.1", port=port,
                            log_level="warning", lifespan="on")
    served = uvicorn.Server(config)
    thread = threading.Thread(target=served.run, name="portal-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not served.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        served.should_exit = True
        thread.join(timeout=20)


@contextmanager
def browser_page(width: int) -> Iterator[Any]:
    """A Playwright page in Debian's Chromium, ``width`` px wide, Japanese locale."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
                                             headless=True)
        try:
            # The pages' CSP forbids inline scripts: axe's injection bypasses it.
            context = browser.new_context(locale="ja-JP", bypass_csp=True,
                                          viewport={"width": width, "height": 844})
            page = context.new_page()
            page.set_default_timeout(15_000)
            yield page
        finally:
            browser.close()


def portal_login(page: Any, base: str, card_id: str) -> None:
    """The resident's way in: ログイン, the virtual card reader, the card, the 4-digit PIN."""
    from playwright.sync_api import expect

    page.goto(f"{base}/portal/login")
    page.click("#use-reader")
    page.check(f'input[name="card_id"][value="{card_id}"]')
    page.fill("#pin", AUTH_PIN)
    page.click("#sign")
    expect(page.locator("#logout")).to_be_visible()


def test_a_resident_logs_in_with_the_card_verifies_a_record_and_logs_out(
    container: Container, card_holder: CardHolder, server: str
) -> None:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import expect, sync_playwright

    holder_data(container, card_holder)
    shots = os.environ.get("MYNUMBER_BROWSER_SCREENSHOTS")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
                                             headless=True)
        try:
            page = browser.new_page(locale="ja-JP")
            page.set_default_timeout(15_000)

            def shot(name: str) -> None:
                if shots:
                    Path(shots).mkdir(parents=True, exist_ok=True)
                    page.screenshot(path=str(Path(shots) / f"{name}.png"), full_page=True)

            # The portal, not logged in: a login button; then the card reader.
            page.goto(f"{server}/portal")
            shot("01-landing")
            page.click("#login-link")
            expect(page.locator("#challenge")).to_have_text(CHALLENGE_HEX)
            shot("02-login")
            page.click("#use-reader")
            page.check(f'input[name="card_id"][value="{card_holder.card_id}"]')
            page.fill("#pin", AUTH_PIN)
            shot("03-reader")
            page.click("#sign")
            expect(page.locator("#logout")).to_be_visible()
            assert page.url == f"{server}/portal"
            shot("04-home")

            # わたしの情報: one fetch through the network, an exchange about the holder.
            page.click('#portalbar a[href="/portal/info"]')
            page.click("#fetch-basic_four")
            expect(page.locator("#outcome")).to_have_attribute("data-outcome", "provided")
            serial = page.locator("#serial").inner_text().strip()
            assert serial
            expect(page.locator("#data")).to_contain_text(card_holder.resident.family_name)
            shot("05-info")
            container.network_log.integrate()

            # やりとり履歴: the record is listed; 検証 checks it against the signed log.
            page.click('#portalbar a[href="/portal/history"]')
            row = page.locator(f'tr[data-serial="{serial}"]')
            expect(row).to_be_visible()
            shot("06-history")
            row.locator("button.verify").click()
            expect(page.locator("#verification")).to_have_attribute("data-verified", "true")
            expect(page.locator("#verification")).to_contain_text("検証成功")
            expect(page.locator("#checkpoint")).not_to_be_empty()
            shot("07-verified")

            # Log out: the page says so, and the history is no longer reachable.
            page.click("#logout")
            expect(page.locator("#logged-out")).to_contain_text("ログアウトしました")
            shot("08-logged-out")
            assert not [c for c in page.context.cookies() if c["name"] == "mn_portal"]
            # The back button shows nothing of the session: the POST result was never cached
            # (no-store), so Chromium will not show it again.
            try:
                page.go_back()
            except PlaywrightError as exc:
                assert "ERR_CACHE_MISS" in exc.message
                page.wait_for_url("chrome-error://**")
            else:
                expect(page.locator("#verification")).to_have_count(0)
            page.goto(f"{server}/portal/history")
            assert page.url.startswith(f"{server}/portal/login")
            expect(page.locator("#challenge")).to_be_visible()
            expect(page.locator("#history")).to_have_count(0)
            shot("09-after-logout")
        finally:
            browser.close()
