"""Triplet loss against hand-computed values; mining against a loop oracle."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnkit.errors import CnnkitError, ShapeError
from cnnkit.face.losses import (
    batch_hard_triplets,
    mined_triplet_loss,
    pairwise_sq_distances,
    semi_hard_triplets,
    triplet_loss,
)


def test_triplet_loss_hand_computed() -> None:
    a = torch.tensor([[0.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    p = torch.tensor([[1.0, 0.0], [0.0, 0.5], [1.0, 3.0]])  # ||A-P||^2 = 1, 0.25, 4
    n = torch.tensor([[0.0, 1.0], [3.0, 0.0], [2.0, 1.0]])  # ||A-N||^2 = 1, 9, 1
    # max(1 - 1 + 0.2, 0) = 0.2; max(0.25 - 9 + 0.2, 0) = 0; max(4 - 1 + 0.2, 0) = 3.2
    per = triplet_loss(a, p, n, margin=0.2, reduction="none")
    torch.testing.assert_close(per, torch.tensor([0.2, 0.0, 3.2]))
    assert float(triplet_loss(a, p, n, margin=0.2)) == pytest.approx(3.4 / 3)
    assert float(triplet_loss(a, p, n, margin=0.2, reduction="sum")) == pytest.approx(3.4)
    assert float(triplet_loss(a, p, n, margin=0.0)) == pytest.approx(3.0 / 3)


def test_triplet_loss_gradient() -> None:
    g = torch.Generator().manual_seed(0)
    a, p, n = (
        torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(3)
    )
    assert torch.autograd.gradcheck(lambda a, p, n: triplet_loss(a, p, n, 0.5), (a, p, n))


def test_triplet_loss_errors() -> None:
    with pytest.raises(ShapeError, match=r"\(m, d\)"):
        triplet_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(3, 3))
    with pytest.raises(CnnkitError, match="reduction"):
        triplet_loss(torch.zeros(1, 2), torch.zeros(1, 2), torch.zeros(1, 2), reduction="max")
    with pytest.raises(CnnkitError, match="mining"):
        mined_triplet_loss(torch.zeros(2, 2), torch.tensor([0, 1]), mining="random")


def test_semi_hard_on_a_line() -> None:
    # 1-D points; person 0 at 0 and 1; negatives (person 1) at 1.2, 1.5, 5.
    e = torch.tensor([[0.0], [1.0], [1.2], [1.5], [5.0]])
    labels = torch.tensor([0, 0, 1, 1, 1])
    a, p, n = semi_hard_triplets(e, labels, margin=1.0)
    triplets = {(int(i), int(j)): int(k) for i, j, k in zip(a, p, n, strict=True)}
    # anchor 0, positive 1: d(a,p)=1; negatives farther than 1: 1.44 (idx 2), 2.25, 25 -> idx 2
    assert triplets[(0, 1)] == 2
    # anchor 1, positive 0: d(a,p)=1; negatives 0.04, 0.25, 16 -> only 16 is farther -> idx 4
    assert triplets[(1, 0)] == 4
    # anchor 2 (person 1), positive 3: d=0.09; negatives: d to 0 = 1.44, to 1 = 0.04 -> 1.44
    assert triplets[(2, 3)] == 0
    # anchor 4, positive 2: d = 14.44; negatives 25 (idx 0), 16 (idx 1) -> the closer, idx 1
    assert triplets[(4, 2)] == 1
    # anchor 2, positive 4: d = 14.44; negatives 1.44, 0.04 -> none farther: the farthest, idx 0
    assert triplets[(2, 4)] == 0


def test_batch_hard_on_a_line() -> None:
    e = torch.tensor([[0.0], [1.0], [3.0], [1.2], [1.5]])
    labels = torch.tensor([0, 0, 0, 1, 1])
    a, p, n = batch_hard_triplets(e, labels)
    assert a.tolist() == [0, 1, 2, 3, 4]
    assert p.tolist() == [2, 2, 0, 4, 3]  # farthest positive
    assert n.tolist() == [3, 3, 4, 1, 1]  # closest negative


def _oracle_semi_hard(d2: np.ndarray, labels: np.ndarray) -> dict:
    out = {}
    for i in range(len(labels)):
        for j in range(len(labels)):
            if i == j or labels[i] != labels[j]:
                continue
            negs = [k for k in range(len(labels)) if labels[k] != labels[i]]
            if not negs:
                continue
            farther = [k for k in negs if d2[i, k] > d2[i, j]]
            out[(i, j)] = min(d2[i, k] for k in farther) if farther else max(d2[i, k] for k in negs)
    return out


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    b=st.integers(2, 10),
    n_classes=st.integers(1, 4),
)
def test_mining_matches_loop_oracle(seed: int, b: int, n_classes: int) -> None:
    rng = np.random.default_rng(seed)
    e = torch.tensor(rng.normal(size=(b, 3)), dtype=torch.float64)
    labels = torch.tensor(rng.integers(0, n_classes, size=b))
    d2 = ((e[:, None] - e[None]) ** 2).sum(-1).numpy()
    np.testing.assert_allclose(pairwise_sq_distances(e).numpy(), d2, atol=1e-9)
    lab = labels.numpy()
    oracle = _oracle_semi_hard(d2, lab)
    a, p, n = semi_hard_triplets(e, labels, margin=0.3)
    got = {(int(i), int(j)): d2[i, k] for i, j, k in zip(a, p, n, strict=True)}
    assert got.keys() == oracle.keys()
    for key, value in oracle.items():
        assert got[key] == pytest.approx(value)
    a, p, n = batch_hard_triplets(e, labels)
    for i, j, k in zip(a.tolist(), p.tolist(), n.tolist(), strict=True):
        assert lab[j] == lab[i] and j != i and lab[k] != lab[i]
        pos = [d2[i, x] for x in range(b) if x != i and lab[x] == lab[i]]
        neg = [d2[i, x] for x in range(b) if lab[x] != lab[i]]
        assert d2[i, j] == pytest.approx(max(pos)) and d2[i, k] == pytest.approx(min(neg))


def test_mined_loss_and_active_fraction() -> None:
    e = torch.tensor([[0.0], [1.0], [1.2], [1.5]], requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1])
    loss, active, count = mined_triplet_loss(e, labels, margin=0.2, mining="batch-hard")
    # anchors: 0:(p=1 d=1, n=2 d=1.44) -> 0; 1:(p=0 d=1, n=2 d=.04) -> 1.16;
    # 2:(p=3 d=.09, n=1 d=.04) -> .25; 3:(p=2 d=.09, n=1 d=.25) -> .04
    assert count == 4 and active == pytest.approx(0.75)
    assert float(loss.detach()) == pytest.approx((0 + 1.16 + 0.25 + 0.04) / 4, abs=1e-6)
    loss.backward()
    assert e.grad is not None and float(e.grad.abs().sum()) > 0
    # One class only: no triplet, zero loss that still backpropagates.
    loss, active, count = mined_triplet_loss(e, torch.tensor([0, 0, 0, 0]))
    assert count == 0 and float(loss.detach()) == 0.0 and active == 0.0
