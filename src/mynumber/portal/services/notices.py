"""お知らせ, the 児童手当 現況届 and applications."""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, cast

from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mynumber import audit
from mynumber.auth.interfaces import StaffPrincipal
from mynumber.errors import Conflict
from mynumber.network.interfaces import (
    contains_individual_number,
)
from mynumber.portal import models as m
from mynumber.portal.attachments import check_documents
from mynumber.portal.interfaces import (
    CHILD_ALLOWANCE_TASK,
    NOTICE_CLOCK_SKEW,
    PORTAL_AGENCY,
    ApplicationRecord,
    ApplicationState,
    Attachment,
    AttachmentNotFound,
    ChildAllowanceForm,
    DocumentUpload,
    EventNotice,
    Notice,
    NoticeAlreadyAnswered,
    NoticeNotFound,
    NoticeState,
    PortalError,
    PortalSession,
    ProxyKind,
)
from mynumber.portal.services.core import (
    SERIAL,
    AccountRef,
    clean,
)
from mynumber.portal.services.information import Information

CHILD_ALLOWANCE_NOTICE = "child_allowance_status_report"
CHILD_ALLOWANCE_APPLICATION = "child_allowance_status_report"
NOTICE_KIND = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
FORM_FILL_SCOPES = ("basic_four", "resident_record", "income", "medical_insurance")
# How long a signed お知らせ's nonce is remembered (a request is accepted up to one
# NOTICE_CLOCK_SKEW either side, so twice that).
NOTICE_NONCE_TTL = 2 * NOTICE_CLOCK_SKEW + dt.timedelta(minutes=1)


class NumberInNotice(PortalError):
    code = "individual_number_in_notice"
    title = "A notice must not contain an individual number"


class NoticeReplayed(Conflict):
    code = "notice_replayed"
    title = "This signed notice was already received"


def _age(birth: dt.date, on: dt.date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def _content(kind: object, title: str, body: str) -> tuple[str, str]:
    """A notice's kind checked, its title and body cleaned; refused if they carry a 個人番号."""
    if not isinstance(kind, str) or not NOTICE_KIND.match(kind):
        raise PortalError("kind: lower-case letters, digits and _", field="kind")
    title = clean(title, "title", 200)
    body = clean(body, "body", 4000, multiline=True)
    if contains_individual_number([title, body]):
        # The portal carries no 個人番号 to a resident, whoever sends it.
        raise NumberInNotice("title/body: must not contain an individual number",
                             field="body")
    return title, body


def _to_notice(row: m.NoticeRow) -> Notice:
    state = (NoticeState.ANSWERED if row.answered_at else
             NoticeState.READ if row.read_at else NoticeState.UNREAD)
    return Notice(row.id, row.sender_id, row.sender_name, row.kind, row.title, row.body,
                  row.created_at, state, row.read_at, row.answered_at, row.application_id)


def _to_attachment(row: m.AttachmentRow) -> Attachment:
    return Attachment(row.id, row.application_id, row.kind, row.filename, row.content_type,
                      row.size, row.sha256, row.uploaded_at)


def _to_application(row: m.ApplicationRow,
                    attachments: Sequence[m.AttachmentRow] = ()) -> ApplicationRecord:
    return ApplicationRecord(
        row.id, row.kind, row.agency_id, ApplicationState(row.state), row.uses_number,
        tuple(row.documents or ()), dict(row.data or {}), row.submitted_at,
        ProxyKind(row.by_proxy) if row.by_proxy else None, row.declined_serial,
        attachments=tuple(_to_attachment(a) for a in attachments),
        application_ref=row.application_ref)


# The attachments' descriptions, without loading their bytes.
_ATTACHMENT_COLUMNS = (m.AttachmentRow.id, m.AttachmentRow.application_id, m.AttachmentRow.kind,
                       m.AttachmentRow.filename, m.AttachmentRow.content_type,
                       m.AttachmentRow.size, m.AttachmentRow.sha256,
                       m.AttachmentRow.uploaded_at)


def _with_attachments(tx: Session, rows: Sequence[m.ApplicationRow]) -> list[ApplicationRecord]:
    by_application: dict[int, list[Any]] = {}
    ids = [r.id for r in rows]
    if ids:
        for a in tx.execute(select(*_ATTACHMENT_COLUMNS)
                            .where(m.AttachmentRow.application_id.in_(ids))
                            .order_by(m.AttachmentRow.id)):
            by_application.setdefault(a.application_id, []).append(a)
    return [_to_application(r, by_application.get(r.id, ())) for r in rows]


class Notices(Information):
    """お知らせ and the 児童手当 現況届 they ask for (filled from わたしの情報)."""

    # -- お知らせ ----------------------------------------------------------------------------------
    def send_notice(
        self, agency_id: str, agency_code: str, kind: str, title: str, body: str, *,
        nonce: str | None = None,
    ) -> Notice:
        """With ``nonce`` (a signed request's), the nonce is stored with the notice in one
        transaction: a second request with it is NoticeReplayed."""
        if nonce is not None:
            nonce = clean(nonce, "nonce", 64)
        agency_id = clean(agency_id, "agency_id", 64)
        agency_code = clean(agency_code, "agency_code", 64)
        title, body = _content(kind, title, body)
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

    def send_event_notices(self, notices: Sequence[EventNotice]) -> int:
        """Notices agencies send because of events (registry changes), in one transaction:
        each stored once per ``source_event`` however often its event is delivered. Returns
        how many were new."""
        cleaned: list[EventNotice] = []
        contents: dict[tuple[object, str, str], tuple[str, str]] = {}  # few texts, many notices
        for n in notices:
            source = clean(n.source_event, "source_event", 80)
            key = (n.kind, n.title, n.body)
            if key not in contents:
                contents[key] = _content(n.kind, n.title, n.body)
            title, body = contents[key]
            cleaned.append(replace(n, source_event=source, title=title, body=body))
        checked: list[tuple[EventNotice, str, str]] = []  # (notice, portal code, sender)
        by_agency: dict[str, list[EventNotice]] = {}
        for n in cleaned:
            by_agency.setdefault(n.agency_id, []).append(n)
        for agency_id, group in by_agency.items():
            # The core maps the agency's codes to the portal's, one call per agency.
            portal_agency, codes = self.network.portal_codes(
                agency_id, [n.agency_code for n in group])
            if portal_agency != PORTAL_AGENCY:
                raise PortalError("the network routes notices to another portal",
                                  field="agency_id")
            sender = self._agency_name(agency_id)
            for n, code in zip(group, codes, strict=True):
                if code is None:
                    raise PortalError("unknown agency code", field="agency_code")
                checked.append((n, code, sender))
        if not checked:
            return 0
        now = self.clock()
        for attempt in (1, 2):
            try:
                with self._transaction() as session:
                    sources = [n.source_event for n, _, _ in checked]
                    seen = set(session.scalars(select(m.NoticeRow.source_event).where(
                        m.NoticeRow.source_event.in_(sources))))
                    rows = [{"recipient_code": code, "sender_id": n.agency_id,
                             "sender_name": sender, "kind": n.kind, "title": n.title,
                             "body": n.body, "created_at": now,
                             "source_event": n.source_event}
                            for n, code, sender in checked if n.source_event not in seen]
                    if rows:  # plain rows in one statement: thousands per delivered batch
                        session.execute(insert(cast(Table, m.NoticeRow.__table__)), rows)
                        audit.record(session, m.AuditEvent, "portal:notice:receive",
                                     actor="events", subject="notices", count=len(rows),
                                     first_source_event=rows[0]["source_event"])
                    return len(rows)
            except IntegrityError:  # the same events, delivered concurrently: look again
                if attempt == 2:
                    raise
        return 0

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
    def _notice_row(tx: Session, ref: AccountRef, notice_id: int) -> m.NoticeRow:
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

    def _open_notice(self, ref: AccountRef, notice_id: int) -> Notice:
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
            children.append({"name": clean(child.get("name", ""), "children.name", 200,
                                            required=False),
                             "birth_date": clean(child.get("birth_date", ""),
                                                  "children.birth_date", 10, required=False)})
        if not any(c["name"] for c in children):
            # A 現況届 is about the children the applicant supports: one at least.
            raise PortalError("children: at least one child", field="children")
        income = form.taxable_income
        if income is not None and (not isinstance(income, int) or not 0 <= income < 10**12):
            raise PortalError("taxable_income: a non-negative amount", field="taxable_income")
        serials = [s for s in form.prefilled_serials if isinstance(s, str) and SERIAL.match(s)]
        return {
            "applicant_name": clean(form.applicant_name, "applicant_name", 200,
                                     required=False),
            "address": clean(form.address, "address", 300, required=False),
            "taxable_income": income,
            "insurance_status": clean(form.insurance_status or "", "insurance_status", 64,
                                       required=False) or None,
            "children": children,
            "prefilled_serials": serials[:10],
        }

    def submit_child_allowance(
        self, session: PortalSession, notice_id: int, use_number: bool,
        form: ChildAllowanceForm, documents: Sequence[DocumentUpload],
    ) -> ApplicationRecord:
        ref, kind = self._subject(session)
        self._open_notice(ref, notice_id)
        data = self._form_data(form)
        # Every file is checked before anything is claimed or stored: a refusal leaves nothing.
        # With the number the data was fetched, and no document is taken.
        files = [] if use_number else check_documents(documents)
        attached = list(dict.fromkeys(f.kind for f in files))  # the kinds, for the core
        mayor = self.mayor_of(ref.municipality_code)
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
                stored = [m.AttachmentRow(
                    application_id=row.id, kind=f.kind, filename=f.filename,
                    content_type=f.content_type, size=len(f.content), sha256=f.sha256,
                    content=f.content, uploaded_at=now) for f in files]
                tx.add_all(stored)
                tx.flush()
                notice.answered_at = now
                notice.read_at = notice.read_at or now
                notice.application_id = row.id
                self._activity(tx, now, "submit_application", session.account_id,
                               ref.account_id, kind,
                               f"{CHILD_ALLOWANCE_APPLICATION} #{row.id} to {mayor} "
                               f"({'with the number' if use_number else 'documents, no number'})")
                if stored:
                    audit.record(tx, m.AuditEvent, "portal:attachment:receive",
                                 actor=f"account:{session.account_id}",
                                 subject=f"application:{row.id}", files=len(stored),
                                 bytes=sum(a.size for a in stored))
                return _to_application(row, stored)
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
            return _with_attachments(tx, rows)

    # -- the municipality's side ---------------------------------------------------------------
    def _staff_mayor(self, staff: StaffPrincipal) -> str | None:
        """The mayor agency of the staff member's municipality (None: none serves it)."""
        try:
            return self.mayor_of(staff.municipality_code)
        except PortalError:
            return None

    def received_applications(self, staff: StaffPrincipal) -> list[ApplicationRecord]:
        mayor = self._staff_mayor(staff)
        if mayor is None:
            return []
        with self._transaction() as tx:
            rows = tx.scalars(select(m.ApplicationRow)
                              .where(m.ApplicationRow.agency_id == mayor)
                              .order_by(m.ApplicationRow.id.desc())).all()
            # Staff reading residents' applications is recorded, like every staff read.
            audit.record(tx, m.AuditEvent, "portal:application:list", actor=staff.actor,
                         subject=f"agency:{mayor}", count=len(rows))
            return _with_attachments(tx, rows)

    def attachment_content(self, staff: StaffPrincipal,
                           attachment_id: int) -> tuple[Attachment, bytes]:
        mayor = self._staff_mayor(staff)
        with self._transaction() as tx:
            row = tx.get(m.AttachmentRow, attachment_id) if isinstance(
                attachment_id, int) else None
            application = tx.get(m.ApplicationRow, row.application_id) if row else None
            # Another municipality's document: the same answer as none at all.
            if row is None or application is None or mayor is None \
                    or application.agency_id != mayor:
                raise AttachmentNotFound("no such attached document", field="attachment_id")
            audit.record(tx, m.AuditEvent, "portal:attachment:download", actor=staff.actor,
                         subject=f"attachment:{row.id}", application=application.id)
            return _to_attachment(row), bytes(row.content)

