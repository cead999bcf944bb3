"""Instructor solutions for the exercises of notebook 11 (given frames). Try them yourself first!"""

from __future__ import annotations

import torch


def ends_mask(num_frames, first, last):
    """Exercise 1. The first ``first`` and the last ``last`` frames given."""
    if first + last >= num_frames:
        raise ValueError(f"{first} + {last} given frames leave none of {num_frames} to generate")
    pos = torch.arange(num_frames)
    return (pos < first) | (pos >= num_frames - last)


def first_lost_frame(frame_probs, labels, patience=2):
    """Exercise 3. The first t with argmax != label at t, t+1, ..., t+patience-1; -1 if none."""
    wrong = (frame_probs.argmax(-1) != labels[:, None]).float()  # (n, L)
    # runs[:, t] = how many of frames t .. t+patience-1 are wrong: a sliding sum along the frames
    runs = wrong.unfold(1, patience, 1).sum(-1)  # (n, L - patience + 1)
    lost = runs >= patience
    first = lost.float().argmax(1)  # the first True (0 when there is none: fixed below)
    return torch.where(lost.any(1), first, torch.full_like(first, -1)).long()
