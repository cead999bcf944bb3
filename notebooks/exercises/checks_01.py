"""Checks for the exercises of notebook 01 (Moving MNIST).

Each ``check_*`` takes your function, tries it on a few cases, prints what is right or wrong with a hint, and
returns a verdict (true or false in code, invisible in a notebook). It never raises, so the notebook runs top
to bottom even before you try the exercise.
"""

from __future__ import annotations

import numpy as np

from ._checking import call, fail, ok, verdict



@verdict
def check_stochastic_step(stochastic_step) -> bool:
    """Exercise 1: ``stochastic_step(pos, vel, canvas, speed, rng) -> (pos, vel)``, the stochastic rule."""
    canvas, speed = 36.0, 3.6  # 64×64 frames, 28-px digits: inward speeds in [1, 4], cross speeds in [-4, 4]
    rng = np.random.default_rng(0)
    hint = ("move, clip to [0, canvas]; on the axis that hit a wall draw |v| ~ U(1, 4)·speed/3.6 pointing back "
            "inside, on the other axis draw v ~ U(-4, 4)·speed/3.6; with no wall hit keep the velocity.")
    # 1. no wall: a plain step
    got, error = call(stochastic_step, "stochastic_step", np.array([10.0, 10.0]), np.array([1.0, -2.0]), canvas,
                      speed, rng)
    if error:
        print(error)
        return False
    try:
        p, v = (np.asarray(x, dtype=float) for x in got)
    except (TypeError, ValueError):
        return fail(f"stochastic_step should return (pos, vel); it returned {got!r}.")
    if not (np.allclose(p, [11, 8]) and np.allclose(v, [1, -2])):
        return fail(f"away from the walls a digit just moves: from (10, 10) at (1, -2) it should reach "
                    f"(11, 8) keeping (1, -2); you gave pos {p.tolist()}, vel {v.tolist()}.", hint)
    # 2. through the right wall (x) and the top wall (y), many times: new random speeds each time
    for pos, vel, axis, sign, what in (([10.0, 35.0], [1.0, 2.0], 1, -1, "right"),
                                       ([0.5, 10.0], [-1.5, 1.0], 0, +1, "top")):
        seen = []
        for _ in range(20):
            got, error = call(stochastic_step, "stochastic_step", np.array(pos), np.array(vel), canvas, speed, rng)
            if error:
                print(error)
                return False
            p, v = (np.asarray(x, dtype=float) for x in got)
            want_p = np.clip(np.array(pos) + np.array(vel), 0, canvas)
            if not np.allclose(p, want_p):
                return fail(f"through the {what} wall, pos {pos} + vel {vel} should stop at "
                            f"{want_p.tolist()}; you gave {p.tolist()}.", hint)
            inward, cross = sign * v[axis], v[1 - axis]
            if not 1.0 - 1e-9 <= inward <= 4.0 + 1e-9:
                return fail(f"after hitting the {what} wall the speed back into the frame should be in "
                            f"[1, 4] px/frame, pointing inside; you gave velocity {v.tolist()}.", hint)
            if not -4.0 - 1e-9 <= cross <= 4.0 + 1e-9:
                return fail(f"the speed along the {what} wall should be in [-4, 4]; you gave {cross:.3f}.",
                            hint)
            seen.append(v)
        seen = np.array(seen)
        if np.ptp(seen[:, axis]) < 1e-6 or np.ptp(seen[:, 1 - axis]) < 1e-6:
            return fail(f"20 bounces off the {what} wall all gave the same speed on one axis: the "
                        "stochastic rule draws new random speeds for both axes at every bounce.",
                        "use the rng argument: rng.uniform(low, high).")
    return ok("Correct: your digit stops at walls and leaves them with new random speeds, as in SVG.")


@verdict
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
        got, error = call(motion_word, "motion_word", np.array(vel))
        if error:
            print(error)
            return False
        if got != want:
            return fail(f"velocities {vel} (columns are (v_y, v_x)) should give {want!r}, you gave {got!r}.",
                        "use the absolute values (bounces flip signs), atan2(mean |v_y|, mean |v_x|) in degrees: "
                        "below 30° horizontal, above 60° vertical, diagonal between.")
    return ok("Correct: your motion words match the captions' vocabulary.")


@verdict
def check_bounces_from_positions(bounces_from_positions) -> bool:
    """Exercise 3: ``bounces_from_positions(positions (f, 2), canvas) -> bool (f,)``."""
    from vdiff_edu.moving_mnist import simulate_trajectory

    hint = "a bounce leaves the digit exactly on a wall: a coordinate equal to 0 or to canvas (np.isclose)."
    canvas = 36.0
    hand = np.array([[5.0, 9.0], [5.0, 36.0], [5.0, 32.4], [0.0, 28.8]])  # right wall at frame 1, top at 3
    cases = [(hand, np.array([False, True, False, True]), "the hand-made path [[5, 9], [5, 36], [5, 32.4], [0, 28.8]]")]
    for seed, rule in ((0, "deterministic"), (1, "stochastic"), (2, "deterministic")):
        pos, _, bounces = simulate_trajectory(np.random.default_rng(seed), 40, canvas, 3.6, rule)
        cases.append((pos, bounces, f"a {rule} path of 40 frames (simulate_trajectory, seed {seed})"))
    for positions, want, what in cases:
        got, error = call(bounces_from_positions, "bounces_from_positions", positions.copy(), canvas)
        if error:
            print(error)
            return False
        got = np.asarray(got)
        if got.shape != want.shape:
            return fail(f"for {what} expected a bool array of shape {want.shape}, got shape {got.shape}.",
                        "one value per frame: reduce over the (y, x) axis with .any(axis=1).")
        if not np.array_equal(got.astype(bool), want):
            wrong = np.flatnonzero(got.astype(bool) != want).tolist()
            return fail(f"for {what} your answer differs from the true bounces at frames {wrong} "
                        f"(expected bounces at {np.flatnonzero(want).tolist()}).", hint)
    return ok("Correct: the positions alone tell you where every bounce happened.")
