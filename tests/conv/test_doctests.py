"""The examples in cnnkit.conv's docstrings run and give what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest


@pytest.mark.parametrize(
    "name",
    ["cnnkit.conv", "cnnkit.conv.functional", "cnnkit.conv.pool", "cnnkit.conv.shapes",
     "cnnkit.conv.layers", "cnnkit.conv.explain"],
)  # fmt: skip
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0
    assert result.failed == 0
