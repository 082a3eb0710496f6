"""The portal service (マイナポータル): card login and sessions, わたしの情報, やりとり履歴 with
inclusion proofs, お知らせ, the 児童手当 現況届 application, proxies. See interfaces.py.

How the portal knows a person (docs/portal.md):

* It is a JPKI relying party for user-authentication certificates (registered once; its id is
  kept in ``portal_settings`` because the pairwise ids depend on it). A login yields only the
  pairwise id; the account is keyed by it.
* It is also the network agency ``mynaportal``. On the first login (or when counter staff
  register a proxy) JPKI issues a 取得番号 for the holder; the portal enrols with it under a
  fresh 宛名番号 (or the one it already knows the person by) and keeps that 宛名番号 and its own
  機関別符号 on the account. No 個人番号 and no certificate serial is stored.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import secrets
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mynumber import audit
from mynumber.agencies.interfaces import AgenciesService
from mynumber.auth.interfaces import StaffPrincipal
from mynumber.card.interfaces import CardService
from mynumber.db import Databases, HotConnections, HotSQL, utcnow
from mynumber.errors import Conflict, NotFound
from mynumber.jpki import verify as jpki_status
from mynumber.jpki.interfaces import (
    CertificateKind,
    CertificateNotFound,
    CertificateState,
    HolderLink,
    JpkiService,
    VerificationFailed,
)
from mynumber.jpki.verify import CallableStatusSource, Refusal, RelyingPartyVerifier
from mynumber.network.interfaces import (
    AccessLog,
    AccessRecord,
    IndividualNumberInAnswer,
    NetworkService,
    SignedTreeHead,
    contains_individual_number,
    mayor_lookup,
)
from mynumber.portal import merkle
from mynumber.portal import models as m
from mynumber.portal.common import hash_secret
from mynumber.portal.interfaces import (
    CHILD_ALLOWANCE_TASK,
    MUNICIPALITY,
    NOTICE_CLOCK_SKEW,
    PORTAL_AGENCY,
    SELF_INFORMATION_TASK,
    Account,
    Activity,
    ApplicationRecord,
    ApplicationState,
    ChildAllowanceForm,
    HistoryEntry,
    InformationResult,
    InformationSource,
    LoginChallenge,
    LoginFailed,
    NotAProxy,
    Notice,
    NoticeAlreadyAnswered,
    NoticeNotFound,
    NoticeState,
    PortalError,
    PortalService,
    PortalSession,
    ProxyKind,
    ProxyNotFound,
    ProxyRecord,
    RecordNotFound,
    RecordVerification,
    SessionExpired,
    UnknownScope,
)
from mynumber.portal.oauth_models import AccessToken, Grant, ReleaseRecord
from mynumber.registry.interfaces import OutsideJurisdiction
from mynumber.settings import Settings

CONTEXT = "portal"
RELYING_PARTY_NAME = "マイナポータル"
RELYING_PARTY_SETTING = "jpki_relying_party_id"
CHALLENGE_BYTES = 32
CHALLENGE_TTL = dt.timedelta(minutes=5)
MAX_CERTIFICATE_PEM = 16 * 1024
MAX_SIGNATURE = 1024
MAX_TOKEN = 128
CHILD_ALLOWANCE_NOTICE = "child_allowance_status_report"
CHILD_ALLOWANCE_APPLICATION = "child_allowance_status_report"
SERIAL = re.compile(r"^[0-9a-f]{32}$")
NOTICE_KIND = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
BASIC_FOUR = ("name", "name_kana", "birth_date", "sex", "address")
FORM_FILL_SCOPES = ("basic_four", "resident_record", "income", "medical_insurance")
ACTIVITY_LIMIT = 500
ACTION = re.compile(r"^[a-z][a-z0-9_:.-]{0,39}$")
# How long a signed お知らせ's nonce is remembered (a request is accepted up to one
# NOTICE_CLOCK_SKEW either side, so twice that).
NOTICE_NONCE_TTL = 2 * NOTICE_CLOCK_SKEW + dt.timedelta(minutes=1)

SOURCES: tuple[InformationSource, ...] = (
    InformationSource("basic_four", "resident_record", "基本4情報", "Basic four items",
                      MUNICIPALITY),
    InformationSource("resident_record", "resident_record", "住民票関係情報（世帯）",
                      "Resident record (household)", MUNICIPALITY),
    InformationSource("income", "local_tax", "地方税関係情報（所得・住民税）",
                      "Income and local tax", MUNICIPALITY),
    InformationSource("long_term_care", "long_term_care", "介護保険給付等関係情報",
                      "Long-term care insurance", MUNICIPALITY),
    InformationSource("child_allowance", "child_allowance", "児童手当関係情報",
                      "Child allowance", MUNICIPALITY),
    InformationSource("pension", "pension", "年金給付関係情報", "Pension",
                      "japan_pension_service"),
    InformationSource("medical_insurance", "medical_insurance", "医療保険給付関係情報",
                      "Medical insurance", "kyokai_kenpo"),
)
_SOURCES = {s.scope: s for s in SOURCES}

# The self-information API's hot path records its release with one driver-level insert.
_INSERT_ACTIVITY = HotSQL(
    "INSERT INTO activities (at, action, actor_account_id, subject_account_id, proxy_kind, "
    "detail, serial, client_id) VALUES (:at, :action, :actor, :subject, :proxy_kind, :detail, "
    ":serial, :client_id)")


# The self-information API's release record (table of oauth_models, same context).
_INSERT_RELEASE = HotSQL(
    "INSERT INTO oidc_releases (account_id, grant_id, client_id, client_name, scope, "
    "serial, released_at) VALUES (:a, :g, :c, :n, :s, :serial, :at)")


class AccountNotFound(NotFound):
    code = "portal_account_not_found"
    title = "No such portal account"


class ProxyAlreadyRegistered(Conflict):
    code = "proxy_already_registered"
    title = "This proxy is already registered"


class NumberInNotice(PortalError):
    code = "individual_number_in_notice"
    title = "A notice must not contain an individual number"


class NoticeReplayed(Conflict):
    code = "notice_replayed"
    title = "This signed notice was already received"


@dataclass(frozen=True)
class _AccountRef:
    """What the hot paths need of an account (cached per process: only the municipality ever
    changes, and ``_account_for_link`` refreshes the cache when it does)."""

    account_id: int
    address_number: str
    agency_code: str
    municipality_code: str


def _session_key(token: str, session_id: str) -> AESGCM:
    return AESGCM(HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                       info=b"mynumber portal session certificate v1\n" + session_id.encode()
                       ).derive(token.encode()))


def seal_serial(token: str, session_id: str, serial: int) -> bytes:
    """The serial of the certificate that opened a session, sealed under a key derived from
    the session's bearer token. The portal stores no certificate serial (it would link the
    resident across relying parties): only the holder of the token, i.e. the request itself,
    can open this, so the database alone never yields it."""
    nonce = secrets.token_bytes(12)
    return nonce + _session_key(token, session_id).encrypt(
        nonce, serial.to_bytes(20, "big"), session_id.encode())


def open_serial(token: str, session_id: str, sealed: bytes | None) -> int | None:
    if not sealed or len(sealed) <= 12:
        return None
    try:
        plain = _session_key(token, session_id).decrypt(sealed[:12], sealed[12:],
                                                         session_id.encode())
    except InvalidTag:
        return None
    return int.from_bytes(plain, "big")


def _clean(value: object, field: str, limit: int, *, multiline: bool = False,
           required: bool = True) -> str:
    if not isinstance(value, str):
        raise PortalError(f"{field}: must be text", field=field)
    text = value.strip()
    if required and not text:
        raise PortalError(f"{field}: required", field=field)
    if len(text) > limit:
        raise PortalError(f"{field}: at most {limit} characters", field=field)
    if CONTROL.search(text) or (not multiline and "\n" in text):
        raise PortalError(f"{field}: control characters are not allowed", field=field)
    return text


def _age(birth: dt.date, on: dt.date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def _to_account(row: m.Account) -> Account:
    return Account(row.id, row.display_name, row.municipality_code, row.created_at,
                   row.last_login_at)


def _to_notice(row: m.NoticeRow) -> Notice:
    state = (NoticeState.ANSWERED if row.answered_at else
             NoticeState.READ if row.read_at else NoticeState.UNREAD)
    return Notice(row.id, row.sender_id, row.sender_name, row.kind, row.title, row.body,
                  row.created_at, state, row.read_at, row.answered_at, row.application_id)


def _to_application(row: m.ApplicationRow) -> ApplicationRecord:
    return ApplicationRecord(
        row.id, row.kind, row.agency_id, ApplicationState(row.state), row.uses_number,
        tuple(row.documents or ()), dict(row.data or {}), row.submitted_at,
        ProxyKind(row.by_proxy) if row.by_proxy else None, row.declined_serial)


def _to_activity(row: m.ActivityRow) -> Activity:
    return Activity(row.at, row.action, row.actor_account_id, row.subject_account_id,
                    ProxyKind(row.proxy_kind) if row.proxy_kind else None, row.detail)


def _to_proxy(row: m.ProxyRow, principal_name: str = "") -> ProxyRecord:
    return ProxyRecord(row.id, row.principal_account_id, row.proxy_account_id,
                       ProxyKind(row.kind), row.registered_by, row.registered_at,
                       row.valid_until, row.revoked_at, principal_name)


class PortalServiceImpl:
    def __init__(self, databases: Databases, settings: Settings, *, jpki: JpkiService,
                 agencies: AgenciesService, network: NetworkService, access_log: AccessLog,
                 card: CardService) -> None:
        self.databases = databases
        self.settings = settings
        self.jpki = jpki
        self.agencies = agencies
        self.network = network
        self.access_log = access_log
        self.card = card
        # Replaceable (tests move time to end sessions and challenges).
        self.clock: Callable[[], dt.datetime] = utcnow
        self._lock = threading.Lock()
        self._rp_id: int | None = None
        self._verifier: RelyingPartyVerifier | None = None
        self._agency_ready = False
        self._accounts: dict[int, _AccountRef] = {}
        self._mayors: dict[str, str] = {}
        self._agency_names: dict[str, str] = {}
        self._hot = HotConnections(databases, CONTEXT)

    # -- plumbing ---------------------------------------------------------------------------------
    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        with self.databases.unit_of_work(CONTEXT) as session:
            yield session

    @property
    def idle_timeout(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.settings.portal_idle_minutes)

    @property
    def session_lifetime(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.settings.portal_session_minutes)

    @staticmethod
    def _activity(session: Session, now: dt.datetime, action: str, actor: int, subject: int,
                  proxy_kind: ProxyKind | str | None = None, detail: str = "",
                  serial: str | None = None, client_id: str | None = None) -> None:
        session.add(m.ActivityRow(
            at=now, action=action, actor_account_id=actor, subject_account_id=subject,
            proxy_kind=str(proxy_kind) if proxy_kind else None, detail=detail[:500],
            serial=serial, client_id=client_id))

    def relying_party_id(self) -> int:
        """The portal's JPKI relying-party id (registered on first use, then remembered)."""
        if self._rp_id is not None:
            return self._rp_id
        with self._lock:
            if self._rp_id is not None:
                return self._rp_id
            with self._transaction() as session:
                row = session.get(m.PortalSetting, RELYING_PARTY_SETTING)
                known = int(row.value) if row is not None else None
            if known is None:
                party = self.jpki.register_relying_party(RELYING_PARTY_NAME,
                                                         (CertificateKind.AUTH,), system=True)
                try:
                    with self._transaction() as session:
                        session.add(m.PortalSetting(key=RELYING_PARTY_SETTING,
                                                    value=str(party.id)))
                        audit.record(session, m.AuditEvent, "portal:relying_party:register",
                                     actor="system", subject=f"relying_party:{party.id}")
                    known = party.id
                except IntegrityError:  # another process registered first: keep theirs
                    with self._transaction() as session:
                        row = session.get(m.PortalSetting, RELYING_PARTY_SETTING)
                        assert row is not None
                        known = int(row.value)
                    self.jpki.retire_relying_party(party.id, allow_system=True)
            self._rp_id = known
            return known

    def _status(self, serial: int) -> jpki_status.CertificateStatus:
        """Revocation status straight from JPKI's records: a suspension counts at once."""
        try:
            state = self.jpki.state(serial)
        except CertificateNotFound:
            return jpki_status.UNKNOWN
        if state is CertificateState.REVOKED:
            return jpki_status.revoked(self.clock())
        return jpki_status.GOOD  # expiry is the verifier's own check

    def _login_verifier(self) -> RelyingPartyVerifier:
        if self._verifier is None:
            rp = self.relying_party_id()
            certs = x509.load_pem_x509_certificates(
                self.jpki.ca_chain_pem(CertificateKind.AUTH).encode())
            anchors = [c for c in certs if c.subject == c.issuer]
            intermediates = [c for c in certs if c.subject != c.issuer]
            self._verifier = RelyingPartyVerifier(
                anchors, intermediates, CallableStatusSource(self._status), rp, self.jpki,
                now=lambda: self.clock(), on_refused=self._login_refused)
        return self._verifier

    def _login_refused(self, refusal: Refusal) -> None:
        with self._transaction() as session:
            audit.record(session, m.AuditEvent, "portal:login:refused", actor="anonymous",
                         subject="login", reason=refusal.reason)

    def _ensure_agency(self) -> None:
        if not self._agency_ready:
            self.agencies.ensure_registered(PORTAL_AGENCY)
            self._agency_ready = True

    def _agency_name(self, agency_id: str) -> str:
        name = self._agency_names.get(agency_id)
        if name is None:
            name = self._agency_names[agency_id] = self.network.agency(agency_id).name
        return name

    def mayor_of(self, municipality_code: str) -> str:
        """The mayor agency holding the 住民票関係情報 of a municipality (cached)."""
        found = self._mayors.get(municipality_code)
        if found is None:
            found = mayor_lookup(self.network.agencies())(municipality_code)
            if found is None:
                raise PortalError("no municipality agency serves this account's municipality",
                                  field="municipality_code")
            self._mayors[municipality_code] = found
        return found

    # -- accounts ---------------------------------------------------------------------------------
    def _ref(self, row: m.Account) -> _AccountRef:
        ref = _AccountRef(row.id, row.address_number, row.agency_code, row.municipality_code)
        self._accounts[row.id] = ref
        return ref

    def _account_ref(self, account_id: int) -> _AccountRef:
        ref = self._accounts.get(account_id)
        if ref is None:
            with self._transaction() as session:
                row = session.get(m.Account, account_id)
                if row is None:
                    raise AccountNotFound("no such account", field="account_id")
                ref = self._ref(row)
        return ref

    def _account_by_subject(self, subject: str) -> _AccountRef | None:
        with self._transaction() as session:
            row = session.scalar(select(m.Account).where(m.Account.subject == subject))
            return None if row is None else self._ref(row)

    def _link(self, link: HolderLink) -> _AccountRef:
        """利用者登録: enrol at the network with the 取得番号 and create the account."""
        self._ensure_agency()
        # A fresh 宛名番号 (1 in 10^12 to collide; the 取得番号 is one use, so no retry), or
        # the one the portal already knows the person by (e.g. from the network seed).
        used = self.agencies.enrol_with_acquisition_number(
            PORTAL_AGENCY, f"P{secrets.randbelow(10**12):012d}", link.acquisition_number)
        code = self.agencies.agency_code(PORTAL_AGENCY, used)
        now = self.clock()
        try:
            with self._transaction() as session:
                row = m.Account(subject=link.pairwise_id, address_number=used, agency_code=code,
                                municipality_code=link.municipality_code, display_name="",
                                created_at=now)
                session.add(row)
                session.flush()
                audit.record(session, m.AuditEvent, "portal:account:create", actor="system",
                             subject=f"account:{row.id}")
                return self._ref(row)
        except IntegrityError:  # linked concurrently
            found = self._account_by_subject(link.pairwise_id)
            if found is None:
                raise
            return found

    def _resident_link(self, resident_id: int, actor: str) -> HolderLink:
        """The holder link of a current resident (raises the registry's ResidentNotFound).
        JPKI offers no resident-keyed pairwise id without a 取得番号, so one is issued even when
        the account exists; it is simply not used then."""
        link: HolderLink = self.jpki.link_for_resident(self.relying_party_id(), PORTAL_AGENCY,
                                                       resident_id, actor)
        return link

    def _account_for_link(self, link: HolderLink) -> _AccountRef:
        """The account of a linked holder (created when new; its municipality refreshed
        when the registry now names another one)."""
        found = self._account_by_subject(link.pairwise_id)
        if found is None:
            return self._link(link)
        if link.municipality_code and found.municipality_code != link.municipality_code:
            with self._transaction() as session:
                row = session.get(m.Account, found.account_id)
                assert row is not None
                row.municipality_code = link.municipality_code
                audit.record(session, m.AuditEvent, "portal:account:moved", actor="system",
                             subject=f"account:{row.id}")
                found = self._ref(row)
        return found

    def _account_for_resident(self, resident_id: int, actor: str) -> _AccountRef:
        return self._account_for_link(self._resident_link(resident_id, actor))

    def account(self, account_id: int) -> Account:
        with self._transaction() as session:
            row = session.get(m.Account, account_id)
            if row is None:
                raise AccountNotFound("no such account", field="account_id")
            return _to_account(row)

    # -- login and sessions ------------------------------------------------------------------------
    def begin_login(self) -> LoginChallenge:
        now = self.clock()
        challenge_id = secrets.token_urlsafe(24)
        challenge = secrets.token_bytes(CHALLENGE_BYTES)
        with self._transaction() as session:
            session.execute(delete(m.LoginChallenge).where(
                m.LoginChallenge.expires_at < now - dt.timedelta(days=1)))
            session.add(m.LoginChallenge(challenge_id=challenge_id, challenge=challenge,
                                         created_at=now, expires_at=now + CHALLENGE_TTL))
        return LoginChallenge(challenge_id, challenge, now + CHALLENGE_TTL)

    def _consume_challenge(self, challenge_id: str, now: dt.datetime) -> bytes:
        if not isinstance(challenge_id, str) or not 0 < len(challenge_id) <= 64:
            raise LoginFailed("unknown login challenge", reason="unknown_challenge")
        with self._transaction() as session:
            taken = session.execute(  # type: ignore[attr-defined]
                update(m.LoginChallenge)
                .where(m.LoginChallenge.challenge_id == challenge_id,
                       m.LoginChallenge.used_at.is_(None))
                .values(used_at=now)
            ).rowcount
            row = session.execute(
                select(m.LoginChallenge.challenge, m.LoginChallenge.expires_at)
                .where(m.LoginChallenge.challenge_id == challenge_id)
            ).first()
        if row is None:
            raise LoginFailed("unknown login challenge", reason="unknown_challenge")
        if taken != 1:
            raise LoginFailed("the login challenge was already used", reason="challenge_used")
        if row.expires_at <= now:
            raise LoginFailed("the login challenge has expired", reason="challenge_expired")
        return bytes(row.challenge)

    def complete_login(
        self, challenge_id: str, signature: bytes, certificate_pem: str,
        previous_token: str | None = None,
    ) -> PortalSession:
        # Whatever happens next, the terminal's previous session ends first.
        if previous_token:
            self.logout(previous_token)
        now = self.clock()
        challenge = self._consume_challenge(challenge_id, now)
        if not isinstance(signature, bytes) or not 0 < len(signature) <= MAX_SIGNATURE:
            raise LoginFailed("the signature is not acceptable", reason="bad_signature")
        if not isinstance(certificate_pem, str) or len(certificate_pem) > MAX_CERTIFICATE_PEM:
            raise LoginFailed("the certificate is not acceptable",
                              reason="malformed_certificate")
        verifier = self._login_verifier()
        try:
            verification = verifier.verify_authentication(challenge, signature, certificate_pem)
        except VerificationFailed as exc:
            reason = str(exc.extra.get("reason", "refused"))
            raise LoginFailed(f"the card was not accepted: {reason}", reason=reason) from None
        serial = x509.load_pem_x509_certificate(certificate_pem.encode()).serial_number
        ref = self._account_by_subject(verification.pairwise_id)
        if ref is None:
            try:
                link = self.jpki.link_for_certificate(self.relying_party_id(), PORTAL_AGENCY,
                                                      serial)
            except VerificationFailed:
                raise LoginFailed("the card was not accepted: revoked", reason="revoked") \
                    from None
            ref = self._link(link)
        return self._start_session(ref.account_id, now, serial)

    def _start_session(self, account_id: int, now: dt.datetime,
                       certificate_serial: int) -> PortalSession:
        token = secrets.token_urlsafe(32)
        session_id = secrets.token_urlsafe(12)
        row = m.PortalSessionRow(
            session_id=session_id, token_hash=hash_secret(token),
            account_id=account_id, acting_for=account_id, proxy_kind=None,
            csrf_token=secrets.token_urlsafe(32), started_at=now, last_seen=now,
            expires_at=now + self.session_lifetime,
            certificate_seal=seal_serial(token, session_id, certificate_serial))
        with self._transaction() as session:
            session.add(row)
            session.execute(update(m.Account).where(m.Account.id == account_id)
                            .values(last_login_at=now))
            self._activity(session, now, "login", account_id, account_id)
        return self._to_session(row, token, now)

    def _to_session(self, row: m.PortalSessionRow, token: str, now: dt.datetime) -> PortalSession:
        return PortalSession(
            token=token, session_id=row.session_id, account_id=row.account_id,
            acting_for=row.acting_for,
            proxy_kind=ProxyKind(row.proxy_kind) if row.proxy_kind else None,
            started_at=row.started_at, expires_at=row.expires_at,
            idle_until=min(now + self.idle_timeout, row.expires_at), csrf_token=row.csrf_token)

    def session(self, token: str) -> PortalSession:
        if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN:
            raise SessionExpired("log in again")
        now = self.clock()
        ended: str | None = None
        with self._transaction() as session:
            row = session.scalar(select(m.PortalSessionRow).where(
                m.PortalSessionRow.token_hash == hash_secret(token)))
            if row is None or row.ended_at is not None:
                ended = "ended"
            elif now >= row.expires_at:
                ended = row.end_reason = "expired"
                row.ended_at = now
            elif now >= row.last_seen + self.idle_timeout:
                ended = row.end_reason = "idle"
                row.ended_at = now
            elif not self._card_still_good(token, row):
                ended = row.end_reason = "card_revoked"
                row.ended_at = now
            else:
                row.last_seen = now
                result = self._to_session(row, token, now)
        if ended is not None:  # raised after the commit, so the end is stored
            raise SessionExpired("the session has ended; log in again", reason=ended)
        return result

    def _card_still_good(self, token: str, row: m.PortalSessionRow) -> bool:
        """Whether the auth certificate that opened the session is still good, asked of JPKI
        now (nothing cached beyond this request): a card reported lost or otherwise revoked
        ends every session it opened at the next look-up. A session without a sealed
        certificate (opened before this check existed) is not trusted either."""
        serial = open_serial(token, row.session_id, row.certificate_seal)
        if serial is None:
            return False
        try:
            return bool(self.jpki.state(serial) is CertificateState.GOOD)
        except CertificateNotFound:
            return False

    def logout(self, token: str) -> None:
        if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN:
            return
        now = self.clock()
        with self._transaction() as session:
            row = session.scalar(select(m.PortalSessionRow).where(
                m.PortalSessionRow.token_hash == hash_secret(token)))
            if row is not None and row.ended_at is None:
                row.ended_at = now
                row.end_reason = "logout"
                self._activity(session, now, "logout", row.account_id, row.account_id)

    @staticmethod
    def _live_kinds(session: Session, proxy_account: int, principal: int,
                    now: dt.datetime) -> list[ProxyKind]:
        """The one rule of a live proxy relation: registered, not revoked, not past
        ``valid_until`` (oldest registration first). The OIDC token look-up states the same
        rule in SQL."""
        return [ProxyKind(row.kind) for row in session.scalars(select(m.ProxyRow).where(
            m.ProxyRow.proxy_account_id == proxy_account,
            m.ProxyRow.principal_account_id == principal,
            m.ProxyRow.revoked_at.is_(None),
        ).order_by(m.ProxyRow.id))
            if row.valid_until is None or row.valid_until >= now.date()]

    def live_proxy_kind(self, session: Session, proxy_account: int, principal: int,
                        now: dt.datetime) -> ProxyKind | None:
        kinds = self._live_kinds(session, proxy_account, principal, now)
        return kinds[0] if kinds else None

    def act_for(self, token: str, principal_account_id: int | None) -> PortalSession:
        current = self.session(token)
        now = self.clock()
        target, kind = current.account_id, None
        with self._transaction() as session:
            if principal_account_id is not None and principal_account_id != current.account_id:
                kind = self.live_proxy_kind(session, current.account_id, principal_account_id,
                                             now)
                if kind is None:
                    raise NotAProxy("you are not a registered proxy of this person",
                                    field="principal_account_id")
                target = principal_account_id
            session.execute(update(m.PortalSessionRow)
                            .where(m.PortalSessionRow.session_id == current.session_id)
                            .values(acting_for=target, proxy_kind=kind.value if kind else None))
            self._activity(session, now, "act_for", current.account_id, target, kind)
        return dataclasses.replace(current, acting_for=target, proxy_kind=kind)

    def _subject(self, portal_session: PortalSession) -> tuple[_AccountRef, ProxyKind | None]:
        """Whose data the session acts on; a proxy relation is re-checked on every action (it
        may have been revoked or have expired since the switch). When it is gone, the API
        grants the proxy gave under it are revoked too."""
        if portal_session.acting_for == portal_session.account_id:
            return self._account_ref(portal_session.account_id), None
        now = self.clock()
        with self._transaction() as session:
            kind = self.live_proxy_kind(session, portal_session.account_id,
                                         portal_session.acting_for, now)
            if kind is None:
                self._end_proxy_grants(session, portal_session.account_id,
                                       portal_session.acting_for, now)
        if kind is None:
            raise NotAProxy("you are no longer a registered proxy of this person")
        return self._account_ref(portal_session.acting_for), kind

    def acting_subject(self, session: PortalSession) -> tuple[int, ProxyKind | None]:
        """Whom the session acts for now, re-checked: (account id, proxy kind or None).
        SessionExpired when the session has ended; NotAProxy when the proxy relation is gone."""
        if not isinstance(session, PortalSession):
            raise SessionExpired("log in again")
        now = self.clock()
        with self._transaction() as tx:
            row = tx.scalar(select(m.PortalSessionRow).where(
                m.PortalSessionRow.session_id == session.session_id))
            live = (row is not None and row.ended_at is None and now < row.expires_at
                    and now < row.last_seen + self.idle_timeout
                    and row.account_id == session.account_id)
            if live and row is not None and not self._card_still_good(session.token, row):
                live = False
                row.ended_at, row.end_reason = now, "card_revoked"
        if not live:
            raise SessionExpired("the session has ended; log in again", reason="ended")
        ref, kind = self._subject(session)
        return ref.account_id, kind

    def record_activity(self, session: PortalSession, action: str, detail: str = "") -> None:
        """Record an action done in the session (by ``account_id`` for ``acting_for``, with the
        re-checked proxy kind)."""
        if not isinstance(action, str) or not ACTION.match(action):
            raise PortalError("action: a short lower-case name", field="action")
        if not isinstance(detail, str):
            raise PortalError("detail: must be text", field="detail")
        ref, kind = self._subject(session)
        with self._transaction() as tx:
            self._activity(tx, self.clock(), action, session.account_id, ref.account_id, kind,
                           CONTROL.sub(" ", detail))

    # -- わたしの情報 ------------------------------------------------------------------------------
    def sources(self) -> Sequence[InformationSource]:
        return SOURCES

    @staticmethod
    def _source(scope: str) -> InformationSource:
        source = _SOURCES.get(scope) if isinstance(scope, str) else None
        if source is None:
            raise UnknownScope("no such information item", field="scope")
        return source

    def _fetch(self, ref: _AccountRef, source: InformationSource) -> InformationResult:
        self._ensure_agency()
        provider = (self.mayor_of(ref.municipality_code) if source.provider == MUNICIPALITY
                    else source.provider)
        result = self.agencies.query(PORTAL_AGENCY, ref.address_number, SELF_INFORMATION_TASK,
                                     provider, source.item_code)
        data = result.data
        if data is not None and contains_individual_number(data):
            # Defence in depth (the intermediate servers refuse such a 副本 already): whatever
            # asked (a page, the JSON API, a relying party), the number is never passed on.
            with self._transaction() as tx:
                audit.record(tx, m.AuditEvent, "portal:information:withheld", actor="system",
                             subject=f"account:{ref.account_id}", scope=source.scope,
                             provider=provider, serial=result.serial,
                             reason="individual_number_in_answer")
            raise IndividualNumberInAnswer(
                "the information contained an individual number and was withheld",
                serial=result.serial)
        if data is not None and source.scope == "basic_four":
            data = {k: data[k] for k in BASIC_FOUR if k in data}
        return InformationResult(source.scope, source.item_code, provider,
                                 self._agency_name(provider), result.outcome.value, data,
                                 result.serial, self.clock())

    def my_information(self, session: PortalSession, scope: str) -> InformationResult:
        source = self._source(scope)
        ref, kind = self._subject(session)
        result = self._fetch(ref, source)
        name = (result.data or {}).get("name") if source.item_code == "resident_record" else None
        with self._transaction() as tx:
            self._activity(tx, result.fetched_at, "view_information", session.account_id,
                           ref.account_id, kind, scope, serial=result.serial)
            if isinstance(name, str) and name:
                tx.execute(update(m.Account).where(m.Account.id == ref.account_id,
                                                   m.Account.display_name != name[:200])
                           .values(display_name=name[:200]))
        return result

    def fetch_for_client(self, account_id: int, scope: str, client_id: str,
                         client_name: str, *, grant_id: int | None = None
                         ) -> InformationResult:
        source = self._source(scope)
        ref = self._account_ref(account_id)
        result = self._fetch(ref, source)
        with self._hot.connection() as raw:  # one transaction: the activity and the release
            self._hot.run(raw, _INSERT_ACTIVITY, {
                "at": result.fetched_at, "action": "release", "actor": account_id,
                "subject": account_id, "proxy_kind": None,
                "detail": f"{scope} -> {client_name}"[:500], "serial": result.serial,
                "client_id": client_id[:64],
            })
            if grant_id is not None and result.data is not None:
                self._hot.run(raw, _INSERT_RELEASE, {
                    "a": account_id, "g": grant_id, "c": client_id, "n": client_name,
                    "s": scope, "serial": result.serial, "at": result.fetched_at})
        return result

    # -- やりとり履歴 ------------------------------------------------------------------------------
    def _released(self, account_id: int) -> dict[str, list[str]]:
        """Which clients each serial was released to (the self-information API's release
        records live in this context's database, so they are read here, newest first)."""
        out: dict[str, list[str]] = {}
        with self._transaction() as tx:
            for serial, client_name in tx.execute(
                    select(ReleaseRecord.serial, ReleaseRecord.client_name)
                    .where(ReleaseRecord.account_id == account_id)
                    .order_by(ReleaseRecord.id.desc())):
                names = out.setdefault(serial, [])
                if client_name not in names:
                    names.append(client_name)
        return out

    def history(self, session: PortalSession) -> list[HistoryEntry]:
        ref, kind = self._subject(session)
        records = self.network.access_records(PORTAL_AGENCY, ref.agency_code)
        released = self._released(ref.account_id)
        now = self.clock()
        with self._transaction() as tx:
            proxied = {serial: proxy for serial, proxy in tx.execute(
                select(m.ActivityRow.serial, m.ActivityRow.proxy_kind).where(
                    m.ActivityRow.subject_account_id == ref.account_id,
                    m.ActivityRow.serial.is_not(None),
                    m.ActivityRow.proxy_kind.is_not(None)))}
            self._activity(tx, now, "view_history", session.account_id, ref.account_id, kind)
        return [HistoryEntry(r, tuple(released.get(r.serial, ())), proxied.get(r.serial))
                for r in records]

    def verify_record(self, session: PortalSession, serial: str) -> RecordVerification:
        if not isinstance(serial, str) or not SERIAL.match(serial):
            raise RecordNotFound("no such record in your history", field="serial")
        ref, kind = self._subject(session)
        record = next((r for r in self.network.access_records(PORTAL_AGENCY, ref.agency_code)
                       if r.serial == serial), None)
        if record is None:
            raise RecordNotFound("no such record in your history", field="serial")
        result = self._check_inclusion(serial, record, self.access_log.latest_head())
        with self._transaction() as tx:
            self._activity(tx, self.clock(), "verify_record", session.account_id,
                           ref.account_id, kind,
                           f"{serial}: {'verified' if result.verified else result.reason}")
        return result

    def _check_inclusion(self, serial: str, record: AccessRecord,
                         head: SignedTreeHead) -> RecordVerification:
        index = record.log_index

        def answer(verified: bool, proof: tuple[str, ...] = (), reason: str = "") -> \
                RecordVerification:
            return RecordVerification(serial, verified, index, head.size, head.root_hash.hex(),
                                      head.checkpoint, proof, reason)

        if index is None or index >= head.size:
            return answer(False, reason="not yet integrated into the signed log")
        proof = self.access_log.inclusion_proof(index, head.size)
        path = tuple(proof.path)
        hex_path = tuple(p.hex() for p in path)
        entries = self.access_log.entries(index, index + 1)
        if not entries or entries[0].index != index:
            return answer(False, hex_path, "the log has no entry at the record's index")
        entry = entries[0].entry
        try:
            fields = json.loads(entry)
        except ValueError:
            return answer(False, hex_path, "the log entry is not readable")
        if (not isinstance(fields, dict) or fields.get("serial") != serial
                or fields.get("requester") != record.requester_id
                or fields.get("outcome") != record.outcome.value):
            return answer(False, hex_path, "the log entry describes another exchange")
        if proof.leaf_index != index or proof.tree_size != head.size or not \
                merkle.verify_inclusion(entry, index, head.size, path, head.root_hash):
            return answer(False, hex_path,
                          "the inclusion proof does not lead to the signed root hash")
        public_key = getattr(self.access_log, "public_key", None)
        key_name = getattr(self.access_log, "key_name", None)
        if not isinstance(public_key, bytes) or not public_key or \
                not isinstance(key_name, str) or not key_name:
            return answer(False, hex_path, "no log key to check the signed tree head")
        if not merkle.checkpoint_matches(head.checkpoint, key_name, public_key, head.size,
                                         head.root_hash):
            return answer(False, hex_path, "the checkpoint's signature or body does not match")
        return answer(True, hex_path)

    def activities(self, session: PortalSession) -> list[Activity]:
        ref, _ = self._subject(session)
        with self._transaction() as tx:
            rows = tx.scalars(select(m.ActivityRow)
                              .where(m.ActivityRow.subject_account_id == ref.account_id)
                              .order_by(m.ActivityRow.at.desc(), m.ActivityRow.id.desc())
                              .limit(ACTIVITY_LIMIT)).all()
            return [_to_activity(r) for r in rows]

    # -- お知らせ ----------------------------------------------------------------------------------
    def send_notice(
        self, agency_id: str, agency_code: str, kind: str, title: str, body: str, *,
        nonce: str | None = None,
    ) -> Notice:
        """With ``nonce`` (a signed request's), the nonce is stored with the notice in one
        transaction: a second request with it is NoticeReplayed."""
        if nonce is not None:
            nonce = _clean(nonce, "nonce", 64)
        agency_id = _clean(agency_id, "agency_id", 64)
        agency_code = _clean(agency_code, "agency_code", 64)
        if not isinstance(kind, str) or not NOTICE_KIND.match(kind):
            raise PortalError("kind: lower-case letters, digits and _", field="kind")
        title = _clean(title, "title", 200)
        body = _clean(body, "body", 4000, multiline=True)
        if contains_individual_number([title, body]):
            # The portal carries no 個人番号 to a resident, whoever sends it.
            raise NumberInNotice("title/body: must not contain an individual number",
                                 field="body")
        portal_agency, code = self.network.portal_code(agency_id, agency_code)
        if portal_agency != PORTAL_AGENCY:
            raise PortalError("the network routes notices to another portal",
                              field="agency_id")
        sender = self._agency_name(agency_id)
        now = self.clock()
        with self._transaction() as session:
            if nonce is not None:
                self._claim_nonce(session, agency_id, nonce, now)
            row = m.NoticeRow(recipient_code=code, sender_id=agency_id, sender_name=sender,
                              kind=kind, title=title, body=body, created_at=now)
            session.add(row)
            session.flush()
            audit.record(session, m.AuditEvent, "portal:notice:receive",
                         actor=f"agency:{agency_id}", subject=f"notice:{row.id}", kind=kind)
            return _to_notice(row)

    @staticmethod
    def _claim_nonce(session: Session, agency_id: str, nonce: str, now: dt.datetime) -> None:
        session.execute(delete(m.NoticeNonce).where(
            m.NoticeNonce.created_at < now - NOTICE_NONCE_TTL))
        seen = session.scalar(select(m.NoticeNonce.id).where(
            m.NoticeNonce.agency_id == agency_id, m.NoticeNonce.nonce == nonce))
        if seen is not None:
            raise NoticeReplayed("this signed notice was already received", field="nonce")
        session.add(m.NoticeNonce(agency_id=agency_id, nonce=nonce, created_at=now))
        try:
            session.flush()
        except IntegrityError:  # the same request, concurrently: the whole send rolls back
            raise NoticeReplayed("this signed notice was already received",
                                 field="nonce") from None

    def notices(self, session: PortalSession) -> list[Notice]:
        ref, _ = self._subject(session)
        with self._transaction() as tx:
            rows = tx.scalars(select(m.NoticeRow)
                              .where(m.NoticeRow.recipient_code == ref.agency_code)
                              .order_by(m.NoticeRow.created_at.desc(), m.NoticeRow.id.desc())
                              ).all()
            return [_to_notice(r) for r in rows]

    @staticmethod
    def _notice_row(tx: Session, ref: _AccountRef, notice_id: int) -> m.NoticeRow:
        row = tx.get(m.NoticeRow, notice_id) if isinstance(notice_id, int) else None
        if row is None or row.recipient_code != ref.agency_code:
            raise NoticeNotFound("no such notice", field="notice_id")
        return row

    def read_notice(self, session: PortalSession, notice_id: int) -> Notice:
        ref, kind = self._subject(session)
        now = self.clock()
        with self._transaction() as tx:
            row = self._notice_row(tx, ref, notice_id)
            if row.read_at is None:
                row.read_at = now
                self._activity(tx, now, "read_notice", session.account_id, ref.account_id,
                               kind, f"notice {row.id}: {row.title}")
            return _to_notice(row)

    def _open_notice(self, ref: _AccountRef, notice_id: int) -> Notice:
        with self._transaction() as tx:
            row = self._notice_row(tx, ref, notice_id)
            notice = _to_notice(row)
        if notice.answered_at is not None:
            raise NoticeAlreadyAnswered("this notice is already answered", field="notice_id")
        if notice.kind != CHILD_ALLOWANCE_NOTICE:
            raise PortalError("this notice asks for no 現況届", field="notice_id")
        return notice

    # -- the 児童手当 現況届 -----------------------------------------------------------------------
    def child_allowance_form(self, session: PortalSession, notice_id: int,
                             use_number: bool) -> ChildAllowanceForm:
        ref, _ = self._subject(session)
        self._open_notice(ref, notice_id)
        if not use_number:
            return ChildAllowanceForm("", "", None, None, (), ())
        got = {scope: self.my_information(session, scope) for scope in FORM_FILL_SCOPES}
        basic = got["basic_four"].data or {}
        household = (got["resident_record"].data or {}).get("household") or []
        income = got["income"].data or {}
        insurance = got["medical_insurance"].data or {}
        today = self.clock().date()
        children: list[dict[str, str]] = []
        for member in household if isinstance(household, list) else []:
            if not isinstance(member, dict) or member.get("relationship") != "子":
                continue
            try:
                birth = dt.date.fromisoformat(str(member.get("birth_date")))
            except ValueError:
                continue
            if _age(birth, today) < 18:
                children.append({"name": str(member.get("name", "")),
                                 "birth_date": birth.isoformat()})
        taxable = income.get("taxable_income")
        status = insurance.get("status")
        return ChildAllowanceForm(
            applicant_name=str(basic.get("name", "")), address=str(basic.get("address", "")),
            taxable_income=taxable if isinstance(taxable, int) else None,
            insurance_status=status if isinstance(status, str) else None,
            children=tuple(children),
            prefilled_serials=tuple(got[s].serial for s in FORM_FILL_SCOPES))

    @staticmethod
    def _form_data(form: ChildAllowanceForm) -> dict[str, Any]:
        if not isinstance(form, ChildAllowanceForm):
            raise PortalError("form: not a 現況届", field="form")
        children = []
        if len(form.children) > 20:
            raise PortalError("children: at most 20", field="children")
        for child in form.children:
            if not isinstance(child, dict):
                raise PortalError("children: each needs a name and a birth date",
                                  field="children")
            children.append({"name": _clean(child.get("name", ""), "children.name", 200,
                                            required=False),
                             "birth_date": _clean(child.get("birth_date", ""),
                                                  "children.birth_date", 10, required=False)})
        income = form.taxable_income
        if income is not None and (not isinstance(income, int) or not 0 <= income < 10**12):
            raise PortalError("taxable_income: a non-negative amount", field="taxable_income")
        serials = [s for s in form.prefilled_serials if isinstance(s, str) and SERIAL.match(s)]
        return {
            "applicant_name": _clean(form.applicant_name, "applicant_name", 200,
                                     required=False),
            "address": _clean(form.address, "address", 300, required=False),
            "taxable_income": income,
            "insurance_status": _clean(form.insurance_status or "", "insurance_status", 64,
                                       required=False) or None,
            "children": children,
            "prefilled_serials": serials[:10],
        }

    def submit_child_allowance(
        self, session: PortalSession, notice_id: int, use_number: bool,
        form: ChildAllowanceForm, documents: Sequence[str],
    ) -> ApplicationRecord:
        ref, kind = self._subject(session)
        self._open_notice(ref, notice_id)
        data = self._form_data(form)
        attached = [d.strip()[:100] for d in documents if isinstance(d, str) and d.strip()]
        if len(attached) > 20:
            raise PortalError("documents: at most 20", field="documents")
        mayor = self.mayor_of(ref.municipality_code)
        if not use_number and not attached:
            raise PortalError("documents: without the number, name the documents you "
                              "attach (the application proceeds on them)", field="documents")
        application_ref = f"MP-{secrets.token_hex(12)}"
        now = self.clock()
        # Claim the notice first: of two submissions only one gets past here, so the core
        # records at most one declined linkage for it.
        with self._transaction() as tx:
            notice = self._notice_row(tx, ref, notice_id)
            taken = tx.execute(  # type: ignore[attr-defined]
                update(m.NoticeRow)
                .where(m.NoticeRow.id == notice.id, m.NoticeRow.answered_at.is_(None))
                .values(answered_at=now)
            ).rowcount
        if taken != 1:
            raise NoticeAlreadyAnswered("this notice is already answered", field="notice_id")
        try:
            declined_serial = None
            if not use_number:
                declined = self.agencies.record_declined(mayor, CHILD_ALLOWANCE_TASK,
                                                         application_ref, attached)
                declined_serial = declined.serial
            with self._transaction() as tx:
                notice = self._notice_row(tx, ref, notice_id)
                row = m.ApplicationRow(
                    account_id=ref.account_id, actor_account_id=session.account_id,
                    notice_id=notice.id, kind=CHILD_ALLOWANCE_APPLICATION, agency_id=mayor,
                    state=ApplicationState.SUBMITTED.value, application_ref=application_ref,
                    uses_number=bool(use_number), documents=attached, data=data,
                    submitted_at=now, by_proxy=kind.value if kind else None,
                    declined_serial=declined_serial)
                tx.add(row)
                try:
                    tx.flush()
                except IntegrityError:  # another application already answers it
                    raise NoticeAlreadyAnswered("this notice is already answered",
                                                field="notice_id") from None
                notice.answered_at = now
                notice.read_at = notice.read_at or now
                notice.application_id = row.id
                self._activity(tx, now, "submit_application", session.account_id,
                               ref.account_id, kind,
                               f"{CHILD_ALLOWANCE_APPLICATION} #{row.id} to {mayor} "
                               f"({'with the number' if use_number else 'documents, no number'})")
                return _to_application(row)
        except BaseException:
            # Nothing half-written: the claim is given back unless an application answers it.
            with self._transaction() as tx:
                tx.execute(update(m.NoticeRow).where(
                    m.NoticeRow.id == notice_id, m.NoticeRow.application_id.is_(None),
                    m.NoticeRow.answered_at.is_not(None)).values(answered_at=None))
            raise

    def applications(self, session: PortalSession) -> list[ApplicationRecord]:
        ref, _ = self._subject(session)
        with self._transaction() as tx:
            rows = tx.scalars(select(m.ApplicationRow)
                              .where(m.ApplicationRow.account_id == ref.account_id)
                              .order_by(m.ApplicationRow.id.desc())).all()
            return [_to_application(r) for r in rows]

    # -- proxies -----------------------------------------------------------------------------------
    def register_proxy(
        self, staff_actor: str, principal_resident_id: int, proxy_resident_id: int,
        kind: ProxyKind, valid_until: dt.date | None = None, *,
        principal_name: str | None = None,
    ) -> ProxyRecord:
        actor = _clean(staff_actor, "staff_actor", 80)
        if principal_resident_id == proxy_resident_id:
            raise PortalError("a person cannot be their own proxy", field="proxy_resident_id")
        try:
            kind = ProxyKind(kind)
        except ValueError:
            raise PortalError("kind: legal_representative or adult_guardian",
                              field="kind") from None
        now = self.clock()
        if valid_until is not None and valid_until < now.date():
            raise PortalError("valid_until: already past", field="valid_until")
        # Both people are checked (current residents) before anything is created.
        principal_link = self._resident_link(principal_resident_id, actor)
        proxy_link = self._resident_link(proxy_resident_id, actor)
        if principal_link.pairwise_id == proxy_link.pairwise_id:
            raise PortalError("a person cannot be their own proxy", field="proxy_resident_id")
        known_principal = self._account_by_subject(principal_link.pairwise_id)
        known_proxy = self._account_by_subject(proxy_link.pairwise_id)
        if known_principal is not None and known_proxy is not None:
            with self._transaction() as tx:
                if self.live_proxy_kind(tx, known_proxy.account_id,
                                         known_principal.account_id, now) is kind:
                    raise ProxyAlreadyRegistered(
                        "this proxy is already registered for the person")
        principal = self._account_for_link(principal_link)
        proxy = self._account_for_link(proxy_link)
        with self._transaction() as tx:
            if self.live_proxy_kind(tx, proxy.account_id, principal.account_id, now) is kind:
                raise ProxyAlreadyRegistered("this proxy is already registered for the person")
            row = m.ProxyRow(principal_account_id=principal.account_id,
                             proxy_account_id=proxy.account_id, kind=kind.value,
                             registered_by=actor, registered_at=now, valid_until=valid_until)
            tx.add(row)
            account = tx.get(m.Account, principal.account_id)
            assert account is not None
            if principal_name and not account.display_name:
                account.display_name = principal_name.strip()[:200]
            tx.flush()
            audit.record(tx, m.AuditEvent, "portal:proxy:register", actor=actor,
                         subject=f"proxy:{row.id}", kind=kind.value,
                         principal=principal.account_id, proxy=proxy.account_id)
            return _to_proxy(row, account.display_name)

    def proxy(self, proxy_id: int) -> ProxyRecord:
        with self._transaction() as tx:
            row = tx.get(m.ProxyRow, proxy_id)
            if row is None:
                raise ProxyNotFound("no such proxy registration", field="proxy_id")
            account = tx.get(m.Account, row.principal_account_id)
            return _to_proxy(row, account.display_name if account else "")

    def check_staff_jurisdiction(self, staff: StaffPrincipal, proxy_id: int) -> None:
        """Only staff of the principal's municipality (or a system action) may touch a proxy
        registration (OutsideJurisdiction, the registry's own 403)."""
        record = self.proxy(proxy_id)
        municipality = self.account(record.principal_account_id).municipality_code
        if staff.id != 0 and staff.municipality_code != municipality:
            raise OutsideJurisdiction("this person is registered in another municipality")

    def revoke_proxy(self, staff_actor: str, proxy_id: int) -> ProxyRecord:
        actor = _clean(staff_actor, "staff_actor", 80)
        now = self.clock()
        with self._transaction() as tx:
            row = tx.get(m.ProxyRow, proxy_id)
            if row is None:
                raise ProxyNotFound("no such proxy registration", field="proxy_id")
            if row.revoked_at is None:
                row.revoked_at = now
                row.revoked_by = actor
                # Sessions acting under this registration fall back to the proxy's own data.
                tx.execute(update(m.PortalSessionRow).where(
                    m.PortalSessionRow.account_id == row.proxy_account_id,
                    m.PortalSessionRow.acting_for == row.principal_account_id,
                    m.PortalSessionRow.ended_at.is_(None),
                ).values(acting_for=row.proxy_account_id, proxy_kind=None))
                tx.flush()
                # API grants the proxy gave under the relation end with it.
                grants = self._end_proxy_grants(tx, row.proxy_account_id,
                                                row.principal_account_id, now)
                audit.record(tx, m.AuditEvent, "portal:proxy:revoke", actor=actor,
                             subject=f"proxy:{row.id}", grants_revoked=grants)
            account = tx.get(m.Account, row.principal_account_id)
            return _to_proxy(row, account.display_name if account else "")

    def _end_proxy_grants(self, tx: Session, proxy_account: int, principal: int,
                          now: dt.datetime) -> int:
        """Revoke the live API grants ``proxy_account`` gave for ``principal`` under a proxy
        relation that no longer holds (revoked, or past ``valid_until``), with their tokens.
        Grants under another still-live relation of the pair (another kind) stay."""
        live = {k.value for k in self._live_kinds(tx, proxy_account, principal, now)}
        ended = [g for g in tx.scalars(select(Grant).where(
            Grant.account_id == principal, Grant.actor_account_id == proxy_account,
            Grant.actor_account_id != Grant.account_id, Grant.revoked_at.is_(None)))
            if g.proxy_kind is None or g.proxy_kind not in live]
        if not ended:
            return 0
        ids = [g.id for g in ended]
        # ``revoked_by`` names an account; counter staff are none, so it stays empty here.
        tx.execute(update(Grant).where(Grant.id.in_(ids), Grant.revoked_at.is_(None))
                   .values(revoked_at=now))
        tx.execute(update(AccessToken).where(AccessToken.grant_id.in_(ids),
                                             AccessToken.revoked_at.is_(None))
                   .values(revoked_at=now))
        for grant in ended:
            audit.record(tx, m.AuditEvent, "portal:grant:revoke", actor="system",
                         subject=f"account:{principal}", grant_id=grant.id,
                         client_id=grant.client_id, reason="proxy_relation_ended")
        return len(ended)

    def expire_proxies(self) -> int:
        """Revoke the API grants given under proxy relations past their ``valid_until`` (the
        same rule the re-check on every action applies); the number of grants revoked."""
        now = self.clock()
        with self._transaction() as tx:
            pairs = {(int(proxy), int(principal)) for proxy, principal in tx.execute(
                select(m.ProxyRow.proxy_account_id, m.ProxyRow.principal_account_id).where(
                    m.ProxyRow.revoked_at.is_(None), m.ProxyRow.valid_until.is_not(None),
                    m.ProxyRow.valid_until < now.date()))}
            return sum(self._end_proxy_grants(tx, proxy, principal, now)
                       for proxy, principal in sorted(pairs))

    def principals(self, session: PortalSession) -> list[ProxyRecord]:
        today = self.clock().date()
        with self._transaction() as tx:
            rows = tx.execute(
                select(m.ProxyRow, m.Account.display_name)
                .join(m.Account, m.Account.id == m.ProxyRow.principal_account_id)
                .where(m.ProxyRow.proxy_account_id == session.account_id,
                       m.ProxyRow.revoked_at.is_(None))
                .order_by(m.ProxyRow.id)).all()
            return [_to_proxy(row, name) for row, name in rows
                    if row.valid_until is None or row.valid_until >= today]


_contract: type[PortalService] = PortalServiceImpl
