"""Content from a reference image: "this 8" beside "the digit 8" (video-to-video, notebook 12).

Gen-1 (Esser et al. 2023, "Structure and Content-Guided Video Synthesis with Diffusion Models", section 3.2) takes
a video's *content* from an embedding that a text prompt or an image can give, through the U-Net's cross-attention,
while the *structure* enters as channels (``structure.py``). Here the image is a digit, and it gets its own small
encoder whose tokens join the caption's in the same cross-attention:

    reference    a digit moved to the centre of an empty frame: where it is belongs to the structure, so the
                 content says only what it looks like (``centred``)                         (b, 1, H, W) in [-1, 1]
    encoder      three strided 3×3 convolutions, H×W → (H/8)×(W/8) cells of features, then one linear map of
                 all the cells together to a few tokens of the text encoder's width (``ReferenceEncoder``; or one
                 token per cell, ``ReferenceConfig.tokens="cells"``)                       (b, num_tokens, width)
    in the U-Net the tokens are appended to the caption's: cross-attention reads both (``TextConditionedDenoiser``);
                 a clip without a reference has them masked out, so it reads exactly what a text model reads

Training shows a share ``ReferenceConfig.prob`` of the clips their own digit (the first frame's, centred) instead of
their caption (the caption is then the empty prompt), so that either one alone says what to draw
(``conditioning.CaptionOrReference``). At inference the reference can be any digit image (``reference_from_image``):
a frame of another clip, or a PNG.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn

from .structure import INK_THRESHOLD


REFERENCE_TOKENS = ("whole", "cells")


@dataclass
class ReferenceConfig:
    """How a video-to-video model learns to take its content from a digit image (``ExperimentConfig.reference``)."""

    prob: float = 0.4  # the share of training clips shown their own digit instead of their caption (the caption is
                       # then the empty prompt); of the rest, the caption's drop probability gives neither
    channels: int = 32  # the encoder's first convolution width (then 2×, then the text encoder's width)
    tokens: str = "whole"  # "whole": num_tokens tokens, each read from all the cells at once (Gen-1 gives one CLIP
                           # embedding of the whole image); "cells": one token per cell, so the U-Net must find the
                           # cell it needs, relative to a digit that moves (measured worse: docs/video_to_video.md)
    num_tokens: int = 4  # with tokens="whole": how many

    def __post_init__(self):
        if self.tokens not in REFERENCE_TOKENS:
            raise ValueError(f"ReferenceConfig.tokens must be one of {REFERENCE_TOKENS}; got {self.tokens!r}")
        if self.num_tokens < 1:
            raise ValueError(f"ReferenceConfig.num_tokens must be >= 1; got {self.num_tokens}")
        if not 0.0 < self.prob < 1.0:
            raise ValueError(f"ReferenceConfig.prob is the share of training clips whose content is their own digit "
                             f"image; it must be in (0, 1); got {self.prob}")
        if self.channels < 1:
            raise ValueError(f"ReferenceConfig.channels must be >= 1; got {self.channels}")


# ----------------------------------------------------------------------------- 1. the reference image


def centred(images: Tensor) -> Tensor:
    """Digit images ``(b, 1, H, W)`` in [-1, 1] → the same, each moved by whole pixels so that the box around its
    ink (pixels above ``structure.INK_THRESHOLD``) sits in the middle of the frame. An image without ink is returned
    as it is. Moving twice changes nothing more (tested): a centred image is a fixed point."""
    if images.ndim != 4 or images.shape[1] != 1:
        raise ValueError(f"reference images must be (b, 1, H, W) in [-1, 1]; got shape {tuple(images.shape)}")
    out = torch.full_like(images, -1.0)  # (b, 1, H, W): black
    _, _, H, W = images.shape
    for i, image in enumerate(images):
        rows = (image[0] > INK_THRESHOLD).any(dim=1).nonzero()  # (k, 1): rows with ink
        cols = (image[0] > INK_THRESHOLD).any(dim=0).nonzero()
        if len(rows) == 0:
            out[i] = image
            continue
        top, bottom, left, right = int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])
        dy = (H - (bottom - top + 1)) // 2 - top  # the box's new top minus its old one
        dx = (W - (right - left + 1)) // 2 - left
        box = image[:, top:bottom + 1, left:right + 1]  # (1, box h, box w)
        out[i, :, top + dy:bottom + 1 + dy, left + dx:right + 1 + dx] = box
    return out  # (b, 1, H, W)


def reference_of_clips(video: Tensor) -> Tensor:
    """Clips ``(b, 1, f, H, W)`` in [-1, 1] → each clip's first frame, centred: ``(b, 1, H, W)``. What training
    shows a clip as its own digit (with one digit per clip it is the digit exactly as drawn, stroke and all)."""
    if video.ndim != 5 or video.shape[1] != 1:
        raise ValueError(f"clips must be (b, 1, f, H, W) in [-1, 1]; got shape {tuple(video.shape)}")
    return centred(video[:, :, 0])  # (b, 1, H, W)


def reference_from_image(image, image_size: int, digit_size: int) -> Tensor:
    """Any picture of a digit, white on black (a 2-D array: uint8 0–255 or float in [0, 1], e.g. a 28×28 MNIST
    image, a PNG read as grey levels, a frame of a clip) → a reference ``(1, 1, image_size, image_size)`` in
    [-1, 1], centred. A frame of the model's size (``image_size`` × ``image_size``, e.g. a frame of samples.npy)
    already holds its digit at the clips' scale and is only centred; any other picture is first scaled so that its
    longer side is ``digit_size`` (as ``MovingMNIST`` scales MNIST's 28×28 digits). A dark digit on a light
    background is refused with the fix, not drawn inverted."""
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[-1] in (3, 4):  # RGB(A): the grey levels
        array = array[..., :3].astype(np.float32).mean(axis=-1)
    if array.ndim != 2 or min(array.shape) < 4:
        raise ValueError(f"a reference digit is one grey-level picture (h, w), white digit on black; got shape "
                         f"{array.shape}")
    grey = array.astype(np.float32) / (255.0 if array.dtype == np.uint8 or array.max() > 1.0 else 1.0)  # [0, 1]
    if not np.isfinite(grey).all() or grey.min() < 0 or grey.max() > 1:
        raise ValueError(f"a reference digit holds grey levels 0–255 (uint8) or 0–1 (float); got values from "
                         f"{grey.min():g} to {grey.max():g}")
    if np.median(grey) > 0.5:
        raise ValueError("the reference looks like a dark digit on a light background (its median grey is "
                         f"{np.median(grey):.2f}); Moving MNIST digits are white on black: invert it (255 - x)")
    h, w = grey.shape
    if (h, w) == (image_size, image_size):  # a frame: the digit is already at the clips' scale
        return centred(torch.from_numpy(grey * 2 - 1)[None, None])  # (1, 1, H, W) in [-1, 1]
    scale = digit_size / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))  # Pillow's (width, height)
    small = np.asarray(Image.fromarray(grey).resize(size, Image.Resampling.BILINEAR), dtype=np.float32)
    canvas = np.zeros((image_size, image_size), dtype=np.float32)
    canvas[: small.shape[0], : small.shape[1]] = np.clip(small, 0, 1)
    return centred(torch.from_numpy(canvas * 2 - 1)[None, None])  # (1, 1, H, W) in [-1, 1]


# ----------------------------------------------------------------------------- 2. the encoder


class ReferenceEncoder(nn.Module):
    """A digit image ``(b, 1, H, W)`` in [-1, 1] → tokens ``(b, num_tokens, width)`` for cross-attention.

    Three 3×3 convolutions of stride 2 (H → H/2 → H/4 → H/8), each followed by GroupNorm and SiLU, give a grid of
    (H/8)×(W/8) feature cells. Then, with ``tokens="whole"`` (the default), one linear map reads all the cells at
    once and writes ``num_tokens`` tokens: each says something about the whole digit, as a caption's "8" does, and
    every place in the U-Net can read it. With ``tokens="cells"`` each cell is one token, given a learned vector for
    its place in the grid. Both end in LayerNorm, as the text encoder does. ``width`` must be the text encoder's:
    the two kinds of token share the U-Net's cross-attention.
    """

    def __init__(self, image_size: int, width: int, cfg: ReferenceConfig | None = None):
        super().__init__()
        if image_size % 8:
            raise ValueError(f"the reference encoder halves the image three times: image_size must be a multiple of "
                             f"8; got {image_size}")
        self.cfg, self.image_size, self.width = cfg or ReferenceConfig(), image_size, width
        c = self.cfg.channels
        widths = [1, c, 2 * c, width]
        layers = []
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.GroupNorm(min(8, c_out), c_out), nn.SiLU()]
        self.convs = nn.Sequential(*layers)
        cells = (image_size // 8) ** 2
        if self.cfg.tokens == "whole":
            self.num_tokens = self.cfg.num_tokens
            self.to_tokens = nn.Linear(cells * width, self.num_tokens * width)  # every cell → every token
        else:
            self.num_tokens = cells
            self.pos_embed = nn.Parameter(torch.randn(cells, width) * 0.02)  # one learned vector per cell
        self.norm = nn.LayerNorm(width)

    def forward(self, images: Tensor) -> Tensor:
        if images.ndim != 4 or images.shape[1:] != (1, self.image_size, self.image_size):
            raise ValueError(f"the reference encoder reads digit images (b, 1, {self.image_size}, {self.image_size}) "
                             f"in [-1, 1]; got shape {tuple(images.shape)}")
        h = self.convs(images)  # (b, width, H/8, W/8)
        if self.cfg.tokens == "whole":
            tokens = self.to_tokens(h.flatten(1))  # (b, num_tokens · width): each from the whole grid
            tokens = tokens.reshape(len(images), self.num_tokens, self.width)  # (b, num_tokens, width)
        else:
            tokens = h.flatten(2).transpose(1, 2) + self.pos_embed  # (b, H·W/64, width): a token per cell, by rows
        return self.norm(tokens)  # (b, num_tokens, width)
