"""Checks for the exercises of notebook 03 (the 3-D U-Net).

Each ``check_*`` takes your answer, prints what is right or wrong with a hint, and returns a verdict: true
or false in code, invisible in a notebook (a cell ending with a check shows only its message).
It never raises: an exercise you have not tried yet (``None``, or a function that still raises
``NotImplementedError``) just gets a friendly reminder, so the notebook runs top to bottom.
"""

from __future__ import annotations

import math

import torch

from vdiff_edu.blocks import FactorizedConv, ResBlock3d
from vdiff_edu.embeddings import timestep_embedding

from ._checking import call, close, fail, ok, verdict


# ----------------------------------------------------------------------------------------------------------------
# Exercise 1: the sinusoidal timestep embedding


@verdict
def check_timestep_embedding(fn) -> bool:
    """``fn(t, dim)`` must return the (b, dim) sinusoidal embedding of ``vdiff_edu.embeddings.timestep_embedding``."""
    name = "Exercise 1 (timestep embedding)"
    t, dim = torch.tensor([0, 1, 10, 500, 999]), 16
    out, msg = call(fn, name, t, dim)
    if msg:
        print(msg)
        return False
    expected = timestep_embedding(t, dim)
    if not isinstance(out, torch.Tensor):
        return fail(f"{name}: expected a tensor, got {type(out).__name__}.", "return the embedding, don't print it.")
    if out.shape != expected.shape:
        return fail(f"{name}: shape {tuple(out.shape)}, expected {tuple(expected.shape)} = (b, dim).",
                    "make angles of shape (b, dim/2) with t[:, None] * freqs[None, :], then concatenate cos and sin "
                    "along the last axis.")
    if close(out, expected):
        return ok(f"{name}: correct. Row t=0 is [1, …, 1, 0, …, 0]: cos(0) = 1, sin(0) = 0.")
    half = dim // 2
    if close(out, torch.cat([expected[:, half:], expected[:, :half]], dim=-1)):
        return fail(f"{name}: the halves are swapped.", "put the cosines first, then the sines.")
    freqs_lin = torch.exp(-math.log(10_000) * torch.arange(half) / dim)
    ang = t.float()[:, None] * freqs_lin[None, :]
    if close(out, torch.cat([ang.cos(), ang.sin()], dim=-1)):
        return fail(f"{name}: the frequencies decay too slowly.",
                    "divide the exponent by dim/2 (the number of frequencies), not by dim: f_i = 10000^(-i/(dim/2)).")
    return fail(f"{name}: the values are off (largest error {(out.double() - expected.double()).abs().max():.3g}).",
                "f_i = exp(-ln(10000) · i / (dim/2)) for i = 0 … dim/2-1; angles = t·f_i; [cos(angles), sin(angles)].")


# ----------------------------------------------------------------------------------------------------------------
# Exercise 2: FiLM on video


@verdict
def check_film(fn) -> bool:
    """``fn(h, scale, shift)``: h (b, c, f, h, w), scale and shift (b, c) -> h · (1 + scale) + shift."""
    name = "Exercise 2 (FiLM)"
    g = torch.Generator().manual_seed(0)
    h = torch.randn(2, 3, 4, 5, 6, generator=g)
    scale, shift = torch.randn(2, 3, generator=g), torch.randn(2, 3, generator=g)
    out, msg = call(fn, name, h, scale, shift)
    if msg:
        if "must match the size" in msg or "broadcast" in msg:
            return fail(msg.removeprefix("❌ "), "scale has shape (b, c); give it shape (b, c, 1, 1, 1) so it "
                                                 "broadcasts over frames and pixels: scale[:, :, None, None, None].")
        print(msg)
        return False
    s, b = scale[:, :, None, None, None], shift[:, :, None, None, None]
    expected = h * (1 + s) + b
    if not isinstance(out, torch.Tensor) or out.shape != h.shape:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        return fail(f"{name}: got {shape}, expected a tensor of shape {tuple(h.shape)}.",
                    "reshape scale and shift to (b, c, 1, 1, 1) before combining them with h.")
    if close(out, expected):
        return ok(f"{name}: correct. With scale = shift = 0 the block is left alone: that is why (1 + scale).")
    if close(out, h * s + b):
        return fail(f"{name}: you multiplied by scale, not by (1 + scale).",
                    "the network starts with scale ≈ 0; h · (1 + scale) keeps the features instead of erasing them.")
    return fail(f"{name}: the values are off.", "h · (1 + scale) + shift, with scale and shift of shape (b, c, 1, 1, 1).")


# ----------------------------------------------------------------------------------------------------------------
# Exercise 3: how many frames does one output frame see?


def _measured_frames_seen(num_blocks: int, time_mixing: str, num_frames: int = 15) -> int:
    """Perturb each input frame of a stack of blocks; count those that change the middle output frame."""
    torch.manual_seed(0)
    blocks = [ResBlock3d(4, 4, emb_dim=4, time_mixing=time_mixing, norm_groups=2) for _ in range(num_blocks)]
    with torch.no_grad():
        for blk in blocks:
            for p in blk.parameters():
                if not p.any():
                    p.normal_(0, 0.3)  # undo the zero init so every path carries signal
        emb = torch.randn(1, 4)
        x = torch.randn(1, 4, num_frames, 3, 3)

        def run(x):
            for blk in blocks:
                x = blk(x, emb)
            return x[:, :, num_frames // 2]

        y = run(x)
        seen = 0
        for j in range(num_frames):
            x2 = x.clone()
            x2[:, :, j] += torch.randn(1, 4, 3, 3)
            seen += int((run(x2) - y).abs().max() > 1e-6)
    return seen


@verdict
def check_frames_seen(fn) -> bool:
    """``fn(num_blocks, time_mixing)``: how many input frames can change one output frame (away from the clip's ends)."""
    name = "Exercise 3 (frames seen)"
    for mode in ("spatial", "factorized", "full3d"):
        for n in (1, 2, 3):
            out, msg = call(fn, name, n, mode)
            if msg:
                print(msg)
                return False
            expected = _measured_frames_seen(n, mode)
            if out != expected:
                if mode == "spatial":
                    hint = "in spatial mode no layer looks at another frame."
                elif out == 2 * n + 1:
                    hint = "a ResBlock3d has two convolutions, and each 3-tap temporal conv reaches one frame further."
                else:
                    hint = "each 3-tap temporal conv widens the window by one frame on each side."
                return fail(f"{name}: for {n} {mode} block(s) you said {out}; measured {expected}.", hint)
    return ok(f"{name}: correct. Convolutions grow the temporal window slowly (4 frames per block); "
              "temporal attention sees every frame at once, which notebook 04 exploits.")


# ----------------------------------------------------------------------------------------------------------------
# Exercise 4: parameters of a (2+1)D convolution


@verdict
def check_factorized_params(fn) -> bool:
    """``fn(c_in, c_out)``: the number of parameters (weights and biases) of ``FactorizedConv(c_in, c_out)``."""
    name = "Exercise 4 ((2+1)D parameters)"
    for c_in, c_out in ((8, 8), (16, 32), (3, 5)):
        out, msg = call(fn, name, c_in, c_out)
        if msg:
            print(msg)
            return False
        expected = sum(p.numel() for p in FactorizedConv(c_in, c_out).parameters())
        if out != expected:
            no_bias = 9 * c_in * c_out + 3 * c_out * c_out
            if out == no_bias:
                hint = "each conv also has one bias per output channel."
            elif out == 9 * c_in * c_out + 3 * c_in * c_out + 2 * c_out:
                hint = "the temporal conv comes after the spatial one: it maps c_out channels to c_out."
            else:
                hint = "a k-tap conv from c_in to c_out channels has k·c_in·c_out weights and c_out biases."
            return fail(f"{name}: for c_in={c_in}, c_out={c_out} you said {out}; it has {expected}.", hint)
    full = 27 * 64 * 64 + 64
    fact = 9 * 64 * 64 + 3 * 64 * 64 + 128
    return ok(f"{name}: correct. At 64 → 64 channels: {fact:,} parameters instead of {full:,} for a 3×3×3 conv.")
