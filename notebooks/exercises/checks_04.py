"""Checks for the exercises of notebook 04 (temporal attention).

Each ``check_*`` takes your answer, prints what is right or wrong with a hint, and returns a verdict: true
or false in code, invisible in a notebook (a cell ending with a check shows only its message).
It never raises: an exercise you have not tried yet (``None``, or a function that still raises
``NotImplementedError``) just gets a friendly reminder, so the notebook runs top to bottom.
"""

from __future__ import annotations

import torch
from einops import rearrange

from vdiff_edu.attention import RelativePositionBias

from ._checking import call, fail, ok, verdict


def _shape(x) -> str:
    return str(tuple(x.shape)) if isinstance(x, torch.Tensor) else type(x).__name__


# ----------------------------------------------------------------------------------------------------------------
# Exercise 1: a pixel's timeline as a sequence


@verdict
def check_temporal_tokens(fn) -> bool:
    """``fn(x)``: (b, c, f, h, w) -> (b·h·w, f, c), one sequence of f frames per pixel."""
    name = "Exercise 1 (temporal tokens)"
    x = torch.randn(2, 3, 5, 4, 6)
    out, msg = call(fn, name, x)
    if msg:
        print(msg)
        return False
    expected = rearrange(x, "b c f h w -> (b h w) f c")
    if not isinstance(out, torch.Tensor) or out.shape != expected.shape:
        hint = "channels go last: attention compares c-dimensional vectors." if isinstance(out, torch.Tensor) and \
            out.shape == (48, 3, 5) else "the sequences are pixels, (b h w); their length is f; each token has c numbers."
        return fail(f"{name}: got {_shape(out)}, expected {tuple(expected.shape)} = (b·h·w, f, c).", hint)
    if torch.equal(out, expected):
        return ok(f"{name}: correct. {expected.shape[0]} sequences of {expected.shape[1]} frames each.")
    if torch.equal(out, x.reshape(expected.shape)):
        return fail(f"{name}: right shape, wrong values: reshape only re-reads memory, it does not move axes.",
                    "use rearrange(x, 'b c f h w -> (b h w) f c') (or permute, then reshape).")
    return fail(f"{name}: right shape, but the tokens are mixed up.",
                "check the order of the grouped axes: (b h w) keeps each clip's pixels together.")


# ----------------------------------------------------------------------------------------------------------------
# Exercise 2: the relative position bias


@verdict
def check_relative_bias(fn) -> bool:
    """``fn(table, num_frames)``: table (heads, 2·max_frames - 1) -> bias (heads, f, f), bias[h, i, j] by offset j - i."""
    name = "Exercise 2 (relative bias)"
    rb = RelativePositionBias(num_heads=2, max_frames=6)
    with torch.no_grad():
        rb.table.copy_(torch.arange(22, dtype=torch.float32).view(2, 11))
    out, msg = call(fn, name, rb.table.detach(), 4)
    if msg:
        print(msg)
        return False
    expected = rb(4).detach()
    if not isinstance(out, torch.Tensor) or out.shape != expected.shape:
        return fail(f"{name}: got {_shape(out)}, expected {tuple(expected.shape)} = (heads, f, f).",
                    "build an (f, f) matrix of offsets j - i and index the table with it: table[:, offsets + M - 1].")
    if torch.equal(out, expected):
        return ok(f"{name}: correct. Every diagonal is constant: the bias only knows how far apart two frames are.")
    if torch.equal(out, expected.transpose(1, 2)):
        return fail(f"{name}: you used i - j instead of j - i (the transpose).",
                    "row i is the query frame, column j the key frame; the offset is j - i.")
    return fail(f"{name}: the values are off.",
                "offset 0 (the diagonal) must read table[:, max_frames - 1], the middle of the table.")


# ----------------------------------------------------------------------------------------------------------------
# Exercise 3: a causal mask


@verdict
def check_causal_mask(fn) -> bool:
    """``fn(num_frames)``: bool (f, f), True where query frame i may see key frame j, i.e. j <= i."""
    name = "Exercise 3 (causal mask)"
    out, msg = call(fn, name, 5)
    if msg:
        print(msg)
        return False
    expected = torch.ones(5, 5, dtype=torch.bool).tril()
    if not isinstance(out, torch.Tensor) or out.shape != (5, 5):
        return fail(f"{name}: got {_shape(out)}, expected a (5, 5) bool tensor.", "torch.ones(f, f, dtype=torch.bool)…")
    if out.dtype != torch.bool:
        return fail(f"{name}: got dtype {out.dtype}; scaled_dot_product_attention reads a float mask as a bias.",
                    "return a bool tensor (True = may attend), e.g. with .bool().")
    if torch.equal(out, expected):
        return ok(f"{name}: correct. With it, frame i is computed from frames 0..i only: the model can extend a clip.")
    if torch.equal(out, expected.T):
        return fail(f"{name}: that lets each frame see the future, not the past.", "keep the lower triangle: tril().")
    if torch.equal(out, expected & ~torch.eye(5, dtype=torch.bool)):
        return fail(f"{name}: a frame must be allowed to see itself (the diagonal).", "use tril(), not tril(-1).")
    return fail(f"{name}: the values are off.", "True where j <= i: torch.ones(f, f, dtype=torch.bool).tril().")


# ----------------------------------------------------------------------------------------------------------------
# Exercise 4: rotary position embeddings


@verdict
def check_rotary(fn) -> bool:
    """``fn(x, positions)``: x (..., f, d), positions (f,) -> rotated x of the same shape (RoPE)."""
    name = "Exercise 4 (rotary)"
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(3, 6, 8, generator=g), torch.randn(3, 6, 8, generator=g)  # (n, f, d)
    pos = torch.arange(6)
    rq, msg = call(fn, name, q, pos)
    if msg:
        print(msg)
        return False
    if not isinstance(rq, torch.Tensor) or rq.shape != q.shape:
        return fail(f"{name}: got {_shape(rq)}, expected {tuple(q.shape)}.", "rotate pairs of numbers; keep the shape.")
    if torch.allclose(rq, q):
        return fail(f"{name}: nothing changed.", "rotate each pair (x_2i, x_2i+1) by the angle position · θ_i.")
    if not torch.allclose(rq[:, 0], q[:, 0], atol=1e-5):
        return fail(f"{name}: position 0 should not be rotated (angle 0).", "the angle is position · θ_i.")
    if not torch.allclose(rq.norm(dim=-1), q.norm(dim=-1), atol=1e-4):
        return fail(f"{name}: the vectors changed length; a rotation keeps it.",
                    "for each pair use (x1·cos − x2·sin, x1·sin + x2·cos) with the same angle for both.")
    rk, _ = call(fn, name, k, pos)
    shifted_q, _ = call(fn, name, q, pos + 3)
    shifted_k, _ = call(fn, name, k, pos + 3)
    scores = rq @ rk.transpose(-1, -2)  # (n, f, f)
    if not torch.allclose(scores, shifted_q @ shifted_k.transpose(-1, -2), atol=1e-4):
        return fail(f"{name}: q·k changes when both positions move by the same amount.",
                    "rotate q and k by angles proportional to their positions, with the same θ_i for both: then "
                    "(R_m q)·(R_n k) = q·R_(n−m) k depends only on n − m.")
    return ok(f"{name}: correct. Scores depend only on the offset between frames, like the learned bias, "
              "but with no table to outgrow.")
