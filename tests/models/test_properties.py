"""Property tests: the notes' size formula and closed-form parameter counts, on the meta device."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cnnkit.models.summary import parse_input_size, summarize_model


def out_size(n: int, f: int, p: int, s: int) -> int:
    """The notes: n_out = floor((n + 2p - f) / s) + 1."""
    return (n + 2 * p - f) // s + 1


@settings(max_examples=5, deadline=None)
@given(h=st.integers(33, 300), w=st.integers(33, 300))
def test_resnet18_shapes_follow_the_size_formula(h: int, w: int) -> None:
    rows = {r.name: r.output for r in summarize_model("resnet18", (3, h, w)).rows}

    def trunk(n: int) -> list[int]:
        sizes = [out_size(n, 7, 3, 2)]  # conv1 7x7/2, pad 3
        sizes.append(out_size(sizes[-1], 3, 1, 2))  # max pool 3x3/2, pad 1
        for _ in range(3):  # first conv of layer2..4: 3x3/2, pad 1
            sizes.append(out_size(sizes[-1], 3, 1, 2))
        return sizes

    hs, ws = trunk(h), trunk(w)
    assert rows["conv1"] == (64, hs[0], ws[0])
    assert rows["maxpool"] == (64, hs[1], ws[1])
    assert rows["layer1.1.conv2"] == (64, hs[1], ws[1])
    assert rows["layer2.0.downsample.0"] == (128, hs[2], ws[2])
    assert rows["layer4.1.bn2"] == (512, hs[4], ws[4])
    assert rows["fc"] == (1000,)


@settings(max_examples=5, deadline=None)
@given(n=st.integers(1, 12), classes=st.integers(2, 50))
def test_cifar_resnet_parameter_count_closed_form(n: int, classes: int) -> None:
    from cnnkit.models import resnet_cifar

    depth = 6 * n + 2
    # convs: stem 3->16, then per stage n blocks of two 3x3 convs; the first block of stages 2
    # and 3 reads the previous width. BN: 2 parameters per channel after each conv.
    convs = 3 * 16 + 2 * n * 16 * 16
    convs += (16 * 32 + 32 * 32) + (2 * n - 2) * 32 * 32
    convs += (32 * 64 + 64 * 64) + (2 * n - 2) * 64 * 64
    bn = 2 * (16 + 2 * n * (16 + 32 + 64))
    expected = 9 * convs + bn + 64 * classes + classes
    for residual in (True, False):
        model = resnet_cifar(depth, residual=residual, num_classes=classes)
        assert sum(p.numel() for p in model.parameters()) == expected


@settings(max_examples=20, deadline=None)
@given(c=st.integers(1, 512), h=st.integers(1, 4096), w=st.integers(1, 4096))
def test_parse_input_size_round_trip(c: int, h: int, w: int) -> None:
    assert parse_input_size(f"{c}x{h}x{w}") == (c, h, w)
    assert parse_input_size(f" {c} X {h} x {w} ") == (c, h, w)
