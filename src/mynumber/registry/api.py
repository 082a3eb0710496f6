"""Registry JSON API for municipal staff (thin: parse, call the service, shape the answer)."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request

from mynumber.kernel.schemas import MAX_ID
from mynumber.kernel.signin import CurrentStaff
from mynumber.registry import schemas as s
from mynumber.registry.interfaces import NewResident
from mynumber.registry.services import RegistryServiceImpl


def get_registry(request: Request) -> RegistryServiceImpl:
    registry: RegistryServiceImpl = request.app.state.registry
    return registry


NO_CONTROL = r"^[^\x00-\x1f\x7f]*$"
ResidentId = Annotated[int, Path(ge=1, le=MAX_ID, description="resident id (not a number)")]
LetterId = Annotated[int, Path(ge=1, le=MAX_ID)]
RegistryDep = Annotated[RegistryServiceImpl, Depends(get_registry)]

router = APIRouter(prefix="/api/v1/registry", tags=["registry"])


def _public(record: Any) -> s.ResidentPublic:
    return s.ResidentPublic(**dataclasses.asdict(record))


def _new_resident(body: s.ResidentCreate, municipality_code: str) -> NewResident:
    data = body.model_dump(include=set(s.ResidentCreate.model_fields))
    return NewResident(municipality_code=municipality_code, **data)


@router.get("/municipalities", operation_id="list_municipalities",
            response_model=s.MunicipalityList)
def list_municipalities(request: Request, prefecture: str | None = None) -> s.MunicipalityList:
    rows = request.app.state.municipalities
    items = [s.MunicipalityPublic(**r) for r in rows
             if prefecture is None or r["prefecture"] == prefecture]
    return s.MunicipalityList(items=items)


@router.get("/residents", operation_id="search_residents", response_model=s.ResidentList)
def search_residents(
    staff: CurrentStaff, registry: RegistryDep,
    q: Annotated[str, Query(min_length=1, max_length=80, pattern=NO_CONTROL,
                            description="氏名・フリガナ・住民票コード")],
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> s.ResidentList:
    """Search by kana or kanji name prefix, or by 住民票コード (own municipality only)."""
    return s.ResidentList(items=[_public(r) for r in registry.search(staff, q, limit)])


@router.post("/residents/lookup-by-number", operation_id="lookup_resident_by_number",
             response_model=s.ResidentPublic)
def lookup_by_number(staff: CurrentStaff, registry: RegistryDep,
                     body: s.NumberLookupRequest) -> s.ResidentPublic:
    """Find a resident by 個人番号 (in the body, never in a URL); the read is recorded."""
    return _public(registry.find_by_number(staff, body.individual_number, body.reason))


@router.get("/residents/{resident_id}", operation_id="get_resident",
            response_model=s.ResidentPublic)
def get_resident(
    staff: CurrentStaff, registry: RegistryDep, resident_id: ResidentId,
    reason: Annotated[str, Query(min_length=1, max_length=200, pattern=NO_CONTROL,
                                 description="閲覧理由")],
) -> s.ResidentPublic:
    """Read a record. ``reason`` (閲覧理由) is required and recorded with the reader."""
    return _public(registry.get_resident(staff, resident_id, reason))


@router.get("/residents/{resident_id}/history", operation_id="get_resident_history",
            response_model=s.HistoryPublic)
def get_history(
    staff: CurrentStaff, registry: RegistryDep, resident_id: ResidentId
) -> s.HistoryPublic:
    events = registry.history(staff, resident_id)
    return s.HistoryPublic(items=[s.LifeEventPublic(**dataclasses.asdict(e)) for e in events])


@router.post("/residents/{resident_id}/individual-number/reveal",
             operation_id="reveal_individual_number", response_model=s.NumberReveal)
def reveal_number(staff: CurrentStaff, registry: RegistryDep, resident_id: ResidentId,
                  body: s.ReasonRequest) -> s.NumberReveal:
    return s.NumberReveal(individual_number=registry.reveal_number(staff, resident_id,
                                                                   body.reason))


@router.post("/births", operation_id="register_birth", response_model=s.ResidentPublic,
             status_code=201)
def register_birth(staff: CurrentStaff, registry: RegistryDep,
                   body: s.BirthRequest) -> s.ResidentPublic:
    """出生届: creates the record, its 住民票コード and 個人番号, and the notification letter."""
    record = registry.register_birth(staff, _new_resident(body, staff.municipality_code),
                                     body.birth_date)
    return _public(record)


@router.post("/move-ins", operation_id="register_move_in", response_model=s.ResidentPublic,
             status_code=201)
def register_move_in(staff: CurrentStaff, registry: RegistryDep,
                     body: s.MoveInRequest) -> s.ResidentPublic:
    record = registry.register_move_in(staff, _new_resident(body, staff.municipality_code),
                                       body.occurred_on, body.resident_code)
    return _public(record)


@router.post("/residents/{resident_id}/move-out", operation_id="register_move_out",
             response_model=s.ResidentPublic)
def register_move_out(staff: CurrentStaff, registry: RegistryDep, resident_id: ResidentId,
                      body: s.MoveOutRequest) -> s.ResidentPublic:
    return _public(registry.register_move_out(staff, resident_id,
                                              body.destination_municipality_code,
                                              body.occurred_on))


@router.post("/residents/{resident_id}/name-change", operation_id="change_resident_name",
             response_model=s.ResidentPublic)
def change_name(staff: CurrentStaff, registry: RegistryDep, resident_id: ResidentId,
                body: s.NameChangeRequest) -> s.ResidentPublic:
    return _public(registry.change_name(staff, resident_id, body.family_name, body.given_name,
                                        body.family_name_kana, body.given_name_kana,
                                        body.occurred_on))


@router.post("/residents/{resident_id}/address-change", operation_id="change_resident_address",
             response_model=s.ResidentPublic)
def change_address(staff: CurrentStaff, registry: RegistryDep, resident_id: ResidentId,
                   body: s.AddressChangeRequest) -> s.ResidentPublic:
    return _public(registry.change_address(staff, resident_id, body.address, body.postal_code,
                                           body.occurred_on))


@router.post("/residents/{resident_id}/death", operation_id="register_death",
             response_model=s.ResidentPublic)
def register_death(staff: CurrentStaff, registry: RegistryDep, resident_id: ResidentId,
                   body: s.DeathRequest) -> s.ResidentPublic:
    return _public(registry.register_death(staff, resident_id, body.occurred_on))


@router.post("/residents/{resident_id}/corrections", operation_id="correct_resident",
             response_model=s.ResidentPublic)
def correct(staff: CurrentStaff, registry: RegistryDep, resident_id: ResidentId,
            body: s.CorrectionRequest) -> s.ResidentPublic:
    """職権修正 (supervisor): each corrected field's old and new value go into the history."""
    return _public(registry.correct(staff, resident_id, body.changes, body.reason))


@router.post("/residents/{resident_id}/individual-number/reissue",
             operation_id="reissue_individual_number", response_model=s.ResidentPublic)
def reissue_number(staff: CurrentStaff, registry: RegistryDep, resident_id: ResidentId,
                   body: s.ReasonRequest) -> s.ResidentPublic:
    """個人番号の変更 (番号法 第7条第2項): a leaked number is replaced (supervisor)."""
    return _public(registry.reissue_number(staff, resident_id, body.reason))


@router.get("/residents/{resident_id}/letters", operation_id="list_notification_letters",
            response_model=s.LetterList)
def list_letters(
    staff: CurrentStaff, registry: RegistryDep, resident_id: ResidentId
) -> s.LetterList:
    letters = registry.letters(staff, resident_id)
    return s.LetterList(items=[s.LetterPublic(**dataclasses.asdict(x)) for x in letters])


@router.post("/letters/{letter_id}", operation_id="update_notification_letter",
             response_model=s.LetterPublic)
def update_letter(staff: CurrentStaff, registry: RegistryDep, letter_id: LetterId,
                  body: s.LetterUpdateRequest) -> s.LetterPublic:
    letter = registry.update_letter(staff, letter_id, body.status, body.verification_id)
    return s.LetterPublic(**dataclasses.asdict(letter))


@router.post("/residents/{resident_id}/identity-verifications",
             operation_id="verify_identity", response_model=s.VerificationPublic,
             status_code=201)
def verify_identity(staff: CurrentStaff, registry: RegistryDep, resident_id: ResidentId,
                    body: s.IdentityVerificationRequest) -> s.VerificationPublic:
    """本人確認 (番号法 第16条): number confirmation + identity documents, recorded."""
    check = registry.verify_identity(staff, resident_id, body.purpose, body.individual_number,
                                     body.number_confirmation, body.identity_documents)
    data = dataclasses.asdict(check)
    data.pop("staff_id")
    return s.VerificationPublic(**data)
