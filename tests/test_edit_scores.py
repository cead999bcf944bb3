"""Scores of video-to-video edits (``vdiff_edu.eval.edits``): centre distance on blocks drawn by hand, leak with a
reader that says what it is told, and the whole score on edits that must fail (an output that copies its input)."""

from __future__ import annotations

import numpy as np
import pytest

from test_prompt_faithfulness import FixedReader, block_clip
from vdiff_edu.eval.edits import CLOSE_PX, centre_distance, edit_scores, leak


def test_centre_distance_is_zero_for_the_input_and_the_shift_for_a_shifted_copy():
    inputs = np.stack([block_clip(4, 4, 1, 2), block_clip(20, 10, -1, 1)])  # (2, f, 32, 32)
    np.testing.assert_allclose(centre_distance(inputs, inputs), [0, 0], atol=1e-5)
    shifted = np.roll(inputs, 3, axis=-1)  # 3 px to the right, every frame (no block reaches the edge)
    np.testing.assert_allclose(centre_distance(shifted, inputs), [3, 3], atol=1e-4)
    diagonal = np.roll(np.roll(inputs, 3, axis=-1), 4, axis=-2)
    np.testing.assert_allclose(centre_distance(diagonal, inputs), [5, 5], atol=1e-4)
    with pytest.raises(ValueError, match="same shape"):
        centre_distance(inputs[:1], inputs)


def test_leak_counts_outputs_read_as_the_input_digit_among_edits_that_ask_for_another():
    outputs = np.stack([block_clip(4, 4, 1, 1)] * 4)
    prompts = ["a bold 8", "the digit 1", "a 3", "a thin 5"]
    inputs = [3, 3, 3, 5]  # the third and fourth ask for the input's own digit: not scored
    assert leak(outputs, prompts, inputs, FixedReader([3, 1, 3, 5])) == pytest.approx(1 / 2)
    assert leak(outputs, prompts, inputs, FixedReader([8, 1, 0, 0])) == 0.0
    assert np.isnan(leak(outputs[:1], ["a bold 3"], [3], FixedReader([3])))
    with pytest.raises(ValueError, match="one prompt and one input digit"):
        leak(outputs, prompts[:2], inputs, FixedReader([3] * 4))


def test_an_output_that_copies_its_input_keeps_structure_and_fails_content():
    inputs = np.stack([block_clip(4, 4, 1, 2, width=3), block_clip(18, 6, -1, 1, width=3)])  # thin-ish strokes
    prompts = ["the bold digit 8", "the bold digit 1"]
    copies = edit_scores(inputs, inputs, prompts, [3, 7], FixedReader([3, 7]), style_cuts=(1.5, 2.5))
    assert copies["centre_px"] == pytest.approx(0, abs=1e-5) and copies["close"] == 1.0
    assert copies["leak"] == 1.0 and copies["digit"] == 0.0 and copies["n"] == 2
    # the right content somewhere else: content right, structure lost
    elsewhere = np.roll(inputs, 8, axis=-2)
    moved = edit_scores(elsewhere, inputs, prompts, [3, 7], FixedReader([8, 1]), style_cuts=(1.5, 2.5))
    assert moved["centre_px"] > CLOSE_PX and moved["close"] == 0.0
    assert moved["digit"] == 1.0 and moved["leak"] == 0.0
