"""Attention: fast path == slow path, which tokens mix with which, relative positions, context masks."""

import pytest
import torch
from einops import rearrange
from torch import nn

from vdiff_edu.attention import (CrossAttention, RelativePositionBias, SpatialAttention, TemporalAttention,
                                 attention)


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: see conftest.one_thread


def perturb_zeros_(module: nn.Module, seed: int = 0) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            if not p.any():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    return module


def test_attention_by_hand():
    # one query, two keys; scores q·k/√d = [0, 2/√2·...]: compute the softmax by hand
    q = torch.tensor([[[1.0, 1.0]]])  # (1, 1, 2)
    k = torch.tensor([[[0.0, 0.0], [1.0, 1.0]]])  # (1, 2, 2)
    v = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    s = 2 / 2**0.5
    w1 = torch.exp(torch.tensor(s)) / (1 + torch.exp(torch.tensor(s)))
    out, weights = attention(q, k, v, return_weights=True)
    torch.testing.assert_close(weights[0, 0], torch.stack([1 - w1, w1]))
    torch.testing.assert_close(out, attention(q, k, v))


@pytest.mark.parametrize("mask_kind", [None, "bias", "bool"])
def test_fast_and_slow_attention_agree(mask_kind):
    torch.manual_seed(0)
    q, k, v = torch.randn(3, 2, 5, 8), torch.randn(3, 2, 7, 8), torch.randn(3, 2, 7, 8)
    mask = {None: None, "bias": torch.randn(2, 5, 7), "bool": torch.rand(3, 1, 1, 7) > 0.3}[mask_kind]
    if mask_kind == "bool":
        mask[..., 0] = True  # every row keeps at least one key
    out, weights = attention(q, k, v, mask, return_weights=True)
    torch.testing.assert_close(out, attention(q, k, v, mask), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, 2, 5))
    if mask_kind == "bool":
        assert (weights.masked_select(~mask.expand_as(weights)) == 0).all()


def _modules():
    return {
        "spatial": SpatialAttention(8, num_heads=2, head_dim=4, norm_groups=4),
        "temporal": TemporalAttention(8, num_heads=2, head_dim=4, max_frames=8),
    }


@pytest.mark.parametrize("kind", ["spatial", "temporal"])
def test_self_attention_shapes_identity_at_init_and_paths_agree(kind):
    torch.manual_seed(0)
    module = _modules()[kind]
    x = torch.randn(2, 8, 5, 4, 6)
    torch.testing.assert_close(module(x), x)  # zero-initialised output projection
    perturb_zeros_(module)
    y, weights = module(x, return_weights=True)
    torch.testing.assert_close(y, module(x), atol=1e-5, rtol=1e-4)
    assert y.shape == x.shape
    expected = (2, 5, 2, 24, 24) if kind == "spatial" else (2, 4, 6, 2, 5, 5)
    assert weights.shape == expected
    torch.testing.assert_close(weights.sum(-1), torch.ones(expected[:-1]))


def _changes(module, x, index):
    """Boolean (f, h, w) map of outputs that change when the input at `index` (frame, y, x) changes."""
    x2 = x.clone()
    x2[(slice(None), slice(None)) + index] += torch.randn(x.shape[:2])  # random per channel (LayerNorm ignores +const)
    return ((module(x2) - module(x)).abs().amax(dim=(0, 1)) > 1e-6)


def test_spatial_attention_mixes_pixels_not_frames():
    torch.manual_seed(0)
    module = perturb_zeros_(_modules()["spatial"])
    changed = _changes(module, torch.randn(1, 8, 4, 3, 3), (1, 0, 0))
    assert changed[1].all() and not changed[[0, 2, 3]].any()


def test_temporal_attention_mixes_frames_not_pixels():
    torch.manual_seed(0)
    module = perturb_zeros_(_modules()["temporal"])
    changed = _changes(module, torch.randn(1, 8, 4, 3, 3), (1, 0, 0))
    assert changed[:, 0, 0].all() and changed.sum() == 4


def test_temporal_attention_matches_an_inline_einops_version():
    torch.manual_seed(0)
    m = perturb_zeros_(TemporalAttention(8, num_heads=2, head_dim=4, max_frames=8))
    x = torch.randn(2, 8, 5, 3, 3)
    b, c, f, h, w = x.shape
    tokens = m.norm(rearrange(x, "b c f h w -> (b h w) f c"))
    q, k, v = rearrange(m.to_qkv(tokens), "n f (three heads d) -> three n heads f d", three=3, heads=2)
    scores = q @ k.transpose(-1, -2) / 4**0.5  # (n, heads, f, f)
    i, j = torch.arange(f)[:, None], torch.arange(f)[None, :]
    scores = scores + m.rel_bias.table[:, j - i + 7]  # bias by frame offset j - i
    out = rearrange(scores.softmax(-1) @ v, "n heads f d -> n f (heads d)")
    expected = x + rearrange(m.to_out(out), "(b h w) f c -> b c f h w", b=b, h=h)
    torch.testing.assert_close(m(x), expected, atol=1e-5, rtol=1e-4)


def test_relative_bias_depends_only_on_the_offset():
    rb = RelativePositionBias(num_heads=3, max_frames=6)
    with torch.no_grad():
        rb.table.copy_(torch.randn(3, 11))
    bias = rb(5)  # (heads, f, f)
    assert bias.shape == (3, 5, 5)
    for i in range(5):
        for j in range(5):
            torch.testing.assert_close(bias[:, i, j], rb.table[:, j - i + 5])
    assert rb(6).shape == (3, 6, 6)
    with pytest.raises(ValueError, match="max_frames=6"):
        rb(7)
    with pytest.raises(ValueError, match="max_frames=8"):
        TemporalAttention(8, 2, 4, max_frames=8)(torch.randn(1, 8, 9, 2, 2))


def test_temporal_attention_is_equivariant_to_shifts_in_time():
    """Shift the clip by s frames: outputs shift by s too, wherever the attention window lies inside both clips.

    The bias makes offsets beyond ±1 frame (nearly) invisible, so each output sees a window of 3 frames; the
    model has no absolute positions, so a window's output depends only on the window's content.
    """
    torch.manual_seed(0)
    m = perturb_zeros_(TemporalAttention(8, num_heads=2, head_dim=4, max_frames=12))
    with torch.no_grad():
        offsets = torch.arange(-11, 12)
        m.rel_bias.table.copy_(torch.where(offsets.abs() <= 1, torch.randn(2, 23), torch.tensor(-1e4)))
    f, s = 10, 3
    x = torch.randn(1, 8, f, 2, 2)
    shifted = torch.randn(1, 8, f, 2, 2)
    shifted[:, :, s:] = x[:, :, : f - s]  # shifted[k] = x[k - s]; the first s frames are new content
    y, y_shifted = m(x), m(shifted)
    # frames k of `shifted` whose window k-1..k+1 is a copy of x's window k-s-1..k-s+1: s+1 <= k <= f-2
    torch.testing.assert_close(y_shifted[:, :, s + 1 : f - 1], y[:, :, 1 : f - s - 1], atol=1e-5, rtol=1e-4)
    assert not torch.allclose(y_shifted[:, :, s], y[:, :, 0], atol=1e-3)  # at the ends it differs


def test_cross_attention_shapes_paths_and_mask():
    torch.manual_seed(0)
    m = perturb_zeros_(CrossAttention(8, context_dim=6, num_heads=2, head_dim=4, norm_groups=4))
    x, context = torch.randn(2, 8, 3, 4, 4), torch.randn(2, 5, 6)
    mask = torch.tensor([[True, True, True, False, False], [True] * 5])
    y, weights = m(x, context, mask, return_weights=True)
    assert y.shape == x.shape and weights.shape == (2, 3, 4, 4, 2, 5)
    torch.testing.assert_close(y, m(x, context, mask), atol=1e-5, rtol=1e-4)
    assert (weights[0, ..., 3:] == 0).all()  # padding tokens get no weight
    context2 = context.clone()
    context2[0, 3:] = torch.randn(2, 6)  # change only the padding of clip 0
    torch.testing.assert_close(m(x, context2, mask), y, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(m(x, context2), m(x, context))  # without the mask it matters
    with pytest.raises(ValueError, match="context_dim=6"):
        m(x, torch.randn(2, 5, 7))


def test_cross_attention_to_all_padding_adds_nothing_and_stays_finite():
    """A null caption given as all padding once made softmax return NaN; it must read nothing instead."""
    torch.manual_seed(0)
    m = perturb_zeros_(CrossAttention(8, context_dim=6, num_heads=2, head_dim=4, norm_groups=4))
    x, context = torch.randn(2, 8, 3, 4, 4), torch.randn(2, 5, 6)
    mask = torch.tensor([[False] * 5, [True, True, False, False, False]])
    for fast in (True, False):
        y = m(x, context, mask) if fast else m(x, context, mask, return_weights=True)[0]
        assert torch.isfinite(y).all()
        torch.testing.assert_close(y[0], x[0], rtol=0, atol=0)  # all padding: exactly the identity
        assert not torch.allclose(y[1], x[1])  # a real token still changes the clip
    y.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in m.parameters() if p.grad is not None)


def test_gradients_reach_every_attention_parameter():
    torch.manual_seed(0)
    mods = [perturb_zeros_(m) for m in _modules().values()]
    mods.append(perturb_zeros_(CrossAttention(8, 6, 2, 4, norm_groups=4)))
    x = torch.randn(2, 8, 4, 3, 3)
    for m in mods:
        y = m(x, torch.randn(2, 5, 6)) if isinstance(m, CrossAttention) else m(x)
        y.square().sum().backward()
        for name, p in m.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, f"{type(m).__name__}.{name}"


# ----------------------------------------------------------------------------- notebook 04 exercise checks

def _not_yet(*args):
    raise NotImplementedError


def test_exercise_checks_04_accept_solutions_and_reject_mistakes(capsys):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "notebooks"))
    from exercises import checks_04 as checks
    from exercises import solutions_04 as sol

    assert checks.check_temporal_tokens(sol.temporal_tokens)
    assert checks.check_relative_bias(sol.relative_bias)
    assert checks.check_causal_mask(sol.causal_mask)
    assert checks.check_rotary(sol.rotary)
    assert not checks.check_temporal_tokens(lambda x: x.reshape(-1, x.shape[2], x.shape[1]))
    assert not checks.check_relative_bias(lambda table, f: sol.relative_bias(table, f).transpose(1, 2))
    assert not checks.check_causal_mask(lambda f: torch.ones(f, f, dtype=torch.bool).triu())
    assert not checks.check_rotary(lambda x, pos: x * 2)
    rotate_by_index_only = lambda x, pos: sol.rotary(x, torch.arange(x.shape[-2]) * 0 + 1)  # same angle everywhere
    assert not checks.check_rotary(rotate_by_index_only)
    out = capsys.readouterr().out
    assert "does not move axes" in out and "j - i" in out and "tril" in out
    for check in (checks.check_temporal_tokens, checks.check_relative_bias, checks.check_causal_mask,
                  checks.check_rotary):
        assert not check(None) and not check(_not_yet)
    assert "not attempted yet" in capsys.readouterr().out
