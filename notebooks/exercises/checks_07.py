"""Checks for the exercises of notebook 07 (sampling).

Each ``check_*`` takes your answer, prints what is right or wrong with a hint, and returns a verdict: true
or false in code, invisible in a notebook (a cell ending with a check shows only its message).
It never raises: an exercise you have not tried yet (``None``, or a function that still raises
``NotImplementedError``) just gets a friendly reminder, so the notebook runs top to bottom.
"""

from __future__ import annotations

import torch

from vdiff_edu.sampling import ddim_step
from vdiff_edu.schedule import NoiseSchedule

from ._checking import call, close, fail, ok, verdict


# ----------------------------------------------------------------------------------------------------------------
# Exercise 1: a DDIM step for ε-prediction


@verdict
def check_ddim_eps_step(fn) -> bool:
    """``fn(x_t, eps_hat, alpha_bar_t, alpha_bar_prev)`` must return DDIM's deterministic (η = 0) x_{t_prev}."""
    name = "Exercise 1 (DDIM step)"
    g = torch.Generator().manual_seed(0)
    schedule = NoiseSchedule()
    x_t, eps = torch.randn(2, 1, 3, 4, 4, generator=g), torch.randn(2, 1, 3, 4, 4, generator=g)
    t, t_prev = 700, 500
    a_t, a_prev = schedule.alpha_bar[t].float(), schedule.alpha_bar[t_prev].float()
    out, msg = call(fn, name, x_t, eps, a_t, a_prev)
    if msg:
        print(msg)
        return False
    expected = ddim_step(schedule, eps, t, t_prev, x_t, prediction="eps", eta=0.0)
    if not isinstance(out, torch.Tensor) or out.shape != x_t.shape:
        return fail(f"{name}: expected a tensor shaped like x_t {tuple(x_t.shape)}.", "return x_{t_prev}.")
    if close(out, expected):
        return ok(f"{name}: correct: the same as vdiff_edu.sampling.ddim_step(..., eta=0).")
    x0 = (x_t - (1 - a_t).sqrt() * eps) / a_t.sqrt()
    if close(out, x0):
        return fail(f"{name}: you returned x̂₀.", "then move to t_prev: √ᾱ_prev·x̂₀ + √(1−ᾱ_prev)·ε̂.")
    if close(out, a_prev.sqrt() * x0 + (1 - a_t).sqrt() * eps):
        return fail(f"{name}: the noise term uses ᾱ_t.", "the direction to x_t is √(1 − ᾱ_prev)·ε̂ (DDIM eq. 12).")
    return fail(f"{name}: the values are off.",
                "x̂₀ = (x_t − √(1−ᾱ_t)·ε̂)/√ᾱ_t, then x_prev = √ᾱ_prev·x̂₀ + √(1−ᾱ_prev)·ε̂.")


# ----------------------------------------------------------------------------------------------------------------
# Exercise 2: classifier-free guidance


@verdict
def check_guidance(fn) -> bool:
    """``fn(out_cond, out_uncond, scale)`` must return out_uncond + scale·(out_cond − out_uncond)."""
    name = "Exercise 2 (classifier-free guidance)"
    g = torch.Generator().manual_seed(1)
    c, u = torch.randn(2, 1, 3, 4, 4, generator=g), torch.randn(2, 1, 3, 4, 4, generator=g)
    results = {}
    for s in (0.0, 1.0, 4.0):
        out, msg = call(fn, name, c, u, s)
        if msg:
            print(msg)
            return False
        results[s] = out
    if not all(isinstance(r, torch.Tensor) and r.shape == c.shape for r in results.values()):
        return fail(f"{name}: expected tensors shaped like the predictions.", "combine them elementwise.")
    if all(close(results[s], u + s * (c - u)) for s in results):
        return ok(f"{name}: correct: scale 0 is the unconditional model, 1 the conditional one, 4 pushes past it.")
    if all(close(results[s], c + s * (u - c)) for s in results):
        return fail(f"{name}: conditional and unconditional are swapped.",
                    "start from the UNconditional prediction and move towards the conditional one.")
    if close(results[0.0], u) and not close(results[1.0], c):
        return fail(f"{name}: scale 1 should give exactly the conditional prediction.", "out = u + s·(c − u).")
    return fail(f"{name}: the values are off.", "Ho & Salimans 2022: ε̃ = ε_uncond + s·(ε_cond − ε_uncond).")


# ----------------------------------------------------------------------------------------------------------------
# Exercise 3: the DDPM posterior variance for a strided step


@verdict
def check_posterior_variance(fn) -> bool:
    """``fn(alpha_bar_t, alpha_bar_prev)`` must return β̃ = (1−ᾱ_prev)/(1−ᾱ_t)·(1 − ᾱ_t/ᾱ_prev)."""
    name = "Exercise 3 (posterior variance)"
    schedule = NoiseSchedule()
    ab = schedule.alpha_bar
    pairs = [(500, 499), (800, 600), (999, 0)]
    for t, s in pairs:
        out, msg = call(fn, name, ab[t], ab[s])
        if msg:
            print(msg)
            return False
        expected = (1 - ab[s]) / (1 - ab[t]) * (1 - ab[t] / ab[s])
        try:
            got = float(out)
        except (TypeError, ValueError, RuntimeError):
            return fail(f"{name}: expected a number, got {type(out).__name__}.", "return a 0-d tensor or a float.")
        if abs(got - float(expected)) > 1e-9 * max(1.0, abs(float(expected))):
            if t - s == 1 and abs(got - float(schedule.betas[t])) < 1e-12:
                return fail(f"{name}: that is β_t (DDPM's larger variance choice), not β̃_t.",
                            "multiply by (1 − ᾱ_prev)/(1 − ᾱ_t).")
            return fail(f"{name}: for t = {t}, t_prev = {s} you got {got:.6g}, expected {float(expected):.6g}.",
                        "β_{t|s} = 1 − ᾱ_t/ᾱ_s is the variance of the whole strided step; "
                        "scale it by (1−ᾱ_s)/(1−ᾱ_t).")
    return ok(f"{name}: correct: for consecutive steps it reduces to DDPM's β̃_t = (1−ᾱ_{{t−1}})/(1−ᾱ_t)·β_t.")
