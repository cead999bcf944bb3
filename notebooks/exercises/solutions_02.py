"""Instructor solutions for the exercises of notebook 02 (the forward process). Try them yourself first!"""

from __future__ import annotations

import torch


def my_video_q_sample(x0, t, eps, alpha_bar):
    """Exercise 1. DDPM eq. (4): x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε, with one step per sample."""
    a = alpha_bar[t].to(x0.dtype).view(-1, *[1] * (x0.ndim - 1))  # (b,) → (b, 1, 1, 1, 1): broadcasts over c, f, h, w
    return a.sqrt() * x0 + (1 - a).sqrt() * eps


def half_signal_step(schedule):
    """Exercise 2. The first step t (from 0) where ᾱ_t < 0.5: half of x₀'s power is gone."""
    return int((schedule.alpha_bar < 0.5).nonzero()[0])


def my_v_to_x0(x_t, t, v, alpha_bar):
    """Exercise 3. Salimans & Ho 2022, App. D: x₀ = √ᾱ_t·x_t − √(1−ᾱ_t)·v."""
    a = alpha_bar[t].to(x_t.dtype).view(-1, *[1] * (x_t.ndim - 1))  # (b, 1, 1, 1, 1)
    return a.sqrt() * x_t - (1 - a).sqrt() * v


def my_zero_terminal_snr(betas):
    """Exercise 4. Lin et al. 2024, Algorithm 1: shift √ᾱ so its last value is 0, scale so its first is unchanged."""
    sqrt_ab = torch.cumprod(1 - betas, 0).sqrt()  # (T,)
    first, last = sqrt_ab[0].clone(), sqrt_ab[-1].clone()
    sqrt_ab = (sqrt_ab - last) * first / (first - last)
    ab = sqrt_ab**2
    alphas = torch.cat([ab[:1], ab[1:] / ab[:-1]])  # α_t = ᾱ_t / ᾱ_{t−1}
    return 1 - alphas
