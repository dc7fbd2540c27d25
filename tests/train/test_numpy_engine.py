"""The NumPy engine: same network as torch, same gradients, and it learns the digits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnkit.models import create_model
from cnnkit.train import TrainConfig, load_digits_split, train
from cnnkit.train.evaluate import evaluate_model, load_trained, predict_arrays
from cnnkit.train.numpy_engine import ChannelAffine, RBFLogits, ScaledTanh, translate


@pytest.mark.parametrize("name", ["lenet5", "lenet5_modern"])
def test_translation_gives_the_torch_forward(name: str, rng) -> None:
    torch.manual_seed(0)
    model = create_model(name, num_classes=10).eval()
    net, links = translate(model)
    x = rng.standard_normal((4, 1, 32, 32)).astype(np.float32)
    expected = model(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(net.forward(x), expected, rtol=1e-4, atol=1e-4)
    trainable = {k for k, p in model.named_parameters()}
    assert {link.key for link in links} == trainable


def test_one_sgd_step_matches_torch(rng) -> None:
    torch.manual_seed(1)
    model = create_model("lenet5", num_classes=10)
    x = rng.standard_normal((8, 1, 32, 32)).astype(np.float32)
    y = rng.integers(0, 10, 8)
    cfg = TrainConfig(
        "lenet5", dataset="digits", optimizer="sgd", lr=0.01, augment=0, out=None
    ).resolved()
    from cnnkit.train.numpy_engine import NumpyTrainer

    class Data:  # only .train.arrays() is read
        class train:  # noqa: N801
            @staticmethod
            def arrays():
                return x, y

    trainer = NumpyTrainer(model, cfg, Data())  # type: ignore[arg-type]
    trainer.step(x, y)
    loss = torch.nn.functional.cross_entropy(model(torch.from_numpy(x)), torch.from_numpy(y))
    loss.backward()
    with torch.no_grad():  # torch.optim.SGD's first step: v = g + wd * w; w -= lr * v
        for p in model.parameters():
            p -= 0.01 * (p.grad + 5e-4 * p)
    got = trainer.state_dict()
    assert list(got) == list(model.state_dict())  # buffers included: loads into torch as is
    for key, value in model.state_dict().items():
        if key in got:
            np.testing.assert_allclose(got[key].numpy(), value.numpy(), rtol=1e-3, atol=1e-5)


def _numeric_grad(f, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + eps
        hi = f()
        x[i] = old - eps
        lo = f()
        x[i] = old
        g[i] = (hi - lo) / (2 * eps)
    return g


@pytest.mark.parametrize("kind", ["affine", "rbf", "tanh"])
def test_glue_layer_gradients(kind: str, rng) -> None:
    if kind == "affine":
        layer = ChannelAffine(rng.standard_normal(3), rng.standard_normal(3), gain=4.0)
        layer.params = {k: v.astype(np.float64) for k, v in layer.params.items()}
        x = rng.standard_normal((2, 3, 2, 2))
    elif kind == "rbf":
        layer = RBFLogits(np.sign(rng.standard_normal((4, 5))), temperature=3.0)
        layer.prototypes = layer.prototypes.astype(np.float64)
        x = rng.standard_normal((3, 5))
    else:
        layer = ScaledTanh(1.7159, 2 / 3)
        x = rng.standard_normal((3, 4))
    g = rng.standard_normal(layer.forward(x).shape)

    def f() -> float:
        return float((layer.forward(x) * g).sum())

    layer.forward(x)
    dx = layer.backward(g)
    np.testing.assert_allclose(dx, _numeric_grad(f, x), rtol=1e-5, atol=1e-7)
    for name, p in layer.params.items():
        layer.forward(x)
        layer.backward(g)
        np.testing.assert_allclose(layer.grads[name], _numeric_grad(f, p), rtol=1e-5, atol=1e-7)


def test_numpy_engine_learns_digits_in_one_epoch(tmp_path) -> None:
    ckpt = tmp_path / "np.pt"
    cfg = TrainConfig("lenet5_modern", dataset="digits", engine="numpy", epochs=1, out=str(ckpt))
    result = train(cfg)
    final = result.final
    assert final["loss"] < 2.0  # ln 10 = 2.30 at chance
    assert final["val_acc"] > 0.6  # chance is 0.1
    # the weights went back into the torch model: same test accuracy from torch
    test = load_digits_split(32).test
    probs = predict_arrays(result.model.eval(), test.x)
    assert (probs.argmax(1) == test.y).mean() == pytest.approx(final["val_acc"], abs=1e-9)
    # ... and the checkpoint evaluates the same through `cnnkit evaluate`'s code path
    ev = evaluate_model(load_trained(ckpt, "lenet5_modern"), dataset="digits")
    assert ev.n == 360 and ev.accuracy == pytest.approx(final["val_acc"], abs=1e-9)
    assert ev.confusion.sum() == 360
