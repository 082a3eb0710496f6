"""The portal's HTML pages (マイナポータル) for residents, and the counter page where staff
register proxies (代理人).

Security decisions, in one place:

- Login is by the card only: the portal shows a one-use challenge; the card signs it with its
  user-authentication key after the 4-digit PIN (the embedded mode's virtual reader, or the CLI
  and a paste). A new login always starts a NEW session and ends the one the terminal's cookie
  still names (``previous_token``): on a shared terminal nothing of the previous person
  survives. The cookie (``SESSION_COOKIE``) is HttpOnly, SameSite=Lax, path /, Secure on https.
- Every POST carries a CSRF token, checked by the kernel's page route class before any handler
  runs: bound to the portal session (HMAC of the server key over the session's id) on
  logged-in pages, to the pre-login cookie on the login and reader forms.
- A page with no live session redirects (303) to the login page (saying the session ended when
  a cookie was there, and deleting it). ``next`` is honoured only as a same-site path.
- Pages are ``Cache-Control: no-store`` (a shared terminal's back button shows nothing of the
  previous person); errors are HTML pages with the problem code, never a stack trace; the PIN
  is never echoed back; no 個人番号 is ever shown.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request, Response
from fastapi.datastructures import FormData
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.datastructures import UploadFile

from mynumber.auth.interfaces import StaffPrincipal
from mynumber.errors import DomainError, InvalidInput, NotAuthenticated
from mynumber.kernel import csrf, forms
from mynumber.kernel.counter import CounterRoute, CounterStaff, counter_page
from mynumber.kernel.errors import error_box
from mynumber.kernel.routes import (
    FormDep,
    PagePolicy,
    SignInRequired,
    page_route,
    safe_next,
    secure_cookies,
)
from mynumber.portal.interfaces import (
    MAX_ATTACHMENT_BYTES,
    MAX_ATTACHMENTS,
    OPTIONAL_DOCUMENTS,
    REQUIRED_DOCUMENTS,
    SESSION_COOKIE,
    AttachmentNotFound,
    ChildAllowanceForm,
    DocumentUpload,
    GrantNotFound,
    GrantRecord,
    InformationSource,
    LoginFailed,
    Notice,
    NoticeNotFound,
    NoticeState,
    PortalService,
    PortalSession,
    ProxyKind,
    ProxyNotFound,
    RecordNotFound,
    SessionExpired,
)
from mynumber.portal.reader import PortalCardReader, ReaderPinLocked, ReaderWrongPin
from mynumber.portal.services import PortalServiceImpl
from mynumber.registry.interfaces import RegistryService
from mynumber.settings import Mode
from mynumber.web.i18n import translator
from mynumber.web.templating import language, render

HOME_PATH = "/portal"
LOGIN_PATH = "/portal/login"
READER_PATH = "/portal/reader"
LOGOUT_PATH = "/portal/logout"
CSRF_SCOPE = "portal"
PUBLIC_POSTS = frozenset({LOGIN_PATH, READER_PATH})
# Documents a resident attaches instead of letting the portal fetch the data (現況届): one
# file input each, named ``document_<kind>`` (the optional "other" takes several files).
DOCUMENTS = REQUIRED_DOCUMENTS
CHILD_ROWS = 4  # rows for children on a blank 現況届
HIDDEN_KEYS = ("individual_number", "my_number", "number")  # never shown, whatever a provider sends
SERIAL = re.compile(r"[A-Za-z0-9_.:-]{1,80}")


# --- plumbing ------------------------------------------------------------------------------


def _portal(request: Request) -> PortalService:
    portal: PortalService = request.app.state.container.portal
    return portal


PortalDep = Annotated[PortalService, Depends(_portal)]


def _resolve_session(request: Request, *, required: bool = True) -> PortalSession | None:
    """The live session of the cookie (looked up once per request)."""
    if hasattr(request.state, "portal_session"):
        cached: PortalSession | None = request.state.portal_session
        if cached is None and required:
            raise SignInRequired(expired=False)
        return cached
    token = request.cookies.get(SESSION_COOKIE, "")
    session: PortalSession | None = None
    if token:
        try:
            session = _portal(request).session(token)
        except NotAuthenticated:
            raise SignInRequired(expired=True) from None
    request.state.portal_session = session
    if session is None and required:
        raise SignInRequired(expired=False)
    return session


def current_session(request: Request) -> PortalSession:
    session = _resolve_session(request)
    assert session is not None
    return session


def optional_session(request: Request) -> PortalSession | None:
    return _resolve_session(request, required=False)


SessionDep = Annotated[PortalSession, Depends(current_session)]
OptionalSessionDep = Annotated[PortalSession | None, Depends(optional_session)]


def _session_binding(request: Request) -> str:
    """Logged-in pages' CSRF binding: the session's id (rotates at every login)."""
    return current_session(request).session_id


def _error(request: Request, exc: DomainError, code: str | None = None) -> dict[str, Any]:
    return error_box(request, exc, code, prefixes=("portal.", ""))


def _who(request: Request, session: PortalSession | None) -> dict[str, Any] | None:
    """The bar at the top: who is logged in, and for whom they act."""
    if session is None:
        return None
    portal = _portal(request)
    me = portal.account(session.account_id)
    who: dict[str, Any] = {"name": me.display_name, "proxy": None}
    if session.acting_for != session.account_id:
        principal = portal.account(session.acting_for)
        who["proxy"] = {"name": principal.display_name,
                        "kind": session.proxy_kind.value if session.proxy_kind else ""}
    return who


def _page(request: Request, template: str, *, status: int = 200,
          session: PortalSession | None = None, **context: Any) -> HTMLResponse:
    binding = session.session_id if session is not None else None
    return render(request, template, status_code=status, session=session,
                  who=_who(request, session),
                  embedded=request.app.state.settings.mode is Mode.EMBEDDED,
                  **csrf.form_fields(request, CSRF_SCOPE, binding), **context)


def _error_page(request: Request, exc: DomainError, status: int | None = None,
                code: str | None = None) -> HTMLResponse:
    session: PortalSession | None = getattr(request.state, "portal_session", None)
    status, error = status or exc.status, _error(request, exc, code)
    try:
        return _page(request, "portal/error.html", status=status, session=session, error=error)
    except DomainError:  # the bar could not be drawn (e.g. the session ended meanwhile)
        return _page(request, "portal/error.html", status=status, error=error)


PORTAL = PagePolicy(
    scope=CSRF_SCOPE, error_page=_error_page, session_binding=_session_binding,
    login_path=LOGIN_PATH, home_path=HOME_PATH, session_cookie=SESSION_COOKIE,
    public_posts=PUBLIC_POSTS, remember_next=True, expired_errors=(SessionExpired,),
)
router = APIRouter(include_in_schema=False, route_class=page_route("PortalRoute", PORTAL))
counter = APIRouter(include_in_schema=False, route_class=CounterRoute)


def _value(form: FormData | Mapping[str, Any], name: str, limit: int = 200) -> str:
    return forms.value(form, name, limit)


def _positive_int(text: str, error: Callable[[str], DomainError]) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > 18 or int(text) < 1:
        raise error("no such record")
    return int(text)


def _set_session_cookie(request: Request, response: Response, session: PortalSession) -> None:
    response.set_cookie(SESSION_COOKIE, session.token, httponly=True, samesite="lax", path="/",
                        secure=secure_cookies(request))


def _logged_in(request: Request, session: PortalSession, next_path: str) -> Response:
    response = RedirectResponse(next_path or HOME_PATH, status_code=303)
    _set_session_cookie(request, response, session)
    return response


def _shown(data: Any) -> Any:
    """Provider data as shown to the resident: never a number-like identifier."""
    if isinstance(data, Mapping):
        return {k: _shown(v) for k, v in data.items() if str(k) not in HIDDEN_KEYS}
    if isinstance(data, list | tuple):
        return [_shown(v) for v in data]
    return data


# --- home, login, logout -------------------------------------------------------------------


@router.get(HOME_PATH, response_class=HTMLResponse)
def home(request: Request, portal: PortalDep, session: OptionalSessionDep,
         done: str = "") -> HTMLResponse:
    if session is None:
        return _page(request, "portal/landing.html")
    notices = portal.notices(session)
    unread = sum(1 for n in notices if n.state is NoticeState.UNREAD)
    principals = portal.principals(session)
    subject, _ = portal.acting_subject(session)  # re-checked, never the session's word alone
    grants = request.app.state.container.oidc.grants(subject)
    return _page(request, "portal/home.html", session=session, unread=unread,
                 principals=principals, services=_linked_services(portal, grants, request),
                 done=done if done in ("grant_revoked", "acting_for", "self") else "")


def _linked_services(portal: PortalService, grants: Sequence[GrantRecord],
                     request: Request) -> list[dict[str, Any]]:
    """連携中のサービス: one row per service (a client consented to more than once is one
    service), its items by their names, when it was last consented to."""
    lang = language(request)
    labels = {s.scope: (s.label_en if lang == "en" else s.label_ja) for s in portal.sources()}
    rows: dict[str, dict[str, Any]] = {}
    for g in grants:
        if g.revoked_at is not None:
            continue
        row = rows.setdefault(g.client_id, {"client_name": g.client_name, "scopes": [],
                                            "granted_at": g.granted_at, "grant_id": g.grant_id})
        row["granted_at"] = max(row["granted_at"], g.granted_at)
        for scope in g.scopes:
            label = labels.get(scope)
            if label and label not in row["scopes"]:
                row["scopes"].append(label)
    return list(rows.values())


def _login_page(request: Request, portal: PortalService, next_path: str, *,
                status: int = 200, error: dict[str, Any] | None = None,
                expired: bool = False) -> HTMLResponse:
    challenge = portal.begin_login()
    return _page(request, "portal/login.html", status=status, challenge=challenge,
                 challenge_hex=challenge.challenge.hex(), next_path=next_path, error=error,
                 expired=expired)


@router.get(LOGIN_PATH, response_class=HTMLResponse)
def login_form(request: Request, portal: PortalDep, expired: str = "",
               next: str = "") -> HTMLResponse:
    return _login_page(request, portal, safe_next(next), expired=expired == "1")


@router.post(LOGIN_PATH, response_class=HTMLResponse)
def login(request: Request, portal: PortalDep, form: FormDep) -> Response:
    next_path = safe_next(form.get("next"))
    try:
        challenge_id = _value(form, "challenge_id", 100)
        signature_hex = re.sub(r"\s+", "", _value(form, "signature", 4096))
        certificate = _value(form, "certificate", 10000)
        if not challenge_id:
            raise LoginFailed("the challenge is missing; start again", field="challenge_id")
        try:
            signature = bytes.fromhex(signature_hex)
        except ValueError:
            raise InvalidInput("the signature must be hexadecimal", field="signature") from None
        if not signature:
            raise InvalidInput("paste the signature", field="signature")
        if "BEGIN CERTIFICATE" not in certificate:
            raise InvalidInput("paste the authentication certificate (PEM)",
                               field="certificate")
        session = portal.complete_login(challenge_id, signature, certificate,
                                        previous_token=request.cookies.get(SESSION_COOKIE))
    except DomainError as exc:
        return _login_page(request, portal, next_path, status=exc.status,
                           error=_error(request, exc))
    return _logged_in(request, session, next_path)


def _reader_page(request: Request, portal: PortalService, reader: PortalCardReader,
                 next_path: str, *, challenge_id: str = "", challenge_hex: str = "",
                 card_id: str = "", status: int = 200,
                 error: dict[str, Any] | None = None) -> HTMLResponse:
    if not challenge_id or not _hex_challenge(challenge_hex):
        challenge = portal.begin_login()
        challenge_id, challenge_hex = challenge.challenge_id, challenge.challenge.hex()
    return _page(request, "portal/reader.html", status=status, cards=reader.cards(),
                 card_id=card_id, challenge_id=challenge_id, challenge_hex=challenge_hex,
                 next_path=next_path, error=error)


def _hex_challenge(text: str) -> bytes | None:
    if not text or len(text) > 128:
        return None
    try:
        return bytes.fromhex(text)
    except ValueError:
        return None


@router.get(READER_PATH, response_class=HTMLResponse)
def reader_form(request: Request, portal: PortalDep, challenge_id: str = "",
                challenge: str = "", next: str = "") -> HTMLResponse:
    reader = PortalCardReader(request.app.state.container)
    reader.check_available()  # outside the embedded mode: before any challenge is made
    return _reader_page(request, portal, reader, safe_next(next),
                        challenge_id=challenge_id[:100], challenge_hex=challenge)


@router.post(READER_PATH, response_class=HTMLResponse)
def reader_sign(request: Request, portal: PortalDep, form: FormDep) -> Response:
    reader = PortalCardReader(request.app.state.container)
    reader.check_available()
    next_path = safe_next(form.get("next"))
    card_id = _value(form, "card_id", 32)
    challenge_id = _value(form, "challenge_id", 100)
    challenge_hex = _value(form, "challenge", 128)
    pin = form.get("pin")
    try:
        challenge = _hex_challenge(challenge_hex)
        if not challenge_id or challenge is None:
            raise LoginFailed("the challenge is missing; start again", field="challenge_id")
        if not card_id:
            raise InvalidInput("choose your card", field="card_id")
        if not isinstance(pin, str) or not pin:
            raise InvalidInput("enter the PIN", field="pin")
        signature, certificate = reader.sign_challenge(card_id, pin, challenge)
        session = portal.complete_login(challenge_id, signature, certificate,
                                        previous_token=request.cookies.get(SESSION_COOKIE))
    except (ReaderWrongPin, ReaderPinLocked, InvalidInput) as exc:
        error = _error(request, exc)
        if isinstance(exc, ReaderWrongPin):
            error["remaining"] = exc.remaining
        # The challenge was not used: the same one can be signed again.
        return _reader_page(request, portal, reader, next_path, challenge_id=challenge_id,
                            challenge_hex=challenge_hex, card_id=card_id, status=exc.status,
                            error=error)
    except DomainError as exc:  # the challenge is spent or the card did not verify
        return _reader_page(request, portal, reader, next_path, card_id=card_id,
                            status=exc.status, error=_error(request, exc))
    return _logged_in(request, session, next_path)


@router.get(LOGOUT_PATH)
@router.get("/portal/proxies/act-for")
def back_home(request: Request) -> Response:
    """A GET on a POST-only page (e.g. the language link on a POST's answer): go home; a GET
    never logs out or switches anything."""
    return RedirectResponse(HOME_PATH + _lang_query(request), status_code=303)


@router.get("/portal/history/{serial}/verify")
def back_to_history(request: Request, serial: str) -> Response:
    return RedirectResponse("/portal/history" + _lang_query(request), status_code=303)


def unverifiable_text(lang: str) -> str:
    """What やりとり履歴 says of a record the signed log does not vouch for (the page's
    wording, for the JSON API as well)."""
    t = translator(lang)
    return f"{t('portal.history.unverifiable')}: {t('portal.history.unverifiable.detail')}"


def _lang_query(request: Request) -> str:
    lang = request.query_params.get("lang")
    return f"?lang={lang}" if lang in ("ja", "en") else ""


@router.post(LOGOUT_PATH, response_class=HTMLResponse)
def logout(request: Request, portal: PortalDep, session: SessionDep) -> Response:
    portal.logout(session.token if session.token else request.cookies.get(SESSION_COOKIE, ""))
    request.state.portal_session = None
    response = _page(request, "portal/logged_out.html")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# --- わたしの情報, やりとり履歴, 操作履歴 -----------------------------------------------------


def _agency_names(request: Request) -> Callable[[str], str]:
    """An agency's name from the network's directory (its id if unknown)."""
    network = request.app.state.container.network
    names: dict[str, str] = {}

    def name(agency_id: str) -> str:
        if agency_id not in names:
            try:
                names[agency_id] = str(network.agency(agency_id).name)
            except DomainError:
                names[agency_id] = agency_id
        return names[agency_id]

    return name



def _info_page(request: Request, session: PortalSession, sources: Sequence[InformationSource], *,
               status: int = 200, result: Any = None, **context: Any) -> HTMLResponse:
    return _page(request, "portal/info.html", status=status, session=session, sources=sources,
                 result=result, agency_name=_agency_names(request), **context)


@router.get("/portal/info", response_class=HTMLResponse)
def information(request: Request, portal: PortalDep, session: SessionDep) -> HTMLResponse:
    return _info_page(request, session, portal.sources())


@router.post("/portal/info", response_class=HTMLResponse)
def fetch_information(request: Request, portal: PortalDep, session: SessionDep,
                      form: FormDep) -> HTMLResponse:
    scope = _value(form, "scope", 60)
    sources = portal.sources()
    try:
        result = portal.my_information(session, scope)
    except DomainError as exc:
        if isinstance(exc, NotAuthenticated):
            raise
        return _info_page(request, session, sources, status=exc.status,
                          error=_error(request, exc))
    source = next((s for s in sources if s.scope == result.scope), None)
    return _info_page(request, session, sources, result=result, source=source,
                      data=_shown(result.data) if result.data is not None else None)


@router.get("/portal/history", response_class=HTMLResponse)
def history(request: Request, portal: PortalDep, session: SessionDep) -> HTMLResponse:
    return _page(request, "portal/history.html", session=session,
                 entries=portal.history(session), sections=_history_sections(request, session))


def _history_sections(request: Request, session: PortalSession) -> list[Mapping[str, Any]]:
    """Other contexts' records of the person, shown under the exchanges: the web assembler
    gives the container ``portal_history_sections`` (callables taking the session's token and
    the page's language, answering a ready-to-show section or None); the portal imports none
    of them. A section that cannot be drawn is left out, never the page."""
    hooks = getattr(request.app.state.container, "portal_history_sections", ())
    lang = language(request)
    sections: list[Mapping[str, Any]] = []
    for hook in hooks:
        try:
            section = hook(session.token, lang)
        except DomainError:
            continue
        if section:
            sections.append(section)
    return sections


@router.post("/portal/history/{serial}/verify", response_class=HTMLResponse)
def verify(request: Request, portal: PortalDep, session: SessionDep,
           serial: str) -> HTMLResponse:
    if not SERIAL.fullmatch(serial):
        raise RecordNotFound("no such record in your history")
    verification = portal.verify_record(session, serial)
    return _page(request, "portal/verify.html", session=session, v=verification)


@router.get("/portal/activities", response_class=HTMLResponse)
def activities(request: Request, portal: PortalDep, session: SessionDep) -> HTMLResponse:
    return _page(request, "portal/activities.html", session=session,
                 activities=portal.activities(session))


# --- お知らせ and the 現況届 -------------------------------------------------------------


@router.get("/portal/notices", response_class=HTMLResponse)
def notices(request: Request, portal: PortalDep, session: SessionDep) -> HTMLResponse:
    return _page(request, "portal/notices.html", session=session,
                 notices=portal.notices(session))


def _find_notice(portal: PortalService, session: PortalSession, number: int) -> Notice:
    """The notice, looked up without changing it (a GET never marks anything read)."""
    found = next((n for n in portal.notices(session) if n.notice_id == number), None)
    if found is None:
        raise NoticeNotFound("no such notice", field="notice_id")
    return found


@router.get("/portal/notices/{notice_id}", response_class=HTMLResponse)
def notice(request: Request, portal: PortalDep, session: SessionDep,
           notice_id: str) -> HTMLResponse:
    number = _positive_int(notice_id, NoticeNotFound)
    return _page(request, "portal/notice.html", session=session,
                 notice=_find_notice(portal, session, number))


@router.get("/portal/notices/{notice_id}/read")
def notice_read_form(request: Request, notice_id: str) -> Response:
    number = _positive_int(notice_id, NoticeNotFound)
    return RedirectResponse(f"/portal/notices/{number}" + _lang_query(request), status_code=303)


@router.post("/portal/notices/{notice_id}/read")
def mark_notice_read(request: Request, portal: PortalDep, session: SessionDep,
                     notice_id: str) -> Response:
    """既読にする: only a POST (with the session's CSRF token) marks a notice read."""
    number = _positive_int(notice_id, NoticeNotFound)
    portal.read_notice(session, number)
    return RedirectResponse(f"/portal/notices/{number}", status_code=303)


CHILD_ALLOWANCE_PATH = "/portal/applications/child-allowance"
CHILD_ALLOWANCE_START = CHILD_ALLOWANCE_PATH + "/start"


def _notice_id(value: object) -> int:
    return _positive_int(value if isinstance(value, str) else "", NoticeNotFound)


def _with_room(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """The children table's rows, padded to CHILD_ROWS and always with room for one more."""
    filled = sum(1 for r in rows if r.get("name") or r.get("birth_date"))
    return rows + [{"name": "", "birth_date": ""}
                   for _ in range(max(CHILD_ROWS, filled + 1) - len(rows))]


def _form_values(form: ChildAllowanceForm) -> dict[str, Any]:
    children = _with_room([dict(c) for c in form.children])
    return {
        "applicant_name": form.applicant_name, "address": form.address,
        "taxable_income": "" if form.taxable_income is None else str(form.taxable_income),
        "insurance_status": form.insurance_status or "", "children": children,
        "prefilled_serials": " ".join(form.prefilled_serials),
    }


@router.get(CHILD_ALLOWANCE_PATH, response_class=HTMLResponse)
def child_allowance(request: Request, portal: PortalDep, session: SessionDep,
                    notice_id: str = "") -> HTMLResponse:
    """The choice (with or without the number). A GET changes nothing and fetches nothing:
    whatever its query says, it shows the choice; the choice is POSTed."""
    number = _notice_id(notice_id)
    return _page(request, "portal/child_allowance_choice.html", session=session,
                 notice=_find_notice(portal, session, number))


@router.get(CHILD_ALLOWANCE_START)
def back_to_notices(request: Request) -> Response:
    """A GET on the POST-only start (e.g. the language link): back to the notices."""
    return RedirectResponse("/portal/notices" + _lang_query(request), status_code=303)


@router.post(CHILD_ALLOWANCE_START, response_class=HTMLResponse)
def start_child_allowance(request: Request, portal: PortalDep, session: SessionDep,
                          form: FormDep) -> HTMLResponse:
    """The chosen way: with the number the portal fetches the data through the network (a
    POST, with the session's CSRF token); opening the 現況届 marks its notice read."""
    number = _notice_id(form.get("notice_id"))
    choice = _value(form, "use_number", 3)
    if choice not in ("yes", "no"):
        raise InvalidInput("choose whether the portal may use the number", field="use_number")
    uses = choice == "yes"
    portal.read_notice(session, number)
    filled = portal.child_allowance_form(session, number, uses)
    return _form_page(request, session, number, uses, _form_values(filled))


def _form_page(request: Request, session: PortalSession, notice_id: int, uses: bool,
               values: dict[str, Any], *, status: int = 200,
               error: dict[str, Any] | None = None) -> HTMLResponse:
    return _page(request, "portal/child_allowance_form.html", status=status, session=session,
                 notice_id=notice_id, use_number=uses, values=values, documents=DOCUMENTS,
                 optional_documents=OPTIONAL_DOCUMENTS, error=error,
                 max_files=MAX_ATTACHMENTS, max_megabytes=MAX_ATTACHMENT_BYTES // (1024 * 1024),
                 accept=".pdf,.jpg,.jpeg,.png,application/pdf,image/jpeg,image/png")


def _child_rows(form: FormData) -> list[dict[str, str]]:
    """The children table as typed (kept on the page after any error), with room for one
    more child."""
    rows: list[dict[str, str]] = []
    for i in range(20):
        if f"child_name_{i}" not in form:
            break
        rows.append({"name": _value(form, f"child_name_{i}", 80),
                     "birth_date": _value(form, f"child_birth_date_{i}", 10)})
    return _with_room(rows)


def _yen(text: str) -> int | None:
    """An amount of yen as people type it: full-width digits, grouping commas, 円 and 万 (万円)
    accepted (３８５万円 -> 3850000); None for nothing typed. Anything else is refused."""
    cleaned = unicodedata.normalize("NFKC", text).strip()
    for mark in (",", " ", "円"):
        cleaned = cleaned.replace(mark, "")
    if not cleaned:
        return None
    factor = 1
    if cleaned.endswith("万"):
        cleaned, factor = cleaned[:-1], 10_000
    if not re.fullmatch(r"[0-9]+(\.[0-9]{1,4})?", cleaned) or (factor == 1 and "." in cleaned):
        raise InvalidInput("the taxable income must be an amount of yen",
                           field="taxable_income")
    whole, _, part = cleaned.partition(".")
    return int(whole) * factor + (int(part.ljust(4, "0")) if part else 0)


def _submitted_form(form: FormData) -> tuple[ChildAllowanceForm, dict[str, Any]]:
    rows = _child_rows(form)
    children: list[dict[str, str]] = []
    for i, row in enumerate(rows):
        name, birth = row["name"], row["birth_date"]
        if name or birth:
            if not name:
                raise InvalidInput("enter the child's name", field=f"child_name_{i}")
            try:
                dt.date.fromisoformat(birth)
            except ValueError:
                raise InvalidInput("enter the child's date of birth (YYYY-MM-DD)",
                                   field=f"child_birth_date_{i}") from None
            children.append({"name": name, "birth_date": birth})
    income_text = _value(form, "taxable_income", 12)
    values: dict[str, Any] = {
        "applicant_name": _value(form, "applicant_name", 80),
        "address": _value(form, "address", 200), "taxable_income": income_text,
        "insurance_status": _value(form, "insurance_status", 80), "children": rows,
        "prefilled_serials": _value(form, "prefilled_serials", 2000),
    }
    income = _yen(income_text)
    if not values["applicant_name"]:
        raise InvalidInput("enter the applicant's name", field="applicant_name")
    if not values["address"]:
        raise InvalidInput("enter the address", field="address")
    parsed = ChildAllowanceForm(
        applicant_name=values["applicant_name"], address=values["address"],
        taxable_income=income,
        insurance_status=values["insurance_status"] or None, children=tuple(children),
        prefilled_serials=tuple(s for s in values["prefilled_serials"].split() if SERIAL.
                                fullmatch(s)),
    )
    return parsed, values


def _uploads(form: FormData) -> list[DocumentUpload]:
    """The files chosen in the form, in the order of its inputs (an input left empty sends a
    part with no name and no bytes: skipped). At most one byte over the limit is read: the
    service tells "too large" from that."""
    uploads: list[DocumentUpload] = []
    for kind in DOCUMENTS + OPTIONAL_DOCUMENTS:
        field = f"document_{kind}"
        for item in form.getlist(field):
            if not isinstance(item, UploadFile):
                continue
            item.file.seek(0)
            content = item.file.read(MAX_ATTACHMENT_BYTES + 1)
            if not item.filename and not content:
                continue
            uploads.append(DocumentUpload(field=field, kind=kind,
                                          filename=(item.filename or "")[:400], content=content))
    return uploads


@router.post(CHILD_ALLOWANCE_PATH, response_class=HTMLResponse)
def submit_child_allowance(request: Request, portal: PortalDep, session: SessionDep,
                           form: FormDep) -> HTMLResponse:
    number = _notice_id(form.get("notice_id"))
    uses = _value(form, "use_number", 3) == "yes"
    values: dict[str, Any] = forms.kept_values(form)
    try:
        parsed, values = _submitted_form(form)
        # With the number nothing is attached: files sent anyway are not even read.
        record = portal.submit_child_allowance(session, number, uses, parsed,
                                               [] if uses else _uploads(form))
    except DomainError as exc:
        if isinstance(exc, NotAuthenticated):
            raise
        values["children"] = _child_rows(form)  # the table as typed, whatever failed
        # A browser cannot be made to keep chosen files: the page says to choose them again.
        values["files_dropped"] = not uses and bool(_chosen(form))
        return _form_page(request, session, number, uses, values, status=exc.status,
                          error=_error(request, exc))
    return _page(request, "portal/child_allowance_done.html", session=session,
                 application=record)


def _chosen(form: FormData) -> list[str]:
    return [f.filename for kind in DOCUMENTS + OPTIONAL_DOCUMENTS
            for f in form.getlist(f"document_{kind}") if isinstance(f, UploadFile) and f.filename]


def file_size(size: int) -> str:
    """A file's size as people read it (1,234 バイト is never needed: KB and MB)."""
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MB"
    return f"{max(1, round(size / 1024)):,} KB"


@router.get("/portal/applications", response_class=HTMLResponse)
def applications(request: Request, portal: PortalDep, session: SessionDep) -> HTMLResponse:
    """申請状況: the person's applications (or, acting as a proxy, the principal's), where each
    went and where it stands, with the names and sizes of the files attached."""
    return _page(request, "portal/applications.html", session=session,
                 applications=portal.applications(session), agency_name=_agency_names(request),
                 file_size=file_size)


# --- proxies and grants --------------------------------------------------------------------


@router.get("/portal/proxies", response_class=HTMLResponse)
def proxies(request: Request, portal: PortalDep, session: SessionDep) -> HTMLResponse:
    return _page(request, "portal/proxies.html", session=session,
                 principals=portal.principals(session))


@router.post("/portal/proxies/act-for")
def act_for(request: Request, portal: PortalDep, session: SessionDep,
            form: FormDep) -> Response:
    text = _value(form, "principal_account_id", 20)
    principal = None if not text else _positive_int(text, ProxyNotFound)
    changed = portal.act_for(session.token or request.cookies.get(SESSION_COOKIE, ""), principal)
    response = RedirectResponse(
        f"{HOME_PATH}?done={'acting_for' if principal else 'self'}", status_code=303)
    if changed.token and changed.token != request.cookies.get(SESSION_COOKIE):
        _set_session_cookie(request, response, changed)
    return response


@router.post("/portal/grants/{grant_id}/revoke")
def revoke_grant(request: Request, portal: PortalDep, session: SessionDep,
                 grant_id: str) -> Response:
    number = _positive_int(grant_id, GrantNotFound)
    subject, _ = portal.acting_subject(session)  # the proxy relation is re-checked now
    oidc = request.app.state.container.oidc
    revoked = oidc.revoke_grant(subject, number, session.account_id)
    # The service is listed once: stopping it stops every consent given to it.
    for other in oidc.grants(subject):
        if other.client_id == revoked.client_id and other.revoked_at is None:
            oidc.revoke_grant(subject, other.grant_id, session.account_id)
    return RedirectResponse(f"{HOME_PATH}?done=grant_revoked", status_code=303)


# --- the counter: registering proxies (staff) ----------------------------------------------

COUNTER_PROXIES = "/counter/portal/proxies"
PROXY_KINDS = tuple(k.value for k in ProxyKind)


def _resident_id(form: FormData, name: str) -> int:
    return _positive_int(_value(form, name, 20), lambda _: InvalidInput(
        f"{name} must be a resident id (a number)", field=name))


def _proxies_page(request: Request, staff: StaffPrincipal, *, status: int = 200,
                  values: dict[str, Any] | None = None, done: Any = None,
                  **context: Any) -> HTMLResponse:
    return counter_page(request, "portal/counter_proxies.html", status=status, staff=staff,
                        values=values or {}, kinds=PROXY_KINDS, done=done, **context)


@counter.get(COUNTER_PROXIES, response_class=HTMLResponse)
def counter_proxies(request: Request, staff: CounterStaff) -> HTMLResponse:
    return _proxies_page(request, staff)


@counter.post(COUNTER_PROXIES, response_class=HTMLResponse)
def counter_register_proxy(request: Request, staff: CounterStaff, form: FormDep
                           ) -> HTMLResponse:
    portal: PortalServiceImpl = request.app.state.container.portal
    registry: RegistryService = request.app.state.container.registry
    try:
        principal = _resident_id(form, "principal_resident_id")
        proxy = _resident_id(form, "proxy_resident_id")
        try:
            kind = ProxyKind(_value(form, "kind", 40))
        except ValueError:
            raise InvalidInput("choose the kind of proxy", field="kind") from None
        valid_until = forms.date(form, "valid_until") if _value(form, "valid_until") else None
        # The principal is read through the registry first: it enforces the staff member's
        # jurisdiction and role (403 outside their municipality) and audits the read.
        resident = registry.get_resident(staff, principal, "代理人登録")
        record = portal.register_proxy(staff.actor, principal, proxy, kind, valid_until,
                                       principal_name=resident.name)
    except DomainError as exc:
        return _proxies_page(request, staff, status=exc.status,
                             values=forms.kept_values(form, exc.field),
                             error=error_box(request, exc))
    return _proxies_page(request, staff, done=record, done_action="registered")


@counter.get(COUNTER_PROXIES + "/revoke")
def counter_revoke_form() -> Response:
    return RedirectResponse(COUNTER_PROXIES, status_code=303)


@counter.post(COUNTER_PROXIES + "/revoke", response_class=HTMLResponse)
def counter_revoke_proxy(request: Request, staff: CounterStaff, form: FormDep
                         ) -> HTMLResponse:
    portal: PortalServiceImpl = request.app.state.container.portal
    try:
        proxy_id = _positive_int(_value(form, "proxy_id", 20), ProxyNotFound)
        portal.check_staff_jurisdiction(staff, proxy_id)
        record = portal.revoke_proxy(staff.actor, proxy_id)
    except DomainError as exc:
        return _proxies_page(request, staff, status=exc.status,
                             revoke_error=error_box(request, exc))
    return _proxies_page(request, staff, done=record, done_action="revoked")


# --- the counter: applications received through the portal (staff) ----------------------------

COUNTER_APPLICATIONS = "/counter/applications"


@counter.get(COUNTER_APPLICATIONS, response_class=HTMLResponse)
def counter_applications(request: Request, staff: CounterStaff) -> HTMLResponse:
    """受付した申請: what residents sent the staff member's municipality through the portal,
    with their attached documents to download. Other municipalities' applications are not
    listed (the service selects by the municipality's own agency)."""
    portal: PortalService = request.app.state.container.portal
    return counter_page(request, "portal/counter_applications.html", staff=staff,
                        applications=portal.received_applications(staff),
                        agency_name=_agency_names(request), file_size=file_size)


def _content_disposition(filename: str) -> str:
    """``attachment`` with the name twice: ASCII for old clients, UTF-8 (RFC 6266/5987)."""
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\%;' else "_"
                       for c in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


@counter.get(COUNTER_APPLICATIONS + "/attachments/{attachment_id}")
def counter_attachment(request: Request, staff: CounterStaff, attachment_id: str) -> Response:
    """One attached document, as a download: never shown inline, its type the one read from
    its content (PDF, JPEG, PNG) and ``nosniff``; staff of another municipality get 404."""
    portal: PortalService = request.app.state.container.portal
    number = _positive_int(attachment_id, AttachmentNotFound)
    attachment, content = portal.attachment_content(staff, number)
    return Response(content, media_type=attachment.content_type, headers={
        "Content-Disposition": _content_disposition(attachment.filename),
        "X-Content-Type-Options": "nosniff",
    })


router.include_router(counter)
