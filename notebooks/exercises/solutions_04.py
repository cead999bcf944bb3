"""Instructor solutions for the exercises of notebook 04 (temporal attention). Try them yourself first!"""

from __future__ import annotations

import torch
from einops import rearrange


def temporal_tokens(x):
    """Exercise 1. Every pixel becomes a sequence of f frames: (b, c, f, h, w) -> (b·h·w, f, c)."""
    return rearrange(x, "b c f h w -> (b h w) f c")


def relative_bias(table, num_frames):
    """Exercise 2. bias[head, i, j] = table[head, (j - i) + max_frames - 1], with table (heads, 2·max_frames - 1)."""
    max_frames = (table.shape[1] + 1) // 2
    pos = torch.arange(num_frames)
    offset = pos[None, :] - pos[:, None]  # (f, f): j - i
    return table[:, offset + max_frames - 1]  # (heads, f, f)


def causal_mask(num_frames):
    """Exercise 3. Frame i may attend to frames j <= i (True = allowed): the lower triangle."""
    return torch.ones(num_frames, num_frames, dtype=torch.bool).tril()


def rotary(x, positions):
    """Exercise 4. RoFormer (Su et al. 2021), eq. 34: rotate each pair (x_2i, x_2i+1) by the angle pos · θ_i,
    θ_i = 10000^(-2i/d). Then (R_m q) · (R_n k) depends on m and n only through m - n."""
    d = x.shape[-1]
    theta = 10_000 ** (-torch.arange(0, d, 2, dtype=torch.float32) / d)  # (d/2,)
    angle = positions.float()[:, None] * theta[None, :]  # (f, d/2)
    cos, sin = angle.cos(), angle.sin()
    x1, x2 = x[..., 0::2], x[..., 1::2]  # the two halves of every pair, (..., f, d/2)
    out = torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)  # (..., f, d/2, 2)
    return out.flatten(-2)  # (..., f, d)
