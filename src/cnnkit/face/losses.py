"""The triplet loss and the mining of triplets inside a batch.

For an anchor A, a positive P (same person) and a negative N (another person), with f the
encoder and alpha the margin:

    L(A, P, N) = max(||f(A) - f(P)||^2 - ||f(A) - f(N)||^2 + alpha, 0)

and the cost over m triplets is J = (1/m) sum_i L(A(i), P(i), N(i)). Random triplets are mostly
easy (L = 0); mining picks ones that teach:

- **semi-hard** (FaceNet): for each anchor-positive pair, the closest negative that is still
  farther than the positive, d(A,P) < d(A,N) < d(A,P) + alpha; if none, the farthest negative.
- **batch-hard**: for each anchor, its farthest positive and its closest negative.

Distances here are squared Euclidean, as in the formula. A triplet is *active* when its loss > 0.
"""

from __future__ import annotations

import torch

from cnnkit.errors import CnnkitError, ShapeError

MINING = ("semi-hard", "batch-hard")


def triplet_loss(
    anchor: torch.Tensor,
    positive: torch.Tensor,
    negative: torch.Tensor,
    margin: float = 0.2,
    reduction: str = "mean",
) -> torch.Tensor:
    """Triplet loss on (m, d) encodings: mean of max(||A-P||^2 - ||A-N||^2 + margin, 0).

    Example::

        >>> a = torch.tensor([[0.0, 0.0]]); p = torch.tensor([[1.0, 0.0]])
        >>> n = torch.tensor([[0.0, 1.0]])
        >>> float(triplet_loss(a, p, n, margin=0.2))   # 1 - 1 + 0.2
        0.2

    Args:
        anchor, positive, negative: (m, d) encodings f(A), f(P), f(N).
        margin: alpha.
        reduction: "mean" (J), "sum", or "none" (the (m,) per-triplet losses).
    """
    if anchor.shape != positive.shape or anchor.shape != negative.shape or anchor.dim() != 2:
        raise ShapeError(
            "anchor, positive and negative must all be (m, d); got "
            f"{tuple(anchor.shape)}, {tuple(positive.shape)}, {tuple(negative.shape)}"
        )
    pos = (anchor - positive).pow(2).sum(dim=1)  # (m,) ||f(A) - f(P)||^2
    neg = (anchor - negative).pow(2).sum(dim=1)  # (m,) ||f(A) - f(N)||^2
    losses = torch.clamp(pos - neg + margin, min=0.0)
    if reduction == "none":
        return losses
    if reduction == "sum":
        return losses.sum()
    if reduction == "mean":
        return losses.mean() if losses.numel() else losses.sum()
    raise CnnkitError(f"reduction should be 'mean', 'sum' or 'none'. Got {reduction!r}")


def pairwise_sq_distances(embeddings: torch.Tensor) -> torch.Tensor:
    """(B, d) -> (B, B) squared Euclidean distances ||e_i - e_j||^2 (clamped at 0)."""
    sq = embeddings.pow(2).sum(dim=1)
    d2 = sq[:, None] + sq[None, :] - 2.0 * embeddings @ embeddings.T
    return d2.clamp(min=0.0)


def _masks(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same  # positives (excluding self), negatives


def semi_hard_triplets(
    embeddings: torch.Tensor, labels: torch.Tensor, margin: float = 0.2
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Semi-hard mining: one triplet per anchor-positive pair. Returns (a, p, n) index tensors.

    For each pair (a, p), n is the negative with the smallest d(a, n) > d(a, p)
    (semi-hard if it is also < d(a, p) + margin); when no negative is farther than p, the
    farthest negative. Pairs whose anchor has no negative are skipped.
    """
    with torch.no_grad():
        d2 = pairwise_sq_distances(embeddings.detach())
        pos_mask, neg_mask = _masks(labels)
        a_idx, p_idx = torch.nonzero(pos_mask, as_tuple=True)
        if len(a_idx) == 0:
            empty = torch.zeros(0, dtype=torch.long, device=embeddings.device)
            return empty, empty, empty
        d_ap = d2[a_idx, p_idx]  # (T,)
        d_an = d2[a_idx]  # (T, B)
        negs = neg_mask[a_idx]  # (T, B)
        inf = torch.tensor(float("inf"), device=d2.device)
        outside = torch.where(negs & (d_an > d_ap[:, None]), d_an, inf)
        n_outside = outside.argmin(dim=1)
        has_outside = torch.isfinite(outside.min(dim=1).values)
        n_inside = torch.where(negs, d_an, -inf).argmax(dim=1)
        n_idx = torch.where(has_outside, n_outside, n_inside)
        keep = negs.any(dim=1)
    return a_idx[keep], p_idx[keep], n_idx[keep]


def batch_hard_triplets(
    embeddings: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Batch-hard mining: for each anchor with a positive and a negative, its farthest positive
    and closest negative. Returns (a, p, n) index tensors."""
    with torch.no_grad():
        d2 = pairwise_sq_distances(embeddings.detach())
        pos_mask, neg_mask = _masks(labels)
        keep = pos_mask.any(dim=1) & neg_mask.any(dim=1)
        inf = torch.tensor(float("inf"), device=d2.device)
        p_idx = torch.where(pos_mask, d2, -inf).argmax(dim=1)
        n_idx = torch.where(neg_mask, d2, inf).argmin(dim=1)
        a_idx = torch.arange(len(labels), device=d2.device)
    return a_idx[keep], p_idx[keep], n_idx[keep]


def mined_triplet_loss(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    margin: float = 0.2,
    mining: str = "semi-hard",
) -> tuple[torch.Tensor, float, int]:
    """Mine triplets in a batch and return (J, fraction of active triplets, number of triplets).

    Args:
        embeddings: (B, d) encodings f(x) of the batch.
        labels: (B,) integer person labels.
        margin: alpha.
        mining: "semi-hard" or "batch-hard".
    """
    if embeddings.dim() != 2 or labels.shape != embeddings.shape[:1]:
        raise ShapeError(
            f"embeddings must be (B, d) and labels (B,); got {tuple(embeddings.shape)} and "
            f"{tuple(labels.shape)}"
        )
    if mining == "semi-hard":
        a, p, n = semi_hard_triplets(embeddings, labels, margin)
    elif mining == "batch-hard":
        a, p, n = batch_hard_triplets(embeddings, labels)
    else:
        raise CnnkitError(f"mining should be one of {', '.join(MINING)}. Got {mining!r}")
    if len(a) == 0:
        return embeddings.sum() * 0.0, 0.0, 0
    losses = triplet_loss(embeddings[a], embeddings[p], embeddings[n], margin, reduction="none")
    active = float((losses > 0).float().mean())
    return losses.mean(), active, len(a)
