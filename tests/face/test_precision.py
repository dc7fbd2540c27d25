"""The face encoder in fp32, bf16 and int8: what ``auto`` picks, and what each costs in accuracy.

Each path this machine can run is exercised (bf16 runs anywhere, natively where the CPU has it;
int8 needs torch's x86 engine). Descriptors are compared with fp32 on chips of the shipped faces
that calibration did not see, and same/different decisions on shipped pairs must not change.
"""

from __future__ import annotations

import platform

import numpy as np
import pytest
import torch
from PIL import Image

from cnnkit.cpu import bf16_native
from cnnkit.face.encoder import FaceEncoder, fold_affine
from cnnkit.face.pipeline import distance
from cnnkit.face.precision import (
    PRECISIONS,
    StaticFaceResNet,
    cpu_flags,
    cpu_has_int8,
    resolve_precision,
)
from tests.face.shipped import astronaut, chips_of, grace, variants
from tests.isa import run_forced

pytestmark = pytest.mark.slow  # int8 calibration and three encoders: ~10 s of CPU

#: dlib's same-person threshold.
TAU = 0.6
RUNNABLE = ["bf16"] + (["int8"] if cpu_has_int8() else [])
#: Largest descriptor change from fp32 allowed per precision (descriptor norms are ~1).
MAX_ABS = {"bf16": 0.02, "int8": 0.06}


@pytest.fixture(scope="module")
def fp32() -> FaceEncoder:
    return FaceEncoder.load()


@pytest.fixture(scope="module")
def chips() -> np.ndarray:
    """Grace Hopper x4 and the astronaut x3, transformed unlike the calibration copies."""
    g = grace().crop((0, 0, 512, 560))
    a = astronaut()
    imgs = [g, *variants(g).values(), a, variants(a)["crop"], variants(a)["rot"]]
    imgs.append(g.rotate(-4, resample=Image.Resampling.BILINEAR))
    return chips_of(imgs)


@pytest.fixture(scope="module")
def encoders(fp32) -> dict[str, FaceEncoder]:
    return {p: FaceEncoder(fp32.model, fp32.model_id, precision=p) for p in RUNNABLE}


def test_cpu_flags_are_read():
    flags = cpu_flags()
    if platform.machine().lower() in ("x86_64", "amd64"):
        assert "sse2" in flags  # every x86-64 CPU has it
    assert not bf16_native() or {"avx512_bf16", "amx_bf16"} & flags


def test_auto_chooses_by_what_the_cpu_reports(caplog):
    want = "bf16" if bf16_native() else "int8" if cpu_has_int8() else "fp32"
    with caplog.at_level("INFO", logger="cnnkit.face.precision"):
        assert resolve_precision("auto", "cpu") == want
    assert f"precision auto: {want} (" in caplog.text
    assert resolve_precision("auto", "cuda") == ("bf16" if bf16_native("cuda") else "fp32")
    for p in ("fp32", "bf16"):
        assert resolve_precision(p, "cpu") == p
    with pytest.raises(ValueError, match="auto, fp32, bf16, int8"):
        resolve_precision("fp16", "cpu")
    with pytest.raises(ValueError, match="int8"):
        resolve_precision("int8", "cuda")
    assert set(PRECISIONS) == {"auto", "fp32", "bf16", "int8"}


def test_auto_leaves_bf16_where_torch_is_forced_below_its_bf16_kernels():
    """ATEN_CPU_CAPABILITY=avx2 (ATen's bf16 not native) on any CPU: auto takes int8 or fp32."""
    code = (
        "import logging; logging.basicConfig(level=logging.INFO); "
        "from cnnkit.face.precision import cpu_has_int8, resolve_precision; "
        "print(resolve_precision('auto', 'cpu'), cpu_has_int8())"
    )
    out = run_forced(code, ATEN_CPU_CAPABILITY="avx2")
    chosen, int8 = out.stdout.split()
    assert chosen == ("int8" if int8 == "True" else "fp32")
    assert f"precision auto: {chosen} (" in out.stderr and "native bf16" in out.stderr


def test_auto_encoder_says_what_it_chose(fp32):
    enc = FaceEncoder(fp32.model, fp32.model_id, precision="auto")
    assert enc.requested_precision == "auto"
    assert enc.precision == resolve_precision("auto", "cpu") and enc.precision in repr(enc)


def test_static_graph_equals_the_folded_network(fp32, chips):
    folded = fold_affine(fp32.model).eval()
    x = torch.from_numpy(chips).permute(0, 3, 1, 2).float()
    with torch.inference_mode():
        np.testing.assert_allclose(StaticFaceResNet(folded)(x), folded(x), atol=1e-5)


@pytest.mark.parametrize("precision", RUNNABLE)
def test_descriptors_stay_close_to_fp32(precision, encoders, fp32, chips):
    enc = encoders[precision]
    assert enc.precision == precision
    ref = fp32.embed(chips)
    got = enc.embed(chips)
    assert got.shape == ref.shape and got.dtype == np.float32
    diff = float(np.abs(got - ref).max())
    assert 0 < diff <= MAX_ABS[precision], diff  # > 0: the path really changed the arithmetic


@pytest.mark.parametrize("precision", RUNNABLE)
def test_same_and_different_decisions_are_kept(precision, encoders, fp32, chips):
    ref = fp32.embed(chips)
    got = encoders[precision].embed(chips)
    d_ref = np.asarray(distance(ref, ref))
    d_got = np.asarray(distance(got, got))
    person = np.array([0] * 5 + [1] * 3 + [0])
    same = person[:, None] == person[None, :]
    assert ((d_ref < TAU) == same).all()  # the shipped pairs are decided right in fp32
    assert ((d_got < TAU) == (d_ref < TAU)).all()
    assert float(np.abs(d_got - d_ref).max()) < 0.05
