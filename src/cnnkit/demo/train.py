"""Demo section: train LeNet-5 on scikit-learn's digits (a short torch run), with the loss and
accuracy curves, the test accuracy and the confusion matrix."""

from __future__ import annotations

import html
import logging
import tempfile
from pathlib import Path

TITLE = "Training LeNet-5 on the digits"

#: The demo's short run: fewer epochs than the full recipe, to build in well under a minute.
DEMO_MODEL = "lenet5"
DEMO_EPOCHS = 10

log = logging.getLogger(__name__)


def build(out_dir: Path) -> str:
    """Train, then write ``train_curves.png`` and ``train_confusion.png`` into ``out_dir``."""
    import torch

    from cnnkit.train import DIGITS_DEFAULTS, TrainConfig, load_digits_split, train
    from cnnkit.train.evaluate import (
        confusion_matrix,
        format_confusion,
        plot_confusion,
        plot_history,
        predict_arrays,
    )

    out_dir = Path(out_dir)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small convolutions: one thread is fastest on a busy machine
    try:
        with tempfile.TemporaryDirectory() as tmp:
            cfg = TrainConfig(
                DEMO_MODEL,
                dataset="digits",
                epochs=DEMO_EPOCHS,
                out=str(Path(tmp) / "digits.pt"),
                device="cpu",
            )
            result = train(cfg)
    finally:
        torch.set_num_threads(threads)
    history = result.history
    test = load_digits_split(32).test
    probs = predict_arrays(result.model.eval(), test.x)
    pred = probs.argmax(1)
    accuracy = float((pred == test.y).mean())
    cm = confusion_matrix(test.y, pred, 10)
    plot_history(history, out_dir / "train_curves.png", title=f"{DEMO_MODEL} on digits")
    plot_confusion(
        cm,
        result.classes,
        out_dir / "train_confusion.png",
        title=f"test accuracy {accuracy:.2%} ({int((pred == test.y).sum())}/{len(test.y)})",
    )
    seconds = sum(h["seconds"] for h in history)
    recipe = dict(DIGITS_DEFAULTS, epochs=DEMO_EPOCHS)
    rows = "".join(
        f"<tr><td>{int(h['epoch'])}</td><td>{h['loss']:.4f}</td><td>{h['acc']:.2%}</td>"
        f"<td>{h['val_loss']:.4f}</td><td>{h['val_acc']:.2%}</td>"
        f"<td>{h['images_per_s']:.0f}</td></tr>"
        for h in history
    )
    return f"""
<p>LeNet-5 (the 1998 paper's network: scaled tanh, trainable subsampling, the C3 connection
table, RBF output) trained with the torch engine on scikit-learn's 8x8 digits, upsampled to
32x32 (1,437 training, 360 test images, fixed split). A short run of the digits recipe
({html.escape(str(recipe))}); training took {seconds:.1f} s.
The full recipe: <code>cnnkit train lenet5 --dataset digits --out digits.pt</code>.</p>
<p><b>Test accuracy: {accuracy:.2%}</b></p>
<table><tr><th>epoch</th><th>train loss</th><th>train acc</th><th>test loss</th>
<th>test acc</th><th>images/s</th></tr>{rows}</table>
<figure><img src="train_curves.png" alt="loss and accuracy per epoch">
<figcaption>loss and accuracy per epoch</figcaption></figure>
<figure><img src="train_confusion.png" alt="confusion matrix on the test split">
<figcaption>confusion matrix (rows: true digit)</figcaption></figure>
<pre>{html.escape(format_confusion(cm, result.classes))}</pre>
"""
