"""The institution's side of オンライン資格確認: terminals, the card at the reception, the
資格確認書, consent per visit and the views it allows; and the resident's side (初回登録, the card's
status, やりとり履歴).

Decisions, in one place:

- **Terminals** (資格確認端末) are registered with their own X.509 certificate (an Ed25519 or
  ECDSA P-256 key, valid at registration; the registration by the operator is the act of
  trust, the certificate need not chain anywhere). A request is accepted by
  :meth:`EligibilityServiceImpl.authenticate_terminal` when the terminal is known and active
  (else ``TerminalNotFound``, the same for both), ``requested_at`` lies within 5 minutes of the
  server's clock (``stale``), the certificate has not expired (``certificate_expired``), the
  signature verifies (``bad_signature``; Ed25519, or ECDSA-SHA256 in DER) over
  ``network.interfaces.signed_request_bytes(kind, fields)`` where ``fields`` carry
  ``terminal_id``, ``nonce`` and ``requested_at`` (set here from the arguments: a request
  whose signed body named other values does not verify), and the nonce (16-64 of
  ``A-Za-z0-9_-``, ``malformed_nonce``) is claimed once for ``terminal:<id>`` in the database
  (kernel/nonces.py; ``replayed``). Each refusal is :class:`TerminalRefused` with ``reason``.
- **Operators** of a terminal: the staff user names who may use it from the reception pages
  (``terminals.operators``, space-separated). Only :meth:`set_terminal_operators` writes them
  (audited) and :meth:`terminals_for_operator` matches a whole name, never a part of one.
- **Challenges**: 32 random bytes, :data:`CHALLENGE_TTL`, bound to the terminal that asked;
  spent by one ``UPDATE … WHERE used_at IS NULL AND terminal_id = … AND expires_at > now``:
  of two parallel uses exactly one gets the row. The challenge is spent before the card is
  checked, so a refused card cannot try again with it. Refusals (``ChallengeRefused``):
  ``unknown``, ``other_terminal`` (nothing is said of another terminal's challenge), ``used``,
  ``expired``.
- **The card.** JPKI is asked as a system relying party for user-authentication certificates
  (registered on first use, its id kept in ``settings``; the portal's pattern). The verifier
  (``jpki.verify``) checks chain, validity and revocation (JPKI's own records: a revocation
  counts at once) on every method; card + PIN also checks the signature over the challenge;
  face and visual confirmation read the certificate only, and the terminal attests the
  holder's presence (the face matcher's verdict, or the staff member's name), kept in
  ``visits.confirmed_by``. The holder is known by JPKI's pairwise id (never a serial). To
  reach 1,000 checks/s the verifier keeps its chain cache, JPKI's relying-party registration
  is re-read at most every :data:`RELYING_PARTY_RECHECK` seconds, pairwise ids are kept per
  serial in memory (bounded), and the check itself is three statements on pooled connections
  (spend the challenge; the activation with the person's linked qualifications; the visit and
  its access record in one transaction).
- **Validity** (資格有効性) by the card: of the person's LINKED qualifications (a REVIEW or
  BLOCKED one is never shown), exactly one covering today -> VALID; more than one -> MULTIPLE
  (no qualification returned: the reception must ask); none covering today -> INVALID (the
  latest is returned); none linked -> NOT_FOUND. "Today" is the date in Japan.
- **資格確認書** (:meth:`check_document`): the document presented, by its number, with the
  birth date on the insurer's record (a wrong number or birth date are one answer,
  ``DocumentNotFound``: no oracle). Only a CONFIRMATION_CERTIFICATE is one (a
  資格情報のお知らせ is shown with the card, never instead of it). Ended, not yet issued,
  past ``valid_until`` (inclusive), or its qualification not covering today -> INVALID, or
  INVALID_NEW_QUALIFICATION with the other qualification when the person (only through a
  LINKED record) has another LINKED one covering today. A document whose qualification is not
  LINKED names no person: its visit has none, so no access record, no consent, no views. An
  UNLINKED record's document (the person has no link yet: exactly who a 資格確認書 is for)
  shows its qualification. A REVIEW or BLOCKED record's document (the record's link is in
  doubt: nothing is shown for it until the insurer resolves its review) answers INVALID with
  no qualification, whatever its dates (audited ``insurance:document:held`` with the terminal
  and the record's id).
- **Consent** is given at a visit of this terminal's institution, VALID with a person, within
  :data:`CONSENT_WINDOW` of the check; each item granted (until now + :data:`CONSENT_TTL`)
  or refused, and a later choice at the same visit replaces the earlier one. Each is an
  access record.
- **Views** (:meth:`records`) need this visit's granted, unexpired consent for the item and the
  qualification still LINKED; a refusal is recorded as ``view_refused`` and committed before
  :class:`ConsentRequired` (``none``, ``refused``, ``expired``) or :class:`LinkBlocked` is
  raised.
- **Another institution's visit** (consent or view by a terminal of another institution): the
  same ``VisitNotFound`` as an unknown id (no oracle), and an audit event
  ``insurance:visit:foreign_access`` (the terminal, its institution, the visit id and the
  operation; nothing of the person) is committed.
- **初回登録** ties the pairwise id to the resident J-LIS names for the certificate, once
  (primary key on the pairwise id, unique resident: of two parallel activations one wins, the
  other gets :class:`AlreadyActivated`): from the portal (:meth:`activate_for_resident`), or at
  a terminal's card reader (:meth:`activate` with the terminal: the card signs the terminal's
  challenge after its PIN; the access record names the institution).
"""

from __future__ import annotations

import contextvars
import datetime as dt
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mynumber import audit
from mynumber.db import Databases, HotConnections, HotSQL, utcnow
from mynumber.insurance import models as m
from mynumber.insurance.interfaces import (
    CHALLENGE_TTL,
    CONSENT_TTL,
    CONTEXT,
    AccessAction,
    AccessEntry,
    AlreadyActivated,
    CardRefused,
    CardStatus,
    ChallengeRefused,
    ClinicalRecord,
    ConfirmationMethod,
    Consent,
    ConsentItem,
    ConsentRequired,
    CoverageDocument,
    CoverageDocumentKind,
    DocumentNotFound,
    EligibilityResult,
    FaceMatcher,
    FaceMatchUnavailable,
    HolderResolver,
    InsuredKind,
    InvalidInsuranceInput,
    LimitCategory,
    LinkBlocked,
    LinkState,
    LossReason,
    NotActivated,
    Qualification,
    Terminal,
    TerminalChallenge,
    TerminalNotFound,
    TerminalRefused,
    TerminalStatus,
    Validity,
    VisitNotFound,
)
from mynumber.jpki import verify as jpki_status
from mynumber.jpki.interfaces import (
    AuthVerification,
    CertificateKind,
    CertificateNotFound,
    CertificateState,
    HolderProof,
    JpkiService,
    RelyingParty,
    SigningVerification,
    VerificationFailed,
)
from mynumber.jpki.verify import CallableStatusSource, Refusal, RelyingPartyVerifier
from mynumber.kernel.localtime import JST
from mynumber.kernel.nonces import NonceStore
from mynumber.network.interfaces import signed_request_bytes

__all__ = [
    "CONSENT_WINDOW",
    "RELYING_PARTY_NAME",
    "RELYING_PARTY_SETTING",
    "REQUEST_MAX_AGE",
    "EligibilityServiceImpl",
]

RELYING_PARTY_NAME = "オンライン資格確認"
RELYING_PARTY_SETTING = "jpki_relying_party_id"
#: A terminal's signed request is fresh 5 minutes either way of the server's clock.
REQUEST_MAX_AGE = dt.timedelta(minutes=5)
#: Consent is asked at the visit: within this time of the eligibility check.
CONSENT_WINDOW = dt.timedelta(hours=1)
#: How often (seconds) JPKI's registration of this relying party is read again.
RELYING_PARTY_RECHECK = 10.0
#: Expired challenges are deleted (at most once a minute) this long after they expired.
CHALLENGE_KEEP = dt.timedelta(hours=1)
#: The most lines of one item a view returns (newest first).
RECORDS_LIMIT = 1000

INSTITUTION_CODE = re.compile(r"^[0-9]{10}$")
TERMINAL_ID = re.compile(r"^trm_[0-9a-f]{16}$")
NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
DOCUMENT_NUMBER = re.compile(r"^[A-Za-z0-9-]{1,16}$")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_CERTIFICATE_PEM = 16 * 1024
MAX_SIGNATURE = 1024
MAX_ID = 64
#: A terminal's operators: staff user names as the staff sign-in has them (auth's
#: ``USERNAME_MAX``: 1-40 printable characters), and no whitespace (the column separates them
#: with spaces); at most this many, and no more than the column holds.
OPERATOR_NAME_MAX = 40
MAX_OPERATORS = 20
OPERATORS_COLUMN = 400
PORTAL_INSTITUTION = ("", "マイナポータル")
NO_SUCH_VISIT = "no such visit at this institution"
#: A record in these states is never shown at a terminal (its link is in doubt).
HELD_STATES = frozenset({LinkState.REVIEW, LinkState.BLOCKED})

# The terminal acting in this thread's check (for the verifier's refusal audit).
_ACTOR: contextvars.ContextVar[str] = contextvars.ContextVar("insurance_actor", default="system")

# -- the hot path's statements (pooled driver connections; db.HotSQL) ------------------------

_INSERT_CHALLENGE = HotSQL(
    "INSERT INTO challenges (id, terminal_id, purpose, challenge, expires_at, used_at) "
    "VALUES (:id, :terminal_id, :purpose, :challenge, :expires_at, NULL)")
# One statement spends a challenge: of two parallel uses exactly one gets the row.
_SPEND_CHALLENGE = HotSQL(
    "UPDATE challenges SET used_at = :now WHERE id = :id AND used_at IS NULL "
    "AND terminal_id = :terminal_id AND expires_at > :now RETURNING challenge")
_SPEND_CHALLENGE_WITHOUT_TERMINAL = HotSQL(
    "UPDATE challenges SET used_at = :now WHERE id = :id AND used_at IS NULL "
    "AND terminal_id IS NULL AND expires_at > :now RETURNING challenge")
_CHALLENGE_STATE = HotSQL(
    "SELECT terminal_id, used_at, expires_at FROM challenges WHERE id = :id")
_PURGE_CHALLENGES = HotSQL("DELETE FROM challenges WHERE expires_at < :before")

_QUALIFICATION_COLUMNS = (
    "q.id, q.insurer_number, i.name, q.symbol, q.number, q.branch, q.insured_kind, "
    "q.acquired_on, q.lost_on, q.loss_reason, q.copay_percent, q.elderly_recipient, "
    "q.limit_category, q.link_state")
# The activated person and their LINKED qualifications (one row per qualification; one row of
# NULLs when there is none).
_CARD_LOOKUP = HotSQL(
    f"SELECT a.resident_id, {_QUALIFICATION_COLUMNS} FROM activations a "  # noqa: S608
    "LEFT JOIN qualifications q ON q.resident_id = a.resident_id AND q.link_state = 'linked' "
    "LEFT JOIN insurers i ON i.number = q.insurer_number WHERE a.pairwise_id = :pairwise_id")
_LINKED_OF_RESIDENT = HotSQL(
    f"SELECT q.resident_id, {_QUALIFICATION_COLUMNS} FROM qualifications q "  # noqa: S608
    "JOIN insurers i ON i.number = q.insurer_number "
    "WHERE q.resident_id = :resident_id AND q.link_state = 'linked'")
_DOCUMENT_LOOKUP = HotSQL(
    "SELECT d.kind, d.issued_on, d.valid_until, d.ended_at, q.birth_date, q.resident_id, "  # noqa: S608
    f"{_QUALIFICATION_COLUMNS} FROM documents d "
    "JOIN qualifications q ON q.id = d.qualification_id "
    "JOIN insurers i ON i.number = q.insurer_number WHERE d.document_number = :number")

_VISIT_SQL = (
    "INSERT INTO visits (id, terminal_id, institution_code, resident_id, qualification_id, "
    "method, validity, checked_at, confirmed_by) VALUES (:id, :terminal_id, "
    ":institution_code, :resident_id, :qualification_id, :method, :validity, :checked_at, "
    ":confirmed_by)")
_ACCESS_SQL = (
    "INSERT INTO access_records (resident_id, at, institution_code, institution_name, action, "
    "item, method, validity, visit_id) VALUES (:resident_id, :checked_at, :institution_code, "
    ":institution_name, 'eligibility', NULL, :method, :validity, :id)")
_INSERT_VISIT = HotSQL(_VISIT_SQL)
_INSERT_ACCESS = HotSQL(_ACCESS_SQL)
# PostgreSQL: the visit and its access record in one statement (one round trip, one commit).
_INSERT_VISIT_AND_ACCESS = HotSQL(f"WITH v AS ({_VISIT_SQL}) {_ACCESS_SQL}")

_TERMINAL = HotSQL(
    "SELECT id, institution_code, institution_name, status, certificate_pem, public_key, "
    "not_after, operators FROM terminals WHERE id = :id")


class _ForeignVisit(VisitNotFound):
    """Another institution's visit: answered as VisitNotFound (no oracle), and audited."""


def _aware(value: Any) -> dt.datetime | None:
    """A timestamp read on a driver connection (SQLite gives text in UTC)."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    parsed = dt.datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _day(value: Any) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def _qualification(row: Sequence[Any]) -> Qualification:
    """From the 14 columns of ``_QUALIFICATION_COLUMNS``."""
    (qid, insurer, insurer_name, symbol, number, branch, insured_kind, acquired, lost,
     loss_reason, copay, elderly, limit, state) = row
    acquired_on = _day(acquired)
    assert acquired_on is not None
    return Qualification(
        int(qid), insurer, insurer_name or "", symbol, number, branch,
        InsuredKind(insured_kind), acquired_on, _day(lost),
        LossReason(loss_reason) if loss_reason else None, int(copay), bool(elderly),
        LimitCategory(limit) if limit else None, LinkState(state))


def _qualification_row(row: m.QualificationRow, insurer_name: str) -> Qualification:
    return Qualification(
        row.id, row.insurer_number, insurer_name, row.symbol, row.number, row.branch,
        InsuredKind(row.insured_kind), row.acquired_on, row.lost_on,
        LossReason(row.loss_reason) if row.loss_reason else None, row.copay_percent,
        bool(row.elderly_recipient),
        LimitCategory(row.limit_category) if row.limit_category else None,
        LinkState(row.link_state))


def _latest(qualifications: Sequence[Qualification]) -> Qualification:
    return max(qualifications, key=lambda q: (q.acquired_on, q.id))


def card_validity(linked: Sequence[Qualification], day: dt.date
                  ) -> tuple[Validity, Qualification | None]:
    """資格有効性 from the person's LINKED qualifications on ``day`` (see the module)."""
    if not linked:
        return Validity.NOT_FOUND, None
    covering = [q for q in linked if q.covers(day)]
    if len(covering) == 1:
        return Validity.VALID, covering[0]
    if covering:
        return Validity.MULTIPLE, None
    return Validity.INVALID, _latest(linked)


def _terminal(row: m.TerminalRow | Sequence[Any]) -> Terminal:
    if isinstance(row, m.TerminalRow):
        return Terminal(row.id, row.institution_code, row.institution_name,
                        TerminalStatus(row.status), row.certificate_pem,
                        tuple(_operator_names(row.operators)))
    return Terminal(row[0], row[1], row[2], TerminalStatus(row[3]), row[4],
                    tuple(_operator_names(row[7])))


def _operator_names(stored: str | None) -> list[str]:
    """``terminals.operators`` as names (space-separated: a whole name, never a part)."""
    return (stored or "").split()


def _is_operator_name(name: object) -> bool:
    return (isinstance(name, str) and 0 < len(name) <= OPERATOR_NAME_MAX
            and name.isprintable() and not any(c.isspace() for c in name))


def _document(row: m.DocumentRow) -> CoverageDocument:
    return CoverageDocument(row.id, CoverageDocumentKind(row.kind), row.qualification_id,
                            row.document_number, row.issued_on, row.valid_until, row.ended_at)


def _clean(value: object, field: str, limit: int) -> str:
    if not isinstance(value, str):
        raise InvalidInsuranceInput(f"{field}: must be text", field=field)
    text = value.strip()
    if not text or len(text) > limit or CONTROL.search(text):
        raise InvalidInsuranceInput(f"{field}: 1-{limit} characters, no control characters",
                                    field=field)
    return text


def _verify_terminal_signature(public_key_der: bytes, signature: bytes, data: bytes) -> bool:
    try:
        key = serialization.load_der_public_key(public_key_der)
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, data)
            return True
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
            return True
    except (InvalidSignature, ValueError, TypeError):
        return False
    return False


class _CachedJpki:
    """What the verifier asks of JPKI, with two caches for the reception's rate: the relying
    party's registration is re-read at most every :data:`RELYING_PARTY_RECHECK` seconds (a
    retirement counts within that time), and a serial's pairwise id (fixed for a relying
    party: JPKI derives it from the holder's 住民票コード) is kept in memory, bounded. Nothing
    here is stored, and revocation is never cached (the status source asks JPKI each time)."""

    def __init__(self, jpki: JpkiService, *, recheck: float = RELYING_PARTY_RECHECK,
                 size: int = 100_000) -> None:
        self._jpki = jpki
        self._recheck = recheck
        self._size = size
        self._parties: dict[int, tuple[float, RelyingParty]] = {}
        self._pairwise: dict[tuple[int, int], str] = {}
        self._lock = threading.Lock()

    def relying_party(self, relying_party_id: int) -> RelyingParty:
        cached = self._parties.get(relying_party_id)
        clock = time.monotonic()
        if cached is not None and clock < cached[0]:
            return cached[1]
        party = self._jpki.relying_party(relying_party_id)  # raises when retired
        self._parties[relying_party_id] = (clock + self._recheck, party)
        return party

    def basic_items(self, relying_party_id: int, serial: int) -> SigningVerification:
        return self._jpki.basic_items(relying_party_id, serial)

    def pairwise_id(self, relying_party_id: int, serial: int) -> str:
        key = (relying_party_id, serial)
        found = self._pairwise.get(key)
        if found is not None:
            return found
        found = self._jpki.pairwise_id(relying_party_id, serial)
        with self._lock:
            if len(self._pairwise) >= self._size:
                self._pairwise.clear()
            self._pairwise[key] = found
        return found

    def record_user(self, relying_party_id: int, proof: HolderProof) -> None:
        self._jpki.record_user(relying_party_id, proof)


class EligibilityServiceImpl:
    """:class:`~mynumber.insurance.interfaces.EligibilityService` (see the module for the
    rules). ``matcher`` None: no face matching here (:class:`FaceMatchUnavailable`)."""

    def __init__(self, databases: Databases, jpki: JpkiService, holders: HolderResolver,
                 matcher: FaceMatcher | None, *,
                 clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.databases = databases
        self.jpki = jpki
        self.holders = holders
        self.matcher = matcher
        # Replaceable (tests move time to expire challenges, consents and certificates).
        self.clock = clock
        self._hot = HotConnections(databases, CONTEXT)
        self._nonces = NonceStore(databases, CONTEXT, m.RequestNonce, lambda: self.clock())
        self._lock = threading.Lock()
        self._rp_id: int | None = None
        self._verifier: RelyingPartyVerifier | None = None
        self._cached_jpki = _CachedJpki(jpki)
        self._next_purge = 0.0

    # -- plumbing ---------------------------------------------------------------------------
    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        with self.databases.unit_of_work(CONTEXT) as session:
            yield session

    def _today(self, now: dt.datetime) -> dt.date:
        return now.astimezone(JST).date()

    def relying_party_id(self) -> int:
        """This context's JPKI relying-party id (registered on first use, then remembered)."""
        if self._rp_id is not None:
            return self._rp_id
        with self._lock:
            if self._rp_id is not None:
                return self._rp_id
            with self._transaction() as session:
                row = session.get(m.SettingRow, RELYING_PARTY_SETTING)
                known = int(row.value) if row is not None else None
            if known is None:
                party = self.jpki.register_relying_party(RELYING_PARTY_NAME,
                                                         (CertificateKind.AUTH,), system=True)
                try:
                    with self._transaction() as session:
                        session.add(m.SettingRow(key=RELYING_PARTY_SETTING, value=str(party.id)))
                        audit.record(session, m.AuditEvent, "insurance:relying_party:register",
                                     actor="system", subject=f"relying_party:{party.id}")
                    known = party.id
                except IntegrityError:  # another process registered first: keep theirs
                    with self._transaction() as session:
                        row = session.get(m.SettingRow, RELYING_PARTY_SETTING)
                        assert row is not None
                        known = int(row.value)
                    self.jpki.retire_relying_party(party.id, allow_system=True)
            self._rp_id = known
            return known

    def _status(self, serial: int) -> jpki_status.CertificateStatus:
        """Revocation status straight from JPKI's records: a revocation counts at once."""
        try:
            state = self.jpki.state(serial)
        except CertificateNotFound:
            return jpki_status.UNKNOWN
        if state is CertificateState.REVOKED:
            return jpki_status.revoked(self.clock())
        return jpki_status.GOOD  # expiry is the verifier's own check

    def _card_verifier(self) -> RelyingPartyVerifier:
        if self._verifier is None:
            rp = self.relying_party_id()
            certs = x509.load_pem_x509_certificates(
                self.jpki.ca_chain_pem(CertificateKind.AUTH).encode())
            anchors = [c for c in certs if c.subject == c.issuer]
            intermediates = [c for c in certs if c.subject != c.issuer]
            verifier = RelyingPartyVerifier(
                anchors, intermediates, CallableStatusSource(self._status), rp,
                self._cached_jpki, now=lambda: self.clock(), on_refused=self._card_refused)
            with self._lock:
                if self._verifier is None:
                    self._verifier = verifier
        return self._verifier

    def _card_refused(self, refusal: Refusal) -> None:
        with self._transaction() as session:
            audit.record(session, m.AuditEvent, "insurance:card:refused", actor=_ACTOR.get(),
                         subject=f"verification:{refusal.operation}", reason=refusal.reason)

    def _verify_card(self, method: ConfirmationMethod, challenge: bytes,
                     signature: bytes | None, certificate_pem: str) -> AuthVerification:
        verifier = self._card_verifier()
        try:
            if method is ConfirmationMethod.CARD_PIN:
                assert signature is not None
                return verifier.verify_authentication(challenge, signature, certificate_pem)
            return verifier.verify_certificate(certificate_pem)
        except VerificationFailed as exc:
            reason = str(exc.extra.get("reason", "refused"))
            raise CardRefused(f"the card was not accepted: {reason}", reason=reason) from None

    # -- terminals --------------------------------------------------------------------------
    def register_terminal(self, institution_code: str, institution_name: str,
                          certificate_pem: str, actor: str) -> Terminal:
        if not isinstance(institution_code, str) or not INSTITUTION_CODE.fullmatch(
                institution_code):
            raise InvalidInsuranceInput("institution_code: 10 digits (医療機関コード)",
                                        field="institution_code")
        name = _clean(institution_name, "institution_name", 120)
        actor = _clean(actor, "actor", 80)
        if not isinstance(certificate_pem, str) or len(certificate_pem) > MAX_CERTIFICATE_PEM:
            raise InvalidInsuranceInput("certificate_pem: a PEM certificate",
                                        field="certificate_pem")
        try:
            certificate = x509.load_pem_x509_certificate(certificate_pem.encode("ascii"))
            key = certificate.public_key()
        except (ValueError, UnicodeEncodeError):
            raise InvalidInsuranceInput("certificate_pem: not a readable X.509 certificate",
                                        field="certificate_pem") from None
        if not (isinstance(key, ed25519.Ed25519PublicKey) or (
                isinstance(key, ec.EllipticCurvePublicKey)
                and isinstance(key.curve, ec.SECP256R1))):
            raise InvalidInsuranceInput("certificate_pem: the key must be Ed25519 or ECDSA "
                                        "P-256", field="certificate_pem")
        now = self.clock()
        if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
            raise InvalidInsuranceInput("certificate_pem: the certificate is not valid now",
                                        field="certificate_pem")
        pem = certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")
        row = m.TerminalRow(
            id=f"trm_{secrets.token_hex(8)}", institution_code=institution_code,
            institution_name=name, certificate_pem=pem,
            public_key=key.public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo),
            not_after=certificate.not_valid_after_utc, status=TerminalStatus.ACTIVE.value,
            operators="", created_at=now)
        with self._transaction() as session:
            session.add(row)
            audit.record(session, m.AuditEvent, "insurance:terminal:register", actor=actor,
                         subject=f"terminal:{row.id}", institution_code=institution_code)
        return _terminal(row)

    def terminal(self, terminal_id: str) -> Terminal:
        if not isinstance(terminal_id, str) or not TERMINAL_ID.fullmatch(terminal_id):
            raise TerminalNotFound("unknown terminal", field="terminal_id")
        with self._transaction() as session:
            row = session.get(m.TerminalRow, terminal_id)
            if row is None:
                raise TerminalNotFound("unknown terminal", field="terminal_id")
            return _terminal(row)

    def terminals(self, institution_code: str | None = None) -> list[Terminal]:
        """The registered terminals (of one institution), oldest first."""
        with self._transaction() as session:
            query = select(m.TerminalRow).order_by(m.TerminalRow.created_at, m.TerminalRow.id)
            if institution_code is not None:
                query = query.where(m.TerminalRow.institution_code == institution_code)
            return [_terminal(row) for row in session.scalars(query)]

    def set_terminal_status(self, terminal_id: str, status: TerminalStatus,
                            actor: str) -> Terminal:
        try:
            status = TerminalStatus(status)
        except ValueError:
            raise InvalidInsuranceInput("status: active or suspended", field="status") from None
        actor = _clean(actor, "actor", 80)
        self.terminal(terminal_id)
        with self._transaction() as session:
            row = session.get(m.TerminalRow, terminal_id)
            assert row is not None
            row.status = status.value
            audit.record(session, m.AuditEvent, f"insurance:terminal:{status.value}",
                         actor=actor, subject=f"terminal:{terminal_id}")
            return _terminal(row)

    def set_terminal_operators(self, terminal_id: str, usernames: Sequence[str],
                               actor: str) -> Terminal:
        """Who may use the terminal from the reception pages (replaces the list; empty:
        nobody). Names in the staff sign-in's form without whitespace, deduplicated and
        sorted, at most :data:`MAX_OPERATORS`; a suspended terminal's too (for when it is
        reactivated). Whether such staff exist is not asked: an unknown name operates
        nothing until an account of that name signs in."""
        if isinstance(usernames, str | bytes) or not all(
                _is_operator_name(n) for n in usernames):
            raise InvalidInsuranceInput(
                f"operators: staff user names (1-{OPERATOR_NAME_MAX} printable characters, "
                "no spaces)", field="operators")
        names = sorted(set(usernames))
        if len(names) > MAX_OPERATORS or len(" ".join(names)) > OPERATORS_COLUMN:
            raise InvalidInsuranceInput(
                f"operators: at most {MAX_OPERATORS} names ({OPERATORS_COLUMN} characters "
                "in all)", field="operators")
        actor = _clean(actor, "actor", 80)
        self.terminal(terminal_id)  # TerminalNotFound for an id not of the form
        with self._transaction() as session:
            row = session.get(m.TerminalRow, terminal_id)
            if row is None:
                raise TerminalNotFound("unknown terminal", field="terminal_id")
            row.operators = " ".join(names)
            audit.record(session, m.AuditEvent, "insurance:terminal:operators", actor=actor,
                         subject=f"terminal:{terminal_id}", operators=names)
            return _terminal(row)

    def terminals_for_operator(self, username: str, *, include_suspended: bool = False
                               ) -> list[Terminal]:
        """The terminals whose operators include ``username`` (the whole name: "ab" does not
        operate a terminal of "abc"), oldest first; suspended ones only when asked (the
        reception's list shows them, unusable)."""
        if not _is_operator_name(username):
            return []
        with self._transaction() as session:
            # LIKE narrows (case-insensitively on SQLite); the names themselves decide.
            query = (select(m.TerminalRow)
                     .where(m.TerminalRow.operators.contains(username, autoescape=True))
                     .order_by(m.TerminalRow.created_at, m.TerminalRow.id))
            if not include_suspended:
                query = query.where(m.TerminalRow.status == TerminalStatus.ACTIVE.value)
            return [_terminal(row) for row in session.scalars(query)
                    if username in _operator_names(row.operators)]

    def authenticate_terminal(self, terminal_id: str, kind: str, fields: Mapping[str, object],
                              signature: bytes, nonce: str, requested_at: dt.datetime
                              ) -> Terminal:
        row: Sequence[Any] | None = None
        if isinstance(terminal_id, str) and TERMINAL_ID.fullmatch(terminal_id):
            with self._hot.connection(autocommit=True) as raw:
                found = self._hot.run(raw, _TERMINAL, {"id": terminal_id})
            row = found[0] if found else None
        # Unknown and suspended are one answer: a suspended terminal learns nothing more.
        if row is None or row[3] != TerminalStatus.ACTIVE.value:
            raise TerminalNotFound("unknown or suspended terminal", field="terminal_id")
        now = self.clock()
        if not isinstance(requested_at, dt.datetime) or requested_at.tzinfo is None \
                or abs(now - requested_at) > REQUEST_MAX_AGE:
            raise TerminalRefused("requested_at: more than 5 minutes from the server's clock",
                                  field="requested_at", reason="stale")
        not_after = _aware(row[6])
        if not_after is None or now > not_after:
            raise TerminalRefused("the terminal's certificate has expired",
                                  reason="certificate_expired")
        if not isinstance(nonce, str) or not NONCE.fullmatch(nonce):
            raise TerminalRefused("nonce: 16-64 of A-Za-z0-9_-", field="nonce",
                                  reason="malformed_nonce")
        if not isinstance(kind, str) or not 0 < len(kind) <= 40:
            raise TerminalRefused("kind: 1-40 characters", field="kind", reason="bad_signature")
        try:
            body: dict[str, Any] = dict(fields)
            body.update(terminal_id=terminal_id, nonce=nonce, requested_at=requested_at)
            signed = signed_request_bytes(kind, body)
        except (TypeError, ValueError, OverflowError):
            raise TerminalRefused("the request's fields cannot be signed",
                                  reason="bad_signature") from None
        if not isinstance(signature, bytes) or not 0 < len(signature) <= MAX_SIGNATURE \
                or not _verify_terminal_signature(bytes(row[5]), signature, signed):
            raise TerminalRefused("the signature does not verify with the terminal's key",
                                  field="signature", reason="bad_signature")
        # Last, after everything else: a refused request does not spend its nonce.
        if not self._nonces.claim(f"terminal:{terminal_id}", nonce, kind):
            raise TerminalRefused("this nonce was already used by the terminal",
                                  field="nonce", reason="replayed")
        return _terminal(row)

    # -- challenges -------------------------------------------------------------------------
    def challenge(self, terminal: Terminal | None) -> TerminalChallenge:
        """A one-use challenge for the card, bound to ``terminal`` (None: one for 初回登録 by a
        card reader that is no terminal, spendable only by :meth:`activate` without one)."""
        now = self.clock()
        challenge_id = secrets.token_urlsafe(24)
        challenge = secrets.token_bytes(32)
        expires_at = now + CHALLENGE_TTL
        with self._hot.connection(autocommit=True) as raw:
            self._hot.run(raw, _INSERT_CHALLENGE, {
                "id": challenge_id, "terminal_id": terminal.id if terminal else None,
                "purpose": "eligibility" if terminal else "activation",
                "challenge": challenge, "expires_at": expires_at})
        self._purge_challenges(now)
        return TerminalChallenge(challenge_id, challenge, expires_at)

    def _purge_challenges(self, now: dt.datetime) -> None:
        clock = time.monotonic()
        if clock < self._next_purge:
            return
        self._next_purge = clock + 60.0
        with self._hot.connection(autocommit=True) as raw:
            self._hot.run(raw, _PURGE_CHALLENGES, {"before": now - CHALLENGE_KEEP})

    def _spend_challenge(self, challenge_id: str, terminal_id: str | None,
                         now: dt.datetime) -> bytes:
        if not isinstance(challenge_id, str) or not 0 < len(challenge_id) <= MAX_ID:
            raise ChallengeRefused("unknown challenge", field="challenge_id", reason="unknown")
        statement = (_SPEND_CHALLENGE if terminal_id is not None
                     else _SPEND_CHALLENGE_WITHOUT_TERMINAL)
        with self._hot.connection(autocommit=True) as raw:
            spent = self._hot.run(raw, statement, {"id": challenge_id, "now": now,
                                                    "terminal_id": terminal_id})
        if spent:
            return bytes(spent[0][0])
        with self._hot.connection(autocommit=True) as raw:
            found = self._hot.run(raw, _CHALLENGE_STATE, {"id": challenge_id})
        if not found:
            raise ChallengeRefused("unknown challenge", field="challenge_id", reason="unknown")
        owner, used_at, expires_at = found[0]
        if owner != terminal_id:
            # Another terminal's challenge: nothing more is said about it.
            raise ChallengeRefused("the challenge belongs to another terminal",
                                   field="challenge_id", reason="other_terminal")
        if used_at is not None:
            raise ChallengeRefused("the challenge was already used", field="challenge_id",
                                   reason="used")
        expiry = _aware(expires_at)
        if expiry is not None and expiry <= now:
            raise ChallengeRefused("the challenge has expired", field="challenge_id",
                                   reason="expired")
        raise ChallengeRefused("the challenge was already used", field="challenge_id",
                               reason="used")

    # -- the card at the reception ----------------------------------------------------------
    def check_card(self, terminal: Terminal, challenge_id: str, certificate_pem: str, *,
                   method: ConfirmationMethod, signature: bytes | None = None,
                   live_photo: bytes | None = None, card_photo: bytes | None = None,
                   staff: str | None = None, today: dt.date | None = None
                   ) -> EligibilityResult:
        try:
            method = ConfirmationMethod(method)
        except ValueError:
            raise InvalidInsuranceInput("method: card_pin, face or visual",
                                        field="method") from None
        if not isinstance(certificate_pem, str) or not 0 < len(certificate_pem) \
                <= MAX_CERTIFICATE_PEM:
            raise CardRefused("the certificate is not acceptable",
                              reason="malformed_certificate")
        # Everything the method needs is checked before the challenge is spent.
        confirmed_by: str | None = None
        if method is ConfirmationMethod.CARD_PIN:
            if not isinstance(signature, bytes) or not 0 < len(signature) <= MAX_SIGNATURE:
                raise InvalidInsuranceInput("signature: the card's signature over the "
                                            "challenge", field="signature")
        elif method is ConfirmationMethod.FACE:
            if self.matcher is None:
                raise FaceMatchUnavailable("no face matcher here: use the card's PIN or a "
                                           "visual check")
            for name, photo in (("live_photo", live_photo), ("card_photo", card_photo)):
                if not isinstance(photo, bytes) or not photo:
                    raise InvalidInsuranceInput(f"{name}: a photo is required", field=name)
            confirmed_by = f"face:{self.matcher.name}"[:120]
        elif method is ConfirmationMethod.VISUAL:
            confirmed_by = f"staff:{_clean(staff, 'staff', 100)}"
        else:
            raise InvalidInsuranceInput("method: a 資格確認書 is checked by check_document",
                                        field="method")
        if today is not None and not isinstance(today, dt.date):
            raise InvalidInsuranceInput("today: a date", field="today")
        now = self.clock()
        token = _ACTOR.set(f"terminal:{terminal.id}")
        try:
            challenge = self._spend_challenge(challenge_id, terminal.id, now)
            if method is ConfirmationMethod.FACE:
                assert self.matcher is not None
                assert live_photo is not None and card_photo is not None
                if not self.matcher.matches(card_photo, live_photo):
                    with self._transaction() as session:
                        audit.record(session, m.AuditEvent, "insurance:card:refused",
                                     actor=_ACTOR.get(), subject="verification:face",
                                     reason="face_mismatch")
                    raise CardRefused("the live photo does not match the card's photo",
                                      reason="face_mismatch")
            verification = self._verify_card(method, challenge, signature, certificate_pem)
        finally:
            _ACTOR.reset(token)
        with self._hot.connection(autocommit=True) as raw:
            rows = self._hot.run(raw, _CARD_LOOKUP, {"pairwise_id": verification.pairwise_id})
        if not rows:
            raise NotActivated("the card is not registered for use as a health-insurance card")
        resident_id = int(rows[0][0])
        linked = [_qualification(row[1:]) for row in rows if row[1] is not None]
        validity, qualification = card_validity(linked, today or self._today(now))
        return self._record_visit(terminal, now, method, validity, qualification, resident_id,
                                  confirmed_by)

    def _record_visit(self, terminal: Terminal, now: dt.datetime, method: ConfirmationMethod,
                      validity: Validity, qualification: Qualification | None,
                      resident_id: int | None, confirmed_by: str | None) -> EligibilityResult:
        """The visit and (when the person is known) its access record, in one transaction."""
        visit_id = secrets.token_urlsafe(16)
        params = {
            "id": visit_id, "terminal_id": terminal.id,
            "institution_code": terminal.institution_code,
            "institution_name": terminal.institution_name, "resident_id": resident_id,
            "qualification_id": qualification.id if qualification else None,
            "method": method.value, "validity": validity.value, "checked_at": now,
            "confirmed_by": confirmed_by,
        }
        if resident_id is None:
            with self._hot.connection(autocommit=True) as raw:
                self._hot.run(raw, _INSERT_VISIT, params)
        elif self.databases.is_postgres:
            with self._hot.connection(autocommit=True) as raw:
                self._hot.run(raw, _INSERT_VISIT_AND_ACCESS, params)
        else:
            with self._hot.connection() as raw:  # both rows commit together
                self._hot.run(raw, _INSERT_VISIT, params)
                self._hot.run(raw, _INSERT_ACCESS, params)
        consentable = (tuple(ConsentItem) if validity is Validity.VALID
                       and resident_id is not None else ())
        return EligibilityResult(visit_id, now, method, validity, qualification, consentable)

    def check_document(self, terminal: Terminal, document_number: str, birth_date: dt.date, *,
                       today: dt.date | None = None) -> EligibilityResult:
        """資格確認 with a 資格確認書: its number and the birth date on the insurer's record
        (``DocumentNotFound`` for an unknown number, another kind of document or a wrong birth
        date: one answer). The record's link state decides what is shown:

        - LINKED: VALID with the qualification, the person named (access record, consent);
          INVALID when the document or the qualification does not cover today, or
          INVALID_NEW_QUALIFICATION with the person's other LINKED one covering today;
        - UNLINKED: the same validity and qualification, but no person (no access record, no
          consentable items);
        - REVIEW or BLOCKED: INVALID, with no qualification and no person, whatever the
          document's dates (not NOT_FOUND: the document exists; the reception asks the
          insurer). A held link is never shown at a terminal.
        """
        if not isinstance(document_number, str) or not DOCUMENT_NUMBER.fullmatch(
                document_number.strip()):
            raise DocumentNotFound("no such 資格確認書", field="document_number")
        if not isinstance(birth_date, dt.date) or isinstance(birth_date, dt.datetime):
            raise InvalidInsuranceInput("birth_date: a date", field="birth_date")
        now = self.clock()
        day = today or self._today(now)
        with self._hot.connection(autocommit=True) as raw:
            found = self._hot.run(raw, _DOCUMENT_LOOKUP, {"number": document_number.strip()})
        # One answer for an unknown number, another kind of document and a wrong birth date.
        if not found or found[0][0] != CoverageDocumentKind.CONFIRMATION_CERTIFICATE.value \
                or found[0][4] != birth_date.isoformat():
            raise DocumentNotFound("no such 資格確認書", field="document_number")
        row = found[0]
        issued_on, valid_until, ended_at = _day(row[1]), _day(row[2]), row[3]
        qualification = _qualification(row[6:])
        if qualification.link_state in HELD_STATES:
            # The record's link is in doubt (a near-miss, or a re-check found a mismatch):
            # nothing of it is shown until the insurer resolves its review.
            with self._transaction() as session:
                audit.record(session, m.AuditEvent, "insurance:document:held",
                             actor=f"terminal:{terminal.id}",
                             subject=f"qualification:{qualification.id}",
                             link_state=qualification.link_state.value)
            return self._record_visit(terminal, now, ConfirmationMethod.DOCUMENT,
                                      Validity.INVALID, None, None, None)
        # Only a LINKED record names a person (a BLOCKED or REVIEW link is never used).
        resident_id = (int(row[5]) if row[5] is not None
                       and qualification.link_state is LinkState.LINKED else None)
        document_usable = (ended_at is None and issued_on is not None and valid_until is not None
                           and issued_on <= day <= valid_until)
        validity = Validity.VALID
        shown: Qualification | None = qualification
        if not (document_usable and qualification.covers(day)):
            validity = Validity.INVALID
            if resident_id is not None:
                with self._hot.connection(autocommit=True) as raw:
                    others = [_qualification(r[1:]) for r in self._hot.run(
                        raw, _LINKED_OF_RESIDENT, {"resident_id": resident_id})]
                newer = [q for q in others if q.id != qualification.id and q.covers(day)]
                if newer:
                    validity, shown = Validity.INVALID_NEW_QUALIFICATION, _latest(newer)
        return self._record_visit(terminal, now, ConfirmationMethod.DOCUMENT, validity, shown,
                                  resident_id, None)

    # -- consent and views ------------------------------------------------------------------
    def _visit(self, session: Session, terminal: Terminal, visit_id: str) -> m.VisitRow:
        """This institution's VALID visit with a person (VisitNotFound otherwise;
        :class:`_ForeignVisit`, answered the same, for another institution's visit)."""
        row = (session.get(m.VisitRow, visit_id)
               if isinstance(visit_id, str) and 0 < len(visit_id) <= 32 else None)
        if row is not None and row.institution_code != terminal.institution_code:
            raise _ForeignVisit(NO_SUCH_VISIT, field="visit_id")
        if row is None or row.validity != Validity.VALID.value or row.resident_id is None:
            raise VisitNotFound(NO_SUCH_VISIT, field="visit_id")
        return row

    def _foreign_visit(self, terminal: Terminal, visit_id: str, operation: str) -> VisitNotFound:
        """Audit a terminal's use of another institution's visit (committed: the caller's
        transaction was rolled back); the answer is the plain VisitNotFound."""
        with self._transaction() as session:
            audit.record(session, m.AuditEvent, "insurance:visit:foreign_access",
                         actor=f"terminal:{terminal.id}", subject=f"visit:{visit_id}",
                         institution_code=terminal.institution_code, operation=operation)
        return VisitNotFound(NO_SUCH_VISIT, field="visit_id")

    @staticmethod
    def _still_linked(session: Session, visit: m.VisitRow) -> bool:
        """The visit's qualification is still LINKED to its person (a re-check may have
        blocked it since)."""
        if visit.qualification_id is None:
            return False
        row = session.get(m.QualificationRow, visit.qualification_id)
        return (row is not None and row.link_state == LinkState.LINKED.value
                and row.resident_id == visit.resident_id)

    @staticmethod
    def _access(session: Session, terminal: Terminal, resident_id: int, now: dt.datetime,
                action: AccessAction, *, item: ConsentItem | None = None,
                visit_id: str | None = None) -> None:
        session.add(m.AccessRecordRow(
            resident_id=resident_id, at=now, institution_code=terminal.institution_code,
            institution_name=terminal.institution_name, action=action.value,
            item=item.value if item else None, method=None, validity=None, visit_id=visit_id))

    def consent(self, terminal: Terminal, visit_id: str,
                choices: Mapping[ConsentItem, bool]) -> list[Consent]:
        if not isinstance(choices, Mapping) or not choices:
            raise InvalidInsuranceInput("choices: at least one item", field="choices")
        wanted: dict[ConsentItem, bool] = {}
        for key, granted in choices.items():
            try:
                item = ConsentItem(key)
            except ValueError:
                raise InvalidInsuranceInput("choices: drugs, checkups or treatments",
                                            field="choices") from None
            if not isinstance(granted, bool):
                raise InvalidInsuranceInput("choices: true or false", field="choices")
            wanted[item] = granted
        for attempt in range(2):
            try:
                return self._consent(terminal, visit_id, wanted)
            except _ForeignVisit:
                raise self._foreign_visit(terminal, visit_id, "consent") from None
            except IntegrityError:  # a parallel choice for the same item: choose again
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _consent(self, terminal: Terminal, visit_id: str,
                 wanted: Mapping[ConsentItem, bool]) -> list[Consent]:
        now = self.clock()
        given: list[Consent] = []
        with self._transaction() as session:
            visit = self._visit(session, terminal, visit_id)
            if now - visit.checked_at > CONSENT_WINDOW:
                raise VisitNotFound("the visit is over: check the card again",
                                    field="visit_id")
            if not self._still_linked(session, visit):
                raise LinkBlocked("the qualification is blocked until the insurer resolves "
                                  "its review")
            assert visit.resident_id is not None
            for item, granted in wanted.items():
                expires_at = now + CONSENT_TTL if granted else None
                row = session.get(m.ConsentRow, (visit.id, item.value))
                if row is None:
                    session.add(m.ConsentRow(visit_id=visit.id, item=item.value,
                                             granted=granted, given_at=now,
                                             expires_at=expires_at))
                else:
                    row.granted, row.given_at, row.expires_at = granted, now, expires_at
                self._access(session, terminal, visit.resident_id, now,
                             AccessAction.CONSENT_GIVEN if granted
                             else AccessAction.CONSENT_REFUSED, item=item, visit_id=visit.id)
                given.append(Consent(visit.id, item, granted, now, expires_at))
            session.flush()
        return given

    def records(self, terminal: Terminal, visit_id: str, item: ConsentItem
                ) -> list[ClinicalRecord]:
        try:
            item = ConsentItem(item)
        except ValueError:
            raise InvalidInsuranceInput("item: drugs, checkups or treatments",
                                        field="item") from None
        try:
            return self._records(terminal, visit_id, item)
        except _ForeignVisit:
            raise self._foreign_visit(terminal, visit_id, f"records:{item.value}") from None

    def _records(self, terminal: Terminal, visit_id: str, item: ConsentItem
                 ) -> list[ClinicalRecord]:
        now = self.clock()
        refusal: ConsentRequired | LinkBlocked | None = None
        shown: list[ClinicalRecord] = []
        with self._transaction() as session:
            visit = self._visit(session, terminal, visit_id)
            assert visit.resident_id is not None
            consent = session.get(m.ConsentRow, (visit.id, item.value))
            if consent is None:
                refusal = ConsentRequired("the patient has not consented to this item at this "
                                          "visit", reason="none")
            elif not consent.granted:
                refusal = ConsentRequired("the patient refused this item at this visit",
                                          reason="refused")
            elif consent.expires_at is None or consent.expires_at <= now:
                refusal = ConsentRequired("the patient's consent for this item has expired",
                                          reason="expired")
            elif not self._still_linked(session, visit):
                refusal = LinkBlocked("the qualification is blocked until the insurer "
                                      "resolves its review")
            if refusal is not None:
                # Recorded and committed; the error is raised after the commit.
                self._access(session, terminal, visit.resident_id, now,
                             AccessAction.VIEW_REFUSED, item=item, visit_id=visit.id)
            else:
                rows = session.scalars(
                    select(m.ClinicalRecordRow)
                    .where(m.ClinicalRecordRow.resident_id == visit.resident_id,
                           m.ClinicalRecordRow.item == item.value)
                    .order_by(m.ClinicalRecordRow.on.desc(), m.ClinicalRecordRow.id.desc())
                    .limit(RECORDS_LIMIT))
                shown = [ClinicalRecord(item, r.on, r.label, r.value, r.source) for r in rows]
                self._access(session, terminal, visit.resident_id, now, AccessAction.VIEW,
                             item=item, visit_id=visit.id)
        if refusal is not None:
            raise refusal
        return shown

    # -- 初回登録 ------------------------------------------------------------------------------
    def activate(self, challenge_id: str, certificate_pem: str, signature: bytes, *,
                 terminal: Terminal | None = None) -> CardStatus:
        if not isinstance(certificate_pem, str) or not 0 < len(certificate_pem) \
                <= MAX_CERTIFICATE_PEM:
            raise CardRefused("the certificate is not acceptable",
                              reason="malformed_certificate")
        if not isinstance(signature, bytes) or not 0 < len(signature) <= MAX_SIGNATURE:
            raise InvalidInsuranceInput("signature: the card's signature over the challenge",
                                        field="signature")
        now = self.clock()
        token = _ACTOR.set(f"terminal:{terminal.id}" if terminal else "card_reader")
        try:
            challenge = self._spend_challenge(challenge_id, terminal.id if terminal else None,
                                              now)
            verification = self._verify_card(ConfirmationMethod.CARD_PIN, challenge,
                                             signature, certificate_pem)
        finally:
            _ACTOR.reset(token)
        serial = x509.load_pem_x509_certificate(certificate_pem.encode()).serial_number
        resident_id = self.holders.resident_of_certificate(int(serial))
        where = ((terminal.institution_code, terminal.institution_name) if terminal
                 else PORTAL_INSTITUTION)
        return self._activate(verification.pairwise_id, resident_id, now,
                              f"terminal:{terminal.id}" if terminal else "card_reader", where)

    def activate_for_resident(self, resident_id: int, certificate_serial: int) -> CardStatus:
        resident_id = self._resident_id(resident_id)
        if not isinstance(certificate_serial, int) or not 0 < certificate_serial < 2**160:
            raise InvalidInsuranceInput("certificate_serial: a positive integer",
                                        field="certificate_serial")
        # The assembler verified the card just now; still, the certificate must be this
        # resident's and good, or nothing is tied.
        try:
            state = self.jpki.state(certificate_serial)
        except CertificateNotFound:
            raise CardRefused("unknown certificate", reason="untrusted_chain") from None
        if state is not CertificateState.GOOD:
            raise CardRefused(f"the certificate is {state.value}", reason=state.value)
        if self.holders.resident_of_certificate(certificate_serial) != resident_id:
            raise CardRefused("the certificate is not this resident's",
                              reason="holder_mismatch")
        pairwise = self._cached_jpki.pairwise_id(self.relying_party_id(), certificate_serial)
        return self._activate(pairwise, resident_id, self.clock(), "portal",
                              PORTAL_INSTITUTION)

    def _activate(self, pairwise_id: str, resident_id: int, now: dt.datetime, via: str,
                  where: tuple[str, str]) -> CardStatus:
        try:
            with self._transaction() as session:
                session.add(m.ActivationRow(pairwise_id=pairwise_id, resident_id=resident_id,
                                            activated_at=now, via=via[:40]))
                session.flush()  # the primary key and the unique resident decide, once
                session.add(m.AccessRecordRow(
                    resident_id=resident_id, at=now, institution_code=where[0],
                    institution_name=where[1], action=AccessAction.ACTIVATION.value))
                audit.record(session, m.AuditEvent, "insurance:activation:create",
                             actor=via[:80], subject=f"resident:{resident_id}")
        except IntegrityError:
            raise AlreadyActivated("the card is already registered for insurance use") from None
        return self.card_status(resident_id)

    # -- the resident's side ----------------------------------------------------------------
    @staticmethod
    def _resident_id(resident_id: object) -> int:
        if not isinstance(resident_id, int) or isinstance(resident_id, bool) \
                or not 0 < resident_id < 2**63:
            raise InvalidInsuranceInput("resident_id: a positive integer", field="resident_id")
        return resident_id

    def card_status(self, resident_id: int) -> CardStatus:
        resident_id = self._resident_id(resident_id)
        day = self._today(self.clock())
        with self._transaction() as session:
            activation = session.scalar(select(m.ActivationRow)
                                        .where(m.ActivationRow.resident_id == resident_id))
            linked = [
                _qualification_row(row, name) for row, name in session.execute(
                    select(m.QualificationRow, m.InsurerRow.name)
                    .join(m.InsurerRow, m.InsurerRow.number == m.QualificationRow.insurer_number)
                    .where(m.QualificationRow.resident_id == resident_id,
                           m.QualificationRow.link_state == LinkState.LINKED.value)).all()]
            documents = [_document(row) for row in session.scalars(
                select(m.DocumentRow)
                .where(m.DocumentRow.qualification_id.in_([q.id for q in linked]),
                       m.DocumentRow.ended_at.is_(None))
                .order_by(m.DocumentRow.issued_on, m.DocumentRow.id))] if linked else []
        covering = [q for q in linked if q.covers(day)]
        return CardStatus(activation is not None,
                          activation.activated_at if activation is not None else None,
                          _latest(covering) if covering else None, tuple(documents))

    def access_entries(self, resident_id: int, *, limit: int = 200) -> list[AccessEntry]:
        resident_id = self._resident_id(resident_id)
        if not isinstance(limit, int) or not 0 < limit <= 1000:
            raise InvalidInsuranceInput("limit: 1-1000", field="limit")
        with self._transaction() as session:
            rows = session.scalars(
                select(m.AccessRecordRow).where(m.AccessRecordRow.resident_id == resident_id)
                .order_by(m.AccessRecordRow.at.desc(), m.AccessRecordRow.id.desc())
                .limit(limit))
            return [AccessEntry(
                row.id, row.at, row.institution_code, row.institution_name,
                AccessAction(row.action), ConsentItem(row.item) if row.item else None,
                ConfirmationMethod(row.method) if row.method else None,
                Validity(row.validity) if row.validity else None) for row in rows]

    def record_clinical(self, resident_id: int, records: Sequence[ClinicalRecord]) -> int:
        resident_id = self._resident_id(resident_id)
        rows: list[dict[str, Any]] = []
        for record in records:
            if not isinstance(record, ClinicalRecord) or not isinstance(record.on, dt.date):
                raise InvalidInsuranceInput("records: ClinicalRecord lines", field="records")
            try:
                item = ConsentItem(record.item)
            except ValueError:
                raise InvalidInsuranceInput("records: item drugs, checkups or treatments",
                                            field="records") from None
            rows.append({"resident_id": resident_id, "item": item.value, "on": record.on,
                         "label": _clean(record.label, "label", 120),
                         "value": _clean(record.value, "value", 120),
                         "source": _clean(record.source, "source", 120)})
        if not rows:
            return 0
        with self._transaction() as session:
            session.execute(insert(m.ClinicalRecordRow), rows)
        return len(rows)
