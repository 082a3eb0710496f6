"""Put the contexts' routers, views and error handlers into FastAPI apps: one per listener
(public, infrastructure), or one for both (embedded mode)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles

from mynumber import __version__
from mynumber.agencies import api as agencies_api
from mynumber.auth import api as auth_api
from mynumber.card import api as card_api
from mynumber.card import views as card_views
from mynumber.jpki import api as jpki_api
from mynumber.juki import api as juki_api
from mynumber.juki import views as juki_views
from mynumber.kernel import csrf
from mynumber.kernel.errors import too_large
from mynumber.kernel.headers import SecurityHeaders
from mynumber.kernel.limits import BodyLimit
from mynumber.network import api as network_api
from mynumber.network import log_api as network_log_api
from mynumber.network.sequencer import LogSequencer
from mynumber.portal import api as portal_api
from mynumber.portal import views as portal_views
from mynumber.portal.oauth import api as portal_oauth_api
from mynumber.registry import api as registry_api
from mynumber.registry import views as registry_views
from mynumber.registry.services import load_municipality_rows
from mynumber.web import accounts_api, accounts_portal, health, pages, problems
from mynumber.web.accounts_agency_api import router as accounts_agency_router
from mynumber.web.accounts_bank import router as accounts_bank_router
from mynumber.web.accounts_bank_pages import router as accounts_bank_pages_router
from mynumber.web.accounts_counter import router as accounts_counter_router
from mynumber.web.accounts_deposit import api_router as accounts_deposit_api_router
from mynumber.web.accounts_deposit import router as accounts_deposit_router
from mynumber.web.health import PLAIN, ListenerTls
from mynumber.web.insurance_api import insurer_router as insurance_insurer_router
from mynumber.web.insurance_api import terminal_router as insurance_terminal_router
from mynumber.web.insurance_pages import router as insurance_pages_router
from mynumber.web.insurance_portal import install_history_section
from mynumber.web.insurance_portal import router as insurance_portal_router
from mynumber.web.insurance_resident_api import router as insurance_resident_router

if TYPE_CHECKING:
    from mynumber.app import Container

STATIC = Path(__file__).parent / "static"


def _operation_id(route: APIRoute) -> str:
    return route.name


ROLES = ("all", "core", "intermediate", "portal")
PUBLIC = "public"
INFRASTRUCTURE = "infrastructure"
BOTH = "both"
LISTENERS = (BOTH, PUBLIC, INFRASTRUCTURE)
EVERY = "every"  # a route served on every listener (health, static files, the API description)

# The listeners each role opens (``mynumber serve``): the core's public side (CRL, OCSP, the
# log's auditor API, /card/lost, and the portal when no separate portal runs) and its
# infrastructure side; an intermediate server is infrastructure only, a portal public only.
ROLE_LISTENERS: dict[str, tuple[str, ...]] = {
    "all": (PUBLIC, INFRASTRUCTURE),
    "core": (PUBLIC, INFRASTRUCTURE),
    "intermediate": (INFRASTRUCTURE,),
    "portal": (PUBLIC,),
}


@dataclass(frozen=True)
class Placement:
    """Routes whose path is ``path`` or starts with ``path + "/"`` (only ``path`` itself when
    ``exact``; only those methods when ``methods``) go on ``listener``."""

    path: str
    listener: str
    exact: bool = False
    methods: frozenset[str] | None = None

    def matches(self, path: str, methods: frozenset[str]) -> bool:
        if self.methods is not None and not methods <= self.methods:
            return False
        if path == self.path:
            return True
        return not self.exact and path.startswith(self.path + "/")


# Where every route goes; the first match wins. A route no rule places is a start-up error
# (a new router must be placed here on purpose, never land on a listener by default).
PLACEMENTS: tuple[Placement, ...] = (
    Placement("/healthz", EVERY, exact=True),
    Placement("/readyz", EVERY, exact=True),
    Placement("/metrics", INFRASTRUCTURE, exact=True),  # operators' monitoring
    Placement("/static", EVERY),
    Placement("/openapi.json", EVERY, exact=True),
    Placement("/docs", EVERY),
    Placement("/redoc", EVERY, exact=True),
    Placement("/lang", EVERY),  # the header's language link, on every page's listener
    # Infrastructure: the network core's agency-facing API, intermediate servers' routed
    # queries, staff (LGWAN-side) pages and APIs, and the agency/staff parts of the portal API.
    Placement("/api/v1/network", INFRASTRUCTURE),
    Placement("/agencies", INFRASTRUCTURE),
    Placement("/api/v1/registry", INFRASTRUCTURE),  # the registry and staff sign-in
    Placement("/api/v1/jpki", INFRASTRUCTURE),  # relying-party administration
    Placement("/api/v1/juki", INFRASTRUCTURE),  # 住基ネット: agencies' identity queries
    Placement("/api/v1/accounts/agencies", INFRASTRUCTURE),  # 公金受取口座: agency routes
    # オンライン資格確認: insurers (agencies of the network directory) sign with their agency
    # key, as the agencies' routes of 公金受取口座 do.
    Placement("/api/v1/insurance/insurers", INFRASTRUCTURE),
    Placement("/counter", INFRASTRUCTURE),  # 窓口: registry, cards, portal proxies
    # オンライン資格確認's staff pages on the counter's sign-in: a medical institution's reception
    # (its terminals' operators) and the insurers' work.
    Placement("/clinic", INFRASTRUCTURE),
    Placement("/insurer", INFRASTRUCTURE),
    Placement("/api/v1/card/cards", INFRASTRUCTURE),  # the card counter's API (staff)
    Placement("/api/v1/portal/notices", INFRASTRUCTURE),  # agencies send お知らせ
    Placement("/api/v1/portal/proxies", INFRASTRUCTURE),  # staff register 代理人
    Placement("/api/v1/portal/clients", PUBLIC, exact=True,
              methods=frozenset({"POST"})),  # an applicant applies for an API client
    Placement("/api/v1/portal/clients", INFRASTRUCTURE),  # デジタル庁 staff vet clients
    # Public: residents, relying parties, auditors.
    Placement("/", PUBLIC, exact=True),
    Placement("/portal", PUBLIC),
    Placement("/api/v1/portal", PUBLIC),
    Placement("/bank", PUBLIC),  # 公金受取口座: a bank's counter pages (bank clients)
    Placement("/api/v1/bank", PUBLIC),  # ... and the bank route's signed API
    # オンライン資格確認: medical institutions' terminals, each signing with its registered
    # certificate's key (like the bank route; the resident's API is under /api/v1/portal).
    Placement("/api/v1/insurance/terminal", PUBLIC),
    Placement("/oauth", PUBLIC),
    Placement("/.well-known", PUBLIC),
    Placement("/card/lost", PUBLIC),
    Placement("/api/v1/card/smartphone-credentials", PUBLIC),
    Placement("/api/v1/card/loss-reports", PUBLIC),
    Placement("/jpki/crl", PUBLIC),
    Placement("/jpki/ocsp", PUBLIC),
    Placement("/jpki/ca", PUBLIC),
    Placement("/log", PUBLIC),
)


class UnplacedRoute(RuntimeError):
    """A route matches no :data:`PLACEMENTS` rule."""


def placement(path: str, methods: frozenset[str] = frozenset()) -> str:
    """``public``, ``infrastructure`` or ``every`` for a route (its path template)."""
    for rule in PLACEMENTS:
        if rule.matches(path, methods):
            return rule.listener
    raise UnplacedRoute(f"the route {path} is placed on no listener: add it to "
                        "mynumber.web.assemble.PLACEMENTS")


class ProcessLifecycle:
    """What runs once per process however many apps (listeners) serve it: the access log's
    sequencer and the event dispatchers (roles that hold the core) from the first
    app's start-up, and ``container.close()`` after the last app's shut-down."""

    def __init__(self, container: Container, role: str) -> None:
        self.container = container
        self.runs_sequencer = role in ("all", "core")
        self.users = 0
        self.sequencer: LogSequencer | None = None

    def enter(self) -> None:
        if self.users == 0 and self.runs_sequencer:
            self.sequencer = LogSequencer(self.container.network_log)
            self.sequencer.start()
        if self.users == 0 and self.container.settings.event_dispatcher:
            for dispatcher in self.container.dispatchers:  # the registry's, the accounts'
                dispatcher.start()
        self.users += 1

    def exit(self) -> None:
        self.users -= 1
        if self.users > 0:
            return
        try:
            for dispatcher in self.container.dispatchers:
                dispatcher.stop()
            if self.sequencer is not None:
                self.sequencer.stop()
                self.sequencer = None
        finally:
            self.container.close()

    @asynccontextmanager
    async def lifespan(self, _app: FastAPI) -> AsyncIterator[None]:
        self.enter()
        try:
            yield
        finally:
            self.exit()


def _subset(router: APIRouter, listener: str) -> APIRouter:
    """The routes registered directly on ``router`` (not those of routers it includes) that
    belong on ``listener``: for the routers that mix public and infrastructure routes."""
    return APIRouter(routes=[
        route for route in router.routes
        if isinstance(route, APIRoute)
        and placement(route.path, frozenset(route.methods or ())) == listener
    ])


def _auth_api() -> APIRouter:
    """The staff sign-in API, under the registry's prefix."""
    router = APIRouter()
    router.include_router(auth_api.router, prefix=auth_api.PREFIX)
    return router


def _routers(role: str, listener: str) -> list[APIRouter]:
    """The routers of ``role`` that go on ``listener`` (public or infrastructure)."""
    core = role in ("all", "core")
    routers: list[APIRouter] = []
    if listener == PUBLIC:
        routers += [
            pages.router,  # the home page
            _subset(portal_views.router, PUBLIC),  # the resident's pages (not the counter's)
            _subset(portal_api.router, PUBLIC),
            _subset(portal_oauth_api.router, PUBLIC),  # OIDC and the self-information API
            _subset(portal_oauth_api.clients_router, PUBLIC),  # applying for an API client
            juki_views.router,  # 住基ネット: the resident's 提供状況の開示 page
            juki_api.portal_router,  # ... and its portal JSON API
            accounts_portal.router,  # 公金受取口座: the resident's pages
            accounts_api.router,  # ... and their JSON API
            accounts_deposit_router,  # 預貯金口座付番, 預金保険機構: the resident's pages
            accounts_deposit_api_router,  # ... and their JSON API
            accounts_bank_router,  # 公金受取口座: the bank route's signed API
            accounts_bank_pages_router,  # ... and a bank's counter pages (/bank)
            insurance_portal_router,  # オンライン資格確認: the resident's pages
            insurance_resident_router,  # ... and their JSON API
            insurance_terminal_router,  # ... medical institutions' terminals' signed API
        ]
        if core:
            routers += [
                card_views.public,  # /card/lost
                card_api.router,  # the loss report (residents, the call centre)
                card_api.holder,  # a holder enrols a smartphone (card + PIN)
                jpki_api.protocols,  # CRL, OCSP, CA certificates
                network_log_api.router,  # the access log's auditor API
            ]
        return routers
    if core:
        routers += [
            _auth_api(),
            registry_api.router,
            registry_views.router,
            card_views.router,  # the card counter
            card_api.counter,  # the card counter's JSON API (staff)
            jpki_api.router,  # relying-party administration
            network_api.router,  # exchanges, agency codes, the directory
            juki_api.router,  # 住基ネット: agencies' 本人確認情報 queries
            accounts_agency_router,  # 公金受取口座: 確定申告, 日本年金機構
            accounts_counter_router,  # 公金受取口座 at the municipal counter
            insurance_insurer_router,  # オンライン資格確認: insurers' signed API
            insurance_pages_router,  # ... its staff pages: /clinic (reception), /insurer
            portal_views.counter,  # 代理人 registration at the counter
            _subset(portal_api.router, INFRASTRUCTURE),  # agencies' お知らせ, proxies
            _subset(portal_oauth_api.clients_router, INFRASTRUCTURE),  # vetting API clients
        ]
    if core:  # the agencies' back office: where the agencies service runs
        routers.append(agencies_api.back_office)
    if role in ("all", "intermediate"):
        routers.append(agencies_api.router)  # the intermediate server's routed queries
    return routers


def assemble(container: Container, role: str = "all", listener: str = BOTH, *,
             tls: ListenerTls = PLAIN, lifecycle: ProcessLifecycle | None = None) -> FastAPI:
    """One FastAPI app: the routes of ``role`` (``all``: everything, the embedded default;
    ``core``: everything but the intermediate server's route; ``intermediate``: that route;
    ``portal``: the portal, OIDC, home page) that belong on ``listener`` (``both``: one
    listener for everything the role serves; ``public``; ``infrastructure``; see
    :data:`PLACEMENTS` and docs/deployment.md). ``tls`` is how the listener is served (for
    ``/readyz``). Apps serving one process share one ``lifecycle`` (:func:`assemble_listeners`)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; choose from {', '.join(ROLES)}")
    if listener not in LISTENERS:
        raise ValueError(f"unknown listener {listener!r}; choose from {', '.join(LISTENERS)}")
    if listener != BOTH and listener not in ROLE_LISTENERS[role]:
        raise ValueError(f"the {role} role has no {listener} listener")
    wanted = set(ROLE_LISTENERS[role]) if listener == BOTH else {listener}
    lifecycle = lifecycle or ProcessLifecycle(container, role)
    pages_served = role != "intermediate"

    app = FastAPI(
        title="mynumber",
        version=__version__,
        description=(
            "An open implementation of Japan's individual number system. Errors are RFC 9457 "
            "problem details (application/problem+json) with a stable `code`."
        ),
        generate_unique_id_function=_operation_id,
        responses=problems.STANDARD_PROBLEMS,
        lifespan=lifecycle.lifespan,
    )
    app.state.container = container
    app.state.role = role
    app.state.listener = listener
    app.state.listener_tls = tls
    app.state.lifecycle = lifecycle
    app.state.settings = container.settings
    # A role's container leaves out the parts the role does not run (None here then).
    app.state.registry = _part(container, "registry")
    app.state.staff_auth = _part(container, "staff_auth")
    app.state.jpki = _part(container, "jpki")
    app.state.cards = _part(container, "card")
    app.state.municipalities = load_municipality_rows()
    if pages_served and container.has("eligibility"):
        install_history_section(container)  # やりとり履歴: the insurance access records
    if pages_served:  # the HTML pages' CSRF key; the intermediate server has no pages
        csrf.install(app, container.keys.symmetric_key(csrf.KEY_PURPOSE))
    # Middleware runs outermost-last-added: security headers on every answer (errors and 413s
    # included), then the body limit, then the last-resort error handler (problems.install).
    problems.install(app)
    app.add_middleware(BodyLimit, respond=too_large)
    app.add_middleware(SecurityHeaders,
                       https=str(container.settings.public_url).startswith("https://"),
                       docs_paths=(app.docs_url or "", app.redoc_url or "",
                                   app.swagger_ui_oauth2_redirect_url or ""))
    app.include_router(health.router)  # on every listener
    if INFRASTRUCTURE in wanted:
        app.include_router(health.metrics_router)
    for side in (PUBLIC, INFRASTRUCTURE):
        if side in wanted:
            for router in _routers(role, side):
                app.include_router(router)
    if pages_served:
        app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _check_placement(app, wanted)
    _add_problem_schema(app)
    return app


def _effective_routes(app: FastAPI) -> list[Any]:
    """Every route with its full path (FastAPI >= 0.16x includes routers lazily)."""
    try:
        from fastapi.routing import iter_route_contexts  # type: ignore[attr-defined,unused-ignore]
    except ImportError:  # older FastAPI copies included routes into app.routes
        return list(app.routes)
    return list(iter_route_contexts(app.routes))


def _part(container: Container, name: str) -> Any:
    """``container.<name>``, or None when the role's container did not build that part."""
    has = getattr(container, "has", None)
    if has is not None and not has(name):
        return None
    return getattr(container, name, None)


def _check_placement(app: FastAPI, listeners: set[str]) -> None:
    """Every route the app serves is placed (:data:`PLACEMENTS`) on one of its listeners:
    a route added to a router later cannot reach the wrong listener unnoticed."""
    for route in _effective_routes(app):
        path = route.path or ""
        where = placement(path, frozenset(route.methods or ()))
        if where != EVERY and where not in listeners:
            raise UnplacedRoute(f"the route {path} belongs on the {where} listener, not on "
                                f"{' and '.join(sorted(listeners))}")


def assemble_listeners(container: Container, role: str,
                       tls: dict[str, ListenerTls] | None = None) -> dict[str, FastAPI]:
    """One app per listener of ``role`` (public, infrastructure), sharing one container and
    one :class:`ProcessLifecycle`: the sequencer starts once, the container closes once."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; choose from {', '.join(ROLES)}")
    lifecycle = ProcessLifecycle(container, role)
    return {listener: assemble(container, role, listener, lifecycle=lifecycle,
                               tls=(tls or {}).get(listener, PLAIN))
            for listener in ROLE_LISTENERS[role]}


def _add_problem_schema(app: FastAPI) -> None:
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["Problem"] = problems.Problem.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
        for name, sub in components["Problem"].pop("$defs", {}).items():
            components.setdefault(name, sub)
        # FastAPI adds its own 422 (HTTPValidationError); ours is a problem document.
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                responses = operation.get("responses", {})
                if "422" in responses:
                    responses["422"] = problems.problem_response(422, "Invalid input")
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
