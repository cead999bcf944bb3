"""Scores of video-to-video edits: did the output keep the input's structure and take the prompt's content? (issue 11)

An edit has an input clip (its structure: where the digit is, frame by frame) and a prompt that names new content
("the bold digit 8"). Three scores, each read from the frames by a measurement (never by the generator):

    structure fidelity   the distance in px between the tracked centre of the output's ink and the input's, per
                         frame (``metrics.position_errors``): 0 = the output moves exactly as the input did
    faithfulness         the share of outputs that show what the prompt names: digit by the shipped digit reader,
                         stroke by its width (``prompts.prompt_faithfulness``)
    leak                 the share of outputs, among edits that ask for another digit than the input's, in which
                         the digit reader sees the *input's* digit: the input's shape showing through

Gen-1's trade-off (Esser et al. 2023, section 4) is that the more detail the structure keeps, the better the output
follows the input and the more of the input's content leaks through; measured over the levels of detail, these
scores make it a curve. Baselines bracket them (``benchmarks/bench_v2v.py``): the input itself (centre 0 px, leak
1) and the model with no structure at all (level 0: text to video).

    scores = edit_scores(outputs, inputs, prompts, input_digits, nets, style_cuts)
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..captions import parse
from .feature_nets import FeatureNets
from .metrics import _uint8_clips, position_errors
from .prompts import prompt_faithfulness

CLOSE_PX = 1.5  # "follows the input": the mean centre distance over the frames is at most this many px


def centre_distance(outputs, inputs) -> np.ndarray:
    """Mean over frames of the distance in px between the tracked centres of each output and its input, ``(n,)``;
    clips uint8 ``(n, f, h, w)`` (or ``(n, 1, f, h, w)`` in [-1, 1]), one digit each."""
    outputs, inputs = _uint8_clips(outputs), _uint8_clips(inputs)
    if outputs.shape != inputs.shape:
        raise ValueError(f"need one output per input, of the same shape: got {outputs.shape} and {inputs.shape}")
    return position_errors(outputs, inputs, 1)[:, 0].mean(dim=1).numpy()  # (n,)


def leak(outputs, prompts: Sequence[str], input_digits: Sequence[int], nets: FeatureNets) -> float:
    """Among the edits whose prompt asks for another digit than the input's, the share whose output the digit reader
    reads as the input's digit (NaN if no prompt asks for another digit)."""
    outputs = _uint8_clips(outputs)
    asked = [parse(p).digit for p in prompts]
    if not len(asked) == len(input_digits) == len(outputs):
        raise ValueError(f"need one prompt and one input digit per output: {len(outputs)} outputs, {len(asked)} "
                         f"prompts, {len(input_digits)} input digits")
    probs, _ = nets.frame_outputs(outputs)  # (n, f, 10)
    read = probs.mean(dim=1).argmax(dim=1).numpy()  # (n,)
    other = [i for i, (a, d) in enumerate(zip(asked, input_digits)) if a is not None and a != int(d)]
    if not other:
        return float("nan")
    return float(np.mean([read[i] == int(input_digits[i]) for i in other]))


def edit_scores(outputs, inputs, prompts: Sequence[str], input_digits: Sequence[int], nets: FeatureNets,
                style_cuts: tuple[float, float]) -> dict[str, float]:
    """Every score of a set of edits: ``centre_px`` (mean ``centre_distance``), ``close`` (share of edits within
    ``CLOSE_PX``), ``digit`` and ``style`` (faithfulness to the prompt, over the prompts that name them),
    ``leak`` and ``n`` (the number of edits)."""
    distance = centre_distance(outputs, inputs)  # (n,)
    faithful = prompt_faithfulness(outputs, prompts, nets, style_cuts)
    return {"centre_px": float(distance.mean()), "close": float((distance <= CLOSE_PX).mean()),
            "digit": faithful["digit"], "style": faithful["style"],
            "leak": leak(outputs, prompts, input_digits, nets), "n": len(distance)}
