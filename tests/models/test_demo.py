"""The models demo section builds its tables and figure offline."""

from __future__ import annotations

from pathlib import Path

import pytest

import cnnkit.models.registry as registry
from cnnkit.demo import models as demo


def test_demo_section(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a subset of the registry keeps the test short; the section summarises whatever is listed
    monkeypatch.setattr(registry, "list_models", lambda pattern="*": ["lenet5", "resnet18"])
    fragment = demo.build(tmp_path)
    assert "138,357,544" in fragment  # the VGG-16 table
    assert "15,470,264,320" in fragment
    assert "11,689,512" in fragment  # ResNet-18, in its table and the all-models table
    assert "<code>lenet5</code>" in fragment and "60,000" in fragment
    png = tmp_path / "models_size_vs_cost.png"
    assert png.stat().st_size > 1000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
