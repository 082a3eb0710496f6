"""The portal's card login and sessions (ログイン, 代理人として操作)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import secrets
from typing import Any

from cryptography import x509
from sqlalchemy import delete, select, update

from mynumber import audit
from mynumber.jpki import verify as jpki_status
from mynumber.jpki.interfaces import (
    CertificateKind,
    CertificateNotFound,
    CertificateState,
    VerificationFailed,
)
from mynumber.jpki.verify import CallableStatusSource, Refusal, RelyingPartyVerifier
from mynumber.portal import models as m
from mynumber.portal.common import hash_secret
from mynumber.portal.interfaces import (
    LOGIN_PURPOSE,
    PORTAL_AGENCY,
    PURPOSE_PATTERN,
    LoginChallenge,
    LoginFailed,
    NotAProxy,
    PortalSession,
    ProxyKind,
    SessionExpired,
)
from mynumber.portal.services.core import (
    PortalCore,
    open_serial,
    seal_serial,
)

CHALLENGE_BYTES = 32
CHALLENGE_TTL = dt.timedelta(minutes=5)
MAX_CERTIFICATE_PEM = 16 * 1024
MAX_SIGNATURE = 1024
MAX_TOKEN = 128


class Sessions(PortalCore):
    """Login with the card, sessions, logout, acting for a principal."""

    # -- login and sessions ------------------------------------------------------------------------
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

    def begin_login(self, purpose: str = LOGIN_PURPOSE) -> LoginChallenge:
        if not isinstance(purpose, str) or not re.fullmatch(PURPOSE_PATTERN, purpose):
            raise ValueError("purpose: lower-case letters, digits and _.:-, at most 80")
        now = self.clock()
        challenge_id = secrets.token_urlsafe(24)
        challenge = secrets.token_bytes(CHALLENGE_BYTES)
        with self._transaction() as session:
            session.execute(delete(m.LoginChallenge).where(
                m.LoginChallenge.expires_at < now - dt.timedelta(days=1)))
            session.add(m.LoginChallenge(challenge_id=challenge_id, challenge=challenge,
                                         created_at=now, expires_at=now + CHALLENGE_TTL,
                                         purpose=purpose))
        return LoginChallenge(challenge_id, challenge, now + CHALLENGE_TTL)

    def _consume_challenge(self, challenge_id: str, now: dt.datetime, purpose: str) -> bytes:
        """Spend the challenge issued for ``purpose`` (one statement: of two parallel uses one
        wins). A challenge issued for another purpose is unknown here, and stays unspent."""
        if not isinstance(challenge_id, str) or not 0 < len(challenge_id) <= 64:
            raise LoginFailed("unknown login challenge", reason="unknown_challenge")
        with self._transaction() as session:
            taken = session.execute(  # type: ignore[attr-defined]
                update(m.LoginChallenge)
                .where(m.LoginChallenge.challenge_id == challenge_id,
                       m.LoginChallenge.purpose == purpose,
                       m.LoginChallenge.used_at.is_(None))
                .values(used_at=now)
            ).rowcount
            row = session.execute(
                select(m.LoginChallenge.challenge, m.LoginChallenge.expires_at)
                .where(m.LoginChallenge.challenge_id == challenge_id,
                       m.LoginChallenge.purpose == purpose)
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
        verification, serial = self._verify_card(challenge_id, signature, certificate_pem, now,
                                                 LOGIN_PURPOSE)
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

    def _verify_card(self, challenge_id: str, signature: bytes, certificate_pem: str,
                     now: dt.datetime, purpose: str) -> tuple[Any, int]:
        """The card's signature over a portal challenge issued for ``purpose`` (spent here,
        once), checked as a login is: chain, revocation, signature. The verification and the
        certificate's serial."""
        challenge = self._consume_challenge(challenge_id, now, purpose)
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
        return verification, int(serial)

    def verify_card(self, challenge_id: str, signature: bytes, certificate_pem: str, *,
                    purpose: str) -> int:
        """A fresh card authentication for a procedure (one that must be made by the card's
        holder now, not by whoever left a session open): the challenge, issued for exactly
        ``purpose``, is spent, no session is opened or changed. The authentication
        certificate's serial. A login challenge is refused here, and any other purpose's
        challenge by the login: a bank's counter cannot open a portal session with it."""
        return self._verify_card(challenge_id, signature, certificate_pem, self.clock(),
                                 purpose)[1]

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

    def certificate_serial(self, token: str) -> int | None:
        """The serial of the card certificate a live session was opened with, opened from
        the seal only the session's own token opens (None without a card or a session)."""
        if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN:
            return None
        with self._transaction() as session:
            row = session.scalar(select(m.PortalSessionRow).where(
                m.PortalSessionRow.token_hash == hash_secret(token)))
            if row is None or row.ended_at is not None:
                return None
            return open_serial(token, row.session_id, row.certificate_seal)

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

