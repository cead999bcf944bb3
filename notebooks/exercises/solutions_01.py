"""Instructor solutions for notebook 01 (Moving MNIST). Try the exercises before reading these."""

from __future__ import annotations

import math

import numpy as np


def stochastic_step(pos: np.ndarray, vel: np.ndarray, canvas: float, speed: float,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One frame of the stochastic rule (Denton & Fergus 2018): move; at a wall stop there, then draw a new
    inward speed in [1, 4]·speed/3.6 for the axis that hit, and a new speed in [-4, 4]·speed/3.6 for the other."""
    pos = pos + vel
    low, high = pos < 0, pos > canvas
    hit = low | high
    if not hit.any():
        return pos, vel
    pos = np.clip(pos, 0.0, canvas)
    inward = np.where(low, 1.0, -1.0)
    new_inward = inward * rng.uniform(1.0, 4.0, size=2) * speed / 3.6
    new_cross = rng.uniform(-4.0, 4.0, size=2) * speed / 3.6
    return pos, np.where(hit, new_inward, new_cross)


def motion_word(velocities: np.ndarray) -> str:
    """'horizontal', 'vertical' or 'diagonal' from the angle of (mean |v_x|, mean |v_y|)."""
    mean_abs = np.abs(np.asarray(velocities, dtype=float)).mean(axis=0)  # (|v_y|, |v_x|)
    angle = math.degrees(math.atan2(mean_abs[0], mean_abs[1]))
    if angle < 30:
        return "horizontal"
    if angle > 60:
        return "vertical"
    return "diagonal"


def bounces_from_positions(positions: np.ndarray, canvas: float) -> np.ndarray:
    """``positions (f, 2)`` → bool ``(f,)``: True at the frames where the digit sits on a wall (it just bounced).
    Frame 0 is the start, never a bounce."""
    positions = np.asarray(positions, dtype=float)
    on_wall = (np.isclose(positions, 0.0, atol=1e-4) | np.isclose(positions, canvas, atol=1e-4)).any(axis=1)
    on_wall[0] = False
    return on_wall
