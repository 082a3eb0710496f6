"""The browser suite's crawler and page checks (issue 13, item 6): visit every same-origin page
a person can reach by following links from the home pages, breadth-first, and check each one
(no 5xx, no raw JSON, the page's language, no page wider than the screen, axe-core, and on
Japanese pages no machine text: snake_case codes, ``staff:4``, ISO timestamps, tracebacks).

Failures are collected, not raised one by one: a run reports every failing page at once. When
MYNUMBER_BROWSER_FINDINGS names a file, every test also writes its failures there (a Markdown
list for people, deduplicated; each test replaces its own earlier rows, so the file shows the
latest run of every test, also under pytest-xdist)."""

from __future__ import annotations

import fcntl
import json
import os
import re
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from tests.e2e.test_phone_layout import AXE_RUN, SEVERE

if TYPE_CHECKING:
    from playwright.sync_api import Page, Response

#: Paths that are API documentation, not people's pages: only their status is checked.
API_DOCS = ("/docs", "/redoc")
#: How a file download or a static file ends.
FILE_SUFFIXES = (".css", ".js", ".map", ".png", ".jpg", ".jpeg", ".gif", ".svg", ".ico",
                 ".pdf", ".json", ".xml", ".txt", ".csv", ".zip", ".gz", ".pem", ".crt",
                 ".der", ".cer", ".woff", ".woff2")
#: A path is visited with at most this many different queries (paging links, ?next=, ?done=).
QUERIES_PER_PATH = 2
#: Paths that differ only in their numbers (/portal/notices/3, /portal/notices/4) are one
#: kind of page: at most this many of a kind.
PATHS_PER_PATTERN = 3
#: A safety net: no crawl visits more pages than this.
MAX_PAGES = 120

SNAKE = re.compile(r"\b[a-z]+_[a-z_]+\b")
STAFF_REF = re.compile(r"\bstaff:\d+")
ISO_MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}T")
LINKS = ("() => Array.from(document.querySelectorAll('a[href]'))"
         ".map(a => [a.href, a.hasAttribute('download')])")
PAGE_FACTS = ("() => ({lang: document.documentElement.lang,"
              " width: document.documentElement.scrollWidth,"
              " text: document.body ? document.body.innerText : ''})")

#: What sticks out of the screen: elements wider than the viewport whose parent is not.
WIDE = ("(limit) => [...new Set(Array.from(document.body.querySelectorAll('*')).filter(e => {"
        " const p = e.parentElement; return e.getBoundingClientRect().right > limit"
        " && p && p.getBoundingClientRect().right <= limit; }).map(e => e.closest('table') || e)"
        ")].slice(0, 3).map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')"
        " + (typeof e.className === 'string' && e.className.trim() ? '.' +"
        " e.className.trim().split(/\\s+/).join('.') : '') + ' \u201c' +"
        " (e.innerText || '').trim().slice(0, 30).replace(/\\s+/g, ' ') + '\u201d')")


@dataclass(frozen=True, order=True)
class Finding:
    """One failure on one page as one role saw it."""

    role: str
    lang: str
    width: int
    url: str
    what: str


@dataclass
class Findings:
    """Every failure of a test, collected; ``assert_none`` reports them all at once."""

    key: str
    items: list[Finding] = field(default_factory=list)

    def add(self, role: str, lang: str, width: int, url: str, what: str) -> None:
        finding = Finding(role, lang, width, url, what)
        if finding not in self.items:
            self.items.append(finding)

    def assert_none(self) -> None:
        record(self.key, self.items)
        lines = [f"{f.role}/{f.lang}/{f.width}px {f.url}: {f.what}" for f in self.items]
        assert not lines, f"{len(lines)} failure(s):\n" + "\n".join(lines)


def record(key: str, items: Sequence[Finding]) -> None:
    """Replace the test ``key``'s rows in the findings file (if MYNUMBER_BROWSER_FINDINGS is
    set) and rewrite its Markdown, under an exclusive lock (xdist workers share the file)."""
    target = os.environ.get("MYNUMBER_BROWSER_FINDINGS")
    if not target:
        return
    path = Path(target)
    store = path.with_name(path.name + ".json")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        rows: dict[str, list[dict[str, Any]]] = (
            json.loads(store.read_text()) if store.exists() else {})
        rows[key] = [asdict(f) for f in items]
        store.write_text(json.dumps(rows, ensure_ascii=False, indent=1, sort_keys=True))
        path.write_text(_markdown(rows))


def _markdown(rows: dict[str, list[dict[str, Any]]]) -> str:
    """One entry per (url, what), with every role/language/width that met it."""
    seen: dict[tuple[str, str], set[str]] = {}
    for items in rows.values():
        for f in items:
            path = urlsplit(f["url"]).path or "/"
            query = urlsplit(f["url"]).query
            where = path + (f"?{query}" if query else "")
            seen.setdefault((where, f["what"]), set()).add(
                f"{f['role']}/{f['lang']}/{f['width']}")
    out = ["# Browser suite findings (tests/e2e/test_browser_suite.py)", "",
           "Written by the suite; each test replaces its own rows. One line per page and "
           "failure, with the role/language/width combinations that met it.", "",
           f"{len(seen)} distinct finding(s).", ""]
    for (where, what), who in sorted(seen.items()):
        out.append(f"- `{where}`: {what}  \n  seen as: {', '.join(sorted(who))}")
    return "\n".join(out) + "\n"


def leaks(text: str) -> list[str]:
    """Machine text a person should never read on a Japanese page."""
    found: list[str] = []
    snakes = sorted(set(SNAKE.findall(text)))
    if snakes:
        found.append("machine code(s) in the text: " + ", ".join(snakes[:8]))
    refs = sorted(set(STAFF_REF.findall(text)))
    if refs:
        found.append("staff reference(s) in the text: " + ", ".join(refs[:4]))
    if ISO_MOMENT.search(text):
        moments = sorted(set(re.findall(r"\d{4}-\d{2}-\d{2}T[\d:.+Z-]*", text)))
        found.append("ISO timestamp(s) in the text: " + ", ".join(moments[:3]))
    if "Traceback" in text:
        found.append("a Python traceback in the text")
    return found


def pattern(path: str) -> str:
    return re.sub(r"/[0-9A-Fa-f-]*\d[0-9A-Fa-f-]*(?=/|$)", "/{n}", path)


@dataclass
class Crawler:
    """Breadth-first over the same-origin GET links of a logged-in (or not) browser page."""

    page: Page
    server: str
    role: str
    lang: str
    width: int
    axe: Path | None
    findings: Findings
    visited: list[str] = field(default_factory=list)
    axe_seconds: float = 0.0
    docs: dict[str, int] = field(default_factory=dict)
    _queries: dict[str, set[str]] = field(default_factory=dict)
    _patterns: dict[str, set[str]] = field(default_factory=dict)
    _queued: set[str] = field(default_factory=set)

    def fail(self, url: str, what: str) -> None:
        self.findings.add(self.role, self.lang, self.width, url, what)

    def _target(self, href: str, download: bool) -> str | None:
        """The normalised same-origin URL to visit for a link, or None to leave it."""
        parts = urlsplit(href)
        origin = urlsplit(self.server)
        if parts.scheme not in ("http", "https") or parts.netloc != origin.netloc:
            return None  # external, mailto:, javascript:
        path = parts.path or "/"
        if download or path.startswith("/static/") or path.lower().endswith(FILE_SUFFIXES):
            return None
        if path.startswith("/lang/") or "logout" in path:
            return None  # the language link is used once, on purpose; logging out ends it
        query = parse_qsl(parts.query, keep_blank_values=True)
        if any(k == "lang" for k, _ in query):
            return None
        if any(path == d or path.startswith(d + "/") for d in API_DOCS):
            self.docs.setdefault(path, 0)
            return None
        return path + (f"?{urlencode(sorted(query))}" if query else "")

    def _admit(self, target: str) -> bool:
        if target in self._queued:
            return False
        path, _, query = target.partition("?")
        queries = self._queries.setdefault(path, set())
        kinds = self._patterns.setdefault(pattern(path), set())
        if query not in queries and len(queries) >= QUERIES_PER_PATH:
            return False
        if path not in kinds and len(kinds) >= PATHS_PER_PATTERN:
            return False
        queries.add(query)
        kinds.add(path)
        self._queued.add(target)
        return True

    def _links(self) -> list[str]:
        found = (self._target(href, download) for href, download in self.page.evaluate(LINKS))
        return [f for f in found if f is not None and self._admit(f)]

    def crawl(self, starts: Iterable[str], *, from_here: bool = False) -> None:
        """Visit ``starts`` (and, with ``from_here``, the links of the page now shown) and
        every page reachable from them."""
        queue: deque[str] = deque(s for s in starts if self._admit(s))
        if from_here:
            queue.extend(self._links())
        while queue and len(self.visited) < MAX_PAGES:
            target = queue.popleft()
            response = self.page.goto(self.server + target)
            self.visited.append(target)
            final = urlsplit(self.page.url)
            landed = final.path + (f"?{final.query}" if final.query else "")
            self._queued.add(landed)  # a redirect's target is not visited again
            self.check(response, target)
            queue.extend(self._links())
        for path in self.docs:
            status = self.page.request.get(self.server + path).status
            self.docs[path] = status
            if not 200 <= status < 300:
                self.fail(path, f"API documentation answers HTTP {status}")

    def check(self, response: Response | None, url: str, *, axe: bool = True) -> None:
        """Every check on the page now shown (``url`` names it in the findings)."""
        if response is None:
            self.fail(url, "no response")
            return
        if response.status >= 500:
            self.fail(url, f"HTTP {response.status}")
        kind = response.headers.get("content-type", "")
        facts = self.page.evaluate(PAGE_FACTS)
        text = facts["text"] or ""
        if not kind.startswith("text/html"):
            self.fail(url, f"not an HTML page ({kind or 'no content-type'}, "
                           f"HTTP {response.status})")
            return
        if text.lstrip().startswith("{"):
            self.fail(url, "raw JSON shown to a person")
        if facts["lang"] != self.lang:
            self.fail(url, f'<html lang="{facts["lang"]}">, expected "{self.lang}"')
        if facts["width"] > self.width + 2:
            culprits = ", ".join(self.page.evaluate(WIDE, self.width + 2)) or "?"
            self.fail(url, f"page {facts['width']} px wide on a {self.width} px screen "
                           f"(sticking out: {culprits})")
        if self.lang == "ja":
            for leak in leaks(text):
                self.fail(url, leak)
        elif "Traceback" in text:
            self.fail(url, "a Python traceback in the text")
        if axe and self.axe is not None:
            started = time.perf_counter()
            violations = run_axe(self.page, self.axe)
            self.axe_seconds += time.perf_counter() - started
            for violation in violations:
                self.fail(url, f"axe {violation['impact']} {violation['id']}: "
                               f"{violation['html']}")


def run_axe(page: Page, axe: Path) -> list[dict[str, str]]:
    """axe-core's critical and serious violations on the page (injected from the npm file;
    the context bypasses the pages' CSP for it)."""
    if not page.evaluate("() => typeof axe !== 'undefined'"):
        page.add_script_tag(path=str(axe))
    found: list[dict[str, str]] = page.evaluate(AXE_RUN)
    return [v for v in found if v["impact"] in SEVERE]
