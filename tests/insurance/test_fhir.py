"""The eligibility answer as FHIR R4: a CoverageEligibilityResponse with a JP Core Coverage,
validated with the ``fhir.resources`` models (R4B, whose CoverageEligibilityResponse and
Coverage are R4's) plus the rules those models do not check (required code bindings, contained
references, period order)."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import pytest
from fhir.resources.R4B.coverage import Coverage
from fhir.resources.R4B.coverageeligibilityresponse import CoverageEligibilityResponse
from fhir.resources.R4B.organization import Organization
from fhir.resources.R4B.patient import Patient

from mynumber.insurance import fhir
from mynumber.insurance.fhir import coverage_eligibility_response, member_id
from mynumber.insurance.interfaces import (
    ConfirmationMethod,
    EligibilityResult,
    InsuredKind,
    Insurer,
    InsurerKind,
    InvalidInsuranceInput,
    LimitCategory,
    LinkState,
    LossReason,
    Qualification,
    Validity,
)

INSURER = Insurer(number="06139993", name="みなと産業健康保険組合",
                  kind=InsurerKind.SOCIETY, agency_id="insurer-06139993")
INSTITUTION_CODE = "1310123456"
INSTITUTION_NAME = "さくら内科クリニック"
# 2025-03-31 15:30 UTC is 2025-04-01 00:30 in Japan: the service date is JST's.
CHECKED_AT = dt.datetime(2025, 3, 31, 15, 30, tzinfo=dt.UTC)

# The value sets FHIR R4 binds as *required* (the models accept any string).
ELIGIBILITY_STATUS = {"active", "cancelled", "draft", "entered-in-error"}
COVERAGE_STATUS = {"active", "cancelled", "draft", "entered-in-error"}
OUTCOMES = {"queued", "complete", "error", "partial"}
PURPOSES = {"auth-requirements", "benefits", "discovery", "validation"}
FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
TWELVE_DIGITS = re.compile(r"(?<!\d)\d{12}(?!\d)")


def qualification(**changes: Any) -> Qualification:
    values: dict[str, Any] = dict(
        id=41, insurer_number=INSURER.number, insurer_name=INSURER.name, symbol="1234",
        number="5678", branch="01", insured_kind=InsuredKind.INSURED,
        acquired_on=dt.date(2020, 4, 1), lost_on=None, loss_reason=None, copay_percent=30,
        elderly_recipient=False, limit_category=None, link_state=LinkState.LINKED)
    values.update(changes)
    return Qualification(**values)


def result(validity: Validity, q: Qualification | None = None,
           method: ConfirmationMethod = ConfirmationMethod.CARD_PIN) -> EligibilityResult:
    return EligibilityResult(visit_id="3f9c2a7be1d04c6f8a55e0b9d2c4f1a7", checked_at=CHECKED_AT,
                             method=method, validity=validity, qualification=q)


def answer(res: EligibilityResult, insurer: Insurer | None = INSURER,
           **kwargs: Any) -> dict[str, Any]:
    return coverage_eligibility_response(res, insurer, institution_code=INSTITUTION_CODE,
                                         institution_name=INSTITUTION_NAME, **kwargs)


def validated(resource: dict[str, Any]) -> CoverageEligibilityResponse:
    """Validate with the model, check the round trip and the rules the model leaves out."""
    json.dumps(resource)  # plain JSON types only
    model = CoverageEligibilityResponse.model_validate(resource)
    # Round trip: the model keeps every element as produced (nothing dropped or coerced).
    assert model.model_dump(mode="json", exclude_none=True) == resource
    assert CoverageEligibilityResponse.model_validate_json(model.model_dump_json()) == model
    assert resource["status"] in ELIGIBILITY_STATUS
    assert resource["outcome"] in OUTCOMES
    assert set(resource["purpose"]) <= PURPOSES
    # dom-3: every contained resource is referenced; every local reference resolves; dom-2: no
    # nesting.
    contained = {c["id"]: c for c in resource["contained"]}
    assert all(FHIR_ID.match(i) for i in contained)
    assert len(contained) == len(resource["contained"])
    local = set(re.findall(r'"reference": "#([^"]+)"', json.dumps(resource)))
    assert local == set(contained)
    assert all("contained" not in c for c in resource["contained"])
    for reference in _references(resource):
        if reference.get("reference", "").startswith("#") and "type" in reference:
            assert contained[reference["reference"][1:]]["resourceType"] == reference["type"]
    for c in resource["contained"]:
        if c["resourceType"] == "Coverage":
            assert c["status"] in COVERAGE_STATUS
            period = c["period"]
            assert "end" not in period or period["start"] <= period["end"]
    return model


def _references(node: Any) -> list[dict[str, Any]]:
    found = []
    if isinstance(node, dict):
        if "reference" in node and isinstance(node["reference"], str):
            found.append(node)
        for value in node.values():
            found += _references(value)
    elif isinstance(node, list):
        for value in node:
            found += _references(value)
    return found


def contained(resource: dict[str, Any], kind: str, id_: str | None = None) -> dict[str, Any]:
    matches = [c for c in resource["contained"] if c["resourceType"] == kind
               and (id_ is None or c["id"] == id_)]
    assert len(matches) == 1, (kind, id_)
    return matches[0]


def ext(resource: dict[str, Any], url: str) -> list[Any]:
    return [e for e in resource.get("extension", []) if e["url"] == url]


# --- the validity cases ------------------------------------------------------------------------


@pytest.mark.parametrize(("validity", "q", "outcome", "inforce"), [
    (Validity.VALID, qualification(), "complete", True),
    (Validity.INVALID, qualification(lost_on=dt.date(2025, 3, 1),
                                     loss_reason=LossReason.RETIREMENT), "complete", False),
    (Validity.INVALID_NEW_QUALIFICATION,
     qualification(lost_on=dt.date(2025, 2, 1), loss_reason=LossReason.NEW_QUALIFICATION),
     "complete", False),
])
def test_found_answers_validate_and_carry_the_coverage(validity: Validity, q: Qualification,
                                                       outcome: str, inforce: bool) -> None:
    resource = answer(result(validity, q))
    model = validated(resource)
    assert resource["outcome"] == outcome
    assert resource["disposition"] == fhir.VALIDITY_LABELS[validity]
    assert resource["insurance"] == [{"coverage": {"reference": "#coverage", "type": "Coverage"},
                                      "inforce": inforce}]
    assert "error" not in resource
    assert resource["insurer"]["reference"] == "#insurer"
    (code,) = ext(resource, fhir.VALIDITY_EXTENSION)
    assert code["valueCoding"]["system"] == fhir.VALIDITY_SYSTEM
    assert code["valueCoding"]["code"] == validity.value
    # The models read the contained resources as their own types.
    kinds = {type(c).__name__ for c in model.contained}
    assert kinds == {"Patient", "Organization", "Coverage"}
    Coverage.model_validate(contained(resource, "Coverage"))
    coverage = contained(resource, "Coverage")
    assert coverage["status"] == ("active" if validity is Validity.VALID else "cancelled")


@pytest.mark.parametrize("validity", [Validity.NOT_FOUND, Validity.MULTIPLE])
def test_not_found_and_multiple_are_errors_without_a_coverage(validity: Validity) -> None:
    # Even if a qualification were handed in, a several-match answer must show none.
    for q in (None, qualification()):
        resource = answer(result(validity, q), insurer=None)
        validated(resource)
        assert resource["outcome"] == "error"
        assert resource["error"] == [{"code": {
            "coding": [{"system": fhir.VALIDITY_SYSTEM, "code": validity.value,
                        "display": fhir.VALIDITY_LABELS[validity]}],
            "text": fhir.VALIDITY_LABELS[validity]}}]
        assert "insurance" not in resource
        kinds = [c["resourceType"] for c in resource["contained"]]
        assert "Coverage" not in kinds
        assert [c for c in resource["contained"] if c["id"] == "insurer"] == []
        assert resource["insurer"] == {"display": fhir.CONFIRMATION_SYSTEM_NAME}
        text = json.dumps(resource)
        assert "JP_Coverage" not in text and INSURER.number not in text


def test_every_validity_maps_to_one_outcome() -> None:
    outcomes = {}
    for validity in Validity:
        q = None if validity in (Validity.NOT_FOUND, Validity.MULTIPLE) else qualification()
        resource = answer(result(validity, q))
        validated(resource)
        inforce = [i["inforce"] for i in resource.get("insurance", [])]
        outcomes[validity] = (resource["outcome"], inforce, resource["disposition"])
    assert outcomes == {
        Validity.VALID: ("complete", [True], "有効"),
        Validity.INVALID: ("complete", [False], "無効"),
        Validity.INVALID_NEW_QUALIFICATION: ("complete", [False], "無効・新資格あり"),
        Validity.NOT_FOUND: ("error", [], "該当なし"),
        Validity.MULTIPLE: ("error", [], "複数該当"),
    }


def test_invalid_without_a_qualification_has_no_coverage() -> None:
    resource = answer(result(Validity.INVALID, None), insurer=None)
    validated(resource)
    assert resource["outcome"] == "complete"
    assert "insurance" not in resource
    assert resource["disposition"] == "無効"


# --- the JP Core identifiers -------------------------------------------------------------------


def test_coverage_carries_symbol_number_and_branch_the_jp_core_way() -> None:
    resource = answer(result(Validity.VALID, qualification()))
    validated(resource)
    coverage = contained(resource, "Coverage")
    assert coverage["meta"]["profile"] == [
        "http://jpfhir.jp/fhir/core/StructureDefinition/JP_Coverage"]
    base = "http://jpfhir.jp/fhir/core/Extension/StructureDefinition/"
    assert coverage["extension"] == [
        {"url": base + "JP_Coverage_InsuredPersonSymbol", "valueString": "1234"},
        {"url": base + "JP_Coverage_InsuredPersonNumber", "valueString": "5678"},
        {"url": base + "JP_Coverage_InsuredPersonSubNumber", "valueString": "01"},
    ]
    assert coverage["identifier"] == [{
        "system": "http://jpfhir.jp/fhir/clins/Idsystem/JP_Insurance_memberID",
        "value": "06139993:1234:5678:01",
        "assigner": {"reference": "#insurer", "type": "Organization"}}]
    assert coverage["subscriberId"] == "1234:5678"
    assert coverage["dependent"] == "01"
    assert coverage["payor"] == [{"reference": "#insurer", "type": "Organization"}]
    insurer = contained(resource, "Organization", "insurer")
    Organization.model_validate(insurer)
    assert insurer["identifier"] == [{"system": "urn:oid:1.2.392.100495.20.3.61",
                                      "value": "06139993"}]
    assert insurer["name"] == INSURER.name
    assert insurer["type"][0]["text"] == "健康保険組合"
    institution = contained(resource, "Organization", "institution")
    assert institution["identifier"] == [{
        "system": "http://jpfhir.jp/fhir/core/IdSystem/insurance-medical-institution-no",
        "value": INSTITUTION_CODE}]
    assert institution["name"] == INSTITUTION_NAME
    assert resource["requestor"] == {"reference": "#institution", "type": "Organization"}


def test_a_municipal_nhi_number_is_padded_and_an_empty_symbol_left_out() -> None:
    nhi = Insurer(number="138057", name="港区国民健康保険", kind=InsurerKind.MUNICIPAL_NHI,
                  agency_id="nhi-138057")
    q = qualification(insurer_number=nhi.number, insurer_name=nhi.name, symbol="",
                      number="0071", branch="02")
    resource = answer(result(Validity.VALID, q), insurer=nhi)
    validated(resource)
    coverage = contained(resource, "Coverage")
    urls = [e["url"].rsplit("_", 1)[-1] for e in coverage["extension"]]
    assert urls == ["InsuredPersonNumber", "InsuredPersonSubNumber"]
    assert coverage["identifier"][0]["value"] == "00138057::0071:02"
    assert coverage["subscriberId"] == "0071"
    # The payor keeps the number as printed (6 digits).
    assert contained(resource, "Organization", "insurer")["identifier"][0]["value"] == "138057"
    assert member_id("138057", "", "0071", "02") == "00138057::0071:02"


def test_insured_and_dependent_relationships() -> None:
    insured = contained(answer(result(Validity.VALID, qualification())), "Coverage")
    dependent = contained(answer(result(Validity.VALID, qualification(
        insured_kind=InsuredKind.DEPENDENT, branch="02"))), "Coverage")
    assert insured["relationship"] == {"coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/subscriber-relationship",
         "code": "self", "display": "Self"},
        {"system": "http://jpfhir.jp/fhir/core/mhlw/CodeSystem/InsuredPersonCategory",
         "code": "1", "display": "被保険者"}], "text": "本人"}
    codes = {(c["system"].rsplit("/", 1)[-1], c["code"])
             for c in dependent["relationship"]["coding"]}
    assert codes == {("subscriber-relationship", "other"), ("InsuredPersonCategory", "2")}
    assert dependent["relationship"]["text"] == "家族"


@pytest.mark.parametrize("percent", [10, 20, 30])
def test_copay_is_a_percentage_cost_to_the_beneficiary(percent: int) -> None:
    resource = answer(result(Validity.VALID, qualification(copay_percent=percent)))
    validated(resource)
    (cost,) = contained(resource, "Coverage")["costToBeneficiary"]
    assert cost["type"]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/coverage-copay-type",
        "code": "copaypct", "display": "Copay Percentage"}
    assert cost["valueQuantity"] == {"value": percent, "unit": "%",
                                     "system": "http://unitsofmeasure.org", "code": "%"}


def test_period_end_is_the_last_covered_day() -> None:
    # lost_on (資格喪失日) is the first day not covered; FHIR's period.end is inclusive.
    q = qualification(acquired_on=dt.date(2021, 10, 1), lost_on=dt.date(2025, 3, 1),
                      loss_reason=LossReason.RETIREMENT)
    coverage = contained(answer(result(Validity.INVALID, q)), "Coverage")
    assert coverage["period"] == {"start": "2021-10-01", "end": "2025-02-28"}
    open_ended = contained(answer(result(Validity.VALID, qualification())), "Coverage")
    assert open_ended["period"] == {"start": "2020-04-01"}
    # A qualification that ends after the check is still active on the day.
    later = qualification(lost_on=dt.date(2025, 4, 2), loss_reason=LossReason.RETIREMENT)
    coverage = contained(answer(result(Validity.VALID, later)), "Coverage")
    assert coverage["status"] == "active"
    assert coverage["period"]["end"] == "2025-04-01"


def test_elderly_recipient_and_limit_category_are_classes() -> None:
    q = qualification(elderly_recipient=True, limit_category=LimitCategory.ACTIVE_2,
                      copay_percent=20)
    resource = answer(result(Validity.VALID, q))
    validated(resource)
    classes = contained(resource, "Coverage")["class"]
    assert [(c["value"], c["name"]) for c in classes] == [
        ("elderly_recipient", "高齢受給者"), ("active_2", "限度額適用区分 現役並みⅡ")]
    assert "class" not in contained(answer(result(Validity.VALID, qualification())),
                                    "Coverage")


def test_the_visit_and_the_times() -> None:
    res = result(Validity.VALID, qualification(), method=ConfirmationMethod.FACE)
    resource = answer(res)
    validated(resource)
    assert resource["identifier"] == [{"system": fhir.VISIT_SYSTEM, "value": res.visit_id}]
    assert resource["request"]["identifier"] == {"system": fhir.VISIT_SYSTEM,
                                                 "value": res.visit_id}
    assert resource["created"] == "2025-04-01T00:30:00+09:00"
    assert resource["servicedDate"] == "2025-04-01"
    (method,) = ext(resource, fhir.METHOD_EXTENSION)
    assert method["valueCoding"]["code"] == "face"


# --- what the answer must not carry ------------------------------------------------------------


def test_the_patient_is_contained_without_identifiers_by_default() -> None:
    resource = answer(result(Validity.VALID, qualification()))
    patient = contained(resource, "Patient")
    assert patient == {"resourceType": "Patient", "id": "patient"}
    Patient.model_validate(patient)
    assert resource["patient"] == {"reference": "#patient", "type": "Patient"}
    assert contained(resource, "Coverage")["beneficiary"] == resource["patient"]


def test_a_caller_may_name_its_own_patient() -> None:
    resource = answer(result(Validity.VALID, qualification()), patient_reference="Patient/p-17")
    validated(resource)
    assert [c for c in resource["contained"] if c["resourceType"] == "Patient"] == []
    assert resource["patient"] == {"reference": "Patient/p-17", "type": "Patient"}
    assert contained(resource, "Coverage")["beneficiary"] == resource["patient"]
    absolute = answer(result(Validity.VALID, qualification()),
                      patient_reference="https://ehr.example.jp/fhir/Patient/p-17")
    validated(absolute)
    assert absolute["patient"]["reference"] == "https://ehr.example.jp/fhir/Patient/p-17"


@pytest.mark.parametrize("reference", [
    "#patient", "", " ", "Organization/o-1", "Patient/", "Patient/a b", "patient-17",
    "Patient/123456789012",  # a 12-digit id looks like a 個人番号: refused whoever sends it
    "https://ehr.example.jp/fhir/Patient/p-1?x=123456789012",
])
def test_a_bad_patient_reference_is_a_client_error(reference: str) -> None:
    with pytest.raises(InvalidInsuranceInput) as refused:
        answer(result(Validity.VALID, qualification()), patient_reference=reference)
    assert refused.value.code == "insurance_invalid_input"
    assert "123456789012" not in str(refused.value)


@pytest.mark.parametrize("validity", list(Validity))
def test_no_twelve_digit_number_anywhere(validity: Validity) -> None:
    q = None if validity in (Validity.NOT_FOUND, Validity.MULTIPLE) else qualification(
        elderly_recipient=True, limit_category=LimitCategory.GENERAL)
    text = json.dumps(answer(result(validity, q)), ensure_ascii=False)
    assert TWELVE_DIGITS.search(text) is None
    for word in ("individual_number", "resident", "個人番号", "住民票コード", "agency"):
        assert word not in text
    assert INSURER.agency_id not in text


def test_contradictions_are_refused() -> None:
    with pytest.raises(ValueError, match="valid"):
        answer(result(Validity.VALID, None))
    other = Insurer(number="01130012", name="協会けんぽ", kind=InsurerKind.KYOKAI,
                    agency_id="kyokai")
    with pytest.raises(ValueError, match="insurer"):
        answer(result(Validity.VALID, qualification()), insurer=other)


def test_the_insurer_defaults_to_the_qualifications_own() -> None:
    resource = answer(result(Validity.VALID, qualification()), insurer=None)
    validated(resource)
    insurer = contained(resource, "Organization", "insurer")
    assert insurer["name"] == INSURER.name
    assert insurer["identifier"][0]["value"] == INSURER.number
    assert "text" not in insurer["type"][0]


def test_media_type() -> None:
    assert fhir.MEDIA_TYPE == "application/fhir+json"
