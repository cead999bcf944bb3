"""Checks for the exercises of notebook 01a (what a diffusion model is, on 2-D points).

Each ``check_*`` takes your answer, prints what is right or wrong with a hint, and returns a verdict: true
or false in code, invisible in a notebook (a cell ending with a check shows only its message).
It never raises: an exercise you have not tried yet (``None``, or a function that still raises
``NotImplementedError``) just gets a friendly reminder, so the notebook runs top to bottom.
"""

from __future__ import annotations

import torch

from vdiff_edu.schedule import NoiseSchedule

from ._checking import call, close, fail, ok, verdict

STEPS = (3, 40, 90)  # the steps each formula is tried at: nearly clean, half way, nearly pure noise


def _notebook_alpha_bar() -> torch.Tensor:
    """ᾱ_t of the notebook's schedule (cosine, T = 100), when the check is not given the table."""
    return NoiseSchedule("cosine", num_steps=100).alpha_bar.float()


def _points(seed: int = 0, n: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 2, generator=g), torch.randn(n, 2, generator=g)


def _try_at_every_step(fn, name: str, expected, *inputs):
    """Call ``fn(*inputs, t)`` at every step in STEPS; return (answers, None) or (None, a message)."""
    answers = {}
    for t in STEPS:
        out, msg = call(fn, name, *inputs, t)
        if msg:
            return None, msg
        want = expected(t)
        if not isinstance(out, torch.Tensor):
            return None, f"❌ {name}: expected a tensor, got {type(out).__name__}. Hint: return the result, don't print it."
        if out.shape != want.shape:
            return None, (f"❌ {name}: at t = {t} the answer has shape {tuple(out.shape)}, expected {tuple(want.shape)}"
                          f" (one 2-D point per input point).")
        answers[t] = out
    return answers, None


# ----------------------------------------------------------------------------------------------------------------
# Exercise 1: x̂₀ from x_t and a noise guess


@verdict
def check_predict_x0(fn, alpha_bar: torch.Tensor | None = None) -> bool:
    """``fn(x_t, t, eps_hat)`` must return x̂₀ = (x_t − √(1−ᾱ_t)·ε̂) / √ᾱ_t (DDPM eq. 4 solved for x₀)."""
    name = "Exercise 1 (x̂₀ from a noise guess)"
    alpha_bar = _notebook_alpha_bar() if alpha_bar is None else alpha_bar
    x_t, eps_hat = _points()

    def expected(t):
        a = alpha_bar[t]
        return (x_t - (1 - a).sqrt() * eps_hat) / a.sqrt()

    answers, msg = _try_at_every_step(lambda x, e, t: fn(x, t, e), name, expected, x_t, eps_hat)
    if msg:
        print(msg)
        return False
    if all(close(answers[t], expected(t)) for t in STEPS):
        return ok(f"{name}: correct at t = {', '.join(map(str, STEPS))}. Near t = 0 x̂₀ is almost x_t; near t = T "
                  "it leans entirely on the noise guess, which is why early guesses are blurry.")
    for t in STEPS:
        a = alpha_bar[t]
        if close(answers[t], (x_t - (1 - a) * eps_hat) / a):
            return fail(f"{name}: at t = {t} you divided by ᾱ_t and scaled ε̂ by 1 − ᾱ_t.",
                        "eq. 4 uses square roots: x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε.")
        if close(answers[t], (x_t + (1 - a).sqrt() * eps_hat) / a.sqrt()):
            return fail(f"{name}: at t = {t} the noise was added instead of taken out.",
                        "x₀ = (x_t − √(1−ᾱ_t)·ε̂) / √ᾱ_t.")
        if close(answers[t], x_t - (1 - a).sqrt() * eps_hat):
            return fail(f"{name}: at t = {t} you took the noise out but did not undo the signal's scaling.",
                        "divide by √ᾱ_t at the end.")
    return fail(f"{name}: the answer differs from (x_t − √(1−ᾱ_t)·ε̂) / √ᾱ_t.",
                "alpha_bar[t] is ᾱ_t; solve x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε̂ for x₀.")


# ----------------------------------------------------------------------------------------------------------------
# Exercise 2: the optimal noise prediction when the data are standard normal


@verdict
def check_gaussian_eps(fn, alpha_bar: torch.Tensor | None = None, ideal_eps=None) -> bool:
    """``fn(x_t, t)`` must return E[ε | x_t] = √(1−ᾱ_t)·x_t for x₀ ~ N(0, I): x_t ~ N(0, I) and
    E[ε x_tᵀ] = √(1−ᾱ_t)·I, so the regression of ε on x_t has that slope."""
    name = "Exercise 2 (the best denoiser for Gaussian data)"
    alpha_bar = _notebook_alpha_bar() if alpha_bar is None else alpha_bar
    x_t, _ = _points(1)
    answers, msg = _try_at_every_step(fn, name, lambda t: (1 - alpha_bar[t]).sqrt() * x_t, x_t)
    if msg:
        print(msg)
        return False
    right = all(close(answers[t], (1 - alpha_bar[t]).sqrt() * x_t) for t in STEPS)
    if not right:
        for t in STEPS:
            a = alpha_bar[t]
            if close(answers[t], (1 - a) * x_t):
                return fail(f"{name}: at t = {t} your slope is 1 − ᾱ_t, a variance.",
                            "E[ε x_tᵀ] = E[ε (√ᾱ_t x₀ + √(1−ᾱ_t) ε)ᵀ] = √(1−ᾱ_t)·I, and Var(x_t) = I.")
            if close(answers[t], x_t / (1 - a).sqrt()) or close(answers[t], (x_t - a.sqrt() * x_t) / (1 - a).sqrt()):
                return fail(f"{name}: at t = {t} the answer grows where it should shrink.",
                            "regress ε on x_t: slope = Cov(ε, x_t) / Var(x_t), and Var(x_t) = ᾱ_t + (1 − ᾱ_t) = 1.")
            if close(answers[t], torch.zeros_like(x_t)):
                return fail(f"{name}: zero is the best guess only when x_t says nothing about ε.",
                            "x_t contains √(1−ᾱ_t)·ε, so it does say something.")
        return fail(f"{name}: the answer is not E[ε | x_t].",
                    "x_t and ε are jointly Gaussian with mean 0: E[ε | x_t] = Cov(ε, x_t)·Var(x_t)⁻¹·x_t.")
    extra = ""
    if ideal_eps is not None:  # the same answer, estimated from a large sample of N(0, I) data
        g = torch.Generator().manual_seed(2)
        sample = torch.randn(20_000, 2, generator=g)
        x = torch.randn(200, 2, generator=g) * 0.7
        try:
            est = ideal_eps(x, 40, sample)
            diff = float((est - (1 - alpha_bar[40]).sqrt() * x).norm() / est.norm())
            extra = (f" At t = 40, section 6's ideal_eps on 20,000 standard-normal points agrees with your formula to "
                     f"{100 * diff:.1f} % (a finite sample).")
        except Exception:  # the comparison is a bonus: a broken ideal_eps does not make the answer wrong
            extra = ""
    return ok(f"{name}: correct, ε* = √(1−ᾱ_t)·x_t. It is linear in x_t: for Gaussian data the best denoiser only "
              f"shrinks, which is why a network is needed for data with shape.{extra}")


# ----------------------------------------------------------------------------------------------------------------
# Exercise 3: predict, then measure: the reverse step without its fresh noise

GUESSES = ("larger", "same", "smaller")


@verdict
def check_no_noise_guess(guess, ratio: float | None = None, tolerance: float = 0.15) -> bool:
    """``guess`` is "larger", "same" or "smaller"; ``ratio`` is the measured spread of the samples drawn without
    fresh noise over the data's. The measurement decides; the message says why either way."""
    name = "Exercise 3 (predict, then measure)"
    if guess is None or callable(guess):
        print(f'⏳ {name}: not attempted yet. Set guess to "larger", "same" or "smaller", then run the cell again.')
        return False
    if guess not in GUESSES:
        return fail(f"{name}: guess = {guess!r}; expected one of {GUESSES}")
    if ratio is None or not ratio == ratio:
        return fail(f"{name}: need the measured spread ratio; got {ratio}", "run the whole cell")
    answer = "same" if abs(ratio - 1) <= tolerance else ("larger" if ratio > 1 else "smaller")
    why = {"smaller": "each mean step takes out the noise the network expects on average, E[ε | x_t], an average "
                      "over every clean point that could have made x_t; without fresh noise nothing puts the "
                      "variety back, so the points slide towards the middle of the data instead of spreading over it",
           "same": "with this model the drift of the means and the missing noise balance within ±15 %; a model "
                   "trained longer usually comes out smaller",
           "larger": "with this model the means overshoot; an undertrained network (smoke mode) can do that"}[answer]
    line = f"measured spread ratio {ratio:.2f}"
    if guess == answer:
        return ok(f'{name}: your guess "{guess}" matches ({line}). Why: {why}.')
    return fail(f'{name}: you guessed "{guess}", the measurement says "{answer}" ({line}).', f"why: {why}")
