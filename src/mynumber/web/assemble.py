"""Put the contexts' routers, views and error handlers into one FastAPI app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles

from mynumber import __version__
from mynumber.agencies import api as agencies_api
from mynumber.auth import api as auth_api
from mynumber.card import api as card_api
from mynumber.card import views as card_views
from mynumber.jpki import api as jpki_api
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
from mynumber.web import pages, problems

if TYPE_CHECKING:
    from mynumber.app import Container

STATIC = Path(__file__).parent / "static"


def _operation_id(route: APIRoute) -> str:
    return route.name


ROLES = ("all", "core", "intermediate")


def assemble(container: Container, role: str = "all") -> FastAPI:
    """``role``: ``all`` (embedded: everything in one process), ``core`` (everything but the
    intermediate server's route) or ``intermediate`` (only that route; docs/deployment.md)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; choose from {', '.join(ROLES)}")
    core = role != "intermediate"

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        sequencer = LogSequencer(container.network_log) if core else None
        if sequencer is not None:
            sequencer.start()
        try:
            yield
        finally:
            if sequencer is not None:
                sequencer.stop()
            container.close()

    app = FastAPI(
        title="mynumber",
        version=__version__,
        description=(
            "An open implementation of Japan's individual number system. Errors are RFC 9457 "
            "problem details (application/problem+json) with a stable `code`."
        ),
        generate_unique_id_function=_operation_id,
        responses=problems.STANDARD_PROBLEMS,
        lifespan=lifespan,
    )
    app.state.container = container
    app.state.settings = container.settings
    app.state.registry = container.registry
    app.state.staff_auth = container.staff_auth
    app.state.jpki = container.jpki
    app.state.cards = container.card
    app.state.municipalities = load_municipality_rows()
    if core:  # the HTML pages' CSRF key; the intermediate server has no pages
        csrf.install(app, container.keys.symmetric_key(csrf.KEY_PURPOSE))
    # Middleware runs outermost-last-added: security headers on every answer (errors and 413s
    # included), then the body limit, then the last-resort error handler (problems.install).
    problems.install(app)
    app.add_middleware(BodyLimit, respond=too_large)
    app.add_middleware(SecurityHeaders,
                       https=str(container.settings.public_url).startswith("https://"),
                       docs_paths=(app.docs_url or "", app.redoc_url or "",
                                   app.swagger_ui_oauth2_redirect_url or ""))
    if core:
        app.include_router(auth_api.router, prefix=auth_api.PREFIX)
        app.include_router(registry_api.router)
        app.include_router(jpki_api.router)
        app.include_router(jpki_api.protocols)
        app.include_router(pages.router)
        app.include_router(registry_views.router)
        app.include_router(card_api.router)
        app.include_router(card_views.router)
        app.include_router(card_views.public)
        app.include_router(network_log_api.router)
        app.include_router(network_api.router)
        app.include_router(portal_api.router)
        app.include_router(portal_oauth_api.router)
        app.include_router(portal_views.router)
    if role != "core":
        app.include_router(agencies_api.router)
    if role == "intermediate":  # the health check only; the home page is the core's
        app.add_api_route("/healthz", pages.health, methods=["GET"], operation_id="health",
                          response_model=pages.Health, tags=["system"])
    if core:
        app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _add_problem_schema(app)
    return app


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
