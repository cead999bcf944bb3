"""Structure maps: where an input video's ink is, at an adjustable level of detail (video-to-video, notebook 12).

Gen-1 (Esser et al. 2023, "Structure and Content-Guided Video Synthesis with Diffusion Models", section 3.2) keeps
the *structure* of an input video and takes its *content* from a prompt: the input's depth maps, blurred to a chosen
level of detail, are concatenated to the latents, while the content comes through cross-attention. The less detail
the maps keep, the less of the input's shape survives and the more the prompt decides. A Moving MNIST clip has no
depth; its structure is its **silhouette**, the pixels with ink, and the level of detail is how coarsely it is pooled:

    silhouette   1 where a pixel has ink (brighter than a tenth of white), else 0               (b, 1, f, H, W)
    level L      the silhouette pooled over square cells of side H / 2^L, then drawn back at H×W (pooling
                 "max": 1 where a cell has any ink; "mean": the fraction of each cell with ink):
                   L = log2(H) (5 on 32 px frames)  cells of one pixel: the exact silhouette, the digit's shape
                   L = 3                            4 px cells: a blocky outline of the shape
                   L = 1                            16 px cells, a 2×2 grid: only roughly where the ink is
                   L = 0                            no structure at all (zeros): the model is text-to-video
    channels     the pooled map folded into the latent grid, each d×d pixel patch as d² channels (pixel
                 unshuffle, d = the autoencoder's downsampling), plus one channel holding L / log2(H):
                 ``(b, d² + 1, f, h, w)``, concatenated to the noisy latents (``UNetConfig.structure_channels``)

The fold keeps every pixel of the map (nothing is lost to the latents' coarser grid), so at the finest level the
model can follow the input's shape exactly, and the level channel tells it how much to trust the map. Training draws
a level per clip (``StructureConfig``: uniform over ``min_detail … max_detail``, and 0 with ``drop_prob``); at
sampling the level is the knob, from "follow the input's shape" to "follow only where it is".

How the maps enter training and guidance is ``conditioning.StructureMaps``. The maps are computed from pixels, so
any clip, real or generated, can give its structure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor

INK_THRESHOLD = -0.8  # a pixel in [-1, 1] has ink above this, a tenth of the way from black (-1) to white (1): a
                      # thin stroke (erosion) is dim, and at half-way a quarter of thin digits had no ink at all


# ----------------------------------------------------------------------------- the recipe's choices


@dataclass
class StructureConfig:
    """How a structure-conditioned (video-to-video) model is trained (``ExperimentConfig.structure``)."""

    min_detail: int = 1  # the coarsest level training draws (1: a 2×2 grid of cells)
    max_detail: int | None = None  # the finest (None: log2 of the frame side, cells of one pixel)
    drop_prob: float = 0.1  # how often a training clip gets no structure at all (level 0): the model then also
                            # knows "without it", for guidance and for plain text-to-video
    pooling: str = "max"  # "max": 1 where a cell holds any ink (where, not how much); "mean": each cell holds its
                          # fraction of ink, which also says how thick the stroke is (and the model then copies it)
    default_detail: int = 2  # the level an edit uses when none is asked for: on the shipped cpu-v2v model the
                             # measured compromise between following the input and taking the prompt's digit
                             # (docs/video_to_video.md)
    caption_says: tuple[str, ...] = ("digit", "style")  # what the training captions name (captions.Meaning fields):
                                                        # the motion comes from the structure, so a prompt names
                                                        # only what changes ("a bold 8")

    def __post_init__(self):
        self.caption_says = tuple(self.caption_says)
        if self.min_detail < 1 or (self.max_detail is not None and self.max_detail < self.min_detail):
            raise ValueError(f"StructureConfig needs 1 <= min_detail <= max_detail (level 0 is 'no structure', "
                             f"drawn with drop_prob); got min_detail={self.min_detail}, max_detail={self.max_detail}")
        if not 0.0 <= self.drop_prob < 1.0:
            raise ValueError(f"StructureConfig.drop_prob must be in [0, 1); got {self.drop_prob}")
        check_pooling(self.pooling)
        unknown = set(self.caption_says) - {"digit", "motion", "direction", "style"}
        if unknown:
            raise ValueError(f"StructureConfig.caption_says names fields of captions.Meaning (digit, motion, "
                             f"direction, style); got {sorted(unknown)}")

    def levels(self, image_size: int) -> tuple[int, ...]:
        """The levels training draws from (besides 0), for frames of ``image_size`` pixels."""
        top = finest_level(image_size) if self.max_detail is None else self.max_detail
        check_level(top, image_size)
        check_level(self.default_detail, image_size)
        return tuple(range(self.min_detail, top + 1))


# ----------------------------------------------------------------------------- levels of detail


def finest_level(image_size: int) -> int:
    """The level whose cells are single pixels: log2 of the frame side (5 for 32 px)."""
    level = int(round(math.log2(image_size)))
    if 2**level != image_size:
        raise ValueError(f"structure maps pool square cells that halve at every level: the frame side must be a "
                         f"power of two; got {image_size}")
    return level


def check_level(level: int, image_size: int) -> int:
    top = finest_level(image_size)
    if not (isinstance(level, int) or (isinstance(level, Tensor) and level.ndim == 0)) or not 0 <= int(level) <= top:
        raise ValueError(f"the level of detail must be a whole number from 0 (no structure) to {top} (the exact "
                         f"silhouette of {image_size} px frames); got {level!r}")
    return int(level)


POOLINGS = ("mean", "max")


def check_pooling(pooling: str) -> str:
    if pooling not in POOLINGS:
        raise ValueError(f"structure pooling must be one of {POOLINGS}; got {pooling!r}")
    return pooling


def cell_size(level: int, image_size: int) -> int:
    """The side, in pixels, of the cells level ``level`` averages over: ``image_size / 2^level``."""
    return image_size // 2 ** check_level(level, image_size)


# ----------------------------------------------------------------------------- the maps, by hand


def silhouette(video: Tensor) -> Tensor:
    """``video (b, 1, f, H, W)`` in [-1, 1] → 1.0 where a pixel has ink (above ``INK_THRESHOLD``), else 0.0."""
    return (video > INK_THRESHOLD).to(torch.float32)


def pool(sil: Tensor, level: int, pooling: str = "max") -> Tensor:
    """The silhouette ``(b, 1, f, H, W)`` pooled over cells of side ``H / 2^level`` and drawn back at ``H×W``: each
    cell holds the fraction of its pixels with ink ("mean") or 1 if any has ink ("max"); level 0 gives zeros, the
    finest level the silhouette itself."""
    b, _, f, size, _ = sil.shape
    if check_level(level, size) == 0:
        return torch.zeros_like(sil)
    k = cell_size(level, size)
    frames = rearrange(sil, "b c f h w -> (b f) c h w")  # (b·f, 1, H, W)
    pooled = F.avg_pool2d if check_pooling(pooling) == "mean" else F.max_pool2d
    coarse = pooled(frames, k)  # (b·f, 1, 2^L, 2^L): the fraction of ink in each cell, or whether it has any
    fine = F.interpolate(coarse, scale_factor=k, mode="nearest")  # (b·f, 1, H, W)
    return rearrange(fine, "(b f) c h w -> b c f h w", b=b)  # (b, 1, f, H, W)


def to_channels(pooled: Tensor, level: Tensor | int, downsample: int) -> Tensor:
    """A pooled map ``(b, 1, f, H, W)`` → the U-Net's ``structure`` input ``(b, d² + 1, f, H/d, W/d)``: every d×d
    patch folded into d² channels (pixel unshuffle), and one channel holding ``level / finest_level``."""
    b, _, f, size, _ = pooled.shape
    folded = rearrange(pooled, "b c f (h p) (w q) -> b (c p q) f h w", p=downsample, q=downsample)  # (b, d², f, h, w)
    level = torch.as_tensor(level, dtype=pooled.dtype, device=pooled.device).expand(b)  # (b,)
    level_channel = (level / finest_level(size)).reshape(b, 1, 1, 1, 1).expand(b, 1, *folded.shape[2:])
    return torch.cat([folded, level_channel], dim=1)  # (b, d² + 1, f, h, w)


def from_channels(channels: Tensor, downsample: int) -> Tensor:
    """The inverse of ``to_channels``' fold: ``(b, d² + 1, f, h, w)`` → the pooled map ``(b, 1, f, h·d, w·d)``."""
    return rearrange(channels[:, : downsample**2], "b (c p q) f h w -> b c f (h p) (w q)", p=downsample, q=downsample)


def structure_channels_for(downsample: int) -> int:
    """How many input channels the structure maps add for an autoencoder that downsamples by ``downsample``."""
    return downsample**2 + 1


def structure_maps(video: Tensor, level, downsample: int, pooling: str = "max") -> Tensor:
    """Pixel clips ``(b, 1, f, H, W)`` in [-1, 1] → their structure maps at ``level`` (one int, or one per clip
    ``(b,)``) as the U-Net's input ``(b, d² + 1, f, H/d, W/d)``: ``to_channels(pool(silhouette(video), level))``."""
    return maps_of_silhouettes(silhouette(video), level, downsample, pooling)


def maps_of_silhouettes(sil: Tensor, level, downsample: int, pooling: str = "max") -> Tensor:
    """``structure_maps`` from silhouettes already made (``(b, 1, f, H, W)`` of 0s and 1s); ``level`` an int or
    ``(b,)``: clips drawn at different levels are pooled level by level."""
    b, size = sil.shape[0], sil.shape[-1]
    if sil.shape[-1] % downsample or sil.shape[-2] != size:
        raise ValueError(f"structure maps need square frames whose side is a multiple of the autoencoder's "
                         f"downsampling {downsample}; got frames of {tuple(sil.shape[-2:])}")
    levels = torch.as_tensor(level, dtype=torch.long).cpu().expand(b)  # (b,)
    pooled = torch.empty_like(sil)
    for value in levels.unique().tolist():
        rows = (levels == value).to(sil.device)
        pooled[rows] = pool(sil[rows], check_level(int(value), size), pooling)
    return to_channels(pooled, levels.to(sil.device, sil.dtype), downsample)  # (b, d² + 1, f, h, w)


def structure_image(video: Tensor, level: int, pooling: str = "max") -> Tensor:
    """What a model is shown, as a picture: ``video (b, 1, f, H, W)`` in [-1, 1] → the pooled silhouette at ``level``
    as uint8 ``(b, f, H, W)``, 255 = a cell full of ink (what ``sample`` writes to structure.npy)."""
    return (pool(silhouette(video), level, pooling)[:, 0] * 255).round().to(torch.uint8)  # (b, f, H, W)
