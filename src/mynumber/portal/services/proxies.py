"""Proxies (代理人): registration and revocation by counter staff, expiry, principals."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update

from mynumber import audit
from mynumber.auth.interfaces import StaffPrincipal
from mynumber.errors import Conflict
from mynumber.portal import models as m
from mynumber.portal.interfaces import (
    PortalError,
    PortalSession,
    ProxyKind,
    ProxyNotFound,
    ProxyRecord,
)
from mynumber.portal.services.core import (
    PortalCore,
    clean,
)
from mynumber.registry.interfaces import OutsideJurisdiction


class ProxyAlreadyRegistered(Conflict):
    code = "proxy_already_registered"
    title = "This proxy is already registered"


def _to_proxy(row: m.ProxyRow, principal_name: str = "") -> ProxyRecord:
    return ProxyRecord(row.id, row.principal_account_id, row.proxy_account_id,
                       ProxyKind(row.kind), row.registered_by, row.registered_at,
                       row.valid_until, row.revoked_at, principal_name)


class Proxies(PortalCore):
    """Proxy registrations at the counter (代理人), their end, and principals."""

    # -- proxies -----------------------------------------------------------------------------------
    def register_proxy(
        self, staff_actor: str, principal_resident_id: int, proxy_resident_id: int,
        kind: ProxyKind, valid_until: dt.date | None = None, *,
        principal_name: str | None = None,
    ) -> ProxyRecord:
        actor = clean(staff_actor, "staff_actor", 80)
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
        actor = clean(staff_actor, "staff_actor", 80)
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
