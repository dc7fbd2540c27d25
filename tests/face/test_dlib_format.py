"""dlib's serialization: scalar encodings on hand-made bytes, and the real face ResNet file."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnkit.errors import WeightsError
from cnnkit.face.dlib_format import DlibFormatError, Reader, parse_dlib_net, read_dlib_net


def enc_int(v: int) -> bytes:
    """dlib's integer encoding, written independently of the reader as its second opinion."""
    mag = abs(v)
    body = mag.to_bytes(max(1, (mag.bit_length() + 7) // 8), "little")
    return bytes([len(body) | (0x80 if v < 0 else 0)]) + body


def enc_str(s: str) -> bytes:
    return enc_int(len(s)) + s.encode()


def test_integers_by_hand():
    assert Reader(b"\x01\x00").integer() == 0
    assert Reader(b"\x01\x05").integer() == 5
    assert Reader(b"\x81\x05").integer() == -5
    assert Reader(b"\x02\x2c\x01").integer() == 300
    assert Reader(b"\x82\x2c\x01").integer() == -300
    assert Reader(b"\x08" + b"\xff" * 8).integer() == 2**64 - 1
    r = Reader(b"\x01\x07\x81\x01")
    assert (r.integer(), r.integer(), r.remaining()) == (7, -1, 0)


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_integer_round_trip(v):
    assert Reader(enc_int(v)).integer() == v


def test_floats_by_hand_and_special_codes():
    # value = mantissa * 2**exponent
    assert Reader(enc_int(3) + enc_int(-1)).floating() == 1.5
    assert Reader(enc_int(-5) + enc_int(2)).floating() == -20.0
    assert Reader(enc_int(0) + enc_int(0)).floating() == 0.0
    assert Reader(enc_int(0) + enc_int(32000)).floating() == math.inf
    assert Reader(enc_int(0) + enc_int(32001)).floating() == -math.inf
    assert math.isnan(Reader(enc_int(0) + enc_int(32002)).floating())


def test_strings_bools_and_tensors():
    assert Reader(enc_str("con_4")).string() == "con_4"
    assert Reader(enc_str("")).string() == ""
    r = Reader(b"10")
    assert (r.boolean(), r.boolean()) == (True, False)
    data = np.arange(6, dtype="<f4")
    raw = enc_int(2) + b"".join(enc_int(v) for v in (1, 2, 3, 1)) + data.tobytes()
    t = Reader(raw).tensor()
    assert t.shape == (1, 2, 3, 1) and t.dtype == np.float32
    np.testing.assert_array_equal(t.reshape(-1), data)
    assert Reader(enc_int(1) + b"".join(enc_int(v) for v in (1, 32, 1, 1))).alias_tensor() == (
        1,
        32,
        1,
        1,
    )


def test_bad_bytes_are_clear_errors():
    with pytest.raises(DlibFormatError, match="truncated"):
        Reader(b"\x02\x01").integer()
    with pytest.raises(DlibFormatError, match="control byte"):
        Reader(b"\x00").integer()
    with pytest.raises(DlibFormatError, match="bool"):
        Reader(b"x").boolean()
    with pytest.raises(DlibFormatError, match="tensor version"):
        Reader(enc_int(3)).tensor()
    with pytest.raises(WeightsError, match="loss_metric_2"):
        parse_dlib_net(enc_int(1) + enc_str("loss_multiclass_log_"))
    assert Reader(b"\x00").peek_int() is None


def f(mantissa: int, exponent: int) -> bytes:
    return enc_int(mantissa) + enc_int(exponent)


def t(a: np.ndarray) -> bytes:
    return enc_int(2) + b"".join(enc_int(v) for v in a.shape) + a.astype("<f4").tobytes()


def alias(*shape: int) -> bytes:
    return enc_int(1) + b"".join(enc_int(v) for v in shape)


def _tiny_net() -> bytes:
    """A hand-made loss_metric net: input -> fc_2 (2 -> 3, no bias)."""
    empty = np.zeros((0, 0, 0, 0), np.float32)
    w = np.arange(6, dtype=np.float32).reshape(6, 1, 1, 1)
    out = enc_int(1) + enc_str("loss_metric_2") + f(1, -2) + f(3, -2)  # margin .25, thresh .75
    out += enc_int(3)  # the add_layer over the input
    out += enc_str("input_rgb_image_sized") + f(1, 0) + f(2, 0) + f(3, 0) + enc_int(150) * 2
    out += enc_str("fc_2") + enc_int(3) + enc_int(2) + t(w) + alias(2, 3, 1, 1) + alias(0, 0, 0, 0)
    out += enc_int(1) + f(1, 0) + f(1, 0) + f(1, 0) + f(0, 0)
    out += b"110" + t(empty) * 3 + enc_int(1)
    return out


def test_tiny_handmade_net():
    net = parse_dlib_net(_tiny_net())
    assert net.loss_fields == {"margin": 0.25, "dist_thresh": 0.75}
    assert net.input_mean == (1.0, 2.0, 3.0) and net.input_size == (150, 150)
    (fc,) = net.layers
    assert fc.name == "fc_2" and fc.fields["num_outputs"] == 3 and fc.fields["bias_mode"] == 1
    np.testing.assert_array_equal(fc.params.reshape(-1), np.arange(6))
    with pytest.raises(DlibFormatError, match="unexpected bytes"):
        parse_dlib_net(_tiny_net() + b"\x01\x00")
    with pytest.raises(DlibFormatError, match="truncated"):
        parse_dlib_net(_tiny_net()[:-30])


def test_the_real_face_resnet_file():
    from cnnkit.face import model_file

    net = read_dlib_net(model_file("resnet_v1"))
    assert net.loss == "loss_metric_2" and net.input_size == (150, 150)
    assert np.allclose(net.input_mean, (122.782, 117.001, 104.298), atol=1e-3)
    assert len(net.layers) == 108 and net.n_params() == 5_614_592
    names = [r.name for r in net.layers]
    assert names[:4] == ["con_4", "affine_", "relu_", "max_pool_2"]
    assert names[-2:] == ["avg_pool_2", "fc_2"] and names.count("add_prev_") == 14


def test_missing_file_is_a_weights_error(tmp_path):
    with pytest.raises(WeightsError, match="cannot read"):
        read_dlib_net(tmp_path / "nope.dat")
