"""JPKI service: the CA hierarchy, issuance, revocation, CRL/OCSP and relying parties.

Every change is one transaction on the ``jpki`` database with its audit record. CA private keys
live in a :mod:`mynumber.keys` provider (software or PKCS#11); this module only ever
holds public keys and signs through :class:`profiles.CallbackRSAPrivateKey`.

The hierarchy (made on first use, see :meth:`JpkiServiceImpl.hierarchy`)::

    root ─┬─ sign  (署名用 issuing CA) ── sign-ocsp (delegated OCSP responder)
          └─ auth  (利用者証明用 issuing CA) ── auth-ocsp

Pairwise identifiers: HMAC-SHA256 over ``(relying party id, 住民票コード)`` under a secret that
is itself derived inside the key provider (the SHA-256 of a deterministic PKCS#1 v1.5 signature
by a dedicated provider key over a fixed label), so the secret exists only while the process
runs and follows the provider (HSM or software) with the CA keys.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from mynumber import audit
from mynumber.db import Databases, HotConnections, HotSQL, in_chunk, one_of, utcnow
from mynumber.errors import DomainError
from mynumber.jpki import models as m
from mynumber.jpki import profiles, revocation
from mynumber.jpki.interfaces import (
    AlreadyRevoked,
    CertificateKind,
    CertificateNotFound,
    CertificateRefused,
    CertificateStanding,
    CertificateState,
    Device,
    HolderLink,
    HolderProof,
    IssuedCertificate,
    RelyingParty,
    RelyingPartyNotFound,
    RelyingPartyNotRegistered,
    RevocationReason,
    SeedCertificateRequest,
    SigningVerification,
    SystemRelyingParty,
    UserChallenge,
    VerificationFailed,
)
from mynumber.keys import CA_PROVISION_COMMAND, KeyNotProvisioned, SigningKeyProvider
from mynumber.registry.interfaces import (
    SYSTEM,
    RegistryService,
    ResidentRecord,
    ResidentStatus,
    Sex,
)

CONTEXT = "jpki"
ROOT = "root"
ISSUING_LABELS = {CertificateKind.SIGNING: "sign", CertificateKind.AUTH: "auth"}
ROOT_VALIDITY = dt.timedelta(days=20 * 366)
ISSUING_VALIDITY = dt.timedelta(days=12 * 366)
RESPONDER_VALIDITY = dt.timedelta(days=2 * 366)
CRL_VALIDITY = dt.timedelta(hours=24)
CLOCK_SKEW = dt.timedelta(hours=1)

REASON_CODES = {
    RevocationReason.LOST: x509.ReasonFlags.key_compromise,
    RevocationReason.BASIC_ITEM_CHANGED: x509.ReasonFlags.affiliation_changed,
    RevocationReason.SUPERSEDED: x509.ReasonFlags.superseded,
    RevocationReason.CESSATION: x509.ReasonFlags.cessation_of_operation,
    RevocationReason.DEVICE_REVOKED: x509.ReasonFlags.cessation_of_operation,
}
SEX_CODES = {Sex.MALE: "1", Sex.FEMALE: "2"}
# A user challenge: prefix | relying party id (4) | expiry, epoch seconds (8) | random (16) |
# HMAC-SHA256 truncated to 16 bytes. Stateless on purpose: a replay of a proof within the TTL
# can only record the same holder for the same party again, which changes nothing, so no
# one-time bookkeeping is needed. 53 bytes: short enough for any card reader's challenge.
USER_CHALLENGE_PREFIX = b"mnjpki-u1"
USER_CHALLENGE_TTL = dt.timedelta(minutes=5)
_USER_CHALLENGE_LENGTH = len(USER_CHALLENGE_PREFIX) + 4 + 8 + 16 + 16


class CaNotProvisioned(DomainError, KeyNotProvisioned):
    """Production without a CA hierarchy: created only by ``mynumber keys init-ca``, never on
    first use, so a request for a CA certificate, CRL or OCSP answer gets a 503 problem."""

    code = "ca_not_provisioned"
    status = 503
    title = "Certification authority not available"

    def __init__(self) -> None:
        super().__init__(
            "the JPKI certification authority has not been created on this server; the "
            f"operator creates it with `{CA_PROVISION_COMMAND}` (never on first use)"
        )


class UnknownAuthority(CertificateNotFound):
    code = "unknown_authority"
    title = "No such certification authority"


@dataclass(frozen=True)
class Authority:
    """A CA or responder: its certificate and a signing handle on its provider key."""

    label: str
    kind: str
    parent_label: str | None
    certificate: x509.Certificate
    key: rsa.RSAPrivateKey  # a CallbackRSAPrivateKey: the private half stays in the provider

    @property
    def pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode()


@dataclass(frozen=True)
class RelyingPartyCredentials:
    relying_party: RelyingParty
    api_key: str  # shown once; only its hash is stored


_STATE = HotSQL("SELECT state, not_after FROM certificates WHERE serial = :serial")


def _aware(value: Any) -> dt.datetime:
    """A timestamp as a raw driver returns it: PostgreSQL an aware datetime, SQLite the text
    ``UTCDateTime`` stores (UTC, without an offset)."""
    stamp: dt.datetime = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=dt.UTC)


def _serial(value: int) -> str:
    if value <= 0 or value >= 2**160:
        raise CertificateNotFound("no such certificate", field="serial")
    return str(value)


def _seconds(value: dt.datetime) -> dt.datetime:
    return value.replace(microsecond=0)


def _hash_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def _utf8string(der: bytes) -> str:
    """Decode a DER UTF8String (the otherName values of the 4 basic items)."""
    if len(der) < 2 or der[0] != 0x0C:
        raise VerificationFailed("the certificate's basic items cannot be read")
    length, offset = der[1], 2
    if length & 0x80:
        count = length & 0x7F
        length, offset = int.from_bytes(der[2:2 + count], "big"), 2 + count
    return der[offset:offset + length].decode("utf-8")


def _basic_items(pem: str) -> dict[str, str]:
    """The 4 basic items a signing certificate carries (otherName values of its SAN)."""
    cert = x509.load_pem_x509_certificate(pem.encode())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {
        name: _utf8string(other.value)
        for other in san.get_values_for_type(x509.OtherName)
        for name, oid in profiles.BASIC_ITEM_OIDS.items() if other.type_id == oid
    }


def _to_rp(row: m.RelyingParty) -> RelyingParty:
    kinds = tuple(CertificateKind(k) for k in row.kinds.split(",") if k)
    return RelyingParty(row.id, row.name, kinds, row.active, row.system)


def _to_issued(row: m.Certificate) -> IssuedCertificate:
    return IssuedCertificate(
        int(row.serial), CertificateKind(row.kind), Device(row.device), row.resident_id,
        row.issuer_label, row.not_before, row.not_after, row.pem,
    )


class JpkiServiceImpl:
    """公的個人認証サービス, backed by the ``jpki`` database and a signing-key provider."""

    def __init__(
        self, databases: Databases, key_provider: SigningKeyProvider,
        registry: RegistryService, public_url: str,
    ) -> None:
        self.databases = databases
        self.keys = key_provider
        self.registry = registry
        self.public_url = public_url.rstrip("/")
        self._lock = threading.Lock()
        self._authorities: dict[str, Authority] | None = None
        self._pairwise_secret: bytes | None = None
        self._hot = HotConnections(databases, CONTEXT)

    # -- plumbing -------------------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        with self.databases.unit_of_work(CONTEXT) as session:
            yield session

    @staticmethod
    def _audit(session: Session, tag: str, actor: str, subject: str,
               reason: str | None = None, **details: Any) -> None:
        audit.record(session, m.AuditEvent, tag, actor=actor, subject=subject, reason=reason,
                     **details)

    def _refused(self, tag: str, relying_party_id: int, subject: str, reason: str) -> None:
        """Record a refusal in its own transaction: the refused request's transaction rolls
        back, and the record of the refusal must not go with it."""
        with self._transaction() as session:
            self._audit(session, tag, f"relying_party:{relying_party_id}", subject, reason=reason)

    def _handle(self, key_label: str) -> rsa.RSAPrivateKey:
        keys = self.keys
        return profiles.CallbackRSAPrivateKey(
            keys.public_key(key_label), lambda tbs: keys.sign(key_label, tbs)
        )

    # -- the CA hierarchy ------------------------------------------------------------------------

    def hierarchy(self) -> dict[str, Authority]:
        """The CAs and responders by label. Created (keys in the provider) on first use only
        where the provider may create keys: the embedded mode, or production inside the
        provider's ``provisioning()`` (``mynumber keys init-ca``); otherwise
        :class:`CaNotProvisioned` (HTTP 503) and nothing is created."""
        if self._authorities is not None:
            return self._authorities
        with self._lock:
            if self._authorities is None:
                authorities = self._load_authorities()
                if not authorities:
                    try:
                        self._bootstrap()
                    except CaNotProvisioned:
                        raise
                    except KeyNotProvisioned:
                        # The first key was refused before anything was created.
                        raise CaNotProvisioned() from None
                    authorities = self._load_authorities()
                self._authorities = authorities
        return self._authorities

    def ca_key_labels(self) -> dict[str, str] | None:
        """The provider label of every CA and responder key (the root's pairwise key too),
        by CA label; ``None`` when no hierarchy exists. Reads the database, creates nothing:
        the start-up key check (``mynumber keys check``) asks the provider for each."""
        with self._transaction() as session:
            rows = session.execute(select(m.CertificateAuthority.label,
                                          m.CertificateAuthority.key_label)).all()
        if not rows:
            return None
        labels = {label: key_label for label, key_label in rows}
        if ROOT in labels:
            labels[f"{ROOT}-pairwise"] = f"{labels[ROOT]}-pairwise"
        return labels

    def _load_authorities(self) -> dict[str, Authority]:
        with self._transaction() as session:
            rows = session.scalars(select(m.CertificateAuthority)).all()
            return {
                row.label: Authority(
                    row.label, row.kind, row.parent_label,
                    x509.load_pem_x509_certificate(row.cert_pem.encode()),
                    self._handle(row.key_label),
                )
                for row in rows
            }

    def _bootstrap(self) -> None:
        """Make the root, the two issuing CAs and their OCSP responders in one transaction.

        Key labels carry a random suffix: a provider (an HSM token, a shared key directory)
        may outlive a database, and keys are never overwritten. Should two processes bootstrap
        at once, the unique CA labels let one win; the loser's keys stay unused."""
        suffix = secrets.token_hex(4)
        now = _seconds(utcnow())
        not_before = now - CLOCK_SKEW

        def new_key(label: str) -> tuple[str, rsa.RSAPrivateKey]:
            key_label = f"jpki-{label}-{suffix}"
            self.keys.generate_rsa(key_label, 2048)
            return key_label, self._handle(key_label)

        rows: list[m.CertificateAuthority] = []
        root_label, root_key = new_key(ROOT)
        root = profiles.ca_certificate(
            "JPKI Root CA", root_key.public_key(), issuer_key=root_key,
            not_before=not_before, not_after=not_before + ROOT_VALIDITY, path_length=1,
        )
        self.keys.generate_rsa(f"{root_label}-pairwise", 2048)
        rows.append(self._ca_row(ROOT, "root", None, root, root_label))
        for kind, label in ISSUING_LABELS.items():
            key_label, key = new_key(label)
            title = "Signing" if kind is CertificateKind.SIGNING else "User Authentication"
            issuing = profiles.ca_certificate(
                f"JPKI {title} CA", key.public_key(), issuer=root, issuer_key=root_key,
                not_before=not_before, not_after=not_before + ISSUING_VALIDITY, path_length=0,
                endpoints=self._arl_endpoints(),
            )
            rows.append(self._ca_row(label, kind.value, ROOT, issuing, key_label))
            responder_label, responder_key = new_key(f"{label}-ocsp")
            responder = profiles.ocsp_responder_certificate(
                responder_key.public_key(), issuer=issuing, issuer_key=key,
                not_before=not_before, not_after=not_before + RESPONDER_VALIDITY,
                subject_cn=f"JPKI {title} CA OCSP Responder",
            )
            rows.append(self._ca_row(f"{label}-ocsp", "ocsp-responder", label, responder,
                                     responder_label))
        try:
            with self._transaction() as session:
                session.add_all(rows)
                session.flush()
                self._audit(session, "jpki:ca:create", SYSTEM.actor, "ca:hierarchy",
                            labels=[r.label for r in rows])
        except IntegrityError:
            pass  # another process made the hierarchy first: use theirs

    def _arl_endpoints(self) -> profiles.RevocationEndpoints:
        """The CRL DP of an issuing CA: the root's ARL (no OCSP for CA certificates)."""
        return profiles.RevocationEndpoints(f"{self.public_url}/jpki/crl/{ROOT}.crl", None)

    @staticmethod
    def _ca_row(label: str, kind: str, parent: str | None, cert: x509.Certificate,
                key_label: str) -> m.CertificateAuthority:
        pem = cert.public_bytes(serialization.Encoding.PEM).decode()
        return m.CertificateAuthority(label=label, kind=kind, parent_label=parent, cert_pem=pem,
                                      key_label=key_label, crl_number=0)

    def issuing_authority(self, label: str) -> Authority:
        authority = self.hierarchy().get(label)
        if authority is None or authority.kind not in {k.value for k in CertificateKind}:
            raise UnknownAuthority("no issuing CA by that name", field="label")
        return authority

    def ca_chain_pem(self, kind: CertificateKind) -> str:
        """Issuing CA first, root last."""
        cas = self.hierarchy()
        return cas[ISSUING_LABELS[CertificateKind(kind)]].pem + cas[ROOT].pem

    # -- issuance -------------------------------------------------------------------------------

    def issue_certificate(
        self, resident_id: int, kind: CertificateKind, public_key_pem: str,
        card_expiry: dt.date, device: Device = Device.CARD, adult_ward: bool = False,
    ) -> IssuedCertificate:
        kind = CertificateKind(kind)
        public_key = self._end_entity_key(public_key_pem)
        holder = self.registry.get_resident(SYSTEM, resident_id, reason="jpki issuance")
        row = self._new_certificate(holder, kind, public_key, card_expiry, Device(device),
                                    adult_ward, _seconds(utcnow()))
        with self._transaction() as session:
            session.add(row)
            session.flush()
            self._audit(session, "jpki:certificate:issue", SYSTEM.actor,
                        f"certificate:{row.serial}", resident_id=holder.id, kind=kind.value,
                        device=row.device)
            return _to_issued(row)

    def issue_pooled_seed_certificates(
        self, requests: Sequence[SeedCertificateRequest], actor: str,
    ) -> list[IssuedCertificate]:
        """Seed-only bulk issuance (``mynumber seed``) on pooled test keys, one transaction.

        The same rules as :meth:`issue_certificate` (current resident, no signing certificate
        under 15, validity), but the holder records come from the caller (no registry read per
        certificate) and every certificate carries the subject OU
        :data:`profiles.POOLED_KEY_MARKER`: its key pair is shared with other seeded cards.
        Refused unless the key provider holds development keys (embedded mode)."""
        if not self.keys.is_development:
            raise CertificateRefused("pooled test keys are for the embedded mode only")
        now = _seconds(utcnow())
        keys: dict[str, rsa.RSAPublicKey] = {}
        rows = []
        for request in requests:
            key = keys.get(request.public_key_pem)
            if key is None:
                key = keys[request.public_key_pem] = self._end_entity_key(request.public_key_pem)
            rows.append(self._new_certificate(
                request.holder, CertificateKind(request.kind), key, request.card_expiry,
                Device.CARD, False, now, subject_unit=profiles.POOLED_KEY_MARKER,
            ))
        with self._transaction() as session:
            session.add_all(rows)
            session.flush()
            for row in rows:
                self._audit(session, "jpki:certificate:issue", actor,
                            f"certificate:{row.serial}", resident_id=row.resident_id,
                            kind=row.kind, device=row.device, pooled_test_key=True)
            return [_to_issued(row) for row in rows]

    @staticmethod
    def _end_entity_key(public_key_pem: str) -> rsa.RSAPublicKey:
        try:
            public_key = serialization.load_pem_public_key(public_key_pem.encode())
        except (ValueError, TypeError, UnicodeError):
            raise CertificateRefused("not a PEM public key", field="public_key_pem") from None
        if not isinstance(public_key, rsa.RSAPublicKey) or public_key.key_size != 2048:
            raise CertificateRefused("JPKI keys are RSA-2048", field="public_key_pem")
        return public_key

    def _new_certificate(
        self, holder: ResidentRecord, kind: CertificateKind, public_key: rsa.RSAPublicKey,
        card_expiry: dt.date, device: Device, adult_ward: bool, now: dt.datetime,
        subject_unit: str | None = None,
    ) -> m.Certificate:
        """Check the rules, draw and sign one certificate; return its (unsaved) row."""
        if holder.status is not ResidentStatus.RESIDENT:
            raise CertificateRefused("the holder is not a current resident", field="resident_id")
        today = now.astimezone(profiles.JST).date()
        if kind is CertificateKind.SIGNING and not profiles.may_hold_signing_certificate(
            holder.birth_date, today, adult_ward
        ):
            raise CertificateRefused(
                "no signing certificate under 15 or for an adult ward", field="kind"
            )
        try:
            not_before, not_after = profiles.certificate_validity(
                holder.birth_date, now, card_expiry
            )
        except ValueError as exc:
            raise CertificateRefused(str(exc), field="card_expiry") from None
        label = ISSUING_LABELS[kind]
        issuer = self.issuing_authority(label)
        endpoints = profiles.RevocationEndpoints.from_base_url(self.public_url, label)
        if kind is CertificateKind.SIGNING:
            items = profiles.BasicFourItems(
                name=holder.name, birth_date=holder.birth_date,
                sex=SEX_CODES.get(holder.sex, "9"), address=holder.address,
            )
            cert = profiles.signing_certificate(
                public_key, items, issuer=issuer.certificate, issuer_key=issuer.key,
                not_before=not_before, not_after=not_after, endpoints=endpoints,
                subject_unit=subject_unit,
            )
        else:
            cert = profiles.auth_certificate(
                public_key, issuer=issuer.certificate, issuer_key=issuer.key,
                not_before=not_before, not_after=not_after, endpoints=endpoints,
                subject_unit=subject_unit,
            )
        return m.Certificate(
            serial=str(cert.serial_number), kind=kind.value, device=device.value,
            resident_id=holder.id, resident_code=holder.resident_code, issuer_label=label,
            not_before=not_before, not_after=not_after,
            pem=cert.public_bytes(serialization.Encoding.PEM).decode(), state="good",
        )

    # -- revocation -----------------------------------------------------------------------------

    def _certificate(self, session: Session, serial: int) -> m.Certificate:
        row = session.scalar(select(m.Certificate).where(m.Certificate.serial == _serial(serial)))
        if row is None:
            raise CertificateNotFound("no such certificate", field="serial")
        return row

    def _revoke_row(self, session: Session, row: m.Certificate, reason: RevocationReason,
                    actor: str, at: dt.datetime) -> bool:
        """Revoke in one compare-and-set (only a certificate not yet revoked): of two callers
        racing on one certificate exactly one revokes it and writes the audit record; the
        other gets False."""
        value = RevocationReason(reason).value
        moved = session.execute(
            update(m.Certificate)
            .where(m.Certificate.id == row.id, m.Certificate.state != "revoked")
            .values(state="revoked", revoked_at=at, revocation_reason=value)
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
        if moved != 1:
            session.refresh(row)
            return False
        for name, current in (("state", "revoked"), ("revoked_at", at),
                              ("revocation_reason", value)):
            set_committed_value(row, name, current)
        self._audit(session, "jpki:certificate:revoke", actor, f"certificate:{row.serial}",
                    reason=value, resident_id=row.resident_id, kind=row.kind)
        return True

    def revoke(self, serial: int, reason: RevocationReason, actor: str) -> None:
        with self._transaction() as session:
            row = self._certificate(session, serial)
            if row.state == "revoked" or not self._revoke_row(
                    session, row, reason, actor, _seconds(utcnow())):
                raise AlreadyRevoked("the certificate is already revoked", field="serial")

    def revoke_for_resident(
        self, resident_id: int, kinds: tuple[CertificateKind, ...], reason: RevocationReason,
        actor: str, device: Device | None = None, *,
        issued_before: dt.datetime | None = None,
    ) -> list[int]:
        """Revoke the holder's good certificates of these kinds. ``issued_before``: only those
        issued before that moment (an event delivered again after new certificates were
        issued must not revoke them)."""
        now = _seconds(utcnow())
        query = select(m.Certificate).where(
            m.Certificate.resident_id == resident_id,
            m.Certificate.kind.in_([CertificateKind(k).value for k in kinds]),
            m.Certificate.state == "good",
            m.Certificate.not_after > now,
        )
        if device is not None:
            query = query.where(m.Certificate.device == Device(device).value)
        if issued_before is not None:
            query = query.where(m.Certificate.issued_at < issued_before)
        with self._transaction() as session:
            rows = session.scalars(query.order_by(m.Certificate.id)).all()
            return [int(row.serial) for row in rows
                    if self._revoke_row(session, row, reason, actor, now)]

    def revoke_for_residents(
        self, issued_before: Mapping[int, dt.datetime], kinds: tuple[CertificateKind, ...],
        reason: RevocationReason, actor: str,
    ) -> list[int]:
        """``revoke_for_resident`` for many holders in one transaction (event delivery): each
        holder's good certificates of these kinds issued before that holder's moment."""
        if not issued_before:
            return []
        now = _seconds(utcnow())
        revoked: list[int] = []
        ids = sorted(issued_before)
        with self._transaction() as session:
            for start in range(0, len(ids), 500):
                rows = session.scalars(select(m.Certificate).where(
                    m.Certificate.resident_id.in_(ids[start:start + 500]),
                    m.Certificate.kind.in_([CertificateKind(k).value for k in kinds]),
                    m.Certificate.state == "good",
                    m.Certificate.not_after > now,
                ).order_by(m.Certificate.id)).all()
                for row in rows:
                    if row.issued_at < issued_before[row.resident_id] and self._revoke_row(
                            session, row, reason, actor, now):
                        revoked.append(int(row.serial))
        return revoked

    def link_serials(self, old_serial: int, new_serial: int) -> None:
        with self._transaction() as session:
            old = self._certificate(session, old_serial)
            new = self._certificate(session, new_serial)
            if old.resident_id != new.resident_id or old.kind != new.kind or old is new:
                raise CertificateRefused(
                    "only certificates of the same kind and holder can be linked",
                    field="new_serial",
                )
            existing = session.scalar(
                select(m.SerialLink).where(m.SerialLink.old_serial == old.serial)
            )
            if existing is not None:
                existing.new_serial = new.serial
            else:
                session.add(m.SerialLink(old_serial=old.serial, new_serial=new.serial))
            self._audit(session, "jpki:serial:link", SYSTEM.actor, f"certificate:{old.serial}",
                        new_serial=new.serial)

    def state(self, serial: int) -> CertificateState:
        # Asked on every verification (OCSP, the portal's login, オンライン資格確認's checks):
        # two columns in one autocommit statement on a pooled connection, read fresh each
        # time (never cached). A connection that fails is retried through the unit of work.
        key = _serial(serial)
        try:
            with self._hot.connection(autocommit=True) as raw:
                rows = self._hot.run(raw, _STATE, {"serial": key})
        except Exception:
            with self._transaction() as session:
                found = session.execute(
                    select(m.Certificate.state, m.Certificate.not_after)
                    .where(m.Certificate.serial == key)).first()
            rows = [] if found is None else [(found.state, found.not_after)]
        if not rows:
            raise CertificateNotFound("no such certificate", field="serial")
        state, not_after = rows[0]
        if state == "revoked":
            return CertificateState.REVOKED
        if _aware(not_after) < utcnow():
            return CertificateState.EXPIRED
        return CertificateState.GOOD

    def residents_with_good_auth_certificate(self, resident_ids: Sequence[int]) -> set[int]:
        # One query (a chunk at a time on SQLite) over the holder index: kind and state
        # stored, "expired" derived from not_after as :meth:`state` does.
        ids = sorted({int(r) for r in resident_ids})
        pg = self.databases.is_postgres
        c = m.Certificate
        now = utcnow()
        found: set[int] = set()
        with self._transaction() as session:
            for start in range(0, len(ids), in_chunk(pg)):
                found.update(int(r) for r in session.scalars(
                    select(c.resident_id).distinct().where(
                        one_of(c.resident_id, ids[start:start + in_chunk(pg)], postgres=pg),
                        c.kind == CertificateKind.AUTH.value, c.state == "good",
                        c.not_after >= now)))
        return found

    @staticmethod
    def _state(row: m.Certificate, now: dt.datetime) -> CertificateState:
        if row.state == "revoked":
            return CertificateState.REVOKED
        if row.not_after < now:
            return CertificateState.EXPIRED
        return CertificateState.GOOD

    def certificate(self, serial: int) -> IssuedCertificate:
        with self._transaction() as session:
            return _to_issued(self._certificate(session, serial))

    def standing(self, serial: int) -> CertificateStanding:
        with self._transaction() as session:
            row = self._certificate(session, serial)
            return CertificateStanding(
                int(row.serial), CertificateKind(row.kind), Device(row.device),
                row.resident_id, self._state(row, utcnow()), row.issued_at, row.not_after,
                row.revoked_at,
                None if row.revocation_reason is None
                else RevocationReason(row.revocation_reason),
            )

    def basic_items_current(self, serial: int) -> bool:
        issued = self.certificate(serial)
        if issued.kind is not CertificateKind.SIGNING:
            raise VerificationFailed("not a signing certificate", field="serial")
        values = _basic_items(issued.pem)
        holder = self.registry.get_resident(SYSTEM, issued.resident_id,
                                            reason="jpki basic items check")
        birth = values["birth_date"][1:]
        return (values["name"] == holder.name and values["address"] == holder.address
                and birth == holder.birth_date.strftime("%Y%m%d")
                and values["sex"] == SEX_CODES.get(holder.sex, "9"))

    # -- CRL and OCSP ---------------------------------------------------------------------------

    def crl_der(self, label: str) -> bytes:
        """A fresh full CRL (DER) with the next CRL number: of an issuing CA, or for ``root``
        the ARL over the CA certificates the root issued (the issuing CAs' CRL DP)."""
        if label == ROOT:
            return self._arl_der()
        issuer = self.issuing_authority(label)
        now = _seconds(utcnow())
        with self._transaction() as session:
            number = self._next_crl_number(session, label)
            rows = session.execute(
                select(m.Certificate.serial, m.Certificate.revoked_at,
                       m.Certificate.revocation_reason)
                .where(m.Certificate.issuer_label == label, m.Certificate.state == "revoked",
                       m.Certificate.not_after > now)
            ).all()
        revoked = [
            (int(serial), revoked_at,
             REASON_CODES.get(RevocationReason(reason or RevocationReason.CESSATION)))
            for serial, revoked_at, reason in rows if revoked_at is not None
        ]
        return revocation.build_crl(issuer.certificate, issuer.key, revoked, now,
                                    now + CRL_VALIDITY, number)

    def _arl_der(self) -> bytes:
        """The root's ARL. This system never revokes a CA certificate (there is no operation
        for it: a compromised CA means a new hierarchy), so it lists nothing; it exists so that
        relying parties can check the issuing CAs as RFC 5280 §6.3 and ``-crl_check_all``
        expect, and it is where a CA revocation would appear."""
        root = self.hierarchy()[ROOT]
        now = _seconds(utcnow())
        with self._transaction() as session:
            number = self._next_crl_number(session, ROOT)
        return revocation.build_crl(root.certificate, root.key, [], now, now + CRL_VALIDITY,
                                    number, authority_only=True)

    @staticmethod
    def _next_crl_number(session: Session, label: str) -> int:
        # Atomic increment: concurrent fetches never sign two CRLs with one number.
        number: int = session.execute(
            update(m.CertificateAuthority)
            .where(m.CertificateAuthority.label == label)
            .values(crl_number=m.CertificateAuthority.crl_number + 1)
            .returning(m.CertificateAuthority.crl_number)
        ).scalar_one()
        return number

    def _status(self, label: str, serial: int) -> revocation.CertificateStatus:
        if serial <= 0 or serial >= 2**160:
            return revocation.UNKNOWN
        with self._transaction() as session:
            row = session.scalar(select(m.Certificate).where(
                m.Certificate.serial == str(serial), m.Certificate.issuer_label == label))
        if row is None:
            return revocation.UNKNOWN
        if row.state == "revoked" and row.revoked_at is not None:
            reason = REASON_CODES.get(RevocationReason(row.revocation_reason or "cessation"))
            return revocation.revoked(row.revoked_at, reason)
        return revocation.GOOD

    def ocsp_response(self, label: str, request_der: bytes) -> bytes:
        """RFC 6960 response (DER) from the delegated responder of issuing CA ``label``:
        ``malformedRequest`` for bytes that are not an OCSP request."""
        issuer = self.issuing_authority(label)
        responder = self.hierarchy()[f"{label}-ocsp"]
        try:
            return revocation.build_response(
                request_der, lambda serial: self._status(label, serial),
                responder.certificate, responder.key, issuer.certificate, _seconds(utcnow()),
            )
        except revocation.MalformedOcspRequest:
            return revocation.malformed_response()

    # -- relying parties ------------------------------------------------------------------------

    def register_relying_party(
        self, name: str, kinds: tuple[CertificateKind, ...], *, system: bool = False
    ) -> RelyingParty:
        return self.register_relying_party_with_key(name, kinds, system=system).relying_party

    def register_relying_party_with_key(
        self, name: str, kinds: tuple[CertificateKind, ...], actor: str = SYSTEM.actor, *,
        system: bool = False,
    ) -> RelyingPartyCredentials:
        """Register a relying party and mint its API key (returned once, stored hashed)."""
        name = name.strip()
        if not name or len(name) > 200:
            raise CertificateRefused("a relying party needs a name (at most 200 characters)",
                                     field="name")
        wanted = sorted({CertificateKind(k).value for k in kinds})
        if not wanted:
            raise CertificateRefused("name at least one certificate kind", field="kinds")
        api_key = "rp_" + secrets.token_urlsafe(32)
        with self._transaction() as session:
            row = m.RelyingParty(name=name, kinds=",".join(wanted), active=True,
                                 system=system, api_key_hash=_hash_key(api_key))
            session.add(row)
            session.flush()
            self._audit(session, "jpki:relying_party:register", actor,
                        f"relying_party:{row.id}", kinds=wanted, system=system)
            return RelyingPartyCredentials(_to_rp(row), api_key)

    def retire_relying_party(self, relying_party_id: int, actor: str = SYSTEM.actor, *,
                             allow_system: bool = False) -> None:
        """End a registration: its key and look-ups stop working at once.

        A system relying party (the portal's own) is refused with SystemRelyingParty and left
        as it was; the refusal is audited. ``allow_system`` is for the owner only: the portal
        retiring the duplicate it registered when it lost a registration race.
        """
        rp = m.RelyingParty
        with self._transaction() as session:
            retire = update(rp).where(rp.id == relying_party_id)
            if not allow_system:
                # The guard is part of the UPDATE, so no read-then-write window exists.
                retire = retire.where(rp.system.is_(False))
            done = session.scalar(retire.values(active=False, retired_at=utcnow())
                                  .returning(rp.id))
            if done is not None:
                self._audit(session, "jpki:relying_party:retire", actor,
                            f"relying_party:{relying_party_id}")
                return
            exists = session.scalar(select(rp.id).where(rp.id == relying_party_id))
        if exists is None:
            raise RelyingPartyNotRegistered("no such relying party", field="relying_party_id")
        # Audited in a transaction of its own: nothing changed, but the attempt is recorded.
        with self._transaction() as session:
            self._audit(session, "jpki:relying_party:retire_refused", actor,
                        f"relying_party:{relying_party_id}", reason="system relying party")
        raise SystemRelyingParty(
            "this is the platform's own relying party (card login to the portal);"
            " it cannot be retired", field="relying_party_id")

    def reactivate_relying_party(self, relying_party_id: int, actor: str) -> None:
        """Undo a retirement: the party's existing API key and its recorded users work again.

        Idempotent: reactivating an active party changes nothing and succeeds (a retried
        request must not fail), but is audited like any other administrator action.
        RelyingPartyNotFound (404) for an unknown id.
        """
        rp = m.RelyingParty
        with self._transaction() as session:
            done = session.scalar(
                update(rp).where(rp.id == relying_party_id, rp.active.is_(False))
                .values(active=True, retired_at=None).returning(rp.id))
            if done is None and session.get(rp, relying_party_id) is None:
                raise RelyingPartyNotFound("no such relying party", field="relying_party_id")
            self._audit(session, "jpki:relying_party:reactivate", actor,
                        f"relying_party:{relying_party_id}",
                        reason=None if done is not None else "already active")

    def find_relying_party(self, relying_party_id: int) -> RelyingParty:
        """Any relying party, active or retired (for administrators)."""
        with self._transaction() as session:
            row = session.get(m.RelyingParty, relying_party_id)
            if row is None:
                raise RelyingPartyNotRegistered("no such relying party", field="relying_party_id")
            return _to_rp(row)

    def relying_party(self, relying_party_id: int) -> RelyingParty:
        party = self.find_relying_party(relying_party_id)
        if not party.active:
            raise RelyingPartyNotRegistered("the relying party is no longer registered")
        return party

    def authenticate_relying_party(self, api_key: str) -> RelyingParty:
        """The active relying party holding this API key."""
        with self._transaction() as session:
            row = session.scalar(
                select(m.RelyingParty).where(m.RelyingParty.api_key_hash == _hash_key(api_key))
            )
            if row is None or not row.active:
                raise RelyingPartyNotRegistered("unknown or retired relying-party key")
            return _to_rp(row)

    def _verifier(self, relying_party_id: int, kind: CertificateKind) -> RelyingParty:
        try:
            party = self.relying_party(relying_party_id)
            if kind not in party.kinds:
                raise RelyingPartyNotRegistered(
                    f"the relying party is not registered for {kind.value} certificates"
                )
        except RelyingPartyNotRegistered as exc:
            self._refused("jpki:verification:refused", relying_party_id,
                          f"relying_party:{relying_party_id}", exc.detail)
            raise
        return party

    def _secret(self) -> bytes:
        if self._pairwise_secret is None:
            root_key_label = self._root_key_label()
            signature = self.keys.sign(f"{root_key_label}-pairwise",
                                       b"mynumber jpki pairwise identifier secret v1")
            self._pairwise_secret = hashlib.sha256(signature).digest()
        return self._pairwise_secret

    def _root_key_label(self) -> str:
        self.hierarchy()
        with self._transaction() as session:
            return session.scalars(
                select(m.CertificateAuthority.key_label)
                .where(m.CertificateAuthority.label == ROOT)
            ).one()

    def _pairwise(self, relying_party_id: int, resident_code: str) -> str:
        message = f"{relying_party_id}:{resident_code}".encode()
        return hmac.new(self._secret(), message, hashlib.sha256).hexdigest()

    def basic_items(self, relying_party_id: int, serial: int) -> SigningVerification:
        self._verifier(relying_party_id, CertificateKind.SIGNING)
        issued = self.certificate(serial)
        if issued.kind is not CertificateKind.SIGNING:
            self._refused("jpki:verification:refused", relying_party_id,
                          f"certificate:{serial}", "not a signing certificate")
            raise VerificationFailed("not a signing certificate", field="serial")
        values = _basic_items(issued.pem)
        birth = values["birth_date"][1:]  # EYYYYMMDD: era digit, then the Gregorian date
        return SigningVerification(
            serial=issued.serial, name=values["name"],
            birth_date=f"{birth[:4]}-{birth[4:6]}-{birth[6:8]}", sex=values["sex"],
            address=values["address"],
        )

    def pairwise_id(self, relying_party_id: int, serial: int) -> str:
        self._verifier(relying_party_id, CertificateKind.AUTH)
        with self._transaction() as session:
            row = self._certificate(session, serial)
            kind, code = row.kind, row.resident_code
        if kind != CertificateKind.AUTH.value:
            self._refused("jpki:verification:refused", relying_party_id,
                          f"certificate:{serial}", "not a user-authentication certificate")
            raise VerificationFailed("not a user-authentication certificate", field="serial")
        return self._pairwise(relying_party_id, code)

    # -- recording a relying party's users (on the holder's proof, never on a named serial) ---

    def _challenge_key(self) -> bytes:
        return hmac.new(self._secret(), b"user challenge key v1", hashlib.sha256).digest()

    def user_challenge(self, relying_party_id: int) -> UserChallenge:
        """A fresh challenge for the party's holder to sign (:meth:`record_user_by_challenge`)."""
        self.relying_party(relying_party_id)
        expires = _seconds(utcnow()) + USER_CHALLENGE_TTL
        body = (USER_CHALLENGE_PREFIX + relying_party_id.to_bytes(4, "big")
                + int(expires.timestamp()).to_bytes(8, "big") + secrets.token_bytes(16))
        tag = hmac.new(self._challenge_key(), body, hashlib.sha256).digest()[:16]
        return UserChallenge(body + tag, expires)

    def _check_challenge(self, relying_party_id: int, challenge: bytes) -> None:
        if len(challenge) != _USER_CHALLENGE_LENGTH or not challenge.startswith(
                USER_CHALLENGE_PREFIX):
            raise VerificationFailed("not a challenge from JPKI", field="challenge",
                                     reason="bad_challenge")
        body, tag = challenge[:-16], challenge[-16:]
        expected = hmac.new(self._challenge_key(), body, hashlib.sha256).digest()[:16]
        start = len(USER_CHALLENGE_PREFIX)
        party = int.from_bytes(body[start:start + 4], "big")
        expires = int.from_bytes(body[start + 4:start + 12], "big")
        # Bound to the party: a challenge (and so a proof) obtained by another party is refused.
        if not hmac.compare_digest(tag, expected) or party != relying_party_id:
            raise VerificationFailed("not a challenge from JPKI for this relying party",
                                     field="challenge", reason="bad_challenge")
        if expires < utcnow().timestamp():
            raise VerificationFailed("the challenge has expired", field="challenge",
                                     reason="challenge_expired")

    def _proven_certificate(self, session: Session, proof: HolderProof) -> m.Certificate:
        """The certificate row of the proof: JPKI's own certificate (byte for byte, not only
        the serial), good now, and the signature over ``proof.data`` made by its key."""
        try:
            presented = x509.load_pem_x509_certificate(proof.certificate_pem.encode("ascii"))
        except (ValueError, UnicodeError):
            raise VerificationFailed("not a readable certificate", field="certificate_pem",
                                     reason="malformed_certificate") from None
        row = session.scalar(select(m.Certificate).where(
            m.Certificate.serial == str(presented.serial_number)))
        ours = None if row is None else x509.load_pem_x509_certificate(row.pem.encode())
        if row is None or ours is None or ours != presented:
            raise VerificationFailed("not a certificate issued by JPKI", field="certificate_pem",
                                     reason="untrusted_chain")
        if self._state(row, utcnow()) is not CertificateState.GOOD:
            raise VerificationFailed("the certificate is not valid now", field="certificate_pem",
                                     reason="revoked")
        public_key = ours.public_key()
        try:
            if not isinstance(public_key, rsa.RSAPublicKey):
                raise InvalidSignature
            public_key.verify(proof.signature, proof.data, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            raise VerificationFailed("the signature does not verify", field="signature",
                                     reason="bad_signature") from None
        return row

    def record_user(self, relying_party_id: int, proof: HolderProof) -> None:
        """Record the holder of a certificate as one of the party's users, on the holder's
        proof (see :class:`HolderProof`). Naming a serial is not enough: that let any party
        claim anyone as its user and then follow their serials (新旧シリアル番号紐付け)."""
        self.relying_party(relying_party_id)
        try:
            with self._transaction() as session:
                row = self._proven_certificate(session, proof)
                key = self._pairwise(relying_party_id, row.resident_code)
                exists = session.scalar(select(m.RelyingPartyUser.id).where(
                    m.RelyingPartyUser.relying_party_id == relying_party_id,
                    m.RelyingPartyUser.holder_key == key,
                ))
                if exists is None:
                    session.add(m.RelyingPartyUser(relying_party_id=relying_party_id,
                                                   holder_key=key))
                    self._audit(session, "jpki:relying_party:record_user",
                                f"relying_party:{relying_party_id}", f"certificate:{row.serial}")
        except IntegrityError:
            return  # recorded concurrently by the same party: the unique constraint held
        except VerificationFailed as exc:
            self._refused("jpki:relying_party:record_user_refused", relying_party_id,
                          f"relying_party:{relying_party_id}", exc.detail)
            raise

    def record_user_by_challenge(self, relying_party_id: int, challenge: bytes,
                                 signature: bytes, certificate_pem: str) -> None:
        """:meth:`record_user` for a party outside the process (HTTP): the signed data must be
        a :meth:`user_challenge` JPKI gave this party, so the proof shows that the holder
        presented the certificate to this party, not merely that a signature exists."""
        self.relying_party(relying_party_id)
        try:
            self._check_challenge(relying_party_id, challenge)
        except VerificationFailed as exc:
            self._refused("jpki:relying_party:record_user_refused", relying_party_id,
                          f"relying_party:{relying_party_id}", exc.detail)
            raise
        self.record_user(relying_party_id, HolderProof(certificate_pem, challenge, signature))

    def link_for_certificate(
        self, relying_party_id: int, agency_id: str, serial: int
    ) -> HolderLink:
        self._verifier(relying_party_id, CertificateKind.AUTH)
        with self._transaction() as session:
            row = self._certificate(session, serial)
            kind, code, resident_id = row.kind, row.resident_code, row.resident_id
            state = self._state(row, utcnow())
        if kind != CertificateKind.AUTH.value or state is not CertificateState.GOOD:
            self._refused("jpki:verification:refused", relying_party_id,
                          f"certificate:{serial}", "not a good user-authentication certificate")
            raise VerificationFailed("not a good user-authentication certificate",
                                     field="serial")
        grant = self.registry.issue_acquisition_number_for_resident(
            agency_id, resident_id, f"jpki:relying_party:{relying_party_id}")
        holder = self.registry.get_resident(SYSTEM, resident_id, reason="portal link")
        return HolderLink(self._pairwise(relying_party_id, code), grant.acquisition_number,
                          grant.municipality_code, holder.name)

    def link_for_resident(
        self, relying_party_id: int, agency_id: str, resident_id: int, actor: str
    ) -> HolderLink:
        self._verifier(relying_party_id, CertificateKind.AUTH)
        grant = self.registry.issue_acquisition_number_for_resident(agency_id, resident_id, actor)
        holder = self.registry.get_resident(SYSTEM, resident_id, reason="portal link")
        return HolderLink(self._pairwise(relying_party_id, holder.resident_code),
                          grant.acquisition_number, grant.municipality_code, holder.name)

    def current_serial(self, relying_party_id: int, old_serial: int) -> int | None:
        """The newest serial linked from ``old_serial`` while it is good (``None`` when the
        holder has no good certificate of that kind down the chain). A holder the relying
        party has not recorded is answered like an unknown serial."""
        self.relying_party(relying_party_id)
        with self._transaction() as session:
            row = self._certificate(session, old_serial)
            key = self._pairwise(relying_party_id, row.resident_code)
            recorded = session.scalar(select(m.RelyingPartyUser.id).where(
                m.RelyingPartyUser.relying_party_id == relying_party_id,
                m.RelyingPartyUser.holder_key == key,
            ))
            refused_serial = row.serial if recorded is None else None
        if refused_serial is not None:
            self._refused("jpki:serial:lookup_refused", relying_party_id,
                          f"certificate:{refused_serial}", "holder is not a recorded user")
            raise CertificateNotFound("no such certificate among your users", field="serial")
        with self._transaction() as session:
            row = self._certificate(session, old_serial)
            current, seen = row, {row.serial}
            while True:
                new_serial = session.scalar(select(m.SerialLink.new_serial).where(
                    m.SerialLink.old_serial == current.serial))
                if new_serial is None or new_serial in seen:
                    break
                seen.add(new_serial)
                current = self._certificate(session, int(new_serial))
            self._audit(session, "jpki:serial:lookup", f"relying_party:{relying_party_id}",
                        f"certificate:{row.serial}")
            if self._state(current, utcnow()) is not CertificateState.GOOD:
                return None
            return int(current.serial)
