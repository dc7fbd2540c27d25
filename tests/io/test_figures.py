"""Figures: headless subplots, PNG written atomically, figure closed."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from cnnkit.errors import OutputError
from cnnkit.io.figures import save_figure, subplots


def test_save_figure_writes_a_png_and_closes_the_figure(tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, ax = subplots(figsize=(2, 1), dpi=50)
    ax.plot([0, 1], [1, 0])
    out = save_figure(fig, tmp_path / "plot.png")
    assert out == tmp_path / "plot.png"
    with Image.open(out) as img:
        assert img.format == "PNG" and img.size == (100, 50)
    assert not plt.fignum_exists(fig.number)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plot.png"]


def test_save_figure_to_an_unwritable_place_is_an_output_error(tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    fig, _ = subplots()
    with pytest.raises(OutputError, match="cannot write the output"):
        save_figure(fig, blocker / "plot.png")
    assert not plt.fignum_exists(fig.number)
