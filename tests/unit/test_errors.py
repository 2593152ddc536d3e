"""Every error Ricochet raises is defined in ``ricochet.errors`` under ``RicochetError``."""

from __future__ import annotations

import importlib
import inspect

import pytest

from ricochet import errors
from tests.import_graph import Graph

EXAMPLES = "ricochet.workers.examples"
"""The examples stand for user code: their exceptions are the user's own."""


def exception_classes() -> list[type[BaseException]]:
    found = []
    for module in sorted(Graph.read().edges):
        if module.startswith(EXAMPLES) or module.endswith("__main__"):
            continue
        for _, value in inspect.getmembers(importlib.import_module(module), inspect.isclass):
            if issubclass(value, BaseException) and value.__module__.startswith("ricochet"):
                found.append(value)
    return found


def test_every_error_is_defined_in_the_errors_module() -> None:
    classes = exception_classes()

    assert len(classes) > 10
    assert [] == sorted({c.__qualname__ for c in classes if c.__module__ != "ricochet.errors"})


@pytest.mark.parametrize("name", sorted(n for n, v in vars(errors).items() if isinstance(v, type)))
def test_every_error_derives_from_ricochet_error(name: str) -> None:
    value = getattr(errors, name)
    if not issubclass(value, BaseException):
        pytest.fail(f"{name} in ricochet.errors is not an exception")

    assert issubclass(value, errors.RicochetError)
