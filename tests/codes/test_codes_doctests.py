"""Run the doctests of every module in mynumber.codes (they double as documentation)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from types import ModuleType

import pytest

import mynumber.codes


def _modules() -> list[ModuleType]:
    names = [mynumber.codes.__name__] + [
        f"{mynumber.codes.__name__}.{info.name}"
        for info in pkgutil.iter_modules(mynumber.codes.__path__)
    ]
    return [importlib.import_module(name) for name in sorted(names)]


@pytest.mark.parametrize("module", _modules(), ids=lambda m: m.__name__)
def test_doctests(module: ModuleType) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.failed == 0


def test_every_public_module_has_doctests() -> None:
    finder = doctest.DocTestFinder()
    for module in _modules():
        if module.__name__.rsplit(".", 1)[-1].startswith("_") or module is mynumber.codes:
            continue
        examples = sum(len(t.examples) for t in finder.find(module))
        assert examples > 0, module.__name__
