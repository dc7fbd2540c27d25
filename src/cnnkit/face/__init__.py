"""Face verification and recognition: detect, align, embed with dlib's face ResNet in PyTorch.

Pipeline: :func:`load_image` -> :func:`detect` (boxes) -> :func:`landmarks` (5 points) ->
:func:`align` (150x150 chip, byte-identical to dlib) -> :func:`embed` (128-d) -> :func:`distance`.
:func:`faces` runs all of it on one image.
"""

from cnnkit.face.align import align
from cnnkit.face.detect import Box, detect, landmarks, load_image
from cnnkit.face.encoder import DlibFaceResNet, FaceEncoder
from cnnkit.face.models_files import model_file
from cnnkit.face.pipeline import Face, default_encoder, distance, embed, faces, load_encoder

__all__ = [
    "Box",
    "DlibFaceResNet",
    "Face",
    "FaceEncoder",
    "align",
    "default_encoder",
    "detect",
    "distance",
    "embed",
    "faces",
    "landmarks",
    "load_encoder",
    "load_image",
    "model_file",
]
