"""Faithfulness to a prompt (``vdiff_edu.eval.prompts``): each attribute's reading, checked on clips drawn by hand
where the answer is known, and the whole score on a case where it must fail (the wrong prompt)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vdiff_edu.captions import Meaning, caption
from vdiff_edu.eval.prompts import (calibrate_style_cuts, direction_of_track, motion_of_track, prompt_faithfulness,
                                    read_attributes, stroke_width, style_of_width)


def block_clip(top: int, left: int, dy: int, dx: int, height: int = 6, width: int = 6, size: int = 32,
               frames: int = 6, bounce_at: int | None = None) -> np.ndarray:
    """A white block moving (dy, dx) px a frame (reversing x at frame ``bounce_at``), uint8 (f, size, size)."""
    clip = np.zeros((frames, size, size), np.uint8)
    y, x = top, left
    for t in range(frames):
        clip[t, y:y + height, x:x + width] = 255
        if bounce_at is not None and t + 1 == bounce_at:
            dx = -dx
        y, x = y + dy, x + dx
    return clip


class FixedReader:
    """Stands in for the feature nets: the digit reader says ``digits[i]`` for clip i, for every frame."""

    def __init__(self, digits):
        self.digits = digits

    def frame_outputs(self, clips):
        n, f = clips.shape[:2]
        probs = torch.full((n, f, 10), 0.01)
        probs[torch.arange(n), :, torch.as_tensor(self.digits)] = 0.9
        return probs, torch.zeros(n, f, 4)


def test_stroke_width_by_hand_is_two_area_over_perimeter():
    line = np.zeros((1, 1, 10, 10), np.uint8)
    line[0, 0, 4, 1:9] = 255  # a 1 × 8 line: A = 8, P = 2·8 + 2 = 18
    assert stroke_width(line).item() == pytest.approx(2 * 8 / 18)
    bar = np.zeros((1, 2, 10, 10), np.uint8)
    bar[0, :, 2:5, 1:9] = 255  # a 3 × 8 bar in both frames: A = 24, P = 2·8 + 2·3 = 22
    assert stroke_width(bar).item() == pytest.approx(2 * 24 / 22)
    dark = np.full((1, 2, 10, 10), 100, np.uint8)  # grey below the ink threshold: no ink at all
    assert stroke_width(dark).item() == 0.0
    half = bar.copy()
    half[0, 1] = 0  # an empty frame is left out of the mean, not counted as width 0
    assert stroke_width(half).item() == pytest.approx(2 * 24 / 22)


def test_motion_and_direction_of_hand_made_tracks():
    right = np.array([[10, 3], [10, 5], [10, 7], [10, 6], [10, 4]], float)  # right, then bounces back left
    assert motion_of_track(right) == "horizontal" and direction_of_track(right) == "right"
    up_left = np.array([[20, 20], [19, 19], [17, 17], [16, 15]], float)
    assert motion_of_track(up_left) == "diagonal" and direction_of_track(up_left) == "up-left"
    slow_y = np.array([[5, 5], [5, 6], [6, 7], [7, 8], [8, 9]], float)  # y does not move on the first step
    assert motion_of_track(slow_y) == "diagonal" and direction_of_track(slow_y) == "down-right"
    down = np.array([[3, 9], [5, 9], [7, 10], [9, 10]], float)  # mostly down: |Δy| 2, |Δx| 1/3 → 80°
    assert motion_of_track(down) == "vertical" and direction_of_track(down) == "down"
    still = np.zeros((4, 2))
    assert direction_of_track(still) is None


def test_style_cuts_sit_between_the_medians_and_need_every_style():
    thin = [block_clip(5, 5, 0, 1, height=1, width=10)[None] for _ in range(3)]
    regular = [block_clip(5, 5, 0, 1, height=2, width=10)[None] for _ in range(3)]
    bold = [block_clip(5, 5, 0, 1, height=5, width=10)[None] for _ in range(3)]
    clips = np.concatenate(thin + regular + bold)  # (9, f, 32, 32)
    styles = ["thin"] * 3 + ["regular"] * 3 + ["bold"] * 3
    w = [2 * 10 / 22, 2 * 20 / 24, 2 * 50 / 30]  # 2A/P of the 1-, 2- and 5-px bars
    cuts = calibrate_style_cuts(clips, styles)
    assert cuts == pytest.approx(((w[0] + w[1]) / 2, (w[1] + w[2]) / 2))
    assert [style_of_width(x, cuts) for x in w] == ["thin", "regular", "bold"]
    with pytest.raises(ValueError, match="missing: \\['bold'\\]"):
        calibrate_style_cuts(clips[:6], styles[:6])
    with pytest.raises(ValueError, match="not increasing"):
        calibrate_style_cuts(clips, styles[::-1])


def test_prompt_faithfulness_scores_what_is_asked_and_fails_on_the_wrong_prompt():
    clips = np.stack([block_clip(10, 4, 0, 2), block_clip(20, 20, -2, -2), block_clip(4, 12, 2, 0, height=2)])
    nets = FixedReader([3, 5, 1])
    cuts = (1.0, 4.0)  # the 6×6 blocks (2A/P = 3) and the 2×6 one (2·12/16 = 1.5) are all regular
    read = read_attributes(clips, cuts)
    assert [(m.motion, m.direction, m.style) for m in read] == [
        ("horizontal", "right", "regular"), ("diagonal", "up-left", "regular"), ("vertical", "down", "regular")]
    true = [caption(Meaning(3, "horizontal", "right")), caption(Meaning(5, "diagonal", "up-left")),
            caption(Meaning(1, "vertical", "down", "regular"))]
    score = prompt_faithfulness(clips, true, nets, cuts)
    assert score == {"digit": 1.0, "n_digit": 3, "motion": 1.0, "n_motion": 3, "direction": 1.0, "n_direction": 3,
                     "style": 1.0, "n_style": 1}
    wrong = [caption(Meaning(8, "vertical", "up")), caption(Meaning(5, direction="down-right", style="bold")),
             caption(Meaning(1, style="thin"))]
    score = prompt_faithfulness(clips, wrong, nets, cuts, per_clip=True)
    assert score["digit"] == pytest.approx(2 / 3) and score["motion"] == 0.0 and score["direction"] == 0.0
    assert score["style"] == 0.0 and score["n_style"] == 2
    assert score["hits"]["motion"] == [False, None, None]  # only what a prompt says is scored
    empty = prompt_faithfulness(clips, ["", "", ""], nets, cuts)
    assert all(math.isnan(empty[a]) and empty[f"n_{a}"] == 0 for a in ("digit", "motion", "direction", "style"))
    with pytest.raises(ValueError, match="one prompt per clip: 3 clips but 2 prompts"):
        prompt_faithfulness(clips, true[:2], nets, cuts)
