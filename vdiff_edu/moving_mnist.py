"""Moving MNIST: digits that bounce around a frame, rendered into clips, with captions that say what moves.

The module reads bottom-up:

1. **motion** — one digit's path under the two published rule sets: *deterministic* (Srivastava et al. 2015:
   reflect at the walls) and *stochastic* (Denton & Fergus 2018: a new random speed at each bounce).
2. **captions** — the motion word of a path (horizontal, vertical, diagonal) and a plain-word caption.
3. **rendering** — stroke styles (thin, regular, bold: grey-scale erosion or dilation of the digit), and digits
   pasted into frames (``max`` or sum-then-clip where they overlap).
4. **MovingMNIST** — a map-style dataset: clip ``i`` depends only on ``(seed, split, i)``; ``make_clips``.

The digits themselves come from ``digits.py`` (MNIST, its download cache, or the synthetic fallback).
Pixel convention: videos are float32 in [-1, 1] (-1 = black background, 1 = ink); ``utils.to_uint8`` makes the
uint8 0..255 of files.
"""

from __future__ import annotations

import math
import operator
import os
from typing import Iterable, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, default_collate

from .captions import DIRECTIONS, STYLES, TRAIN_TEMPLATES, Meaning, caption as render_caption, start_direction
from .digits import DigitSet, load_digits
from .utils import check_choice, check_int

SPLITS = ("train", "test", "eval", "holdout")  # Moving MNIST splits; all but train draw from test digits
SPLIT_IDS = {"train": 0, "test": 1, "eval": 2, "holdout": 3}  # mixed into each clip's random seed
RULES = ("deterministic", "stochastic")
EVAL_SEED = 0  # the fixed evaluation set is MovingMNIST(split="eval", seed=EVAL_SEED)

# ------------------------------------------------------------------------------------------ 1. motion ----

DEFAULT_SPEED_64 = 3.6  # px/frame at 64×64: Srivastava's step of 0.1 × (64 - 28)
# Stochastic rule (SVG's integer speeds at 64 px: inward 1..4, cross -4..4), relative to the nominal speed:
STOCHASTIC_INWARD = (1 / 3.6, 4 / 3.6)  # new speed away from the wall, × speed
STOCHASTIC_CROSS = 4 / 3.6  # new speed along the wall in [-this, this] × speed


def default_speed(image_size: int) -> float:
    """3.6 px/frame at 64×64, scaled with the frame: 1.8 px/frame at 32×32."""
    return DEFAULT_SPEED_64 * image_size / 64


def simulate_trajectory(rng: np.random.Generator, num_frames: int, canvas: float, speed: float,
                        rule: str = "deterministic") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One digit's path: ``positions (f, 2)`` top-left (y, x) in px, ``velocities (f, 2)``, ``bounces (f,)``.

    ``canvas = image_size - digit_size``: the top-left corner lives in [0, canvas]². ``velocities[f]`` is the
    velocity after any bounce at frame f, so ``positions[f+1] = clip(positions[f] + velocities[f])``.
    Random draws, in this order: start (y, x) ~ U(0, canvas)²; direction θ ~ U(0, 2π) at ``speed`` px/frame;
    then (stochastic rule only) two inward and two cross speeds at each bounce.
    """
    # 1. start uniform in the frame, a random direction at a fixed speed (Srivastava et al. 2015)
    pos = rng.uniform(0.0, canvas, size=2)  # (2,) = (y, x)
    theta = rng.uniform(0.0, 2 * np.pi)
    vel = speed * np.array([np.sin(theta), np.cos(theta)])  # (2,), |v| = speed
    positions, velocities = np.empty((num_frames, 2)), np.empty((num_frames, 2))
    bounces = np.zeros(num_frames, dtype=bool)
    positions[0], velocities[0] = pos, vel
    for f in range(1, num_frames):
        # 2. step along the velocity
        pos = pos + vel
        low, high = pos < 0, pos > canvas
        hit = low | high
        if hit.any():
            # 3. stop at the wall (Srivastava's generator clamps there) ...
            pos = np.clip(pos, 0.0, canvas)
            inward = np.where(low, 1.0, -1.0)  # the sign that points back into the frame
            if rule == "deterministic":
                # 4a. ... and reflect: the velocity component normal to the wall changes sign
                vel = np.where(hit, inward * np.abs(vel), vel)
            else:
                # 4b. ... and draw a new random inward speed and a new cross speed (Denton & Fergus 2018)
                new_inward = inward * rng.uniform(*STOCHASTIC_INWARD, size=2) * speed
                new_cross = rng.uniform(-STOCHASTIC_CROSS, STOCHASTIC_CROSS, size=2) * speed
                vel = np.where(hit, new_inward, new_cross)  # a corner hit sends both axes inward
            bounces[f] = True
        positions[f], velocities[f] = pos, vel
    return positions, velocities, bounces



# ---------------------------------------------------------------------------------------- 2. captions ----

# Motion words for captions, from a digit's dominant direction over the clip: the angle of
# (mean |v_x|, mean |v_y|) falls in [0°, 30°) → horizontal, (60°, 90°] → vertical, else diagonal.
# Bounces flip signs but keep the axis, so the deterministic rule's motion never changes within a clip.
MOTIONS = ("horizontal", "vertical", "diagonal")
MOTION_PHRASES = {"horizontal": "moves left and right", "vertical": "moves up and down",
                  "diagonal": "moves diagonally"}


def motion_of(velocities: np.ndarray) -> str:
    """The motion word (``MOTIONS``) of one digit's ``velocities (f, 2)``: its dominant direction."""
    mean_abs = np.abs(np.asarray(velocities, dtype=np.float64)).mean(axis=0)  # (2,) = (|v_y|, |v_x|)
    angle = math.degrees(math.atan2(mean_abs[0], mean_abs[1]))  # 0° = horizontal, 90° = vertical
    return "horizontal" if angle < 30 else "vertical" if angle > 60 else "diagonal"


def make_caption(labels: Iterable[int], motions: Iterable[str]) -> str:
    """``[3, 7], ["horizontal", "vertical"]`` → "the digit 3 moves left and right and the digit 7 moves up
    and down"; three digits are joined "A, B and C"."""
    parts = [f"the digit {int(d)} {MOTION_PHRASES[m]}" for d, m in zip(labels, motions)]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


# ----------------------------------------------------------------------------------- 3. rendering ----


CROSS = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=bool)  # a pixel and its 4 neighbours


def _filter3x3(image: np.ndarray, op) -> np.ndarray:
    """``op`` (np.min or np.max) over every pixel's ``CROSS`` (itself and its 4 neighbours); outside the image counts
    as background (0)."""
    padded = np.pad(image, 1, constant_values=0.0)  # (d+2, d+2)
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3))[..., CROSS]  # (d, d, 5)
    return op(windows, axis=-1).astype(np.float32)  # (d, d)


def stroke_style(digit: np.ndarray, style: str) -> np.ndarray:
    """A digit ``(d, d)`` in [0, 1] drawn ``thin``, ``regular`` or ``bold`` (``captions.STYLES``), by grey-scale
    morphology with the 3×3 cross ``CROSS`` (a pixel and its 4 neighbours), once (Gonzalez & Woods, *Digital
    Image Processing*, ch. 9.6):

        thin    = erosion   (f ⊖ b)(y, x) = min over (y, x) and its 4 neighbours   a stroke loses about a pixel a side
        regular = f                                                                the digit as MNIST drew it
        bold    = dilation  (f ⊕ b)(y, x) = max over (y, x) and its 4 neighbours   a stroke gains about a pixel a side

    Applied after resizing, so "a pixel" is one pixel of the frame whatever ``digit_size`` is. Why the cross and not
    the 3×3 square: at 20 px the square's erosion left a thin digit an eighth of its ink, hard to read, and its
    dilation made bold digits blobs the digit reader named right 64 % of the time (the cross: 87 %; docs/text.md)."""
    check_choice("style", style, STYLES)
    if style == "regular":
        return digit
    return _filter3x3(digit, np.min if style == "thin" else np.max)


def resize_digit(image: np.ndarray, size: int) -> np.ndarray:
    """A uint8 digit ``(28, 28)`` → float32 ``(size, size)`` in [0, 1], antialiased (Pillow's bilinear filter
    widens its support when shrinking)."""
    if image.shape == (size, size):
        return image.astype(np.float32) / 255
    small = Image.fromarray(np.ascontiguousarray(image)).resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(small, dtype=np.float32) / 255


def render_clip(digits: Sequence[np.ndarray], positions: np.ndarray, image_size: int,
                rule: str = "deterministic") -> np.ndarray:
    """Paste each digit ``(d, d)`` in [0, 1] at its rounded top-left ``positions (f, num_digits, 2)``.

    Overlaps: ``max`` for the deterministic rule (Srivastava et al.), sum then clip to 1 for the stochastic
    rule (Denton & Fergus). Returns frames ``(f, h, w)`` float32 in [0, 1]."""
    num_frames = positions.shape[0]
    frames = np.zeros((num_frames, image_size, image_size), dtype=np.float32)  # (f, h, w)
    corners = np.rint(positions).astype(np.int64)  # (f, num_digits, 2)
    for k, digit in enumerate(digits):
        d = digit.shape[0]
        for f in range(num_frames):
            y, x = corners[f, k]
            patch = frames[f, y:y + d, x:x + d]  # (d, d) view into the frame
            if rule == "deterministic":
                np.maximum(patch, digit, out=patch)
            else:
                patch += digit
    if rule != "deterministic":
        np.clip(frames, 0.0, 1.0, out=frames)
    return frames


# ---------------------------------------------------------------------------------- 4. MovingMNIST ----


class MovingMNIST(Dataset):
    """Moving MNIST clips, generated on the fly; clip ``i`` depends only on ``(seed, split, i)``: digit ``k`` of
    it draws every random number from ``numpy.random.default_rng([seed, SPLIT_IDS[split], i, k])``.

    ``ds[i]`` is a dict:
        video       float32 (1, f, h, w) in [-1, 1]   -1 = background
        labels      int64 (num_digits,)              the digits, 0..9
        motions     int64 (num_digits,)              index into MOTIONS (horizontal, vertical, diagonal)
        styles      int64 (num_digits,)              index into captions.STYLES (thin, regular, bold)
        directions  int64 (num_digits,)              index into captions.DIRECTIONS: travel at the first frame
        caption     str                              "the digit 3 moves left and right and the digit 7 ..."
                                                     (with styles on: "the bold digit 3 moves left and right")
        positions   float32 (f, num_digits, 2)       top-left corner (y, x) in px; rendered at its rounding
        velocities  float32 (f, num_digits, 2)       px/frame after any bounce at that frame
        bounces     bool (f, num_digits)             the digit hit a wall arriving at that frame
        digit_ids   int64 (num_digits,)              which image of ``self.digits`` each digit is
        index       int                              i

    Splits: ``train`` draws from MNIST's train digits; ``test``, ``eval`` (the fixed evaluation set, see
    ``eval_set``) and ``holdout`` from its test digits, so train never shares a digit image with them.
    ``holdout`` is a set of ``(digit, motion)`` and ``(digit, style)`` pairs, e.g. ``{(3, "vertical"), (7, "bold")}``:
    no train clip holds such a digit, and ``split="holdout"`` gives clips made only of them.

    ``styles``: the stroke styles each digit draws from, uniformly (``captions.STYLES``). The default
    ``("regular",)`` draws no random number for it, so the clips are exactly those made before styles existed;
    the text presets use ``("thin", "regular", "bold")``. A style is drawn after the digit's path.
    """

    def __init__(self, split: str = "train", num_frames: int = 20, image_size: int = 64, num_digits: int = 2,
                 rule: str = "deterministic", seed: int = 0, length: int = 10_000, digit_size: int = 28,
                 speed: float | None = None, mnist_dir: str | os.PathLike | None = None,
                 holdout: Iterable[tuple[int, str]] | None = None, download: bool = True,
                 digits: DigitSet | None = None, verbose: bool = True, styles: Sequence[str] = ("regular",)):
        # 1. check every parameter, naming it, its value and the valid range
        check_choice("split", split, SPLITS)
        check_choice("rule", rule, RULES)
        check_int("num_frames", num_frames, 1, 1000, "a clip needs at least one frame")
        check_int("num_digits", num_digits, 1, 3, "Moving MNIST clips hold one to three digits")
        check_int("digit_size", digit_size, 4, 256, "MNIST digits are 28 px; 20 suits 32×32 frames")
        check_int("image_size", image_size, 1, 1024)
        if image_size <= digit_size:
            raise ValueError(f"image_size={image_size} is not larger than digit_size={digit_size}: a digit must fit "
                             f"in the frame with room to move; use image_size >= {digit_size + 1} or a smaller "
                             f"digit_size (e.g. image_size=32, digit_size=20).")
        check_int("seed", seed, 0, None, "seeds are non-negative integers")
        check_int("length", length, 1, None, "the number of clips in the dataset")
        if speed is None:
            speed = default_speed(image_size)
        if not isinstance(speed, (int, float)) or isinstance(speed, bool) or not 0 < speed <= image_size:
            raise ValueError(f"speed must be a number in (0, image_size={image_size}] px/frame; got {speed!r}. "
                             f"None picks {default_speed(image_size):.2f} (3.6 px/frame at 64×64, scaled).")
        if isinstance(styles, str) or not styles or len(set(styles)) != len(tuple(styles)):
            raise ValueError(f"styles must be a non-empty tuple of distinct names among {STYLES}, e.g. "
                             f"styles=('thin', 'regular', 'bold'); got {styles!r}.")
        for name in styles:
            check_choice("style", name, STYLES)
        self.styles = tuple(styles)
        self.holdout = self._check_holdout(holdout)
        unreachable = sorted((d, v) for d, v in self.holdout if v in STYLES and v not in self.styles)
        if split == "holdout" and unreachable:
            raise ValueError(f"holdout pairs {unreachable} name styles this dataset never draws (styles="
                             f"{self.styles}); add them to styles=..., e.g. styles=('thin', 'regular', 'bold').")
        if split == "holdout" and not self.holdout:
            raise ValueError("split='holdout' needs holdout=...: a non-empty set of (digit, motion) or (digit, style) "
                             "pairs, e.g. holdout={(3, 'vertical'), (7, 'bold')}.")

        self.split, self.num_frames, self.image_size, self.num_digits = split, num_frames, image_size, num_digits
        self.rule, self.seed, self.length, self.digit_size = rule, seed, length, digit_size
        self.speed = float(speed)
        self.canvas = float(image_size - digit_size)  # the top-left corner lives in [0, canvas]²

        # 2. the digits: train from MNIST's train split, every other split from its test split
        digit_split = "train" if split == "train" else "test"
        self.digits = digits if digits is not None else load_digits(digit_split, mnist_dir, download, verbose=verbose)
        if len(self.digits) == 0:
            raise ValueError("digits is empty; pass a DigitSet with at least one image.")
        self.source = self.digits.source
        self._by_label = {d: np.flatnonzero(self.digits.labels == d) for d in range(10)}
        if split == "holdout":
            self._targets = sorted(self.holdout)
            missing = sorted({d for d, _ in self._targets if len(self._by_label[d]) == 0})
            if missing:
                raise ValueError(f"holdout digits {missing} do not occur in the {digit_split} digits ({self.source}).")

    @staticmethod
    def _check_holdout(holdout) -> frozenset:
        pairs = frozenset()
        for item in holdout or ():
            try:
                digit, motion = item
            except (TypeError, ValueError):
                raise ValueError(f"holdout must hold (digit, motion) or (digit, style) pairs such as (3, 'vertical') "
                                 f"or (7, 'bold'); got {item!r}.") from None
            check_int("holdout digit", digit, 0, 9)
            check_choice("holdout motion or style", motion, MOTIONS + STYLES)
            pairs |= {(int(digit), motion)}
        if len({p for p in pairs if p[1] in MOTIONS}) == 10 * len(MOTIONS):
            raise ValueError("holdout holds all 30 (digit, motion) pairs: nothing would be left to train on.")
        return pairs

    @classmethod
    def eval_set(cls, length: int = 512, **kwargs) -> "MovingMNIST":
        """The fixed evaluation set: test digits, ``seed=EVAL_SEED``; pass the same sizes/rule as training."""
        return cls(split="eval", seed=EVAL_SEED, length=length, **kwargs)

    def __len__(self) -> int:
        return self.length

    def __repr__(self) -> str:
        return (f"MovingMNIST(split={self.split!r}, rule={self.rule!r}, {self.length:,} clips of "
                f"{self.num_frames}×{self.image_size}×{self.image_size}, {self.num_digits} digit(s) of "
                f"{self.digit_size} px at {self.speed:.2f} px/frame, seed={self.seed}"
                + (f", holdout={sorted(self.holdout)}" if self.holdout else "") + f"; digits: {self.source})")

    def _sample_digit(self, rng: np.random.Generator) -> tuple[int, str, str, np.ndarray, np.ndarray, np.ndarray]:
        """Draw one digit image, its path and its style, rejecting (digit, motion) and (digit, style) pairs the split
        must not hold. Draws in this order: the image, the path, the style (only when there are several)."""
        for _ in range(1000):
            if self.split == "holdout":
                label, want = self._targets[int(rng.integers(len(self._targets)))]
                pool = self._by_label[label]
                k = int(pool[rng.integers(len(pool))])
            else:
                k, want = int(rng.integers(len(self.digits))), None
            pos, vel, bounces = simulate_trajectory(rng, self.num_frames, self.canvas, self.speed, self.rule)
            motion = motion_of(vel)
            style = self.styles[int(rng.integers(len(self.styles)))] if len(self.styles) > 1 else self.styles[0]
            if want in STYLES:
                style = want  # a held-out (digit, style) pair: the style is the point
            label = int(self.digits.labels[k])
            if want in MOTIONS and motion != want:
                continue
            if self.split == "train" and ((label, motion) in self.holdout or (label, style) in self.holdout):
                continue
            return k, motion, style, pos, vel, bounces
        raise RuntimeError(f"could not draw a digit allowed in split {self.split!r} after 1000 tries "
                           f"(holdout={sorted(self.holdout)}); hold out fewer pairs.")

    def __getitem__(self, index: int) -> dict:
        i = operator.index(index)
        if i < 0:
            i += self.length
        if not 0 <= i < self.length:
            raise IndexError(f"clip index {index} is out of range for a MovingMNIST of length {self.length}.")
        # every random draw of digit k in clip i comes from its own generator, seeded by (seed, split, i, k):
        # the clip depends on nothing else, and each digit's draws are independent of the others'
        draws = [self._sample_digit(np.random.default_rng([self.seed, SPLIT_IDS[self.split], i, k]))
                 for k in range(self.num_digits)]
        ids = [k for k, *_ in draws]
        labels = [int(self.digits.labels[k]) for k in ids]
        motions = [m for _, m, *_ in draws]
        styles = [s for _, _, s, *_ in draws]
        directions = [start_direction(v) for *_, v, _ in draws]  # captions.start_direction: from the first frame
        positions = np.stack([p for *_, p, _, _ in draws], axis=1)  # (f, num_digits, 2)
        velocities = np.stack([v for *_, v, _ in draws], axis=1)  # (f, num_digits, 2)
        bounces = np.stack([b for *_, b in draws], axis=1)  # (f, num_digits)
        pixels = [stroke_style(resize_digit(self.digits.images[k], self.digit_size), s)  # num_digits × (d, d)
                  for k, s in zip(ids, styles)]
        frames = render_clip(pixels, positions, self.image_size, self.rule)  # (f, h, w) in [0, 1]
        video = torch.from_numpy(frames * 2 - 1).unsqueeze(0)  # (1, f, h, w) in [-1, 1]
        return {
            "video": video,
            "labels": torch.tensor(labels, dtype=torch.int64),
            "motions": torch.tensor([MOTIONS.index(m) for m in motions], dtype=torch.int64),
            "styles": torch.tensor([STYLES.index(s) for s in styles], dtype=torch.int64),
            "directions": torch.tensor([DIRECTIONS.index(r) for r in directions], dtype=torch.int64),
            "caption": (make_caption(labels, motions) if self.styles == ("regular",) else  # today's wording
                        render_caption([Meaning(d, m, style=s) for d, m, s in zip(labels, motions, styles)],
                                       TRAIN_TEMPLATES[0])),  # "the bold digit 3 moves left and right"
            "positions": torch.from_numpy(positions.astype(np.float32)),
            "velocities": torch.from_numpy(velocities.astype(np.float32)),
            "bounces": torch.from_numpy(bounces),
            "digit_ids": torch.tensor(ids, dtype=torch.int64),
            "index": i,
        }

    def batch(self, indices: Iterable[int]) -> dict:
        """Clips ``indices`` collated exactly as a DataLoader would: ``video (b, 1, f, h, w)``, captions a list."""
        return default_collate([self[i] for i in indices])


def make_clips(ds: MovingMNIST, n: int, start: int = 0) -> torch.Tensor:
    """The videos of clips ``start .. start + n - 1`` stacked: ``(n, 1, f, h, w)`` float32 in [-1, 1]."""
    check_int("n", n, 1, None)
    if start < 0 or start + n > len(ds):
        raise ValueError(f"clips {start}..{start + n - 1} do not fit a dataset of length {len(ds)}; "
                         "lower n or start, or build the dataset with a larger length.")
    return ds.batch(range(start, start + n))["video"]  # (n, 1, f, h, w)
