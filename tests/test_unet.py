"""UNet3D: shapes in every mode, gradients, which frames see which, conditioning, helpers, and teaching errors."""

import pytest
import torch
from torch import nn

from vdiff_edu.unet import UNet3D, UNetConfig


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: see conftest.one_thread


def perturb_zeros_(module: nn.Module, seed: int = 0, scale: float = 0.1) -> nn.Module:
    """Zero-initialised layers make a fresh U-Net output 0; give them small random values for these tests."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            if not p.any():
                p.copy_(torch.randn(p.shape, generator=g) * scale)
    return module


def make(seed=0, **overrides):
    torch.manual_seed(seed)
    return perturb_zeros_(UNet3D(UNetConfig.smoke(**overrides)), seed).eval()


def test_presets_sizes():
    from vdiff_edu.presets import ExperimentConfig

    assert UNet3D(UNetConfig.smoke()).num_parameters() < 100_000
    assert UNetConfig.smoke(base_channels=16).base_channels == 16  # the test size takes overrides
    cpu = ExperimentConfig.preset("cpu").unet  # the U-Net the cpu preset trains (and ships): 1.10 M parameters
    assert 1_050_000 <= UNet3D(cpu).num_parameters() <= 1_150_000
    assert (cpu.in_channels, cpu.time_mixing, cpu.num_label_slots) == (4, "factorized", 1)
    assert cpu.temporal_attn_levels == (cpu.num_levels - 1,)  # temporal attention at the lowest resolution
    gpu = ExperimentConfig.preset("gpu").unet
    assert gpu.num_label_slots == 2 and gpu.max_frames >= 20
    assert not hasattr(UNetConfig, "cpu") and not hasattr(UNetConfig, "gpu")  # each recipe is named once


@pytest.mark.parametrize("overrides", [
    dict(time_mixing="full3d"),
    dict(time_mixing="factorized"),
    dict(time_mixing="spatial", temporal_attn_levels=()),
    dict(spatial_attn_levels=(0, 1), temporal_attn_levels=(0, 1), num_res_blocks=2),
    dict(channel_mults=(1, 2, 2), temporal_downsample_levels=(0,)),
    dict(in_channels=1, out_channels=2, num_label_slots=0),
])
def test_forward_shapes(overrides):
    model = make(**overrides)
    cfg = model.cfg
    x = torch.randn(2, cfg.in_channels, 4, 8, 8)
    y = model(x, torch.tensor([3, 500]))
    assert y.shape == (2, cfg.out_channels, 4, 8, 8) and y.is_contiguous()


def test_a_fresh_model_predicts_zero():
    model = UNet3D(UNetConfig.smoke())
    assert (model(torch.randn(2, 4, 4, 8, 8), 10) == 0).all()


def test_timestep_forms_agree():
    model = make()
    x = torch.randn(2, 4, 4, 8, 8)
    y = model(x, torch.tensor([7, 7]))
    torch.testing.assert_close(model(x, 7), y)
    torch.testing.assert_close(model(x, torch.tensor(7)), y)
    torch.testing.assert_close(model(x, torch.tensor([7.0, 7.0])), y)
    assert not torch.allclose(model(x, torch.tensor([7, 300])), y)


def test_gradients_reach_every_parameter():
    model = make(context_dim=6, cond_channels=2, spatial_attn_levels=(0,), num_label_slots=2)
    model.train()
    x = torch.randn(2, 4, 4, 8, 8)
    cond = {"labels": torch.tensor([[1, 2], [3, 10]]), "context": torch.randn(2, 3, 6),
            "frames": torch.randn(2, 2, 4, 8, 8)}
    model(x, torch.tensor([1, 900]), cond).square().sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def _changed_frames(model, x, j, **kw):
    x2 = x.clone()
    x2[:, :, j] += torch.randn_like(x2[:, :, j])
    with torch.no_grad():
        return ((model(x2, 10, **kw) - model(x, 10, **kw)).abs().amax(dim=(0, 1, 3, 4)) > 1e-6).tolist()


def test_spatial_mode_keeps_frames_independent():
    model = make(time_mixing="spatial", temporal_attn_levels=(), spatial_attn_levels=(0, 1))
    x = torch.randn(1, 4, 6, 8, 8)
    assert _changed_frames(model, x, 2) == [False, False, True, False, False, False]


@pytest.mark.parametrize("overrides", [
    dict(time_mixing="full3d", temporal_attn_levels=()),
    dict(time_mixing="factorized", temporal_attn_levels=()),
    dict(time_mixing="spatial", temporal_attn_levels=(1,)),  # temporal attention alone mixes frames
])
def test_frames_mix_in_the_other_modes(overrides):
    model = make(**overrides)
    x = torch.randn(1, 4, 6, 8, 8)
    changed = _changed_frames(model, x, 2)
    assert changed[2] and sum(changed) >= 3, changed
    if overrides.get("temporal_attn_levels"):
        assert all(changed)  # attention reaches every frame


def test_labels_condition_the_output_and_missing_labels_mean_null():
    model = make(num_label_slots=2)
    x = torch.randn(2, 4, 4, 8, 8)
    y = model(x, 5, {"labels": torch.tensor([[1, 2], [3, 4]])})
    assert not torch.allclose(y, model(x, 5, {"labels": torch.tensor([[2, 1], [3, 4]])}))
    null = torch.full((2, 2), 10)
    torch.testing.assert_close(model(x, 5, {"labels": null}), model(x, 5))
    torch.testing.assert_close(model(x, 5, None), model(x, 5, {}))


def test_context_and_frames_conditioning():
    model = make(context_dim=6, cond_channels=3)
    x, ctx = torch.randn(2, 4, 4, 8, 8), torch.randn(2, 5, 6)
    y = model(x, 5, {"context": ctx})
    assert not torch.allclose(y, model(x, 5, {"context": torch.randn(2, 5, 6)}))
    # a mask that hides the last two tokens makes them irrelevant
    mask = torch.tensor([[True, True, True, False, False]] * 2)
    ctx2 = ctx.clone()
    ctx2[:, 3:] = 0
    torch.testing.assert_close(model(x, 5, {"context": ctx, "context_mask": mask}),
                               model(x, 5, {"context": ctx2, "context_mask": mask}))

    # conditioning frames: missing = zeros; their input weights start at zero (silent until trained), and once
    # they are not, different frames change the output
    zeros, frames = torch.zeros(2, 3, 4, 8, 8), torch.randn(2, 3, 4, 8, 8)
    torch.testing.assert_close(model(x, 5, {"frames": zeros}), model(x, 5))
    assert model.conv_in.conv.weight[:, 4:].abs().sum() == 0 and model.conv_in.conv.weight[:, :4].abs().sum() > 0
    torch.testing.assert_close(model(x, 5, {"frames": frames}), model(x, 5))
    with torch.no_grad():
        model.conv_in.conv.weight[:, 4:].normal_()
    torch.testing.assert_close(model(x, 5, {"frames": zeros}), model(x, 5))
    assert not torch.allclose(model(x, 5, {"frames": frames}), model(x, 5))


def test_pooled_context_joins_the_timestep_embedding_and_ignores_padding():
    # no cross-attention level at all: the prompt can reach the output only through the pooled path
    model = make(context_dim=6, cross_attn_levels=(), pooled_context=True)
    assert model.cfg.attn_cross_levels == () and model.context_embed is not None
    x, ctx = torch.randn(2, 4, 4, 8, 8), torch.randn(2, 5, 6)
    mask = torch.tensor([[True, True, True, False, False], [True, True, True, True, True]])
    y = model(x, 5, {"context": ctx, "context_mask": mask})
    assert not torch.allclose(y, model(x, 5, {"context": torch.randn(2, 5, 6), "context_mask": mask}))
    # the pooled vector is the mean of the real tokens: padding (values and count) changes nothing
    padded = torch.cat([ctx, torch.randn(2, 3, 6)], dim=1)  # (2, 8, 6): three more padding tokens
    more_mask = torch.cat([mask, torch.zeros(2, 3, dtype=torch.bool)], dim=1)
    torch.testing.assert_close(model(x, 5, {"context": padded, "context_mask": more_mask}), y)
    # by hand: emb = time_embed(t) + context_embed(mean of the real tokens)
    pooled = torch.stack([ctx[0, :3].mean(0), ctx[1].mean(0)])  # (2, 6)
    seen = {}
    hook = model.context_embed.register_forward_hook(lambda mod, inputs, out: seen.update(pooled=inputs[0]))
    model(x, 5, {"context": ctx, "context_mask": mask})
    hook.remove()
    torch.testing.assert_close(seen["pooled"], pooled)
    # without it, the same U-Net with no cross-attention level ignores the context
    plain = make(context_dim=6, cross_attn_levels=())
    torch.testing.assert_close(plain(x, 5, {"context": ctx}), plain(x, 5, {"context": torch.randn(2, 5, 6)}))
    with pytest.raises(ValueError, match="pooled_context=True pools the context tokens, but context_dim=None"):
        UNetConfig.smoke(pooled_context=True)


def test_size_counts_frozen_weights_too():
    # a frozen copy (an EMA's, or temporal attention frozen in stage A) is the same network: notebook 07's
    # no-shipped-weights branch printed "UNet3D: 0.00 M parameters" for its EMA model before this
    from vdiff_edu.recipe import set_temporal_attention_trainable
    from vdiff_edu.train import EMA

    model = UNet3D(UNetConfig.smoke())
    n = sum(p.numel() for p in model.parameters())
    ema = EMA(model, decay=0.9).model
    assert model.num_parameters() == ema.num_parameters() == n
    assert f"{n:,}" in ema.shape_table(8, 16, 16)
    set_temporal_attention_trainable(model, False)
    assert model.num_parameters() == n


def test_shape_table_and_flops():
    model = UNet3D(UNetConfig.smoke())
    table = model.shape_table(8, 16, 16)
    assert "conv_in" in table and "(8, 8, 16, 16)" in table and "(16, 8, 8, 8)" in table
    assert f"{model.num_parameters():,}" in table
    # a frame-wise model costs exactly twice as much for twice the frames, apart from the (tiny) embedding MLP
    frame_wise = UNet3D(UNetConfig.smoke(time_mixing="spatial", temporal_attn_levels=()))
    emb = 2 * sum(m.in_features * m.out_features for m in frame_wise.time_embed.modules() if isinstance(m, nn.Linear))
    emb += 2 * sum(m.film.in_features * m.film.out_features for m in frame_wise.modules() if hasattr(m, "film"))
    assert frame_wise.flops_per_clip(8, 16, 16) - emb == 2 * (frame_wise.flops_per_clip(4, 16, 16) - emb)
    # conv_in alone, by hand: 2 · (out elements) · (in_ch · 3 · 3)
    conv_in_only = 2 * (8 * 4 * 16 * 16) * (4 * 9)
    assert frame_wise.flops_per_clip(4, 16, 16) > conv_in_only
    # temporal attention grows faster than linearly in the frames
    assert model.flops_per_clip(16, 16, 16) > 2 * model.flops_per_clip(8, 16, 16) - emb
    # split by kind: the parts add up to the total; 4× the positions per frame costs the convolutions 4× and the
    # spatial attention's products 16× (they compare every position with every other)
    model = UNet3D(UNetConfig.smoke(spatial_attn_levels=(0, 1)))
    small, large = model.flops_per_clip(4, 8, 8, by_kind=True), model.flops_per_clip(4, 16, 16, by_kind=True)
    assert sum(small.values()) == model.flops_per_clip(4, 8, 8)
    assert large["conv"] == 4 * small["conv"] and small["spatial attention"] > 0
    assert large["spatial attention"] == 16 * small["spatial attention"]
    assert large["temporal attention"] == 4 * small["temporal attention"]  # f² per position: linear in positions


def test_verbose_prints_parameter_count(capsys):
    UNet3D(UNetConfig.smoke())
    assert capsys.readouterr().out == ""
    UNet3D(UNetConfig.smoke(), verbose=True)
    assert "M parameters" in capsys.readouterr().out


def test_pinned_output():
    """A seeded model on a fixed input gives a pinned number: catches any unnoticed change of the network."""
    model = make(seed=0)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 4, 8, 8, generator=g)
    with torch.no_grad():
        y = model(x, torch.tensor([10, 700]), {"labels": torch.tensor([[3], [10]])})
    assert y.shape == x.shape
    assert y.abs().sum().item() == pytest.approx(PINNED_ABS_SUM, rel=1e-4)
    assert y.sum().item() == pytest.approx(PINNED_SUM, rel=1e-3, abs=1e-3)


PINNED_SUM = -342.5243
PINNED_ABS_SUM = 756.6154


# ----------------------------------------------------------------------------- errors that teach

@pytest.mark.parametrize("x,t,cond,match", [
    (torch.randn(4, 4, 8, 8), 1, None, r"\(b, c, f, h, w\).*x\[None\]"),
    (torch.randn(1, 3, 4, 8, 8), 1, None, r"in_channels=4 but x has 3 channels"),
    (torch.randn(1, 4, 4, 9, 8), 1, None, r"multiples of 2.*h=9"),
    (torch.randn(1, 4, 33, 8, 8), 1, None, r"max_frames=32"),
    (torch.randn(2, 4, 4, 8, 8), torch.tensor([1, 2, 3]), None, r"t must be.*\(2,\)"),
    (torch.randn(2, 4, 4, 8, 8), torch.tensor([[1], [2]]), None, r"t must be.*\(2,\)"),
    (torch.randn(2, 4, 4, 8, 8), 1, {"labels": torch.tensor([[3], [11]])}, r"\[0, 10\].*null token"),
    (torch.randn(2, 4, 4, 8, 8), 1, {"labels": torch.tensor([[3], [-1]])}, r"\[0, 10\]"),
    (torch.randn(2, 4, 4, 8, 8), 1, {"labels": torch.tensor([3, 4])}, r"\(b, num_label_slots\) = \(2, 1\)"),
    (torch.randn(2, 4, 4, 8, 8), 1, {"lables": torch.tensor([[3], [4]])}, r"unknown cond keys \['lables'\]"),
    (torch.randn(2, 4, 4, 8, 8), 1, {"context": torch.randn(2, 3, 6)}, r"context_dim=None"),
    (torch.randn(2, 4, 4, 8, 8), 1, {"frames": torch.randn(2, 1, 4, 8, 8)}, r"cond_channels=0"),
])
def test_bad_inputs_raise_teaching_errors(x, t, cond, match):
    model = UNet3D(UNetConfig.smoke())
    with pytest.raises(ValueError, match=match):
        model(x, t, cond)


def test_more_bad_inputs():
    with pytest.raises(TypeError, match="labels.long"):
        UNet3D(UNetConfig.smoke())(torch.randn(1, 4, 4, 8, 8), 1, {"labels": torch.tensor([[3.0]])})
    with pytest.raises(ValueError, match="num_label_slots=0"):
        UNet3D(UNetConfig.smoke(num_label_slots=0))(torch.randn(1, 4, 4, 8, 8), 1, {"labels": torch.tensor([[3]])})
    model = UNet3D(UNetConfig.smoke(context_dim=6, cond_channels=2))
    x = torch.randn(1, 4, 4, 8, 8)
    with pytest.raises(ValueError, match=r"\(b, L, context_dim\) = \(1, L, 6\)"):
        model(x, 1, {"context": torch.randn(1, 3, 5)})
    with pytest.raises(ValueError, match=r"context_mask.*\(1, 3\)"):
        model(x, 1, {"context": torch.randn(1, 3, 6), "context_mask": torch.ones(1, 4, dtype=torch.bool)})
    with pytest.raises(ValueError, match=r"frames.*\(1, 2, 4, 8, 8\)"):
        model(x, 1, {"frames": torch.randn(1, 2, 3, 8, 8)})
    with pytest.raises(ValueError, match="multiple of 2"):
        UNet3D(UNetConfig.smoke(temporal_downsample_levels=(0,)))(torch.randn(1, 4, 5, 8, 8), 1)


def test_bad_configs_raise_teaching_errors():
    with pytest.raises(ValueError, match="time_mixing must be one of"):
        UNetConfig(time_mixing="3d")
    with pytest.raises(ValueError, match=r"temporal_attn_levels=\(2,\).*0\.\.1"):
        UNetConfig(channel_mults=(1, 2), temporal_attn_levels=(2,))
    with pytest.raises(ValueError, match="last level"):
        UNetConfig(channel_mults=(1, 2), temporal_downsample_levels=(1,))


# ----------------------------------------------------------------------------- notebook 03 exercise checks

def _exercises_03():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "notebooks"))
    from exercises import checks_03, solutions_03

    return checks_03, solutions_03


def _not_yet(*args):
    raise NotImplementedError


def test_exercise_checks_03_accept_solutions_and_reject_mistakes(capsys):
    checks, sol = _exercises_03()
    assert checks.check_timestep_embedding(sol.my_timestep_embedding)
    assert checks.check_film(sol.film)
    assert checks.check_frames_seen(sol.frames_seen)
    assert checks.check_factorized_params(sol.factorized_conv_params)
    swapped = lambda t, d: sol.my_timestep_embedding(t, d).roll(d // 2, dims=-1)  # sines first
    assert not checks.check_timestep_embedding(swapped)
    assert not checks.check_film(lambda h, s, b: h * s[:, :, None, None, None] + b[:, :, None, None, None])
    assert not checks.check_film(lambda h, s, b: h * (1 + s) + b)  # forgot to reshape: raises inside, caught
    assert not checks.check_frames_seen(lambda n, mode: 1 if mode == "spatial" else 2 * n + 1)
    assert not checks.check_factorized_params(lambda ci, co: 9 * ci * co + 3 * co * co)
    out = capsys.readouterr().out
    assert "halves are swapped" in out and "(1 + scale)" in out and "one bias per output channel" in out
    for check in (checks.check_timestep_embedding, checks.check_film, checks.check_frames_seen,
                  checks.check_factorized_params):
        assert not check(None) and not check(_not_yet)
    assert "not attempted yet" in capsys.readouterr().out


def test_runs_in_bfloat16():
    model = UNet3D(UNetConfig.smoke(context_dim=8, cond_channels=1)).to(torch.bfloat16)
    x = torch.randn(1, 4, 4, 8, 8, dtype=torch.bfloat16)
    cond = {"labels": torch.tensor([[3]]), "context": torch.randn(1, 2, 8, dtype=torch.bfloat16)}
    assert model(x, 10, cond).dtype == torch.bfloat16


def test_flops_estimate_matches_torch_flop_counter():
    """Our hook-based count and PyTorch's own counter agree on convs, linears and attention matmuls.

    (Left out: cross-attention, whose fused CPU kernel PyTorch's counter does not see.)
    """
    from torch.utils.flop_counter import FlopCounterMode

    model = UNet3D(UNetConfig.smoke(spatial_attn_levels=(0, 1), temporal_attn_levels=(0, 1)))
    x, t, cond = model._example_input(4, 8, 8)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x, t, cond)
    assert model.flops_per_clip(4, 8, 8) == counter.get_total_flops()
