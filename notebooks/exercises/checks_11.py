"""Checks for the exercises of notebook 11 (given frames: prediction, interpolation and long videos).

Each ``check_*`` takes your answer, prints what is right or wrong with a hint, and returns a verdict: true
or false in code, invisible in a notebook (a cell ending with a check shows only its message).
It never raises: an exercise you have not tried yet (``None``, or a function that still raises
``NotImplementedError``) just gets a friendly reminder, so the notebook runs top to bottom.
"""

from __future__ import annotations

import torch

from vdiff_edu.frames import interpolation_mask

from ._checking import NOT_YET, call, fail, ok, verdict

# ----------------------------------------------------------------------------------------------------------------
# Exercise 1: a mask with frames given at both ends


@verdict
def check_ends_mask(fn) -> bool:
    """``fn(num_frames, first, last)`` → bool ``(num_frames,)``, and a ValueError when nothing is left to make."""
    name = "Exercise 1 (ends_mask)"
    for args in ((8, 1, 1), (8, 2, 3), (5, 0, 2), (6, 3, 0)):
        out, msg = call(fn, name, *args)
        if msg:
            print(msg)
            return False
        want = interpolation_mask(*args)
        if not isinstance(out, torch.Tensor) or out.shape != want.shape:
            return fail(f"{name}: ends_mask{args} should be a tensor of shape {tuple(want.shape)}; got "
                        f"{type(out).__name__} {tuple(getattr(out, 'shape', ()))}",
                        "one boolean per frame, e.g. torch.arange(num_frames) < first")
        if not torch.equal(out.bool(), want):
            return fail(f"{name}: ends_mask{args} = {out.int().tolist()}, expected {want.int().tolist()}",
                        "the first `first` frames OR the last `last` frames")
    try:
        fn(4, 2, 2)
    except ValueError:
        pass
    except Exception as err:  # the learner's own error, not ours
        return fail(f"{name}: ends_mask(4, 2, 2) raised {type(err).__name__}; expected ValueError",
                    "raise ValueError(...) when first + last >= num_frames")
    else:
        return fail(f"{name}: ends_mask(4, 2, 2) gives every frame, leaving nothing to generate, but did not raise",
                    "raise ValueError when first + last >= num_frames")
    return ok(f"{name}: right, the same as vdiff_edu.frames.interpolation_mask, refusals included")


# ----------------------------------------------------------------------------------------------------------------
# Exercise 2: guess, then measure the effect of the context length


GUESSES = ("longer", "shorter", "same")


@verdict
def check_window_guess(guess, measured: dict | None = None, tolerance: float = 0.05) -> bool:
    """``guess`` is "longer", "shorter" or "same"; ``measured`` maps context length k → the last window's identity
    persistence. The measurement decides; the message says what it means either way."""
    name = "Exercise 2 (predict, then measure)"
    if guess is None or callable(guess):
        print(NOT_YET.format(name=name) + " Set my_guess to \"longer\", \"shorter\" or \"same\".")
        return False
    if guess not in GUESSES:
        return fail(f"{name}: my_guess = {guess!r}; expected one of {GUESSES}")
    if not measured or len(measured) < 2:
        return fail(f"{name}: need the last window's identity for at least two context lengths; got {measured}",
                    "run section 6 with two or more values in `contexts`")
    short, long_ = min(measured), max(measured)
    diff = float(measured[long_]) - float(measured[short])
    answer = "same" if abs(diff) <= tolerance else ("longer" if diff > 0 else "shorter")
    line = (f"measured: the last window keeps its identity in {measured[short]:.2f} of clips with k={short} and "
            f"{measured[long_]:.2f} with k={long_}")
    why = {"longer": "more given frames pin the digit's shape and velocity down, so each window has less room to drift",
           "shorter": "each given frame the model made itself carries its errors along; more of them, more to copy",
           "same": "with this model and this many clips the difference is within noise (±0.05): try more clips"}[answer]
    if guess == answer:
        return ok(f"{name}: your guess \"{guess}\" matches. {line}. Why: {why}.")
    return fail(f"{name}: you guessed \"{guess}\", the measurement says \"{answer}\". {line}.", f"why: {why}")


# ----------------------------------------------------------------------------------------------------------------
# Exercise 3: the first frame where a rollout loses its digit


def _reference_first_lost(frame_probs: torch.Tensor, labels: torch.Tensor, patience: int) -> torch.Tensor:
    wrong = frame_probs.argmax(-1) != labels[:, None]  # (n, L)
    n, length = wrong.shape
    out = torch.full((n,), -1, dtype=torch.long)
    for i in range(n):
        for t in range(length - patience + 1):
            if wrong[i, t:t + patience].all():
                out[i] = t
                break
    return out


def _case(picks: list[list[int]], labels: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    probs = torch.full((len(picks), len(picks[0]), 10), 0.01)
    for i, row in enumerate(picks):
        for t, digit in enumerate(row):
            probs[i, t, digit] = 0.9
    return probs, torch.tensor(labels)


@verdict
def check_first_lost_frame(fn) -> bool:
    """``fn(frame_probs (n, L, 10), labels (n,), patience=2)`` → long ``(n,)``, -1 where the digit is never lost."""
    name = "Exercise 3 (first_lost_frame)"
    probs, labels = _case([[3, 3, 3, 3, 3, 3],   # never lost
                           [3, 3, 8, 8, 8, 8],   # lost at 2
                           [3, 8, 3, 3, 8, 8],   # a one-frame slip at 1 is forgiven; lost at 4
                           [8, 8, 3, 3, 3, 3],   # lost from the start
                           [3, 3, 3, 3, 3, 8]],  # one wrong frame at the very end: not "patience" frames
                          [3, 3, 3, 3, 3])
    for patience in (2, 1, 3):
        out, msg = call(fn, name, probs, labels, patience)
        if msg:
            print(msg)
            return False
        want = _reference_first_lost(probs, labels, patience)
        if not isinstance(out, torch.Tensor) or out.shape != want.shape:
            return fail(f"{name}: expected a tensor of shape {tuple(want.shape)} (one frame index per video); got "
                        f"{type(out).__name__} {tuple(getattr(out, 'shape', ()))}")
        if not torch.equal(out.long(), want):
            hint = ("-1 where the digit is never lost" if out[0] != -1 else
                    f"a frame counts when argmax != label for {patience} frames in a row, starting there")
            return fail(f"{name}: with patience={patience} got {out.tolist()}, expected {want.tolist()}", hint)
    return ok(f"{name}: right for every case (never lost, a forgiven slip, lost at once, a slip at the end)")
