"""Checks for the exercises of notebook 01 (Moving MNIST).

Each ``check_*`` takes your function, tries it on a few cases, prints what is right or wrong with a hint, and
returns True or False. It never raises, so the notebook runs top to bottom even before you try the exercise.
"""

from __future__ import annotations

import numpy as np


def _call(fn, *args):
    """Run the learner's function; return (result, None) or (None, message)."""
    try:
        return fn(*args), None
    except NotImplementedError:
        return None, "Not attempted yet: replace `raise NotImplementedError` with your code, then run the check again."
    except Exception as e:  # a check must never stop the notebook
        return None, f"Your function raised {type(e).__name__}: {e}"


def _verdict(ok: bool, message: str, hint: str = "") -> bool:
    print(("✅ " if ok else "❌ ") + message + (f"\n   Hint: {hint}" if hint and not ok else ""))
    return ok


def check_step(step) -> bool:
    """Exercise 1: ``step(pos, vel, canvas) -> (pos, vel)``, one frame of the deterministic rule."""
    cases = [  # (pos, vel, canvas) -> (pos, vel)
        (([5.0, 5.0], [1.0, -2.0], 10.0), ([6.0, 3.0], [1.0, -2.0]), "a step in the middle of the frame"),
        (([5.0, 9.0], [0.0, 2.0], 10.0), ([5.0, 10.0], [0.0, -2.0]), "a step through the right wall"),
        (([0.5, 4.0], [-1.5, 1.0], 10.0), ([0.0, 5.0], [1.5, 1.0]), "a step through the top wall"),
        (([9.5, 0.5], [1.0, -1.0], 10.0), ([10.0, 0.0], [-1.0, 1.0]), "a step into the bottom-left corner"),
    ]
    for (pos, vel, canvas), (want_pos, want_vel), what in cases:
        got, error = _call(step, np.array(pos), np.array(vel), canvas)
        if error:
            return _verdict(False, error, "move first (pos + vel), then look for coordinates outside [0, canvas].")
        try:
            got_pos, got_vel = (np.asarray(x, dtype=float) for x in got)
        except (TypeError, ValueError):
            return _verdict(False, f"step should return (pos, vel); it returned {got!r}.")
        if not np.allclose(got_pos, want_pos):
            return _verdict(False, f"for {what} (pos={pos}, vel={vel}, canvas={canvas}) the new position should be "
                                   f"{want_pos}, you gave {got_pos.tolist()}.",
                            "a digit that would leave the frame stops exactly at the wall: np.clip(pos, 0, canvas).")
        if not np.allclose(got_vel, want_vel):
            return _verdict(False, f"for {what} (pos={pos}, vel={vel}) the new velocity should be {want_vel}, "
                                   f"you gave {got_vel.tolist()}.",
                            "only the component that hit a wall changes sign; the other one keeps going.")
    return _verdict(True, "Correct: your step moves, stops at walls and reflects like the package's generator.")


def check_motion_word(motion_word) -> bool:
    """Exercise 2: ``motion_word(velocities (f, 2)) -> 'horizontal' | 'vertical' | 'diagonal'``."""
    cases = [
        ([[0.0, 3.6], [0.0, -3.6]], "horizontal"),
        ([[3.6, 0.3], [-3.6, 0.3]], "vertical"),
        ([[2.5, -2.5], [-2.5, -2.5]], "diagonal"),
        ([[1.0, 3.0], [1.0, -3.0]], "horizontal"),  # 18°: mostly sideways
        ([[3.0, 1.0], [-3.0, 1.0]], "vertical"),  # 72°
        ([[2.0, 3.0]], "diagonal"),  # 34°
    ]
    for vel, want in cases:
        got, error = _call(motion_word, np.array(vel))
        if error:
            return _verdict(False, error, "average |v| per axis over the frames, then compare the angle to 30° and 60°.")
        if got != want:
            return _verdict(False, f"velocities {vel} (columns are (v_y, v_x)) should give {want!r}, you gave {got!r}.",
                            "use the absolute values (bounces flip signs), atan2(mean |v_y|, mean |v_x|) in degrees: "
                            "below 30° horizontal, above 60° vertical, diagonal between.")
    return _verdict(True, "Correct: your motion words match the captions' vocabulary.")


def check_overlay(overlay) -> bool:
    """Exercise 3: ``overlay(a, b, rule)`` composites two digit layers in [0, 1]."""
    a = np.array([[0.0, 0.6], [0.9, 0.2]])
    b = np.array([[0.5, 0.6], [0.3, 0.0]])
    cases = [("deterministic", np.maximum(a, b)), ("stochastic", np.clip(a + b, 0, 1))]
    for rule, want in cases:
        got, error = _call(overlay, a.copy(), b.copy(), rule)
        if error:
            return _verdict(False, error, "np.maximum for one rule, np.clip(a + b, 0, 1) for the other.")
        got = np.asarray(got, dtype=float)
        if got.shape != want.shape or not np.allclose(got, want):
            return _verdict(False, f"for rule={rule!r}, overlay({a.tolist()}, {b.tolist()}) should be {want.tolist()}, "
                                   f"you gave {got.tolist()}.",
                            "deterministic (Srivastava) keeps the brighter pixel; stochastic (Denton & Fergus) adds "
                            "the layers, then clips to 1.")
    return _verdict(True, "Correct: max for the deterministic rule, sum-then-clip for the stochastic one.")
