"""The card service's protocol is what callers type against: the implementation offers every
member with the same signature, and nothing public of it is left out of the protocol."""

from __future__ import annotations

import inspect

from mynumber.app import Container
from mynumber.card.interfaces import CardService
from mynumber.card.services import CardServiceImpl


def _members(cls: type) -> set[str]:
    return {name for name, value in vars(cls).items()
            if not name.startswith("_") and (callable(value) or isinstance(value, property))}


def _shape(function: object) -> list[tuple[str, object, bool]]:
    """Parameter names, kinds and whether each has a default (the defaults themselves are the
    implementation's)."""
    signature = inspect.signature(function)  # type: ignore[arg-type]
    return [(p.name, p.kind, p.default is not inspect.Parameter.empty)
            for p in signature.parameters.values()]


def test_every_public_method_of_the_service_is_in_its_protocol() -> None:
    assert _members(CardServiceImpl) == _members(CardService) - {"registry"}


def test_the_implementation_keeps_the_protocol_signatures(container: Container) -> None:
    service: CardService = container.card  # mypy checks this in services.py too
    for name in _members(CardService) - {"registry"}:
        assert _shape(getattr(CardService, name)) == _shape(getattr(CardServiceImpl, name)), name
    assert service.registry is container.registry
