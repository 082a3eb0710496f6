"""預貯金口座付番 (deposit-account numbering) with consent, and 預金保険機構's look-ups.

Decisions, in one place:

- **Consent once per bank** is the database's rule: ``deposit_numbering_requests`` has a
  unique key on (person, bank). A second request for a bank already asked is refused
  (NumberingAlreadyRequested, naming the banks), not silently ignored: the resident should
  know the first one stands. A request names one or more banks and is all or nothing. Of two
  parallel requests for the same bank exactly one inserts; the other is refused.
- **Bound to the card** like a 公金受取口座 registration: the portal and bank routes need a
  fresh card authentication of the person (AccountsServiceImpl's rules, and its
  ``used_authentications`` spends it once).
- **The number is never stored in clear.** After the consent commits, the number is read
  through the registry's interface (``number_for_purpose``, audited there under
  ``deposit_numbering:<bank code>``), signed with デジタル庁's Ed25519 key and sealed for the
  bank with HPKE (``mynumber.envelope``: X25519, HKDF-SHA256, AES-256-GCM; ``info`` binds it
  to the bank and the request). Only the sealed bytes are kept, as a delivery the bank
  collects; they are dropped when the bank acknowledges them. When the bank has no key yet
  or this process holds no numbering keys (the portal role), the delivery stays ``pending``
  and ``seal_pending`` (``mynumber accounts deposit seal-pending``) seals it later. **Any**
  failure while sealing after the consent committed (no key, no numbering key, the registry
  or the database failing) is logged without the number and leaves the delivery pending: the
  consent stands and the request answers as recorded, never 500.
- **A delivery belongs to the bank client it is sealed for** (``sealed_for``: the bank's
  newest active client when sealing, ``BankKeys.sealing_key``): only that client collects
  and acknowledges it; another client of the same bank does not see it. A client registered
  later receives the later deliveries; those already sealed stay for the client holding the
  key. When that client is suspended, its uncollected deliveries go back to pending, their
  sealed bytes dropped, and the next ``seal_pending`` seals them for the bank's current key.
- **預金保険機構's look-ups are recorded**, answered or refused, in ``dic_lookups``. An
  inheritance look-up is answered only with both documents (death, heir relation), a death
  the registry records and an heir who is a living person of the registry; any shortfall is
  the same LookupRefused with the same detail, recorded the same way, so the refusal says
  nothing about whether the person died or held accounts.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric import ed25519
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mynumber import audit, envelope
from mynumber.accounts import models as m
from mynumber.accounts.interfaces import (
    INHERITANCE_LOOKUP_FEE_YEN,
    REQUIRED_DOCUMENTS,
    AgencyActorRequired,
    BankKeys,
    CardAuthentication,
    DeliveryState,
    DicLookup,
    DisasterDeclaration,
    DocumentKind,
    HeirDocument,
    InvalidDeclaration,
    LookupKind,
    LookupOutcome,
    LookupRefused,
    NoDisasterDeclaration,
    NumberingAlreadyRequested,
    NumberingRequest,
    RegistrantUnavailable,
    RegistryReader,
    Route,
    RouteNotPermitted,
    SealedNumber,
    UnknownBank,
    deposit_info,
)
from mynumber.accounts.services import AccountsServiceImpl, _digits
from mynumber.codes import local_government_code
from mynumber.db import Databases
from mynumber.registry.interfaces import ResidentRecord, ResidentStatus

log = logging.getLogger("mynumber.accounts.deposit")

CONTEXT = m.CONTEXT
#: The actor the registry records for the number reads that seal a delivery.
SEALING_ACTOR = "accounts:deposit-numbering"
#: At most this many banks in one request (the dataset has a few dozen).
MAX_BANKS = 50
#: A document's reference in the 機構's clerk records (e.g. the 戸籍謄本's 請求番号).
REFERENCE_MAX = 64
#: The one refusal an inheritance look-up without what it needs gets, whatever is missing.
REFUSAL_DETAIL = ("預金保険機構 answers an heir only with the documents of the death and of the "
                  "heir relation, for a death recorded in the registry")


class DepositRegistry(RegistryReader, Protocol):
    """What this part reads of the registry (through its interface)."""

    def number_for_purpose(self, resident_id: int, purpose: str, actor: str) -> str | None: ...

    def municipality_exists(self, code: str) -> bool: ...


class DepositNumberingServiceImpl:
    """預貯金口座付番 and 預金保険機構's look-ups, in the ``accounts`` database."""

    def __init__(self, databases: Databases, registry: DepositRegistry,
                 accounts: AccountsServiceImpl, *, bank_keys: BankKeys | None = None,
                 signer: Callable[[], ed25519.Ed25519PrivateKey] | None = None) -> None:
        self.databases = databases
        self.registry = registry
        self.accounts = accounts
        #: The banks' X25519 keys (the bank-clients part supplies them); None: every
        #: delivery waits (pending) until they are wired.
        self.bank_keys = bank_keys
        #: デジタル庁's signing key, so a bank can tell who sealed the number.
        self.signer = signer

    # -- plumbing ---------------------------------------------------------------------------------
    def clock(self) -> dt.datetime:
        return self.accounts.clock()

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        with self.databases.unit_of_work(CONTEXT) as session:
            yield session

    def _person(self, resident_id: int) -> ResidentRecord | None:
        return self.registry.residents_by_ids([resident_id]).get(resident_id)

    def _bank_codes(self, bank_codes: Sequence[str]) -> list[str]:
        today = self.accounts.today()
        codes: list[str] = []
        for value in bank_codes:
            code = _digits(str(value))
            if not (len(code) == 4 and code.isdigit()):
                raise UnknownBank("bank_codes: each bank is a 4-digit 金融機関コード",
                                  field="bank_codes")
            if self.accounts.directory.bank(code, today) is None:
                raise UnknownBank(f"bank_codes: no bank has the code {code} today",
                                  field="bank_codes")
            if code not in codes:
                codes.append(code)
        if not codes:
            raise UnknownBank("bank_codes: choose at least one bank", field="bank_codes")
        if len(codes) > MAX_BANKS:
            raise UnknownBank(f"bank_codes: at most {MAX_BANKS} banks", field="bank_codes")
        return codes

    # -- consent ---------------------------------------------------------------------------------
    def request_numbering(self, resident_id: int, bank_codes: Sequence[str],
                          route: Route | str, *,
                          authentication: CardAuthentication | None = None,
                          actor: str | None = None) -> list[NumberingRequest]:
        try:
            route = Route(route)
        except ValueError:
            raise RouteNotPermitted("route: portal or bank", field="route") from None
        if not route.needs_card:
            raise RouteNotPermitted("預貯金口座付番 is asked by the person: through the portal "
                                    "or at a bank, with the card", field="route")
        person = self._person(resident_id)
        if person is None or person.status is not ResidentStatus.RESIDENT:
            raise RegistrantUnavailable("resident_id: no current resident with this id",
                                        field="resident_id")
        codes = self._bank_codes(bank_codes)
        who = self.accounts.authorised_actor(resident_id, route, authentication, actor)
        now = self.clock()
        with self._transaction() as session:
            asked = sorted(session.scalars(
                select(m.DepositNumberingRequest.bank_code).where(
                    m.DepositNumberingRequest.resident_id == resident_id,
                    m.DepositNumberingRequest.bank_code.in_(codes))))
            if asked:
                raise self._already(asked)
            self.accounts.spend_authentication(session, authentication, "deposit_number")
            rows = [m.DepositNumberingRequest(
                resident_id=resident_id, bank_code=code, route=route.value, actor=who,
                authentication_id=authentication.authentication_id if authentication else None,
                requested_at=now, state=DeliveryState.PENDING.value) for code in codes]
            session.add_all(rows)
            try:
                session.flush()
            except IntegrityError:
                # A parallel request for one of these banks committed first.
                raise self._already(codes) from None
            audit.record(session, m.AuditEvent, "accounts:deposit_numbering:requested",
                         actor=who, subject=f"resident:{resident_id}", route=route.value,
                         bank_codes=codes)
            ids = [row.id for row in rows]
        for request_id in ids:
            try:
                self._seal(request_id)
            except Exception:
                # Never the number: only the request and the kind of failure.
                log.warning("delivery %s could not be sealed now; it stays pending",
                            request_id, exc_info=False)
        return [r for r in self.numbering_requests(resident_id) if r.id in ids]

    @staticmethod
    def _already(codes: list[str]) -> NumberingAlreadyRequested:
        return NumberingAlreadyRequested(
            "bank_codes: numbering was already requested at " + ", ".join(codes)
            + " (once per bank)", field="bank_codes", bank_codes=codes)

    def numbering_requests(self, resident_id: int) -> list[NumberingRequest]:
        with self._transaction() as session:
            rows = session.scalars(select(m.DepositNumberingRequest).where(
                m.DepositNumberingRequest.resident_id == resident_id)
                .order_by(m.DepositNumberingRequest.id)).all()
            return [_request(row) for row in rows]

    # -- sealing and delivery --------------------------------------------------------------------
    def _seal(self, request_id: int) -> bool:
        """Seal one pending delivery if the bank has a key and the number can be read."""
        with self._transaction() as session:
            row = session.get(m.DepositNumberingRequest, request_id)
            if row is None or row.state != DeliveryState.PENDING.value:
                return False
            bank_code, resident_id = row.bank_code, int(row.resident_id)
            requested_at = row.requested_at
        found = self.bank_keys.sealing_key(bank_code) if self.bank_keys else None
        if found is None or self.signer is None:
            return False
        recipient, key = found
        person = self._person(resident_id)
        number = self.registry.number_for_purpose(
            resident_id, f"deposit_numbering:{bank_code}", SEALING_ACTOR)
        if number is None or person is None:
            return False
        body = {"request_id": request_id, "bank_code": bank_code, "individual_number": number,
                "name": person.name, "name_kana": person.name_kana,
                "birth_date": person.birth_date.isoformat(),
                "requested_at": requested_at.isoformat()}
        try:
            sealed = envelope.seal(body, self.signer(), key, deposit_info(bank_code, request_id))
        except ValueError:
            log.warning("bank %s has an unusable encryption key; delivery %s stays pending",
                        bank_code, request_id)
            return False
        finally:
            del body, number
        now = self.clock()
        with self._transaction() as session:
            claimed = session.execute(
                update(m.DepositNumberingRequest)
                .where(m.DepositNumberingRequest.id == request_id,
                       m.DepositNumberingRequest.state == DeliveryState.PENDING.value)
                .values(state=DeliveryState.SEALED.value, sealed_for=recipient,
                        sealed_number=sealed, sealed_at=now)
            ).rowcount  # type: ignore[attr-defined]
            if claimed:
                audit.record(session, m.AuditEvent, "accounts:deposit_numbering:sealed",
                             actor=SEALING_ACTOR, subject=f"resident:{resident_id}",
                             bank_code=bank_code, request_id=request_id,
                             sealed_for=recipient)
        return bool(claimed)

    def seal_pending(self, limit: int = 1000) -> int:
        with self._transaction() as session:
            ids = list(session.scalars(select(m.DepositNumberingRequest.id).where(
                m.DepositNumberingRequest.state == DeliveryState.PENDING.value)
                .order_by(m.DepositNumberingRequest.id).limit(max(1, limit))))
        return sum(1 for request_id in ids if self._seal(request_id))

    def deliveries(self, bank_code: str, limit: int = 100, *,
                   recipient: str | None = None) -> list[SealedNumber]:
        d = m.DepositNumberingRequest
        with self._transaction() as session:
            rows = session.scalars(select(d).where(
                d.bank_code == bank_code, d.state == DeliveryState.SEALED.value,
                *([d.sealed_for == recipient] if recipient is not None else []))
                .order_by(m.DepositNumberingRequest.id).limit(max(1, min(limit, 1000)))).all()
            return [SealedNumber(int(r.id), r.bank_code, bytes(r.sealed_number or b""),
                                 r.sealed_at or r.requested_at) for r in rows]

    def acknowledge(self, bank_code: str, request_ids: Sequence[int], *,
                    recipient: str | None = None) -> int:
        if not request_ids:
            return 0
        now = self.clock()
        d = m.DepositNumberingRequest
        with self._transaction() as session:
            done = session.execute(
                update(d)
                .where(d.bank_code == bank_code, d.id.in_([int(i) for i in request_ids]),
                       d.state == DeliveryState.SEALED.value,
                       *([d.sealed_for == recipient] if recipient is not None else []))
                .values(state=DeliveryState.DELIVERED.value, sealed_number=None,
                        delivered_at=now)).rowcount  # type: ignore[attr-defined]
            if done:
                audit.record(session, m.AuditEvent, "accounts:deposit_numbering:delivered",
                             actor=f"bank:{bank_code}", subject=f"bank:{bank_code}",
                             count=done)
            return int(done)

    # -- 預金保険機構's look-ups ----------------------------------------------------------------
    def _banks_of(self, session: Session, resident_id: int) -> list[str]:
        return sorted(set(session.scalars(select(m.DepositNumberingRequest.bank_code).where(
            m.DepositNumberingRequest.resident_id == resident_id))))

    @staticmethod
    def _documents(documents: Sequence[HeirDocument]) -> list[dict[str, str]]:
        """The well-formed documents, normalised (anything else is left out)."""
        out: list[dict[str, str]] = []
        for document in documents:
            try:
                kind = DocumentKind(document.kind)
            except ValueError:
                continue
            reference = (document.reference or "").strip()
            if 0 < len(reference) <= REFERENCE_MAX and reference.isprintable():
                out.append({"kind": kind.value, "reference": reference})
        return out

    def _record(self, session: Session, kind: LookupKind, outcome: LookupOutcome, subject: int,
                requester: int, banks: list[str], fee: int, actor: str,
                documents: list[dict[str, str]] | None = None,
                declaration_id: int | None = None) -> DicLookup:
        row = m.DicLookup(kind=kind.value, outcome=outcome.value, subject_resident_id=subject,
                          requester_resident_id=requester, bank_codes=banks,
                          documents=documents or [], fee_yen=fee,
                          declaration_id=declaration_id, actor=actor, at=self.clock())
        session.add(row)
        session.flush()
        audit.record(session, m.AuditEvent, f"accounts:dic_lookup:{outcome.value}", actor=actor,
                     subject=f"resident:{subject}", kind=kind.value, lookup_id=row.id,
                     requester=f"resident:{requester}")
        return _lookup(row)

    def heir_lookup(self, deceased_id: int, heir_id: int, documents: Sequence[HeirDocument],
                    *, actor: str) -> DicLookup:
        actor = (actor or "").strip()[:80]
        if not actor:
            raise AgencyActorRequired("預金保険機構's clerk making the look-up must be named")
        given = self._documents(documents)
        people = self.registry.residents_by_ids([deceased_id, heir_id])
        deceased, heir = people.get(deceased_id), people.get(heir_id)
        # Every shortfall is the same refusal (below): nothing tells the heir which it was.
        answerable = (
            {DocumentKind(d["kind"]) for d in given} >= REQUIRED_DOCUMENTS
            and deceased is not None and deceased.status is ResidentStatus.DECEASED
            and heir is not None and heir.status is not ResidentStatus.DECEASED
            and deceased_id != heir_id
        )
        with self._transaction() as session:
            if answerable:
                return self._record(session, LookupKind.INHERITANCE, LookupOutcome.ANSWERED,
                                    deceased_id, heir_id, self._banks_of(session, deceased_id),
                                    INHERITANCE_LOOKUP_FEE_YEN, actor, given)
            self._record(session, LookupKind.INHERITANCE, LookupOutcome.REFUSED, deceased_id,
                         heir_id, [], 0, actor, given)
        raise LookupRefused(REFUSAL_DETAIL)

    def disaster_lookup(self, resident_id: int, *, actor: str) -> DicLookup:
        person = self._person(resident_id)
        if person is None or person.status is not ResidentStatus.RESIDENT:
            raise RegistrantUnavailable("resident_id: no current resident with this id",
                                        field="resident_id")
        today = self.accounts.today()
        actor = (actor or f"resident:{resident_id}").strip()[:80]
        with self._transaction() as session:
            declaration_id = session.scalars(
                select(m.DisasterDeclaration.id).join(
                    m.DisasterMunicipality,
                    m.DisasterMunicipality.declaration_id == m.DisasterDeclaration.id)
                .where(m.DisasterMunicipality.municipality_code == person.municipality_code,
                       m.DisasterDeclaration.starts_on <= today,
                       m.DisasterDeclaration.ends_on >= today)
                .order_by(m.DisasterDeclaration.id)).first()
            if declaration_id is not None:
                return self._record(session, LookupKind.DISASTER, LookupOutcome.ANSWERED,
                                    resident_id, resident_id,
                                    self._banks_of(session, resident_id), 0, actor,
                                    declaration_id=int(declaration_id))
            self._record(session, LookupKind.DISASTER, LookupOutcome.REFUSED, resident_id,
                         resident_id, [], 0, actor)
        raise NoDisasterDeclaration(
            "no disaster declaration (災害救助法の適用) covers your municipality today: the "
            "free look-up is for residents of the municipalities it names, within its period")

    def lookups_for(self, resident_id: int) -> list[DicLookup]:
        with self._transaction() as session:
            rows = session.scalars(select(m.DicLookup).where(or_(
                m.DicLookup.subject_resident_id == resident_id,
                m.DicLookup.requester_resident_id == resident_id))
                .order_by(m.DicLookup.id.desc())).all()
            return [_lookup(row) for row in rows]

    # -- disaster declarations -------------------------------------------------------------------
    def declare_disaster(self, name: str, municipality_codes: Sequence[str],
                         starts_on: dt.date, ends_on: dt.date, *,
                         actor: str) -> DisasterDeclaration:
        name = (name or "").strip()
        if not name or len(name) > 120 or not name.isprintable():
            raise InvalidDeclaration("name: 1-120 characters (e.g. 令和7年台風第10号)",
                                     field="name")
        if ends_on < starts_on:
            raise InvalidDeclaration("ends_on: not before starts_on", field="ends_on")
        codes: list[str] = []
        for value in municipality_codes:
            try:
                code = local_government_code.validate(str(value).strip())
            except ValueError:
                raise InvalidDeclaration(
                    f"municipality_codes: {value!s:.10} is not a 6-digit 全国地方公共団体コード",
                    field="municipality_codes") from None
            if not self.registry.municipality_exists(code):
                raise InvalidDeclaration(f"municipality_codes: the registry knows no {code}",
                                         field="municipality_codes")
            if code not in codes:
                codes.append(code)
        if not codes:
            raise InvalidDeclaration("municipality_codes: at least one",
                                     field="municipality_codes")
        actor = (actor or "").strip()[:80] or "operator"
        with self._transaction() as session:
            row = m.DisasterDeclaration(name=name, starts_on=starts_on, ends_on=ends_on,
                                        declared_by=actor, declared_at=self.clock())
            session.add(row)
            session.flush()
            session.add_all([m.DisasterMunicipality(declaration_id=row.id, municipality_code=c)
                             for c in codes])
            audit.record(session, m.AuditEvent, "accounts:disaster:declared", actor=actor,
                         subject=f"disaster:{row.id}", municipality_codes=codes,
                         starts_on=starts_on.isoformat(), ends_on=ends_on.isoformat())
            session.flush()
            return self._declaration(session, row)

    @staticmethod
    def _declaration(session: Session, row: m.DisasterDeclaration) -> DisasterDeclaration:
        codes = list(session.scalars(select(m.DisasterMunicipality.municipality_code).where(
            m.DisasterMunicipality.declaration_id == row.id)
            .order_by(m.DisasterMunicipality.municipality_code)))
        return DisasterDeclaration(int(row.id), row.name, codes, row.starts_on, row.ends_on,
                                   row.declared_by, row.declared_at)

    def declarations(self) -> list[DisasterDeclaration]:
        with self._transaction() as session:
            rows = session.scalars(select(m.DisasterDeclaration)
                                   .order_by(m.DisasterDeclaration.id)).all()
            return [self._declaration(session, row) for row in rows]


def _request(row: m.DepositNumberingRequest) -> NumberingRequest:
    return NumberingRequest(int(row.id), int(row.resident_id), row.bank_code, Route(row.route),
                            row.actor, row.requested_at, DeliveryState(row.state), row.sealed_at,
                            row.delivered_at)


def _lookup(row: m.DicLookup) -> DicLookup:
    return DicLookup(int(row.id), LookupKind(row.kind), LookupOutcome(row.outcome),
                     int(row.subject_resident_id), int(row.requester_resident_id),
                     list(row.bank_codes or []), int(row.fee_yen),
                     int(row.declaration_id) if row.declaration_id is not None else None,
                     row.actor, row.at)
