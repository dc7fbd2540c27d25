"""Demo section: neural style transfer at 256 px on shipped images, with the loss curve."""

from __future__ import annotations

import html
from pathlib import Path

TITLE = "Neural style transfer"

#: Small enough for about a minute on two CPU cores with the offline backbone.
DEMO_SIZE = 256
DEMO_ITERATIONS = 30


def build(out_dir: Path) -> str:
    """Write this section's PNGs into ``out_dir`` and return its HTML fragment."""
    from cnnkit.io import load_image_pil, sample_path, save_image
    from cnnkit.style import transfer
    from cnnkit.style.paint import swirl_painting

    out_dir = Path(out_dir)
    content = load_image_pil(sample_path("chelsea"))
    style = swirl_painting(DEMO_SIZE, seed=0)
    save_image(out_dir / "style-content.png", content)
    save_image(out_dir / "style-style.png", style)
    image, history = transfer(content, style, size=DEMO_SIZE, iterations=DEMO_ITERATIONS)
    save_image(out_dir / "style-result.png", image)
    history.plot(out_dir / "style-loss.png")
    backbone = history.backbone
    note = (
        "the offline default backbone (random-weight VGG-19 from a fixed seed, each channel "
        "normalised on the content image, max pooling), started from the fast method's image "
        "when it is installed; ImageNet weights give "
        "better results, see "
        "<code>cnnkit style --help</code>"
        if backbone == "random-vgg19"
        else "VGG-19 with ImageNet weights"
    )
    figures = "".join(
        f'<figure><img src="{name}" alt="{html.escape(caption)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        for name, caption in (
            ("style-content.png", "content C: chelsea (scikit-image)"),
            ("style-style.png", "style S: a procedurally painted swirl"),
            ("style-result.png", "generated G"),
            ("style-loss.png", "alpha J_content, beta J_style and J per iteration"),
        )
    )
    return (
        f"<p>G minimises J(G) = alpha J_content(C, G) + beta J_style(S, G) with L-BFGS, "
        f"{len(history.total)} iterations at {DEMO_SIZE} px ({history.seconds:.0f} s), using "
        f"{note}.</p>\n{figures}\n"
        "<pre>cnnkit style content.jpg style.jpg -o out.png --size 256 --iterations 100</pre>"
    )
