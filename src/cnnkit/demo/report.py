"""Assemble ``index.html`` from the capability sections.

Each section is a module ``cnnkit.demo.<name>`` with a ``TITLE`` string and a function
``build(out_dir: Path) -> str`` that writes its PNGs into ``out_dir`` and returns an HTML fragment.
A section that fails is reported in the page (with the error) instead of sinking the whole report.
"""

from __future__ import annotations

import html
import importlib
import logging
import time
from pathlib import Path

from cnnkit.io.atomic import atomic_write

log = logging.getLogger(__name__)

#: Section modules, in page order.
SECTIONS = ("edges", "models", "train", "face", "style")

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>cnnkit demo</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; }}
img {{ max-width: 100%; border: 1px solid #ccc; }}
figure {{ display: inline-block; margin: 0.5em; vertical-align: top; text-align: center; }}
figure img {{ max-height: 260px; }}
table {{ border-collapse: collapse; font-size: 0.9em; }}
td, th {{ border: 1px solid #ccc; padding: 2px 8px; text-align: right; }}
pre {{ background: #f6f6f6; padding: 0.5em; overflow-x: auto; }}
.error {{ color: #a00; }}
</style></head><body>
<h1>cnnkit demo</h1>
<p>Every image here was made by <code>cnnkit demo</code>
from images that installed packages ship.</p>
{body}
</body></html>
"""


def build_report(out_dir: str | Path, sections: list[str] | None = None) -> Path:
    """Build every (or the named) section into ``out_dir``; return the path of ``index.html``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = list(SECTIONS) if sections is None else sections
    unknown = sorted(set(names) - set(SECTIONS))
    if unknown:
        from cnnkit.errors import NotFoundError

        raise NotFoundError(
            f"unknown demo section(s) {', '.join(unknown)}",
            hint=f"choose from {', '.join(SECTIONS)}",
        )
    parts = []
    for name in names:
        module = importlib.import_module(f"cnnkit.demo.{name}")
        start = time.perf_counter()
        log.info("demo: building section %s", name)
        try:
            fragment = module.build(out)
        except Exception as exc:  # a broken section must not hide the others
            log.exception("demo section %s failed", name)
            fragment = f'<p class="error">This section failed: {html.escape(repr(exc))}</p>'
        seconds = time.perf_counter() - start
        parts.append(
            f'<section id="{name}"><h2>{html.escape(module.TITLE)}</h2>\n{fragment}\n'
            f"<p><small>built in {seconds:.1f} s</small></p></section>"
        )
    index = out / "index.html"
    with atomic_write(index, "w") as f:
        f.write(_PAGE.format(body="\n".join(parts)))
    return index
