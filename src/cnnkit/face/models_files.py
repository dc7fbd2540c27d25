"""Where the pretrained face model files live, and the optional packages that ship them.

The PyPI package ``face_recognition_models`` ships dlib's model files (HOG needs none):

- ``shape_predictor_5_face_landmarks.dat``: the 5-point landmark predictor used for alignment;
- ``dlib_face_recognition_resnet_model_v1.dat``: the face ResNet read by :mod:`dlib_format`.

Its ``__init__`` imports ``pkg_resources`` (often missing), so the package is located with
``importlib.util.find_spec`` and never imported.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from cnnkit.errors import DependencyError, NotFoundError

#: The model files this package knows, by short name.
MODEL_FILES = {
    "shape_predictor_5": "shape_predictor_5_face_landmarks.dat",
    "shape_predictor_68": "shape_predictor_68_face_landmarks.dat",
    "resnet_v1": "dlib_face_recognition_resnet_model_v1.dat",
    "mmod_detector": "mmod_human_face_detector.dat",
}

MODELS_PACKAGE = "face_recognition_models"
MODELS_FIX = "pip install face_recognition_models"
DLIB_FIX = "pip install dlib-bin"


def _models_dir() -> Path:
    """The ``models/`` folder of the installed ``face_recognition_models`` package."""
    try:
        spec = importlib.util.find_spec(MODELS_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise DependencyError(
            f"the package {MODELS_PACKAGE} (dlib's face model files) is not installed",
            hint=f"run: {MODELS_FIX}",
        )
    return Path(list(spec.submodule_search_locations)[0]) / "models"


def model_file(name: str) -> Path:
    """Path of a model file shipped by ``face_recognition_models``.

    Args:
        name: a short name from :data:`MODEL_FILES` (``"resnet_v1"``, ``"shape_predictor_5"``)
            or the file name itself (``"dlib_face_recognition_resnet_model_v1.dat"``).

    Raises:
        DependencyError: the package is missing (the message gives the pip command).
        NotFoundError: an unknown name, or the package lacks that file.
    """
    file_name = MODEL_FILES.get(name, name)
    if file_name not in MODEL_FILES.values():
        raise NotFoundError(
            f"unknown face model file {name!r}",
            hint=f"known: {', '.join(sorted(MODEL_FILES))}",
        )
    path = _models_dir() / file_name
    if not path.is_file():
        raise NotFoundError(
            f"{MODELS_PACKAGE} does not contain {file_name}",
            path=path,
            hint=f"reinstall it: pip install --force-reinstall {MODELS_PACKAGE}",
        )
    return path


def require_dlib() -> Any:
    """Import and return the ``dlib`` module, or raise a DependencyError saying how to get it."""
    try:
        import dlib
    except ImportError as exc:
        raise DependencyError(
            "the package dlib (face detection and landmarks) is not installed",
            hint=f"run: {DLIB_FIX}",
        ) from exc
    return dlib
