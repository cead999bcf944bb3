"""Checks for the exercises of notebook 09 (evaluation).

Each ``check_*`` takes your function, prints what is right or wrong with a hint, and returns a verdict: true
or false in code, invisible in a notebook (a cell ending with a check shows only its message).
It never raises: an exercise you have not tried yet (``None``, or a function that still raises
``NotImplementedError``) just gets a friendly reminder, so the notebook runs top to bottom.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from vdiff_edu.eval.metrics import frechet_distance

from ._checking import call as _call
from ._checking import fail as _fail
from ._checking import ok as _ok
from ._checking import verdict


def _number(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


# ---------------------------------------------------------------- Exercise 1: Fréchet distance in 1-D ----


@verdict
def check_frechet_distance_1d(fn) -> bool:
    """``fn(x (n,), y (m,))`` must return FD = (μ_x − μ_y)² + (σ_x − σ_y)², the package's value for d = 1."""
    name = "Exercise 1 (Fréchet distance in 1-D)"
    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, generator=g, dtype=torch.float64) * 2.0 + 1.0
    y = torch.randn(300, generator=g, dtype=torch.float64) * 0.5 - 1.0
    out, msg = _call(fn, name, x, y)
    if msg:
        print(msg)
        return False
    value = _number(out)
    if value is None:
        return _fail(f"{name}: expected a number, got {type(out).__name__}.", "return a float (use .item() or float()).")
    expected = frechet_distance(x[:, None], y[:, None])
    if math.isclose(value, expected, rel_tol=1e-6, abs_tol=1e-9):
        return _ok(f"{name}: correct ({value:.4f}). In 1-D the matrix square root is just the standard deviation.")
    if math.isclose(value, float((x.mean() - y.mean()) ** 2), rel_tol=1e-6):
        return _fail(f"{name}: you returned only the mean term ({value:.4f}); expected {expected:.4f}.",
                     "add the covariance term: Tr(Σ_x + Σ_y − 2(Σ_xΣ_y)^½) is (σ_x − σ_y)² in 1-D.")
    biased = float((x.mean() - y.mean()) ** 2 + (x.std(unbiased=False) - y.std(unbiased=False)) ** 2)
    if math.isclose(value, biased, rel_tol=1e-6):
        return _fail(f"{name}: close, but you used the biased standard deviation (1/n).",
                     "frechet_distance uses the unbiased covariance (1/(n−1)), like torch.std's default.")
    return _fail(f"{name}: got {value:.4f}, expected {expected:.4f}.",
                 "FD = (mean(x) − mean(y))² + (std(x) − std(y))²; check the signs and the squares.")


# ---------------------------------------------------------------- Exercise 2: KID on tiny sets ----

KID_GUESSES = ("positive", "around zero", "negative")


@verdict
def check_kid_guess(guess, values=None) -> bool:
    """``guess`` is "positive", "around zero" or "negative"; ``values`` are KID×1000 of two real sets of 8 clips
    over several random splits. The measurement decides: "around zero" when the mean is within two standard
    errors of 0."""
    name = "Exercise 2 (guess, then measure)"
    if guess is None or callable(guess):
        print(f'⏳ {name}: not attempted yet. Set my_guess to "positive", "around zero" or "negative", then run '
              "the cell again.")
        return False
    if guess not in KID_GUESSES:
        return _fail(f"{name}: my_guess = {guess!r}; expected one of {KID_GUESSES}")
    values = np.asarray(values if values is not None else [], dtype=float)
    if values.size < 3 or not np.isfinite(values).all():
        return _fail(f"{name}: need KID×1000 of at least 3 random splits; got {values.tolist()}",
                     "run the cell with my_guess set: it measures ten splits")
    mean, se = float(values.mean()), float(values.std(ddof=1) / math.sqrt(values.size))
    answer = "around zero" if abs(mean) <= 2 * se else ("positive" if mean > 0 else "negative")
    line = f"measured: KID×1000 = {mean:+.3f} ± {se:.3f} (mean ± standard error of {values.size} splits)"
    why = ("KID leaves out the diagonal terms k(x_i, x_i): each compares a sample with itself, is larger than a "
           "typical k(x_i, x_j), and kept in, would add about (mean k(x,x) − mean k(x,y))·2/m, a bias that grows as "
           "m shrinks, as FD's does. Without them the estimate is unbiased at any m, only noisier")
    if answer != "around zero":
        why = (f"unusual for an unbiased estimate: {values.size} splits of 8 clips are noisy, so this can happen "
               "by chance; try other seeds. " + why)
    if guess == answer:
        return _ok(f"{name}: your guess \"{guess}\" matches. {line}. Why: {why}.")
    return _fail(f"{name}: you guessed \"{guess}\", the measurement says \"{answer}\". {line}.", f"why: {why}")


# ---------------------------------------------------------------- Exercise 3: naive flicker ----


@verdict
def check_naive_flicker(fn) -> bool:
    """``fn(clips uint8 (n, f, h, w))`` must return the mean |frame[t+1] − frame[t]| in [0, 1] units."""
    name = "Exercise 3 (naive flicker)"
    rng = np.random.default_rng(2)
    clips = rng.integers(0, 256, size=(3, 5, 8, 8)).astype(np.uint8)
    out, msg = _call(fn, name, clips)
    if msg:
        print(msg)
        return False
    value = _number(out)
    if value is None:
        return _fail(f"{name}: expected a number, got {type(out).__name__}.", "return a float.")
    x = clips.astype(np.float64) / 255
    expected = float(np.abs(x[:, 1:] - x[:, :-1]).mean())
    if math.isclose(value, expected, rel_tol=1e-5):
        return _ok(f"{name}: correct ({value:.4f}). Now compare it with metrics.flicker on real clips: "
                   f"without motion compensation every moving digit counts as flicker.")
    wrapped = float(np.abs((clips[:, 1:] - clips[:, :-1]).astype(np.float64) / 255).mean())
    if math.isclose(value, wrapped, rel_tol=1e-5):
        return _fail(f"{name}: uint8 subtraction wrapped around (got {value:.4f}, expected {expected:.4f}).",
                     "convert to float before subtracting: clips.astype(np.float32) / 255.")
    if math.isclose(value, expected * 255, rel_tol=1e-5):
        return _fail(f"{name}: got {value:.2f}, which is in 0..255 units.", "divide by 255 to get [0, 1] units.")
    return _fail(f"{name}: got {value:.4f}, expected {expected:.4f}.",
                 "take |x[:, 1:] − x[:, :-1]| over frames (axis 1), then the mean over everything.")
