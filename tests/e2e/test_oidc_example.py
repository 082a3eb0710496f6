"""`examples/oidc_client.py` as the README runs it: the project's Python runs the example against
the real app served by uvicorn; a real browser (Debian's Chromium driven by Playwright) opens the
URL it prints, logs in with a card through the virtual reader and approves the consent; the
callback URL the browser was sent to is pasted into the example's standard input; the example
then prints the claims the portal released.

Needs /usr/bin/chromium; skipped with that message otherwise (as tests/e2e/test_portal_browser.py).
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from mynumber.app import Container, build_container
from mynumber.auth.interfaces import StaffPrincipal
from mynumber.portal.oauth.clients import DEMO_REDIRECT_URI, seed_demo_client
from mynumber.settings import Settings
from tests.e2e.test_portal_browser import CHROMIUM, CHROMIUM_ARGS, INSTALL, _free_port, serving
from tests.portal.conftest import AUTH_PIN, CardHolder, issue_card_holder
from tests.portal.test_views import holder_data

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "oidc_client.py"
TIMEOUT = 60.0

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=INSTALL),
]


@pytest.fixture
def port() -> int:
    return _free_port()


@pytest.fixture
def container(settings: Settings, port: int) -> Iterator[Container]:
    """The test container, its public URL (hence the OpenID issuer) where it is served."""
    built = build_container(settings.model_copy(
        update={"public_url": f"http://127.0.0.1:{port}"}))
    yield built
    built.close()


@pytest.fixture
def server(container: Container, port: int) -> Iterator[str]:
    """The real app on ``port``, served by uvicorn in a background thread."""
    with serving(container, port) as base:
        yield base


@pytest.fixture
def card_holder(container: Container, clerk: StaffPrincipal) -> CardHolder:
    holder = issue_card_holder(container, clerk)
    holder_data(container, holder)  # the 新宿区 副本 the released items come from
    return holder


def _lines(stream: IO[str]) -> queue.Queue[str | None]:
    """The stream's lines, read by a thread (None at its end), so reads can time out."""
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        for line in stream:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    return lines


def test_the_example_runs_the_whole_flow_and_prints_the_released_claims(
    container: Container, card_holder: CardHolder, server: str
) -> None:
    from playwright.sync_api import Route, expect, sync_playwright

    demo = seed_demo_client(container.api_clients)
    assert demo is not None and list(demo.redirect_uris) == [DEMO_REDIRECT_URI]
    assert demo.client_secret is not None  # shown once, when the client is created
    env = {k: v for k, v in os.environ.items() if not k.startswith("MYNUMBER_")}
    example = subprocess.Popen(
        [sys.executable, str(EXAMPLE), "--portal", server, demo.client_id, demo.client_secret],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=env, cwd=ROOT)
    try:
        assert example.stdout is not None and example.stdin is not None
        out = _lines(example.stdout)
        first = out.get(timeout=TIMEOUT)
        assert first is not None and first.startswith("open: "), \
            (first, example.stderr.read() if example.stderr else "")
        authorize_url = first.removeprefix("open: ").strip()
        assert authorize_url.startswith(f"{server}/oauth/authorize?")

        callbacks: list[str] = []

        def callback(route: Route) -> None:
            # Nothing listens at the redirect URI (as on a developer's machine): the URL the
            # browser was sent to is what the person copies from the address bar.
            callbacks.append(route.request.url)
            route.fulfill(status=200, content_type="text/plain", body="copy this URL")

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                                 args=CHROMIUM_ARGS, headless=True)
            try:
                page = browser.new_page(locale="ja-JP")
                page.set_default_timeout(15_000)
                page.route(f"{DEMO_REDIRECT_URI}**", callback)
                page.goto(authorize_url)
                # Not logged in: the portal's login, with the virtual card reader.
                page.click("#use-reader")
                page.check(f'input[name="card_id"][value="{card_holder.card_id}"]')
                page.fill("#pin", AUTH_PIN)
                page.click("#sign")
                # Back at the authorization request: the consent screen names the app and
                # the items; release them all.
                expect(page.locator("#client-name")).to_have_text(demo.name)
                expect(page.locator("#scope-basic_four")).to_be_checked()
                expect(page.locator("#scope-income")).to_be_checked()
                page.click("#approve")
                page.wait_for_url(f"{DEMO_REDIRECT_URI}**")
            finally:
                browser.close()
        assert len(callbacks) == 1 and "code=" in callbacks[0]

        # Pasted, as a person would, at the prompt.
        example.stdin.write(callbacks[0] + "\n")
        example.stdin.close()
        rest: list[str] = []
        while (line := out.get(timeout=TIMEOUT)) is not None:
            rest.append(line)
        example.wait(timeout=TIMEOUT)
        stderr = example.stderr.read() if example.stderr else ""
    finally:
        if example.poll() is None:
            example.kill()
            example.wait()
    assert example.returncode == 0, stderr
    stdout = "".join(rest)
    printed = [line for line in stdout.splitlines() if line.strip()]
    assert printed[0] == "paste the callback URL: "
    assert printed[1].startswith("sub (pairwise, for this app only): ")
    released = {}
    for line in printed[2:]:
        scope, status, body = line.split(" ", 2)
        assert status == "200", line
        released[scope] = json.loads(body)
    assert set(released) == {"basic_four", "income"}
    assert {r["outcome"] for r in released.values()} == {"provided"}
    assert released["basic_four"]["data"]["name"] == card_holder.resident.name
    assert released["income"]["data"]["taxable_income"] == 4_200_000
    assert str(card_holder.number) not in stdout  # a pairwise sub, never the 個人番号
