"""Instructor solutions for the exercises of notebook 09 (evaluation). Try them yourself first!"""

from __future__ import annotations

import torch


def frechet_distance_1d(x: torch.Tensor, y: torch.Tensor) -> float:
    """Exercise 1: the Fréchet distance between two sets of scalar features ``x (n,)`` and ``y (m,)``.
    In one dimension Σ^½ is the standard deviation σ, and FD = (μ_x − μ_y)² + (σ_x − σ_y)²."""
    x, y = x.double(), y.double()
    return float((x.mean() - y.mean()) ** 2 + (x.std() - y.std()) ** 2)


def mmd2_unbiased(k_xx: torch.Tensor, k_yy: torch.Tensor, k_xy: torch.Tensor) -> float:
    """Exercise 2: the unbiased MMD² from kernel matrices of two sets of m samples each (Bińkowski et al. 2018):
    within-set sums leave out the diagonal and divide by m(m − 1); the cross term is a plain mean."""
    m = k_xx.shape[0]
    within = (k_xx.sum() - k_xx.diagonal().sum() + k_yy.sum() - k_yy.diagonal().sum()) / (m * (m - 1))
    return float(within - 2 * k_xy.mean())


def naive_flicker(clips) -> float:
    """Exercise 3: the mean absolute change between consecutive frames, in [0, 1] units, with no motion
    compensation. uint8 clips ``(n, f, h, w)``."""
    x = torch.as_tensor(clips).float() / 255
    return float((x[:, 1:] - x[:, :-1]).abs().mean())
