"""Classification training: image folders and the digits, torch and NumPy engines, checkpoints,
prediction, evaluation, and DistributedDataParallel under torchrun.

Example:
    >>> from cnnkit.train import TrainConfig, train
    >>> result = train(TrainConfig("lenet5", dataset="digits", out="digits.pt"))  # doctest: +SKIP
    >>> result.final["val_acc"]  # doctest: +SKIP
    0.99
"""

from cnnkit.train.checkpoint import load_checkpoint, save_checkpoint
from cnnkit.train.config import DIGITS_DEFAULTS, TrainConfig, learning_rate
from cnnkit.train.data import (
    DataBundle,
    FolderIndex,
    ImageTransform,
    load_data,
    load_digits_split,
    scan_image_folder,
    stratified_split,
)
from cnnkit.train.evaluate import (
    confusion_matrix,
    evaluate_model,
    load_trained,
    plot_confusion,
    plot_history,
    predict_files,
)
from cnnkit.train.loop import TrainResult, train

__all__ = [
    "DIGITS_DEFAULTS",
    "DataBundle",
    "FolderIndex",
    "ImageTransform",
    "TrainConfig",
    "TrainResult",
    "confusion_matrix",
    "evaluate_model",
    "learning_rate",
    "load_checkpoint",
    "load_data",
    "load_digits_split",
    "load_trained",
    "plot_confusion",
    "plot_history",
    "predict_files",
    "save_checkpoint",
    "scan_image_folder",
    "stratified_split",
    "train",
]
