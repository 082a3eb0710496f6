"""What the insurer side needs of other contexts, over their interfaces (wired by the
assembler: ``mynumber.app``).

- :class:`RegistryLinks`: the registry's two answers for a link, as the insurer side asks
  them: the current resident behind a 個人番号 the insured person gave (the
  :class:`~mynumber.insurance.interfaces.NumberResolver` of the contract: audited by the
  registry as ``registry:number:resolve`` for the purpose :data:`NUMBER_PURPOSE`, never stored
  or logged here), and the registry's id of the person a 住基ネット answer named by their
  住民票コード (:class:`ResidentCodes`).
- :class:`JpkiCardUsability`: the :class:`~mynumber.insurance.interfaces.CardUsability` over
  JPKI (who holds a good user-authentication certificate now), for the documents.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from mynumber.registry.interfaces import ResidentNotFound, ResidentRecord


class JpkiForInsurance(Protocol):
    """JPKI's method :class:`JpkiCardUsability` uses (``JpkiService`` has it)."""

    def residents_with_good_auth_certificate(self, resident_ids: Sequence[int]) -> set[int]:
        ...

#: The purpose the registry records for a number resolved for an insurer (番号法 第9条第1項・
#: 別表第一 and 第14条: an insurer checking the number its insured person gave).
NUMBER_PURPOSE = "health_insurance_link"


class ResidentCodes(Protocol):
    """The registry's id of the person with a 住民票コード (None if the registry has none).
    A ``resident_ids_for_codes(codes) -> dict`` method, when present, answers many at once."""

    def resident_id_for_code(self, resident_code: str) -> int | None: ...


class RegistryForInsurance(Protocol):
    """The registry's methods :class:`RegistryLinks` uses (``RegistryServiceImpl`` has them)."""

    def resident_for_number(self, individual_number: str, purpose: str,
                            actor: str) -> tuple[int, str] | None: ...

    def resident_by_code(self, code: str) -> ResidentRecord: ...

    def resident_ids_for_codes(self, resident_codes: Sequence[str]) -> dict[str, int]: ...


class RegistryLinks:
    """A :class:`~mynumber.insurance.interfaces.NumberResolver` and :class:`ResidentCodes`
    over the registry."""

    def __init__(self, registry: RegistryForInsurance,
                 purpose: str = NUMBER_PURPOSE) -> None:
        self.registry = registry
        self.purpose = purpose

    def resident_for_number(self, individual_number: str, actor: str) -> tuple[int, str] | None:
        return self.registry.resident_for_number(individual_number, self.purpose, actor[:80])

    def resident_id_for_code(self, resident_code: str) -> int | None:
        try:
            return self.registry.resident_by_code(resident_code).id
        except ResidentNotFound:
            return None

    def resident_ids_for_codes(self, resident_codes: Sequence[str]) -> dict[str, int]:
        """Many at once (a batch of links): one read of the registry."""
        return self.registry.resident_ids_for_codes(resident_codes)


class JpkiCardUsability:
    """:class:`~mynumber.insurance.interfaces.CardUsability` over JPKI: a card is usable when
    its holder has a user-authentication certificate that is good now (the activation, keyed
    by the pairwise id, outlives a revoked or expired certificate; this does not). A
    smartphone's certificate counts too: it is accepted at a terminal like the card's."""

    def __init__(self, jpki: JpkiForInsurance) -> None:
        self.jpki = jpki

    def usable(self, resident_ids: Sequence[int]) -> set[int]:
        if not resident_ids:
            return set()
        return self.jpki.residents_with_good_auth_certificate(resident_ids)
