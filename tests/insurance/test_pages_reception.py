"""The medical institution's reception pages (``/clinic``): staff signed in with the kernel's
staff login use only the terminals they operate; eligibility by card + PIN (the virtual
reader), face (the deterministic stand-in, said so on the page), visual check or 資格確認書;
資格有効性 and the qualification in words; consent item by item at this visit, then the
consented items, a refusal said plainly (同意がないため表示できません / 同意の有効期限が切れて
います) and recorded. Japanese first, English with ``?lang=en``; no code, enum value or English
detail on a Japanese page."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mynumber.app import Container
from mynumber.auth.interfaces import StaffPrincipal
from mynumber.db import utcnow
from mynumber.insurance.interfaces import (
    AccessAction,
    ConfirmationMethod,
    ConsentItem,
    CoverageDocumentKind,
    EligibilityResult,
    LossReason,
    TerminalStatus,
    Validity,
)
from mynumber.jpki.interfaces import RevocationReason
from mynumber.kernel.localtime import local_time
from mynumber.web.i18n import MESSAGES
from tests.insurance.support_api import KYOKAI, OTHER_CLINIC, STAFF, reception
from tests.insurance.support_pages import (
    Desk,
    Patient,
    assert_plain_japanese,
    desk,
    hidden,
    patient,
    signed_in,
    text_of,
)
from tests.insurance.support_pages import page_client as page_client  # a fixture
from tests.portal.conftest import AUTH_PIN


def ja(key: str) -> str:
    return MESSAGES[key]["ja"]


def check_card(d: Desk, p: Patient, *, method: str = "card_pin", pin: str = AUTH_PIN,
               lang: str = "", **extra: str) -> Any:
    """The terminal's page (a fresh challenge), then the card's answer as the form sends it."""
    page = d.browser.get(d.base + (f"?lang={lang}" if lang else ""))
    assert page.status_code == 200, page.text
    form = {**hidden(page, "card-form"), "method": method, "card_id": p.card.record.card_id,
            **extra}
    if method == "card_pin":
        form["pin"] = pin
    return d.browser.post(d.base + "/card", form)


def visit_action(result: Any, what: str = "consent") -> str:
    found = re.search(r'action="(/clinic/terminals/[^"]+/visits/[^"/]+)/consent"', result.text)
    assert found, result.text
    return f"{found.group(1)}/{what}"


def actions(container: Container, p: Patient) -> list[tuple[str, str | None]]:
    return [(e.action.value, e.item.value if e.item else None)
            for e in reversed(container.eligibility.access_entries(p.card.resident.id))]


@pytest.fixture
def reception_desk(page_client: TestClient, container: Container) -> Desk:
    return desk(page_client, container)


@pytest.fixture
def taro(container: Container, clerk: StaffPrincipal) -> Patient:
    return patient(container, clerk)


# --- sign-in and terminals -----------------------------------------------------------------


def test_the_reception_needs_the_staff_sign_in(page_client: TestClient) -> None:
    for url in ("/clinic", "/clinic/terminals/abc"):
        response = page_client.get(url, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] == "/counter/login"


def test_staff_use_only_the_terminals_they_operate(
    page_client: TestClient, container: Container, reception_desk: Desk, taro: Patient,
) -> None:
    home = reception_desk.browser.get("/clinic")
    assert home.status_code == 200 and home.headers["cache-control"] == "no-store"
    assert "新宿テストクリニック" in home.text
    assert f'href="{reception_desk.base}"' in home.text
    assert_plain_japanese(home.text)

    # Another clerk, signed in, operates no terminal: none listed, this one refused.
    stranger, _ = signed_in(page_client, container, "reception-2")
    mine = stranger.get("/clinic")
    assert ja("insurance.clinic.no_terminals") in mine.text
    refused = stranger.get(reception_desk.base)
    assert refused.status_code == 403
    assert ja("insurance.error.insurance_terminal_not_yours") in refused.text
    assert_plain_japanese(refused.text)
    # Nor can a form for it be posted (the CSRF token is the stranger's own, valid).
    posted = stranger.post(reception_desk.base + "/document",
                           {"document_number": "1", "birth_date": "1990-01-01"})
    assert posted.status_code == 403
    # A terminal of another institution the first clerk does not operate either.
    other = reception(container, OTHER_CLINIC)
    assert reception_desk.browser.get(f"/clinic/terminals/{other.id}").status_code == 403
    assert actions(container, taro)[-1] == ("activation", None)  # nothing checked


def test_a_name_within_an_operator_name_operates_nothing(
    page_client: TestClient, container: Container, reception_desk: Desk,
) -> None:
    """"reception" is not "reception-1": the whole name decides. An unknown terminal is
    refused as another's is."""
    for unknown in ("trm_0000000000000000", "nope"):
        refused = reception_desk.browser.get(f"/clinic/terminals/{unknown}")
        assert refused.status_code == 403
        assert ja("insurance.error.insurance_terminal_not_yours") in refused.text
    # (The test client's cookies are one jar: from here on it is this clerk's browser.)
    partial, _ = signed_in(page_client, container, "reception")
    assert ja("insurance.clinic.no_terminals") in partial.get("/clinic").text
    assert partial.get(reception_desk.base).status_code == 403
    # Given the terminal, the same clerk uses it; taken off again, no more.
    terminal_id = reception_desk.reception.id
    container.eligibility.set_terminal_operators(terminal_id, ["reception", "reception-1"],
                                                 "operator:test")
    assert f'href="{reception_desk.base}"' in partial.get("/clinic").text
    assert partial.get(reception_desk.base).status_code == 200
    container.eligibility.set_terminal_operators(terminal_id, ["reception-1"], "operator:test")
    assert partial.get(reception_desk.base).status_code == 403
    assert ja("insurance.clinic.no_terminals") in partial.get("/clinic").text


def test_a_suspended_terminal_is_listed_but_cannot_be_used(
    container: Container, reception_desk: Desk,
) -> None:
    container.eligibility.set_terminal_status(reception_desk.reception.id,
                                              TerminalStatus.SUSPENDED, "operator:test")
    home = reception_desk.browser.get("/clinic")
    assert "停止中" in home.text and f'href="{reception_desk.base}"' not in home.text
    refused = reception_desk.browser.get(reception_desk.base)
    assert refused.status_code == 401
    assert ja("insurance.error.insurance_terminal_unknown") in refused.text


def test_a_form_without_its_csrf_token_is_refused(reception_desk: Desk, taro: Patient) -> None:
    page = reception_desk.browser.get(reception_desk.base)
    form = {**hidden(page, "card-form"), "method": "card_pin",
            "card_id": taro.card.record.card_id, "pin": AUTH_PIN}
    refused = reception_desk.browser.post(reception_desk.base + "/card", form, csrf=False)
    assert refused.status_code == 403
    assert MESSAGES["error.csrf_failed"]["ja"] in refused.text


# --- card + PIN, consent, records ------------------------------------------------------------


def test_card_and_pin_then_consent_item_by_item_then_the_consented_items(
    container: Container, reception_desk: Desk, taro: Patient,
) -> None:
    result = check_card(reception_desk, taro)
    assert result.status_code == 200, result.text
    shown = text_of(result.text)
    assert 'data-validity="valid"' in result.text
    assert "資格有効性 有効" in shown and ja("insurance.validity.valid.lead") in shown
    assert "マイナンバーカード＋暗証番号" in shown
    q = taro.qualification
    for words in ("全国健康保険協会 東京支部", f"保険者番号 {KYOKAI}", f"記号 {q.symbol}",
                  f"番号 {q.number}", "枝番 00", "本人・家族の別 本人", "一部負担金の割合 3割",
                  "高齢受給者 いいえ", "限度額適用区分 なし", "資格取得日 2020年4月1日",
                  "資格喪失日 なし"):
        assert words in shown, words
    for item in ConsentItem:  # the consent form: each item, agree or not
        assert f'name="consent_{item.value}" value="yes"' in result.text
        assert f'name="consent_{item.value}" value="no"' in result.text
    assert "24時間で失効します" in shown
    assert_plain_japanese(result.text)

    given = reception_desk.browser.post(visit_action(result), {
        "consent_drugs": "yes", "consent_checkups": "no", "consent_treatments": "no"})
    assert given.status_code == 200, given.text
    rows = re.findall(r'<tr data-item="(\w+)" data-granted="(\w+)">(.*?)</tr>', given.text, re.S)
    assert [(i, g) for i, g, _ in rows] == [("drugs", "yes"), ("checkups", "no"),
                                            ("treatments", "no")]
    drugs_row = text_of(rows[0][2])
    consent = next(c for c in container.eligibility.access_entries(taro.card.resident.id)
                   if c.action is AccessAction.CONSENT_GIVEN)
    expires = local_time(consent.at + dt.timedelta(hours=24), "ja")
    assert "同意あり" in drugs_row and expires in drugs_row  # the expiry, in Japan time
    assert "同意なし" in text_of(rows[1][2])
    assert_plain_japanese(given.text)

    drugs = reception_desk.browser.post(visit_action(result, "records"), {"item": "drugs"})
    assert drugs.status_code == 200
    assert "アムロジピン錠5mg" in drugs.text and "1日1回 28日分" in drugs.text
    assert "2025年5月1日" in drugs.text and "新宿薬局" in drugs.text
    assert_plain_japanese(drugs.text)

    checkups = reception_desk.browser.post(visit_action(result, "records"),
                                           {"item": "checkups"})
    assert 'data-reason="refused"' in checkups.text
    assert "同意がないため表示できません" in checkups.text and "HbA1c" not in checkups.text
    assert ja("insurance.clinic.refused.recorded") in checkups.text
    assert_plain_japanese(checkups.text)
    done = actions(container, taro)[-6:]
    assert done[0] == ("eligibility", None)
    assert sorted(done[1:4]) == [("consent_given", "drugs"), ("consent_refused", "checkups"),
                                 ("consent_refused", "treatments")]
    assert done[4:] == [("view", "drugs"), ("view_refused", "checkups")]


def test_without_consent_or_after_it_expired_nothing_is_shown_and_the_refusal_is_recorded(
    container: Container, reception_desk: Desk, taro: Patient,
) -> None:
    result = check_card(reception_desk, taro)
    records = visit_action(result, "records")
    none = reception_desk.browser.post(records, {"item": "drugs"})
    assert 'data-reason="none"' in none.text
    assert "同意がないため表示できません" in none.text and "アムロジピン" not in none.text

    reception_desk.browser.post(visit_action(result), {"consent_drugs": "yes"})
    assert "アムロジピン" in reception_desk.browser.post(records, {"item": "drugs"}).text
    later = utcnow() + dt.timedelta(hours=24, minutes=1)
    container.eligibility.clock = lambda: later
    expired = reception_desk.browser.post(records, {"item": "drugs"})
    assert 'data-reason="expired"' in expired.text
    assert "同意の有効期限が切れています" in expired.text and "アムロジピン" not in expired.text
    assert_plain_japanese(expired.text)
    assert [a for a in actions(container, taro) if a[0].startswith("view")] == [
        ("view_refused", "drugs"), ("view", "drugs"), ("view_refused", "drugs")]


def test_a_wrong_pin_says_how_many_tries_remain_and_checks_nothing(
    container: Container, reception_desk: Desk, taro: Patient,
) -> None:
    wrong = check_card(reception_desk, taro, pin="0000")
    assert wrong.status_code == 422
    assert "暗証番号が違います。あと 2 回間違えるとロックされます。" in wrong.text
    assert 'id="card-form"' in wrong.text  # the form again, with a new challenge
    assert_plain_japanese(wrong.text, extra=("wrong PIN",))
    assert actions(container, taro)[-1] == ("activation", None)
    assert check_card(reception_desk, taro).status_code == 200


def test_a_revoked_card_is_refused_in_words(
    container: Container, reception_desk: Desk, taro: Patient,
) -> None:
    container.jpki.revoke(taro.card.serial, RevocationReason.LOST, "test:lost-card")
    for method in ("card_pin", "visual"):
        refused = check_card(reception_desk, taro, method=method)
        assert refused.status_code == 401
        assert ja("insurance.error.insurance_card_refused") in refused.text
        assert ja("insurance.refusal.card.revoked") in refused.text
        assert_plain_japanese(refused.text, extra=("revoked", "not accepted"))
    assert ("eligibility", None) not in actions(container, taro)


def test_a_card_not_yet_registered_needs_its_first_registration(
    container: Container, clerk: StaffPrincipal, reception_desk: Desk,
) -> None:
    hanako = patient(container, clerk, activate=False, given_name="花子",
                     given_name_kana="ハナコ")
    refused = check_card(reception_desk, hanako)
    assert refused.status_code == 403
    assert "初回登録が必要です" in refused.text
    assert_plain_japanese(refused.text)
    # 初回登録 is offered at once; the card signs the page's new challenge after its PIN.
    assert 'id="activation-form"' in refused.text
    assert ja("insurance.clinic.activation.lead") in refused.text
    form = {**hidden(refused, "activation-form"), "card_id": hanako.card.record.card_id}
    wrong = reception_desk.browser.post(reception_desk.base + "/activation",
                                        {**form, "pin": "0000"})
    assert wrong.status_code == 422
    assert "あと 2 回間違えるとロックされます" in wrong.text
    assert 'id="activation-form"' in wrong.text  # again, with a new challenge
    assert not container.eligibility.card_status(hanako.card.resident.id).activated
    form = {**hidden(wrong, "activation-form"), "card_id": hanako.card.record.card_id}
    done = reception_desk.browser.post(reception_desk.base + "/activation",
                                       {**form, "pin": AUTH_PIN})
    assert done.status_code == 200, done.text
    assert ja("insurance.clinic.activation.done") in done.text
    assert 'id="activation-form"' not in done.text and 'id="card-form"' in done.text
    assert_plain_japanese(done.text)
    status = container.eligibility.card_status(hanako.card.resident.id)
    assert status.activated
    entry = container.eligibility.access_entries(hanako.card.resident.id)[0]
    assert (entry.action, entry.institution_name) == (AccessAction.ACTIVATION,
                                                      "新宿テストクリニック")
    # Then the check as usual.
    checked = check_card(reception_desk, hanako)
    assert checked.status_code == 200 and 'data-validity="valid"' in checked.text
    # A second registration (the challenge of an older page): refused in words, no form.
    again = reception_desk.browser.post(reception_desk.base + "/activation", {
        **hidden(reception_desk.browser.get(reception_desk.base), "card-form"),
        "card_id": hanako.card.record.card_id, "pin": AUTH_PIN})
    assert again.status_code == 409
    assert ja("insurance.error.insurance_already_activated") in again.text
    assert 'id="activation-form"' not in again.text
    assert_plain_japanese(again.text)


def test_the_face_option_only_with_a_matcher(
    container: Container, reception_desk: Desk, taro: Patient,
) -> None:
    page = reception_desk.browser.get(reception_desk.base)
    assert 'id="method-face"' in page.text and 'id="face-choice"' in page.text
    assert 'id="face-unavailable"' not in page.text
    container.eligibility.matcher = None  # as production wires it without a certified one
    for shown in (reception_desk.browser.get(reception_desk.base),
                  check_card(reception_desk, taro, method="face", face="same")):
        assert 'value="face"' not in shown.text and 'id="face-choice"' not in shown.text
        assert ja("insurance.clinic.face.unavailable") in shown.text
        assert_plain_japanese(shown.text)
    # A face request posted anyway is refused by the service, in words.
    refused = check_card(reception_desk, taro, method="face", face="same")
    assert refused.status_code == 403
    assert ja("insurance.error.insurance_face_match_unavailable") in refused.text


def test_face_match_is_the_deterministic_stand_in_and_says_so(
    container: Container, reception_desk: Desk, taro: Patient,
) -> None:
    page = reception_desk.browser.get(reception_desk.base)
    assert "決定的な代替実装" in page.text and "本物の顔照合は行いません" in page.text
    same = check_card(reception_desk, taro, method="face", face="same")
    assert same.status_code == 200 and 'data-validity="valid"' in same.text
    assert "マイナンバーカード＋顔認証" in same.text
    other = check_card(reception_desk, taro, method="face", face="other")
    assert other.status_code == 401
    assert ja("insurance.refusal.card.face_mismatch") in other.text
    assert_plain_japanese(other.text)


def test_a_visual_check_names_the_member_of_staff(
    container: Container, reception_desk: Desk, taro: Patient,
) -> None:
    result = check_card(reception_desk, taro, method="visual")
    assert result.status_code == 200 and "職員の目視確認" in result.text
    entry = container.eligibility.access_entries(taro.card.resident.id)[0]
    assert entry.method is ConfirmationMethod.VISUAL


def test_a_lost_qualification_is_invalid_in_words(
    container: Container, reception_desk: Desk, taro: Patient,
) -> None:
    container.insurance.lose(KYOKAI, taro.qualification.id, dt.date(2024, 4, 1),
                             LossReason.RETIREMENT, STAFF)
    result = check_card(reception_desk, taro)
    assert 'data-validity="invalid"' in result.text
    shown = text_of(result.text)
    assert "資格有効性 無効" in shown and "資格喪失日 2024年4月1日" in shown
    assert "喪失事由 退職" in shown
    assert ja("insurance.clinic.consent.none_possible") in shown
    assert 'id="consent-form"' not in result.text
    assert_plain_japanese(result.text)


def test_a_confirmation_certificate_with_the_birth_date(
    container: Container, clerk: StaffPrincipal, reception_desk: Desk,
) -> None:
    jiro = patient(container, clerk, activate=False, given_name="次郎",
                   given_name_kana="ジロウ")
    counts = container.insurance.issue_documents(KYOKAI)
    assert counts[CoverageDocumentKind.CONFIRMATION_CERTIFICATE] == 1
    document = container.insurance.documents(jiro.qualification.id)[0]
    page = reception_desk.browser.get(reception_desk.base)
    assert 'id="document-form"' in page.text
    wrong = reception_desk.browser.post(reception_desk.base + "/document", {
        "document_number": document.document_number, "birth_date": "1999-01-01"})
    assert wrong.status_code == 404
    assert ja("insurance.error.insurance_document_not_found") in wrong.text
    assert_plain_japanese(wrong.text)
    ok = reception_desk.browser.post(reception_desk.base + "/document", {
        "document_number": document.document_number,
        "birth_date": jiro.card.resident.birth_date.isoformat()})
    assert ok.status_code == 200 and 'data-validity="valid"' in ok.text
    assert "資格確認書" in ok.text and "全国健康保険協会 東京支部" in ok.text
    assert_plain_japanese(ok.text)
    missing = reception_desk.browser.post(reception_desk.base + "/document", {
        "document_number": document.document_number, "birth_date": "1990-02-31"})
    assert missing.status_code in (400, 422) and "生年月日" in missing.text


@pytest.mark.parametrize("validity", list(Validity))
def test_every_validity_is_shown_in_words(
    container: Container, reception_desk: Desk, validity: Validity,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Rendering only: the service's answer is replaced by one of each validity (the real
    flows for 有効 and 無効 are tested above), to see each word and none of the codes."""
    answer = EligibilityResult("v" * 20, utcnow(), ConfirmationMethod.DOCUMENT, validity,
                               None, ())
    monkeypatch.setattr(container.eligibility, "check_document",
                        lambda *args, **kwargs: answer)
    page = reception_desk.browser.get(reception_desk.base)
    assert page.status_code == 200
    shown = reception_desk.browser.post(reception_desk.base + "/document", {
        "document_number": "1234", "birth_date": "1990-04-01"})
    words = {Validity.VALID: "有効", Validity.INVALID: "無効",
             Validity.INVALID_NEW_QUALIFICATION: "無効・新資格あり",
             Validity.NOT_FOUND: "該当なし", Validity.MULTIPLE: "複数該当"}[validity]
    assert f"資格有効性 {words} " in text_of(shown.text)
    # 無効 without a qualification: a 資格確認書 whose record is held (never "lost").
    lead = ("insurance.validity.invalid.held.lead" if validity is Validity.INVALID
            else f"insurance.validity.{validity.value}.lead")
    assert ja(lead) in shown.text
    assert_plain_japanese(shown.text)


def test_a_held_records_certificate_is_invalid_without_details(
    container: Container, clerk: StaffPrincipal, reception_desk: Desk,
) -> None:
    from mynumber.insurance.interfaces import LinkState
    from tests.insurance.support_eligibility import set_link_state

    jiro = patient(container, clerk, activate=False, given_name="次郎",
                   given_name_kana="ジロウ")
    container.insurance.issue_documents(KYOKAI)
    document = container.insurance.documents(jiro.qualification.id)[0]
    set_link_state(container.databases, jiro.qualification.id, LinkState.BLOCKED)
    shown = reception_desk.browser.post(reception_desk.base + "/document", {
        "document_number": document.document_number,
        "birth_date": jiro.card.resident.birth_date.isoformat()})
    assert shown.status_code == 200 and 'data-validity="invalid"' in shown.text
    assert ja("insurance.validity.invalid.held.lead") in shown.text
    assert 'id="no-qualification"' in shown.text and 'id="consent-form"' not in shown.text
    assert jiro.qualification.number not in text_of(shown.text)
    assert_plain_japanese(shown.text)


def test_the_reception_in_english(
    container: Container, reception_desk: Desk, taro: Patient,
) -> None:
    home = reception_desk.browser.get("/clinic?lang=en")
    assert '<html lang="en">' in home.text and "Medical reception" in home.text
    result = check_card(reception_desk, taro, lang="en")
    assert result.status_code == 200
    assert "Eligibility" in result.text and "Valid" in result.text
    assert "Card and PIN" in result.text and "I agree" in result.text
    given = reception_desk.browser.post(visit_action(result), {"consent_drugs": "no"})
    refused = reception_desk.browser.post(visit_action(result, "records"), {"item": "drugs"})
    assert "Consents at this visit" in given.text
    assert "This cannot be shown: the patient did not consent." in refused.text
    wrong = check_card(reception_desk, taro, pin="9999", lang="en")
    assert "Wrong PIN. 2 tries remaining" in wrong.text


JUNK = ({}, {"method": "x" * 30}, {"method": "card_pin", "challenge_id": "z", "challenge": "zz",
                                    "card_id": "no-such-card", "pin": "12"},
        {"method": "face", "certificate": "not a certificate"},
        {"method": "visual", "card_id": "../../etc"}, {"item": "everything"},
        {"consent_drugs": "maybe"}, {"document_number": "9" * 50, "birth_date": "yesterday"})


def test_junk_in_any_form_is_an_error_page_never_a_500(
    container: Container, reception_desk: Desk, taro: Patient,
) -> None:
    result = check_card(reception_desk, taro)
    visit = visit_action(result, "")
    for url in (reception_desk.base + "/card", reception_desk.base + "/document",
                visit + "consent", visit + "records",
                reception_desk.base + "/visits/not-a-visit/consent",
                reception_desk.base + "/visits/not-a-visit/records"):
        for form in JUNK:
            page = reception_desk.browser.get(reception_desk.base)
            assert page.status_code == 200
            answer = reception_desk.browser.post(url, form)
            assert 400 <= answer.status_code < 500, (url, form, answer.status_code)
            assert "<html" in answer.text
            assert_plain_japanese(answer.text)
