"""Pages on a 390 px phone and on a 1280 px desktop, in a real browser (Debian's Chromium,
Playwright): no page is wider than the screen (a wide table scrolls in its own box), the
navigation wraps between links, never one character per line, and axe-core (the npm package,
injected into each page) finds no critical or serious violation (issue 13).

Needs /usr/bin/chromium (``sudo make system-deps``) and axe-core (``make axe``, npm); skipped
with that message otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from mynumber.app import Container
from tests.conftest import STAFF_PASSWORD
from tests.e2e.test_portal_browser import (  # noqa: F401 - fixtures
    CHROMIUM,
    INSTALL,
    browser_page,
    card_holder,
    portal_login,
    server,
)
from tests.portal.conftest import CardHolder
from tests.portal.test_views import holder_data
from tests.web.test_counter import staff_account

AXE = (Path(__file__).resolve().parents[2] / ".venv" / "axe-core" / "node_modules" / "axe-core"
       / "axe.min.js")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=INSTALL),
    pytest.mark.skipif(not AXE.exists(), reason="axe-core is not installed: run `make axe` "
                       "(needs Node.js and npm: sudo apt-get install npm)"),
]
#: What axe-core reports that fails a page.
SEVERE = ("critical", "serious")
AXE_RUN = ("async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
           ".map(v => ({id: v.id, impact: v.impact, html: v.nodes[0].html.slice(0, 200)}))")

PUBLIC = ("/", "/portal", "/portal/login", "/card/lost")
RESIDENT = ("/portal", "/portal/info", "/portal/history", "/portal/notices",
            "/portal/applications", "/portal/activities", "/portal/juki", "/portal/proxies",
            "/portal/insurance")
CLERK = ("/counter", "/counter/births", "/counter/move-ins", "/counter/cards",
         "/counter/cards/issue", "/counter/portal/proxies", "/clinic", "/insurer")
# The widest the page may be: the screen (a scroll bar's width of slack for rounding).
WIDTH_CHECK = "() => document.documentElement.scrollWidth"
LINK_HEIGHTS = ("() => Array.from(document.querySelectorAll('nav a'))"
                ".map(a => a.getBoundingClientRect().height)")


@pytest.mark.parametrize("width", [390, 1280])
def test_pages_fit_the_screen_and_the_navigation_wraps_between_links(
    container: Container, card_holder: CardHolder, server: str, width: int  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    holder_data(container, card_holder)
    with browser_page(width) as page:

        def accessible() -> None:
            page.add_script_tag(path=str(AXE))
            severe = [v for v in page.evaluate(AXE_RUN) if v["impact"] in SEVERE]
            assert not severe, (page.url, severe)

        def check(path: str) -> None:
            page.goto(f"{server}{path}")
            accessible()
            assert page.evaluate(WIDTH_CHECK) <= width + 2, (path, width)
            heights = page.evaluate(LINK_HEIGHTS)
            # A link on one line is about 1.2 em high; one character per line is several.
            assert all(h < 40 for h in heights), (path, width, heights)

        for path in PUBLIC:
            check(path)
        portal_login(page, server, card_holder.card_id)
        page.goto(f"{server}/portal/info")
        page.click("#fetch-income")  # a result table with long values
        expect(page.locator("#outcome")).to_have_attribute("data-outcome", "provided")
        assert page.evaluate(WIDTH_CHECK) <= width + 2
        accessible()
        for path in RESIDENT:
            check(path)

        # The clerk: the counter's pages, a search and a record with its history.
        import pyotp

        secret, _ = staff_account(container, "phone-clerk")
        page.goto(f"{server}/counter/login")
        page.fill("#username", "phone-clerk")
        page.fill("#password", STAFF_PASSWORD)
        page.fill("#totp_code", pyotp.TOTP(secret).now())
        page.click("button[type=submit]")
        expect(page.locator(".staffbar")).to_be_visible()
        for path in CLERK:
            check(path)
        page.goto(f"{server}/counter")
        page.fill("#q", card_holder.resident.family_name_kana)
        with page.expect_navigation():  # the results page, loaded before it is measured
            page.click("form[role=search] button[type=submit]")
        assert page.evaluate(WIDTH_CHECK) <= width + 2  # the results table
        accessible()
        page.goto(f"{server}/counter/residents/{card_holder.resident.id}")
        page.select_option("#view-reason_kind", "other")
        page.fill("#view-reason_text", "表示の確認")
        page.click("form.stack button[type=submit]")
        expect(page.locator("table.history")).to_be_visible()
        assert page.evaluate(WIDTH_CHECK) <= width + 2, "record page"
        accessible()
