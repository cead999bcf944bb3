"""Checks for the exercises of notebook 02 (the forward process).

Each ``check_*`` takes your answer, prints what is right or wrong with a hint, and returns a verdict: true
or false in code, invisible in a notebook (a cell ending with a check shows only its message).
It never raises: an exercise you have not tried yet (``None``, or a function that still raises
``NotImplementedError``) just gets a friendly reminder, so the notebook runs top to bottom.
"""

from __future__ import annotations

from functools import partial

import torch

from vdiff_edu.schedule import NoiseSchedule

from ._checking import call, close, fail, ok, verdict

_close = partial(close, atol=1e-6)  # the forward process is exact arithmetic: a tighter tolerance


def _video_case(seed: int = 0):
    """A small batch of video (b, c, f, h, w) with a different step per sample, and the answer's ingredients."""
    g = torch.Generator().manual_seed(seed)
    schedule = NoiseSchedule("cosine", num_steps=1000)
    x0 = torch.rand(3, 1, 4, 6, 6, generator=g, dtype=torch.float64) * 2 - 1  # (b, c, f, h, w)
    eps = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    t = torch.tensor([10, 500, 900])
    return schedule, x0, eps, t


# ----------------------------------------------------------------------------------------------------------------
# Exercise 1: q_sample that works on video


@verdict
def check_q_sample(fn) -> bool:
    """``fn(x0, t, eps, alpha_bar)`` must return x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε for video (b, c, f, h, w), t (b,)."""
    name = "Exercise 1 (q_sample on video)"
    schedule, x0, eps, t = _video_case()
    ab = schedule.alpha_bar
    out, msg = call(fn, name, x0, t, eps, ab)
    if msg:
        print(msg)
        return False
    expected = schedule.q_sample(x0, t, eps)
    if not isinstance(out, torch.Tensor):
        return fail(f"{name}: expected a tensor, got {type(out).__name__}.", "return x_t, don't print it.")
    if out.shape != x0.shape:
        return fail(
            f"{name}: x_t has shape {tuple(out.shape)}, expected {tuple(x0.shape)} (the shape of x0).",
            "ᾱ_t has shape (b,); reshape it to (b, 1, 1, 1, 1) so it broadcasts over c, f, h, w: "
            "alpha_bar[t].view(-1, *[1] * (x0.ndim - 1)).",
        )
    if _close(out, expected):
        return ok(f"{name}: correct, and it works for any number of trailing axes.")
    a = ab[t].view(-1, 1, 1, 1, 1)
    if _close(out, a * x0 + (1 - a) * eps):
        return fail(f"{name}: you scaled by ᾱ_t and (1 − ᾱ_t).", "DDPM eq. 4 uses square roots: √ᾱ_t·x₀ + √(1−ᾱ_t)·ε.")
    if _close(out, a.sqrt() * eps + (1 - a).sqrt() * x0):
        return fail(f"{name}: x₀ and ε are swapped.",
                    "the signal x₀ gets √ᾱ_t (close to 1 for small t), the noise √(1−ᾱ_t).")
    same_t = ab[t[0]].sqrt() * x0 + (1 - ab[t[0]]).sqrt() * eps
    if _close(out, same_t):
        return fail(f"{name}: every sample used the first sample's step.",
                    "index alpha_bar with the whole t: alpha_bar[t] has shape (b,).")
    return fail(f"{name}: the values are off (largest error {(out.double() - expected).abs().max().item():.3g}).",
                "x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε, with ᾱ_t = alpha_bar[t] reshaped to (b, 1, 1, 1, 1).")


# ----------------------------------------------------------------------------------------------------------------
# Exercise 2: where half the signal is gone


@verdict
def check_half_signal_step(fn) -> bool:
    """``fn(schedule)`` must return the first step t (an int, counting from 0) where ᾱ_t < 0.5."""
    name = "Exercise 2 (half-signal step)"
    correct = True
    for kind in ("linear", "cosine", "sigmoid"):
        schedule = NoiseSchedule(kind, num_steps=1000)
        out, msg = call(fn, name, schedule)
        if msg:
            print(msg)
            return False
        expected = int((schedule.alpha_bar < 0.5).nonzero()[0])
        try:
            got = int(out)
        except (TypeError, ValueError, RuntimeError):
            return fail(f"{name}: expected an int step, got {out!r}.", "return an int, e.g. int(indices[0]).")
        if got != expected:
            hint = "steps count from 0: take the index itself, not index + 1." if abs(got - expected) == 1 else (
                "look for the first index where schedule.alpha_bar < 0.5, e.g. with (ab < 0.5).nonzero()[0]; "
                "ᾱ (not √ᾱ) is the signal's power.")
            correct = fail(f"{name}: for the {kind} schedule you said t = {got}; it should be {expected}.", hint)
            break
    if correct:
        lin = int((NoiseSchedule("linear").alpha_bar < 0.5).nonzero()[0])
        cos = int((NoiseSchedule("cosine").alpha_bar < 0.5).nonzero()[0])
        ok(f"{name}: correct. Linear loses half its signal by t = {lin}, cosine only by t = {cos}: "
           "cosine spends more steps where the picture is still recognisable.")
    return correct


# ----------------------------------------------------------------------------------------------------------------
# Exercise 3: from v back to x₀


@verdict
def check_v_to_x0(fn) -> bool:
    """``fn(x_t, t, v, alpha_bar)`` must return x₀ = √ᾱ_t·x_t − √(1−ᾱ_t)·v for video and per-sample t."""
    name = "Exercise 3 (v → x₀)"
    schedule, x0, eps, t = _video_case(1)
    x_t = schedule.q_sample(x0, t, eps)
    v = schedule.v_target(x0, eps, t)
    out, msg = call(fn, name, x_t, t, v, schedule.alpha_bar)
    if msg:
        print(msg)
        return False
    if not isinstance(out, torch.Tensor) or out.shape != x0.shape:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        return fail(f"{name}: got {shape}, expected a tensor of shape {tuple(x0.shape)}.",
                    "reshape ᾱ_t to (b, 1, 1, 1, 1) so it broadcasts over the video's axes.")
    if _close(out, x0):
        return ok(f"{name}: correct: v-prediction gives x₀ without dividing by √ᾱ_t, so it stays finite at t = T−1.")
    a = schedule.alpha_bar[t].view(-1, 1, 1, 1, 1)
    if _close(out, a.sqrt() * x_t + (1 - a).sqrt() * v):
        return fail(f"{name}: the sign of the v term is wrong.", "v = √ᾱ·ε − √(1−ᾱ)·x₀, so x₀ = √ᾱ·x_t − √(1−ᾱ)·v.")
    if _close(out, (1 - a).sqrt() * x_t + a.sqrt() * v):
        return fail(f"{name}: that is ε, not x₀.", "ε = √(1−ᾱ)·x_t + √ᾱ·v; for x₀ swap the roles: √ᾱ·x_t − √(1−ᾱ)·v.")
    return fail(f"{name}: the values are off.",
                "substitute x_t = √ᾱ·x₀ + √(1−ᾱ)·ε into √ᾱ·x_t − √(1−ᾱ)·v and simplify using ᾱ + (1 − ᾱ) = 1.")


# ----------------------------------------------------------------------------------------------------------------
# Exercise 4: zero terminal SNR


@verdict
def check_zero_terminal_snr(fn) -> bool:
    """``fn(betas)`` must return rescaled β with ᾱ_{T−1} = 0 and ᾱ_0 unchanged (Lin et al. 2024, Algorithm 1)."""
    name = "Exercise 4 (zero terminal SNR)"
    betas = NoiseSchedule("linear", num_steps=1000).betas
    out, msg = call(fn, name, betas.clone())
    if msg:
        print(msg)
        return False
    if not isinstance(out, torch.Tensor) or out.shape != betas.shape:
        return fail(f"{name}: expected β of shape {tuple(betas.shape)}.",
                    "return 1 − α_t with α_t = ᾱ_t / ᾱ_{t−1} (and α_0 = ᾱ_0).")
    ab = torch.cumprod(1 - out.double(), 0)
    ab_old = torch.cumprod(1 - betas, 0)
    if ab[-1].abs() > 1e-10:
        return fail(f"{name}: ᾱ at the last step is {ab[-1].item():.3g}, not 0.",
                    "subtract the last √ᾱ from all √ᾱ (work with square roots, not ᾱ itself).")
    if not torch.isclose(ab[0], ab_old[0], rtol=1e-9):
        return fail(f"{name}: ᾱ_0 changed from {ab_old[0].item():.6f} to {ab[0].item():.6f}.",
                    "after the shift, scale √ᾱ by √ᾱ_0 / (√ᾱ_0 − √ᾱ_T) so the first step is as before.")
    expected = NoiseSchedule("linear", num_steps=1000, zero_terminal_snr=True).betas
    if not torch.allclose(out.double(), expected, atol=1e-8):
        return fail(f"{name}: ᾱ ends at 0 and starts right, but the steps in between differ from Algorithm 1.",
                    "shift and scale √ᾱ linearly (not ᾱ, not β), then turn it back into β.")
    return ok(f"{name}: correct: the last step is now pure noise, matching what sampling starts from.")
