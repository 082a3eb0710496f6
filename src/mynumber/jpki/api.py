"""JPKI over HTTP.

Standard protocols (not in the OpenAPI document; see docs/api.md):

* ``GET /jpki/crl/{label}.crl`` — the full CRL of an issuing CA, DER, ``application/pkix-crl``
  (RFC 5280 §4.2.1.13, RFC 2585); a fresh CRL with the next CRL number on every fetch.
  ``/jpki/crl/root.crl`` is the root's ARL (the CA certificates it issued), which the issuing
  CA certificates name as their CRL distribution point.
* ``POST /jpki/ocsp/{label}`` (``application/ocsp-request``) and
  ``GET /jpki/ocsp/{label}/{base64 request}`` — RFC 6960 Appendix A.1. Bytes that are not an
  OCSP request get an OCSP ``malformedRequest`` response with HTTP 200: A.1 defines the
  transport answer as an ``application/ocsp-response`` body, and OCSP clients (OpenSSL, NSS)
  read the responseStatus from it rather than from the HTTP status. Only an unknown responder
  label (no such resource) is an HTTP 404 problem.
* ``GET /jpki/ca/{kind}.pem`` — the chain for ``signing`` or ``auth``: issuing CA, then root.

JSON API (in the OpenAPI document): relying-party administration for staff administrators,
and the 新旧シリアル番号紐付け look-up for relying parties, which authenticate with the API key
they were given at registration (``X-Relying-Party-Key``; only its SHA-256 is stored). The
look-up answers only for holders the party recorded as its users, and recording one takes the
holder's signature over a challenge JPKI gave that party, never a bare serial.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from typing import Annotated
from urllib.parse import unquote

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, Field

from mynumber.auth.interfaces import StaffRole
from mynumber.errors import InvalidInput, NotAuthenticated
from mynumber.jpki.interfaces import CertificateKind, RelyingParty
from mynumber.jpki.services import JpkiServiceImpl
from mynumber.kernel.schemas import MAX_ID
from mynumber.kernel.signin import CurrentStaff
from mynumber.registry.interfaces import RoleRequired

CRL_MEDIA_TYPE = "application/pkix-crl"
OCSP_REQUEST = "application/ocsp-request"
OCSP_RESPONSE = "application/ocsp-response"
PEM_MEDIA_TYPE = "application/pem-certificate-chain"
MAX_OCSP_REQUEST = 16 * 1024

relying_party_key = APIKeyHeader(
    name="X-Relying-Party-Key", auto_error=False,
    description="the API key a relying party received at registration",
)


def get_jpki(request: Request) -> JpkiServiceImpl:
    jpki: JpkiServiceImpl = request.app.state.jpki
    return jpki


JpkiDep = Annotated[JpkiServiceImpl, Depends(get_jpki)]
Label = Annotated[str, Path(pattern=r"^[a-z]{1,20}$",
                           description="issuing CA: sign or auth (root: the ARL, CRLs only)")]

# --- standard protocols -----------------------------------------------------------------------

protocols = APIRouter(tags=["jpki"], include_in_schema=False)


@protocols.get("/jpki/crl/{label}.crl", operation_id="jpki_crl")
def crl(label: Label, jpki: JpkiDep) -> Response:
    return Response(jpki.crl_der(label), media_type=CRL_MEDIA_TYPE,
                    headers={"Cache-Control": "no-cache"})


@protocols.post("/jpki/ocsp/{label}", operation_id="jpki_ocsp_post")
async def ocsp_post(label: Label, request: Request, jpki: JpkiDep) -> Response:
    body = await request.body()
    return _ocsp(jpki, label, body[: MAX_OCSP_REQUEST + 1])


@protocols.get("/jpki/ocsp/{label}/{encoded:path}", operation_id="jpki_ocsp_get")
def ocsp_get(label: Label, encoded: str, jpki: JpkiDep) -> Response:
    # A.1: url-encoding of base64 of the DER request; the path is already %-decoded once,
    # but some clients encode twice.
    text = unquote(encoded)
    try:
        der = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        der = b""
    return _ocsp(jpki, label, der)


def _ocsp(jpki: JpkiServiceImpl, label: str, der: bytes) -> Response:
    if len(der) > MAX_OCSP_REQUEST:
        der = b""  # answered as malformedRequest
    return Response(jpki.ocsp_response(label, der), media_type=OCSP_RESPONSE,
                    headers={"Cache-Control": "no-cache"})


@protocols.get("/jpki/ca/{kind}.pem", operation_id="jpki_ca_chain")
def ca_chain(kind: CertificateKind, jpki: JpkiDep) -> Response:
    return Response(jpki.ca_chain_pem(kind), media_type=PEM_MEDIA_TYPE)


# --- JSON API -----------------------------------------------------------------------------------

router = APIRouter(prefix="/api/v1/jpki", tags=["jpki"])

RelyingPartyId = Annotated[int, Path(ge=1, le=MAX_ID)]
Serial = Annotated[str, Field(pattern=r"^[1-9][0-9]{0,48}$",
                              description="certificate serial, decimal digits")]


class RelyingPartyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200,
                      pattern=r"^[^\x00-\x1f\x7f]*\S[^\x00-\x1f\x7f]*$")
    kinds: list[CertificateKind] = Field(min_length=1, max_length=2)


class RelyingPartyPublic(BaseModel):
    id: int
    name: str
    kinds: list[CertificateKind]
    active: bool
    system: bool = Field(description="registered by the platform itself (the portal's card"
                                     " login); cannot be retired")


class RelyingPartyRegistered(BaseModel):
    relying_party: RelyingPartyPublic
    api_key: str = Field(description="shown once; send it as X-Relying-Party-Key")


class SerialLookup(BaseModel):
    serial: Serial


Base64 = Annotated[str, Field(pattern=r"^[A-Za-z0-9+/]+={0,2}$", max_length=1024,
                               description="base64 (standard alphabet, padded)")]
MAX_CERTIFICATE_PEM = 8192


class UserChallengeIssued(BaseModel):
    challenge: Base64 = Field(description="have the holder sign these bytes (RSASSA-PKCS1-v1_5,"
                                          " SHA-256) with the certificate's key")
    expires_at: dt.datetime


class UserProof(BaseModel):
    """The holder's proof: a challenge from ``POST /user-challenges`` signed by the holder."""

    challenge: Base64
    signature: Base64
    certificate_pem: str = Field(min_length=1, max_length=MAX_CERTIFICATE_PEM,
                                 description="the certificate the holder presented (PEM)")


class CurrentSerial(BaseModel):
    serial: Serial | None = Field(description="the current serial; null when none is good")


def _public(party: RelyingParty) -> RelyingPartyPublic:
    return RelyingPartyPublic(id=party.id, name=party.name, kinds=list(party.kinds),
                              active=party.active, system=party.system)


def _admin(staff: CurrentStaff) -> str:
    if staff.role is not StaffRole.ADMIN:
        raise RoleRequired("relying parties are managed by administrators")
    return staff.actor


AdminActor = Annotated[str, Depends(_admin)]


def current_relying_party(
    key: Annotated[str | None, Depends(relying_party_key)], jpki: JpkiDep,
) -> RelyingParty:
    if not key:
        raise NotAuthenticated("send the relying party's API key as X-Relying-Party-Key")
    return jpki.authenticate_relying_party(key)


CurrentRelyingParty = Annotated[RelyingParty, Depends(current_relying_party)]


@router.post("/relying-parties", operation_id="register_relying_party", status_code=201,
             response_model=RelyingPartyRegistered)
def register_relying_party(body: RelyingPartyCreate, actor: AdminActor,
                           jpki: JpkiDep) -> RelyingPartyRegistered:
    """署名検証者 / 利用者証明検証者の登録 (administrators). The API key is shown only here."""
    created = jpki.register_relying_party_with_key(body.name, tuple(body.kinds), actor)
    return RelyingPartyRegistered(relying_party=_public(created.relying_party),
                                  api_key=created.api_key)


@router.get("/relying-parties/{relying_party_id}", operation_id="get_relying_party",
            response_model=RelyingPartyPublic)
def get_relying_party(relying_party_id: RelyingPartyId, _actor: AdminActor,
                      jpki: JpkiDep) -> RelyingPartyPublic:
    return _public(jpki.find_relying_party(relying_party_id))


@router.post("/relying-parties/{relying_party_id}/retire", operation_id="retire_relying_party",
             status_code=204)
def retire_relying_party(relying_party_id: RelyingPartyId, actor: AdminActor,
                         jpki: JpkiDep) -> None:
    """End a registration: the party's key and look-ups stop working at once. The platform's
    own relying party (``system``, the portal's card login) is refused with a 409
    ``system_relying_party`` problem and left as it was. Undone by ``…/reactivate``."""
    jpki.retire_relying_party(relying_party_id, actor)


@router.post("/relying-parties/{relying_party_id}/reactivate",
             operation_id="reactivate_relying_party", status_code=204)
def reactivate_relying_party(relying_party_id: RelyingPartyId, actor: AdminActor,
                             jpki: JpkiDep) -> None:
    """Undo a retirement: the party's API key and recorded users work again. Idempotent (an
    active party stays active, 204); an unknown id is a 404 ``relying_party_not_found``."""
    jpki.reactivate_relying_party(relying_party_id, actor)


@router.post("/serial-links/lookup", operation_id="lookup_current_serial",
             response_model=CurrentSerial)
def lookup_current_serial(body: SerialLookup, party: CurrentRelyingParty,
                          jpki: JpkiDep) -> CurrentSerial:
    """新旧シリアル番号紐付け: the current serial for an old one, for the caller's own users."""
    current = jpki.current_serial(party.id, int(body.serial))
    return CurrentSerial(serial=None if current is None else str(current))


@router.post("/user-challenges", operation_id="new_user_challenge", status_code=201,
             response_model=UserChallengeIssued)
def new_user_challenge(party: CurrentRelyingParty, jpki: JpkiDep) -> UserChallengeIssued:
    """A challenge, bound to the caller, for its holder to sign (see ``POST /users``)."""
    issued = jpki.user_challenge(party.id)
    return UserChallengeIssued(challenge=base64.b64encode(issued.challenge).decode(),
                               expires_at=issued.expires_at)


@router.post("/users", operation_id="record_relying_party_user", status_code=204)
def record_user(body: UserProof, party: CurrentRelyingParty, jpki: JpkiDep) -> None:
    """Record the holder as one of the caller's users, on the holder's signature over a
    challenge the caller got from ``POST /user-challenges``. A serial alone is not accepted:
    it would let a party claim anyone as its user."""
    jpki.record_user_by_challenge(party.id, _b64(body.challenge, "challenge"),
                                  _b64(body.signature, "signature"), body.certificate_pem)


def _b64(value: str, name: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(f"{name} is not valid base64", field=name) from None

