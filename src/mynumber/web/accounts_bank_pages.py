"""A bank's counter pages for 公金受取口座 (``/bank``): the bank route for a resident at the
counter, on a terminal the bank's staff share.

- Bank staff sign in with the bank client's id and secret (``/bank/login``); the session is
  kept in the database (``bank_sessions``, 15 minutes idle, 8 hours at most), the cookie
  ``mn_bank`` is HttpOnly and SameSite=Strict, logout deletes it. Every form carries a CSRF
  token bound to that session (kernel.csrf through the page route class); every answer has the
  site's security headers and ``Cache-Control: no-store``.
- Signing in ends the terminal's previous bank session first (the ``mn_bank`` cookie the
  browser still holds), as the portal's login does; refused sign-ins are counted per client
  in the database and throttle it (accounts/bank_clients.py).
- **Each change is bound to a new card authentication** (the shared-terminal incident of
  2023): every form carries a fresh one-use challenge (the portal's ``begin_login``, for the
  purpose ``bank:<client id>`` only: it opens no portal session) that the
  resident signs with the virtual card reader (card + PIN) or pastes from ``mynumber card
  auth``; it is verified by the portal's login verification (spent once) and the person is
  whoever the card names (JPKI). Nothing of a person is kept in the bank's session: after a
  change the done page shows only what was done, and the next person's form is empty with a
  new challenge. A replayed challenge is refused (and ``used_authentications`` is the
  service's backstop).
- The account must be at the client's own 金融機関コード; the holder-name check runs in the
  service (a relative's account is refused, shown in the catalogue's words without the
  registry's reading).
- 預貯金口座付番 at this bank (``/bank/deposit-numbering``): the card part only; the person
  whose card signs asks that their accounts at this bank (the client's code) be linked to
  their 個人番号, once per bank (a second request is refused, in the catalogue's words). The
  number reaches the bank sealed, through the API (web/accounts_bank.py).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from mynumber.accounts.interfaces import (
    BankAccount,
    BankClient,
    BankCodeNotOwn,
    BankLoginFailed,
    BankSessionExpired,
    HolderNameMismatch,
    Route,
)
from mynumber.errors import DomainError
from mynumber.kernel import csrf, forms
from mynumber.kernel.errors import error_box
from mynumber.kernel.routes import (
    FormDep,
    PagePolicy,
    SignInRequired,
    page_route,
    secure_cookies,
)
from mynumber.portal.reader import ReaderPinLocked, ReaderWrongPin
from mynumber.web.accounts_bank import bank_purpose, delete_at_own_bank, request_numbering
from mynumber.web.accounts_portal import FORM_FIELDS, card_context, card_error, signed_card
from mynumber.web.i18n import translator
from mynumber.web.templating import language, render

HOME_PATH = "/bank"
LOGIN_PATH = "/bank/login"
LOGOUT_PATH = "/bank/logout"
DELETE_PATH = "/bank/delete"
DONE_PATH = "/bank/done"
DEPOSIT_PATH = "/bank/deposit-numbering"
BANK_COOKIE = "mn_bank"
CSRF_SCOPE = "bank"
PREFIXES = ("accounts.bank.", "accounts.", "portal.", "")
DONE = ("registered", "changed", "deleted", "deposit_numbering")
LOGIN_LIMITS = {"client_id": 40, "secret": 200}


def _session_binding(request: Request) -> str:
    token = request.cookies.get(BANK_COOKIE, "")
    if not token:
        raise SignInRequired(expired=False)
    return token


def bank_client(request: Request) -> BankClient:
    token = _session_binding(request)
    try:
        client: BankClient = request.app.state.container.bank_clients.session(token)
    except BankSessionExpired:
        raise SignInRequired(expired=True) from None
    request.state.bank_client = client
    return client


CounterClient = Annotated[BankClient, Depends(bank_client)]


def _page(request: Request, template: str, *, status: int = 200,
          client: BankClient | None = None, **context: Any) -> HTMLResponse:
    binding = request.cookies.get(BANK_COOKIE) if client is not None else None
    bank_name = ""
    if client is not None:
        accounts = request.app.state.container.accounts
        bank = accounts.directory.bank(client.bank_code, accounts.today())
        bank_name = bank.name if bank else ""
    return render(request, template, status_code=status, client=client, bank_name=bank_name,
                  **csrf.form_fields(request, CSRF_SCOPE, binding), **context)


def _error(request: Request, exc: DomainError, code: str | None = None) -> dict[str, Any]:
    return error_box(request, exc, code, prefixes=PREFIXES)


def _card_error(request: Request, exc: DomainError) -> dict[str, Any]:
    return card_error(request, exc, PREFIXES)


def _card_context(request: Request, client: BankClient) -> dict[str, Any]:
    """A fresh challenge for this client's purpose (no other procedure accepts it)."""
    return card_context(request, bank_purpose(client.client_id))


def _signed(request: Request, form: Any, client: BankClient) -> Any:
    return signed_card(request, form, bank_purpose(client.client_id))


def _error_page(request: Request, exc: DomainError, status: int | None = None,
                code: str | None = None) -> HTMLResponse:
    client = getattr(request.state, "bank_client", None)
    return _page(request, "accounts/bank_error.html", status=status or exc.status,
                 client=client, error=_error(request, exc, code))


BANK = PagePolicy(
    scope=CSRF_SCOPE, error_page=_error_page, session_binding=_session_binding,
    login_path=LOGIN_PATH, home_path=HOME_PATH, session_cookie=BANK_COOKIE,
    public_posts=frozenset({LOGIN_PATH}),
)
router = APIRouter(include_in_schema=False, route_class=page_route("BankRoute", BANK))


# --- sign-in ------------------------------------------------------------------------------------


@router.get(LOGIN_PATH, response_class=HTMLResponse)
def login_form(request: Request, expired: str = "") -> HTMLResponse:
    return _page(request, "accounts/bank_login.html", values={}, expired=expired == "1")


@router.post(LOGIN_PATH, response_class=HTMLResponse)
def login(request: Request, form: FormDep) -> Response:
    values = {name: forms.value(form, name, limit + 1) for name, limit in LOGIN_LIMITS.items()}
    try:
        if any(len(values[n]) > limit for n, limit in LOGIN_LIMITS.items()):
            raise BankLoginFailed("client id or secret is wrong")
        clients = request.app.state.container.bank_clients
        # Whatever happens next, the terminal's previous session ends first.
        clients.logout(request.cookies.get(BANK_COOKIE, ""))
        token, _client = clients.login(values["client_id"], values["secret"])
    except BankLoginFailed as exc:
        # One message whatever failed (unknown client, wrong secret, suspended).
        return _page(request, "accounts/bank_login.html", status=401,
                     error=_error(request, exc), values={"client_id": values["client_id"]})
    response = RedirectResponse(HOME_PATH, status_code=303)
    # The forms' CSRF tokens are bound to this new session: a token from before is worthless.
    response.set_cookie(BANK_COOKIE, token, httponly=True, samesite="strict",
                        secure=secure_cookies(request), path="/")
    return response


@router.post(LOGOUT_PATH)
def logout(request: Request) -> Response:
    request.app.state.container.bank_clients.logout(request.cookies.get(BANK_COOKIE, ""))
    response = RedirectResponse(LOGIN_PATH, status_code=303)
    response.delete_cookie(BANK_COOKIE, path="/")
    return response


# --- the counter ----------------------------------------------------------------------------


def _counter_page(request: Request, client: BankClient, *, status: int = 200,
                  error: dict[str, Any] | None = None, values: dict[str, str] | None = None,
                  names: dict[str, str] | None = None) -> HTMLResponse:
    return _page(request, "accounts/bank_counter.html", status=status, client=client,
                 error=error, values=values or {}, names=names,
                 **_card_context(request, client))


def _names(request: Request, exc: DomainError) -> dict[str, str] | None:
    """Beside a holder-name refusal: the catalogue's sentence for the reason only (the bank
    is not shown the registry's reading of the person)."""
    if not isinstance(exc, HolderNameMismatch):
        return None
    t = translator(language(request))
    reason = str(exc.extra.get("reason", "different_person"))
    return {"reason": t(f"accounts.holder_name.{reason}"), "bank": "", "yours": ""}


@router.get(HOME_PATH, response_class=HTMLResponse)
def counter(request: Request, client: CounterClient) -> HTMLResponse:
    return _counter_page(request, client)


@router.post(HOME_PATH, response_class=HTMLResponse)
def register_or_change(request: Request, client: CounterClient, form: FormDep) -> Response:
    container = request.app.state.container
    values = {name: forms.value(form, name, 100) for name in FORM_FIELDS}
    accounts = container.accounts
    try:
        # Cheap checks first: the card's challenge is not spent on another bank's code.
        container.bank_clients.check_own_bank(client, values["bank_code"])
        authentication = _signed(request, form, client)
        person = authentication.resident_id  # whoever the card names
        account = BankAccount(values["bank_code"], values["branch_code"], values["deposit_type"],
                          values["account_number"], values["holder_name"])
        if accounts.registration(person) is None:
            accounts.register(person, account, Route.BANK, authentication=authentication,
                              actor=client.actor)
            done = "registered"
        else:
            accounts.change(person, account, Route.BANK, authentication=authentication,
                            actor=client.actor)
            done = "changed"
    except (ReaderWrongPin, ReaderPinLocked, DomainError) as exc:
        # The form comes back with a new challenge: the resident signs again.
        return _counter_page(request, client, status=exc.status,
                             error=_card_error(request, exc), values=values,
                             names=_names(request, exc))
    return RedirectResponse(f"{DONE_PATH}?done={done}", status_code=303)


@router.get(DELETE_PATH, response_class=HTMLResponse)
def delete_form(request: Request, client: CounterClient) -> HTMLResponse:
    return _page(request, "accounts/bank_delete.html", client=client,
                 **_card_context(request, client))


@router.post(DELETE_PATH, response_class=HTMLResponse)
def delete(request: Request, client: CounterClient, form: FormDep) -> Response:
    container = request.app.state.container
    try:
        delete_at_own_bank(container, client, _signed(request, form, client))
    except (ReaderWrongPin, ReaderPinLocked, DomainError) as exc:
        error = _card_error(request, exc)
        if isinstance(exc, BankCodeNotOwn):  # the registered account is another bank's
            error = error_box(request, exc, f"{exc.code}_delete", prefixes=PREFIXES)
        return _page(request, "accounts/bank_delete.html", status=exc.status, client=client,
                     error=error, **_card_context(request, client))
    return RedirectResponse(f"{DONE_PATH}?done=deleted", status_code=303)


def _deposit_page(request: Request, client: BankClient, *, status: int = 200,
                  error: dict[str, Any] | None = None) -> HTMLResponse:
    return _page(request, "accounts/bank_deposit.html", status=status, client=client,
                 error=error, **_card_context(request, client))


@router.get(DEPOSIT_PATH, response_class=HTMLResponse)
def deposit_form(request: Request, client: CounterClient) -> HTMLResponse:
    return _deposit_page(request, client)


@router.post(DEPOSIT_PATH, response_class=HTMLResponse)
def deposit_numbering(request: Request, client: CounterClient, form: FormDep) -> Response:
    container = request.app.state.container
    try:
        authentication = _signed(request, form, client)  # whoever the card names
        request_numbering(container, client, authentication)
    except (ReaderWrongPin, ReaderPinLocked, DomainError) as exc:
        # A new challenge: nothing of this customer's attempt is kept for the next one.
        return _deposit_page(request, client, status=exc.status,
                             error=_card_error(request, exc))
    return RedirectResponse(f"{DONE_PATH}?done=deposit_numbering", status_code=303)


@router.get(DONE_PATH, response_class=HTMLResponse)
def done_page(request: Request, client: CounterClient, done: str = "") -> HTMLResponse:
    """What was done, and nothing of the person: the next person starts from an empty form."""
    return _page(request, "accounts/bank_done.html", client=client,
                 done=done if done in DONE else "")
