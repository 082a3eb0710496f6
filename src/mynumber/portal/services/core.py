"""The portal service's shared core (see the package docstring)."""

from __future__ import annotations

import datetime as dt
import re
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mynumber import audit
from mynumber.agencies.interfaces import AgenciesService
from mynumber.card.interfaces import CardService
from mynumber.db import Databases, HotConnections, utcnow
from mynumber.errors import NotFound
from mynumber.jpki.interfaces import (
    CertificateKind,
    HolderLink,
    JpkiService,
)
from mynumber.jpki.verify import RelyingPartyVerifier
from mynumber.network.interfaces import (
    AccessLog,
    NetworkService,
    mayor_lookup,
)
from mynumber.portal import models as m
from mynumber.portal.interfaces import (
    PORTAL_AGENCY,
    Account,
    NotAProxy,
    PortalError,
    PortalSession,
    ProxyKind,
)
from mynumber.portal.oauth_models import AccessToken, Grant
from mynumber.settings import Settings

CONTEXT = "portal"
RELYING_PARTY_NAME = "マイナポータル"
RELYING_PARTY_SETTING = "jpki_relying_party_id"
SERIAL = re.compile(r"^[0-9a-f]{32}$")
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
ACTION = re.compile(r"^[a-z][a-z0-9_:.-]{0,39}$")


class AccountNotFound(NotFound):
    code = "portal_account_not_found"
    title = "No such portal account"


@dataclass(frozen=True)
class AccountRef:
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


def clean(value: object, field: str, limit: int, *, multiline: bool = False,
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


def _to_account(row: m.Account) -> Account:
    return Account(row.id, row.display_name, row.municipality_code, row.created_at,
                   row.last_login_at)


class PortalCore:
    """What every subject shares: the collaborators, caches, transactions, activity rows,
    accounts and their linking, the proxy rule and whose data a session acts on."""

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
        self._accounts: dict[int, AccountRef] = {}
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
    def _ref(self, row: m.Account) -> AccountRef:
        ref = AccountRef(row.id, row.address_number, row.agency_code, row.municipality_code)
        self._accounts[row.id] = ref
        return ref

    def _account_ref(self, account_id: int) -> AccountRef:
        ref = self._accounts.get(account_id)
        if ref is None:
            with self._transaction() as session:
                row = session.get(m.Account, account_id)
                if row is None:
                    raise AccountNotFound("no such account", field="account_id")
                ref = self._ref(row)
        return ref

    def _account_by_subject(self, subject: str) -> AccountRef | None:
        with self._transaction() as session:
            row = session.scalar(select(m.Account).where(m.Account.subject == subject))
            return None if row is None else self._ref(row)

    def _link(self, link: HolderLink) -> AccountRef:
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
                                municipality_code=link.municipality_code,
                                display_name=link.display_name[:200],
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

    def _account_for_link(self, link: HolderLink) -> AccountRef:
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

    def _account_for_resident(self, resident_id: int, actor: str) -> AccountRef:
        return self._account_for_link(self._resident_link(resident_id, actor))

    def account(self, account_id: int) -> Account:
        with self._transaction() as session:
            row = session.get(m.Account, account_id)
            if row is None:
                raise AccountNotFound("no such account", field="account_id")
            return _to_account(row)

    # -- the proxy rule ---------------------------------------------------------------------------
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

    def _subject(self, portal_session: PortalSession) -> tuple[AccountRef, ProxyKind | None]:
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

