"""The terminals' API (/api/v1/insurance/terminal): a medical institution's registered terminal
signs every request with its own key; the card (with its PIN, a face match or the staff's
visual check) or a 資格確認書 gives 資格有効性 and the current qualification; the patient
consents item by item at the visit, and only then are the items shown (every view and refusal
recorded, the consent ending on the server's clock). The answer is also an HL7 FHIR R4
CoverageEligibilityResponse."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

from fastapi.testclient import TestClient
from fhir.resources.R4B.coverageeligibilityresponse import CoverageEligibilityResponse

from mynumber.app import Container
from mynumber.auth.interfaces import StaffPrincipal
from mynumber.insurance.face import stand_in_live_photo
from mynumber.insurance.interfaces import (
    AccessAction,
    CoverageDocumentKind,
    TerminalStatus,
)
from mynumber.jpki.interfaces import RevocationReason
from tests.insurance.support_api import (
    CARD_PHOTO,
    KYOKAI,
    OTHER_CLINIC,
    TERMINAL,
    Holder,
    Reception,
    api,
    b64,
    card_check,
    clinical_lines,
    holder,
    linked,
    problem,
    reception,
    register_insurers,
)

__all__ = ["api"]  # the fixture

CONSENTS = "insurance-visit-consents"
RECORDS = "insurance-visit-records"


def ready(container: Container, clerk: StaffPrincipal) -> tuple[Holder, Reception]:
    """An activated card holder insured at 協会けんぽ, and a clinic's terminal."""
    register_insurers(container)
    taro = holder(container, clerk)
    linked(container, taro.resident)
    container.eligibility.activate_for_resident(taro.resident.id, taro.serial)
    return taro, reception(container)


def consent(api: TestClient, desk: Reception, visit: str, **choices: bool) -> Any:
    return api.post(f"{TERMINAL}/visits/{visit}/consents",
                    json=desk.body(CONSENTS, path={"visit_id": visit}, choices=choices))


def records(api: TestClient, desk: Reception, visit: str, item: str) -> Any:
    return api.post(f"{TERMINAL}/visits/{visit}/records/{item}",
                    json=desk.body(RECORDS, path={"visit_id": visit, "item": item}))


def actions(container: Container, holder: Holder) -> list[tuple[str, str | None]]:
    return [(e.action.value, e.item.value if e.item else None)
            for e in reversed(container.eligibility.access_entries(holder.resident.id))]


def test_card_and_pin_then_consent_then_drug_information(
    api: TestClient, container: Container, clerk: StaffPrincipal,
) -> None:
    taro, desk = ready(container, clerk)
    clinical_lines(container, taro.resident)
    checked = card_check(api, desk, taro)
    assert checked.status_code == 200, checked.text
    answer = checked.json()
    assert answer["validity"] == "valid" and answer["method"] == "card_pin"
    assert answer["qualification"]["insurer_number"] == KYOKAI
    assert answer["qualification"]["branch"] == "00"
    assert set(answer["consentable"]) == {"drugs", "checkups", "treatments"}
    visit = answer["visit_id"]

    given = consent(api, desk, visit, drugs=True, checkups=False)
    assert given.status_code == 200, given.text
    by_item = {c["item"]: c for c in given.json()}
    assert by_item["drugs"]["granted"] and by_item["drugs"]["expires_at"]
    assert not by_item["checkups"]["granted"] and by_item["checkups"]["expires_at"] is None

    drugs = records(api, desk, visit, "drugs")
    assert drugs.status_code == 200, drugs.text
    assert [r["label"] for r in drugs.json()] == ["アムロジピン錠5mg"]
    # Refused at this visit: nothing shown, and the refusal is recorded.
    body = problem(records(api, desk, visit, "checkups"), 403, "insurance_consent_required")
    assert body["reason"] == "refused"
    assert actions(container, taro)[-5:] == [
        ("eligibility", None), ("consent_given", "drugs"), ("consent_refused", "checkups"),
        ("view", "drugs"), ("view_refused", "checkups")]


def test_drug_data_without_consent_or_after_it_expired_is_refused_and_recorded(
    api: TestClient, container: Container, clerk: StaffPrincipal,
) -> None:
    taro, desk = ready(container, clerk)
    clinical_lines(container, taro.resident)
    visit = card_check(api, desk, taro).json()["visit_id"]
    body = problem(records(api, desk, visit, "drugs"), 403, "insurance_consent_required")
    assert body["reason"] == "none"
    assert consent(api, desk, visit, drugs=True).status_code == 200
    assert records(api, desk, visit, "drugs").status_code == 200

    # A day later (the server's clock; the terminal signs with that time too).
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=24, minutes=1)
    container.eligibility.clock = lambda: later
    expired = api.post(f"{TERMINAL}/visits/{visit}/records/drugs", json=desk.body(
        RECORDS, path={"visit_id": visit, "item": "drugs"}, at=later))
    assert problem(expired, 403, "insurance_consent_required")["reason"] == "expired"
    assert [a for a in actions(container, taro) if a[0].startswith("view")] == [
        ("view_refused", "drugs"), ("view", "drugs"), ("view_refused", "drugs")]


def test_a_check_with_a_revoked_authentication_certificate_fails(
    api: TestClient, container: Container, clerk: StaffPrincipal,
) -> None:
    taro, desk = ready(container, clerk)
    container.jpki.revoke(taro.serial, RevocationReason.LOST, "test:lost-card")
    for method, extra in (("card_pin", {}), ("visual", {"staff": "受付 佐藤"})):
        refused = card_check(api, desk, taro, method=method, **extra)
        assert problem(refused, 401, "insurance_card_refused")["reason"] == "revoked"
    assert AccessAction.ELIGIBILITY not in {
        e.action for e in container.eligibility.access_entries(taro.resident.id)}


def test_face_and_visual_confirmation(api: TestClient, container: Container,
                                      clerk: StaffPrincipal) -> None:
    taro, desk = ready(container, clerk)
    face = card_check(api, desk, taro, method="face", card_photo=b64(CARD_PHOTO),
                      live_photo=b64(stand_in_live_photo(CARD_PHOTO, b"camera")))
    assert face.status_code == 200 and face.json()["validity"] == "valid", face.text
    mismatch = card_check(api, desk, taro, method="face", card_photo=b64(CARD_PHOTO),
                          live_photo=b64(b"somebody else's face"))
    assert problem(mismatch, 401, "insurance_card_refused")["reason"] == "face_mismatch"
    visual = card_check(api, desk, taro, method="visual", staff="受付 佐藤")
    assert visual.status_code == 200 and visual.json()["method"] == "visual"
    # Each method's own input is required (a 422 naming it, before the challenge is spent).
    missing = card_check(api, desk, taro, method="visual")
    assert problem(missing, 422, "insurance_invalid_input")["field"] == "staff"


def test_the_terminal_must_sign_fresh_unique_requests_with_its_own_key(
    api: TestClient, container: Container, clerk: StaffPrincipal,
) -> None:
    desk = reception(container)
    other = reception(container, OTHER_CLINIC)
    kind = "insurance-terminal-challenge"
    url = f"{TERMINAL}/challenges"
    ok = desk.body(kind)
    assert api.post(url, json=ok).status_code == 200
    assert problem(api.post(url, json=ok), 401, "insurance_terminal_refused")["reason"] \
        == "replayed"
    stale = desk.body(kind, at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=6))
    assert problem(api.post(url, json=stale), 401, "insurance_terminal_refused")["reason"] \
        == "stale"
    foreign = desk.body(kind, key=other.key)  # another terminal's key
    assert problem(api.post(url, json=foreign), 401, "insurance_terminal_refused")["reason"] \
        == "bad_signature"
    unknown = desk.body(kind)
    unknown["terminal_id"] = "trm_0000000000000000"
    problem(api.post(url, json=unknown), 401, "insurance_terminal_unknown")
    container.eligibility.set_terminal_status(desk.id, TerminalStatus.SUSPENDED, "op:test")
    problem(api.post(url, json=desk.body(kind)), 401, "insurance_terminal_unknown")


def test_the_path_and_every_field_are_signed(api: TestClient, container: Container,
                                             clerk: StaffPrincipal) -> None:
    taro, desk = ready(container, clerk)
    clinical_lines(container, taro.resident)
    visit = card_check(api, desk, taro).json()["visit_id"]
    assert consent(api, desk, visit, drugs=True).status_code == 200
    # Signed for the checkups, sent to the drugs' URL.
    moved = desk.body(RECORDS, path={"visit_id": visit, "item": "checkups"})
    refused = api.post(f"{TERMINAL}/visits/{visit}/records/drugs", json=moved)
    assert problem(refused, 401, "insurance_terminal_refused")["reason"] == "bad_signature"
    # A choice changed after signing.
    tampered = desk.body(CONSENTS, path={"visit_id": visit}, choices={"checkups": False})
    tampered["choices"] = {"checkups": True}
    refused = api.post(f"{TERMINAL}/visits/{visit}/consents", json=tampered)
    assert problem(refused, 401, "insurance_terminal_refused")["reason"] == "bad_signature"


def test_another_institutions_terminal_cannot_use_the_visit(
    api: TestClient, container: Container, clerk: StaffPrincipal,
) -> None:
    taro, desk = ready(container, clerk)
    visit = card_check(api, desk, taro).json()["visit_id"]
    other = reception(container, OTHER_CLINIC)
    problem(consent(api, other, visit, drugs=True), 404, "insurance_visit_not_found")
    problem(records(api, other, visit, "drugs"), 404, "insurance_visit_not_found")
    # No trace for the patient, but an audit record of the other terminal's attempts.
    from mynumber.insurance import models as m
    from tests.insurance.support_eligibility import rows

    audited = rows(container.databases, m.AuditEvent, tag="insurance:visit:foreign_access")
    assert sorted(e.details["operation"] for e in audited) == ["consent", "records:drugs"]
    assert {e.actor for e in audited} == {f"terminal:{other.id}"}


def test_a_card_not_activated_is_refused(api: TestClient, container: Container,
                                         clerk: StaffPrincipal) -> None:
    register_insurers(container)
    hanako = holder(container, clerk, given_name="花子", given_name_kana="ハナコ")
    linked(container, hanako.resident)
    problem(card_check(api, reception(container), hanako), 403, "insurance_not_activated")


def test_a_confirmation_certificate_at_the_reception(
    api: TestClient, container: Container, clerk: StaffPrincipal,
) -> None:
    register_insurers(container)
    jiro = holder(container, clerk, given_name="次郎", given_name_kana="ジロウ")
    q = linked(container, jiro.resident)
    counts = container.insurance.issue_documents(KYOKAI)
    assert counts[CoverageDocumentKind.CONFIRMATION_CERTIFICATE] == 1
    (document,) = container.insurance.documents(q.id)
    desk = reception(container)
    shown = api.post(f"{TERMINAL}/eligibility/document", json=desk.body(
        "insurance-eligibility-document", document_number=document.document_number,
        birth_date=jiro.resident.birth_date.isoformat()))
    assert shown.status_code == 200, shown.text
    assert shown.json()["validity"] == "valid" and shown.json()["method"] == "document"
    wrong = api.post(f"{TERMINAL}/eligibility/document", json=desk.body(
        "insurance-eligibility-document", document_number=document.document_number,
        birth_date="1901-01-01"))
    problem(wrong, 404, "insurance_document_not_found")


def test_the_answer_as_a_fhir_coverage_eligibility_response(
    api: TestClient, container: Container, clerk: StaffPrincipal,
) -> None:
    taro, desk = ready(container, clerk)
    answer = card_check(api, desk, taro, headers={"Accept": "application/fhir+json"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/fhir+json")
    resource = answer.json()
    model = CoverageEligibilityResponse.model_validate(resource)
    assert model.outcome == "complete" and resource["resourceType"] \
        == "CoverageEligibilityResponse"
    coverage = next(r for r in resource["contained"] if r["resourceType"] == "Coverage")
    assert coverage["status"] == "active"
    number = container.registry.reveal_number(clerk, taro.resident.id, "test: not leaked")
    assert number not in answer.text
    # An error stays a problem document even when FHIR was asked for.
    refused = api.post(f"{TERMINAL}/eligibility/card",
                       headers={"Accept": "application/fhir+json"},
                       json={"terminal_id": desk.id})
    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith("application/problem+json")


def test_the_challenge_is_spent_once(api: TestClient, container: Container,
                                     clerk: StaffPrincipal) -> None:
    taro, desk = ready(container, clerk)
    issued = api.post(f"{TERMINAL}/challenges",
                      json=desk.body("insurance-terminal-challenge")).json()
    fields = {"challenge_id": issued["challenge_id"], "certificate": taro.certificate,
              "method": "card_pin",
              "card_signature": b64(taro.sign(base64.b64decode(issued["challenge"])))}
    first = api.post(f"{TERMINAL}/eligibility/card",
                     json=desk.body("insurance-eligibility-card", **fields))
    assert first.status_code == 200, first.text
    again = api.post(f"{TERMINAL}/eligibility/card",
                     json=desk.body("insurance-eligibility-card", **fields))
    assert problem(again, 401, "insurance_challenge_refused")["reason"] == "used"
    other = reception(container, OTHER_CLINIC)
    issued = api.post(f"{TERMINAL}/challenges",
                      json=desk.body("insurance-terminal-challenge")).json()
    fields["challenge_id"] = issued["challenge_id"]
    fields["card_signature"] = b64(taro.sign(base64.b64decode(issued["challenge"])))
    stolen = api.post(f"{TERMINAL}/eligibility/card",
                      json=other.body("insurance-eligibility-card", **fields))
    assert problem(stolen, 401, "insurance_challenge_refused")["reason"] == "other_terminal"


def test_signed_junk_is_a_problem_never_a_500(api: TestClient, container: Container,
                                             clerk: StaffPrincipal) -> None:
    taro, desk = ready(container, clerk)
    kind = "insurance-eligibility-card"
    url = f"{TERMINAL}/eligibility/card"

    def challenge() -> dict[str, Any]:
        issued: dict[str, Any] = api.post(f"{TERMINAL}/challenges", json=desk.body(
            "insurance-terminal-challenge")).json()
        return issued

    junk_certificates = ("x", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                         desk.terminal.certificate_pem)
    for certificate in junk_certificates:
        sent = api.post(url, json=desk.body(
            kind, challenge_id=challenge()["challenge_id"], certificate=certificate,
            method="card_pin", card_signature=b64(b"\x00" * 256)))
        assert sent.status_code in (401, 422), sent.text
    cases: list[dict[str, Any]] = [
        {"challenge_id": "unknown", "certificate": taro.certificate, "method": "card_pin",
         "card_signature": b64(b"\x01" * 256)},
        {"challenge_id": challenge()["challenge_id"], "certificate": taro.certificate,
         "method": "card_pin", "card_signature": b64(b"\x01" * 256)},
        {"challenge_id": challenge()["challenge_id"], "certificate": taro.certificate,
         "method": "face", "card_photo": "abc", "live_photo": "abcd"},
        {"challenge_id": challenge()["challenge_id"], "certificate": taro.certificate,
         "method": "visual", "staff": " "},
    ]
    for fields in cases:
        sent = api.post(url, json=desk.body(kind, **fields))
        assert sent.status_code in (401, 422), sent.text
        assert sent.headers["content-type"].startswith("application/problem+json")
    unsigned = desk.body("insurance-terminal-challenge")
    unsigned["signature"] = "!!!!"
    assert api.post(f"{TERMINAL}/challenges", json=unsigned).status_code == 422
    document = api.post(f"{TERMINAL}/eligibility/document", json=desk.body(
        "insurance-eligibility-document", document_number="0" * 16, birth_date="0001-01-01"))
    problem(document, 404, "insurance_document_not_found")
    problem(records(api, desk, "nosuchvisit", "drugs"), 404, "insurance_visit_not_found")


def test_face_matching_is_the_stand_in_in_embedded_mode_and_absent_in_production(
    api: TestClient, container: Container, clerk: StaffPrincipal,
) -> None:
    from mynumber.app import face_matcher
    from mynumber.settings import Mode, Settings

    assert "stand-in" in container.eligibility.matcher.name  # embedded: named as such
    production = Settings(mode=Mode.PRODUCTION, database_url="postgresql://db/{context}")
    assert face_matcher(production) is None
    taro, desk = ready(container, clerk)
    container.eligibility.matcher = None  # as production wires it
    refused = card_check(api, desk, taro, method="face", card_photo=b64(CARD_PHOTO),
                         live_photo=b64(stand_in_live_photo(CARD_PHOTO)))
    problem(refused, 403, "insurance_face_match_unavailable")


ACTIVATION = "insurance-terminal-activation"


def activation(api: TestClient, desk: Reception, card: Holder, *,
               challenge_of: Reception | None = None, sign: bytes | None = None) -> Any:
    """初回登録 at the card reader: a challenge of ``challenge_of`` (this terminal's by
    default), the card's signature over it, the signed request."""
    issued = api.post(f"{TERMINAL}/challenges",
                      json=(challenge_of or desk).body("insurance-terminal-challenge")).json()
    challenge = base64.b64decode(issued["challenge"])
    return api.post(f"{TERMINAL}/activation", json=desk.body(
        ACTIVATION, challenge_id=issued["challenge_id"], certificate=card.certificate,
        card_signature=b64(card.sign(sign if sign is not None else challenge))))


def test_first_registration_at_the_card_reader(api: TestClient, container: Container,
                                               clerk: StaffPrincipal) -> None:
    register_insurers(container)
    hanako = holder(container, clerk, given_name="花子", given_name_kana="ハナコ")
    linked(container, hanako.resident)
    desk = reception(container)
    problem(card_check(api, desk, hanako), 403, "insurance_not_activated")

    # The card signed something else: refused, nothing registered.
    wrong = activation(api, desk, hanako, sign=b"not the challenge")
    assert problem(wrong, 401, "insurance_card_refused")["reason"] == "bad_signature"
    # Another terminal's challenge: refused.
    other = reception(container, OTHER_CLINIC)
    stolen = activation(api, desk, hanako, challenge_of=other)
    assert problem(stolen, 401, "insurance_challenge_refused")["reason"] == "other_terminal"
    assert not container.eligibility.card_status(hanako.resident.id).activated

    done = activation(api, desk, hanako)
    assert done.status_code == 200, done.text
    answer = done.json()
    # Only that it is registered: nothing of the person or the insurance.
    assert set(answer) == {"activated", "activated_at"} and answer["activated"] is True
    assert hanako.resident.name not in done.text
    entry = container.eligibility.access_entries(hanako.resident.id)[0]
    assert (entry.action, entry.institution_code, entry.institution_name) == (
        AccessAction.ACTIVATION, desk.terminal.institution_code,
        desk.terminal.institution_name)
    # Then the eligibility check, the card signing a new challenge.
    checked = card_check(api, desk, hanako)
    assert checked.status_code == 200 and checked.json()["validity"] == "valid"
    # Once only.
    problem(activation(api, desk, hanako), 409, "insurance_already_activated")


def test_first_registration_refuses_a_revoked_card_and_a_tampered_request(
    api: TestClient, container: Container, clerk: StaffPrincipal,
) -> None:
    register_insurers(container)
    jiro = holder(container, clerk, given_name="次郎", given_name_kana="ジロウ")
    desk = reception(container)
    issued = api.post(f"{TERMINAL}/challenges",
                      json=desk.body("insurance-terminal-challenge")).json()
    body = desk.body(ACTIVATION, challenge_id=issued["challenge_id"],
                     certificate=jiro.certificate,
                     card_signature=b64(jiro.sign(base64.b64decode(issued["challenge"]))))
    body["challenge_id"] = "x" * 20  # changed after the terminal signed
    refused = api.post(f"{TERMINAL}/activation", json=body)
    assert problem(refused, 401, "insurance_terminal_refused")["reason"] == "bad_signature"
    missing = desk.body(ACTIVATION, challenge_id=issued["challenge_id"],
                        certificate=jiro.certificate)
    problem(api.post(f"{TERMINAL}/activation", json=missing), 422, "invalid_input")
    container.jpki.revoke(jiro.serial, RevocationReason.LOST, "test:lost-card")
    revoked = activation(api, desk, jiro)
    assert problem(revoked, 401, "insurance_card_refused")["reason"] == "revoked"
    assert not container.eligibility.card_status(jiro.resident.id).activated


def test_a_held_records_certificate_shows_nothing_in_json_or_fhir(
    api: TestClient, container: Container, clerk: StaffPrincipal,
) -> None:
    from mynumber.insurance.interfaces import LinkState
    from tests.insurance.support_eligibility import set_link_state

    register_insurers(container)
    jiro = holder(container, clerk, given_name="次郎", given_name_kana="ジロウ")
    q = linked(container, jiro.resident)
    container.insurance.issue_documents(KYOKAI)
    (document,) = container.insurance.documents(q.id)
    desk = reception(container)
    for state in (LinkState.BLOCKED, LinkState.REVIEW):
        set_link_state(container.databases, q.id, state)
        fields = {"document_number": document.document_number,
                  "birth_date": jiro.resident.birth_date.isoformat()}
        shown = api.post(f"{TERMINAL}/eligibility/document",
                         json=desk.body("insurance-eligibility-document", **fields))
        assert shown.status_code == 200, shown.text
        answer = shown.json()
        assert (answer["validity"], answer["qualification"], answer["consentable"]) == (
            "invalid", None, [])
        fhir = api.post(f"{TERMINAL}/eligibility/document",
                        headers={"Accept": "application/fhir+json"},
                        json=desk.body("insurance-eligibility-document", **fields))
        resource = fhir.json()
        CoverageEligibilityResponse.model_validate(resource)
        assert "insurance" not in resource
        assert all(r["resourceType"] != "Coverage" for r in resource["contained"])
        assert KYOKAI not in fhir.text and KYOKAI not in shown.text
