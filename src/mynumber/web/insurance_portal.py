"""The resident's マイナ保険証 page in the portal (``/portal/insurance``), and the insurance
section of the portal's やりとり履歴.

- The page needs a portal session of the person themselves (as ``/portal/accounts``): a proxy
  sees a sentence saying so, nothing of the principal. The person is named by JPKI through the
  session (``web.insurance_links.session_resident``).
- It shows which insurer the card points to now (or that none does), whether the card is
  registered for insurance use, the 資格情報のお知らせ / 資格確認書 issued, and the access
  records (who confirmed the eligibility, what was viewed, what was refused, the consents).
- 初回登録 is bound to a fresh card authentication for the purpose ``insurance`` exactly as
  the 公金受取口座 pages bind theirs to ``accounts``: the form carries a one-use portal challenge
  of that purpose, the card signs it after its PIN (the embedded mode's virtual reader, or a
  signature pasted from ``mynumber card auth``), the portal verifies it (spent once) and the
  holder must be the session's person (``web.insurance_links.activate_with_card``).
- やりとり履歴: the portal knows nothing of insurance. The web assembler gives the container a
  list of history sections (``container.portal_history_sections``); each is a callable taking
  the session's token and the page's language and answering a ready-to-show section
  (:func:`history_section`) or None. This module's adds the same access records there.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from mynumber.errors import DomainError
from mynumber.insurance.interfaces import AccessEntry
from mynumber.kernel.localtime import local_time
from mynumber.kernel.routes import FormDep, page_route
from mynumber.portal import views as portal_views
from mynumber.portal.interfaces import PortalSession
from mynumber.portal.reader import ReaderPinLocked, ReaderWrongPin
from mynumber.web.accounts_portal import portal_error_page
from mynumber.web.card_forms import card_context, card_error, signed_form
from mynumber.web.i18n import translator
from mynumber.web.insurance_links import (
    INSURANCE_PURPOSE,
    CardAuthenticationRequired,
    activate_with_card,
    session_resident,
)

PATH = "/portal/insurance"
ACTIVATE_PATH = "/portal/insurance/activate"
PREFIXES = ("insurance.", "portal.", "")
DONE = ("activated",)
#: How many access records the page and the history section show (newest first).
ACCESS_LIMIT = 200

POLICY = dataclasses.replace(portal_views.PORTAL, error_page=portal_error_page(PREFIXES))
router = APIRouter(include_in_schema=False, route_class=page_route("InsurancePortalRoute",
                                                                   POLICY))


def _error(request: Request, exc: DomainError) -> dict[str, Any]:
    box = card_error(request, exc, PREFIXES)
    reason = box.get("reason") or ""
    if reason and box["code"] == "insurance_card_refused":
        box["reason_key"] = f"insurance.refusal.card.{reason}"
        box["reason_fallback"] = "insurance.refusal.card.other"
    return box


def _page(request: Request, session: PortalSession, *, status: int = 200,
          error: dict[str, Any] | None = None, done: str = "") -> HTMLResponse:
    container = request.app.state.container
    own = session.acting_for == session.account_id
    context: dict[str, Any] = {"own": own}
    if own:
        resident_id = session_resident(container, session)
        status_ = container.eligibility.card_status(resident_id)
        try:
            entries: list[AccessEntry] | None = container.eligibility.access_entries(
                resident_id, limit=ACCESS_LIMIT)
        except DomainError:  # the records cannot be read now: the rest of the page can
            entries = None
        context.update(card=status_, entries=entries)
        if not status_.activated:
            context.update(card_context(request, INSURANCE_PURPOSE))
    return portal_views._page(request, "insurance/portal.html", status=status, session=session,
                              error=error, done=done if done in DONE else "", **context)


@router.get(PATH, response_class=HTMLResponse)
def insurance_page(request: Request, done: str = "") -> HTMLResponse:
    session = portal_views.current_session(request)
    return _page(request, session, done=done[:20])


@router.get(ACTIVATE_PATH)
def back_to_page() -> Response:
    """The form's address asked for by GET (a reload, the language switch): the page."""
    return RedirectResponse(PATH, status_code=303)


@router.post(ACTIVATE_PATH, response_class=HTMLResponse)
def activate(request: Request, form: FormDep) -> Response:
    """初回登録 with a fresh card authentication of the session's own person."""
    session = portal_views.current_session(request)
    container = request.app.state.container
    try:
        challenge_id, signature, certificate = signed_form(
            request, form, missing=CardAuthenticationRequired)
        activate_with_card(container, session, challenge_id, signature, certificate)
    except (ReaderWrongPin, ReaderPinLocked, DomainError) as exc:
        return _page(request, session, status=exc.status, error=_error(request, exc))
    return RedirectResponse(f"{PATH}?done=activated", status_code=303)


# --- the やりとり履歴 section ---------------------------------------------------------------------


def _words(entry: AccessEntry, t: Any, lang: str) -> list[str]:
    parts = []
    if entry.item is not None:
        parts.append(t(f"insurance.consent_item.{entry.item.value}"))
    if entry.method is not None:
        parts.append(t(f"insurance.method.{entry.method.value}"))
    if entry.validity is not None:
        separator = ": " if lang == "en" else "："
        parts.append(t("insurance.clinic.result.validity") + separator
                     + t(f"insurance.validity.{entry.validity.value}"))
    return parts


def history_section(container: Any, token: str, lang: str) -> dict[str, Any] | None:
    """The insurance access records of the session's own person, as the portal's やりとり履歴
    shows a section: every string in the page's language, times in Japan time. None for a
    proxy's session or one not opened with a card (the section is left out); a section with
    ``unavailable`` when the records cannot be read now."""
    t = translator(lang)
    session = container.portal.session(token)
    if session.acting_for != session.account_id:
        return None
    try:
        resident_id = session_resident(container, session)
    except DomainError:
        return None
    section: dict[str, Any] = {
        "id": "insurance-history", "title": t("insurance.history.title"),
        "lead": t("insurance.portal.access.lead"), "empty": t("insurance.portal.access.none"),
        "columns": [t("insurance.portal.access.at"), t("insurance.portal.access.institution"),
                    t("insurance.portal.access.action"), t("insurance.portal.access.detail")],
        "rows": [], "link": {"href": PATH, "text": t("insurance.history.more")},
        "unavailable": "",
    }
    try:
        entries = container.eligibility.access_entries(resident_id, limit=ACCESS_LIMIT)
    except DomainError:
        section["unavailable"] = t("insurance.portal.access.unavailable")
        return section
    separator = ", " if lang == "en" else "、"
    for e in entries:
        refused = e.action.value in ("view_refused", "consent_refused")
        section["rows"].append({
            "cells": [local_time(e.at, lang), e.institution_name,
                      t(f"insurance.action.{e.action.value}"),
                      separator.join(_words(e, t, lang))],
            "refused": refused})
    return section


def install_history_section(container: Any) -> None:
    """Give the portal's やりとり履歴 this section (the web assembler calls it once per
    container; calling it again changes nothing)."""
    sections: list[Any] = list(getattr(container, "portal_history_sections", ()))
    if not any(getattr(s, "__name__", "") == "insurance_history" for s in sections):
        def insurance_history(token: str, lang: str) -> dict[str, Any] | None:
            return history_section(container, token, lang)
        sections.append(insurance_history)
    container.portal_history_sections = sections

