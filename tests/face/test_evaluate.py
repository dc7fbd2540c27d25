"""LFW pairs reader, threshold choice, the k-fold protocol, ROC numbers and the ROC figure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from cnnkit.errors import CnnkitError
from cnnkit.face.evaluate import (
    accuracy_at,
    best_threshold,
    evaluate_distances,
    kfold_accuracy,
    pair_distances,
    plot_roc,
    read_pairs,
    roc_auc,
    tar_at_far,
)


def test_read_pairs_lfw_format(tmp_path: Path) -> None:
    text = "2\t1\nAda\t1\t2\nAda\t1\tBob\t3\nCy\t4\t10\nCy\t2\tDee_Dee\t1\n"
    path = tmp_path / "pairs.txt"
    path.write_text(text)
    pairs = read_pairs(path)
    assert [(p.first, p.second, p.same, p.fold) for p in pairs] == [
        ("Ada/Ada_0001.jpg", "Ada/Ada_0002.jpg", True, 0),
        ("Ada/Ada_0001.jpg", "Bob/Bob_0003.jpg", False, 0),
        ("Cy/Cy_0004.jpg", "Cy/Cy_0010.jpg", True, 1),
        ("Cy/Cy_0002.jpg", "Dee_Dee/Dee_Dee_0001.jpg", False, 1),
    ]
    path.write_text(text.split("\n", 1)[1])  # no header: one fold
    assert {p.fold for p in read_pairs(path)} == {0}
    path.write_text("1\t1\nAda\t1\t2\nAda\tx\tBob\n")
    with pytest.raises(CnnkitError, match="line 3 is not an LFW pair"):
        read_pairs(path)
    path.write_text("2\t1\nAda\t1\t2\nAda\t1\tBob\t3\n")
    with pytest.raises(CnnkitError, match="header says 2 folds"):
        read_pairs(path)


def test_best_threshold_hand_example() -> None:
    d = np.array([0.1, 0.2, 0.35, 0.5, 0.7, 0.9])
    same = np.array([True, True, False, True, False, False])
    tau, acc = best_threshold(d, same)
    # Cuts after 2 sorted pairs (tau=0.275) or after 4 (tau=0.6) both give 5/6; middle of the
    # best candidates -> the later index (2 candidates: picks index len//2 = second).
    assert acc == pytest.approx(5 / 6)
    assert tau == pytest.approx(0.6)
    assert accuracy_at(d, same, tau) == pytest.approx(5 / 6)
    assert accuracy_at(d, same, 0.275) == pytest.approx(5 / 6)
    # Ties: both pairs at the same distance cannot be split.
    tau, acc = best_threshold(np.array([0.5, 0.5]), np.array([True, False]))
    assert acc == pytest.approx(0.5)


def _oracle_kfold(d, same, folds):
    accs = []
    for k in np.unique(folds):
        held = folds == k
        cands = np.concatenate([[d.min() - 1], d, [d.max() + 1]])
        train_acc = [np.mean((d[~held] <= t) == same[~held]) for t in cands]
        best = max(train_acc)
        # any threshold achieving the best training accuracy; report the set of test accuracies
        pairs = zip(cands, train_acc, strict=True)
        tests = {np.mean((d[held] <= t) == same[held]) for t, a in pairs if a == best}
        accs.append(tests)
    return accs


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(20, 60))
def test_kfold_matches_oracle(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    same = rng.random(n) < 0.5
    same[:2] = [True, False]
    d = np.round(np.where(same, rng.normal(0.4, 0.15, n), rng.normal(0.8, 0.15, n)), 2)
    folds = np.arange(n) * 4 // n
    result = kfold_accuracy(d, same, folds=folds)
    oracle = _oracle_kfold(d, same, folds)
    assert len(result.accuracies) == 4
    for acc, allowed in zip(result.accuracies, oracle, strict=True):
        # The chosen tau lies strictly between distances, so its test accuracy is one of those
        # reachable by some best-on-training threshold.
        assert any(abs(acc - a) < 1e-12 for a in allowed) or min(allowed) <= acc <= max(allowed)
    assert result.mean == pytest.approx(np.mean(result.accuracies))
    assert result.se == pytest.approx(np.std(result.accuracies, ddof=1) / 2)
    # contiguous n_folds split equals explicit contiguous folds
    assert kfold_accuracy(d, same, n_folds=4).accuracies == result.accuracies


def test_kfold_perfectly_separable() -> None:
    d = np.tile([0.2, 0.3, 0.9, 1.0], 10)
    same = np.tile([True, True, False, False], 10)
    result = kfold_accuracy(d, same, n_folds=10)
    assert result.mean == 1.0 and result.se == 0.0
    assert all(0.3 < t < 0.9 for t in result.thresholds)


def test_auc_and_tar_against_counting() -> None:
    rng = np.random.default_rng(1)
    n = 400
    same = np.arange(n) < 200
    d = np.where(same, rng.normal(0.4, 0.1, n), rng.normal(0.7, 0.1, n))
    pos, neg = d[same], d[~same]
    auc = np.mean(pos[:, None] < neg[None, :])  # P(matched pair closer), no ties in floats
    assert roc_auc(d, same) == pytest.approx(auc, abs=1e-12)
    # TAR at FAR = 1e-2 with 200 negatives: at most 2 false accepts.
    t = np.sort(neg)[2]  # threshold just below the third-closest impostor
    expected = np.mean(pos < t)
    assert tar_at_far(d, same, far=1e-2) == pytest.approx(expected)
    # FAR 1e-3 < 1/200: no false accept allowed.
    assert tar_at_far(d, same, far=1e-3) == pytest.approx(np.mean(pos < neg.min()))


def test_evaluate_distances_and_roc_png(tmp_path: Path) -> None:
    d = np.array([0.1, 0.2, 0.3, 0.5, 0.6, 0.8, 0.9, 1.0])
    same = np.array([True, True, True, False, True, False, False, False])
    ev = evaluate_distances(d, same, tau=0.55, n_folds=2)
    js = ev.as_json()
    assert set(js) >= {
        "accuracy_at_tau",
        "tau",
        "accuracy_kfold",
        "accuracy_kfold_se",
        "auc",
        "tar_at_far_1e-3",
    }
    assert js["accuracy_at_tau"] == pytest.approx(6 / 8)
    assert js["auc"] == pytest.approx(15 / 16)
    png = plot_roc(d, same, tmp_path / "roc.png")
    with Image.open(png) as im:
        assert im.format == "PNG" and im.size[0] > 100


def test_pair_distances_embeds_each_image_once(tmp_path: Path) -> None:
    files = [("Ada/Ada_0001.jpg", 10), ("Ada/Ada_0002.jpg", 13), ("Bob/Bob_0001.jpg", 50)]
    for name, value in files:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        Image.new("RGB", (8, 8), (value, 0, 0)).save(tmp_path / name, format="PNG")
    pairs_file = tmp_path / "pairs.txt"
    pairs_file.write_text("Ada\t1\t2\nAda\t1\tBob\t1\nAda\t2\tBob\t1\n")
    calls = []

    def embed(paths):
        calls.extend(paths)
        return np.array([[np.asarray(Image.open(p))[0, 0, 0] / 10.0, 0.0] for p in paths])

    d = pair_distances(read_pairs(pairs_file), tmp_path, embed, batch_size=2)
    np.testing.assert_allclose(d, [0.3, 4.0, 3.7], atol=1e-9)
    assert len(calls) == 3
    with pytest.raises(CnnkitError, match="missing"):
        pair_distances(read_pairs(pairs_file), tmp_path / "Ada", embed)
