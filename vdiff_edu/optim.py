"""The optimizer and learning-rate schedule every network here trains with: the denoiser, the autoencoder and the
evaluation's feature networks.

    AdamW (Loshchilov & Hutter 2019)   weight decay on weight matrices and kernels only, never on biases or norms
    warm-up + cosine                   a linear ramp to the peak learning rate over ``warmup`` steps, then half a
                                       cosine down to ``min_ratio`` × the peak at the last step (Loshchilov &
                                       Hutter 2017, SGDR; warm-up as in Goyal et al. 2017)

    optimizer = adamw_with_decay_groups(model, lr=1e-3, weight_decay=0.01)
    scheduler = warmup_cosine_scheduler(optimizer, warmup=100, total=3_000, min_ratio=0.1)
    for step in range(3_000):
        ...; optimizer.step(); scheduler.step()

This module imports nothing from the rest of the package, so the evaluation sub-package can use it too.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def warmup_cosine(step: int, warmup: int, total: int, min_ratio: float) -> float:
    """The learning-rate multiplier at ``step`` (0-based): ``(step + 1) / warmup`` during warm-up, then

        min_ratio + (1 − min_ratio) · ½ · (1 + cos(π · progress)),   progress = (step − warmup) / (total − warmup)

    which is 1 right after warm-up and ``min_ratio`` at ``step = total``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def warmup_cosine_scheduler(optimizer: torch.optim.Optimizer, warmup: int, total: int,
                            min_ratio: float = 0.1) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` that multiplies each group's peak ``lr`` by ``warmup_cosine(step, ...)``; its state (the step)
    is saved with a checkpoint."""
    if warmup < 0 or total < 1 or not 0 <= min_ratio <= 1:
        raise ValueError(f"warm-up/cosine needs warmup >= 0, total >= 1 and 0 <= min_ratio <= 1; "
                         f"got warmup={warmup}, total={total}, min_ratio={min_ratio}")
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: warmup_cosine(step, warmup, total, min_ratio))


def adamw_with_decay_groups(model: nn.Module, lr: float, weight_decay: float = 0.0,
                            betas: tuple[float, float] = (0.9, 0.999), fused: bool = False) -> torch.optim.AdamW:
    """AdamW over the trainable parameters of ``model``: decoupled weight decay on tensors of 2 or more axes
    (weight matrices, convolution kernels, embedding tables), none on biases and normalisation scales."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=betas, fused=fused)
