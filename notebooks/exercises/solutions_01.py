"""Instructor solutions for notebook 01 (Moving MNIST). Try the exercises before reading these."""

from __future__ import annotations

import math

import numpy as np


def step(pos: np.ndarray, vel: np.ndarray, canvas: float) -> tuple[np.ndarray, np.ndarray]:
    """One frame of the deterministic rule: move, stop at a wall, reflect the velocity there."""
    pos = pos + vel
    low, high = pos < 0, pos > canvas
    pos = np.clip(pos, 0.0, canvas)
    vel = np.where(low, np.abs(vel), np.where(high, -np.abs(vel), vel))
    return pos, vel


def motion_word(velocities: np.ndarray) -> str:
    """'horizontal', 'vertical' or 'diagonal' from the angle of (mean |v_x|, mean |v_y|)."""
    mean_abs = np.abs(np.asarray(velocities, dtype=float)).mean(axis=0)  # (|v_y|, |v_x|)
    angle = math.degrees(math.atan2(mean_abs[0], mean_abs[1]))
    if angle < 30:
        return "horizontal"
    if angle > 60:
        return "vertical"
    return "diagonal"


def overlay(a: np.ndarray, b: np.ndarray, rule: str) -> np.ndarray:
    """Composite two digit layers in [0, 1]: max (deterministic) or sum then clip (stochastic)."""
    if rule == "deterministic":
        return np.maximum(a, b)
    return np.clip(a + b, 0.0, 1.0)
