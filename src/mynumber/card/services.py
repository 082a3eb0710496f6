"""The card context: applications, counter issuance, PINs, loss, renewal, reissue, smartphone
certificates and the free area, backed by the ``card`` database.

Where things live:

- The card context's database keeps public data only (ids, states, dates, serials, public keys).
- The chip (:class:`~mynumber.card.chip.VirtualCard`) is the holder's. In embedded mode the
  :class:`CardStore` keeps it under ``DATA_DIR/cards/<card_id>.json`` (mode 0600, sealed under
  the key kernel's ``card.chip_sealing`` key), standing in for the card in the resident's
  pocket; the CLI and tests load it from there.
- Certificates come from JPKI through :class:`~mynumber.jpki.interfaces.JpkiService`; identity
  verification from the registry's ``verify_identity`` (recorded there).

Every change is one card-database transaction with its audit record; calls into JPKI (another
database) happen before it, and a failed card write after a certificate was issued revokes
that certificate again.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import re
import secrets
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mynumber import audit
from mynumber.auth.interfaces import StaffPrincipal
from mynumber.card import models as m
from mynumber.card.chip import (
    CardError,
    FailedPinEvent,
    PinFormatError,
    PinKind,
    ResetNotAuthorized,
    UnsealedCardFile,
    VirtualCard,
)
from mynumber.card.interfaces import (
    FREE_AREA_RULES,
    ApplicationNotFound,
    ApplicationRecord,
    ApplicationState,
    CardHolderDetails,
    CardNotFound,
    CardRecord,
    CardService,
    CardState,
    CardStateConflict,
    CardStatus,
    CertificateRenewal,
    CertificateStatus,
    FreeAreaEntry,
    FreeAreaRefused,
    IdentityCheck,
    IdentityNotVerified,
    InvalidApplicationId,
    IssuedPins,
    LossReport,
    LossReportNotMatched,
    PinRefused,
    RegistryForCards,
    RenewalNotOpen,
    SmartphoneCredential,
    smartphone_enrolment_message,
)
from mynumber.codes import application_id as application_ids
from mynumber.codes import individual_number as individual_numbers
from mynumber.codes import kana
from mynumber.codes.exceptions import ValidationError
from mynumber.db import Databases, utcnow
from mynumber.errors import DomainError, InvalidInput, NotFound
from mynumber.jpki.interfaces import (
    AlreadyRevoked,
    CertificateKind,
    CertificateState,
    Device,
    IssuedCertificate,
    JpkiService,
    RevocationReason,
)
from mynumber.kernel.localtime import in_japan
from mynumber.keys import KeyProvider
from mynumber.registry.interfaces import (
    SYSTEM,
    AssuranceLevel,
    IdentityDocument,
    NumberConfirmation,
    ResidentRecord,
    ResidentStatus,
    Sex,
    VerificationRecord,
)

CONTEXT = "card"
#: A counter PIN reset must follow an identity verification this recent.
FRESH_VERIFICATION = dt.timedelta(minutes=10)
RENEWAL_WINDOW_MONTHS = 3
SIGNING_MIN_AGE = 15
ACCEPTED_LEVELS = frozenset({AssuranceLevel.SUBSTANTIAL, AssuranceLevel.HIGH})
ISSUANCE_PURPOSE = "個人番号カード交付"
BOTH = (CertificateKind.SIGNING, CertificateKind.AUTH)
APP_ID_MAX = 40
#: kind -> (the old serial, the reason to revoke it when still good)
RenewalPlan = dict[CertificateKind, tuple[int | None, RevocationReason | None]]
ISSUER_MAX = 100
#: The one answer to a loss report that names no card, or several: it never tells whether
#: the person exists.
NOT_MATCHED = "the details do not match a card we can suspend; check them or call the centre"
#: A loss report by the holder's details reads at most this many records of one kana reading
#: and date of birth; more are taken as several matches (the answer is the generic refusal).
HOLDER_CANDIDATES = 50
_KATAKANA = re.compile("[\u30a1-\u30fa\u30fd-\u30ff]+")


# --- pure rules ----------------------------------------------------------------------------


def _anniversary(birth: dt.date, year: int) -> dt.date:
    try:
        return birth.replace(year=year)
    except ValueError:  # 29 February in a common year: the day before
        return dt.date(year, 2, 28)


def age_on(birth_date: dt.date, day: dt.date) -> int:
    years = day.year - birth_date.year
    return years - 1 if day < _anniversary(birth_date, day.year) else years


def card_expiry(birth_date: dt.date, issued_on: dt.date) -> dt.date:
    """The card is valid to the holder's 10th birthday after issue (5th if under 18)."""
    count = 5 if age_on(birth_date, issued_on) < 18 else 10
    first = _anniversary(birth_date, issued_on.year)
    first_year = issued_on.year if first > issued_on else issued_on.year + 1
    return _anniversary(birth_date, first_year + count - 1)


def months_before(day: dt.date, months: int) -> dt.date:
    month_index = day.year * 12 + day.month - 1 - months
    year, month = divmod(month_index, 12)
    for d in (day.day, 30, 29, 28):
        try:
            return dt.date(year, month + 1, d)
        except ValueError:
            continue
    raise AssertionError("unreachable")


def validate_application_id(value: str) -> str:
    """Validate a 申請書ID (check digit first: a mistyped ID never matches someone else's)."""
    try:
        return application_ids.validate(value)
    except (ValidationError, TypeError, AttributeError) as exc:
        raise InvalidApplicationId(f"application_id: {exc}", field="application_id") from None


def _kana_key(value: str) -> str:
    try:
        return kana.normalize_kana(value).replace(" ", "").replace("\u3000", "")
    except (ValueError, TypeError):
        return ""


def _address_key(value: str) -> str:
    """The address as compared (``codes.kana.normalize_address``: 丁目・番地・号 written any
    usual way, full- or half-width, spaces ignored)."""
    try:
        return kana.normalize_address(value)
    except (ValueError, TypeError):
        return ""


def loss_reference(day: dt.date) -> str:
    """A new 受付番号 for a loss report: the day (Japan time) and 12 random digits, e.g.
    ``20260612-4821-0937-5512``; unguessable, and no card id or serial shows through."""
    digits = f"{secrets.randbelow(10**12):012d}"
    return f"{day:%Y%m%d}-{digits[:4]}-{digits[4:8]}-{digits[8:]}"


# --- the holder's side --------------------------------------------------------------------


CHIP_SEALING_KEY = "card.chip_sealing"


class CardStore:
    """Virtual card files, one per card: ``<directory>/<card_id>.json`` (0600).

    Sealing: every chip file is sealed under the key kernel's ``card.chip_sealing`` key (the
    file holds only the card key wrapped under it), never under a key kept in or beside the
    file: a copy of the cards directory alone opens nothing. Production provisions that key
    (``mynumber keys init``); the embedded mode creates a development key on first use.
    A dev data dir's older files, whose card key sits in the clear, are re-sealed on their
    first read (decided over "regenerate with the seed": they are synthetic test cards, and
    re-sealing keeps a developer's cards and their PIN counters).

    PIN counters: a PIN entry is a read-modify-write of the chip file. :meth:`session` holds an
    exclusive ``fcntl.flock`` on ``<card_id>.lock`` around it, so parallel wrong PINs (threads or
    processes) are counted one after the other, as the single chip serialises its commands.
    A lock file rather than the card database: the counter is chip state (the database keeps
    public data only), chip files exist only on this host (embedded mode), and ``flock`` covers
    every writer of the file, the CLI included. The JSON file itself is not locked because
    :meth:`save` replaces it by rename (a lock on the old inode would protect nothing).
    """

    def __init__(self, directory: Path, keys: KeyProvider | None = None) -> None:
        self.directory = directory
        self._keys = keys

    def path(self, card_id: str) -> Path:
        if not (card_id.isascii() and card_id.isalnum() and len(card_id) <= 32):
            raise CardNotFound("no card with this id", field="card_id")
        return self.directory / f"{card_id}.json"

    def _sealing_key(self) -> bytes:
        if self._keys is None:
            raise RuntimeError("the card store needs the key kernel (CardStore(directory, keys))")
        return self._keys.symmetric_key(CHIP_SEALING_KEY, 32)

    def save(self, card: VirtualCard) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.path(card.card_id)
        card.save(path, storage_key=self._sealing_key())
        return path

    def load(self, card_id: str,
             on_failed_pin: Callable[[FailedPinEvent], None] | None = None) -> VirtualCard:
        """The chip as saved (for reads; use :meth:`session` for anything that moves a PIN
        counter)."""
        path = self._existing(card_id)
        try:
            return VirtualCard.load(path, storage_key=self._sealing_key(),
                                    on_failed_pin=on_failed_pin)
        except UnsealedCardFile:
            with self._locked(card_id):
                return self._load_locked(card_id, on_failed_pin)

    def _existing(self, card_id: str) -> Path:
        path = self.path(card_id)
        if not path.exists():
            raise CardNotFound("this card's chip is not held here", field="card_id")
        return path

    def _load_locked(self, card_id: str,
                     on_failed_pin: Callable[[FailedPinEvent], None] | None) -> VirtualCard:
        """Load with the card's lock held; an old unsealed file is re-sealed here, once (the
        clear card key goes with the replaced file)."""
        path, key = self._existing(card_id), self._sealing_key()
        try:
            return VirtualCard.load(path, storage_key=key, on_failed_pin=on_failed_pin)
        except UnsealedCardFile:
            card = VirtualCard.load(path, storage_key=key, on_failed_pin=on_failed_pin,
                                    allow_unsealed=True)
            self.save(card)
            return card

    def lock(self, card_id: str) -> contextlib.AbstractContextManager[None]:
        """The card's lock without loading the chip (for a chip the caller holds, e.g. the
        CLI's copy): counter procedures on one card run one after the other. Not reentrant."""
        return self._locked(card_id)

    @contextmanager
    def _locked(self, card_id: str) -> Iterator[None]:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock_path = self.path(card_id).with_suffix(".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # blocks; released by close, even on a crash
            yield
        finally:
            os.close(fd)

    @contextmanager
    def session(self, card_id: str,
                on_failed_pin: Callable[[FailedPinEvent], None] | None = None,
                ) -> Iterator[VirtualCard]:
        """The chip, loaded under the card's lock and saved on the way out (also when a PIN
        error leaves the block: the counter moved), so no concurrent entry is lost."""
        with self._locked(card_id):
            card = self._load_locked(card_id, on_failed_pin)
            try:
                yield card
            finally:
                self.save(card)


# --- the service --------------------------------------------------------------------------


def _application(row: m.Application) -> ApplicationRecord:
    return ApplicationRecord(row.id, row.application_id, row.resident_id,
                             ApplicationState(row.state), row.received_at, row.card_id)


def _card(row: m.Card) -> CardRecord:
    return CardRecord(row.card_id, row.resident_id, row.application_id, CardState(row.state),
                      row.issued_on, row.expires_on, _int(row.signing_serial),
                      _int(row.auth_serial), row.replaced_by)


def _int(serial: str | None) -> int | None:
    return None if serial is None else int(serial)


def _text(serial: int | None) -> str | None:
    return None if serial is None else str(serial)


def _pem(public_key: rsa.RSAPublicKey) -> str:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


class CardServiceImpl:
    """The card context's service."""

    def __init__(
        self, databases: Databases, registry: RegistryForCards, jpki: JpkiService,
        store: CardStore, today: Callable[[], dt.date] | None = None,
    ) -> None:
        self.databases = databases
        self.registry = registry
        self.jpki = jpki
        self.store = store
        self._today = today or (lambda: utcnow().date())

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

    def _card_row(self, session: Session, card_id: str, *, lock: bool = False) -> m.Card:
        if not isinstance(card_id, str) or not card_id or len(card_id) > 16:
            raise CardNotFound("no card with this id", field="card_id")
        stmt = select(m.Card).where(m.Card.card_id == card_id.upper())
        if lock:
            stmt = stmt.with_for_update()
        row = session.scalars(stmt).first()
        if row is None:
            raise CardNotFound("no card with this id", field="card_id")
        if row.state == CardState.ACTIVE.value and row.expires_on < self._today():
            row.state = CardState.EXPIRED.value
            row.state_changed_at = utcnow()
        return row

    def _verify(self, actor: StaffPrincipal, resident_id: int, check: IdentityCheck,
                purpose: str) -> VerificationRecord:
        """本人確認 through the registry (recorded there); refuse unless the number matched and
        the documents give at least substantial assurance."""
        try:
            confirmation = NumberConfirmation(check.number_confirmation)
            documents = [IdentityDocument(d) for d in check.documents]
        except ValueError:
            raise InvalidInput("unknown number confirmation or identity document",
                               field="identity_documents") from None
        record = self.registry.verify_identity(actor, resident_id, purpose,
                                               check.individual_number, confirmation, documents)
        if not record.number_matched or record.assurance_level not in ACCEPTED_LEVELS:
            raise IdentityNotVerified(
                "identity verification failed: the number did not match or the documents "
                "are not enough (a photo ID is required)", field="individual_number",
                verification_id=record.id,
            )
        return record

    def _is_fresh(self, actor: StaffPrincipal, resident_id: int, verification_id: int) -> bool:
        now = utcnow()
        for record in self.registry.verifications(actor, resident_id):
            if record.id == verification_id:
                return (
                    record.number_matched and record.assurance_level in ACCEPTED_LEVELS
                    and record.resident_id == resident_id
                    and now - record.verified_at <= FRESH_VERIFICATION
                )
        return False

    # -- applications -----------------------------------------------------------------------
    def apply(self, actor: StaffPrincipal, resident_id: int) -> ApplicationRecord:
        """Receive a card application (交付申請) and give it a unique 申請書ID."""
        resident = self.registry.get_resident(actor, resident_id, "個人番号カード交付申請")
        if resident.status is not ResidentStatus.RESIDENT or not resident.numbered:
            raise CardStateConflict("only a numbered, current resident can apply",
                                    field="resident_id")
        for _attempt in range(10):
            try:
                with self._transaction() as session:
                    row = m.Application(application_id=application_ids.generate(),
                                        resident_id=resident.id, received_by=actor.actor)
                    session.add(row)
                    session.flush()
                    self._audit(session, "card:application:receive", actor.actor,
                                f"resident:{resident.id}", application=row.id)
                    return _application(row)
            except IntegrityError:  # the 10^22 space collided: draw again
                continue
        raise RuntimeError("could not allocate a unique application ID")

    def application(self, application_id: str) -> ApplicationRecord:
        number = validate_application_id(application_id)
        with self._transaction() as session:
            row = session.scalars(
                select(m.Application).where(m.Application.application_id == number)
            ).first()
            if row is None:
                raise ApplicationNotFound("no application with this ID", field="application_id")
            return _application(row)

    def applications_of(self, resident_id: int) -> list[ApplicationRecord]:
        with self._transaction() as session:
            rows = session.scalars(
                select(m.Application).where(m.Application.resident_id == resident_id)
                .order_by(m.Application.id)
            ).all()
            return [_application(r) for r in rows]

    # -- issuance ---------------------------------------------------------------------------
    def issue(
        self, actor: StaffPrincipal, application_id: str, check: IdentityCheck,
        pins: IssuedPins, *, adult_ward: bool = False,
    ) -> tuple[CardRecord, VirtualCard]:
        """Issue the card at the counter (交付): identity verification, a new chip with the
        resident's four PINs and keys generated inside it, certificates from JPKI."""
        application = self.application(application_id)
        if application.state is not ApplicationState.RECEIVED:
            raise CardStateConflict("this application was already issued a card",
                                    field="application_id")
        self._verify(actor, application.resident_id, check, ISSUANCE_PURPOSE)
        resident = self.registry.get_resident(actor, application.resident_id, ISSUANCE_PURPOSE)
        record, card = self._mint(actor, resident, application.application_id, check, pins,
                                  adult_ward, previous=None)
        return record, card

    def _mint(
        self, actor: StaffPrincipal, resident: ResidentRecord, application_id: str,
        check: IdentityCheck, pins: IssuedPins, adult_ward: bool, previous: str | None,
    ) -> tuple[CardRecord, VirtualCard]:
        today = self._today()
        try:
            card = VirtualCard.issue(
                individual_number=check.individual_number, name=resident.name,
                address=resident.address, date_of_birth=resident.birth_date,
                sex="男" if resident.sex is Sex.MALE else "女",
                signing_password=pins.signing_password, user_auth_pin=pins.user_auth_pin,
                residence_pin=pins.residence_pin, card_info_pin=pins.card_info_pin,
                on_failed_pin=self.record_failed_pin,
            )
        except PinFormatError as exc:
            raise PinRefused(str(exc), field=f"pin_{exc.pin_kind.value}") from None
        expires_on = card_expiry(resident.birth_date, today)
        with_signing = age_on(resident.birth_date, today) >= SIGNING_MIN_AGE and not adult_ward
        issued: list[int] = []
        try:
            auth_key = card.generate_key("auth")
            auth = self.jpki.issue_certificate(resident.id, CertificateKind.AUTH,
                                               _pem(auth_key), expires_on)
            issued.append(auth.serial)
            card.install_certificate("auth", auth.pem)
            signing_serial: int | None = None
            signing_key_pem: str | None = None
            if with_signing:
                signing_key = card.generate_key("signing")
                signing_key_pem = _pem(signing_key)
                signing = self.jpki.issue_certificate(
                    resident.id, CertificateKind.SIGNING, signing_key_pem, expires_on,
                    adult_ward=adult_ward,
                )
                issued.append(signing.serial)
                card.install_certificate("signing", signing.pem)
                signing_serial = signing.serial
            self.store.save(card)
            with self._transaction() as session:
                row = m.Card(
                    card_id=card.card_id, resident_id=resident.id,
                    application_id=application_id, state=CardState.ACTIVE.value,
                    issued_on=today, expires_on=expires_on, signing_serial=_text(signing_serial),
                    auth_serial=str(auth.serial), signing_public_key=signing_key_pem,
                    auth_public_key=_pem(auth_key),
                )
                session.add(row)
                app_row = session.scalars(
                    select(m.Application).where(m.Application.application_id == application_id)
                ).one()
                app_row.state = ApplicationState.ISSUED.value
                app_row.card_id = card.card_id
                session.flush()
                self._audit(session, "card:card:issue", actor.actor, f"card:{card.card_id}",
                            resident=resident.id, previous=previous,
                            signing=signing_serial is not None)
                return _card(row), card
        except BaseException:
            for serial in issued:  # compensate: a certificate for a card that does not exist
                with suppress(Exception):  # keep the original error
                    self.jpki.revoke(serial, RevocationReason.CESSATION, actor.actor)
            raise

    # -- reads ------------------------------------------------------------------------------
    def card(self, card_id: str) -> CardRecord:
        with self._transaction() as session:
            return _card(self._card_row(session, card_id))

    def cards_of(self, resident_id: int) -> list[CardRecord]:
        with self._transaction() as session:
            ids = session.scalars(
                select(m.Card.card_id).where(m.Card.resident_id == resident_id)
                .order_by(m.Card.issued_on, m.Card.card_id)
            ).all()
            return [_card(self._card_row(session, cid)) for cid in ids]

    # -- PINs -------------------------------------------------------------------------------
    def record_failed_pin(self, event: FailedPinEvent) -> None:
        """The chip's ``on_failed_pin``: every failed entry leaves an audit record."""
        with self._transaction() as session:
            self._audit(session, "card:pin:failed", "holder", f"card:{event.card_id}",
                        pin_kind=event.pin_kind.value, remaining=event.remaining,
                        locked=event.remaining == 0, was_locked=event.was_locked)

    def open_card(self, card_id: str) -> VirtualCard:
        """The holder's chip, wired so failed PINs are audited (embedded mode). For reads:
        anything that enters a PIN goes through :meth:`chip_session`."""
        return self.store.load(card_id, on_failed_pin=self.record_failed_pin)

    @contextmanager
    def chip_session(self, card_id: str) -> Iterator[VirtualCard]:
        """The holder's chip under its lock, saved on exit: PIN entries made in the block are
        counted atomically with any made in parallel (see :class:`CardStore`)."""
        with self.store.session(card_id, on_failed_pin=self.record_failed_pin) as chip:
            yield chip

    def reset_pin(
        self, actor: StaffPrincipal, card_id: str, pin_kind: PinKind | str, new_pin: str,
        check: IdentityCheck,
    ) -> None:
        """初期化 at the counter: a new PIN after identity verification."""
        try:
            kind = PinKind(pin_kind)
        except ValueError:
            raise InvalidInput("unknown PIN kind", field="pin_kind") from None
        record = self.card(card_id)
        if record.state is not CardState.ACTIVE:
            raise CardStateConflict(f"the card is {record.state.value}", field="card_id")
        verification = self._verify(actor, record.resident_id, check, "暗証番号の初期化")

        def authorize(cid: str, which: PinKind) -> bool:
            return (cid == record.card_id and which is kind
                    and self._is_fresh(actor, record.resident_id, verification.id))

        try:
            with self.chip_session(record.card_id) as card:  # no parallel entry is lost
                card.counter_reset(kind, new_pin, authorize)
        except PinFormatError as exc:
            raise PinRefused(str(exc), field="new_pin") from None
        except CardError as exc:
            raise IdentityNotVerified(str(exc)) from None
        with self._transaction() as session:
            self._audit(session, "card:pin:reset", actor.actor, f"card:{record.card_id}",
                        pin_kind=kind.value, verification=verification.id)

    # -- loss, suspension ---------------------------------------------------------------------
    def _suspend(self, card_id: str, actor: str, channel: str) -> LossReport:
        """Suspend an active card and revoke its two certificates, once: a card already
        suspended (a second report, or a parallel one that came first) is left as it is and
        the report recorded as a repeat. Every report gets its own 受付番号.

        Under the card's lock (:meth:`CardStore.lock`, as the counter's procedures on a
        card): parallel reports, and a report beside a counter procedure, run one after the
        other, so no certificate is revoked twice. The compare-and-set below keeps the
        suspension single where the lock does not reach (services on several hosts)."""
        with self.store.lock(card_id.upper()):
            return self._suspend_locked(card_id, actor, channel)

    def _suspend_locked(self, card_id: str, actor: str, channel: str) -> LossReport:
        reference = loss_reference(self._japan_today())
        with self._transaction() as session:
            row = self._card_row(session, card_id, lock=True)
            if row.state == CardState.SUSPENDED.value:
                self._audit(session, "card:loss:repeat", actor, f"card:{row.card_id}",
                            channel=channel, reference=reference)
                return LossReport(row.card_id, CardState.SUSPENDED, (), reference)
            if row.state != CardState.ACTIVE.value:
                raise CardStateConflict(f"the card is {row.state}", field="card_id")
            resident_id, cid = row.resident_id, row.card_id
            serials = [int(s) for s in (row.signing_serial, row.auth_serial) if s is not None]
        # Only this card's certificates: a smartphone's stay (they are revoked on their own).
        revoked = self._revoke_serials(serials, RevocationReason.LOST, actor)
        with self._transaction() as session:
            # Compare-and-set, on SQLite as on PostgreSQL: of two parallel reports only one
            # moves the card from active to suspended and records the suspension.
            moved = session.execute(
                update(m.Card).where(m.Card.card_id == cid,
                                     m.Card.state == CardState.ACTIVE.value)
                .values(state=CardState.SUSPENDED.value, state_changed_at=utcnow())
                .execution_options(synchronize_session=False)
            ).rowcount  # type: ignore[attr-defined]
            if moved == 1:
                self._audit(session, "card:card:suspend", actor, f"card:{cid}",
                            channel=channel, revoked=list(revoked), resident=resident_id,
                            reference=reference)
                state = CardState.SUSPENDED
            else:
                state = CardState(self._card_row(session, cid).state)
                self._audit(session, "card:loss:repeat", actor, f"card:{cid}",
                            channel=channel, revoked=list(revoked), reference=reference)
        return LossReport(cid, state, tuple(revoked), reference)

    def _japan_today(self) -> dt.date:
        return in_japan(utcnow()).date()

    def _revoke_serials(self, serials: Sequence[int], reason: RevocationReason,
                        actor: str) -> list[int]:
        """Revoke these certificates where still good (one already revoked is passed over:
        a registry event or a parallel report may have been first)."""
        revoked: list[int] = []
        for serial in serials:
            if self.jpki.state(serial) is not CertificateState.GOOD:
                continue
            try:
                self.jpki.revoke(serial, reason, actor)
            except AlreadyRevoked:
                continue
            revoked.append(serial)
        return revoked

    def suspend(self, actor: StaffPrincipal, card_id: str) -> LossReport:
        """一時利用停止 at the counter: suspend the card and revoke both certificates."""
        record = self.card(card_id)
        self.registry.get_resident(actor, record.resident_id, "個人番号カード一時利用停止")
        return self._suspend(record.card_id, actor.actor, "counter")

    def _matched_card(self, identifier: str, name_kana: str, birth_date: dt.date,
                      channel: str) -> CardRecord:
        """The card a 24-hour report names, when all three items match its holder; the same
        generic refusal whatever did not match."""
        generic = LossReportNotMatched(NOT_MATCHED)
        identifier = (identifier or "").strip().replace(" ", "").replace("-", "")
        card_id: str | None = None
        if identifier.isdigit() and len(identifier) == application_ids.LENGTH:
            number = validate_application_id(identifier)
            with self._transaction() as session:
                card_id = session.scalars(
                    select(m.Application.card_id).where(m.Application.application_id == number)
                ).first()
        elif identifier.isascii() and identifier.isalnum() and len(identifier) <= 16:
            card_id = identifier.upper()
        if card_id is None:
            raise generic
        try:
            record = self.card(card_id)
        except NotFound:
            raise generic from None
        resident = self.registry.get_resident(SYSTEM, record.resident_id,
                                              "個人番号カード紛失届の照合")
        given = _kana_key(name_kana)
        if (not given or given != _kana_key(resident.name_kana)
                or resident.birth_date != birth_date):
            with self._transaction() as session:
                self._audit(session, "card:loss:mismatch", channel, f"card:{record.card_id}")
            raise generic
        return record

    def report_lost(self, identifier: str, name_kana: str, birth_date: dt.date,
                    channel: str = "call_centre") -> LossReport:
        """24/7 loss or theft report: the card id (or 申請書ID), the kana name and the birth
        date must all match; a mismatch says no more than that."""
        record = self._matched_card(identifier, name_kana, birth_date, channel)
        if record.state not in (CardState.ACTIVE, CardState.SUSPENDED):
            raise LossReportNotMatched(NOT_MATCHED)
        return self._suspend(record.card_id, f"{channel}", channel)

    def report_smartphone_lost(self, identifier: str, name_kana: str, birth_date: dt.date,
                               channel: str = "call_centre") -> LossReport:
        """24/7 report of a lost smartphone: its certificates are revoked, the card's stay
        valid (the card keeps its state). Identified like a card loss report (the card the
        phone was enrolled with, the kana name and the birth date)."""
        record = self._matched_card(identifier, name_kana, birth_date, channel)
        return self._smartphone_lost(record, channel)

    def _smartphone_lost(self, record: CardRecord, channel: str) -> LossReport:
        revoked: list[int] = []
        reference = loss_reference(self._japan_today())
        with self.store.lock(record.card_id):  # parallel reports: one after the other
            for cred in self.smartphones_of(record.card_id):
                if cred.active:
                    revoked += self._revoke_smartphone(cred.id, channel,
                                                       RevocationReason.LOST, channel=channel)
            with self._transaction() as session:
                self._audit(session, "card:loss:smartphone", channel,
                            f"card:{record.card_id}", channel=channel, revoked=revoked,
                            reference=reference)
        return LossReport(record.card_id, record.state, tuple(revoked), reference)

    def report_lost_by_holder(self, holder: CardHolderDetails, *, smartphone: bool = False,
                              channel: str = "web") -> LossReport:
        """24/7 report naming the card by its holder, as the call centre does (the card id
        is printed nowhere on the card): see :class:`CardHolderDetails`."""
        record = self._holder_card(holder, channel)
        if smartphone:
            return self._smartphone_lost(record, channel)
        return self._suspend(record.card_id, channel, channel)

    def _holder_card(self, holder: CardHolderDetails, channel: str) -> CardRecord:
        """The one card a report names by its holder: exactly one holder matches every item
        given and holds exactly one active or suspended card; otherwise the same generic
        refusal, recorded without anything the person typed."""
        address = (holder.address or "").strip()
        number_text = (holder.individual_number or "").strip()
        if not _kana_key(holder.name_kana) or len(holder.name_kana) > 80:
            raise InvalidInput("enter the name in kana", field="name_kana")
        if not _KATAKANA.fullmatch(_kana_key(holder.name_kana)):
            raise InvalidInput("write the name in kana (katakana or hiragana)",
                               field="name_kana")
        if len(address) > 200:
            raise InvalidInput("the address is too long", field="address")
        if not address and not number_text:
            raise InvalidInput("enter the address on the card, or the individual number",
                               field="address")
        number = ""
        if number_text:
            try:
                number = individual_numbers.validate(number_text)
            except (ValidationError, TypeError):
                # Says nothing of anyone: a length or a check digit is wrong as typed.
                raise InvalidInput("the individual number is 12 digits with a valid check "
                                   "digit", field="individual_number") from None
        candidates = self.registry.residents_by_kana_and_birth(
            holder.name_kana, holder.birth_date, limit=HOLDER_CANDIDATES + 1)
        # Not all read: the generic refusal, never one of those read as if it were unique.
        overflow = len(candidates) > HOLDER_CANDIDATES
        if address:
            wanted = _address_key(address)
            candidates = [r for r in candidates if wanted and _address_key(r.address) == wanted]
        if number and candidates and not overflow:
            try:
                named: ResidentRecord | None = self.registry.find_by_number(
                    SYSTEM, number, "個人番号カード紛失届の照合")
            except DomainError:
                named = None
            candidates = [r for r in candidates if named is not None and r.id == named.id]
        cards: list[CardRecord] = []
        if len(candidates) == 1 and not overflow:
            with self._transaction() as session:
                ids = session.scalars(
                    select(m.Card.card_id).where(
                        m.Card.resident_id == candidates[0].id,
                        m.Card.state.in_((CardState.ACTIVE.value, CardState.SUSPENDED.value)))
                ).all()
                cards = [_card(self._card_row(session, cid)) for cid in ids]
            cards = [c for c in cards if c.state in (CardState.ACTIVE, CardState.SUSPENDED)]
        if len(candidates) != 1 or len(cards) != 1:
            with self._transaction() as session:
                self._audit(session, "card:loss:unmatched", channel, "card:loss-report",
                            channel=channel,
                            several=overflow or len(candidates) > 1 or len(cards) > 1)
            raise LossReportNotMatched(NOT_MATCHED)
        return cards[0]

    # -- the certificates on a card -----------------------------------------------------------
    def certificate_status(self, card_id: str) -> CardStatus:
        """The card, its certificates (state, expiry, when renewal opens), its smartphone
        credentials and its free-area applications: what the counter looks at."""
        record = self.card(card_id)
        slots: list[CertificateStatus] = []
        for kind, serial in ((CertificateKind.SIGNING, record.signing_serial),
                             (CertificateKind.AUTH, record.auth_serial)):
            if serial is None:
                slots.append(CertificateStatus(kind.value, None, None, None, None, None))
                continue
            standing = self.jpki.standing(serial)
            slots.append(CertificateStatus(
                kind.value, serial, standing.state.value, standing.not_after,
                None if standing.revocation_reason is None
                else standing.revocation_reason.value,
                months_before(_jst_date(standing.not_after), RENEWAL_WINDOW_MONTHS),
            ))
        return CardStatus(record, tuple(slots), tuple(self.smartphones_of(record.card_id)),
                          tuple(self.free_area(record.card_id)))

    def _renewal_plan(self, record: CardRecord, resident: ResidentRecord, today: dt.date,
                      adult_ward: bool) -> tuple[RenewalPlan, dt.date | None]:
        """Which certificates the card needs anew: kind -> (the old serial, the reason to
        revoke it when it is still good). A slot is in the plan when it has no certificate
        but may (a holder who turned 15), when its certificate is revoked or expired, when a
        signing certificate no longer carries the 4 basic items (a move or a name change the
        registry recorded), or from 3 months before its certificate expires. Also the earliest
        day renewal opens for the slots left out."""
        plan: RenewalPlan = {}
        opens: list[dt.date] = []
        may_sign = age_on(resident.birth_date, today) >= SIGNING_MIN_AGE and not adult_ward
        for kind, serial in ((CertificateKind.SIGNING, record.signing_serial),
                             (CertificateKind.AUTH, record.auth_serial)):
            if kind is CertificateKind.SIGNING and not may_sign:
                continue
            if serial is None:
                plan[kind] = (None, None)
                continue
            standing = self.jpki.standing(serial)
            window = months_before(_jst_date(standing.not_after), RENEWAL_WINDOW_MONTHS)
            if standing.state is not CertificateState.GOOD:
                plan[kind] = (serial, None)
            elif kind is CertificateKind.SIGNING and not self.jpki.basic_items_current(serial):
                plan[kind] = (serial, RevocationReason.BASIC_ITEM_CHANGED)
            elif today >= window:
                plan[kind] = (serial, RevocationReason.SUPERSEDED)
            else:
                opens.append(window)
        return plan, min(opens) if opens else None

    def renew_certificates(
        self, actor: StaffPrincipal, card_id: str, check: IdentityCheck, *,
        signing_password: str | None = None, user_auth_pin: str | None = None,
        adult_ward: bool = False, chip: VirtualCard | None = None,
    ) -> CertificateRenewal:
        """電子証明書の発行・更新 on a valid card, at the counter after identity verification:
        a new signing certificate after a move or a name change (the card face is rewritten
        too), a signing certificate added once the holder is 15, and renewal of certificates
        that expire before the card (from 3 months before they expire). The holder sets the
        PIN of each new certificate. New keys are generated in the chip; old certificates that
        are still good are revoked (superseded, or affiliation changed) and every old serial is
        linked to its new one for relying parties.

        ``chip``: the holder's chip when it is not the one the card store keeps (the CLI's
        test card file); the caller saves it, the store gets a copy."""
        record = self.card(card_id)
        if record.state is not CardState.ACTIVE:
            raise CardStateConflict(
                f"the card is {record.state.value}: new certificates go on an active card "
                "(a suspended card is resumed with lift-suspension)", field="card_id")
        return self._write_certificates(actor, record, check, signing_password, user_auth_pin,
                                        adult_ward, chip, "電子証明書の発行・更新", resume=False)

    def lift_suspension(
        self, actor: StaffPrincipal, card_id: str, check: IdentityCheck, *,
        signing_password: str | None = None, user_auth_pin: str | None = None,
        adult_ward: bool = False, chip: VirtualCard | None = None,
    ) -> CertificateRenewal:
        """一時利用停止の解除 when a card reported lost is found: only at the counter after
        identity verification. The certificates revoked by the loss report stay revoked (the
        key may have been used by whoever held the card); the card gets new keys and new
        certificates with PINs the holder sets, the old serials are linked to the new, and only
        then is the card active again."""
        record = self.card(card_id)
        if record.state is not CardState.SUSPENDED:
            raise CardStateConflict(f"the card is {record.state.value}, not suspended",
                                    field="card_id")
        if record.expires_on < self._today():
            raise CardStateConflict("the card has expired: apply for a new card",
                                    field="card_id")
        return self._write_certificates(actor, record, check, signing_password, user_auth_pin,
                                        adult_ward, chip, "個人番号カード一時利用停止の解除",
                                        resume=True)

    @contextmanager
    def _holder_chip(self, card_id: str, chip: VirtualCard | None) -> Iterator[VirtualCard]:
        if chip is None:
            with self.chip_session(card_id) as card:
                yield card
            return
        if chip.card_id != card_id:
            raise CardNotFound("the chip is not this card", field="card_id")
        with self.store.lock(card_id):
            yield chip
            self.store.save(chip)

    def _write_certificates(
        self, actor: StaffPrincipal, record: CardRecord, check: IdentityCheck,
        signing_password: str | None, user_auth_pin: str | None, adult_ward: bool,
        chip: VirtualCard | None, purpose: str, *, resume: bool,
    ) -> CertificateRenewal:
        verification = self._verify(actor, record.resident_id, check, purpose)
        resident = self.registry.get_resident(actor, record.resident_id, purpose)
        if resident.status is not ResidentStatus.RESIDENT:
            raise CardStateConflict("the holder is not a current resident", field="card_id")
        pins = {CertificateKind.SIGNING: (signing_password, PinKind.SIGNING, "signing_password"),
                CertificateKind.AUTH: (user_auth_pin, PinKind.USER_AUTH, "user_auth_pin")}

        def authorize(cid: str, _which: PinKind) -> bool:
            return (cid == record.card_id
                    and self._is_fresh(actor, record.resident_id, verification.id))

        issued: dict[CertificateKind, IssuedCertificate] = {}
        keys: dict[CertificateKind, str] = {}
        try:
            # The card's lock is held from the plan to the database write: a second clerk
            # renewing the same card at once waits, then finds nothing left to renew.
            with self._holder_chip(record.card_id, chip) as card:
                with self._transaction() as session:
                    record = _card(self._card_row(session, record.card_id))
                wanted = CardState.SUSPENDED if resume else CardState.ACTIVE
                if record.state is not wanted:
                    raise CardStateConflict(f"the card is {record.state.value}",
                                            field="card_id")
                plan, opens = self._renewal_plan(record, resident, self._today(), adult_ward)
                if not plan:
                    raise RenewalNotOpen(
                        "the card's certificates are valid and carry the current details; "
                        + (f"renewal opens on {opens.isoformat()}" if opens else
                           "nothing to renew"), field="card_id")
                for kind in plan:
                    pin, _pin_kind, field = pins[kind]
                    if not pin:
                        raise PinRefused(f"the holder sets the {field.replace('_', ' ')} of "
                                         "the new certificate", field=field)
                try:
                    for kind in plan:
                        pin, pin_kind, _field = pins[kind]
                        assert pin is not None
                        card.counter_reset(pin_kind, pin, authorize)
                        public = _pem(card.generate_key(kind.value))
                        certificate = self.jpki.issue_certificate(
                            resident.id, kind, public, record.expires_on, adult_ward=adult_ward)
                        issued[kind] = certificate
                        keys[kind] = public
                        card.install_certificate(kind.value, certificate.pem)
                    card.counter_update_card_info(resident.name, resident.address, authorize)
                except PinFormatError as exc:
                    raise PinRefused(str(exc), field=pins[_kind_of(exc.pin_kind)][2]) from None
                except ResetNotAuthorized:
                    raise IdentityNotVerified(
                        "the identity verification is no longer fresh: verify again",
                        field="individual_number") from None
                with self._transaction() as session:
                    row = self._card_row(session, record.card_id, lock=True)
                    if row.state != wanted.value or row.signing_serial != _text(
                            record.signing_serial) or row.auth_serial != _text(record.auth_serial):
                        raise CardStateConflict("the card changed meanwhile: try again",
                                                field="card_id")
                    if CertificateKind.SIGNING in issued:
                        row.signing_serial = str(issued[CertificateKind.SIGNING].serial)
                        row.signing_public_key = keys[CertificateKind.SIGNING]
                    if CertificateKind.AUTH in issued:
                        row.auth_serial = str(issued[CertificateKind.AUTH].serial)
                        row.auth_public_key = keys[CertificateKind.AUTH]
                    if resume:
                        row.state = CardState.ACTIVE.value
                        row.state_changed_at = utcnow()
                    self._audit(
                        session, "card:card:resume" if resume else "card:certificates:issue",
                        actor.actor, f"card:{row.card_id}", reason=purpose,
                        verification=verification.id,
                        issued={k.value: str(c.serial) for k, c in issued.items()})
                    updated = _card(row)
        except BaseException:
            for certificate in issued.values():  # compensate: certificates nobody holds
                with suppress(Exception):
                    self.jpki.revoke(certificate.serial, RevocationReason.CESSATION, actor.actor)
            raise
        links: dict[int, int] = {}
        revoked: list[int] = []
        for kind, (old_serial, reason) in plan.items():
            if old_serial is None:
                continue
            if reason is not None:
                revoked += self._revoke_serials([old_serial], reason, actor.actor)
            self.jpki.link_serials(old_serial, issued[kind].serial)
            links[old_serial] = issued[kind].serial
        return CertificateRenewal(updated, {k.value: c.pem for k, c in issued.items()}, links,
                                  tuple(revoked))

    # -- the holder's death ---------------------------------------------------------------------
    def end_cards_of(self, resident_id: int, actor: str, reason: str = "death") -> list[str]:
        """A dead holder's cards end (失効): every card not yet revoked, expired or ended, and
        its smartphone credentials. Idempotent: a card already ended is passed over."""
        ended: list[str] = []
        with self._transaction() as session:
            rows = session.scalars(
                select(m.Card).where(
                    m.Card.resident_id == resident_id,
                    m.Card.state.in_([CardState.ACTIVE.value, CardState.SUSPENDED.value]))
                .order_by(m.Card.card_id).with_for_update()).all()
            for row in rows:
                row.state = CardState.ENDED.value
                row.state_changed_at = utcnow()
                self._audit(session, "card:card:end", actor, f"card:{row.card_id}",
                            reason=reason, resident=resident_id)
                ended.append(row.card_id)
            for cred in session.scalars(select(m.SmartphoneCredential).where(
                    m.SmartphoneCredential.resident_id == resident_id,
                    m.SmartphoneCredential.active.is_(True))).all():
                cred.active = False
                self._audit(session, "card:smartphone:end", actor, f"card:{cred.card_id}",
                            reason=reason, credential=cred.id)
        return ended

    # -- renewal and reissue ------------------------------------------------------------------
    def renew(self, actor: StaffPrincipal, card_id: str, check: IdentityCheck,
              pins: IssuedPins, *, adult_ward: bool = False) -> tuple[CardRecord, VirtualCard]:
        """更新: from 3 months before expiry, a new card with new keys and certificates; the
        old certificates are revoked as superseded and linked to the new serials."""
        old = self.card(card_id)
        if old.state is not CardState.ACTIVE and old.state is not CardState.EXPIRED:
            raise CardStateConflict(f"the card is {old.state.value}", field="card_id")
        opens = months_before(old.expires_on, RENEWAL_WINDOW_MONTHS)
        if self._today() < opens:
            raise RenewalNotOpen(f"card renewal opens on {opens.isoformat()}", field="card_id")
        return self._replace(actor, old, check, pins, adult_ward, "更新")

    def reissue(self, actor: StaffPrincipal, card_id: str, check: IdentityCheck,
                pins: IssuedPins, *, adult_ward: bool = False) -> tuple[CardRecord, VirtualCard]:
        """再交付: a new card with new keys for a card reported lost (suspended) or one that is
        damaged (active); the old card is revoked and the new serials are linked."""
        old = self.card(card_id)
        if old.state not in (CardState.SUSPENDED, CardState.ACTIVE):
            raise CardStateConflict(
                f"the card is {old.state.value}: reissue needs a card reported lost or an "
                "active one (damaged)", field="card_id")
        return self._replace(actor, old, check, pins, adult_ward, "再交付")

    def _replace(self, actor: StaffPrincipal, old: CardRecord, check: IdentityCheck,
                 pins: IssuedPins, adult_ward: bool, purpose: str
                 ) -> tuple[CardRecord, VirtualCard]:
        self._verify(actor, old.resident_id, check, f"個人番号カード{purpose}")
        resident = self.registry.get_resident(actor, old.resident_id, f"個人番号カード{purpose}")
        with self._transaction() as session:  # claim the old card first: one replacement only
            row = self._card_row(session, old.card_id, lock=True)
            if row.state != old.state.value or row.replaced_by is not None:
                raise CardStateConflict("the card changed meanwhile: look it up again",
                                        field="card_id")
        new, card = self._mint(actor, resident, old.application_id, check, pins, adult_ward,
                               previous=old.card_id)
        with self._transaction() as session:
            row = self._card_row(session, old.card_id, lock=True)
            if row.replaced_by is not None:  # a parallel replacement won: undo ours
                duplicate = session.get(m.Card, new.card_id)
                if duplicate is not None:
                    duplicate.state = CardState.REVOKED.value
                    duplicate.state_changed_at = utcnow()
                app_row = session.scalars(select(m.Application).where(
                    m.Application.application_id == old.application_id)).one()
                app_row.card_id = row.replaced_by
                conflict = True
            else:
                row.state = CardState.REVOKED.value
                row.replaced_by = new.card_id
                row.state_changed_at = utcnow()
                self._audit(session, "card:card:replace", actor.actor, f"card:{old.card_id}",
                            reason=purpose, new_card=new.card_id)
                conflict = False
        if conflict:
            self._revoke_serials([s for s in (new.signing_serial, new.auth_serial)
                                  if s is not None], RevocationReason.CESSATION, actor.actor)
            raise CardStateConflict("the card was replaced meanwhile", field="card_id")
        for old_serial, new_serial in ((old.signing_serial, new.signing_serial),
                                       (old.auth_serial, new.auth_serial)):
            if old_serial is None:
                continue
            self._revoke_serials([old_serial], RevocationReason.SUPERSEDED, actor.actor)
            if new_serial is not None:
                self.jpki.link_serials(old_serial, new_serial)
        return new, card

    # -- smartphone -------------------------------------------------------------------------
    def issue_smartphone(
        self, card_id: str, signing_public_key_pem: str, auth_public_key_pem: str,
        proof: bytes,
    ) -> SmartphoneCredential:
        """スマホ用電子証明書: the phone's own key pairs, certified because the card's signing
        key (after its signing password) signed :func:`smartphone_enrolment_message`. One
        phone at a time: a phone enrolled before is superseded (its certificates revoked and
        linked to the new ones)."""
        record = self.card(card_id)
        with self._transaction() as session:
            row = self._card_row(session, record.card_id)
            card_key_pem = row.signing_public_key
        if record.state is not CardState.ACTIVE or record.signing_serial is None \
                or card_key_pem is None:
            raise CardStateConflict("needs an active card with a signing certificate",
                                    field="card_id")
        if self.jpki.state(record.signing_serial) is not CertificateState.GOOD:
            raise CardStateConflict("the card's signing certificate is not valid",
                                    field="card_id")
        try:
            phone_keys = [serialization.load_pem_public_key(p.encode("ascii"))
                          for p in (signing_public_key_pem, auth_public_key_pem)]
        except (ValueError, UnicodeError):
            raise InvalidInput("the phone's public keys must be PEM", field="public_key") \
                from None
        if not all(isinstance(k, rsa.RSAPublicKey) and k.key_size == 2048
                   for k in phone_keys):
            raise InvalidInput("the phone's keys must be RSA-2048", field="public_key")
        ders = [k.public_bytes(serialization.Encoding.DER,
                               serialization.PublicFormat.SubjectPublicKeyInfo)
                for k in phone_keys]
        card_key = serialization.load_pem_public_key(card_key_pem.encode("ascii"))
        assert isinstance(card_key, rsa.RSAPublicKey)
        try:
            card_key.verify(proof, smartphone_enrolment_message(record.card_id, *ders),
                            padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            with self._transaction() as session:
                self._audit(session, "card:smartphone:refused", "holder",
                            f"card:{record.card_id}")
            raise IdentityNotVerified("the card's signature over the phone's keys is not valid",
                                      field="proof") from None
        signing = self.jpki.issue_certificate(
            record.resident_id, CertificateKind.SIGNING, signing_public_key_pem,
            record.expires_on, device=Device.SMARTPHONE,
        )
        auth = self.jpki.issue_certificate(
            record.resident_id, CertificateKind.AUTH, auth_public_key_pem, record.expires_on,
            device=Device.SMARTPHONE,
        )
        previous = [c for c in self.smartphones_of(record.card_id) if c.active]
        with self._transaction() as session:
            cred = m.SmartphoneCredential(card_id=record.card_id,
                                          resident_id=record.resident_id,
                                          signing_serial=str(signing.serial),
                                          auth_serial=str(auth.serial))
            session.add(cred)
            session.flush()
            self._audit(session, "card:smartphone:issue", "holder", f"card:{record.card_id}",
                        credential=cred.id, superseded=[c.id for c in previous])
            issued = SmartphoneCredential(cred.id, record.card_id, signing.serial, auth.serial,
                                          True, (signing.pem, auth.pem))
        for old in previous:
            self._revoke_smartphone(old.id, "holder", RevocationReason.SUPERSEDED,
                                    channel="enrolment")
            for old_serial, new_serial in ((old.signing_serial, signing.serial),
                                           (old.auth_serial, auth.serial)):
                if old_serial is not None:
                    self.jpki.link_serials(old_serial, new_serial)
        return issued

    def smartphones_of(self, card_id: str) -> list[SmartphoneCredential]:
        with self._transaction() as session:
            rows = session.scalars(select(m.SmartphoneCredential).where(
                m.SmartphoneCredential.card_id == card_id.upper())
                .order_by(m.SmartphoneCredential.id)).all()
            return [SmartphoneCredential(r.id, r.card_id, _int(r.signing_serial),
                                         _int(r.auth_serial), r.active) for r in rows]

    def revoke_smartphone(self, credential_id: int, actor: str) -> list[int]:
        """Revoke one smartphone credential's certificates on their own; the card's (and any
        other credential's) stay valid."""
        return self._revoke_smartphone(credential_id, actor, RevocationReason.DEVICE_REVOKED,
                                       channel="counter")

    def _revoke_smartphone(self, credential_id: int, actor: str, reason: RevocationReason,
                           channel: str) -> list[int]:
        with self._transaction() as session:
            cred = session.get(m.SmartphoneCredential, credential_id)
            if cred is None:
                raise NotFound("no smartphone credential with this id", field="credential_id")
            serials = [int(s) for s in (cred.signing_serial, cred.auth_serial) if s is not None]
        revoked = self._revoke_serials(serials, reason, actor)
        with self._transaction() as session:
            cred = session.get(m.SmartphoneCredential, credential_id)
            assert cred is not None
            cred.active = False
            self._audit(session, "card:smartphone:revoke", actor, f"card:{cred.card_id}",
                        credential=credential_id, revoked=list(revoked), channel=channel)
        return revoked

    # -- free area --------------------------------------------------------------------------
    def _may_write(self, actor: StaffPrincipal, resident_id: int, app_id: str) -> str:
        """The issuer an actor writes ``app_id`` as, or FreeAreaRefused (recorded)."""
        rule = FREE_AREA_RULES.get(app_id)
        if rule is None:
            raise InvalidInput(
                "the free area accepts only: " + ", ".join(sorted(FREE_AREA_RULES)),
                field="app_id")
        if actor.id == 0:  # the system acts for the holder's own municipality
            holder = self.registry.get_resident(SYSTEM, resident_id, "空き領域の利用")
            return holder.municipality_code
        if rule.writer == "any_municipality":
            return actor.municipality_code
        holder = self.registry.get_resident(SYSTEM, resident_id, "空き領域の利用")
        if holder.municipality_code != actor.municipality_code:
            raise FreeAreaRefused(
                f"{app_id} is written only by the municipality where the holder lives",
                field="app_id")
        return actor.municipality_code

    def register_app(self, actor: StaffPrincipal, card_id: str, app_id: str,
                     issuer: str | None = None) -> FreeAreaEntry:
        """Register an application in the card's free area (空き領域). Only applications of
        :data:`FREE_AREA_RULES`, each by the writers its rule names; the issuer recorded is
        the writing municipality (``issuer`` is ignored, kept for old callers)."""
        del issuer
        app_id = (app_id or "").strip()
        if not app_id or len(app_id) > APP_ID_MAX:
            raise InvalidInput(f"app_id must be 1 to {APP_ID_MAX} characters", field="app_id")
        record = self.card(card_id)
        try:
            writer = self._may_write(actor, record.resident_id, app_id)
        except FreeAreaRefused:
            with self._transaction() as session:
                self._audit(session, "card:free_area:refused", actor.actor,
                            f"card:{record.card_id}", app_id=app_id)
            raise
        with self._transaction() as session:
            row = self._card_row(session, card_id, lock=True)
            if row.state != CardState.ACTIVE.value:
                raise CardStateConflict(f"the card is {row.state}", field="card_id")
            exists = session.scalars(select(m.FreeAreaApp).where(
                m.FreeAreaApp.card_id == row.card_id, m.FreeAreaApp.app_id == app_id)).first()
            if exists is not None:
                raise CardStateConflict("this application is already on the card",
                                        field="app_id")
            entry = m.FreeAreaApp(card_id=row.card_id, app_id=app_id, issuer=writer)
            session.add(entry)
            try:
                session.flush()
            except IntegrityError:
                raise CardStateConflict("this application is already on the card",
                                        field="app_id") from None
            self._audit(session, "card:free_area:register", actor.actor, f"card:{row.card_id}",
                        app_id=app_id, issuer=writer)
            return FreeAreaEntry(entry.id, row.card_id, app_id, writer, entry.registered_at)

    def free_area(self, card_id: str) -> list[FreeAreaEntry]:
        with self._transaction() as session:
            row = self._card_row(session, card_id)
            entries = session.scalars(select(m.FreeAreaApp).where(
                m.FreeAreaApp.card_id == row.card_id).order_by(m.FreeAreaApp.id)).all()
            return [FreeAreaEntry(e.id, e.card_id, e.app_id, e.issuer, e.registered_at)
                    for e in entries]

    def remove_app(self, actor: StaffPrincipal, card_id: str, app_id: str) -> None:
        """Remove an application: only its issuer (the municipality that wrote it)."""
        with self._transaction() as session:
            row = self._card_row(session, card_id)
            entry = session.scalars(select(m.FreeAreaApp).where(
                m.FreeAreaApp.card_id == row.card_id, m.FreeAreaApp.app_id == app_id)).first()
            if entry is None:
                raise NotFound("this application is not on the card", field="app_id")
            if actor.id != 0 and entry.issuer != actor.municipality_code:
                raise FreeAreaRefused("only the municipality that wrote it removes it",
                                      field="app_id")
            session.delete(entry)
            self._audit(session, "card:free_area:remove", actor.actor, f"card:{row.card_id}",
                        app_id=app_id)


def _jst_date(moment: dt.datetime) -> dt.date:
    return in_japan(moment).date()


def _kind_of(pin_kind: PinKind) -> CertificateKind:
    return CertificateKind.SIGNING if pin_kind is PinKind.SIGNING else CertificateKind.AUTH


if TYPE_CHECKING:
    def _implements_protocol(service: CardServiceImpl) -> CardService:
        return service  # mypy checks here that the implementation keeps the protocol
