"""公金受取口座: one registered account per person, by four routes, in the person's own name.

Decisions, in one place:

- **One per person** is the database's rule: ``registrations`` is keyed on the person. Two
  requests registering at once cannot both succeed (the second gets AlreadyRegistered).
- **The holder-name check runs on every route** (portal, bank, tax return, pension): the
  bank's holder name, converted to the 全銀 set, is compared with the registrant's reading as
  the registry holds it *now* (``compare_holder_name``). A mismatch is refused with the
  reason (given name differs, family name differs, order, another person) and nothing is
  stored: in 2023 about 130,000 registrations were in a relative's name.
- **Bound to the card authentication** (the 2023 shared terminal that kept the previous
  person's session and registered 748 accounts for strangers): the portal and bank routes
  need the registrant's own card authentication, at most 5 minutes old, and each
  authentication makes one change only. "Only once" is a primary key
  (``used_authentications``) written in the change's transaction, so two parallel requests
  with one authentication cannot both pass.
- **Nothing is silently lost**: every registration, change, merger migration, name-check flag
  and deletion writes a history row with the account as it stood.
- **The pension special case** is finalised by claiming each due proposal with one
  ``UPDATE … WHERE state = 'pending'`` in the transaction that registers it: a second run
  (or an objection arriving at the same moment) finds the row claimed and does nothing.
- **Bank mergers** move a registration to the codes valid today (``banks.current_codes``
  from the date the codes were recorded, ``known_on``), guarded the same way, and publish
  ``accounts.registration.migrated`` through the context's outbox for the resident's notice.
- **Every change is published** through the context's outbox in its own transaction:
  ``accounts.registration.registered`` (every route, the pension finalisation included),
  ``changed``, ``deleted`` (by the resident or an agency, or for a death) and ``migrated``;
  the payload names the person, the route and the bank/branch codes, never the account
  number (accounts/events.py: デジタル庁's enrolment, the merger notice).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mynumber import audit
from mynumber.accounts import models as m
from mynumber.accounts.banks import (
    BankDirectory,
    BranchClosed,
    UnknownBranch,
    current_codes,
    load_bank_directory,
)
from mynumber.accounts.interfaces import (
    AUTHENTICATION_MAX_AGE,
    CHANGED_EVENT,
    DELETED_EVENT,
    MIGRATED_EVENT,
    PENSION_OBJECTION_DAYS,
    REGISTERED_EVENT,
    AgencyActorRequired,
    AlreadyRegistered,
    AuditReport,
    BankAccount,
    BankCodeNotOwn,
    CardAuthentication,
    CardAuthenticationOtherPerson,
    CardAuthenticationRequired,
    CardAuthenticationStale,
    CardAuthenticationUsed,
    DepositType,
    HolderNameMismatch,
    InvalidAccount,
    MergerReport,
    MovedRegistration,
    NameCheck,
    NotRegistered,
    PensionFinalisation,
    PensionProposal,
    ProposalClosed,
    ProposalNotFound,
    ProposalState,
    RegistrantUnavailable,
    Registration,
    RegistrationChange,
    RegistryReader,
    Route,
    RouteNotPermitted,
    SharedAccount,
    UnknownBranchCode,
)
from mynumber.accounts.zengin import (
    HolderNameCheck,
    NotZenginError,
    compare_holder_name,
    to_zengin_kana,
)
from mynumber.codes.exceptions import ValidationError
from mynumber.db import Databases, utcnow
from mynumber.kernel.events import Outbox
from mynumber.registry.interfaces import ResidentRecord, ResidentStatus

log = logging.getLogger("mynumber.accounts")

CONTEXT = m.CONTEXT
JST = dt.timezone(dt.timedelta(hours=9), "JST")
#: A card authentication stamped this far in the future (clock skew) is still accepted.
CLOCK_SKEW = dt.timedelta(seconds=30)
#: The longest holder name stored (全銀 名義 fields are 30 characters; banks hold more).
HOLDER_NAME_MAX = 60

_DEPOSIT_TYPES = {
    "ordinary": DepositType.ORDINARY, "普通": DepositType.ORDINARY, "1": DepositType.ORDINARY,
    "current": DepositType.CURRENT, "当座": DepositType.CURRENT, "2": DepositType.CURRENT,
    "savings": DepositType.SAVINGS, "貯蓄": DepositType.SAVINGS, "4": DepositType.SAVINGS,
}
_DIGITS = re.compile(r"[0-9]+")


def _digits(value: str) -> str:
    return "".join(unicodedata.normalize("NFKC", value or "").split()).replace("-", "")


def _actor_text(value: str) -> str:
    return value.strip()[:80]


class AccountsServiceImpl:
    """公金受取口座 backed by the ``accounts`` database; see the module docstring."""

    def __init__(self, databases: Databases, registry: RegistryReader,
                 directory: BankDirectory | None = None) -> None:
        self.databases = databases
        self.registry = registry
        self._directory = directory
        self.clock: Callable[[], dt.datetime] = utcnow
        #: Changes other contexts hear of (registered, changed, deleted, migrated), in the
        #: change's own transaction.
        self.outbox = Outbox(databases, CONTEXT, m.outbox_events, m.outbox_checkpoints)

    # -- plumbing ---------------------------------------------------------------------------------
    @property
    def directory(self) -> BankDirectory:
        if self._directory is None:
            self._directory = load_bank_directory()
        return self._directory

    def today(self) -> dt.date:
        return self.clock().astimezone(JST).date()

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        with self.databases.unit_of_work(CONTEXT) as session:
            yield session
        if session.info.get("published"):
            self.outbox.committed()

    def _publish(self, session: Session, type_: str, row: m.Registration,
                 **extra: Any) -> None:
        """The change's event, in the change's transaction (never the account number)."""
        rid = int(row.resident_id)
        self.outbox.publish(session, type_, f"resident:{rid}", {
            "resident_id": rid, "route": row.route, "bank_code": row.bank_code,
            "branch_code": row.branch_code, **extra})
        session.info["published"] = True

    def _audit(self, session: Session, tag: str, actor: str, resident_id: int,
               reason: str | None = None, **details: Any) -> None:
        audit.record(session, m.AuditEvent, tag, actor=actor, subject=f"resident:{resident_id}",
                     reason=reason, **details)

    def _refused(self, error: Exception, resident_id: int, actor: str, action: str) -> None:
        """A refusal leaves a trace (its code and reason, never the account), in its own
        transaction: the refused change wrote nothing."""
        code = getattr(error, "code", type(error).__name__)
        extra = getattr(error, "extra", {}) or {}
        with self.databases.unit_of_work(CONTEXT) as session:
            self._audit(session, f"accounts:registration:{action}_refused", actor or "unknown",
                        resident_id, reason=str(code)[:200],
                        **({"holder_name_reason": extra["reason"]} if "reason" in extra
                           else {}))

    # -- validation -------------------------------------------------------------------------------
    def validate(self, account: BankAccount, on: dt.date | None = None) -> BankAccount:
        """The account normalised, or InvalidAccount / UnknownBranchCode naming the field.
        Bank and branch must exist on ``on`` (today) in the bank dataset."""
        on = on or self.today()
        bank_code, branch_code = _digits(account.bank_code), _digits(account.branch_code)
        number = _digits(account.account_number)
        if not (len(bank_code) == 4 and _DIGITS.fullmatch(bank_code)):
            raise InvalidAccount("bank_code: 4 digits (金融機関コード)", field="bank_code")
        if not (len(branch_code) == 3 and _DIGITS.fullmatch(branch_code)):
            raise InvalidAccount("branch_code: 3 digits (店番)", field="branch_code")
        if not (len(number) == 7 and _DIGITS.fullmatch(number)):
            raise InvalidAccount("account_number: 7 digits (a shorter number is written with "
                                 "zeros on the left, e.g. 0012345)", field="account_number")
        deposit = _DEPOSIT_TYPES.get(str(account.deposit_type).strip().lower())
        if deposit is None:
            raise InvalidAccount("deposit_type: ordinary (普通), current (当座) or savings "
                                 "(貯蓄)", field="deposit_type")
        if self.directory.bank(bank_code, on) is None:
            raise UnknownBranchCode("bank_code: no bank has this code today",
                                    field="bank_code")
        if self.directory.branch(bank_code, branch_code, on) is None:
            raise UnknownBranchCode(
                "branch_code: this bank has no branch with this code today" + self._hint(
                    bank_code, branch_code, on), field="branch_code")
        try:
            holder = to_zengin_kana(account.holder_name or "")
        except NotZenginError:
            # The characters are not echoed: a name is personal data.
            raise InvalidAccount("holder_name: write the holder name in kana as the bank "
                                 "writes it (口座名義 カナ)", field="holder_name") from None
        if not holder:
            raise InvalidAccount("holder_name: required", field="holder_name")
        if len(holder) > HOLDER_NAME_MAX:
            raise InvalidAccount(f"holder_name: at most {HOLDER_NAME_MAX} characters",
                                 field="holder_name")
        return BankAccount(bank_code, branch_code, deposit, number, holder)

    def _hint(self, bank_code: str, branch_code: str, on: dt.date) -> str:
        """Where a superseded branch's accounts went (the codes the bank uses now)."""
        for branch in self.directory.branches:
            if (branch.bank_code, branch.code) == (bank_code, branch_code) and branch.valid_to:
                try:
                    new = current_codes(self.directory, bank_code, branch_code,
                                        known_on=branch.valid_to, on=on)
                except (UnknownBranch, BranchClosed):
                    return " (the branch closed)"
                return f" (its accounts now use {new.bank_code}-{new.branch_code})"
        return ""

    def _registrant(self, resident_id: int) -> ResidentRecord:
        record = self.registry.residents_by_ids([resident_id]).get(resident_id)
        if record is None or record.status is ResidentStatus.DECEASED:
            raise RegistrantUnavailable("resident_id: no living person with this id",
                                        field="resident_id")
        return record

    @staticmethod
    def _check_holder(account: BankAccount, record: ResidentRecord) -> None:
        try:
            check = compare_holder_name(account.holder_name, record.name_kana)
        except ValidationError:
            raise HolderNameMismatch(
                "holder_name: the registrant's reading cannot be compared", field="holder_name",
                reason="not_comparable") from None
        if not check.matches:
            raise HolderNameMismatch(
                "holder_name: a public-fund account must be in the registrant's own name "
                f"({check.reason.value.replace('_', ' ')}); a family member's account cannot "
                "be registered", field="holder_name", reason=check.reason.value,
                message_key=check.message_key)

    def authorised_actor(self, resident_id: int, route: Route,
                         authentication: CardAuthentication | None, actor: str | None) -> str:
        """Who makes a change on ``route``: the registrant's fresh card authentication (portal,
        bank) or a named agency (tax return); refused otherwise. Also used by 預貯金口座付番."""
        if route.needs_card:
            if authentication is None:
                raise CardAuthenticationRequired(
                    "this route needs the registrant's card authentication "
                    "(利用者証明用電子証明書)")
            if authentication.resident_id != resident_id:
                raise CardAuthenticationOtherPerson(
                    "the card authentication is not the registrant's: authenticate with the "
                    "registrant's own card")
            now = self.clock()
            at = authentication.authenticated_at
            if at.tzinfo is None or now - at > AUTHENTICATION_MAX_AGE or at - now > CLOCK_SKEW:
                raise CardAuthenticationStale(
                    "the card authentication is older than 5 minutes: authenticate again with "
                    "the card", max_age_seconds=int(AUTHENTICATION_MAX_AGE.total_seconds()))
            if not authentication.authentication_id or len(authentication.authentication_id) > 64:
                raise CardAuthenticationRequired("authentication_id: required (1-64 characters)")
            if route is Route.PORTAL:
                return f"resident:{resident_id}"
            return _actor_text(actor or "bank")
        if not actor or not actor.strip():
            raise AgencyActorRequired(f"the {route.value} route is an agency route: the agency "
                                      "making the change must be named")
        return _actor_text(actor)

    def spend_authentication(self, session: Session,
                             authentication: CardAuthentication | None, action: str) -> None:
        """Spend the authentication (its own flush first: the unique key decides which of two
        parallel requests gets it)."""
        if authentication is None:
            return
        session.add(m.UsedAuthentication(
            authentication_id=authentication.authentication_id,
            resident_id=authentication.resident_id,
            certificate_serial=str(authentication.certificate_serial)[:64],
            authenticated_at=authentication.authenticated_at, used_at=self.clock(),
            action=action))
        try:
            session.flush()
        except IntegrityError:
            raise CardAuthenticationUsed(
                "this card authentication was already used for a change: authenticate again "
                "with the card") from None

    @staticmethod
    def _history(session: Session, row: m.Registration, action: str, actor: str, at: dt.datetime,
                 reason: str | None = None) -> None:
        session.add(m.RegistrationHistory(
            resident_id=row.resident_id, action=action, at=at, actor=actor, route=row.route,
            bank_code=row.bank_code, branch_code=row.branch_code, deposit_type=row.deposit_type,
            account_number=row.account_number, holder_name=row.holder_name,
            known_on=row.known_on, authentication_id=row.authentication_id, reason=reason))

    def _route(self, route: Route | str, action: str) -> Route:
        try:
            value = Route(route)
        except ValueError:
            raise RouteNotPermitted("route: portal, bank, tax_return or pension",
                                    field="route") from None
        if value is Route.PENSION:
            raise RouteNotPermitted(f"the pension route cannot {action} directly: 日本年金機構 "
                                    "proposes (propose_pension) and the proposal is finalised")
        return value

    # -- register / change / delete ---------------------------------------------------------------
    def register(self, resident_id: int, account: BankAccount, route: Route | str, *,
                 authentication: CardAuthentication | None = None,
                 actor: str | None = None) -> Registration:
        return self._write(resident_id, account, route, authentication, actor, "register")

    def change(self, resident_id: int, account: BankAccount, route: Route | str, *,
               authentication: CardAuthentication | None = None,
               actor: str | None = None) -> Registration:
        return self._write(resident_id, account, route, authentication, actor, "change")

    def _write(self, resident_id: int, account: BankAccount, route_value: Route | str,
               authentication: CardAuthentication | None, actor_value: str | None,
               action: str) -> Registration:
        route = self._route(route_value, action)
        actor = ""
        try:
            actor = self.authorised_actor(resident_id, route, authentication, actor_value)
            today = self.today()
            clean = self.validate(account, today)
            self._check_holder(clean, self._registrant(resident_id))
            now = self.clock()
            with self._transaction() as session:
                self.spend_authentication(session, authentication, action)
                row = session.get(m.Registration, resident_id)
                if action == "register" and row is not None:
                    raise AlreadyRegistered("a public-fund account is already registered: "
                                            "change it instead")
                if action == "change" and row is None:
                    raise NotRegistered("no public-fund account is registered: register one")
                if row is None:
                    row = m.Registration(resident_id=resident_id, registered_at=now)
                    session.add(row)
                row.bank_code, row.branch_code = clean.bank_code, clean.branch_code
                row.deposit_type = DepositType(clean.deposit_type).value
                row.account_number, row.holder_name = clean.account_number, clean.holder_name
                row.route, row.known_on, row.actor = route.value, today, actor
                row.authentication_id = authentication.authentication_id if authentication \
                    else None
                row.certificate_serial = str(authentication.certificate_serial)[:64] \
                    if authentication else None
                row.authenticated_at = authentication.authenticated_at if authentication \
                    else None
                row.name_check, row.name_check_reason = NameCheck.OK.value, None
                row.updated_at = now
                try:
                    session.flush()
                except IntegrityError:  # registered by a parallel request a moment ago
                    raise AlreadyRegistered("a public-fund account is already registered: "
                                            "change it instead") from None
                verb = "registered" if action == "register" else "changed"
                self._history(session, row, verb, actor, now)
                self._audit(session, f"accounts:registration:{verb}", actor, resident_id,
                            route=route.value)
                self._publish(session, REGISTERED_EVENT if verb == "registered"
                              else CHANGED_EVENT, row)
                result = _registration(row)
        except (HolderNameMismatch, CardAuthenticationOtherPerson, CardAuthenticationStale,
                CardAuthenticationUsed) as exc:
            self._refused(exc, resident_id, actor or _actor_text(actor_value or ""), action)
            raise
        return result

    def delete(self, resident_id: int, route: Route | str, *,
               authentication: CardAuthentication | None = None,
               actor: str | None = None, expected_bank_code: str | None = None) -> None:
        value = self._route(route, "delete")
        who = self.authorised_actor(resident_id, value, authentication, actor)
        now = self.clock()
        with self._transaction() as session:
            self.spend_authentication(session, authentication, "delete")
            row = session.get(m.Registration, resident_id)
            if row is None:
                raise NotRegistered("no public-fund account is registered")
            if expected_bank_code is not None and row.bank_code != expected_bank_code:
                # Checked on the row this transaction deletes (a bank deletes its own only).
                raise BankCodeNotOwn("bank_code: the registered account is at another bank",
                                     field="bank_code")
            self._history(session, row, "deleted", who, now, reason=f"by_{value.value}")
            self._audit(session, "accounts:registration:deleted", who, resident_id,
                        route=value.value)
            self._publish(session, DELETED_EVENT, row, reason=f"by_{value.value}")
            session.delete(row)

    def registration(self, resident_id: int) -> Registration | None:
        with self.databases.unit_of_work(CONTEXT) as session:
            row = session.get(m.Registration, resident_id)
            return _registration(row) if row is not None else None

    def holder_name_check(self, resident_id: int, holder_name: str) -> HolderNameCheck | None:
        """Read-only: ``holder_name`` compared with the person's reading as the registry holds
        it now (for a page to show both names beside a refusal); None when either cannot be
        compared or the person is unknown. Stores nothing."""
        record = self.registry.residents_by_ids([resident_id]).get(resident_id)
        if record is None:
            return None
        try:
            return compare_holder_name(holder_name or "", record.name_kana)
        except ValidationError:
            return None

    @staticmethod
    def _history_entries(session: Session, resident_id: int) -> list[RegistrationChange]:
        h = m.RegistrationHistory
        return [RegistrationChange(
            id=r.id, action=r.action, at=r.at, actor=r.actor, route=Route(r.route),
            bank_code=r.bank_code, branch_code=r.branch_code,
            deposit_type=DepositType(r.deposit_type), account_number=r.account_number,
            holder_name=r.holder_name, known_on=r.known_on, reason=r.reason)
            for r in session.scalars(select(h).where(h.resident_id == resident_id)
                                     .order_by(h.id))]

    def history(self, resident_id: int) -> list[RegistrationChange]:
        with self.databases.unit_of_work(CONTEXT) as session:
            return self._history_entries(session, resident_id)

    def counter_view(self, resident_id: int, actor: str, reason: str
                     ) -> tuple[Registration | None, list[RegistrationChange]]:
        """A municipal counter's read of a person's registration and history, audited with
        the clerk's reason (``accounts:registration:counter_read``) in the read's transaction.
        The caller checks the clerk's jurisdiction first (the registry's rule)."""
        reason = " ".join((reason or "").split())
        if not reason:
            raise InvalidAccount("reason: a reason for viewing is required", field="reason")
        with self.databases.unit_of_work(CONTEXT) as session:
            row = session.get(m.Registration, resident_id)
            entries = self._history_entries(session, resident_id)
            self._audit(session, "accounts:registration:counter_read", _actor_text(actor),
                        resident_id, reason=reason[:200], registered=row is not None)
            return (_registration(row) if row is not None else None), entries

    # -- the pension special case -----------------------------------------------------------------
    def propose_pension(self, resident_id: int, account: BankAccount, proposed_on: dt.date, *,
                        actor: str, former_name: bool = False,
                        first_transfer_bounced: bool = False) -> PensionProposal:
        if not actor or not actor.strip():
            raise AgencyActorRequired("the pension route is an agency route: name the agency")
        clean = self.validate(account, proposed_on)
        self._registrant(resident_id)
        now = self.clock()
        with self._transaction() as session:
            if session.get(m.Registration, resident_id) is not None:
                raise AlreadyRegistered("the recipient has a public-fund account already")
            pending = session.scalar(select(m.PensionProposal.id).where(
                m.PensionProposal.resident_id == resident_id,
                m.PensionProposal.state == ProposalState.PENDING.value))
            if pending is not None:
                raise AlreadyRegistered("the recipient has a pending proposal already")
            row = m.PensionProposal(
                resident_id=resident_id, bank_code=clean.bank_code,
                branch_code=clean.branch_code, deposit_type=DepositType(clean.deposit_type).value,
                account_number=clean.account_number, holder_name=clean.holder_name,
                actor=_actor_text(actor), proposed_on=proposed_on,
                deadline=proposed_on + dt.timedelta(days=PENSION_OBJECTION_DAYS),
                state=ProposalState.PENDING.value, former_name=former_name,
                first_transfer_bounced=first_transfer_bounced, created_at=now)
            session.add(row)
            try:
                session.flush()
            except IntegrityError:
                raise AlreadyRegistered("a proposal of that day exists already") from None
            self._audit(session, "accounts:pension:proposed", row.actor, resident_id,
                        deadline=row.deadline.isoformat())
            return _proposal(row)

    def _pending(self, session: Session, resident_id: int) -> m.PensionProposal:
        row = session.scalar(select(m.PensionProposal).where(
            m.PensionProposal.resident_id == resident_id,
            m.PensionProposal.state == ProposalState.PENDING.value))
        if row is None:
            raise ProposalNotFound("no pending pension proposal for this person")
        return row

    def object_pension(self, resident_id: int, on: dt.date) -> PensionProposal:
        now = self.clock()
        p = m.PensionProposal
        with self._transaction() as session:
            # The claim: only a still-pending proposal within its period takes the objection
            # (a finalisation running now either claimed it first or will find it objected).
            result = session.execute(
                update(p).where(p.resident_id == resident_id,
                                p.state == ProposalState.PENDING.value, p.deadline >= on)
                .values(state=ProposalState.OBJECTED.value, objected_at=now))
            if result.rowcount != 1:  # type: ignore[attr-defined]
                late = session.scalar(select(p.id).where(
                    p.resident_id == resident_id, p.state == ProposalState.PENDING.value))
                if late is not None:
                    raise ProposalClosed("the 45-day period for a 不同意 is over")
                raise ProposalNotFound("no pending pension proposal for this person")
            row = session.scalars(select(p).where(p.resident_id == resident_id)
                                  .order_by(p.objected_at.desc(), p.id.desc())).first()
            assert row is not None
            self._audit(session, "accounts:pension:objected", f"resident:{resident_id}",
                        resident_id)
            return _proposal(row)

    def mark_bounced(self, resident_id: int) -> PensionProposal:
        with self._transaction() as session:
            row = self._pending(session, resident_id)
            row.first_transfer_bounced = True
            self._audit(session, "accounts:pension:bounced", row.actor, resident_id)
            return _proposal(row)

    def proposals(self, resident_id: int) -> list[PensionProposal]:
        p = m.PensionProposal
        with self.databases.unit_of_work(CONTEXT) as session:
            return [_proposal(r) for r in session.scalars(
                select(p).where(p.resident_id == resident_id).order_by(p.id))]

    def _skip_reason(self, row: m.PensionProposal, record: ResidentRecord | None) -> str | None:
        if row.first_transfer_bounced:
            return "first_transfer_bounced"
        if row.former_name:
            return "former_name"
        if record is None or record.status is ResidentStatus.DECEASED:
            return "registrant_unavailable"
        account = BankAccount(row.bank_code, row.branch_code, row.deposit_type, row.account_number,
                          row.holder_name)
        try:
            self._check_holder(account, record)
        except HolderNameMismatch as exc:
            return f"holder_name_{exc.extra.get('reason', 'mismatch')}"
        return None

    def finalize_pensions(self, today: dt.date) -> PensionFinalisation:
        p = m.PensionProposal
        with self.databases.unit_of_work(CONTEXT) as session:
            due = list(session.scalars(select(p).where(
                p.state == ProposalState.PENDING.value, p.deadline < today).order_by(p.id)))
        records = self.registry.residents_by_ids([r.resident_id for r in due]) if due else {}
        registered: list[int] = []
        skipped: list[tuple[int, str]] = []
        for row in due:
            reason = self._skip_reason(row, records.get(row.resident_id))
            codes = (row.bank_code, row.branch_code)
            if reason is None:
                try:
                    codes = current_codes(self.directory, row.bank_code, row.branch_code,
                                          known_on=row.proposed_on, on=today)
                except (UnknownBranch, BranchClosed):
                    reason = "branch_closed"
            try:
                outcome = self._finalize_one(row.id, reason, codes, today)
            except IntegrityError:  # registered by another route a moment ago
                outcome = self._finalize_one(row.id, "already_registered", codes, today)
            if outcome is None:
                continue  # another run (or an objection) took it
            if outcome == "registered":
                registered.append(row.resident_id)
            else:
                skipped.append((row.resident_id, outcome))
        return PensionFinalisation(registered, skipped)

    def _finalize_one(self, proposal_id: int, reason: str | None, codes: tuple[str, str],
                      today: dt.date) -> str | None:
        p = m.PensionProposal
        now = self.clock()
        with self._transaction() as session:
            row = session.get(p, proposal_id)
            if row is None:
                return None
            if reason is None and session.get(m.Registration, row.resident_id) is not None:
                reason = "already_registered"
            state = ProposalState.SKIPPED if reason else ProposalState.REGISTERED
            # The claim, first write of the transaction: exactly one run moves the proposal
            # out of 'pending' (PostgreSQL re-checks the WHERE after the other's commit;
            # SQLite has one writer at a time).
            claimed = session.execute(
                update(p).where(p.id == proposal_id, p.state == ProposalState.PENDING.value)
                .values(state=state.value, skip_reason=reason, finalized_at=now)
                .execution_options(synchronize_session=False))
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                return None
            if reason:
                self._audit(session, "accounts:pension:skipped", row.actor, row.resident_id,
                            reason=reason)
                return reason
            reg = m.Registration(
                resident_id=row.resident_id, bank_code=codes[0], branch_code=codes[1],
                deposit_type=row.deposit_type, account_number=row.account_number,
                holder_name=row.holder_name, route=Route.PENSION.value,
                known_on=today if codes != (row.bank_code, row.branch_code) else row.proposed_on,
                actor=row.actor, authentication_id=None, certificate_serial=None,
                authenticated_at=None, name_check=NameCheck.OK.value, name_check_reason=None,
                registered_at=now, updated_at=now)
            session.add(reg)
            session.flush()
            self._history(session, reg, "registered", row.actor, now, reason="pension_no_objection")
            self._audit(session, "accounts:registration:registered", row.actor, row.resident_id,
                        route=Route.PENSION.value)
            self._publish(session, REGISTERED_EVENT, reg)
            return "registered"

    # -- bank mergers -----------------------------------------------------------------------------
    def apply_mergers(self, today: dt.date) -> MergerReport:
        r = m.Registration
        ended = {(b.bank_code, b.code) for b in self.directory.branches
                 if b.valid_to is not None and b.valid_to < today}
        with self.databases.unit_of_work(CONTEXT) as session:
            candidates = [
                (rid, bank, branch, known_on)
                for rid, bank, branch, known_on in session.execute(
                    select(r.resident_id, r.bank_code, r.branch_code, r.known_on))
                if (bank, branch) in ended]
        moved: list[MovedRegistration] = []
        closed: list[int] = []
        for rid, bank, branch, known_on in candidates:
            try:
                new = current_codes(self.directory, bank, branch, known_on=known_on, on=today)
            except BranchClosed:
                closed.append(rid)
                continue
            except UnknownBranch:
                log.warning("accounts: registration %s has codes unknown on its date", rid)
                continue
            if (new.bank_code, new.branch_code) == (bank, branch):
                continue  # the codes were reused: still the same branch as registered
            now = self.clock()
            with self._transaction() as session:
                # Guarded on the codes read: a concurrent run or change leaves it alone.
                done = session.execute(
                    update(r).where(r.resident_id == rid, r.bank_code == bank,
                                    r.branch_code == branch, r.known_on == known_on)
                    .values(bank_code=new.bank_code, branch_code=new.branch_code,
                            known_on=today, updated_at=now)
                    .execution_options(synchronize_session=False))
                if done.rowcount != 1:  # type: ignore[attr-defined]
                    continue
                row = session.get(r, rid)
                assert row is not None
                session.refresh(row)
                reason = f"merger:{bank}-{branch}"
                self._history(session, row, "migrated", "accounts:bank-mergers", now, reason)
                self._audit(session, "accounts:registration:migrated", "accounts:bank-mergers",
                            rid, reason=reason)
                self.outbox.publish(session, MIGRATED_EVENT, f"resident:{rid}", {
                    "resident_id": rid, "from_bank_code": bank, "from_branch_code": branch,
                    "to_bank_code": new.bank_code, "to_branch_code": new.branch_code,
                    "effective_on": today.isoformat()})
                session.info["published"] = True
            moved.append(MovedRegistration(rid, bank, branch, new.bank_code, new.branch_code,
                                           today))
        return MergerReport(moved, closed)

    # -- the nightly audit ------------------------------------------------------------------------
    def audit_report(self) -> AuditReport:
        r = m.Registration
        with self.databases.unit_of_work(CONTEXT) as session:
            shared_keys = session.execute(
                select(r.bank_code, r.branch_code, r.account_number)
                .group_by(r.bank_code, r.branch_code, r.account_number)
                .having(func.count() > 1)).all()
            shared = []
            for bank, branch, number in shared_keys:
                ids = list(session.scalars(select(r.resident_id).where(
                    r.bank_code == bank, r.branch_code == branch, r.account_number == number)
                    .order_by(r.resident_id)))
                shared.append(SharedAccount(bank, branch, number, [int(i) for i in ids]))
            rechecks = [(int(rid), reason) for rid, reason in session.execute(
                select(r.resident_id, r.name_check_reason)
                .where(r.name_check == NameCheck.RECHECK.value).order_by(r.resident_id))]
        return AuditReport(shared, rechecks)

    # -- what registry events change --------------------------------------------------------------
    def recheck_holder_names(self, readings: Mapping[int, str], actor: str) -> list[int]:
        if not readings:
            return []
        r = m.Registration
        changed: list[int] = []
        now = self.clock()
        with self._transaction() as session:
            rows = session.scalars(select(r).where(r.resident_id.in_(list(readings))))
            for row in rows:
                try:
                    check = compare_holder_name(row.holder_name, readings[row.resident_id])
                    state, reason = ((NameCheck.OK, None) if check.matches
                                     else (NameCheck.RECHECK, check.reason.value))
                except ValidationError:
                    state, reason = NameCheck.RECHECK, "not_comparable"
                if (row.name_check, row.name_check_reason) == (state.value, reason):
                    continue  # idempotent: an event delivered again changes nothing
                row.name_check, row.name_check_reason, row.updated_at = state.value, reason, now
                action = "flagged" if state is NameCheck.RECHECK else "cleared"
                self._history(session, row, action, actor, now, reason=reason)
                self._audit(session, f"accounts:name_check:{action}", actor, row.resident_id,
                            reason=reason)
                changed.append(row.resident_id)
        return changed

    def delete_for_death(self, resident_id: int, actor: str) -> bool:
        now = self.clock()
        with self._transaction() as session:
            row = session.get(m.Registration, resident_id)
            if row is None:
                return False
            self._history(session, row, "deleted", actor, now, reason="death")
            self._audit(session, "accounts:registration:deleted", actor, resident_id,
                        reason="death")
            self._publish(session, DELETED_EVENT, row, reason="death")
            session.delete(row)
            # A pending pension proposal of the deceased is never registered.
            session.execute(
                update(m.PensionProposal).where(
                    m.PensionProposal.resident_id == resident_id,
                    m.PensionProposal.state == ProposalState.PENDING.value)
                .values(state=ProposalState.SKIPPED.value, skip_reason="registrant_unavailable",
                        finalized_at=now).execution_options(synchronize_session=False))
        return True


def _registration(row: m.Registration) -> Registration:
    return Registration(
        resident_id=row.resident_id, bank_code=row.bank_code, branch_code=row.branch_code,
        deposit_type=DepositType(row.deposit_type), account_number=row.account_number,
        holder_name=row.holder_name, route=Route(row.route), known_on=row.known_on,
        actor=row.actor, authentication_id=row.authentication_id,
        certificate_serial=row.certificate_serial, name_check=NameCheck(row.name_check),
        name_check_reason=row.name_check_reason, registered_at=row.registered_at,
        updated_at=row.updated_at)


def _proposal(row: m.PensionProposal) -> PensionProposal:
    return PensionProposal(
        id=row.id, resident_id=row.resident_id,
        account=BankAccount(row.bank_code, row.branch_code, DepositType(row.deposit_type),
                        row.account_number, row.holder_name),
        proposed_on=row.proposed_on, deadline=row.deadline, state=ProposalState(row.state),
        objected_at=row.objected_at, skip_reason=row.skip_reason)
