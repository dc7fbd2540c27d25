"""The PyTorch face ResNet: dlib's descriptors within 1e-4, add_prev, folding, loading, caching."""

from __future__ import annotations

import dlib  # the reference implementation (cnnkit[face] depends on dlib-bin)
import numpy as np
import pytest
import torch

from cnnkit.errors import ShapeError, WeightsError
from cnnkit.face import (
    FaceEncoder,
    align,
    detect,
    distance,
    embed,
    landmarks,
    load_image,
    model_file,
)
from cnnkit.face import encoder as encoder_mod
from cnnkit.face.encoder import DlibFaceResNet, add_prev, fold_affine
from cnnkit.io import sample_path


@pytest.fixture(scope="module")
def chips() -> np.ndarray:
    """Aligned chips of the two shipped faces and a mirrored, darker copy of the first."""
    out = []
    for name in ("grace_hopper", "astronaut"):
        img = load_image(sample_path(name))
        out.append(align(img, landmarks(img, detect(img, 1)[0])))
    out.append((out[0][:, ::-1] * 0.8).astype(np.uint8))
    return np.stack(out)


@pytest.fixture(scope="module")
def encoder() -> FaceEncoder:
    return FaceEncoder.load()


def test_descriptors_equal_dlibs(chips, encoder):
    net = dlib.face_recognition_model_v1(str(model_file("resnet_v1")))
    ref = np.array([np.array(net.compute_face_descriptor(c)) for c in chips[:2]])
    mine = encoder.embed(chips[:2])
    assert mine.shape == (2, 128) and mine.dtype == np.float32
    assert np.abs(mine - ref).max() < 1e-4


def test_batching_and_distances(chips, encoder):
    batched = encoder.embed(chips)
    singles = np.concatenate([encoder.embed(c) for c in chips])
    np.testing.assert_allclose(batched, singles, atol=1e-5)
    np.testing.assert_allclose(embed(chips, encoder), batched)
    d = distance(batched, batched)
    assert d.shape == (3, 3) and np.allclose(np.diag(d), 0, atol=1e-5)
    assert d[0, 2] < 0.6 < d[0, 1]  # same person mirrored and darker; another person
    assert distance(batched[0], batched[1]) == pytest.approx(d[0, 1], abs=1e-6)
    np.testing.assert_allclose(distance(batched, batched[0]), d[:, 0], atol=1e-6)


def test_add_prev_zero_extends_to_the_larger_shape():
    a = torch.ones(1, 2, 3, 3)
    b = torch.full((1, 1, 4, 4), 10.0)
    out = add_prev(a, b)
    assert out.shape == (1, 2, 4, 4)
    assert out[0, 0, :3, :3].eq(11).all() and out[0, 0, 3].eq(10).all()
    assert out[0, 1, :3, :3].eq(1).all()
    assert out[0, 1, 3].eq(0).all() and out[0, 1, :, 3].eq(0).all()


def test_folded_model_equals_the_unfolded_one():
    torch.manual_seed(0)
    model = DlibFaceResNet().eval()
    for name, p in model.named_parameters():  # conv and fc keep their default (Kaiming) init
        if name.endswith("affine.scale"):
            torch.nn.init.uniform_(p, 0.5, 1.5)
        elif name.endswith("affine.shift"):
            torch.nn.init.normal_(p, std=0.1)
    x = torch.rand(1, 3, 150, 150) * 255
    with torch.no_grad():
        torch.testing.assert_close(fold_affine(model)(x), model(x), atol=1e-5, rtol=1e-4)


def test_conversion_is_cached(tmp_path, monkeypatch, encoder):
    monkeypatch.setattr(encoder_mod, "_cache_dir", lambda: tmp_path)
    first, model_id = encoder_mod.converted_dlib_model()
    (cached,) = tmp_path.glob("*.safetensors")
    assert model_id == encoder.model_id and model_id.startswith("dlib_resnet_v1:")
    expected = encoder.model.state_dict()
    with monkeypatch.context() as m:
        m.setattr(encoder_mod, "read_dlib_net", lambda p: pytest.fail("parsed again"))
        second, _ = encoder_mod.converted_dlib_model()
    for k, v in second.state_dict().items():
        torch.testing.assert_close(v, expected[k], atol=0, rtol=0)
    cached.write_bytes(b"damaged")  # a damaged cache is rebuilt from the .dat
    third, _ = encoder_mod.converted_dlib_model()
    torch.testing.assert_close(third.fc.weight, expected["fc.weight"], atol=0, rtol=0)
    assert cached.stat().st_size > 1_000_000


def test_fine_tuned_checkpoint_round_trip(tmp_path, chips, encoder):
    state = {k: v.clone() for k, v in encoder.model.state_dict().items()}
    state["fc.weight"] *= 2
    path = tmp_path / "model.pt"
    torch.save({"state_dict": state, "model_id": "my-ft:1", "arch": "dlib_resnet_v1"}, path)
    tuned = FaceEncoder.load(path)
    assert tuned.model_id == "my-ft:1"
    np.testing.assert_allclose(tuned.embed(chips[:1]), 2 * encoder.embed(chips[:1]), rtol=1e-5)
    torch.save({"state_dict": state}, tmp_path / "anon.pt")
    assert FaceEncoder.load(tmp_path / "anon.pt").model_id.startswith("dlib_resnet_v1-custom:")
    torch.save({"state_dict": state, "arch": "resnet18"}, tmp_path / "other.pt")
    with pytest.raises(WeightsError, match="architecture"):
        FaceEncoder.load(tmp_path / "other.pt")
    torch.save({"state_dict": {"fc.weight": torch.zeros(3)}}, tmp_path / "bad.pt")
    with pytest.raises(WeightsError, match="do not fit"):
        FaceEncoder.load(tmp_path / "bad.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="readable"):
        FaceEncoder.load(tmp_path / "junk.pt")
    with pytest.raises(WeightsError, match="no such"):
        FaceEncoder.load(tmp_path / "missing.pt")


def test_bad_chips_are_shape_errors(encoder):
    with pytest.raises(ShapeError, match=r"\(N, 150, 150, 3\)"):
        encoder.embed(np.zeros((2, 100, 100, 3), np.uint8))
    with pytest.raises(ShapeError, match="uint8"):
        encoder.embed(np.zeros((150, 150, 3), np.float32))
