"""The municipal counter's 公金受取口座 page (``/counter/accounts/{id}``): a clerk
signed in at the counter (kernel.counter) sees a resident's registered account after giving a
閲覧理由, as for the resident's record.

- Jurisdiction is the registry's rule: the clerk's municipality must be the resident's
  (``registry.get_resident``, which also records the clerk's read of the record with the
  reason; another municipality's resident is refused there and nothing of the account is
  read).
- The read itself is audited in the accounts context (``accounts:registration:counter_read``,
  actor the clerk, the reason) by ``AccountsServiceImpl.counter_view``, in the read's
  transaction. Reads are POSTs: the reason never lands in a URL.
- Shown: bank and branch names with their codes, 預金種目, the account number masked (the
  last four digits), the holder name, the route, the name check (要確認 with the reason in
  words) and the history (what was done, when, by which route, with the account masked).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse

from mynumber.accounts.interfaces import RegistrationChange
from mynumber.auth.interfaces import StaffPrincipal
from mynumber.errors import DomainError
from mynumber.kernel.counter import CounterRoute, CounterStaff, counter_page
from mynumber.kernel.errors import error_box
from mynumber.kernel.routes import FormDep
from mynumber.registry.views import view_reason
from mynumber.web.accounts_portal import _shown, masked

# Not under /counter/residents/{id}/{slug}: that is the registry's event forms.
PATH = "/counter/accounts/{resident_id}"
PREFIXES = ("accounts.counter.", "accounts.", "")
router = APIRouter(include_in_schema=False, route_class=CounterRoute)
RecordId = Annotated[int, Path(ge=1, le=2**63 - 1)]


def _reason_page(request: Request, staff: StaffPrincipal, resident_id: int, *,
                 status: int = 200, error: dict[str, Any] | None = None,
                 values: dict[str, str] | None = None) -> HTMLResponse:
    return counter_page(request, "accounts/counter_reason.html", status=status, staff=staff,
                        resident_id=resident_id, error=error,
                        values=values if values is not None else {"reason_kind": "other"})


def _history_row(container: Any, entry: RegistrationChange) -> dict[str, Any]:
    directory = container.accounts.directory
    bank = directory.bank(entry.bank_code, entry.known_on)
    branch = directory.branch(entry.bank_code, entry.branch_code, entry.known_on)
    return {"action": entry.action, "at": entry.at, "route": entry.route.value,
            "bank": f"{bank.name if bank else ''} ({entry.bank_code})",
            "branch": f"{branch.name if branch else ''} ({entry.branch_code})",
            "account_number": masked(entry.account_number)}


@router.get(PATH, response_class=HTMLResponse)
def reason_form(request: Request, staff: CounterStaff, resident_id: RecordId) -> HTMLResponse:
    return _reason_page(request, staff, resident_id)


@router.post(PATH, response_class=HTMLResponse)
def view_account(request: Request, staff: CounterStaff, resident_id: RecordId,
                 form: FormDep) -> HTMLResponse:
    container = request.app.state.container
    try:
        reason = view_reason(form)
    except DomainError as exc:
        return _reason_page(request, staff, resident_id, status=exc.status,
                            error=error_box(request, exc, prefixes=PREFIXES),
                            values={k: str(form.get(k) or "")[:150]
                                    for k in ("reason_kind", "reason_text")})
    # The registry's jurisdiction check (and its audited read of the record) comes first.
    record = container.registry.get_resident(staff, resident_id, reason)
    registration, history = container.accounts.counter_view(resident_id, staff.actor, reason)
    return counter_page(
        request, "accounts/counter_account.html", staff=staff, record=record, reason=reason,
        registration=_shown(container, registration) if registration else None,
        history=[_history_row(container, h) for h in history])
