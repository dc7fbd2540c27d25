"""The demo's edges section writes its pictures and shows the course example computed live."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from cnnkit.demo import edges as section


def test_edges_section_builds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(section, "_PHOTOS", ("astronaut",))  # one photo keeps the test short
    fragment = section.build(tmp_path)
    for name in ("astronaut",):
        for kernel in ("vertical", "horizontal", "sobel", "scharr"):
            file = f"edges-{name}-{kernel}.png"
            assert f'src="{file}"' in fragment
            with Image.open(tmp_path / file) as img:
                assert img.size == (512, 512)
                assert img.mode == ("RGB" if kernel in ("vertical", "horizontal") else "L")
    # The 4x4 output table of the course's example, computed by detect(): rows 0 30 30 0.
    assert fragment.count("<tr><td>0</td><td>30</td><td>30</td><td>0</td></tr>") == 4
    assert "<td>-30</td>" in fragment  # the zero-padded 6x6 version shows the border edge
