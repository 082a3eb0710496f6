"""オンライン資格確認's JSON APIs for machines: medical institutions' terminals and insurers.

**Terminals** (``/api/v1/insurance/terminal``, public listener, like the bank route): a
registered terminal (資格確認端末, its own certificate registered with ``mynumber insurance
terminal register``) signs every request with its key over
``network.interfaces.signed_request_bytes(kind, fields)``: the canonical JSON (sorted keys, no
spaces, UTF-8) of the body's fields as sent, but ``signature`` (values as the JSON carries
them; ``requested_at`` written as UTC ISO, ``2025-06-02T03:00:00+00:00``), plus the path's
parameters (``visit_id``, ``item``) and ``"type": "mynumber.<kind>.v1"``. The eligibility
service checks it (``EligibilityService.authenticate_terminal``): the terminal known and
active, ``requested_at`` at most 5 minutes off, the signature by the registered certificate's
key (the certificate still valid), the nonce spent once per terminal in the insurance
database. Then:

- ``POST /challenges``: a one-use challenge for the patient's card (5 minutes);
- ``POST /eligibility/card``: the card (its user-authentication certificate, verified for
  chain and revocation in every method) with the 4-digit PIN (``card_pin``: the card's
  signature over the challenge), a face match (``face``: the live photo matched with the
  card's photo by the context's matcher) or the staff's visual check (``visual``: ``staff``
  names who looked); the answer carries 資格有効性 and the current qualification, and opens a
  visit;
- ``POST /eligibility/document``: a 資格確認書's number and the holder's birth date (a
  record whose link is held, REVIEW or BLOCKED, answers ``invalid`` with no qualification);
- ``POST /activation``: 初回登録 at the card reader: the card signs a challenge of this
  terminal after its PIN, and its holder's card is registered for insurance use (once: 409
  ``insurance_already_activated``). The answer says only that it is registered and when; the
  reception then checks eligibility as usual (a new challenge: the card signs again);
- ``POST /visits/{visit_id}/consents``: the patient's choices at this visit, item by item (a
  refusal is recorded too);
- ``POST /visits/{visit_id}/records/{item}``: 薬剤情報 / 特定健診情報 / 診療・手術情報, only with
  this visit's unexpired consent (else 403 ``insurance_consent_required``, recorded). A POST:
  it is signed, and every view is recorded.

The eligibility answers are served as HL7 FHIR R4 too: ``Accept: application/fhir+json`` gives
a ``CoverageEligibilityResponse`` (with its ``Coverage``, JP Core identifiers for 記号・番号・
枝番) with that media type. Errors stay RFC 9457 problems either way.

**Insurers** (``/api/v1/insurance/insurers/{insurer}``, infrastructure listener, like
the agencies' routes of 公金受取口座): every request is signed with the insurer's agency key
registered in the network directory and checked by the agencies' rules
(``agencies.api.verify_agency_request``: fresh within 5 minutes, ``bad_signature``, the nonce
spent once in the insurance database's ``request_nonces`` with the issuer
``agency:<agency id>``); the path's ``insurer_number`` (and ids) are signed as fields too, and
the agency must be the insurer's own (403 ``insurance_agency_not_insurer``). Every route is a
signed POST (reads too: a body carries the signature). ``persons/find`` is the only route
that takes an insured number as a look-up key (告知要求制限: the insurer's own look-up). A
link by number carries the 個人番号 in the body only (never in a URL); it is used for that call
and neither stored, logged nor answered.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
from collections.abc import Callable
from typing import Annotated, Any, ClassVar, Literal, Self

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse, Response
from pydantic import AwareDatetime, BaseModel, Field, PrivateAttr, model_validator

from mynumber.agencies import schemas as agency_schemas
from mynumber.agencies.api import verify_agency_request
from mynumber.errors import Forbidden
from mynumber.insurance import models as insurance_models
from mynumber.insurance.interfaces import (
    CONTEXT,
    ClinicalRecord,
    ConfirmationMethod,
    Consent,
    ConsentItem,
    CoverageDocument,
    CoverageDocumentKind,
    EligibilityResult,
    InsuredKind,
    Insurer,
    InvalidInsuranceInput,
    LimitCategory,
    LinkResult,
    LinkRoute,
    LinkState,
    LossReason,
    NewInsuredPerson,
    PersonItems,
    Qualification,
    RecheckReport,
    ReviewItem,
    ReviewReason,
    ReviewResolution,
    Terminal,
    Validity,
)
from mynumber.kernel.nonces import NonceStore
from mynumber.kernel.schemas import MAX_ID, Strict, _has_control_characters
from mynumber.network.interfaces import AgencyStatus, AgencySuspended, NetworkService

TERMINAL_PREFIX = "/api/v1/insurance/terminal"
INSURER_PREFIX = "/api/v1/insurance/insurers"
FHIR_MEDIA_TYPE = "application/fhir+json"

#: The type tags (``mynumber.<kind>.v1``) of the terminals' signed requests.
CHALLENGE_KIND = "insurance-terminal-challenge"
CARD_KIND = "insurance-eligibility-card"
DOCUMENT_KIND = "insurance-eligibility-document"
ACTIVATION_KIND = "insurance-terminal-activation"
CONSENTS_KIND = "insurance-visit-consents"
RECORDS_KIND = "insurance-visit-records"
#: ... and of the insurers'.
ENROL_KIND = "insurance-insurer-enrol"
FIND_KIND = "insurance-insurer-find"
PERSONS_KIND = "insurance-insurer-persons"
LINK_KIND = "insurance-insurer-link"
LOSE_KIND = "insurance-insurer-lose"
REVIEWS_KIND = "insurance-insurer-reviews"
RESOLVE_KIND = "insurance-insurer-resolve-review"
RECHECK_KIND = "insurance-insurer-recheck"
ISSUE_KIND = "insurance-insurer-issue-documents"

PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
PEM = r"^[\x09\x0a\x0d\x20-\x7e]*$"
B64 = r"^[A-Za-z0-9+/]*={0,2}$"
NONCE = r"^[A-Za-z0-9_-]{16,64}$"
TERMINAL_ID = r"^[A-Za-z0-9_-]{1,32}$"
VISIT_ID = r"^[A-Za-z0-9_-]{1,32}$"
CHALLENGE_ID = r"^[A-Za-z0-9_-]{1,64}$"
INSURER_NUMBER = r"^[0-9]{6}([0-9]{2})?$"
#: A photo, base64: at most about 450 KiB each (the whole body is limited to 1 MiB).
PHOTO_MAX = 600_000
Responses = dict[int | str, dict[str, Any]]


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": PROBLEM}


def _b64(value: str, field: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInsuranceInput(f"{field}: not base64", field=field) from None


class NotInsurersAgency(Forbidden):
    code = "insurance_agency_not_insurer"
    title = "The agency is not this insurer's"


class AgencyKeyNotRegistered(Forbidden):
    code = "insurance_agency_key_not_registered"
    title = "No signing key is registered for this agency"


def _container(request: Request) -> Any:
    return request.app.state.container


Container = Annotated[Any, Depends(_container)]


class StrictIn(Strict):
    """:class:`~mynumber.kernel.schemas.Strict` (unknown fields and control characters
    refused), but the fields named in :attr:`MULTILINE` may hold line breaks and tabs: a PEM
    certificate is lines of text (its own pattern allows nothing else)."""

    MULTILINE: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="after")
    def _no_control_characters(self) -> Self:
        for name in type(self).model_fields:
            value = getattr(self, name)
            if name in self.MULTILINE and isinstance(value, str):
                value = value.replace("\r", "").replace("\n", "").replace("\t", "")
            if _has_control_characters(value):
                raise ValueError(f"{name} contains control characters")
        return self


# --- shared answers ----------------------------------------------------------------------------


class CoverageOut(BaseModel):
    """A qualification as the reception (and the resident) sees it."""

    insurer_number: str = Field(description="保険者番号")
    insurer_name: str = Field(description="保険者名")
    symbol: str = Field(description="記号")
    number: str = Field(description="番号")
    branch: str = Field(description="枝番 (2 digits)")
    insured_kind: InsuredKind = Field(description="本人 (insured) / 家族 (dependent)")
    acquired_on: dt.date = Field(description="資格取得日 (the first day covered)")
    lost_on: dt.date | None = Field(description="資格喪失日 (the first day not covered)")
    loss_reason: LossReason | None = Field(description="喪失事由")
    copay_percent: int = Field(description="一部負担金割合 (10, 20 or 30)")
    elderly_recipient: bool = Field(description="高齢受給者")
    limit_category: LimitCategory | None = Field(description="限度額適用区分")


class QualificationOut(CoverageOut):
    """An insured person's record as the insurer sees it."""

    id: int = Field(description="the record's id (not the insured number)")
    link_state: LinkState = Field(description="紐付け: unlinked, review, linked, blocked")


def coverage_out(q: Qualification) -> CoverageOut:
    return CoverageOut(**{f: getattr(q, f) for f in CoverageOut.model_fields})


def qualification_out(q: Qualification) -> QualificationOut:
    return QualificationOut(**{f: getattr(q, f) for f in QualificationOut.model_fields})


class DocumentOut(BaseModel):
    id: int
    kind: CoverageDocumentKind = Field(description="confirmation_certificate (資格確認書) or "
                                           "qualification_notice (資格情報のお知らせ)")
    qualification_id: int
    document_number: str
    issued_on: dt.date
    valid_until: dt.date
    ended_at: dt.datetime | None = Field(description="superseded, or the qualification ended")


def document_out(d: CoverageDocument) -> DocumentOut:
    return DocumentOut(**dataclasses.asdict(d))


# --- terminals ---------------------------------------------------------------------------------


class TerminalSignedIn(StrictIn):
    """A terminal's signed request (see the module docstring for the bytes signed)."""

    terminal_id: str = Field(pattern=TERMINAL_ID, description="the terminal (registered)")
    requested_at: AwareDatetime = Field(
        description="RFC 3339 with an offset; refused when more than 5 minutes off")
    nonce: str = Field(pattern=NONCE, description="random, used once (16-64 of A-Za-z0-9_-)")
    signature: str = Field(min_length=4, max_length=1400, pattern=B64,
                           description="the terminal's signature with its registered "
                                       "certificate's key, base64")
    _path: dict[str, str] = PrivateAttr(default_factory=dict)

    def signed_fields(self) -> dict[str, object]:
        """The fields as sent (a default left out is not signed), the path's parameters,
        ``requested_at`` as a datetime (``signed_request_bytes`` writes it as UTC ISO)."""
        fields: dict[str, object] = self.model_dump(mode="json", exclude={"signature"},
                                                    exclude_unset=True)
        fields["requested_at"] = self.requested_at
        fields.update(self._path)
        return fields


def terminal_of(container: Any, body: TerminalSignedIn, kind: str, **path: str) -> Terminal:
    """The terminal that signed ``body`` (its path parameters ``path`` signed with it)."""
    body._path = dict(path)
    terminal: Terminal = container.eligibility.authenticate_terminal(
        body.terminal_id, kind, body.signed_fields(), _b64(body.signature, "signature"),
        body.nonce, body.requested_at)
    return terminal


class ChallengeIn(TerminalSignedIn):
    """Type ``mynumber.insurance-terminal-challenge.v1``."""


class ChallengeOut(BaseModel):
    challenge_id: str
    challenge: str = Field(description="random bytes, base64: the card signs them after its "
                                       "PIN (card_pin)")
    expires_at: dt.datetime


class CardEligibilityIn(TerminalSignedIn):
    """The patient's card at the reception (type ``mynumber.insurance-eligibility-card.v1``)."""

    MULTILINE = frozenset({"certificate"})

    challenge_id: str = Field(pattern=CHALLENGE_ID, description="from POST /challenges")
    certificate: str = Field(min_length=1, max_length=16384, pattern=PEM,
                             description="the card's user-authentication certificate (PEM)")
    method: Literal["card_pin", "face", "visual"] = Field(
        description="card_pin: the card signed the challenge after its 4-digit PIN; face: "
                    "the live photo is matched with the card's photo; visual: the staff "
                    "looked (目視確認)")
    card_signature: str | None = Field(
        default=None, min_length=4, max_length=1400, pattern=B64,
        description="card_pin: RSASSA-PKCS1-v1_5/SHA-256 over the challenge, base64")
    live_photo: str | None = Field(default=None, min_length=4, max_length=PHOTO_MAX,
                                   pattern=B64, description="face: the photo taken now, base64")
    card_photo: str | None = Field(default=None, min_length=4, max_length=PHOTO_MAX,
                                   pattern=B64,
                                   description="face: the photo read from the card, base64")
    staff: str | None = Field(default=None, min_length=1, max_length=64, pattern=PRINTABLE,
                              description="visual: who looked")


class DocumentEligibilityIn(TerminalSignedIn):
    """A 資格確認書 (type ``mynumber.insurance-eligibility-document.v1``)."""

    document_number: str = Field(pattern=r"^[A-Za-z0-9-]{1,16}$",
                                 description="the number printed on the 資格確認書")
    birth_date: dt.date = Field(description="the holder's birth date (as printed)")


class TerminalActivationIn(TerminalSignedIn):
    """初回登録 at the card reader (type ``mynumber.insurance-terminal-activation.v1``)."""

    MULTILINE = frozenset({"certificate"})

    challenge_id: str = Field(pattern=CHALLENGE_ID, description="from POST /challenges")
    certificate: str = Field(min_length=1, max_length=16384, pattern=PEM,
                             description="the card's user-authentication certificate (PEM)")
    card_signature: str = Field(
        min_length=4, max_length=1400, pattern=B64,
        description="the card's signature (RSASSA-PKCS1-v1_5/SHA-256) over the challenge, "
                    "after its 4-digit PIN, base64")


class TerminalActivationOut(BaseModel):
    """初回登録 done: nothing of the person beyond that (the eligibility check follows)."""

    activated: bool = Field(description="true: the card can now be used as the health-"
                                        "insurance card")
    activated_at: dt.datetime


class EligibilityOut(BaseModel):
    """The answer at the reception."""

    visit_id: str = Field(description="this visit: consents and views name it")
    checked_at: dt.datetime
    method: ConfirmationMethod
    validity: Validity = Field(description="資格有効性: valid (有効), invalid (無効), "
                                           "invalid_new_qualification (無効・新資格あり), "
                                           "not_found (該当なし), multiple (複数該当)")
    qualification: CoverageOut | None = Field(description="the current qualification")
    consentable: list[ConsentItem] = Field(description="what the patient may be asked to "
                                                       "consent to at this visit")


def eligibility_out(result: EligibilityResult) -> EligibilityOut:
    return EligibilityOut(
        visit_id=result.visit_id, checked_at=result.checked_at, method=result.method,
        validity=result.validity,
        qualification=None if result.qualification is None
        else coverage_out(result.qualification),
        consentable=list(result.consentable))


class ConsentsIn(TerminalSignedIn):
    """The patient's choices at this visit (type ``mynumber.insurance-visit-consents.v1``)."""

    choices: dict[ConsentItem, bool] = Field(
        min_length=1, max_length=len(ConsentItem),
        description="item -> true (同意する) / false (同意しない)")


class ConsentOut(BaseModel):
    visit_id: str
    item: ConsentItem
    granted: bool
    given_at: dt.datetime
    expires_at: dt.datetime | None = Field(description="when the consent ends (the server "
                                                       "enforces it); null for a refusal")


class RecordsIn(TerminalSignedIn):
    """Type ``mynumber.insurance-visit-records.v1``; the path's ``visit_id`` and ``item`` are
    signed as fields."""


class ClinicalRecordOut(BaseModel):
    item: ConsentItem
    on: dt.date
    label: str
    value: str
    source: str


def _consent_out(c: Consent) -> ConsentOut:
    return ConsentOut(**dataclasses.asdict(c))


def _wants_fhir(request: Request) -> bool:
    return FHIR_MEDIA_TYPE in request.headers.get("accept", "").lower()


def _answer(request: Request, container: Any, terminal: Terminal,
            result: EligibilityResult) -> EligibilityOut | Response:
    """The JSON answer, or the FHIR resource when the terminal asked for it."""
    if not _wants_fhir(request):
        return eligibility_out(result)
    from mynumber.insurance.fhir import coverage_eligibility_response

    insurer: Insurer | None = None
    if result.qualification is not None:
        insurer = container.insurance.insurer(result.qualification.insurer_number)
    resource = coverage_eligibility_response(
        result, insurer, institution_code=terminal.institution_code,
        institution_name=terminal.institution_name)
    return JSONResponse(resource, media_type=FHIR_MEDIA_TYPE)


terminal_router = APIRouter(prefix=TERMINAL_PREFIX, tags=["insurance-terminal"])

R_TERMINAL: Responses = {
    401: _problem("`insurance_terminal_unknown` (unknown or suspended terminal); "
                  "`insurance_terminal_refused` (`reason`: stale, bad_signature, replayed, "
                  "certificate_expired ...)"),
    422: _problem("Invalid input; `field` names it"),
}
R_CARD: Responses = {
    401: _problem("`insurance_terminal_unknown`; `insurance_terminal_refused` (`reason`); "
                  "`insurance_challenge_refused` (`reason`: unknown, expired, used, "
                  "other_terminal); `insurance_card_refused` (`reason`: revoked, expired, "
                  "bad_signature, untrusted_chain, face_mismatch ...)"),
    403: _problem("`insurance_not_activated`: the card is not registered for insurance use "
                  "(初回登録); `insurance_face_match_unavailable`: no face matcher here "
                  "(production without a certified one): use the PIN or a visual check"),
    422: _problem("Invalid input; `field` names it"),
}
FHIR_200: Responses = {200: {
    "description": "The answer; with `Accept: application/fhir+json`, an HL7 FHIR R4 "
                   "CoverageEligibilityResponse (with a contained Coverage)",
    "content": {FHIR_MEDIA_TYPE: {"schema": {
        "type": "object", "description": "FHIR R4 CoverageEligibilityResponse"}}}}}


@terminal_router.post("/challenges", operation_id="insurance_terminal_challenge",
                      response_model=ChallengeOut, responses=R_TERMINAL)
def terminal_challenge(body: ChallengeIn, container: Container) -> ChallengeOut:
    """A one-use challenge (5 minutes) for the patient's card, this terminal's only."""
    terminal = terminal_of(container, body, CHALLENGE_KIND)
    challenge = container.eligibility.challenge(terminal)
    return ChallengeOut(challenge_id=challenge.challenge_id,
                        challenge=base64.b64encode(challenge.challenge).decode(),
                        expires_at=challenge.expires_at)


def _card_inputs(body: CardEligibilityIn) -> dict[str, Any]:
    """The method's own inputs, each required by its method (a 422 naming the field)."""
    method = ConfirmationMethod(body.method)
    signature = live = card = None
    if method is ConfirmationMethod.CARD_PIN:
        if body.card_signature is None:
            raise InvalidInsuranceInput("card_signature: required for card_pin",
                                        field="card_signature")
        signature = _b64(body.card_signature, "card_signature")
    elif method is ConfirmationMethod.FACE:
        if body.live_photo is None or body.card_photo is None:
            field = "live_photo" if body.live_photo is None else "card_photo"
            raise InvalidInsuranceInput(f"{field}: required for face", field=field)
        live = _b64(body.live_photo, "live_photo")
        card = _b64(body.card_photo, "card_photo")
    elif body.staff is None:
        raise InvalidInsuranceInput("staff: required for visual", field="staff")
    return {"method": method, "signature": signature, "live_photo": live, "card_photo": card,
            "staff": body.staff if method is ConfirmationMethod.VISUAL else None}


@terminal_router.post("/eligibility/card", operation_id="insurance_check_card",
                      response_model=EligibilityOut, responses={**R_CARD, **FHIR_200})
def check_card(body: CardEligibilityIn, request: Request,
               container: Container) -> EligibilityOut | Response:
    """資格確認 with the card: card + PIN, face, or the staff's visual check. The card's
    certificate is verified (chain, revocation) in every method; the challenge is spent."""
    terminal = terminal_of(container, body, CARD_KIND)
    inputs = _card_inputs(body)
    result = container.eligibility.check_card(terminal, body.challenge_id, body.certificate,
                                              **inputs)
    return _answer(request, container, terminal, result)


@terminal_router.post("/eligibility/document", operation_id="insurance_check_document",
                      response_model=EligibilityOut,
                      responses={**R_TERMINAL, **FHIR_200,
                                 404: _problem("`insurance_document_not_found`: no current "
                                               "資格確認書 with this number and birth date")})
def check_document(body: DocumentEligibilityIn, request: Request,
                   container: Container) -> EligibilityOut | Response:
    """資格確認 with a 資格確認書 (no card)."""
    terminal = terminal_of(container, body, DOCUMENT_KIND)
    result = container.eligibility.check_document(terminal, body.document_number,
                                                  body.birth_date)
    return _answer(request, container, terminal, result)


@terminal_router.post("/activation", operation_id="insurance_terminal_activation",
                      response_model=TerminalActivationOut,
                      responses={**R_TERMINAL,
                                 401: _problem("`insurance_terminal_unknown`; "
                                               "`insurance_terminal_refused` (`reason`); "
                                               "`insurance_challenge_refused` (`reason`); "
                                               "`insurance_card_refused` (`reason`: revoked, "
                                               "expired, bad_signature, untrusted_chain ...)"),
                                 409: _problem("`insurance_already_activated`: the card is "
                                               "registered already")})
def terminal_activation(body: TerminalActivationIn,
                        container: Container) -> TerminalActivationOut:
    """初回登録 (利用登録) at the card reader: the card signed this terminal's challenge after
    its PIN; its holder's card is registered for use as the health-insurance card, once.
    The patient's やりとり履歴 shows it with this institution."""
    terminal = terminal_of(container, body, ACTIVATION_KIND)
    status = container.eligibility.activate(
        body.challenge_id, body.certificate, _b64(body.card_signature, "card_signature"),
        terminal=terminal)
    if status.activated_at is None:  # pragma: no cover - activate() ties it or raises
        raise AssertionError("activation without a time")
    return TerminalActivationOut(activated=status.activated, activated_at=status.activated_at)


VisitId = Annotated[str, Path(pattern=VISIT_ID, description="from the eligibility answer")]


@terminal_router.post("/visits/{visit_id}/consents", operation_id="insurance_visit_consents",
                      response_model=list[ConsentOut],
                      responses={**R_TERMINAL,
                                 404: _problem("`insurance_visit_not_found`: no such visit "
                                               "at this institution")})
def visit_consents(visit_id: VisitId, body: ConsentsIn,
                   container: Container) -> list[ConsentOut]:
    """The patient's consent at this visit, item by item; a refusal is recorded too. A
    consent lasts 24 hours (the server ends it)."""
    terminal = terminal_of(container, body, CONSENTS_KIND, visit_id=visit_id)
    consents = container.eligibility.consent(terminal, visit_id, dict(body.choices))
    return [_consent_out(c) for c in consents]


@terminal_router.post("/visits/{visit_id}/records/{item}", operation_id="insurance_visit_records",
                      response_model=list[ClinicalRecordOut],
                      responses={**R_TERMINAL,
                                 403: _problem("`insurance_consent_required` (`reason`: none, "
                                               "refused, expired): no consent for this item "
                                               "at this visit; the refusal is recorded"),
                                 404: _problem("`insurance_visit_not_found`")})
def visit_records(visit_id: VisitId, item: ConsentItem, body: RecordsIn,
                  container: Container) -> list[ClinicalRecordOut]:
    """薬剤情報 (drugs), 特定健診情報 (checkups) or 診療・手術情報 (treatments) of the patient,
    with this visit's unexpired consent only; every view is recorded (the patient sees it)."""
    terminal = terminal_of(container, body, RECORDS_KIND, visit_id=visit_id, item=item.value)
    records: list[ClinicalRecord] = container.eligibility.records(terminal, visit_id, item)
    return [ClinicalRecordOut(**dataclasses.asdict(r)) for r in records]


# --- insurers ----------------------------------------------------------------------------------


class InsurerSignedIn(agency_schemas.SignedIn, StrictIn):
    """An insurer's request, signed with its agency's key (``agency_id``: the insurer's
    agency in the network directory)."""

    _path: dict[str, object] = PrivateAttr(default_factory=dict)

    def signed_fields(self) -> dict[str, object]:
        fields: dict[str, object] = self.model_dump(mode="json", exclude={"signature"},
                                                    exclude_unset=True)
        fields["requested_at"] = self.requested_at
        fields.update(self._path)
        return fields


def _registered_key(network: NetworkService) -> Callable[[str], bytes]:
    """The agency's public signing key as the network directory has it (raw Ed25519)."""
    def key(agency_id: str) -> bytes:
        record = network.agency(agency_id)  # UnknownAgency (404) for an unknown id
        if record.status is not AgencyStatus.ACTIVE:
            raise AgencySuspended("the agency is suspended in the network directory",
                                  field="agency_id")
        if record.signing_key is None:
            raise AgencyKeyNotRegistered(
                "no signing key is registered for the agency in the network directory",
                field="agency_id")
        return record.signing_key
    return key


def insurer_of(container: Any, body: InsurerSignedIn, kind: str, insurer_number: str,
               **path: object) -> Insurer:
    """The insurer, once the request is proven to be its agency's own (the key in the network
    directory) and new (the nonce spent in the insurance database), the path signed with it."""
    body._path = {"insurer_number": insurer_number, **path}
    nonces = NonceStore(container.databases, CONTEXT, insurance_models.RequestNonce)
    verify_agency_request(body, kind, _registered_key(container.network),
                          lambda agency, nonce: nonces.claim(f"agency:{agency}", nonce, kind))
    insurer: Insurer = container.insurance.insurer(insurer_number)
    if insurer.agency_id != body.agency_id:
        raise NotInsurersAgency("the request's agency is not this insurer's agency",
                                field="agency_id")
    return insurer


def _actor(insurer: Insurer) -> str:
    return f"insurer:{insurer.number}:api"


class PersonItemsIn(StrictIn):
    """The four basic items as the insurer's record holds them (empty: missing)."""

    name: str = Field(default="", max_length=100, pattern=PRINTABLE, description="氏名 (kanji)")
    name_kana: str = Field(default="", max_length=100, pattern=PRINTABLE,
                           description="氏名 (カナ)")
    birth_date: str = Field(default="", pattern=r"^([0-9]{4}-[0-9]{2}-[0-9]{2})?$",
                            description="生年月日, ISO (YYYY-MM-DD)")
    sex: Literal["", "male", "female"] = Field(default="", description="性別")
    address: str = Field(default="", max_length=300, pattern=PRINTABLE, description="住所")

    def items(self) -> PersonItems:
        return PersonItems(self.name, self.name_kana, self.birth_date, self.sex, self.address)


class EnrolIn(InsurerSignedIn):
    """資格取得届 (type ``mynumber.insurance-insurer-enrol.v1``): the record, unlinked."""

    symbol: str = Field(default="", max_length=20, pattern=PRINTABLE, description="記号")
    number: str = Field(min_length=1, max_length=20, pattern=PRINTABLE, description="番号")
    branch: str = Field(pattern=r"^[0-9]{2}$", description="枝番 (2 digits)")
    insured_kind: InsuredKind = Field(description="本人 (insured) / 家族 (dependent)")
    acquired_on: dt.date = Field(description="資格取得日")
    copay_percent: Literal[10, 20, 30] = Field(description="一部負担金割合")
    elderly_recipient: bool = False
    limit_category: LimitCategory | None = None
    items: PersonItemsIn

    def person(self) -> NewInsuredPerson:
        return NewInsuredPerson(
            symbol=self.symbol, number=self.number, branch=self.branch,
            insured_kind=self.insured_kind, acquired_on=self.acquired_on,
            copay_percent=self.copay_percent, items=self.items.items(),
            elderly_recipient=self.elderly_recipient, limit_category=self.limit_category)


class FindIn(InsurerSignedIn):
    """The insurer's own look-up by insured number (type
    ``mynumber.insurance-insurer-find.v1``): the only route that takes one."""

    symbol: str = Field(default="", max_length=20, pattern=PRINTABLE, description="記号")
    number: str = Field(min_length=1, max_length=20, pattern=PRINTABLE, description="番号")
    branch: str = Field(pattern=r"^[0-9]{2}$", description="枝番")


class PersonsIn(InsurerSignedIn):
    """The insurer's records, by link state (type ``mynumber.insurance-insurer-persons.v1``)."""

    state: LinkState | None = None
    limit: int = Field(default=100, ge=1, le=1000)
    offset: int = Field(default=0, ge=0, le=MAX_ID)


class LinkIn(InsurerSignedIn):
    """紐付け (type ``mynumber.insurance-insurer-link.v1``): ``search`` (住基ネット's search on
    all four items of the record) or ``number`` (the 個人番号 the insured person gave, checked
    against the four items)."""

    route: LinkRoute
    individual_number: str | None = Field(
        default=None, pattern=r"^[0-9]{12}$",
        description="number only: the 個人番号 the insured person gave (used for this call "
                    "only: never stored, logged or answered)")


class LinkOut(BaseModel):
    qualification_id: int
    state: LinkState
    route: LinkRoute
    reason: ReviewReason | None = Field(description="why no link was made (the review item's "
                                                    "reason)")
    review_id: int | None
    replaced_qualification_id: int | None = Field(
        description="the previous insurer's qualification this link closed (a job change)")


class LoseIn(InsurerSignedIn):
    """資格喪失 (type ``mynumber.insurance-insurer-lose.v1``)."""

    lost_on: dt.date = Field(description="資格喪失日: the first day not covered")
    reason: LossReason


class ReviewsIn(InsurerSignedIn):
    """The review queue (type ``mynumber.insurance-insurer-reviews.v1``)."""

    open_only: bool = True


class ReviewOut(BaseModel):
    id: int
    qualification_id: int
    insurer_number: str
    reason: ReviewReason
    differing: list[str] = Field(description="which of the four items differed")
    created_at: dt.datetime
    resolved_at: dt.datetime | None
    resolution: ReviewResolution | None


def _review_out(r: ReviewItem) -> ReviewOut:
    return ReviewOut(id=r.id, qualification_id=r.qualification_id,
                     insurer_number=r.insurer_number, reason=r.reason,
                     differing=list(r.differing), created_at=r.created_at,
                     resolved_at=r.resolved_at, resolution=r.resolution)


class ResolveIn(InsurerSignedIn):
    """Resolve a review item (type ``mynumber.insurance-insurer-resolve-review.v1``):
    ``corrected`` (with the corrected four items: linked again by a four-item search, never
    on a mismatch) or ``dismissed`` (stays unlinked)."""

    resolution: ReviewResolution
    corrected: PersonItemsIn | None = None


class RecheckIn(InsurerSignedIn):
    """Compare every linked record of this insurer with 住基ネット (type
    ``mynumber.insurance-insurer-recheck.v1``); a mismatch is blocked."""

    batch: int = Field(default=1000, ge=1, le=10_000)


class RecheckOut(BaseModel):
    checked: int
    still_matching: int
    blocked: int
    blocked_ids: list[int]


class IssueIn(InsurerSignedIn):
    """資格確認書 / 資格情報のお知らせ without application (type
    ``mynumber.insurance-insurer-issue-documents.v1``)."""

    years: int = Field(default=5, ge=1, le=5, description="validity of a 資格確認書 (at most "
                                                          "5 years)")


class IssueOut(BaseModel):
    confirmation_certificate: int = Field(description="資格確認書 issued")
    qualification_notice: int = Field(description="資格情報のお知らせ issued")


insurer_router = APIRouter(prefix=INSURER_PREFIX, tags=["insurance-insurer"])

# The placeholder is {insurer}: no path of this API ends in "number}" (tests/registry/test_api.py
# keeps any number out of paths by that rule; a 保険者番号 is not a 個人番号, but one rule is kept).
InsurerNumber = Annotated[str, Path(alias="insurer", pattern=INSURER_NUMBER,
                                    description="保険者番号")]
QualificationId = Annotated[int, Path(ge=1, le=MAX_ID)]
ReviewId = Annotated[int, Path(ge=1, le=MAX_ID)]

R_INSURER: Responses = {
    403: _problem("`bad_signature` (not signed with the agency's key registered in the "
                  "network directory), `stale_request` (requested_at more than 5 minutes "
                  "off), `insurance_agency_key_not_registered`, `agency_suspended`, "
                  "`insurance_agency_not_insurer` (the agency is not this insurer's)"),
    404: _problem("`unknown_agency`; `insurance_insurer_not_found`"),
    409: _problem("`replayed_request`: the nonce was already used"),
    422: _problem("Invalid input; `field` names it (never a 個人番号's value); "
                  "`insurance_invalid_insurer_number`"),
}
R_QUALIFICATION: Responses = {
    **R_INSURER,
    404: _problem("`unknown_agency`; `insurance_insurer_not_found`; "
                  "`insurance_qualification_not_found`"),
}


@insurer_router.post("/{insurer}/persons", operation_id="insurance_enrol",
                     status_code=201, response_model=QualificationOut,
                     responses={**R_INSURER,
                                409: _problem("`replayed_request`; "
                                              "`insurance_already_enrolled`")})
def enrol(insurer_number: InsurerNumber, body: EnrolIn,
          container: Container) -> QualificationOut:
    """資格取得: enrol an insured person (unlinked until linked on all four items)."""
    insurer = insurer_of(container, body, ENROL_KIND, insurer_number)
    done = container.insurance.enrol(insurer.number, body.person(), _actor(insurer))
    return qualification_out(done)


@insurer_router.post("/{insurer}/persons/find", operation_id="insurance_find",
                     response_model=QualificationOut, responses=R_QUALIFICATION)
def find(insurer_number: InsurerNumber, body: FindIn,
         container: Container) -> QualificationOut:
    """The insurer's own look-up by 記号・番号・枝番 (告知要求制限: nobody else's)."""
    insurer = insurer_of(container, body, FIND_KIND, insurer_number)
    return qualification_out(container.insurance.find(insurer.number, body.symbol,
                                                      body.number, body.branch))


@insurer_router.post("/{insurer}/persons/list", operation_id="insurance_persons",
                     response_model=list[QualificationOut], responses=R_INSURER)
def persons(insurer_number: InsurerNumber, body: PersonsIn,
            container: Container) -> list[QualificationOut]:
    """The insurer's records, optionally by link state (e.g. ``unlinked`` to link them)."""
    insurer = insurer_of(container, body, PERSONS_KIND, insurer_number)
    found = container.insurance.qualifications(insurer.number, state=body.state,
                                               limit=body.limit, offset=body.offset)
    return [qualification_out(q) for q in found]


@insurer_router.post("/{insurer}/persons/{qualification_id}/link",
                     operation_id="insurance_link", response_model=LinkOut,
                     responses={**R_QUALIFICATION,
                                403: _problem(R_INSURER[403]["description"]
                                              + "; `insurance_link_blocked`"),
                                409: _problem("`replayed_request`; `insurance_already_linked`"),
                                422: _problem("Invalid input (`field`, never the number's "
                                              "value); `insurance_four_items_required`: the "
                                              "record lacks one of the four items (kana name "
                                              "+ birth date + sex alone never link)")})
def link(insurer_number: InsurerNumber, qualification_id: QualificationId, body: LinkIn,
         container: Container) -> LinkOut:
    """Link the record to the resident on all four items: a 住基ネット search, or the number
    the insured person gave checked against them. A near-miss opens a review item, never a
    link (``state`` review, ``reason``)."""
    insurer = insurer_of(container, body, LINK_KIND, insurer_number,
                         qualification_id=qualification_id)
    actor = _actor(insurer)
    result: LinkResult
    if body.route is LinkRoute.SEARCH:
        if body.individual_number is not None:
            raise InvalidInsuranceInput("individual_number: only with the route number",
                                        field="individual_number")
        result = container.insurance.link_by_search(insurer.number, qualification_id, actor)
    else:
        if body.individual_number is None:
            raise InvalidInsuranceInput("individual_number: required with the route number",
                                        field="individual_number")
        result = container.insurance.link_by_number(insurer.number, qualification_id,
                                                    body.individual_number, actor)
    return LinkOut(**dataclasses.asdict(result))


@insurer_router.post("/{insurer}/persons/{qualification_id}/loss",
                     operation_id="insurance_lose", response_model=QualificationOut,
                     responses=R_QUALIFICATION)
def lose(insurer_number: InsurerNumber, qualification_id: QualificationId, body: LoseIn,
         container: Container) -> QualificationOut:
    """資格喪失: the qualification ends the day before ``lost_on``."""
    insurer = insurer_of(container, body, LOSE_KIND, insurer_number,
                         qualification_id=qualification_id)
    done = container.insurance.lose(insurer.number, qualification_id, body.lost_on,
                                    body.reason, _actor(insurer))
    return qualification_out(done)


@insurer_router.post("/{insurer}/reviews/list", operation_id="insurance_reviews",
                     response_model=list[ReviewOut], responses=R_INSURER)
def reviews(insurer_number: InsurerNumber, body: ReviewsIn,
            container: Container) -> list[ReviewOut]:
    """The review queue: near-misses and re-check mismatches, with their reason codes."""
    insurer = insurer_of(container, body, REVIEWS_KIND, insurer_number)
    return [_review_out(r) for r in container.insurance.reviews(insurer.number,
                                                               open_only=body.open_only)]


@insurer_router.post("/{insurer}/reviews/{review_id}/resolve",
                     operation_id="insurance_resolve_review", response_model=ReviewOut,
                     responses={**R_INSURER,
                                404: _problem("`unknown_agency`; `insurance_insurer_not_found`; "
                                              "`insurance_review_not_found`"),
                                422: _problem("Invalid input; "
                                              "`insurance_four_items_required`")})
def resolve_review(insurer_number: InsurerNumber, review_id: ReviewId, body: ResolveIn,
                   container: Container) -> ReviewOut:
    """Resolve a review item: corrected (the corrected four items, linked again by a
    four-item search: still no link on a mismatch) or dismissed."""
    insurer = insurer_of(container, body, RESOLVE_KIND, insurer_number, review_id=review_id)
    if body.resolution is ReviewResolution.CORRECTED and body.corrected is None:
        raise InvalidInsuranceInput("corrected: the corrected four items are required",
                                    field="corrected")
    done = container.insurance.resolve_review(
        insurer.number, review_id, body.resolution, _actor(insurer),
        corrected=body.corrected.items() if body.corrected is not None else None)
    return _review_out(done)


@insurer_router.post("/{insurer}/recheck", operation_id="insurance_recheck",
                     response_model=RecheckOut, responses=R_INSURER)
def recheck(insurer_number: InsurerNumber, body: RecheckIn,
            container: Container) -> RecheckOut:
    """Compare every linked record of this insurer with 住基ネット; block any mismatch
    (nothing is shown for it until the insurer resolves its review item)."""
    insurer = insurer_of(container, body, RECHECK_KIND, insurer_number)
    report: RecheckReport = container.insurance.recheck(insurer.number, batch=body.batch)
    return RecheckOut(checked=report.checked, still_matching=report.still_matching,
                      blocked=report.blocked, blocked_ids=list(report.blocked_ids))


@insurer_router.post("/{insurer}/documents/issue",
                     operation_id="insurance_issue_documents", response_model=IssueOut,
                     responses=R_INSURER)
def issue_documents(insurer_number: InsurerNumber, body: IssueIn,
                    container: Container) -> IssueOut:
    """Without application: a 資格確認書 for each current insured person without an activated
    card, a 資格情報のお知らせ for each with one (one document at a time)."""
    insurer = insurer_of(container, body, ISSUE_KIND, insurer_number)
    counts = container.insurance.issue_documents(insurer.number, years=body.years)
    return IssueOut(
        confirmation_certificate=int(counts.get(CoverageDocumentKind.CONFIRMATION_CERTIFICATE, 0)),
        qualification_notice=int(counts.get(CoverageDocumentKind.QUALIFICATION_NOTICE, 0)))

