"""Face verification and recognition: detect, align, embed with dlib's face ResNet in PyTorch.

Pipeline: :func:`load_image` -> :func:`detect` (boxes) -> :func:`landmarks` (5 points) ->
:func:`align` (150x150 chip, byte-identical to dlib) -> :func:`embed` (128-d) -> :func:`distance`.
:func:`faces` runs all of it on one image.

Use cases (:mod:`cnnkit.face.usecases`, what the CLI and the service call; results are
dataclasses): :func:`enroll`, :func:`verify_photo`, :func:`identify_image`, :func:`detect_faces`,
:func:`calibrate`, :func:`evaluate_pairs`, over any :class:`PersonStore`.

System: :class:`Gallery` (the SQLite person database), :func:`verify` (1:1), :func:`identify`
(1:K), :func:`triplet_loss` and mining, the LFW pairs protocol (:func:`read_pairs`,
:func:`kfold_accuracy`), and triplet fine-tuning (:func:`train_encoder`).

Names are imported on first use (PEP 562), so ``import cnnkit.face.gallery`` or
``cnnkit face list`` do not pay for importing torch and dlib. The modules are named by noun
(``detection``, ``alignment``) so that no function shares its name with a submodule.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: public name -> module that defines it
_EXPORTS = {
    # pipeline
    "align": "cnnkit.face.alignment",
    "Box": "cnnkit.face.detection",
    "detect": "cnnkit.face.detection",
    "landmarks": "cnnkit.face.detection",
    "load_image": "cnnkit.face.detection",
    "DlibFaceResNet": "cnnkit.face.encoder",
    "FaceEncoder": "cnnkit.face.encoder",
    "model_file": "cnnkit.face.models_files",
    "Face": "cnnkit.face.pipeline",
    "default_encoder": "cnnkit.face.pipeline",
    "distance": "cnnkit.face.pipeline",
    "embed": "cnnkit.face.pipeline",
    "faces": "cnnkit.face.pipeline",
    "load_encoder": "cnnkit.face.pipeline",
    # person database, search, verify / identify
    "Gallery": "cnnkit.face.gallery",
    "default_db_path": "cnnkit.face.gallery",
    "check_name": "cnnkit.face.gallery",
    "DEFAULT_TOLERANCE": "cnnkit.face.gallery",
    "read_export": "cnnkit.face.gallery_io",
    "identify_many": "cnnkit.face.batch",
    "IndexConfig": "cnnkit.face.index",
    "VectorIndex": "cnnkit.face.index",
    "verify": "cnnkit.face.recognize",
    "NoFaceError": "cnnkit.face.recognize",
    "SeveralFacesError": "cnnkit.face.recognize",
    "identify": "cnnkit.face.recognize",
    "Match": "cnnkit.face.store",
    "Person": "cnnkit.face.store",
    "PersonStore": "cnnkit.face.store",
    # use cases (what the CLI and the service call)
    "EnrollReport": "cnnkit.face.usecases",
    "FaceMatch": "cnnkit.face.usecases",
    "PhotoReport": "cnnkit.face.usecases",
    "Verification": "cnnkit.face.usecases",
    "Calibration": "cnnkit.face.usecases",
    "enroll": "cnnkit.face.usecases",
    "verify_photo": "cnnkit.face.usecases",
    "identify_image": "cnnkit.face.usecases",
    "detect_faces": "cnnkit.face.usecases",
    "calibrate": "cnnkit.face.usecases",
    "evaluate_pairs": "cnnkit.face.usecases",
    # triplet loss and mining
    "triplet_loss": "cnnkit.face.losses",
    "mined_triplet_loss": "cnnkit.face.losses",
    "semi_hard_triplets": "cnnkit.face.losses",
    "batch_hard_triplets": "cnnkit.face.losses",
    # pairs protocol
    "read_pairs": "cnnkit.face.evaluate",
    "kfold_accuracy": "cnnkit.face.evaluate",
    "best_threshold": "cnnkit.face.evaluate",
    "roc_auc": "cnnkit.face.evaluate",
    "tar_at_far": "cnnkit.face.evaluate",
    # open-set identification and descriptor pipelines
    "DEFAULT_PIPELINE": "cnnkit.face.descriptors",
    "PIPELINES": "cnnkit.face.descriptors",
    "IdentificationCalibration": "cnnkit.face.identification",
    "OpenSetResult": "cnnkit.face.openset",
    "Threshold": "cnnkit.face.identification",
    "calibrate_identification": "cnnkit.face.identification",
    "evaluate_identification": "cnnkit.face.identification",
    "identification_threshold": "cnnkit.face.identification",
    "plot_det": "cnnkit.face.openset",
    # training
    "TrainConfig": "cnnkit.face.train",
    "train_encoder": "cnnkit.face.train",
}

__all__ = [
    "plot_det",
    "identification_threshold",
    "evaluate_identification",
    "calibrate_identification",
    "Threshold",
    "OpenSetResult",
    "IdentificationCalibration",
    "PIPELINES",
    "DEFAULT_PIPELINE",
    "Box",
    "Calibration",
    "DEFAULT_TOLERANCE",
    "DlibFaceResNet",
    "EnrollReport",
    "Face",
    "FaceEncoder",
    "FaceMatch",
    "Gallery",
    "IndexConfig",
    "Match",
    "NoFaceError",
    "Person",
    "PersonStore",
    "PhotoReport",
    "SeveralFacesError",
    "TrainConfig",
    "VectorIndex",
    "Verification",
    "align",
    "batch_hard_triplets",
    "best_threshold",
    "calibrate",
    "check_name",
    "default_db_path",
    "default_encoder",
    "detect",
    "detect_faces",
    "distance",
    "embed",
    "enroll",
    "evaluate_pairs",
    "faces",
    "identify",
    "identify_image",
    "identify_many",
    "kfold_accuracy",
    "landmarks",
    "load_encoder",
    "load_image",
    "mined_triplet_loss",
    "model_file",
    "read_export",
    "read_pairs",
    "roc_auc",
    "semi_hard_triplets",
    "tar_at_far",
    "train_encoder",
    "triplet_loss",
    "verify",
    "verify_photo",
]

if TYPE_CHECKING:  # static imports for type checkers and IDEs
    from cnnkit.face.alignment import align
    from cnnkit.face.batch import identify_many
    from cnnkit.face.descriptors import DEFAULT_PIPELINE, PIPELINES
    from cnnkit.face.detection import Box, detect, landmarks, load_image
    from cnnkit.face.encoder import DlibFaceResNet, FaceEncoder
    from cnnkit.face.evaluate import best_threshold, kfold_accuracy, read_pairs, roc_auc, tar_at_far
    from cnnkit.face.gallery import DEFAULT_TOLERANCE, Gallery, check_name, default_db_path
    from cnnkit.face.gallery_io import read_export
    from cnnkit.face.identification import (
        IdentificationCalibration,
        Threshold,
        calibrate_identification,
        evaluate_identification,
        identification_threshold,
    )
    from cnnkit.face.index import IndexConfig, VectorIndex
    from cnnkit.face.losses import (
        batch_hard_triplets,
        mined_triplet_loss,
        semi_hard_triplets,
        triplet_loss,
    )
    from cnnkit.face.models_files import model_file
    from cnnkit.face.openset import OpenSetResult, plot_det
    from cnnkit.face.pipeline import Face, default_encoder, distance, embed, faces, load_encoder
    from cnnkit.face.recognize import NoFaceError, SeveralFacesError, identify, verify
    from cnnkit.face.store import Match, Person, PersonStore
    from cnnkit.face.train import TrainConfig, train_encoder
    from cnnkit.face.usecases import (
        Calibration,
        EnrollReport,
        FaceMatch,
        PhotoReport,
        Verification,
        calibrate,
        detect_faces,
        enroll,
        evaluate_pairs,
        identify_image,
        verify_photo,
    )


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cnnkit.face' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
