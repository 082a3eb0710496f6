"""わたしの情報, やりとり履歴 (with inclusion proofs) and the activity list."""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy import select, update

from mynumber import audit
from mynumber.db import HotSQL
from mynumber.network.interfaces import (
    AccessRecord,
    IndividualNumberInAnswer,
    SignedTreeHead,
    contains_individual_number,
)
from mynumber.portal import merkle
from mynumber.portal import models as m
from mynumber.portal.interfaces import (
    MUNICIPALITY,
    PORTAL_AGENCY,
    SELF_INFORMATION_TASK,
    Activity,
    HistoryEntry,
    InformationResult,
    InformationSource,
    PortalSession,
    ProxyKind,
    RecordNotFound,
    RecordVerification,
    UnknownScope,
)
from mynumber.portal.oauth_models import ReleaseRecord
from mynumber.portal.services.core import (
    SERIAL,
    AccountRef,
    PortalCore,
)

BASIC_FOUR = ("name", "name_kana", "birth_date", "sex", "address")
ACTIVITY_LIMIT = 500

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


def _to_activity(row: m.ActivityRow) -> Activity:
    return Activity(row.at, row.action, row.actor_account_id, row.subject_account_id,
                    ProxyKind(row.proxy_kind) if row.proxy_kind else None, row.detail)


class Information(PortalCore):
    """わたしの情報, the self-information API's fetch, やりとり履歴 and its proofs, activities."""

    # -- わたしの情報 ------------------------------------------------------------------------------
    def sources(self) -> Sequence[InformationSource]:
        return SOURCES

    @staticmethod
    def _source(scope: str) -> InformationSource:
        source = _SOURCES.get(scope) if isinstance(scope, str) else None
        if source is None:
            raise UnknownScope("no such information item", field="scope")
        return source

    def _fetch(self, ref: AccountRef, source: InformationSource) -> InformationResult:
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

        if not record.verified:
            return answer(False, reason="the record does not match its entry in the signed log")
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

