"""Residual blocks, the three time-mixing modes, resampling, and the frames-major memory layout."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vdiff_edu.blocks import (Downsample, FrameGroupNorm, Full3dConv, ResBlock3d, SpatialConv, TemporalConv, Upsample,
                              time_mixing_conv)


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: see conftest.one_thread


MODES = ("full3d", "factorized", "spatial")


def perturb_zeros_(module: nn.Module, seed: int = 0) -> nn.Module:
    """Give every all-zero parameter (zero-initialised output layers) small random values."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            if not p.any():
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    return module


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("in_ch,out_ch", [(8, 8), (8, 16)])
def test_resblock_shapes(mode, in_ch, out_ch):
    block = ResBlock3d(in_ch, out_ch, emb_dim=12, time_mixing=mode, norm_groups=4)
    x, emb = torch.randn(2, in_ch, 5, 6, 6), torch.randn(2, 12)
    assert block(x, emb).shape == (2, out_ch, 5, 6, 6)


@pytest.mark.parametrize("mode", MODES)
def test_resblock_starts_as_identity(mode):
    block = ResBlock3d(8, 8, emb_dim=12, time_mixing=mode, norm_groups=4)
    x = torch.randn(2, 8, 4, 6, 6)
    torch.testing.assert_close(block(x, torch.randn(2, 12)), x)  # the zero-initialised last conv adds nothing


def test_resblock_film_uses_the_embedding():
    block = perturb_zeros_(ResBlock3d(8, 8, emb_dim=12, norm_groups=4))
    x = torch.randn(2, 8, 4, 6, 6)
    assert not torch.allclose(block(x, torch.zeros(2, 12)), block(x, torch.ones(2, 12)))


def _frame_dependence(module, x, j):
    """Which output frames change when input frame j changes."""
    x2 = x.clone()
    x2[:, :, j] += torch.randn_like(x2[:, :, j])
    diff = (module(x2) - module(x)).abs().amax(dim=(0, 1, 3, 4))  # (f,)
    return diff > 1e-6


@pytest.mark.parametrize("mode", MODES)
def test_time_mixing_by_dependence(mode):
    torch.manual_seed(0)
    block = perturb_zeros_(ResBlock3d(8, 8, emb_dim=4, time_mixing=mode, norm_groups=4))
    emb = torch.randn(2, 4)
    changed = _frame_dependence(lambda x: block(x, emb), torch.randn(2, 8, 6, 5, 5), j=2)
    # two convs with 3-frame kernels: frame j reaches frames j-2 .. j+2 when frames mix, only frame j otherwise
    if mode == "spatial":
        assert changed.tolist() == [False, False, True, False, False, False]
    else:
        assert changed.tolist() == [True, True, True, True, True, False]


@pytest.mark.parametrize("conv_cls,kernel", [(SpatialConv, (1, 3, 3)), (TemporalConv, (3, 1, 1)), (Full3dConv, (3, 3, 3))])
def test_convs_equal_conv3d(conv_cls, kernel):
    """Each conv computes what nn.Conv3d with the matching kernel computes."""
    ours = conv_cls(4, 6)
    ref = nn.Conv3d(4, 6, kernel, padding=tuple(k // 2 for k in kernel))
    with torch.no_grad():
        ref.weight.copy_(ours.conv.weight.reshape(ref.weight.shape))
        ref.bias.copy_(ours.conv.bias)
    x = torch.randn(2, 4, 5, 6, 7)
    torch.testing.assert_close(ours(x), ref(x), atol=1e-5, rtol=1e-4)
    x_t = x.transpose(1, 2).contiguous().transpose(1, 2)  # same values, another memory layout
    torch.testing.assert_close(ours(x_t), ref(x), atol=1e-5, rtol=1e-4)


def test_factorized_conv_has_fewer_weights_than_full3d():
    n = lambda m: sum(p.numel() for p in m.parameters())
    assert n(time_mixing_conv(16, 16, "factorized")) < n(time_mixing_conv(16, 16, "full3d"))
    assert n(time_mixing_conv(16, 16, "spatial")) < n(time_mixing_conv(16, 16, "factorized"))


def test_frame_group_norm_normalises_each_frame_alone():
    norm = FrameGroupNorm(2, 4)
    x = torch.randn(2, 4, 3, 5, 5) * 3 + 1
    y = norm(x)
    for k in range(3):  # each frame alone, as an image
        torch.testing.assert_close(y[:, :, k], F.group_norm(x[:, :, k], 2, norm.weight, norm.bias, norm.eps))


@pytest.mark.parametrize("temporal", [False, True])
def test_down_and_upsample_shapes(temporal):
    x = torch.randn(2, 8, 4, 8, 8)
    down = Downsample(8, temporal=temporal)(x)
    assert down.shape == ((2, 8, 2, 4, 4) if temporal else (2, 8, 4, 4, 4))
    up = Upsample(8, temporal=temporal)(down)
    assert up.shape == x.shape


def test_spatial_resampling_keeps_frames_apart():
    torch.manual_seed(0)
    for module in (Downsample(4), Upsample(4)):
        changed = _frame_dependence(module, torch.randn(1, 4, 4, 8, 8), j=1)
        assert changed.tolist() == [False, True, False, False]


def test_bad_arguments_teach():
    with pytest.raises(ValueError, match="time_mixing must be one of"):
        ResBlock3d(8, 8, 4, time_mixing="2d")
    with pytest.raises(ValueError, match="divisible by the number of groups"):
        ResBlock3d(12, 12, 4, norm_groups=8)


def test_gradients_reach_every_parameter():
    block = perturb_zeros_(ResBlock3d(8, 16, emb_dim=4, time_mixing="factorized", norm_groups=4))
    block(torch.randn(2, 8, 4, 6, 6), torch.randn(2, 4)).square().sum().backward()
    for name, p in block.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
