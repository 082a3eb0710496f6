"""The insurers' API (/api/v1/insurance/insurers/{insurer}): every request signed with
the insurer's agency key registered in the network directory, fresh, its nonce spent once in
the insurance database, and only by the insurer's own agency. Linking needs all four items
(a three-item record is refused by the API itself), a near-miss goes to the review queue,
never to a link; the 個人番号 of a link by number travels in the body only and is never
answered."""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from mynumber.app import Container
from mynumber.auth.interfaces import StaffPrincipal
from mynumber.insurance import models as m
from mynumber.insurance.interfaces import LinkState
from mynumber.registry.interfaces import ResidentRecord
from tests.insurance.support_api import (
    INSURERS,
    KYOKAI,
    KYOKAI_AGENCY,
    SOCIETY,
    SOCIETY_AGENCY,
    api,
    insurer_request,
    items_of,
    problem,
    register_insurers,
    resident,
)

__all__ = ["api"]  # the fixture

_numbers = iter(range(500_000, 600_000))


def post(api: TestClient, container: Container, kind: str, path: str, *,
         insurer: str = KYOKAI, ids: dict[str, object] | None = None,
         **fields: Any) -> Any:
    """Sign as the insurer's system does (the path's parameters signed with the body)."""
    signed_path = {"insurer_number": insurer, **(ids or {})}
    body = insurer_request(container, kind, signed_path, **fields)
    return api.post(f"{INSURERS}/{insurer}{path}", json=body)


def person_fields(record: ResidentRecord, **items: str) -> dict[str, Any]:
    values = items_of(record, **items)
    return {"symbol": "1234", "number": f"{next(_numbers)}", "branch": "00",
            "insured_kind": "insured", "acquired_on": "2020-04-01", "copay_percent": 30,
            "items": {"name": values.name, "name_kana": values.name_kana,
                      "birth_date": values.birth_date, "sex": values.sex,
                      "address": values.address}}


def enrol(api: TestClient, container: Container, record: ResidentRecord,
          **items: str) -> dict[str, Any]:
    response = post(api, container, "insurance-insurer-enrol", "/persons",
                    **person_fields(record, **items))
    assert response.status_code == 201, response.text
    enrolled: dict[str, Any] = response.json()
    assert enrolled["link_state"] == "unlinked"
    return enrolled


def link(api: TestClient, container: Container, qid: int, **fields: Any) -> Any:
    return post(api, container, "insurance-insurer-link", f"/persons/{qid}/link",
                ids={"qualification_id": qid}, **fields)


def test_enrol_find_link_and_lose(api: TestClient, container: Container,
                                  clerk: StaffPrincipal) -> None:
    register_insurers(container)
    taro = resident(container, clerk)
    enrolled = enrol(api, container, taro)
    found = post(api, container, "insurance-insurer-find", "/persons/find",
                 symbol="1234", number=enrolled["number"], branch="00")
    assert found.status_code == 200 and found.json()["id"] == enrolled["id"]
    problem(post(api, container, "insurance-insurer-find", "/persons/find", symbol="1234",
                 number="999999999", branch="00"), 404, "insurance_qualification_not_found")

    linked = link(api, container, enrolled["id"], route="search")
    assert linked.status_code == 200, linked.text
    assert linked.json()["state"] == "linked" and linked.json()["route"] == "search"
    listed = post(api, container, "insurance-insurer-persons", "/persons/list", state="linked")
    assert [p["id"] for p in listed.json()] == [enrolled["id"]]

    lost = post(api, container, "insurance-insurer-lose", f"/persons/{enrolled['id']}/loss",
                ids={"qualification_id": enrolled["id"]}, lost_on="2025-04-01",
                reason="retirement")
    assert lost.status_code == 200, lost.text
    assert lost.json()["lost_on"] == "2025-04-01" and lost.json()["loss_reason"] \
        == "retirement"


def test_a_three_item_record_is_refused_by_the_api(api: TestClient, container: Container,
                                                   clerk: StaffPrincipal) -> None:
    register_insurers(container)
    taro = resident(container, clerk)
    enrolled = enrol(api, container, taro, address="")  # kana + birth date + sex (+ name)
    for fields in ({"route": "search"}, {"route": "number", "individual_number": container
                                         .registry.reveal_number(clerk, taro.id, "test")}):
        body = problem(link(api, container, enrolled["id"], **fields), 422,
                       "insurance_four_items_required")
        assert "individual_number" not in str(body.get("field"))
    state = container.insurance.find(KYOKAI, "1234", enrolled["number"], "00").link_state
    assert state is LinkState.UNLINKED


def test_namesakes_at_different_addresses_are_never_linked_to_each_other(
    api: TestClient, container: Container, clerk: StaffPrincipal,
) -> None:
    """Two residents with the same name, kana, birth date and sex, at different addresses."""
    register_insurers(container)
    born = dt.date(1975, 5, 5)
    here = resident(container, clerk, birth_date=born)
    there = resident(container, clerk, birth_date=born,
                     address="東京都新宿区歌舞伎町一丁目4番1号")
    assert (here.name_kana, here.sex) == (there.name_kana, there.sex)
    assert here.address != there.address

    # The search on all four items finds exactly the one at the record's address.
    record = enrol(api, container, here)
    assert link(api, container, record["id"], route="search").json()["state"] == "linked"
    assert container.insurance.find(KYOKAI, "1234", record["number"], "00").link_state \
        is LinkState.LINKED
    linked_row = _row(container, record["id"])
    assert linked_row.resident_id == here.id

    # The other's number given for a record holding the first one's address: a review item
    # naming the address, never a link.
    other = enrol(api, container, here)
    number = container.registry.reveal_number(clerk, there.id, "test: the person gave it")
    refused = link(api, container, other["id"], route="number", individual_number=number)
    assert refused.status_code == 200, refused.text
    out = refused.json()
    assert out["state"] == "review" and out["reason"] == "address_differs"
    assert number not in refused.text
    assert _row(container, other["id"]).resident_id is None

    # A record at an address neither lives at: review, no link.
    nowhere = enrol(api, container, here, address="東京都新宿区西新宿一丁目1番1号")
    out = link(api, container, nowhere["id"], route="search").json()
    assert out["state"] == "review" and _row(container, nowhere["id"]).resident_id is None

    reviews = post(api, container, "insurance-insurer-reviews", "/reviews/list")
    assert {(r["qualification_id"], r["reason"]) for r in reviews.json()} >= {
        (other["id"], "address_differs")}
    review_id = next(r["id"] for r in reviews.json() if r["qualification_id"] == other["id"])
    resolved = post(api, container, "insurance-insurer-resolve-review",
                    f"/reviews/{review_id}/resolve", ids={"review_id": review_id},
                    resolution="dismissed")
    assert resolved.status_code == 200 and resolved.json()["resolution"] == "dismissed"
    assert _row(container, other["id"]).resident_id is None
    missing = post(api, container, "insurance-insurer-resolve-review",
                   f"/reviews/{review_id}/resolve", ids={"review_id": review_id},
                   resolution="corrected")
    assert problem(missing, 422, "insurance_invalid_input")["field"] == "corrected"


def test_link_by_number_keeps_the_number_out_of_answers_and_urls(
    api: TestClient, container: Container, clerk: StaffPrincipal,
) -> None:
    register_insurers(container)
    taro = resident(container, clerk)
    record = enrol(api, container, taro)
    number = container.registry.reveal_number(clerk, taro.id, "test: the person gave it")
    missing = link(api, container, record["id"], route="number")
    assert problem(missing, 422, "insurance_invalid_input")["field"] == "individual_number"
    both = link(api, container, record["id"], route="search", individual_number=number)
    assert problem(both, 422, "insurance_invalid_input")["field"] == "individual_number"
    assert number not in both.text
    malformed = link(api, container, record["id"], route="number",
                     individual_number=number[:11] + "x")
    assert malformed.status_code == 422 and number[:11] not in malformed.text
    done = link(api, container, record["id"], route="number", individual_number=number)
    assert done.status_code == 200 and done.json()["state"] == "linked", done.text
    assert number not in done.text
    with container.databases.unit_of_work(m.CONTEXT) as session:
        audit = " ".join(str(e.details) + (e.reason or "") + e.subject
                         for e in session.scalars(select(m.AuditEvent)))
    assert number not in audit
    schema = api.get("/openapi.json").json()
    assert not any("individual_number" in path for path in schema["paths"])


def test_recheck_and_documents(api: TestClient, container: Container,
                               clerk: StaffPrincipal) -> None:
    register_insurers(container)
    taro = resident(container, clerk)
    record = enrol(api, container, taro)
    assert link(api, container, record["id"], route="search").json()["state"] == "linked"
    report = post(api, container, "insurance-insurer-recheck", "/recheck")
    assert report.status_code == 200, report.text
    assert report.json() == {"checked": 1, "still_matching": 1, "blocked": 0,
                             "blocked_ids": []}
    issued = post(api, container, "insurance-insurer-issue-documents", "/documents/issue",
                  years=5)
    assert issued.json() == {"confirmation_certificate": 1, "qualification_notice": 0}
    problem(post(api, container, "insurance-insurer-issue-documents", "/documents/issue",
                 years=6), 422, "invalid_input")


def test_only_the_insurers_own_agency_with_a_fresh_unique_signed_request(
    api: TestClient, container: Container, clerk: StaffPrincipal,
) -> None:
    register_insurers(container)
    taro = resident(container, clerk)
    fields = person_fields(taro)
    url = f"{INSURERS}/{KYOKAI}/persons"
    kind = "insurance-insurer-enrol"
    path = {"insurer_number": KYOKAI}

    # Another insurer's agency, correctly signed with its own key: not this insurer's.
    foreign = insurer_request(container, kind, path, agency=SOCIETY_AGENCY, **fields)
    problem(api.post(url, json=foreign), 403, "insurance_agency_not_insurer")
    # 協会けんぽ's id, another agency's key.
    wrong_key = insurer_request(container, kind, path, **fields,
                                key=container.agencies.keyring.keys(SOCIETY_AGENCY).signing)
    problem(api.post(url, json=wrong_key), 403, "bad_signature")
    stale = insurer_request(container, kind, path,
                            at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=6), **fields)
    problem(api.post(url, json=stale), 403, "stale_request")
    # Signed for 協会けんぽ, sent to the society's URL (the path is signed).
    moved = insurer_request(container, kind, path, agency=SOCIETY_AGENCY, **fields)
    problem(api.post(f"{INSURERS}/{SOCIETY}/persons", json=moved), 403, "bad_signature")
    problem(api.post(f"{INSURERS}/13999995/persons",
                     json=insurer_request(container, kind, {"insurer_number": "13999995"},
                                          **fields)), 404, "insurance_insurer_not_found")
    tampered = insurer_request(container, kind, path, **fields)
    tampered["branch"] = "01"
    problem(api.post(url, json=tampered), 403, "bad_signature")
    assert container.insurance.qualifications(KYOKAI) == []

    body = insurer_request(container, kind, path, **fields)
    assert api.post(url, json=body).status_code == 201
    problem(api.post(url, json=body), 409, "replayed_request")
    with container.databases.unit_of_work(m.CONTEXT) as session:
        issuers = {n.issuer for n in session.scalars(select(m.RequestNonce))}
    assert f"agency:{KYOKAI_AGENCY}" in issuers


def test_a_nonce_is_spent_once_across_threads(api: TestClient, container: Container,
                                              clerk: StaffPrincipal) -> None:
    register_insurers(container)
    body = insurer_request(container, "insurance-insurer-reviews",
                           {"insurer_number": KYOKAI})
    url = f"{INSURERS}/{KYOKAI}/reviews/list"
    barrier = threading.Barrier(6)
    codes: list[tuple[int, str]] = []
    lock = threading.Lock()

    def send() -> None:
        client = TestClient(api.app)
        barrier.wait()
        response = client.post(url, json=body)
        with lock:
            answer = response.json()
            codes.append((response.status_code,
                          answer.get("code", "") if isinstance(answer, dict) else ""))

    threads = [threading.Thread(target=send) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert Counter(codes) == Counter({(200, ""): 1, (409, "replayed_request"): 5}), codes


def _row(container: Container, qid: int) -> m.QualificationRow:
    with container.databases.unit_of_work(m.CONTEXT) as session:
        row = session.get(m.QualificationRow, qid)
        assert row is not None
        session.expunge(row)
        return row
