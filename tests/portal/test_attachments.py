"""添付書類 of the 児童手当 現況届 without the number (issue 13): real files, checked by their
content and size, stored with the application, listed on 申請状況, and downloaded at the
counter by staff of the municipality the application went to, and by no one else."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape
from sqlalchemy import func, select

from mynumber.app import Container
from mynumber.portal import models as m
from mynumber.portal.attachments import content_type, safe_filename
from mynumber.portal.interfaces import MAX_ATTACHMENT_BYTES, MAX_ATTACHMENTS, NoticeState
from mynumber.web.i18n import MESSAGES
from tests.conftest import SHIBUYA
from tests.portal.conftest import JPEG, PDF, PNG, CardHolder
from tests.portal.test_views import Browser, _notice, required_files
from tests.web.test_counter import logged_in, text_of

FORM = "/portal/applications/child-allowance"
Files = list[tuple[str, tuple[str, bytes, str]]]


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    from mynumber.app import create_app

    with TestClient(create_app(container=container)) as test_client:
        yield test_client


@pytest.fixture
def browser(client: TestClient) -> Browser:
    return Browser(client)


def _open_form(container: Container, browser: Browser, holder: CardHolder) -> dict[str, Any]:
    """Logged in, the 現況届 without the number opened: the fields to post."""
    notice_id = _notice(container, holder)
    browser.follow(browser.reader_login(holder))
    start = {"notice_id": str(notice_id), "use_number": "no"}
    form = browser.post(FORM + "/start", start)
    assert form.status_code == 200, form.text
    assert 'enctype="multipart/form-data"' in form.text
    return {**start, "applicant_name": holder.resident.name, "address": holder.resident.address,
            "taxable_income": "", "insurance_status": "", "child_name_0": "山田 花子",
            "child_birth_date_0": "2018-05-05", "prefilled_serials": ""}


def _stored(container: Container) -> tuple[int, int]:
    """(applications, attachments) in the portal's tables."""
    with container.databases.unit_of_work("portal") as tx:
        return (tx.scalar(select(func.count()).select_from(m.ApplicationRow)) or 0,
                tx.scalar(select(func.count()).select_from(m.AttachmentRow)) or 0)


def _submitted(container: Container, browser: Browser, holder: CardHolder,
               files: Files | None = None) -> Any:
    fields = _open_form(container, browser, holder)
    done = browser.post(FORM, fields, files=files if files is not None else required_files())
    assert done.status_code == 200, done.text
    (application,) = container.portal.applications(
        container.portal.session(browser.session_token()))
    return application


# --- the resident ---------------------------------------------------------------------------


def test_uploaded_documents_are_stored_with_the_application_and_listed(
    container: Container, browser: Browser, card_holder: CardHolder
) -> None:
    # The browser's declared type is not what decides: a PDF declared as octet-stream is a PDF.
    files = [("document_tax_certificate", ("C:\\scans\\課税証明書.pdf", PDF,
                                           "application/octet-stream")),
             ("document_health_insurance_copy", ("hoken.png", PNG, "image/png")),
             ("document_child_resident_record", ("juminhyo.jpg", JPEG, "image/jpeg")),
             ("document_other", ("extra.pdf", PDF + b"x" * 3000, "application/pdf"))]
    fields = _open_form(container, browser, card_holder)
    done = browser.post(FORM, fields, files=files)
    assert done.status_code == 200, done.text
    assert 'id="attached-files"' in done.text and "課税証明書.pdf" in done.text
    session = container.portal.session(browser.session_token())
    (application,) = container.portal.applications(session)
    assert [(a.kind, a.filename, a.content_type, a.size) for a in application.attachments] == [
        ("tax_certificate", "課税証明書.pdf", "application/pdf", len(PDF)),
        ("health_insurance_copy", "hoken.png", "image/png", len(PNG)),
        ("child_resident_record", "juminhyo.jpg", "image/jpeg", len(JPEG)),
        ("other", "extra.pdf", "application/pdf", len(PDF) + 3000)]
    assert list(application.documents) == ["tax_certificate", "health_insurance_copy",
                                           "child_resident_record", "other"]
    with container.databases.unit_of_work("portal") as tx:
        stored = {r.filename: bytes(r.content) for r in tx.scalars(select(m.AttachmentRow))}
    assert stored["課税証明書.pdf"] == PDF and stored["hoken.png"] == PNG

    listed = browser.get("/portal/applications")
    row = re.search(r'<tr data-application=.*?</tr>', listed.text, re.S)
    assert row is not None
    cells = text_of(row.group(0))
    for shown in ("添付ファイル", "課税証明書: 課税証明書.pdf", "健康保険証の写し: hoken.png",
                  "児童の住民票の写し: juminhyo.jpg", "その他の書類: extra.pdf", "(1 KB)",
                  "(3 KB)"):
        assert shown in (cells if shown != "添付ファイル" else listed.text), shown


def test_with_the_number_no_document_is_taken(
    container: Container, browser: Browser, card_holder: CardHolder
) -> None:
    from tests.portal.test_views import holder_data

    holder_data(container, card_holder)
    notice_id = _notice(container, card_holder)
    browser.follow(browser.reader_login(card_holder))
    start = {"notice_id": str(notice_id), "use_number": "yes"}
    form = browser.post(FORM + "/start", start)
    assert form.status_code == 200 and 'type="file"' not in form.text
    fields = {**start, "applicant_name": card_holder.resident.name,
              "address": card_holder.resident.address, "child_name_0": "山田 花子",
              "child_birth_date_0": "2018-05-05"}
    done = browser.post(FORM, fields, files=required_files())  # sent anyway: ignored
    assert done.status_code == 200, done.text
    assert _stored(container) == (1, 0)


BIG = PDF + b"0" * (MAX_ATTACHMENT_BYTES - len(PDF) + 1)  # one byte over the limit


@pytest.mark.parametrize(("files", "field", "message"), [
    pytest.param(
        [("document_tax_certificate", ("tax.pdf", b"<html><script>alert(1)</script>",
                                       "application/pdf")), *required_files()[1:]],
        "document_tax_certificate",
        "「課税証明書」に添付できるのは PDF・JPEG・PNG のファイルだけです", id="wrong-type"),
    pytest.param(
        [*required_files()[:2], ("document_child_resident_record",
                                 ("a.gif", b"GIF89a" + b"\0" * 20, "image/png"))],
        "document_child_resident_record",
        "「児童の住民票の写し」に添付できるのは PDF・JPEG・PNG のファイルだけです", id="gif"),
    pytest.param(
        [*required_files()[:2], ("document_child_resident_record",
                                 ("big.pdf", BIG, "application/pdf"))],
        "document_child_resident_record",
        "「児童の住民票の写し」のファイルが大きすぎます（1ファイル5MBまで）", id="too-big"),
    pytest.param(
        [*required_files(), *[("document_other", (f"o{i}.png", PNG, "image/png"))
                              for i in range(3)]],
        "document_other",
        "添付できるファイルは合計5つまでです（「その他の書類」で超えました）", id="too-many"),
    pytest.param(
        [("document_tax_certificate", ("empty.pdf", b"", "application/pdf")),
         *required_files()[1:]],
        "document_tax_certificate",
        "「課税証明書」のファイルが空です。別のファイルを選んでください", id="empty"),
    pytest.param(
        required_files()[:2], "document_child_resident_record",
        "「児童の住民票の写し」のファイルを添付してください", id="missing"),
])
def test_a_refused_file_names_its_field_and_nothing_is_stored(
    container: Container, browser: Browser, card_holder: CardHolder, files: Files, field: str,
    message: str,
) -> None:
    fields = _open_form(container, browser, card_holder)
    refused = browser.post(FORM, fields, files=files)
    assert refused.status_code == 422, refused.text[:2000]
    assert message in refused.text
    assert 'data-code="invalid_attachment' in refused.text
    # The input in error is marked, the rest of the form is kept, and the page says the files
    # must be chosen again.
    assert re.search(rf'<div class="field invalid">\s*<label for="ca-{field}">', refused.text)
    assert card_holder.resident.address in refused.text and 'value="山田 花子"' in refused.text
    assert 'id="files-dropped"' in refused.text
    assert _stored(container) == (0, 0)
    session = container.portal.session(browser.session_token())
    assert [n.state for n in container.portal.notices(session)] == [NoticeState.READ]
    # In English, the same refusal names the field in English.
    code = re.search(r'data-code="([a-z_]+)"', refused.text)
    assert code is not None
    english = browser.client.post(FORM + "?lang=en", data={**fields,
                                                           "csrf_token": browser.token},
                                  files=files, follow_redirects=False)
    assert english.status_code == 422
    assert str(escape(MESSAGES[f"portal.error.{code.group(1)}.{field}"]["en"])) in english.text
    assert _stored(container) == (0, 0)


def test_file_names_are_sanitised_and_end_in_the_type_of_their_content() -> None:
    assert content_type(PDF) == "application/pdf" and content_type(PNG) == "image/png"
    assert content_type(JPEG) == "image/jpeg"
    for junk in (b"", b"%PDF", b"GIF89a", b"<html>", b"PK\x03\x04", b" %PDF-1.7"):
        assert content_type(junk) is None
    assert safe_filename("../../etc/evil.html", "application/pdf", "other") == "evil.html.pdf"
    assert safe_filename("C:\\Users\\me\\scan.PDF", "application/pdf", "other") == "scan.PDF"
    assert safe_filename("a\x00b\r\n<c>.jpg", "image/jpeg", "other") == "a_b___c_.jpg"
    assert safe_filename("...", "image/png", "tax_certificate") == "tax_certificate.png"
    assert safe_filename(".hidden.png", "image/png", "other") == "hidden.png"
    long = safe_filename("あ" * 300 + ".pdf", "application/pdf", "other")
    assert len(long) == 100 and long.endswith(".pdf")


def test_the_refusals_state_the_limits_the_portal_applies() -> None:
    size = MESSAGES["portal.error.invalid_attachment_size.document_other"]
    assert f"{MAX_ATTACHMENT_BYTES // (1024 * 1024)}MB" in size["ja"]
    count = MESSAGES["portal.error.invalid_attachment_count.document_other"]
    assert f"合計{MAX_ATTACHMENTS}つ" in count["ja"] and f"At most {MAX_ATTACHMENTS}" in count["en"]


# --- the municipality -----------------------------------------------------------------------


def test_staff_of_the_municipality_download_the_documents_and_others_cannot(
    container: Container, client: TestClient, browser: Browser, card_holder: CardHolder
) -> None:
    application = _submitted(container, browser, card_holder)
    tax = next(a for a in application.attachments if a.kind == "tax_certificate")
    link = f"/counter/applications/attachments/{tax.attachment_id}"

    # Not signed in at the counter (a resident's portal cookie is no staff session).
    assert browser.client.get(link, follow_redirects=False).status_code == 303

    shinjuku, clerk = logged_in(TestClient(client.app), container, "shinjuku-apps")
    page = shinjuku.get("/counter/applications")
    assert page.status_code == 200, page.text
    row = re.search(rf'<tr data-application="{application.application_id}">.*?</tr>',
                    page.text, re.S)
    assert row is not None
    cells = text_of(row.group(0))
    assert card_holder.resident.name in cells and "マイナンバーを利用しない" in cells
    assert "課税証明書: 課税証明書.pdf" in cells and f'href="{link}"' in row.group(0)
    assert card_holder.number not in page.text

    download = shinjuku.get(link)
    assert download.status_code == 200
    assert download.content == PDF
    assert download.headers["content-type"] == "application/pdf"
    assert download.headers["x-content-type-options"] == "nosniff"
    disposition = download.headers["content-disposition"]
    assert disposition.startswith("attachment;")
    assert f"filename*=UTF-8''{urllib.parse.quote('課税証明書.pdf')}" in disposition
    assert download.headers["cache-control"] == "no-store"
    png = next(a for a in application.attachments if a.kind == "health_insurance_copy")
    assert shinjuku.get(f"/counter/applications/attachments/{png.attachment_id}"
                        ).headers["content-type"] == "image/png"
    with container.databases.unit_of_work("portal") as tx:
        downloads = tx.scalars(select(m.AuditEvent).where(
            m.AuditEvent.tag == "portal:attachment:download")).all()
    assert [(d.actor, d.subject) for d in downloads] == [
        (clerk.actor, f"attachment:{tax.attachment_id}"),
        (clerk.actor, f"attachment:{png.attachment_id}")]

    shibuya, _ = logged_in(TestClient(client.app), container, "shibuya-apps", SHIBUYA)
    theirs = shibuya.get("/counter/applications")
    assert theirs.status_code == 200
    assert 'id="no-applications"' in theirs.text and "課税証明書.pdf" not in theirs.text
    refused = shibuya.get(link)
    assert refused.status_code == 404 and PDF not in refused.content
    assert shibuya.get("/counter/applications/attachments/999999").status_code == 404
    assert shibuya.get("/counter/applications/attachments/x").status_code == 404
