"""Faithfulness to a prompt: does a clip show what its prompt says? (issue 10)

A prompt of the caption grammar says up to four things about its digit (``captions.Meaning``). Each is read back
from the frames by a measurement, never by a network trained with the generator, and the share of clips where
the reading equals what the prompt said is that attribute's faithfulness:

    digit      the shipped digit reader (``feature_nets.DigitClassifier``): the most probable digit after averaging
               its probabilities over the frames (as ``metrics.condition_faithfulness`` reads one digit)
    motion     the tracked centre of the ink c(t) = (y, x) (``metrics.track_digits``): the angle of
               (mean |Δy|, mean |Δx|) over the clip, with the thresholds of ``moving_mnist.motion_of``
               (< 30° horizontal, > 60° vertical, between: diagonal). A bounce flips a sign, not a magnitude.
    direction  the motion says the axes; on each, the sign of the first step of the tracked centre that moves
               along it says which way (``direction_of_track``)
    style      the stroke width of the ink, w = 2·A / P (A ink pixels, P the edges between ink and background:
               a stroke of length ℓ and width w has A ≈ ℓ·w and P ≈ 2ℓ), averaged over the frames; thin, regular
               or bold by two cuts calibrated on real clips of known style (``calibrate_style_cuts``)

Motion and direction come from where the ink is, not from a classifier: a classifier can be fooled by a clip
that looks like its training data, a centroid cannot. Only what a prompt says is scored: "a bold 7" is scored
on digit and style, "" on nothing.

    cuts = calibrate_style_cuts(real_clips, real_styles)
    scores = prompt_faithfulness(clips, prompts, nets, cuts)   # {"digit": 0.97, "motion": 0.91, ...}

Baselines that bracket it (``benchmarks/bench_text.py``): real clips with their own captions (the ceiling of what
the measurements can confirm) and real clips with another clip's caption (what chance gives).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..captions import STYLES, Meaning, parse
from ..moving_mnist import motion_of
from .feature_nets import FeatureNets
from .metrics import _uint8_clips, track_digits

ATTRIBUTES = ("digit", "motion", "direction", "style")
INK = 0.5  # a pixel is ink where it is brighter than half of full white


# ----------------------------------------------------------------------------- 1. motion and direction


def motion_of_track(track: np.ndarray) -> str:
    """``track (f, 2)`` (y, x) centres → horizontal, vertical or diagonal: the generator's own rule
    (``moving_mnist.motion_of``, the angle of the mean absolute step) applied to the tracked steps."""
    return motion_of(np.diff(np.asarray(track, dtype=np.float64), axis=0))  # steps (f-1, 2) = (Δy, Δx)


def direction_of_track(track: np.ndarray) -> str | None:
    """The direction word at the start of ``track (f, 2)``: the motion of the whole track (``motion_of_track``) says
    which axes it moves along, and on each of them the sign of the first step that moves at all says which way
    (y grows downwards). Rendered positions are whole pixels, so one step of a slow axis is often 0, and the
    angle of a single step is too coarse to name (a step (1, 2) is 27°: left/right or a diagonal?). None if the
    centre never moves along an axis it should."""
    steps = np.diff(np.asarray(track, dtype=np.float64), axis=0)  # (f-1, 2) = (Δy, Δx)
    motion = motion_of_track(track)

    def first_sign(axis: int) -> float:
        moving = np.flatnonzero(steps[:, axis] != 0)
        return float(np.sign(steps[moving[0], axis])) if len(moving) else 0.0

    sy, sx = first_sign(0), first_sign(1)
    vertical, horizontal = ("down" if sy > 0 else "up"), ("right" if sx > 0 else "left")
    if motion == "horizontal":
        return horizontal if sx else None
    if motion == "vertical":
        return vertical if sy else None
    return f"{vertical}-{horizontal}" if sx and sy else None


# ----------------------------------------------------------------------------- 2. stroke width


def stroke_width(clips) -> torch.Tensor:
    """Mean stroke width in px of each clip, ``(n,)``: per frame w = 2·A / P (module docstring), then averaged over
    the frames that hold ink. A clip with no ink anywhere gets 0."""
    x = torch.as_tensor(_uint8_clips(clips)).float() / 255  # (n, f, h, w) in [0, 1]
    ink = x > INK  # (n, f, h, w)
    area = ink.sum(dim=(-2, -1)).float()  # (n, f)
    padded = torch.nn.functional.pad(ink.float(), (1, 1, 1, 1))  # outside the frame is background
    edges = ((padded[..., 1:, 1:-1] != padded[..., :-1, 1:-1]).sum(dim=(-2, -1))  # between vertical neighbours
             + (padded[..., 1:-1, 1:] != padded[..., 1:-1, :-1]).sum(dim=(-2, -1))).float()  # (n, f) horizontal
    width = 2 * area / edges.clamp(min=1)  # (n, f)
    has_ink = area > 0
    return (width * has_ink).sum(dim=1) / has_ink.sum(dim=1).clamp(min=1)  # (n,)


def calibrate_style_cuts(clips, styles: Sequence[str]) -> tuple[float, float]:
    """The two stroke widths that separate thin | regular | bold: the midpoints between the median widths of real
    clips of each style (``styles``, one name of ``captions.STYLES`` per clip; every style must occur)."""
    widths = stroke_width(clips).numpy()
    styles = np.asarray(styles)
    missing = [s for s in STYLES if not (styles == s).any()]
    if len(styles) != len(widths) or missing:
        raise ValueError(f"need one style per clip ({len(widths)} clips, {len(styles)} styles) and clips of every "
                         f"style {STYLES}; missing: {missing}")
    medians = [float(np.median(widths[styles == s])) for s in STYLES]  # thin < regular < bold
    if not medians[0] < medians[1] < medians[2]:
        raise ValueError(f"median stroke widths {medians} of {STYLES} are not increasing: these clips cannot "
                         f"calibrate the style reader")
    return (medians[0] + medians[1]) / 2, (medians[1] + medians[2]) / 2


def style_of_width(width: float, cuts: tuple[float, float]) -> str:
    return STYLES[0] if width < cuts[0] else STYLES[1] if width < cuts[1] else STYLES[2]


# ----------------------------------------------------------------------------- 3. every attribute at once


def read_attributes(clips, style_cuts: tuple[float, float]) -> list[Meaning]:
    """What the measurements read from each clip (one digit each): motion, direction and style; the digit is read
    with the digit reader in ``prompt_faithfulness``, and is None here."""
    tracks = track_digits(clips, 1)[:, :, 0].numpy()  # (n, f, 2)
    widths = stroke_width(clips).numpy()  # (n,)
    return [Meaning(None, motion_of_track(tr), direction_of_track(tr), style_of_width(w, style_cuts))
            for tr, w in zip(tracks, widths)]


def prompt_faithfulness(clips, prompts: Sequence[str], nets: FeatureNets, style_cuts: tuple[float, float],
                        per_clip: bool = False) -> dict:
    """Share of clips whose frames show what their prompt says, per attribute (``ATTRIBUTES``), counting only the
    clips whose prompt names that attribute; with it ``n_<attribute>``, how many clips that is (NaN share where
    none). One digit per clip. ``per_clip=True`` also returns ``hits``: per attribute a list of True / False /
    None (not asked)."""
    clips = _uint8_clips(clips)
    if len(prompts) != len(clips):
        raise ValueError(f"need one prompt per clip: {len(clips)} clips but {len(prompts)} prompts")
    asked = [parse(p) for p in prompts]
    read = read_attributes(clips, style_cuts)
    probs, _ = nets.frame_outputs(clips)  # (n, f, 10)
    digits = probs.mean(dim=1).argmax(dim=1).tolist()  # (n,) the digit reader's answer
    hits: dict[str, list] = {a: [] for a in ATTRIBUTES}
    for a, r, d in zip(asked, read, digits):
        hits["digit"].append(None if a.digit is None else a.digit == d)
        for name in ATTRIBUTES[1:]:
            want = getattr(a, name)
            hits[name].append(None if want is None else want == getattr(r, name))
    out: dict = {}
    for name in ATTRIBUTES:
        scored = [h for h in hits[name] if h is not None]
        out[name] = float(np.mean(scored)) if scored else float("nan")
        out[f"n_{name}"] = len(scored)
    if per_clip:
        out["hits"] = hits
    return out
