"""Checks for the exercises of notebook 05 (the autoencoder of the latent space).

Each ``check_*`` takes your answer, prints what is right or wrong with a hint, and returns a verdict: true
or false in code, invisible in a notebook (a cell ending with a check shows only its message).
It never raises: an exercise you have not tried yet (``None``, or a function that still raises
``NotImplementedError``) just gets a friendly reminder, so the notebook runs top to bottom.
"""

from __future__ import annotations

import math

import torch

from vdiff_edu.similarity import psnr

from ._checking import call, fail, ok, verdict


def _as_float_tensor(out):
    if isinstance(out, (int, float)):
        return torch.tensor(float(out), dtype=torch.float64)
    if isinstance(out, torch.Tensor):
        return out.double()
    return None


# ----------------------------------------------------------------------------------------------------------------
# Exercise 1: PSNR


@verdict
def check_psnr(fn) -> bool:
    """``fn(x, y, data_range=2.0)`` must return the PSNR of each image of x (..., h, w), in dB."""
    name = "Exercise 1 (PSNR)"
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 1, 3, 8, 8, generator=g, dtype=torch.float64) * 2 - 1  # (b, c, f, h, w)
    y = (x + 0.1 * torch.randn(x.shape, generator=g, dtype=torch.float64)).clamp(-1, 1)
    out, msg = call(fn, name, x, y)
    if msg:
        print(msg)
        return False
    expected = psnr(x, y)  # (2, 1, 3)
    out = _as_float_tensor(out)
    if out is None:
        return fail(f"{name}: expected a tensor, got {type(out).__name__}.", "return the PSNR, don't print it.")
    if out.shape != expected.shape:
        if out.numel() == 1 and math.isclose(out.item(), psnr(x, y).mean().item(), rel_tol=0.02):
            return fail(f"{name}: you returned one number; we want one PSNR per image, shape {tuple(expected.shape)}.",
                        "take the mean over the last two axes only: ((x - y) ** 2).mean(dim=(-2, -1)).")
        return fail(f"{name}: shape {tuple(out.shape)}, expected {tuple(expected.shape)} (one value per image).",
                    "average the squared error over h and w only: dim=(-2, -1).")
    if torch.allclose(out, expected, rtol=1e-6):
        return ok(f"{name}: correct. {expected.mean():.2f} dB on average for noise of std 0.1.")
    if torch.allclose(out, expected * math.log(10), rtol=1e-6):
        return fail(f"{name}: off by a factor ln(10).", "decibels use log base 10: torch.log10, not torch.log.")
    if torch.allclose(out, expected / 2, rtol=1e-6) or torch.allclose(out, expected - 10 * math.log10(2), rtol=1e-6):
        return fail(f"{name}: the peak is not squared, or not data_range.",
                    "PSNR = 10·log10(L² / MSE) with L = data_range = 2 for pixels in [-1, 1].")
    return fail(f"{name}: values differ, e.g. {out.flatten()[0]:.3f} dB instead of {expected.flatten()[0]:.3f} dB.",
                "MSE = mean of (x − y)² over h and w; PSNR = 10·log10(data_range² / MSE).")


# ----------------------------------------------------------------------------------------------------------------
# Exercise 2: the latent shape


@verdict
def check_latent_shape(fn) -> bool:
    """``fn(video_shape, latent_channels, channel_mults)`` must return the latent shape as a tuple."""
    name = "Exercise 2 (latent shape)"
    cases = [((2, 1, 8, 32, 32), 4, (1, 2, 2), (2, 4, 8, 8, 8)),
             ((3, 1, 10, 64, 64), 4, (1, 2, 4), (3, 4, 10, 16, 16)),
             ((1, 1, 5, 64, 64), 8, (1, 2, 2, 4), (1, 8, 5, 8, 8)),
             ((1, 1, 2, 16, 16), 3, (1,), (1, 3, 2, 16, 16))]
    for shape, c_z, mults, expected in cases:
        out, msg = call(fn, name, shape, c_z, mults)
        if msg:
            print(msg)
            return False
        try:
            out = tuple(int(v) for v in out)
        except TypeError:
            return fail(f"{name}: expected a tuple of 5 ints, got {out!r}.", "return (b, c_z, f, h // d, w // d).")
        if out != expected:
            if len(out) == 5 and out[2] != expected[2]:
                hint = "the autoencoder works frame by frame: the number of frames f does not change."
            elif len(out) == 5 and out[1] != expected[1]:
                hint = "the latent has latent_channels channels, whatever the input's channel count."
            else:
                hint = ("each level except the last halves h and w, so d = 2 ** (len(channel_mults) - 1); "
                        "one level means no downsampling at all.")
            return fail(f"{name}: for a video {shape} with channel_mults={mults} you gave {out}, expected {expected}.",
                        hint)
    return ok(f"{name}: correct. A 32×32 frame becomes 4×8×8 = 256 numbers instead of 1024: 4× fewer.")


# ----------------------------------------------------------------------------------------------------------------
# Exercise 3: the KL term


@verdict
def check_kl(fn) -> bool:
    """``fn(mean, logvar)`` must return KL(N(mean, exp(logvar)) ‖ N(0, 1)) element by element."""
    name = "Exercise 3 (KL to the standard normal)"
    mean = torch.tensor([0.0, 1.0, 0.0, 2.0, -0.5], dtype=torch.float64)
    logvar = torch.tensor([0.0, 0.0, math.log(2.0), 0.0, -1.0], dtype=torch.float64)
    expected = 0.5 * (mean**2 + logvar.exp() - 1 - logvar)
    out, msg = call(fn, name, mean, logvar)
    if msg:
        print(msg)
        return False
    out = _as_float_tensor(out)
    if out is None or out.shape != expected.shape:
        if out is not None and out.numel() == 1:
            return fail(f"{name}: you returned one number; we want one KL per element, shape {tuple(expected.shape)}.",
                        "don't sum or average here; the model averages later.")
        return fail(f"{name}: expected a tensor of shape {tuple(expected.shape)}.", "compute it element-wise.")
    if torch.allclose(out, expected, rtol=1e-6, atol=1e-9):
        return ok(f"{name}: correct. μ = 0, σ = 1 costs nothing; moving the mean or shrinking σ costs nats.")
    if torch.allclose(out, 2 * expected, rtol=1e-6, atol=1e-9):
        return fail(f"{name}: twice the right value.", "KL = ½ (μ² + σ² − 1 − log σ²): don't forget the ½.")
    if torch.allclose(out, 0.5 * (mean**2 + logvar - 1 - logvar.exp()), rtol=1e-6, atol=1e-9):
        return fail(f"{name}: σ² and log σ² are swapped.", "logvar is log σ², so σ² = logvar.exp().")
    return fail(f"{name}: for μ=1, log σ²=0 expected 0.5, got {out[1]:.4f}.",
                "KL = ½ (μ² + σ² − 1 − log σ²) with σ² = exp(logvar) (Kingma & Welling 2014, appendix B).")


# ----------------------------------------------------------------------------------------------------------------
# Exercise 4: the scale factor


@verdict
def check_scale_factor(fn) -> bool:
    """``fn(latents)`` must return the number that makes ``latents * it`` have unit standard deviation."""
    name = "Exercise 4 (scale factor)"
    g = torch.Generator().manual_seed(0)
    z = 0.2 + 3.0 * torch.randn(4, 4, 2, 8, 8, generator=g, dtype=torch.float64)  # latents of std about 3
    expected = 1.0 / z.std()
    out, msg = call(fn, name, z)
    if msg:
        print(msg)
        return False
    out = _as_float_tensor(out)
    if out is None or out.numel() != 1:
        return fail(f"{name}: expected one number, got {out!r}.",
                    "one scale for every channel and frame: the std of z.flatten(), not per channel.")
    value = out.item()
    if math.isclose(value, expected.item(), rel_tol=1e-6):
        return ok(f"{name}: correct. (z · {value:.4f}).std() = {(z * value).std():.4f}.")
    if math.isclose(value, 1 / expected.item(), rel_tol=1e-6):
        return fail(f"{name}: you returned the std ({value:.3f}) itself.", "multiplying by std makes it std²; use 1 / std.")
    return fail(f"{name}: {value:.4f} makes the latents' std {(z * value).std():.4f}, not 1.",
                "scale = 1 / z.flatten().std(), one number over all elements (Rombach et al. 2022).")
