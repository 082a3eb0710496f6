"""The insurer's pages (``/insurer``): staff signed in with the kernel's staff login; a
municipal clerk acts for their municipality's 国民健康保険 only (by the network directory), an
administrator for any insurer. Insured persons with their link state, enrolment, the person's
page, linking on all four items only (a three-item record is refused, a near-miss goes to the
review queue with its reason in words, never to a link), the review queue and its
resolution, the re-check, documents, loss. Japanese first, English with ``?lang=en``."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mynumber.app import Container
from mynumber.auth.interfaces import StaffPrincipal, StaffRole
from mynumber.insurance.interfaces import InsurerKind, LinkState, PersonItems, Qualification
from mynumber.registry.interfaces import ResidentRecord
from mynumber.web.i18n import MESSAGES
from tests.conftest import SHIBUYA
from tests.insurance.support_api import (
    KYOKAI,
    STAFF,
    items_of,
    new_person,
    register_insurers,
    resident,
)
from tests.insurance.support_pages import assert_plain_japanese, signed_in, text_of
from tests.insurance.support_pages import page_client as page_client  # a fixture
from tests.web.test_counter import Counter

SHINJUKU_NHI = "131045"  # 新宿区 国民健康保険 (13 + 104 + 5)
SHINJUKU_MAYOR = "municipality-131041"
SHIBUYA_NHI = "131136"  # 渋谷区 国民健康保険 (13 + 113 + 6)
SHIBUYA_MAYOR = "municipality-131130"
SAME_BIRTH = dt.date(1970, 1, 1)
OTHER_ADDRESS = "東京都新宿区歌舞伎町一丁目1番1号"


def ja(key: str) -> str:
    return MESSAGES[key]["ja"]


@pytest.fixture
def insurers(container: Container) -> None:
    register_insurers(container)  # 協会けんぽ and a 健康保険組合
    container.insurance.register_insurer(SHINJUKU_NHI, "新宿区国民健康保険",
                                         InsurerKind.MUNICIPAL_NHI, SHINJUKU_MAYOR, STAFF)
    container.insurance.register_insurer(SHIBUYA_NHI, "渋谷区国民健康保険",
                                         InsurerKind.MUNICIPAL_NHI, SHIBUYA_MAYOR, STAFF)


@pytest.fixture
def admin(page_client: TestClient, container: Container, insurers: None) -> Counter:
    browser, _ = signed_in(page_client, container, "insurer-admin", role=StaffRole.ADMIN)
    return browser


def enrolled(container: Container, insurer: str, items: PersonItems) -> Qualification:
    return container.insurance.enrol(insurer, new_person(items), STAFF)


def which(q: Qualification) -> dict[str, str]:
    return {"symbol": q.symbol, "number": q.number, "branch": q.branch,
            "qualification_id": str(q.id)}


def linked_to(container: Container, person: ResidentRecord) -> set[int]:
    return {q.id for q in container.insurance.history(person.id)}


# --- who may act for which insurer ----------------------------------------------------------


def test_the_insurer_pages_need_the_staff_sign_in(page_client: TestClient) -> None:
    for url in ("/insurer", f"/insurer/{KYOKAI}", f"/insurer/{KYOKAI}/reviews"):
        response = page_client.get(url, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] == "/counter/login"


def test_a_municipal_clerk_acts_for_their_municipalitys_national_health_insurance_only(
    page_client: TestClient, container: Container, insurers: None,
) -> None:
    clerk, _ = signed_in(page_client, container, "shinjuku-nhi")
    home = clerk.get("/insurer")
    assert home.status_code == 200
    assert "新宿区国民健康保険" in home.text and f'href="/insurer/{SHINJUKU_NHI}"' in home.text
    assert "渋谷区国民健康保険" not in home.text and "全国健康保険協会" not in home.text
    assert "市町村国民健康保険" in home.text  # the kind, in words
    assert_plain_japanese(home.text)
    assert clerk.get(f"/insurer/{SHINJUKU_NHI}").status_code == 200
    for other in (SHIBUYA_NHI, KYOKAI, "99999999"):
        refused = clerk.get(f"/insurer/{other}")
        assert refused.status_code == 403, other
        assert ja("insurance.error.insurance_no_insurer") in refused.text
        assert_plain_japanese(refused.text)
    # Nor may the clerk post to another insurer's forms.
    assert clerk.post(f"/insurer/{KYOKAI}/recheck").status_code == 403

    shibuya, _ = signed_in(page_client, container, "shibuya-nhi", municipality=SHIBUYA)
    theirs = shibuya.get("/insurer")
    assert "渋谷区国民健康保険" in theirs.text and "新宿区国民健康保険" not in theirs.text

    admin, _ = signed_in(page_client, container, "insurer-admin", role=StaffRole.ADMIN)
    every = admin.get("/insurer")
    for name in ("新宿区国民健康保険", "渋谷区国民健康保険", "全国健康保険協会 東京支部",
                 "日立健康保険組合"):
        assert name in every.text, name


def test_a_clerk_of_a_municipality_without_its_insurer_sees_none(
    page_client: TestClient, container: Container,
) -> None:
    clerk, _ = signed_in(page_client, container, "no-insurer-clerk")
    home = clerk.get("/insurer")
    assert home.status_code == 200 and ja("insurance.insurer.none") in home.text


# --- enrolment and the person's page --------------------------------------------------------


def test_enrolment_through_the_form_with_errors_in_words(
    container: Container, clerk: StaffPrincipal, admin: Counter,
) -> None:
    taro = resident(container, clerk)
    form = admin.get(f"/insurer/{KYOKAI}/enrol")
    assert form.status_code == 200 and 'id="enrol-form"' in form.text
    assert '<label for="enrol-branch">' in form.text  # every input has its label
    assert_plain_japanese(form.text)
    values = {"symbol": "5678", "number": "000777", "branch": "00", "insured_kind": "insured",
              "acquired_on": "2021-04-01", "copay_percent": "30", "limit_category": "u",
              "name": taro.name, "name_kana": taro.name_kana,
              "birth_date": taro.birth_date.isoformat(), "sex": taro.sex.value,
              "address": taro.address}
    bad = admin.post(f"/insurer/{KYOKAI}/enrol", {**values, "copay_percent": "50"})
    assert bad.status_code == 422
    assert "一部負担金の割合" in bad.text and 'value="000777"' in bad.text
    assert_plain_japanese(bad.text, extra=("co-payment",))
    done = admin.post(f"/insurer/{KYOKAI}/enrol", values)
    assert done.status_code == 303 and done.headers["location"].endswith("?done=enrolled")
    listed = admin.get(done.headers["location"])
    assert ja("insurance.insurer.done.enrolled") in listed.text
    row = text_of(re.search(r'<tr data-qualification=.*?</tr>', listed.text, re.S).group(0))
    assert "5678・000777・00" in row and taro.name in row and "未紐付け" in row
    assert "2021年4月1日" in row and "3割" in row
    assert_plain_japanese(listed.text)
    again = admin.post(f"/insurer/{KYOKAI}/enrol", values)
    assert again.status_code == 409
    assert ja("insurance.error.insurance_already_enrolled") in again.text

    person = admin.post(f"/insurer/{KYOKAI}/person",
                        {"symbol": "5678", "number": "000777", "branch": "00"})
    assert person.status_code == 200
    shown = text_of(person.text)
    assert "限度額適用区分 ウ" in shown and "紐付けの状態 未紐付け" in shown
    assert "生年月日 " in shown and f"（{taro.birth_date.year}年）" in shown
    assert "カナ氏名・生年月日・性別だけでの検索" in shown  # the rule, said on the page
    assert_plain_japanese(person.text)
    unknown = admin.post(f"/insurer/{KYOKAI}/person",
                         {"symbol": "5678", "number": "000999", "branch": "00"})
    assert unknown.status_code == 404
    assert ja("insurance.error.insurance_qualification_not_found") in unknown.text


# --- linking on all four items only ---------------------------------------------------------


@pytest.fixture
def namesakes(container: Container, clerk: StaffPrincipal) -> tuple[ResidentRecord,
                                                                    ResidentRecord]:
    """Two residents with the same name, kana, birth date and sex at different addresses."""
    taro = resident(container, clerk, birth_date=SAME_BIRTH)
    other = resident(container, clerk, birth_date=SAME_BIRTH, address=OTHER_ADDRESS)
    assert (taro.name_kana, taro.birth_date, taro.sex) == (
        other.name_kana, other.birth_date, other.sex)
    return taro, other


def link(admin: Counter, q: Qualification, **extra: str) -> Any:
    return admin.post(f"/insurer/{KYOKAI}/link", {**which(q), "route": "search", **extra})


def test_namesakes_at_different_addresses_are_never_linked_to_each_other(
    container: Container, clerk: StaffPrincipal, admin: Counter,
    namesakes: tuple[ResidentRecord, ResidentRecord],
) -> None:
    taro, other = namesakes
    # The right record: all four items match Taro alone.
    right = enrolled(container, KYOKAI, items_of(taro))
    done = link(admin, right)
    assert done.status_code == 200 and 'data-done="linked"' in done.text
    assert ja("insurance.insurer.done.linked") in done.text and "紐付け済み" in done.text
    assert right.id in linked_to(container, taro) and right.id not in linked_to(container, other)
    assert_plain_japanese(done.text)

    # A record with the kana name, birth date and sex only: refused before anything is asked.
    three = enrolled(container, KYOKAI, PersonItems(name_kana=taro.name_kana,
                                                    birth_date=taro.birth_date.isoformat(),
                                                    sex=taro.sex.value))
    refused = link(admin, three)
    assert refused.status_code == 422
    assert ja("insurance.error.insurance_four_items_required") in refused.text
    assert_plain_japanese(refused.text, extra=("four basic items",))

    # Taro's items with an address that is neither's (the 2021-2023 mislinks): no link, the
    # review queue, the reason in words.
    stale = enrolled(container, KYOKAI, items_of(taro, address="東京都新宿区新宿三丁目1番1号"))
    near = link(admin, stale)
    assert 'data-done="review"' in near.text
    assert "紐付けませんでした。確認待ちに登録しました。" in near.text
    assert ja("insurance.review_reason.not_found") in near.text
    assert_plain_japanese(near.text)

    # The other person's number given for Taro's record: the four items are compared, the
    # address differs: no link, the reason said, the number never shown back.
    number = container.registry.reveal_number(clerk, other.id, "test")
    given = enrolled(container, KYOKAI, items_of(taro, address="東京都新宿区新宿三丁目2番2号"))
    by_number = link(admin, given, route="number", individual_number=number)
    assert 'data-done="review"' in by_number.text
    assert "住所が一致しません" in by_number.text
    assert number not in by_number.text
    assert_plain_japanese(by_number.text)
    for record in (three, stale, given):
        assert record.id not in linked_to(container, taro) | linked_to(container, other)
    assert linked_to(container, other) == set()


def test_the_review_queue_in_words_then_dismiss_or_correct(
    container: Container, clerk: StaffPrincipal, admin: Counter,
    namesakes: tuple[ResidentRecord, ResidentRecord],
) -> None:
    taro, other = namesakes
    wrong = enrolled(container, KYOKAI, items_of(taro, address="東京都新宿区新宿三丁目1番1号"))
    stranger = enrolled(container, KYOKAI, items_of(taro, name="山田 一郎",
                                                    name_kana="ヤマダ イチロウ"))
    number = container.registry.reveal_number(clerk, other.id, "test")
    link(admin, wrong)
    link(admin, stranger, route="number", individual_number=number)

    queue = admin.get(f"/insurer/{KYOKAI}/reviews")
    assert queue.status_code == 200
    sections = dict(re.findall(r'<section class="panel review" id="review-(\d+)"'
                               r'.*?data-reason="(\w+)"', queue.text))
    # The near-miss of the search, and the number given for someone else (name and address
    # differ from that person's): each with its reason.
    assert sections[str(container.insurance.reviews(KYOKAI)[0].id)] == "not_found"
    assert sorted(sections.values()) == ["name_differs", "not_found"]
    shown = text_of(queue.text)
    assert ja("insurance.review_reason.not_found") in shown
    assert f"{wrong.symbol}・{wrong.number}・{wrong.branch}" in shown
    assert "一致しない項目" in shown and "氏名" in shown
    assert_plain_japanese(queue.text)

    reviews = container.insurance.reviews(KYOKAI)
    by_record = {r.qualification_id: r for r in reviews}
    # Corrected to the four items 住基ネット holds: linked on all four.
    fix = by_record[wrong.id]
    corrected = {"resolution": "corrected", "name": taro.name, "name_kana": taro.name_kana,
                 "birth_date": taro.birth_date.isoformat(), "sex": taro.sex.value,
                 "address": taro.address}
    resolved = admin.post(f"/insurer/{KYOKAI}/reviews/{fix.id}", corrected)
    assert resolved.status_code == 303
    assert resolved.headers["location"].endswith("/reviews?done=resolved")
    after = admin.get(resolved.headers["location"])
    assert ja("insurance.insurer.done.resolved") in after.text
    assert wrong.id in linked_to(container, taro)

    dismiss = by_record[stranger.id]
    gone = admin.post(f"/insurer/{KYOKAI}/reviews/{dismiss.id}", {"resolution": "dismissed"})
    assert gone.status_code == 303
    assert container.insurance.reviews(KYOKAI) == []
    assert ja("insurance.insurer.reviews.none") in admin.get(f"/insurer/{KYOKAI}/reviews").text
    assert stranger.id not in linked_to(container, other)
    again = admin.post(f"/insurer/{KYOKAI}/reviews/{dismiss.id}", {"resolution": "dismissed"})
    assert again.status_code == 404
    assert ja("insurance.error.insurance_review_not_found") in again.text


def test_recheck_documents_and_loss_from_the_pages(
    container: Container, clerk: StaffPrincipal, admin: Counter,
) -> None:
    taro = resident(container, clerk)
    q = enrolled(container, KYOKAI, items_of(taro))
    assert link(admin, q).status_code == 200
    checked = admin.post(f"/insurer/{KYOKAI}/recheck")
    assert checked.status_code == 200
    assert "再確認しました：1件中、一致1件、停止0件。" in checked.text

    issued = admin.post(f"/insurer/{KYOKAI}/documents")
    assert "発行しました：資格確認書1件、資格情報のお知らせ0件。" in issued.text
    person = admin.post(f"/insurer/{KYOKAI}/person", which(q))
    assert 'data-kind="confirmation_certificate"' in person.text
    assert "資格確認書" in person.text and "現在有効" in person.text
    assert_plain_japanese(person.text)

    early = admin.post(f"/insurer/{KYOKAI}/lose", {**which(q), "lost_on": "2019-01-01",
                                                   "loss_reason": "retirement"})
    assert early.status_code == 422 and "資格喪失日" in early.text
    assert_plain_japanese(early.text, extra=("after acquired_on",))
    lost = admin.post(f"/insurer/{KYOKAI}/lose", {**which(q), "lost_on": "2025-04-01",
                                                  "loss_reason": "retirement"})
    assert lost.status_code == 200
    shown = text_of(lost.text)
    assert ja("insurance.insurer.done.lost") in shown
    assert "資格喪失日 2025年4月1日" in shown and "喪失事由 退職" in shown
    assert 'id="lose-form"' not in lost.text
    listed = admin.get(f"/insurer/{KYOKAI}?state=linked")
    assert "2025年4月1日" in listed.text
    assert container.insurance.find(KYOKAI, q.symbol, q.number, q.branch).link_state \
        is LinkState.LINKED


def test_the_insurer_pages_in_english(
    container: Container, clerk: StaffPrincipal, admin: Counter,
) -> None:
    taro = resident(container, clerk)
    q = enrolled(container, KYOKAI, items_of(taro, address="東京都新宿区新宿三丁目1番1号"))
    home = admin.get("/insurer?lang=en")
    assert '<html lang="en">' in home.text and "Insurer's work" in text_of(home.text)
    persons = admin.get(f"/insurer/{KYOKAI}")
    assert "Not linked" in persons.text and "Insured persons" in persons.text
    near = text_of(link(admin, q).text)
    assert "Not linked: the record went to the review queue. Reason: No one matches" in near
    assert "A search on the kana name, date of birth and sex alone is not allowed" in near


def test_junk_in_any_insurer_form_is_an_error_page_never_a_500(
    container: Container, clerk: StaffPrincipal, admin: Counter,
) -> None:
    taro = resident(container, clerk)
    q = enrolled(container, KYOKAI, items_of(taro))
    junk = ({}, {"symbol": "x" * 40}, {**which(q), "route": "number", "individual_number": "1"},
            {**which(q), "qualification_id": "abc"}, {**which(q), "lost_on": "2025-13-01",
                                                      "loss_reason": "boredom"},
            {"resolution": "both", "birth_date": "x"}, {"copay_percent": "thirty",
                                                        "insured_kind": "boss"})
    for url in (f"/insurer/{KYOKAI}/enrol", f"/insurer/{KYOKAI}/person",
                f"/insurer/{KYOKAI}/link", f"/insurer/{KYOKAI}/lose",
                f"/insurer/{KYOKAI}/reviews/1", f"/insurer/{KYOKAI}/reviews/999999"):
        for form in junk:
            admin.get(f"/insurer/{KYOKAI}")
            answer = admin.post(url, form)
            # Refused in words, or (a form that happens to be valid) done: never a 500.
            assert answer.status_code < 500, (url, form, answer.status_code)
            assert answer.status_code in (200, 303) or "role=\"alert\"" in answer.text
            assert_plain_japanese(answer.text)
    assert admin.get(f"/insurer/{KYOKAI}?page=-3&state=nonsense").status_code == 200
    assert admin.get(f"/insurer/{KYOKAI}?page=many").status_code == 422
