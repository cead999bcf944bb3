"""Instructor solutions for the exercises of notebook 12 (video to video). Try them yourself first!"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange


def mean_pool(sil, level):
    """Exercise 1. Each cell of side H / 2^level holds the fraction of its pixels with ink; zeros at level 0."""
    b, _, f, size, _ = sil.shape
    if level == 0:
        return torch.zeros_like(sil)
    k = size // 2**level
    frames = rearrange(sil, "b c f h w -> (b f) c h w")  # (b·f, 1, H, W)
    coarse = F.avg_pool2d(frames, k)  # (b·f, 1, 2^L, 2^L)
    fine = F.interpolate(coarse, scale_factor=k, mode="nearest")  # (b·f, 1, H, W)
    return rearrange(fine, "(b f) c h w -> b c f h w", b=b)


leak_guess = "rises"  # Exercise 2: the finer the map, the more of the input's shape shows through


def temporal_mix(video, image, omega):
    """Exercise 3. Gen-1's temporal-consistency guidance."""
    return image + omega * (video - image)
