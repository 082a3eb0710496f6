"""Seeded cards for the embedded mode (``mynumber seed``): most residents hold a 個人番号カード.

Issuing 10,000 cards one by one at the counter would take most of an hour (two RSA-2048 key
pairs per chip, four scrypt PIN hashes, an identity verification, a chip file). A seed is not a
counter visit, so it takes an honest short cut and says so:

* **Pooled test keys.** A small pool of RSA-2048 key pairs (``pool_size``, 16 by default) is
  generated once per run and shared by every seeded card. Every certificate issued on one
  carries the subject OU :data:`~mynumber.jpki.profiles.POOLED_KEY_MARKER`
  (``POOLED-TEST-KEY-SEED-ONLY``), so no relying party can mistake it for a card's own key.
  The private halves are dropped at the end of the run: nobody holds them afterwards.
* **No chip file, no PINs.** Seeded cards are cards the residents "took home": the card
  database keeps their public data (ids, dates, serials, public keys), as it does for any card,
  and no ``DATA_DIR/cards/<card_id>.json`` exists (the CLI says "this card's chip is not held
  here"). So no PIN is hashed and no PIN is shared. To try PINs or signing, issue a card at
  the counter (``mynumber card issue``), which is unchanged.
* **No faked identity verification.** The card audit records each issuance as
  ``card:card:issue`` by ``system:seed`` (``seeded: true, pooled_test_key: true``); the
  registry's verification log gets nothing, since no verification took place. The
  application (申請書ID) is recorded as received and issued by ``system:seed``.
* **Batched writes.** Certificates are issued through
  ``JpkiServiceImpl.issue_pooled_seed_certificates`` (same rules: current resident, no signing
  certificate under 15; one jpki transaction per batch), then one card transaction per batch.
  A failed card transaction revokes that batch's certificates again.
* **Embedded mode only.** :func:`seed_cards` raises :class:`PooledKeysRefused` in production
  mode, and the jpki service refuses pooled issuance unless its keys are development keys.

Who gets a card: about ``share`` (75%) of current, numbered residents, drawn with ``seed``;
under-15s get the auth certificate only (no signing certificate under 15).
"""

from __future__ import annotations

import datetime as dt
import random
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select

from mynumber import audit
from mynumber.card import models as m
from mynumber.card.interfaces import ApplicationState, CardState
from mynumber.card.services import CONTEXT, card_expiry
from mynumber.codes import application_id as application_ids
from mynumber.db import Databases, utcnow
from mynumber.errors import Forbidden
from mynumber.jpki import profiles
from mynumber.jpki.interfaces import (
    CertificateKind,
    IssuedCertificate,
    RevocationReason,
    SeedCertificateRequest,
)
from mynumber.registry.interfaces import ResidentRecord, ResidentStatus
from mynumber.settings import Mode, Settings

SEED_ACTOR = "system:seed"
CARD_SHARE = 0.75
POOL_SIZE = 16
BATCH_SIZE = 500
DEFAULT_SEED = 2026


class PooledKeysRefused(Forbidden):
    code = "pooled_keys_refused"
    title = "Seeded cards (pooled test keys) are for the embedded mode only"


class SeedJpki(Protocol):
    def issue_pooled_seed_certificates(
        self, requests: Sequence[SeedCertificateRequest], actor: str,
    ) -> list[IssuedCertificate]: ...

    def revoke(self, serial: int, reason: RevocationReason, actor: str) -> None: ...


class CardSeedTarget(Protocol):
    """What seeding cards needs of the composition root (``mynumber.app.Container`` fits)."""

    settings: Settings
    databases: Databases

    @property
    def jpki(self) -> SeedJpki: ...


@dataclass
class CardSeedResult:
    eligible: int = 0
    cards: int = 0
    signing_certificates: int = 0
    auth_certificates: int = 0
    pool_size: int = 0
    seconds: float = 0.0


def pooled_keys(size: int) -> list[str]:
    """``size`` fresh RSA-2048 public keys (PEM); the private halves are not kept."""
    return [
        rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
        for _ in range(size)
    ]


def _holders_with_cards(databases: Databases) -> set[int]:
    with databases.unit_of_work(CONTEXT) as session:
        return set(session.scalars(select(m.Card.resident_id)))


def seed_cards(
    target: CardSeedTarget,
    residents: Iterable[ResidentRecord],
    *,
    share: float = CARD_SHARE,
    seed: int = DEFAULT_SEED,
    pool_size: int = POOL_SIZE,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int, int], None] | None = None,
) -> CardSeedResult:
    """Give about ``share`` of ``residents`` (current, numbered, without a card) a seeded card
    on pooled test keys. ``progress(done, total)`` is called after each batch."""
    if target.settings.mode is not Mode.EMBEDDED:
        raise PooledKeysRefused("seeded cards use pooled test keys: never in production mode")
    if not 0.0 <= share <= 1.0:
        raise ValueError("share must lie between 0 and 1")
    t0 = time.perf_counter()
    rng = random.Random(seed)
    taken = _holders_with_cards(target.databases)
    eligible = [r for r in residents if r.status is ResidentStatus.RESIDENT and r.numbered
                and r.id not in taken]
    chosen = [r for r in eligible if rng.random() < share]
    result = CardSeedResult(eligible=len(eligible))
    if not chosen:
        result.seconds = time.perf_counter() - t0
        return result
    pool = pooled_keys(max(1, pool_size))
    result.pool_size = len(pool)
    today = utcnow().date()
    for start in range(0, len(chosen), batch_size):
        _seed_batch(target, chosen[start:start + batch_size], pool, rng, today, result)
        if progress is not None:
            progress(result.cards, len(chosen))
    result.seconds = time.perf_counter() - t0
    return result


def _seed_batch(
    target: CardSeedTarget, holders: Sequence[ResidentRecord], pool: Sequence[str],
    rng: random.Random, today: dt.date, result: CardSeedResult,
) -> None:
    # The JST date decides the signing certificate, as in jpki (no refusal at midnight UTC).
    jst_today = dt.datetime.now(profiles.JST).date()
    requests: list[SeedCertificateRequest] = []
    plans: list[tuple[ResidentRecord, dt.date, int, int | None, int]] = []
    for holder in holders:
        expires_on = card_expiry(holder.birth_date, today)
        key = rng.randrange(len(pool))
        auth_index = len(requests)
        requests.append(SeedCertificateRequest(holder, CertificateKind.AUTH, pool[key],
                                               expires_on))
        signing_index: int | None = None
        if profiles.may_hold_signing_certificate(holder.birth_date, jst_today, False):
            signing_index = len(requests)
            requests.append(SeedCertificateRequest(holder, CertificateKind.SIGNING, pool[key],
                                                   expires_on))
        plans.append((holder, expires_on, auth_index, signing_index, key))
    issued = target.jpki.issue_pooled_seed_certificates(requests, SEED_ACTOR)
    ids = [(secrets.token_hex(8).upper(), application_ids.generate()) for _ in plans]
    try:
        with target.databases.unit_of_work(CONTEXT) as session:
            session.add_all([
                m.Application(application_id=application_id, resident_id=plan[0].id,
                              state=ApplicationState.ISSUED.value, received_by=SEED_ACTOR,
                              card_id=card_id)
                for (card_id, application_id), plan in zip(ids, plans, strict=True)
            ])
            session.flush()  # the cards refer to their applications
            for (card_id, application_id), (holder, expires_on, auth_index, signing_index,
                                            key) in zip(ids, plans, strict=True):
                auth = issued[auth_index]
                signing = issued[signing_index] if signing_index is not None else None
                session.add(m.Card(
                    card_id=card_id, resident_id=holder.id, application_id=application_id,
                    state=CardState.ACTIVE.value, issued_on=today, expires_on=expires_on,
                    signing_serial=None if signing is None else str(signing.serial),
                    auth_serial=str(auth.serial),
                    signing_public_key=None if signing is None else pool[key],
                    auth_public_key=pool[key],
                ))
                audit.record(session, m.AuditEvent, "card:card:issue", actor=SEED_ACTOR,
                             subject=f"card:{card_id}", resident=holder.id, previous=None,
                             signing=signing is not None, seeded=True, pooled_test_key=True)
    except BaseException:
        for certificate in issued:  # compensate: certificates for cards that do not exist
            with suppress(Exception):
                target.jpki.revoke(certificate.serial, RevocationReason.CESSATION, SEED_ACTOR)
        raise
    result.cards += len(plans)
    result.signing_certificates += sum(1 for p in plans if p[3] is not None)
    result.auth_certificates += len(plans)
