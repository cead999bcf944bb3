"""The residual block of a video U-Net, three ways of mixing frames, and spatial/temporal resampling.

A video tensor is ``(b, c, f, h, w)``: batch, channels, frames, height, width. Every block here takes and
returns that shape. What differs is which neighbours a convolution sees (``time_mixing``):

    full3d      3×3×3 Conv3d: each output sees 3 frames × 3×3 pixels
    factorized  1×3×3 spatial conv, then 3×1×1 temporal conv: the "(2+1)D" design (Tran et al. 2018, R(2+1)D)
    spatial     1×3×3 only: frames never mix (an image model run on each frame; the baseline)

The spatial pieces (GroupNorm per frame, 1×3×3 convs, resampling) run as 2-D ops on the frames folded into
the batch, ``rearrange(x, "b c f h w -> (b f) c h w")``: a video model built from image operations. The fold
copies the tensor; we measured that storing activations frame-major to avoid those copies gains nothing on a
CPU (the convolutions dominate; see docs/benchmarks.md), so the code stays plain.

Notebook 03 builds the residual block inline and checks it against this module.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

TIME_MIXING = ("full3d", "factorized", "spatial")

# ----------------------------------------------------------------------------- frames in the batch


def fold_frames(x: torch.Tensor) -> torch.Tensor:
    """``(b, c, f, h, w) -> (b·f, c, h, w)``: every frame becomes an image."""
    return rearrange(x, "b c f h w -> (b f) c h w")


def unfold_frames(x: torch.Tensor, batch_size: int) -> torch.Tensor:
    """``(b·f, c, h, w) -> (b, c, f, h, w)``, the inverse of ``fold_frames``."""
    return rearrange(x, "(b f) c h w -> b c f h w", b=batch_size)


# ----------------------------------------------------------------------------- normalisation


def num_groups(channels: int, groups: int) -> int:
    """The GroupNorm group count for ``channels``: ``groups``, or fewer when ``channels`` is small."""
    g = min(groups, channels)
    if channels % g != 0:
        raise ValueError(
            f"GroupNorm needs channels divisible by the number of groups; {channels} channels, {g} groups. "
            f"Pick base_channels and channel_mults so every width is a multiple of norm_groups={groups}."
        )
    return g


class FrameGroupNorm(nn.GroupNorm):
    """GroupNorm with statistics per frame (Wu & He 2018), so normalising never mixes frames.

    A plain ``nn.GroupNorm`` on a 5-D tensor pools its mean and variance over all frames of a clip: then even
    the ``spatial`` mode would leak information between frames.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (b, c, f, h, w)
        return unfold_frames(super().forward(fold_frames(x)), x.shape[0])  # (b, c, f, h, w)


# ----------------------------------------------------------------------------- convolutions that mix (or not) frames


class SpatialConv(nn.Module):
    """A 1×3×3 convolution: one ``Conv2d`` applied to every frame. ``(b, c_in, f, h, w) -> (b, c_out, f, h, w)``."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size, padding=kernel_size // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return unfold_frames(self.conv(fold_frames(x)), x.shape[0])  # (b, c_out, f, h, w)


class TemporalConv(nn.Module):
    """A 3×1×1 convolution along frames: each pixel mixes with the same pixel one frame before and after.

    Stored as a ``Conv2d`` with a ``(3, 1)`` kernel over the ``(f, h·w)`` plane, which on CPU runs several
    times faster than ``nn.Conv3d(in_ch, out_ch, (3, 1, 1))`` and computes the same thing (tested). Frames
    are zero-padded at both ends, so the first and last frame see one neighbour.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, (kernel_size, 1), padding=(kernel_size // 2, 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, f, h, w = x.shape
        y = self.conv(rearrange(x, "b c f h w -> b c f (h w)"))  # (b, c_out, f, h·w)
        return rearrange(y, "b c f (h w) -> b c f h w", h=h)  # (b, c_out, f, h, w)


class Full3dConv(nn.Module):
    """A 3×3×3 ``Conv3d``: each output sees a 3-frame, 3×3-pixel neighbourhood."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 3):
        super().__init__()
        self.conv = nn.Conv3d(in_ch, out_ch, kernel_size, padding=kernel_size // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)  # (b, c_out, f, h, w)


class FactorizedConv(nn.Sequential):
    """(2+1)D: a 1×3×3 spatial conv followed by a 3×1×1 temporal conv (Tran et al. 2018).

    27·c_in·c_out weights of a 3×3×3 conv become 9·c_in·c_out + 3·c_out·c_out, with fewer multiply-adds.
    """

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__(SpatialConv(in_ch, out_ch), TemporalConv(out_ch, out_ch))


def time_mixing_conv(in_ch: int, out_ch: int, time_mixing: str) -> nn.Module:
    """The 3×3 convolution of a residual block, in one of the three ``TIME_MIXING`` modes."""
    if time_mixing == "full3d":
        return Full3dConv(in_ch, out_ch)
    if time_mixing == "factorized":
        return FactorizedConv(in_ch, out_ch)
    if time_mixing == "spatial":
        return SpatialConv(in_ch, out_ch)
    raise ValueError(f"time_mixing must be one of {TIME_MIXING}; got {time_mixing!r}")


def zero_init_(conv: nn.Module) -> nn.Module:
    """Set the last layer's weights and bias of ``conv`` to zero, so the branch starts as "add nothing"."""
    last = [m for m in conv.modules() if isinstance(m, (nn.Conv2d, nn.Conv3d, nn.Linear))][-1]
    nn.init.zeros_(last.weight)
    if last.bias is not None:
        nn.init.zeros_(last.bias)
    return conv


# ----------------------------------------------------------------------------- the residual block


class ResBlock3d(nn.Module):
    """GroupNorm → SiLU → conv → GroupNorm → FiLM(emb) → SiLU → dropout → conv, plus a skip connection.

    The layout of DDPM (Ho et al. 2020) and "Diffusion Models Beat GANs" (Dhariwal & Nichol 2021, the
    "scale-shift norm"): the embedding of timestep and labels sets a per-channel scale and shift,
        h = GroupNorm(h) · (1 + scale(emb)) + shift(emb)          (FiLM, Perez et al. 2018)
    The last conv starts at zero, so at initialisation the block is the identity (or its 1×1 skip): deep
    stacks then train stably.
    ``(b, in_ch, f, h, w), emb (b, emb_dim) -> (b, out_ch, f, h, w)``.
    """

    def __init__(self, in_ch: int, out_ch: int, emb_dim: int, time_mixing: str = "factorized",
                 dropout: float = 0.0, norm_groups: int = 32):
        super().__init__()
        self.time_mixing = time_mixing
        self.norm1 = FrameGroupNorm(num_groups(in_ch, norm_groups), in_ch)
        self.conv1 = time_mixing_conv(in_ch, out_ch, time_mixing)
        self.film = nn.Linear(emb_dim, 2 * out_ch)  # emb -> (scale, shift)
        self.norm2 = FrameGroupNorm(num_groups(out_ch, norm_groups), out_ch)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = zero_init_(time_mixing_conv(out_ch, out_ch, time_mixing))
        self.skip = nn.Identity() if in_ch == out_ch else SpatialConv(in_ch, out_ch, kernel_size=1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))  # (b, out_ch, f, h, w)
        scale, shift = rearrange(self.film(F.silu(emb)), "b (two c) -> two b c 1 1 1", two=2)  # each (b, out_ch, 1, 1, 1)
        h = self.norm2(h) * (1 + scale) + shift  # FiLM
        h = self.conv2(self.dropout(F.silu(h)))  # (b, out_ch, f, h, w)
        return self.skip(x) + h


# ----------------------------------------------------------------------------- down- and upsampling


class Downsample(nn.Module):
    """Halve height and width with a stride-2 3×3 conv; with ``temporal=True`` halve the frames as well.

    ``(b, c, f, h, w) -> (b, c, f, h/2, w/2)``, or ``(b, c, f/2, h/2, w/2)`` when temporal.
    """

    def __init__(self, channels: int, temporal: bool = False):
        super().__init__()
        self.temporal = temporal
        if temporal:
            self.conv = nn.Conv3d(channels, channels, 3, stride=2, padding=1)
        else:
            self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.temporal:
            return self.conv(x)  # (b, c, f/2, h/2, w/2)
        return unfold_frames(self.conv(fold_frames(x)), x.shape[0])  # (b, c, f, h/2, w/2)


class Upsample(nn.Module):
    """Double height and width (nearest neighbour, then a 3×3 conv); with ``temporal=True`` double the frames too.

    Nearest-neighbour + conv avoids the checkerboard artefacts of transposed convolutions (Odena et al. 2016).
    ``(b, c, f, h, w) -> (b, c, f, 2h, 2w)``, or ``(b, c, 2f, 2h, 2w)`` when temporal.
    """

    def __init__(self, channels: int, temporal: bool = False):
        super().__init__()
        self.temporal = temporal
        self.conv = SpatialConv(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.temporal:
            x = F.interpolate(x, scale_factor=(2, 1, 1), mode="nearest")  # (b, c, 2f, h, w)
        b = x.shape[0]
        x = unfold_frames(F.interpolate(fold_frames(x), scale_factor=2, mode="nearest"), b)  # (b, c, f, 2h, 2w)
        return self.conv(x)
