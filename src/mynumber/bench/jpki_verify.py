"""Workload ``jpki-verify``: relying-party authentication verifications per second.

One verification is :meth:`RelyingPartyVerifier.verify_authentication` in full: relying-party
check, certificate kind, the RSA-2048 signature over the challenge, validity at now, the chain
to the root, revocation status and the pairwise identifier. The figure is reported as a ratio to
raw RSA-2048 RSASSA-PKCS1-v1_5 / SHA-256 verifications per second (``cryptography``, same
signatures, same run); the issue's goal is a ratio of at least 0.3.

Set-up (not timed): a throwaway root, user-authentication CA and OCSP responder, ``holders``
auth certificates (default 16) each with a signed challenge, and an in-memory stand-in for the
JPKI service (registered relying party; pairwise id = HMAC-SHA256 of relying party and serial).

Status sources:

* ``per_second`` uses a :class:`CallableStatusSource` over a dict (serial -> status), i.e. the
  in-process status a verifier running next to JPKI would use (``status_source``
  ``"callable-dict"``).
* ``ocsp_cached_per_second`` uses :class:`OcspStatusSource` with real, signed responses from
  ``revocation.build_response`` through an ``httpx.MockTransport`` (no sockets); each holder's
  answer is fetched and verified once, then served from the cache until nextUpdate.
* ``uncached_chain_per_second``: callable status with the end-entity cache switched off, so
  every call parses the PEM and checks the issuer's signature on the certificate again (the
  issuing CA's own path to the root stays cached).

The verifier caches a validated end-entity certificate keyed by its exact PEM text for
``chain_cache_seconds`` (default 300 s); validity at now and revocation status are checked on
every call regardless.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from mynumber.bench import BenchOptions, BenchProgress, NoProgress, Report
from mynumber.jpki.interfaces import (
    CertificateKind,
    HolderProof,
    RelyingParty,
    SigningVerification,
)
from mynumber.jpki.profiles import (
    RevocationEndpoints,
    auth_certificate,
    ca_certificate,
    ocsp_responder_certificate,
)
from mynumber.jpki.revocation import GOOD, CertificateStatus, build_response, revoked
from mynumber.jpki.verify import (
    CallableStatusSource,
    OcspStatusSource,
    RelyingPartyVerifier,
    StatusSource,
)

DEFAULT_COUNT = 20_000
DEFAULT_HOLDERS = 16
GOAL_RATIO = 0.3
RELYING_PARTY = 1
BASE_URL = "https://jpki.bench.invalid"


class BenchJpki:
    """The JPKI calls a verifier makes, in memory (one registered auth relying party)."""

    def __init__(self) -> None:
        self._secret = secrets.token_bytes(32)
        self._party = RelyingParty(RELYING_PARTY, "bench", (CertificateKind.AUTH,), True)

    def relying_party(self, relying_party_id: int) -> RelyingParty:
        return self._party

    def basic_items(self, relying_party_id: int, serial: int) -> SigningVerification:
        raise NotImplementedError("the bench verifies auth certificates only")

    def pairwise_id(self, relying_party_id: int, serial: int) -> str:
        message = f"{relying_party_id}:{serial}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def record_user(self, relying_party_id: int, proof: HolderProof) -> None:
        return None


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class Fixture:
    """A throwaway PKI with ``holders`` auth certificates and their signed challenges."""

    def __init__(self, holders: int) -> None:
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        ca_from, ca_to = now - dt.timedelta(days=1), now + dt.timedelta(days=3650)
        root_key = _key()
        self.root = ca_certificate("JPKI Root CA (bench)", root_key.public_key(),
                                   issuer_key=root_key, not_before=ca_from, not_after=ca_to,
                                   path_length=1)
        self.ca_key = _key()
        self.ca = ca_certificate("JPKI User Authentication CA (bench)",
                                 self.ca_key.public_key(), issuer=self.root,
                                 issuer_key=root_key, not_before=ca_from, not_after=ca_to,
                                 path_length=0)
        self.responder_key = _key()
        self.responder = ocsp_responder_certificate(
            self.responder_key.public_key(), issuer=self.ca, issuer_key=self.ca_key,
            not_before=ca_from, not_after=now + dt.timedelta(days=7),
            subject_cn="JPKI Auth CA OCSP responder (bench)",
        )
        endpoints = RevocationEndpoints.from_base_url(BASE_URL, "auth")
        self.challenges: list[tuple[bytes, bytes, str, rsa.RSAPublicKey]] = []
        for _ in range(holders):
            key = _key()
            cert = auth_certificate(key.public_key(), issuer=self.ca, issuer_key=self.ca_key,
                                    not_before=ca_from, not_after=now + dt.timedelta(days=1800),
                                    endpoints=endpoints)
            challenge = secrets.token_bytes(32)
            signature = key.sign(challenge, padding.PKCS1v15(), hashes.SHA256())
            pem = cert.public_bytes(serialization.Encoding.PEM).decode()
            self.challenges.append((challenge, signature, pem, key.public_key()))
        # One extra, revoked serial so the table is not trivially empty.
        self.statuses: dict[int, CertificateStatus] = {
            x509.random_serial_number(): revoked(now - dt.timedelta(days=1))
        }
        self.jpki = BenchJpki()

    def lookup(self, serial: int) -> CertificateStatus:
        return self.statuses.get(serial, GOOD)

    def verifier(self, status: StatusSource, *, chain_cache_seconds: float = 300.0
                 ) -> RelyingPartyVerifier:
        return RelyingPartyVerifier([self.root], [self.ca], status, RELYING_PARTY, self.jpki,
                                    chain_cache_seconds=chain_cache_seconds)

    def ocsp_source(self) -> tuple[OcspStatusSource, list[int]]:
        calls: list[int] = []

        def handle(request: httpx.Request) -> httpx.Response:
            calls.append(1)
            body = build_response(request.content, self.lookup, self.responder,
                                  self.responder_key, self.ca, dt.datetime.now(dt.UTC))
            return httpx.Response(200, content=body)

        client = httpx.Client(transport=httpx.MockTransport(handle))
        return OcspStatusSource(client=client), calls


#: Verifications between two progress reports (a report stores a number; the block keeps it
#: out of the per-verification loop).
REPORT_BLOCK = 256


def _rate(count: int, step: Callable[[int], object], report: Report | None = None) -> float:
    t0 = time.perf_counter()
    for first in range(0, count, REPORT_BLOCK):
        last = min(first + REPORT_BLOCK, count)
        for i in range(first, last):
            step(i)
        if report is not None:
            report(last)
    return count / (time.perf_counter() - t0)


def run_jpki_verify(count: int = DEFAULT_COUNT, holders: int = DEFAULT_HOLDERS,
                    progress: BenchProgress | None = None) -> dict[str, Any]:
    if count < 1 or holders < 1:
        raise ValueError("count and holders must be positive")
    progress = progress or NoProgress()

    def measured(description: str, n: int, step: Callable[[int], object]) -> float:
        with progress.phase(description, total=n) as report:
            return _rate(n, step, report)

    with progress.phase(f"creating a throwaway PKI ({holders} holders)"):
        fixture = Fixture(holders)
    items = fixture.challenges
    n = len(items)
    pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()

    def raw(i: int) -> None:
        challenge, signature, _, public_key = items[i % n]
        public_key.verify(signature, challenge, pkcs1, sha256)

    def full(verifier: RelyingPartyVerifier) -> Callable[[int], object]:
        def step(i: int) -> object:
            challenge, signature, pem, _ = items[i % n]
            return verifier.verify_authentication(challenge, signature, pem)
        return step

    callable_verifier = fixture.verifier(CallableStatusSource(fixture.lookup))
    ocsp_source, ocsp_calls = fixture.ocsp_source()
    ocsp_verifier = fixture.verifier(ocsp_source)
    uncached_verifier = fixture.verifier(CallableStatusSource(fixture.lookup),
                                         chain_cache_seconds=0.0)
    # Warm up: every certificate once (fills the caches, as a running verifier would have).
    with progress.phase("warming up"):
        for verifier in (callable_verifier, ocsp_verifier):
            for i in range(n):
                full(verifier)(i)
        ids = {callable_verifier.verify_authentication(c, s, p).pairwise_id
               for c, s, p, _ in items}

    baseline = measured("raw RSA verifications (baseline)", count, raw)
    per_second = measured("verifications", count, full(callable_verifier))
    ocsp_cached = measured("verifications with OCSP (cached)", count, full(ocsp_verifier))
    uncached = measured("verifications without the chain cache", max(1, count // 4),
                        full(uncached_verifier))
    # The machine may be shared: the baseline is measured on both sides.
    baseline_after = measured("raw RSA verifications again (baseline)", count, raw)
    baseline_per_second = (baseline + baseline_after) / 2
    ratio = per_second / baseline_per_second
    return {
        "per_second": per_second,
        "baseline_per_second": baseline_per_second,
        "ratio": ratio,
        "count": count,
        "goal_ratio": GOAL_RATIO,
        "goal_met": ratio >= GOAL_RATIO,
        "status_source": "callable-dict (in-process CallableStatusSource over a dict)",
        "ocsp_cached_per_second": ocsp_cached,
        "ocsp_cached_ratio": ocsp_cached / baseline_per_second,
        "ocsp_requests": len(ocsp_calls),
        "uncached_chain_per_second": uncached,
        "uncached_chain_ratio": uncached / baseline_per_second,
        "baseline_samples": [baseline, baseline_after],
        "holders": n,
        "distinct_pairwise_ids": len(ids),
        "chain_cache_seconds": 300.0,
    }


def run(options: BenchOptions) -> dict[str, Any]:
    return run_jpki_verify(options.count or DEFAULT_COUNT,
                           int(options.extra.get("holders", DEFAULT_HOLDERS)), options.progress)
