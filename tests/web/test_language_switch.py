"""The header's language link (issue 13): it brings the person back to the page they were on,
and from a page reached by POST (a form's result) to the closest page that answers GET, never
to a 404 or 405; it sends nowhere but this site."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse
from fastapi.testclient import TestClient

from mynumber.app import Container
from mynumber.web.assemble import assemble
from mynumber.web.templating import return_path

LINK = re.compile(r'<a href="([^"]+)"[^>]*id="language-switch"')


def _switch(page: str) -> str:
    found = LINK.search(page)
    assert found, "no language link on the page"
    return html.unescape(found.group(1))


def test_the_link_comes_back_to_the_same_page_with_its_query(container: Container) -> None:
    with TestClient(assemble(container)) as client:
        page = client.get("/portal/login?next=%2Fportal%2Finfo&lang=ja")
        link = _switch(page.text)
        assert link.startswith("/lang/en?")
        assert parse_qs(urlsplit(link).query)["next"] == ["/portal/login?next=%2Fportal%2Finfo"]
        english = client.get(link)
    assert english.status_code == 200
    assert str(english.url).endswith("/portal/login?next=%2Fportal%2Finfo")
    assert '<html lang="en">' in english.text
    assert client.cookies.get("lang") == "en"


def test_from_a_page_reached_by_post_the_link_leads_to_a_page_that_answers(
        container: Container) -> None:
    with TestClient(assemble(container)) as client:
        form = client.get("/card/lost")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token
        result = client.post("/card/lost", data={"csrf_token": token.group(1)})
        assert result.status_code in (400, 422)  # a form with errors, rendered as a page
        link = _switch(result.text)
        english = client.get(link)
    assert english.status_code == 200
    assert '<html lang="en">' in english.text
    assert urlsplit(str(english.url)).path == "/card/lost"


def test_a_post_only_path_returns_to_the_nearest_get_page() -> None:
    app = FastAPI()

    @app.get("/a")
    def top() -> str:
        return "top"

    @app.post("/a/b/c")
    def act(request: Request) -> PlainTextResponse:
        return PlainTextResponse(return_path(request))

    @app.get("/x/{ident}")
    def item(ident: int) -> str:
        return str(ident)

    @app.post("/x/{ident}/do")
    def do(request: Request) -> PlainTextResponse:
        return PlainTextResponse(return_path(request))

    with TestClient(app) as client:
        assert client.post("/a/b/c").text == "/a"
        assert client.post("/x/7/do").text == "/x/7"
        assert client.post("/nowhere/else").status_code == 404


def test_the_switch_sends_nowhere_but_this_site(container: Container) -> None:
    with TestClient(assemble(container), follow_redirects=False) as client:
        for target in ("//evil.example/", "https://evil.example/", "/\\evil.example",
                       "javascript:alert(1)", ""):
            response = client.get("/lang/en", params={"next": target})
            assert response.status_code == 303
            assert response.headers["location"] == "/", target
        unknown = client.get("/lang/xx", params={"next": "/portal"})
    assert unknown.status_code == 303 and unknown.headers["location"] == "/portal"
    assert "set-cookie" not in unknown.headers
