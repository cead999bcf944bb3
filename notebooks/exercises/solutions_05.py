"""Instructor solutions for the exercises of notebook 05 (the autoencoder). Try them yourself first!"""

from __future__ import annotations

import torch


def my_psnr(x, y, data_range=2.0):
    """Exercise 1. PSNR = 10·log10(L² / MSE) per image, MSE over the last two axes (h, w)."""
    err = ((x - y) ** 2).mean(dim=(-2, -1))  # (...)
    return 10 * torch.log10(data_range**2 / err)


def latent_shape(video_shape, latent_channels, channel_mults):
    """Exercise 2. Every level but the last halves h and w: d = 2**(len(channel_mults) − 1); frames are kept."""
    b, _, f, h, w = video_shape
    d = 2 ** (len(channel_mults) - 1)
    return (b, latent_channels, f, h // d, w // d)


def kl_per_element(mean, logvar):
    """Exercise 3. KL(N(μ, σ²) ‖ N(0, 1)) = ½(μ² + σ² − 1 − log σ²), element by element."""
    return 0.5 * (mean**2 + logvar.exp() - 1 - logvar)


def scale_factor_of(latents):
    """Exercise 4. Rombach et al. 2022: multiply latents by 1/std so they have unit standard deviation."""
    return 1.0 / latents.flatten().std()
