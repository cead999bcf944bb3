"""Full mode before a GPU ever runs it: the ``gpu`` preset at its real geometry (64×64 frames, 16 frames, two digits,
the full autoencoder and the 33.6 M-parameter U-Net) takes one training step and one sampling step on the CPU.
Slow-ish (seconds), but it is the only check that full mode's shapes, conditions and code paths fit together."""

from __future__ import annotations

import pytest
import torch

from vdiff_edu.autoencoder import FrameAutoencoder, autoencoder_loss
from vdiff_edu.conditioning import Conditioning
from vdiff_edu.presets import ExperimentConfig
from vdiff_edu.sampling import sample
from vdiff_edu.schedule import NoiseSchedule
from vdiff_edu.train import EMA, training_step
from vdiff_edu.unet import UNet3D


@pytest.fixture(scope="module")
def gpu_preset():
    return ExperimentConfig.preset("gpu")


def test_the_gpu_preset_autoencoder_trains_and_round_trips_at_64_px(gpu_preset):
    cfg = gpu_preset
    torch.manual_seed(0)
    ae = FrameAutoencoder(cfg.autoencoder)
    clips = torch.rand(1, 1, cfg.num_frames, cfg.image_size, cfg.image_size) * 2 - 1  # (1, 1, 16, 64, 64)
    frames = clips[:, :, :2].transpose(1, 2).reshape(2, 1, cfg.image_size, cfg.image_size)  # (2, 1, 64, 64)
    opt = torch.optim.AdamW(ae.parameters(), lr=1e-4)
    loss, *_ = autoencoder_loss(ae, frames, torch.Generator().manual_seed(0))
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)
    with torch.no_grad():
        z = ae.encode(clips)
        assert z.shape == (1, *cfg.latent_shape) == (1, 4, 16, 16, 16)
        assert ae.decode(z).shape == clips.shape


def test_the_gpu_preset_unet_takes_a_training_step_and_a_sampling_step(gpu_preset):
    cfg = gpu_preset
    torch.manual_seed(0)
    unet = UNet3D(cfg.unet)
    assert 30e6 < unet.num_parameters() < 40e6
    conditioning = Conditioning.for_unet(cfg.unet, cfg.train.cond_drop_prob)
    latents = torch.randn(1, *cfg.latent_shape)  # (1, 4, 16, 16, 16)
    cond = conditioning.from_batch({"labels": torch.tensor([[3, 7]])})  # two digits per clip
    optimizer = torch.optim.AdamW(unet.parameters(), lr=cfg.train.lr)
    before = unet.conv_out.conv.weight.detach().clone()  # zero at init
    loss, grad_norm = training_step(unet, NoiseSchedule(cfg.schedule_kind, cfg.schedule_steps), optimizer, EMA(unet),
                                    latents, cond, cfg.train.prediction, cfg.train.min_snr_gamma, cfg.train.grad_clip)
    assert torch.isfinite(loss) and grad_norm > 0
    assert not torch.equal(before, unet.conv_out.conv.weight)  # the step changed the weights
    out = sample(unet, NoiseSchedule(cfg.schedule_kind, cfg.schedule_steps), latents.shape, cond, sampler=cfg.sampler,
                 steps=1, guidance_scale=cfg.guidance_scale, prediction=cfg.train.prediction,
                 generator=torch.Generator().manual_seed(0), conditioning=conditioning)
    assert out.shape == latents.shape and torch.isfinite(out).all()
