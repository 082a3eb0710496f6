"""The eligibility answer at the edge: an HL7 FHIR R4 ``CoverageEligibilityResponse`` (JSON,
served as ``application/fhir+json``) with a contained ``Coverage`` in the JP Core form.

Pure: a dict from an :class:`EligibilityResult`, no I/O, no database. What it carries and why:

- ``outcome``: ``complete`` when the person was found (有効 / 無効 / 無効・新資格あり),
  ``error`` with an ``error[].code`` when not (該当なし / 複数該当: no Coverage at all, so a
  several-match answer never shows anyone's insurance).
- ``insurance[0].inforce``: true only for 有効; ``disposition`` names the 資格有効性 in Japanese
  and an extension carries its code (:data:`VALIDITY_SYSTEM`).
- The contained ``Coverage`` (JP Core ``JP_Coverage``): 記号, 番号 and 枝番 in the JP Core
  extensions ``insuredPersonSymbol`` / ``insuredPersonNumber`` / ``insuredPersonSubNumber`` and
  in ``subscriberId`` / ``dependent``; the 被保険者個人識別子 ``保険者番号:記号:番号:枝番`` as
  ``identifier[insuranceIdentifier]``; the insurer (保険者番号 under its OID) as ``payor``;
  本人/家族 as ``relationship``; 一部負担金割合 as ``costToBeneficiary`` (``copaypct``, a
  percentage); 高齢受給者 and 限度額適用区分 as ``class`` entries; the qualification as
  ``period`` (``lost_on`` is the first day *not* covered, FHIR's ``period.end`` the last day
  that is, so ``end = lost_on - 1 day``).
- The patient: by default a contained ``Patient`` with no identifier, name or birth date (the
  answer never carries a 個人番号, a 住民票コード or the registry's resident id); a caller that
  has its own patient resource passes ``patient_reference`` (e.g. ``Patient/123`` on the
  institution's own FHIR server) and no Patient is contained.

Sources for the identifier systems and extensions (JP Core, JAMI's FHIR JP Core
ImplementationGuide, https://jpfhir.jp/fhir/core/ ; repository jami-fhir-jp-wg/jp-core-v1x:
``input/fsh/profiles/JP_Coverage.fsh`` (extensions, ``insuranceIdentifier``, relationship and
copay guidance), ``input/fsh/aliases-jpcore.fsh`` (extension and code-system URLs),
``input/fsh/profiles/JP_Organization.fsh`` (10-digit 医療機関コード), the NamingSystem instances
(``jp-insurer-number-namingsystem``: OID 1.2.392.100495.20.3.61 for 保険者番号). The
``保険者番号:記号:番号:枝番`` value format (8 digits, 記号 and 番号 half- or full-width, 枝番 two
digits, an absent element empty) is JP-CLINS's rule R1013 (電子カルテ情報共有サービス FHIR
実装ガイド, https://jpfhir.jp/fhir/clins/).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from mynumber.insurance.interfaces import (
    ConfirmationMethod,
    EligibilityResult,
    InsuredKind,
    Insurer,
    InsurerKind,
    InvalidInsuranceInput,
    LimitCategory,
    Qualification,
    Validity,
)
from mynumber.kernel.localtime import in_japan

#: The media type the FHIR answer is served with (FHIR R4 §3.1.0.1.10 "application/fhir+json").
MEDIA_TYPE = "application/fhir+json"
#: The FHIR version of the resource (the tests validate it with the R4B models, whose
#: CoverageEligibilityResponse and Coverage are R4's).
FHIR_VERSION = "4.0.1"

# --- JP Core ------------------------------------------------------------------------------------
JP_COVERAGE_PROFILE = "http://jpfhir.jp/fhir/core/StructureDefinition/JP_Coverage"
JP_ORGANIZATION_PROFILE = "http://jpfhir.jp/fhir/core/StructureDefinition/JP_Organization"
_JP_EXTENSION = "http://jpfhir.jp/fhir/core/Extension/StructureDefinition/"
#: 被保険者証記号 (JP Core extension JP_Coverage_InsuredPersonSymbol, slice insuredPersonSymbol).
EXT_INSURED_PERSON_SYMBOL = _JP_EXTENSION + "JP_Coverage_InsuredPersonSymbol"
#: 被保険者証番号 (JP_Coverage_InsuredPersonNumber, slice insuredPersonNumber).
EXT_INSURED_PERSON_NUMBER = _JP_EXTENSION + "JP_Coverage_InsuredPersonNumber"
#: 被保険者証枝番 (JP_Coverage_InsuredPersonSubNumber, slice insuredPersonSubNumber).
EXT_INSURED_PERSON_SUB_NUMBER = _JP_EXTENSION + "JP_Coverage_InsuredPersonSubNumber"
#: 被保険者個人識別子 ``保険者番号:記号:番号:枝番`` (JP_Coverage identifier[insuranceIdentifier]).
INSURANCE_MEMBER_ID_SYSTEM = "http://jpfhir.jp/fhir/clins/Idsystem/JP_Insurance_memberID"
#: 保険者番号 (JP Core NamingSystem jp-insurer-number-namingsystem; the OID form JP Core 1.1 and
#: JP-CLINS fix for Organization.identifier; JP Core 1.2 lists it as the same system as
#: http://jpfhir.jp/fhir/core/mhlw/IdSystem/InsurerNumber).
INSURER_NUMBER_SYSTEM = "urn:oid:1.2.392.100495.20.3.61"
#: 医療機関コード, 10 digits (JP_Organization identifier[medicalInstitutionCode]).
MEDICAL_INSTITUTION_CODE_SYSTEM = (
    "http://jpfhir.jp/fhir/core/IdSystem/insurance-medical-institution-no")
#: 被保険者区分 (1 被保険者, 2 被扶養者): the code system JP_Coverage.relationship points to.
INSURED_PERSON_CATEGORY_SYSTEM = "http://jpfhir.jp/fhir/core/mhlw/CodeSystem/InsuredPersonCategory"

# --- HL7 terminology ----------------------------------------------------------------------------
SUBSCRIBER_RELATIONSHIP_SYSTEM = "http://terminology.hl7.org/CodeSystem/subscriber-relationship"
COPAY_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/coverage-copay-type"
COVERAGE_CLASS_SYSTEM = "http://terminology.hl7.org/CodeSystem/coverage-class"
ACT_CODE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ORGANIZATION_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/organization-type"
UCUM_SYSTEM = "http://unitsofmeasure.org"

# --- this system's own codes (URNs like the problem types' ``urn:mynumber:problem:…``) -----------
#: The visit (one confirmation at a reception): the response's identifier and its request.
VISIT_SYSTEM = "urn:mynumber:insurance:visit"
#: 資格有効性 codes (the :class:`Validity` values) and the extension that carries one.
VALIDITY_SYSTEM = "urn:mynumber:insurance:validity"
VALIDITY_EXTENSION = "urn:mynumber:insurance:fhir:validity"
#: How the person was confirmed (the :class:`ConfirmationMethod` values) and its extension.
METHOD_SYSTEM = "urn:mynumber:insurance:confirmation-method"
METHOD_EXTENSION = "urn:mynumber:insurance:fhir:confirmation-method"
#: 高齢受給者 and 限度額適用区分 as Coverage.class values.
ELDERLY_RECIPIENT_CLASS = "elderly_recipient"
LIMIT_CATEGORY_SYSTEM = "urn:mynumber:insurance:limit-category"

#: What answers when no insurer can be named (該当なし / 複数該当): the confirmation system.
CONFIRMATION_SYSTEM_NAME = "オンライン資格確認等システム"

VALIDITY_LABELS: dict[Validity, str] = {
    Validity.VALID: "有効",
    Validity.INVALID: "無効",
    Validity.INVALID_NEW_QUALIFICATION: "無効・新資格あり",
    Validity.NOT_FOUND: "該当なし",
    Validity.MULTIPLE: "複数該当",
}

LIMIT_CATEGORY_LABELS: dict[LimitCategory, str] = {
    LimitCategory.A: "ア",
    LimitCategory.I: "イ",
    LimitCategory.U: "ウ",
    LimitCategory.E: "エ",
    LimitCategory.O: "オ",
    LimitCategory.ACTIVE_3: "現役並みⅢ",
    LimitCategory.ACTIVE_2: "現役並みⅡ",
    LimitCategory.ACTIVE_1: "現役並みⅠ",
    LimitCategory.GENERAL: "一般",
    LimitCategory.LOW_2: "低所得Ⅱ",
    LimitCategory.LOW_1: "低所得Ⅰ",
}

INSURER_KIND_LABELS: dict[InsurerKind, str] = {
    InsurerKind.KYOKAI: "全国健康保険協会",
    InsurerKind.SOCIETY: "健康保険組合",
    InsurerKind.MUNICIPAL_NHI: "市町村国民健康保険",
    InsurerKind.NHI_SOCIETY: "国民健康保険組合",
    InsurerKind.LATE_ELDERLY: "後期高齢者医療広域連合",
}

METHOD_LABELS: dict[ConfirmationMethod, str] = {
    ConfirmationMethod.CARD_PIN: "マイナンバーカード(暗証番号)",
    ConfirmationMethod.FACE: "マイナンバーカード(顔認証)",
    ConfirmationMethod.VISUAL: "マイナンバーカード(目視確認)",
    ConfirmationMethod.DOCUMENT: "資格確認書",
}

# Local ids of the contained resources ("#coverage" etc. inside the response).
_COVERAGE_ID = "coverage"
_INSURER_ID = "insurer"
_INSTITUTION_ID = "institution"
_PATIENT_ID = "patient"

# A literal reference to the institution's own Patient (FHIR R4 §2.3.0 "Literal references").
_PATIENT_REFERENCE = re.compile(r"(https?://[^\s#?]+/)?Patient/[A-Za-z0-9\-.]{1,64}")
_TWELVE_DIGITS = re.compile(r"(?<!\d)\d{12}(?!\d)")

#: 該当なし and 複数該当 answer with an error and no Coverage.
_ERROR_VALIDITIES = frozenset({Validity.NOT_FOUND, Validity.MULTIPLE})


def coverage_eligibility_response(result: EligibilityResult, insurer: Insurer | None, *,
                                  institution_code: str, institution_name: str,
                                  patient_reference: str | None = None) -> dict[str, Any]:
    """The FHIR R4 ``CoverageEligibilityResponse`` for one eligibility answer.

    ``insurer`` is the qualification's insurer when the caller has it (its name and kind are
    used); without it the qualification's own insurer number and name are. ``patient_reference``
    (a relative or absolute reference to the institution's own Patient) replaces the contained,
    identifier-free Patient; a malformed one (or one with a 12-digit run) raises
    :class:`InvalidInsuranceInput`. Raises ValueError for an answer that contradicts itself
    (有効 without a qualification, an insurer that is not the qualification's)."""
    validity = Validity(result.validity)
    method = ConfirmationMethod(result.method)
    qualification = None if validity in _ERROR_VALIDITIES else result.qualification
    if validity is Validity.VALID and qualification is None:
        raise ValueError("a valid eligibility answer names its qualification")
    if insurer is not None and qualification is not None \
            and insurer.number != qualification.insurer_number:
        raise ValueError("the insurer is not the qualification's insurer")
    if patient_reference is not None:
        _check_patient_reference(patient_reference)

    checked = in_japan(result.checked_at)
    contained: list[dict[str, Any]] = []
    if patient_reference is None:
        # No identifier, name or birth date: the institution knows its patient; the answer
        # must not carry the registry's ids (nor, of course, a 個人番号).
        contained.append({"resourceType": "Patient", "id": _PATIENT_ID})
        patient = {"reference": f"#{_PATIENT_ID}", "type": "Patient"}
    else:
        patient = {"reference": patient_reference, "type": "Patient"}
    contained.append(_institution(institution_code, institution_name))

    response: dict[str, Any] = {
        "resourceType": "CoverageEligibilityResponse",
        "extension": [
            {"url": VALIDITY_EXTENSION,
             "valueCoding": {"system": VALIDITY_SYSTEM, "code": validity.value,
                             "display": VALIDITY_LABELS[validity]}},
            {"url": METHOD_EXTENSION,
             "valueCoding": {"system": METHOD_SYSTEM, "code": method.value,
                             "display": METHOD_LABELS[method]}},
        ],
        "identifier": [{"system": VISIT_SYSTEM, "value": result.visit_id}],
        "status": "active",
        "purpose": ["validation"],
        "patient": patient,
        "servicedDate": checked.date().isoformat(),
        "created": checked.isoformat(timespec="seconds"),
        "requestor": {"reference": f"#{_INSTITUTION_ID}", "type": "Organization"},
        "request": {"type": "CoverageEligibilityRequest",
                    "identifier": {"system": VISIT_SYSTEM, "value": result.visit_id}},
        "outcome": "error" if validity in _ERROR_VALIDITIES else "complete",
        "disposition": VALIDITY_LABELS[validity],
    }
    if qualification is None:
        response["insurer"] = {"display": CONFIRMATION_SYSTEM_NAME}
    else:
        contained.append(_insurer(qualification, insurer))
        contained.append(_coverage(qualification, patient, checked.date()))
        response["insurer"] = {"reference": f"#{_INSURER_ID}", "type": "Organization"}
        response["insurance"] = [{
            "coverage": {"reference": f"#{_COVERAGE_ID}", "type": "Coverage"},
            "inforce": validity is Validity.VALID,
        }]
    if validity in _ERROR_VALIDITIES:
        response["error"] = [{"code": {
            "coding": [{"system": VALIDITY_SYSTEM, "code": validity.value,
                        "display": VALIDITY_LABELS[validity]}],
            "text": VALIDITY_LABELS[validity],
        }}]
    response["contained"] = contained
    return _ordered(response)


def _check_patient_reference(reference: str) -> None:
    # The reference may come from the institution's request: a client error, not a crash. A
    # 12-digit run looks like a 個人番号, which the answer never carries, whoever supplies it.
    if not _PATIENT_REFERENCE.fullmatch(reference) or _TWELVE_DIGITS.search(reference):
        raise InvalidInsuranceInput(
            "patient_reference: a Patient/<id> reference (or an absolute URL ending so) of the "
            "institution's own patient, not a 12-digit number", field="patient_reference")


def member_id(insurer_number: str, symbol: str, number: str, branch: str) -> str:
    """The 被保険者個人識別子 (JP-CLINS R1013): ``保険者番号:記号:番号:枝番``, the insurer number
    as 8 digits (a 6-digit 国保 number left-padded with zeros), an absent element empty."""
    return ":".join((insurer_number.zfill(8), symbol, number, branch))


def _coverage(q: Qualification, patient: dict[str, Any], today: dt.date) -> dict[str, Any]:
    extensions = []
    # JP Core: 番号のみ設定されている場合は、記号の記録を省略する.
    if q.symbol:
        extensions.append({"url": EXT_INSURED_PERSON_SYMBOL, "valueString": q.symbol})
    extensions.append({"url": EXT_INSURED_PERSON_NUMBER, "valueString": q.number})
    extensions.append({"url": EXT_INSURED_PERSON_SUB_NUMBER, "valueString": q.branch})

    ended = q.lost_on is not None and q.lost_on <= today
    period: dict[str, str] = {"start": q.acquired_on.isoformat()}
    if q.lost_on is not None:
        # lost_on is the first day not covered; a FHIR Period's end is inclusive.
        period["end"] = (q.lost_on - dt.timedelta(days=1)).isoformat()

    if q.insured_kind is InsuredKind.INSURED:
        relationship = {"coding": [
            {"system": SUBSCRIBER_RELATIONSHIP_SYSTEM, "code": "self", "display": "Self"},
            {"system": INSURED_PERSON_CATEGORY_SYSTEM, "code": "1", "display": "被保険者"},
        ], "text": "本人"}
    else:
        relationship = {"coding": [
            {"system": SUBSCRIBER_RELATIONSHIP_SYSTEM, "code": "other", "display": "Other"},
            {"system": INSURED_PERSON_CATEGORY_SYSTEM, "code": "2", "display": "被扶養者"},
        ], "text": "家族"}

    classes: list[dict[str, Any]] = []
    if q.elderly_recipient:
        classes.append({
            "type": {"coding": [{"system": COVERAGE_CLASS_SYSTEM, "code": "subgroup"}]},
            "value": ELDERLY_RECIPIENT_CLASS, "name": "高齢受給者"})
    if q.limit_category is not None:
        category = LimitCategory(q.limit_category)
        classes.append({
            "type": {"coding": [{"system": COVERAGE_CLASS_SYSTEM, "code": "subplan"}]},
            "value": category.value,
            "name": f"限度額適用区分 {LIMIT_CATEGORY_LABELS[category]}"})

    coverage: dict[str, Any] = {
        "resourceType": "Coverage",
        "id": _COVERAGE_ID,
        "meta": {"profile": [JP_COVERAGE_PROFILE]},
        "extension": extensions,
        "identifier": [{
            "system": INSURANCE_MEMBER_ID_SYSTEM,
            "value": member_id(q.insurer_number, q.symbol, q.number, q.branch),
            "assigner": {"reference": f"#{_INSURER_ID}", "type": "Organization"},
        }],
        "status": "cancelled" if ended else "active",
        "type": {"coding": [{"system": ACT_CODE_SYSTEM, "code": "PUBLICPOL",
                             "display": "public healthcare"}], "text": "医療保険"},
        "subscriberId": f"{q.symbol}:{q.number}" if q.symbol else q.number,
        "beneficiary": dict(patient),
        "dependent": q.branch,
        "relationship": relationship,
        "period": period,
        "payor": [{"reference": f"#{_INSURER_ID}", "type": "Organization"}],
        "costToBeneficiary": [{
            "type": {"coding": [{"system": COPAY_TYPE_SYSTEM, "code": "copaypct",
                                 "display": "Copay Percentage"}], "text": "一部負担金割合"},
            "valueQuantity": {"value": q.copay_percent, "unit": "%", "system": UCUM_SYSTEM,
                              "code": "%"},
        }],
    }
    if classes:
        coverage["class"] = classes
    return coverage


def _insurer(q: Qualification, insurer: Insurer | None) -> dict[str, Any]:
    name = insurer.name if insurer is not None else q.insurer_name
    kind_type: dict[str, Any] = {"coding": [{"system": ORGANIZATION_TYPE_SYSTEM, "code": "pay",
                                             "display": "Payer"}]}
    if insurer is not None:
        kind_type["text"] = INSURER_KIND_LABELS[InsurerKind(insurer.kind)]
    return {
        "resourceType": "Organization",
        "id": _INSURER_ID,
        "meta": {"profile": [JP_ORGANIZATION_PROFILE]},
        "identifier": [{"system": INSURER_NUMBER_SYSTEM, "value": q.insurer_number}],
        "type": [kind_type],
        "name": name,
    }


def _institution(code: str, name: str) -> dict[str, Any]:
    organization: dict[str, Any] = {
        "resourceType": "Organization",
        "id": _INSTITUTION_ID,
        "meta": {"profile": [JP_ORGANIZATION_PROFILE]},
    }
    if code:
        organization["identifier"] = [{"system": MEDICAL_INSTITUTION_CODE_SYSTEM,
                                       "value": code}]
    organization["type"] = [{"coding": [{"system": ORGANIZATION_TYPE_SYSTEM, "code": "prov",
                                         "display": "Healthcare Provider"}]}]
    organization["name"] = name
    return organization


# The order FHIR's JSON examples use (resourceType first, the elements in definition order):
# only cosmetic, but a reader of the wire format expects it.
_ORDER = ("resourceType", "id", "meta", "contained", "extension", "identifier", "status",
          "purpose", "patient", "servicedDate", "created", "requestor", "request", "outcome",
          "disposition", "insurer", "insurance", "error")


def _ordered(response: dict[str, Any]) -> dict[str, Any]:
    ordered = {key: response[key] for key in _ORDER if key in response}
    ordered.update((key, value) for key, value in response.items() if key not in ordered)
    return ordered
