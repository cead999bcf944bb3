"""Instructor solutions for the exercises of notebook 06 (training the denoiser). Try them yourself first!"""

from __future__ import annotations

import torch


def eps_loss(model, x0, t, noise, alpha_bar):
    """Exercise 1. DDPM eq. 14: ‖ε − ε_θ(√ᾱ_t·x₀ + √(1−ᾱ_t)·ε, t)‖², averaged."""
    ab = alpha_bar[t].to(x0.dtype).view(-1, *[1] * (x0.ndim - 1))  # (b,) -> (b, 1, 1, 1, 1)
    x_t = ab.sqrt() * x0 + (1 - ab).sqrt() * noise  # DDPM eq. 4
    return (model(x_t, t) - noise).pow(2).mean()


def min_snr_eps(snr, gamma):
    """Exercise 2. Hang et al. 2023: w = min(SNR, γ)/SNR = min(1, γ/SNR), which is 1 (not 0/0) at SNR = 0."""
    return (gamma / snr).clamp(max=1.0)


@torch.no_grad()
def ema_update(ema_params, params, decay):
    """Exercise 3. θ_ema ← d·θ_ema + (1 − d)·θ, in place."""
    for e, p in zip(ema_params, params):
        e.lerp_(p, 1 - decay)
