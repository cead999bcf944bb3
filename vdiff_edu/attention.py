"""Attention for video: within a frame (spatial), across frames (temporal), and to context tokens (cross).

All three are the same operation on a different grouping of the tokens of a ``(b, c, f, h, w)`` tensor:

    spatial    "b c f h w -> (b f) (h w) c"   each frame is a sequence of h·w pixels; frames never mix
    temporal   "b c f h w -> (b h w) f c"     each pixel is a sequence of f frames; pixels never mix
    cross      "b c f h w -> b (f h w) c"     every position reads from L context tokens (b, L, d)

Each block is pre-norm and residual with a zero-initialised output projection, so it starts as the identity:
``x + out(attend(norm(x)))``. Each takes ``return_weights=True`` to also return the attention weights for
plotting; that slow path is written out with an explicit softmax and tested equal to the fast path
(``F.scaled_dot_product_attention``).

Temporal attention knows how far apart two frames are through a learned **relative position bias**: one
number per head and per frame offset ``j - i`` in ``[-(max_frames-1), max_frames-1]``, added to the scores
(Shaw et al. 2018; Raffel et al. 2020, T5). It depends only on the offset, so shifting a clip in time shifts
the output (away from the clip's ends).

Notebook 04 writes temporal attention inline and checks it against this module.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from .blocks import FrameGroupNorm, fold_frames, num_groups, unfold_frames

# ----------------------------------------------------------------------------- scaled dot-product attention


def masked_mean(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """The mean of tokens ``x (b, L, d)`` over the real ones of each row (``mask (b, L)``, True = real; None = all
    real) → ``(b, d)``: the pooled prompt of the text encoder and of ``UNetConfig.pooled_context``."""
    if mask is None:
        return x.mean(dim=1)  # (b, d)
    weights = mask.to(x.dtype)[..., None]  # (b, L, 1)
    return (x * weights).sum(dim=1) / weights.sum(dim=1)  # (b, d)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attn_mask: torch.Tensor | None = None,
              return_weights: bool = False):
    """``softmax(q kᵀ / √d + bias) v`` (Vaswani et al. 2017, eq. 1).

    q ``(..., Lq, d)``, k and v ``(..., Lk, d)``; ``attn_mask`` broadcasts to ``(..., Lq, Lk)`` and is either
    a float bias added to the scores or a bool mask (True = may attend). Returns ``(..., Lq, d)``, and with
    ``return_weights=True`` also the weights ``(..., Lq, Lk)`` (each row sums to 1).
    """
    if not return_weights:  # fast path: a fused kernel that never stores the (Lq, Lk) weights for backward
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
    scores = (q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5  # (..., Lq, Lk)
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attn_mask, float("-inf"))
        else:
            scores = scores + attn_mask
    weights = scores.softmax(dim=-1)  # (..., Lq, Lk)
    return weights @ v, weights  # (..., Lq, d), (..., Lq, Lk)


# ----------------------------------------------------------------------------- spatial self-attention


class SpatialAttention(nn.Module):
    """Self-attention among the ``h·w`` pixels of each frame. ``(b, c, f, h, w) -> (b, c, f, h, w)``."""

    def __init__(self, channels: int, num_heads: int = 4, head_dim: int = 32, norm_groups: int = 32):
        super().__init__()
        self.num_heads = num_heads
        inner = num_heads * head_dim
        self.norm = FrameGroupNorm(num_groups(channels, norm_groups), channels)
        self.to_qkv = nn.Conv2d(channels, 3 * inner, 1, bias=False)  # a Linear on every pixel
        self.to_out = nn.Conv2d(inner, channels, 1)
        nn.init.zeros_(self.to_out.weight)
        nn.init.zeros_(self.to_out.bias)

    def forward(self, x: torch.Tensor, return_weights: bool = False):
        b, c, f, h, w = x.shape
        qkv = self.to_qkv(fold_frames(self.norm(x)))  # (b f, 3·heads·d, h, w)
        q, k, v = rearrange(qkv, "n (three heads d) h w -> three n heads (h w) d", three=3, heads=self.num_heads)
        out = attention(q, k, v, return_weights=return_weights)  # (b f, heads, h·w, d)
        out, weights = out if return_weights else (out, None)
        out = self.to_out(rearrange(out, "n heads (h w) d -> n (heads d) h w", h=h))  # (b f, c, h, w)
        y = x + unfold_frames(out, b)  # (b, c, f, h, w)
        return (y, rearrange(weights, "(b f) heads i j -> b f heads i j", b=b)) if return_weights else y


# ----------------------------------------------------------------------------- temporal self-attention


class RelativePositionBias(nn.Module):
    """A learned score bias per head and frame offset: ``bias[head, i, j] = table[head, j - i + max_frames - 1]``."""

    def __init__(self, num_heads: int, max_frames: int):
        super().__init__()
        self.max_frames = max_frames
        self.table = nn.Parameter(torch.zeros(num_heads, 2 * max_frames - 1))  # offsets -(max_frames-1) .. max_frames-1

    def forward(self, num_frames: int) -> torch.Tensor:
        if num_frames > self.max_frames:
            raise ValueError(
                f"the relative position table covers at most max_frames={self.max_frames} frames, got {num_frames}; "
                f"build the model with a larger UNetConfig.max_frames or use shorter clips"
            )
        pos = torch.arange(num_frames, device=self.table.device)
        offset = pos[None, :] - pos[:, None] + self.max_frames - 1  # (f, f): j - i, shifted to be >= 0
        return self.table[:, offset]  # (heads, f, f)


class TemporalAttention(nn.Module):
    """Self-attention among the ``f`` frames at each pixel, with a relative position bias.

    ``(b, c, f, h, w) -> (b, c, f, h, w)``; raises for ``f > max_frames``. A single frame (f = 1) has no other
    frame to attend to and passes through unchanged: a video U-Net run on one-frame clips is then its image model,
    the temporal connections removed, as joint image–video training treats images (Ho et al. 2022; Esser et al.
    2023, section 3.3).
    """

    def __init__(self, channels: int, num_heads: int = 4, head_dim: int = 32, max_frames: int = 32):
        super().__init__()
        self.num_heads = num_heads
        inner = num_heads * head_dim
        self.norm = nn.LayerNorm(channels)  # per token: pixel (b, h, w) at frame f
        self.to_qkv = nn.Linear(channels, 3 * inner, bias=False)
        self.rel_bias = RelativePositionBias(num_heads, max_frames)
        self.to_out = nn.Linear(inner, channels)
        nn.init.zeros_(self.to_out.weight)
        nn.init.zeros_(self.to_out.bias)

    def forward(self, x: torch.Tensor, return_weights: bool = False):
        b, c, f, h, w = x.shape
        if f == 1 and not return_weights:
            return x  # nothing to attend to across frames
        bias = self.rel_bias(f)  # (heads, f, f); checks f <= max_frames
        tokens = rearrange(x, "b c f h w -> (b h w) f c")  # every pixel is a sequence of f frames
        qkv = self.to_qkv(self.norm(tokens))  # (b h w, f, 3·heads·d)
        q, k, v = rearrange(qkv, "n f (three heads d) -> three n heads f d", three=3, heads=self.num_heads)
        out = attention(q, k, v, attn_mask=bias, return_weights=return_weights)  # (b h w, heads, f, d)
        out, weights = out if return_weights else (out, None)
        out = self.to_out(rearrange(out, "n heads f d -> n f (heads d)"))  # (b h w, f, c)
        y = x + rearrange(out, "(b h w) f c -> b c f h w", b=b, h=h)  # (b, c, f, h, w)
        if return_weights:
            return y, rearrange(weights, "(b h w) heads i j -> b h w heads i j", b=b, h=h)
        return y


# ----------------------------------------------------------------------------- cross-attention to context tokens


class CrossAttention(nn.Module):
    """Every position of the clip attends to ``L`` context tokens (e.g. a caption's words), as in Stable Diffusion.

    x ``(b, c, f, h, w)``, context ``(b, L, context_dim)``, optional ``context_mask`` ``(b, L)`` bool (True =
    a real token, False = padding) -> ``(b, c, f, h, w)``.

    A clip whose tokens are all padding reads nothing: its cross-attention adds exactly zero (a softmax over no
    tokens at all would be 0/0 = NaN). The null condition of guidance is better given as a learned null token;
    this only makes sure a padded batch can never poison the output.
    """

    def __init__(self, channels: int, context_dim: int, num_heads: int = 4, head_dim: int = 32, norm_groups: int = 32):
        super().__init__()
        self.num_heads = num_heads
        self.context_dim = context_dim
        inner = num_heads * head_dim
        self.norm = FrameGroupNorm(num_groups(channels, norm_groups), channels)
        self.to_q = nn.Linear(channels, inner, bias=False)
        self.to_kv = nn.Linear(context_dim, 2 * inner, bias=False)
        self.to_out = nn.Linear(inner, channels)
        nn.init.zeros_(self.to_out.weight)
        nn.init.zeros_(self.to_out.bias)

    def forward(self, x: torch.Tensor, context: torch.Tensor, context_mask: torch.Tensor | None = None,
                return_weights: bool = False):
        b, c, f, h, w = x.shape
        if context.ndim != 3 or context.shape[0] != b or context.shape[2] != self.context_dim:
            raise ValueError(f"context must have shape (b={b}, L, context_dim={self.context_dim}), "
                             f"got {tuple(context.shape)}")
        q = self.to_q(rearrange(self.norm(x), "b c f h w -> b (f h w) c"))  # (b, f·h·w, heads·d)
        k, v = rearrange(self.to_kv(context), "b l (two heads d) -> two b heads l d", two=2, heads=self.num_heads)
        q = rearrange(q, "b n (heads d) -> b heads n d", heads=self.num_heads)  # (b, heads, f·h·w, d)
        mask, has_tokens = None, None
        if context_mask is not None:
            has_tokens = context_mask.bool().any(dim=1)  # (b,): False for a clip whose context is all padding
            # let such clips attend to every (padding) token, so the softmax stays finite; their output is zeroed below
            mask = rearrange(context_mask.bool() | ~has_tokens[:, None], "b l -> b 1 1 l")
        out = attention(q, k, v, attn_mask=mask, return_weights=return_weights)  # (b, heads, f·h·w, d)
        out, weights = out if return_weights else (out, None)
        out = self.to_out(rearrange(out, "b heads n d -> b n (heads d)"))  # (b, f·h·w, c)
        if has_tokens is not None:
            out = out * has_tokens[:, None, None].to(out.dtype)  # nothing to read: add nothing
            if weights is not None:
                weights = weights * has_tokens[:, None, None, None].to(weights.dtype)
        y = x + rearrange(out, "b (f h w) c -> b c f h w", f=f, h=h)  # (b, c, f, h, w)
        if return_weights:
            return y, rearrange(weights, "b heads (f h w) l -> b f h w heads l", f=f, h=h)
        return y
