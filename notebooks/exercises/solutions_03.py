"""Instructor solutions for the exercises of notebook 03 (the 3-D U-Net). Try them yourself first!"""

from __future__ import annotations

import math

import torch


def my_timestep_embedding(t, dim):
    """Exercise 1. Vaswani et al. 2017 §3.5: [cos(t·f_i), sin(t·f_i)] with f_i = 10000^(-i / (dim/2))."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000) * torch.arange(half) / half)  # (dim/2,)
    angles = t.float()[:, None] * freqs[None, :]  # (b, dim/2)
    return torch.cat([angles.cos(), angles.sin()], dim=-1)  # (b, dim)


def film(h, scale, shift):
    """Exercise 2. FiLM: h · (1 + scale) + shift, with (b, c) vectors broadcast over (f, h, w)."""
    return h * (1 + scale[:, :, None, None, None]) + shift[:, :, None, None, None]  # (b, c, f, h, w)


def frames_seen(num_blocks, time_mixing):
    """Exercise 3. Each block has two 3-tap temporal convs (±1 frame each): ±2 frames per block."""
    if time_mixing == "spatial":
        return 1
    return 4 * num_blocks + 1


def factorized_conv_params(c_in, c_out):
    """Exercise 4. A 1×3×3 conv (9·c_in·c_out weights + c_out biases), then a 3×1×1 conv c_out → c_out."""
    return (9 * c_in * c_out + c_out) + (3 * c_out * c_out + c_out)
