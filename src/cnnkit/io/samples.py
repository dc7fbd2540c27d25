"""Images that installed packages ship, by name: nothing is downloaded.

scikit-image ships ``astronaut``, ``camera``, ``chelsea``, ``coffee``, ``rocket``, ``brick``,
``grass``, ``gravel`` and ``hubble_deep_field`` inside its wheel; matplotlib ships
``grace_hopper``. These feed the demo, the tests and the benchmarks.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from cnnkit.errors import DependencyError, NotFoundError

_SKIMAGE_FILES = {
    "astronaut": "astronaut.png",
    "camera": "camera.png",
    "chelsea": "chelsea.png",
    "coffee": "coffee.png",
    "rocket": "rocket.jpg",
    "brick": "brick.png",
    "grass": "grass.png",
    "gravel": "gravel.png",
    "hubble_deep_field": "hubble_deep_field.jpg",
}
_MATPLOTLIB_FILES = {"grace_hopper": "grace_hopper.jpg"}

SAMPLE_NAMES: tuple[str, ...] = tuple(sorted({**_SKIMAGE_FILES, **_MATPLOTLIB_FILES}))


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DependencyError(
            f"package {package} is not installed",
            hint=f"pip install {package.replace('skimage', 'scikit-image')}",
        )
    return Path(next(iter(spec.submodule_search_locations)))


def sample_path(name: str) -> Path:
    """The file path of a shipped sample image, e.g. ``sample_path("astronaut")``."""
    if name in _SKIMAGE_FILES:
        path = _package_dir("skimage") / "data" / _SKIMAGE_FILES[name]
    elif name in _MATPLOTLIB_FILES:
        path = _package_dir("matplotlib") / "mpl-data" / "sample_data" / _MATPLOTLIB_FILES[name]
    else:
        raise NotFoundError(f"unknown sample image {name!r}", hint=f"choose from {SAMPLE_NAMES}")
    if not path.exists():
        raise NotFoundError(f"sample image {name!r} is missing from its package", path=path)
    return path
