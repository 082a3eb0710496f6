"""OpenID Connect standard claims (Core 5.1) of the 基本4情報.

The portal's own item names stay (``basic_four`` with ``name``, ``birth_date``, ``sex``,
``address``); what a client receives uses the standard claim names and forms:

* ``name`` -- as on the 住民票;
* ``birthdate`` -- ``YYYY-MM-DD``;
* ``gender`` -- ``"male"`` / ``"female"`` (Core 5.1 defines these two; any other value is
  passed as it is, as Core allows);
* ``address`` -- the Address Claim object (Core 5.1.1): ``formatted`` (the 住所 as
  registered, always present), ``country`` ``"JP"``, and, when the address starts with a known
  都道府県 and 市区町村, ``region``, ``locality`` and ``street_address``. The 住民票 has no
  postal code, so ``postal_code`` is left out rather than guessed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from mynumber.registry.interfaces import MunicipalityRecord

# The claims the provider can release (discovery ``claims_supported``).
CLAIMS_SUPPORTED = ("sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash",
                    "name", "birthdate", "gender", "address")

# portal item -> standard claim
_RENAMED = {"name": "name", "birth_date": "birthdate", "sex": "gender"}


@dataclass(frozen=True)
class Divisions:
    """都道府県 names, and per 都道府県 its 市区町村 names longest first, built from the
    registry's list of 地方公共団体 (``RegistryService.municipalities``)."""

    prefectures: tuple[str, ...]
    towns: dict[str, tuple[str, ...]]

    @classmethod
    def of(cls, municipalities: Iterable[MunicipalityRecord]) -> Divisions:
        prefectures: list[str] = []
        towns: dict[str, list[str]] = {}
        for row in municipalities:
            if row.kind == "prefecture":
                prefectures.append(row.name)
            else:
                towns.setdefault(row.prefecture, []).append(row.name)
        return cls(tuple(prefectures), {p: tuple(sorted(set(n), key=len, reverse=True))
                                        for p, n in towns.items()})


_COUNTY = re.compile(r"^(\S{1,6}?郡)")


def address_claim(address: str, divisions: Divisions) -> dict[str, str]:
    """The Address Claim object for a Japanese 住所 string."""
    claim = {"formatted": address, "country": "JP"}
    prefectures, towns = divisions.prefectures, divisions.towns
    region = next((p for p in prefectures if address.startswith(p)), None)
    if region is None:
        return claim
    rest = address[len(region):]
    county = ""
    names = towns.get(region, ())
    locality = next((n for n in names if rest.startswith(n)), None)
    if locality is None and (match := _COUNTY.match(rest)):
        county = match.group(1)
        locality = next((n for n in names if rest[len(county):].startswith(n)), None)
    if locality is None:
        return claim
    street = rest[len(county) + len(locality):].strip()
    claim.update(region=region, locality=county + locality)
    if street:
        claim["street_address"] = street
    return claim


def standard_claims(data: dict[str, Any], divisions: Divisions) -> dict[str, Any]:
    """The 基本4情報 as released by the network, as Core 5.1 claims."""
    claims: dict[str, Any] = {}
    for item, claim in _RENAMED.items():
        value = data.get(item)
        if isinstance(value, str) and value:
            claims[claim] = value
    address = data.get("address")
    if isinstance(address, str) and address:
        claims["address"] = address_claim(address, divisions)
    return claims
