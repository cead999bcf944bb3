"""Checks for the exercises of notebook 12 (video to video: structure and content).

Each ``check_*`` takes your answer, prints what is right or wrong with a hint, and returns a verdict: true
or false in code, invisible in a notebook (a cell ending with a check shows only its message).
It never raises: an exercise you have not tried yet (``None``, or a function that still raises
``NotImplementedError``) just gets a friendly reminder, so the notebook runs top to bottom.
"""

from __future__ import annotations

import torch

from vdiff_edu.structure import pool

from ._checking import NOT_YET, call, fail, ok, verdict

# ----------------------------------------------------------------------------------------------------------------
# Exercise 1: pool a silhouette with the mean instead of the max


@verdict
def check_mean_pool(fn) -> bool:
    """``fn(sil, level)``: a silhouette ``(b, 1, f, H, W)`` → each cell of side H / 2^level holding the fraction of
    its pixels with ink, drawn back at H×W (level 0: zeros)."""
    name = "Exercise 1 (mean_pool)"
    g = torch.Generator().manual_seed(0)
    sil = (torch.rand(2, 1, 3, 8, 8, generator=g) > 0.8).float()
    for level in (3, 2, 1, 0):
        out, msg = call(fn, name, sil, level)
        if msg:
            print(msg)
            return False
        if not isinstance(out, torch.Tensor) or out.shape != sil.shape:
            return fail(f"{name}: at level {level} the map should have the silhouette's shape {tuple(sil.shape)}; "
                        f"got {type(out).__name__} {tuple(getattr(out, 'shape', ()))}",
                        "pool, then draw each cell back at H×W (F.interpolate(..., mode='nearest'))")
        want = pool(sil, level, "mean")
        if not torch.allclose(out.float(), want, atol=1e-6):
            if level and torch.equal(out.float(), pool(sil, level, "max")):
                return fail(f"{name}: at level {level} you took the max (any ink), not the mean",
                            "F.avg_pool2d instead of F.max_pool2d: a cell holds the fraction of its pixels with ink")
            return fail(f"{name}: at level {level} the map differs from the expected one in "
                        f"{int((~torch.isclose(out.float(), want)).sum())} pixels",
                        "cells of side H // 2**level; level 0 is no structure at all (zeros)")
    return ok(f"{name}: right. A mean-pooled map also says how much ink each cell holds, which is how thick the "
              f"input's stroke is: a model trained on it copies the input's stroke instead of the prompt's")


# ----------------------------------------------------------------------------------------------------------------
# Exercise 2: guess, then measure, how the leak changes with detail


GUESSES = ("rises", "falls", "same")


@verdict
def check_leak_guess(guess, measured: dict | None = None, tolerance: float = 0.05) -> bool:
    """``guess`` is "rises", "falls" or "same": how the leak (outputs that show the input's digit) changes from
    the coarsest level to the finest; ``measured`` maps level → leak, as the notebook measured it."""
    name = "Exercise 2 (leak_guess)"
    if guess is None:
        print(NOT_YET.format(name=name))
        return False
    if guess not in GUESSES:
        return fail(f"{name}: expected one of {GUESSES}; got {guess!r}", "one word")
    if not measured:
        return ok(f"{name}: noted ({guess!r}); run the measurement cell above to compare")
    levels = sorted(k for k in measured if k > 0)
    coarse, fine = measured[levels[0]], measured[levels[-1]]
    truth = "same" if abs(fine - coarse) <= tolerance else "rises" if fine > coarse else "falls"
    if guess == truth:
        return ok(f"{name}: your guess matches: the leak goes from {coarse:.2f} at level {levels[0]} to {fine:.2f} "
                  f"at level {levels[-1]}")
    return fail(f"{name}: you guessed {guess!r}, but the measurement says {truth!r} ({coarse:.2f} at level "
                f"{levels[0]}, {fine:.2f} at level {levels[-1]})",
                "the finer the map, the more of the input's shape the model is told to keep")


# ----------------------------------------------------------------------------------------------------------------
# Exercise 3: temporal-consistency guidance by hand


@verdict
def check_temporal_mix(fn) -> bool:
    """``fn(video, image, omega)`` → the temporally guided prediction image + ω·(video − image)."""
    name = "Exercise 3 (temporal_mix)"
    g = torch.Generator().manual_seed(1)
    video, image = torch.randn(2, 4, 3, 2, 2, generator=g), torch.randn(2, 4, 3, 2, 2, generator=g)
    for omega in (1.0, 0.0, 2.5):
        out, msg = call(fn, name, video, image, omega)
        if msg:
            print(msg)
            return False
        want = image + omega * (video - image)
        if not isinstance(out, torch.Tensor) or out.shape != video.shape:
            return fail(f"{name}: expected a tensor of shape {tuple(video.shape)}", "the same shape as video")
        if not torch.allclose(out, want, atol=1e-6):
            if torch.allclose(out, video + omega * (video - image), atol=1e-6):
                return fail(f"{name}: at ω = {omega:g} you start from the video prediction",
                            "start from the image model's prediction: at ω = 0 you get it back, at ω = 1 the video")
            return fail(f"{name}: at ω = {omega:g} the result differs from image + ω·(video − image)",
                        "ω = 1 must give the video prediction exactly, ω = 0 the image one")
    return ok(f"{name}: right: ω = 1 is the video model, ω = 0 the image model frame by frame, and ω > 1 "
              f"exaggerates what the temporal layers add")
