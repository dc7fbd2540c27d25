"""Demo section: the classic networks' layer tables and sizes (built on the meta device)."""

from __future__ import annotations

import html
import logging
from pathlib import Path

TITLE = "Classic networks: LeNet-5, AlexNet, VGG, ResNet"

log = logging.getLogger(__name__)


def _all_models_table(summaries: list) -> str:
    from cnnkit.models.summary import human

    rows = [
        "<table>",
        "<tr><th>model</th><th>input</th><th>parameters</th><th>multiply-adds / image</th>"
        "<th>layers listed</th></tr>",
    ]
    for s in summaries:
        c, h, w = s.input_size
        rows.append(
            f'<tr><td style="text-align:left"><code>{html.escape(s.model)}</code></td>'
            f"<td>{h} x {w} x {c}</td><td>{s.total_params:,}</td>"
            f"<td>{human(s.total_macs)}</td><td>{len(s.rows)}</td></tr>"
        )
    rows.append("</table>")
    return "\n".join(rows)


def _plot(summaries: list, path: Path) -> None:
    from cnnkit.io.figures import save_figure, subplots

    fig, ax = subplots(figsize=(7, 4.5), dpi=100)
    for i, s in enumerate(summaries):
        xy = (s.total_macs / 1e9, s.total_params / 1e6)
        ax.scatter(*xy, s=30)
        offset = (-58, -4) if s.model == "resnet34" else (5, 4) if i % 2 == 0 else (5, -10)
        ax.annotate(s.model, xy, fontsize=8, xytext=offset, textcoords="offset points")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("multiply-adds per image (G), at the default input")
    ax.set_ylabel("parameters (M)")
    ax.set_title("Size and cost of the classic networks")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)


def build(out_dir: Path) -> str:
    """Write ``models_size_vs_cost.png`` into ``out_dir``; return the HTML fragment."""
    from cnnkit.models.registry import list_models
    from cnnkit.models.summary import summarize_model

    out_dir = Path(out_dir)
    vgg16 = summarize_model("vgg16")
    resnet18 = summarize_model("resnet18")
    summaries = [summarize_model(name) for name in list_models()]
    plotted = {"alexnet", "vgg11", "vgg16", "vgg19", "resnet18", "resnet34", "resnet50"}
    plotted |= {"resnet101", "resnet152"}
    imagenet_like = [s for s in summaries if s.model in plotted]
    png = out_dir / "models_size_vs_cost.png"
    try:
        _plot(imagenet_like, png)
        figure = (
            f'<figure><img src="{png.name}" alt="parameters vs multiply-adds">'
            "<figcaption>VGG's cost is in its convolutions, its size in its first FC layer; "
            "ResNets are deep but cheap.</figcaption></figure>"
        )
    except Exception as exc:  # a plotting failure must not hide the tables
        log.warning("models demo: plot failed: %s", exc)
        figure = ""
    return "\n".join(
        [
            "<p>Every network is built by <code>cnnkit.models.create_model</code> on PyTorch's "
            "meta device (no memory, no arithmetic) and traced by "
            "<code>cnnkit summary</code>: one row per layer with its output "
            "n<sub>H</sub> x n<sub>W</sub> x n<sub>C</sub>, its parameters and its "
            "multiply-adds per image.</p>",
            "<h3>VGG-16 (<code>cnnkit summary vgg16</code>)</h3>",
            f"<p>{vgg16.total_params:,} parameters, {vgg16.total_macs / 1e9:.2f} G "
            "multiply-adds per 224 x 224 image. The first fully connected layer alone holds "
            f"{vgg16.rows[-3].params / vgg16.total_params:.0%} of the parameters; the "
            "convolutions do "
            f"{sum(r.macs for r in vgg16.rows if r.kind == 'Conv2d') / vgg16.total_macs:.0%} "
            "of the work.</p>",
            vgg16.to_html(),
            "<h3>All registered networks (<code>cnnkit models</code>)</h3>",
            _all_models_table(summaries),
            figure,
            "<h3>ResNet-18 (<code>cnnkit summary resnet18</code>)</h3>",
            "<p>Rows named <code>downsample</code> are the projection shortcuts W<sub>s</sub> "
            "(1x1 convolution + batch norm) where a stage halves n<sub>H</sub>, n<sub>W</sub> "
            "and doubles n<sub>C</sub>; identity shortcuts have no row and no parameters.</p>",
            resnet18.to_html(),
        ]
    )
