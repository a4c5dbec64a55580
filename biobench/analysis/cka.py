"""Linear centered kernel alignment (CKA; Kornblith et al. 2019) between two sets of representations.

For n examples with features X (n x p) and Y (n x q), columns centered:

    CKA(X, Y) = ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F)

which equals HSIC(XX^T, YY^T) / sqrt(HSIC(XX^T, XX^T) HSIC(YY^T, YY^T)) with linear kernels. It is 1 for
identical representations and invariant to orthogonal transforms and isotropic scaling of either side (not
to arbitrary invertible maps). Computed in float64: with a few hundred examples the similarities of
neighbouring checkpoints sit within 1e-3 of 1, where float32 rounding would swamp 1 - CKA.
With n not much larger than the width, CKA is biased towards 1 for any pair; use many examples (the
command's --min-docs) and compare against a control measured on the same examples.
"""

from __future__ import annotations

import numpy as np


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA of two (n_examples, features) matrices of the same examples, in float64."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(f"linear_cka: expected two (n, features) matrices of the same n, got {x.shape} and {y.shape}")
    if x.shape[0] < 2:
        raise ValueError(f"linear_cka: expected at least 2 examples, got {x.shape[0]}")
    x = x - x.mean(axis=0, keepdims=True)
    y = y - y.mean(axis=0, keepdims=True)
    cross = np.linalg.norm(y.T @ x) ** 2
    norm_x = np.linalg.norm(x.T @ x)
    norm_y = np.linalg.norm(y.T @ y)
    if norm_x == 0 or norm_y == 0:
        raise ValueError("linear_cka: a representation is constant over the examples (zero variance)")
    return float(cross / (norm_x * norm_y))


def layerwise_cka(a: list[np.ndarray], b: list[np.ndarray]) -> list[float]:
    """CKA of layer i of `a` with layer i of `b`, for every layer (the lists hold one matrix per layer)."""
    if len(a) != len(b):
        raise ValueError(f"layerwise_cka: {len(a)} layers against {len(b)}")
    return [linear_cka(x, y) for x, y in zip(a, b)]
