"""Instructor solutions for the exercises of notebook 08 (latent video diffusion)."""

from __future__ import annotations

import torch


def compression(image_size, num_frames, downsample, latent_channels):
    pixels = num_frames * image_size * image_size  # one grey channel
    latents = num_frames * latent_channels * (image_size // downsample) ** 2
    return pixels / latents


def generate(pipe, labels, seed, steps):
    g = torch.Generator().manual_seed(seed)
    cond = pipe.encode_condition(labels)
    z = pipe.initial_noise(len(labels), generator=g)
    z = pipe.denoise(z, cond, steps=steps, generator=g)
    return pipe.decode(z)


def guided(out_cond, out_uncond, scale):
    return out_uncond + scale * (out_cond - out_uncond)
