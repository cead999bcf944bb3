"""The per-frame KL autoencoder: shapes, the posterior, the scale factor, training, saving, bad inputs, exercises."""

import math
import sys
from pathlib import Path

import pytest
import torch

from vdiff_edu.autoencoder import (AutoencoderConfig, DiagonalGaussian, FrameAutoencoder, autoencoder_loss,
                                   estimate_scale_factor, reconstruct, train_autoencoder)
from vdiff_edu.presets import ExperimentConfig
from vdiff_edu.similarity import psnr, ssim

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"

# Tiny clips for everything here: 16×16 frames, one 12 px digit, 4 frames; digits from $VDIFF_MNIST_DIR or the
# offline fallback (never the network).
CLIP_KW = dict(num_frames=4, image_size=16, digit_size=12, num_digits=1, download=False, verbose=False)


def tiny_model(seed: int = 0, **overrides) -> FrameAutoencoder:
    torch.manual_seed(seed)
    return FrameAutoencoder(AutoencoderConfig(**{**vars(AutoencoderConfig.smoke()), **overrides}))


def random_video(*shape, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.fixture(scope="module")
def clips():
    from vdiff_edu.moving_mnist import MovingMNIST, make_clips

    train = make_clips(MovingMNIST("train", length=256, **CLIP_KW), 256)  # (256, 1, 4, 16, 16)
    test = make_clips(MovingMNIST("test", length=16, **CLIP_KW), 16)  # held out: other digit images
    return train, test


@pytest.fixture(scope="module")
def trained(clips):
    """The smoke autoencoder after 300 steps of 32 frames (about 15 s on a busy 2-core CPU with one thread)."""
    train, _ = clips
    model = tiny_model()
    history = train_autoencoder(model, train, steps=300, batch_size=32, log_every=100, progress=False, device="cpu")
    return model, history


# ---------------------------------------------------------------- shapes ----


@pytest.mark.parametrize("preset", ["smoke", "cpu", "gpu"])
def test_presets_give_the_documented_latent_shapes(preset):
    cfg = ExperimentConfig.preset(preset).autoencoder  # the recipes live in presets.py
    expected = {"smoke": (16, 4), "cpu": (32, 8), "gpu": (64, 16)}[preset]
    assert (cfg.image_size, cfg.latent_size) == expected
    assert cfg.downsample == 4 and cfg.latent_channels == 4


def test_encode_decode_shapes_and_range():
    model = tiny_model().eval()
    x = random_video(2, 1, 3, 16, 16)  # (b, c, f, h, w)
    q = model.posterior(x)
    assert q.mean.shape == q.logvar.shape == (2, 4, 3, 4, 4)
    z = model.encode(x)
    assert z.shape == model.latent_shape(x.shape) == (2, 4, 3, 4, 4)
    x_hat = model.decode(z)
    assert x_hat.shape == x.shape
    assert x_hat.abs().max() < 1  # tanh output
    recon, q2 = model(x)
    assert recon.shape == x.shape and isinstance(q2, DiagonalGaussian)
    # downsampling 8 as an option: one more level
    model8 = tiny_model(channel_mults=(1, 2, 2, 2))
    assert model8.encode(random_video(1, 1, 2, 16, 16)).shape == (1, 4, 2, 2, 2)


def test_frames_are_encoded_independently():
    model = tiny_model().eval()
    x = random_video(1, 1, 3, 16, 16)
    y = x.clone()
    y[:, :, 1] = random_video(1, 1, 16, 16, seed=1)  # change frame 1 only
    zx, zy = model.encode(x), model.encode(y)
    torch.testing.assert_close(zx[:, :, [0, 2]], zy[:, :, [0, 2]])  # other frames: same latents
    assert not torch.allclose(zx[:, :, 1], zy[:, :, 1])
    # and the per-frame batch fold: a clip gives the same latents as its frames one by one
    one_by_one = torch.cat([model.encode(x[:, :, k:k + 1]) for k in range(3)], dim=2)
    torch.testing.assert_close(zx, one_by_one, rtol=1e-5, atol=1e-6)


def test_gradients_reach_every_parameter():
    model = tiny_model()
    loss, recon, kl, x_hat = autoencoder_loss(model, random_video(4, 1, 16, 16))
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not missing, f"no gradient reaches {missing}"
    assert loss.item() == pytest.approx(recon.item() + model.cfg.kl_weight * kl.item(), rel=1e-5)


# ---------------------------------------------------------------- the posterior ----


def test_kl_by_hand():
    # KL = ½(μ² + σ² − 1 − log σ²) per element, averaged per item
    mean = torch.tensor([[0.0, 1.0, 0.0, 2.0]])
    logvar = torch.tensor([[0.0, 0.0, math.log(2.0), 0.0]])
    per_element = [0.0, 0.5, 0.5 * (2 - 1 - math.log(2)), 2.0]  # 0, ½·1, ½(1 − ln 2) ≈ 0.1534, ½·4
    kl = DiagonalGaussian(mean, logvar).kl()
    assert kl.shape == (1,)
    assert kl.item() == pytest.approx(sum(per_element) / 4, rel=1e-6)


def test_sample_versus_mode():
    model = tiny_model().eval()
    x = random_video(2, 1, 2, 16, 16)
    # the mode is deterministic, a sample is repeatable with the same generator and differs with another
    torch.testing.assert_close(model.encode(x), model.encode(x))
    torch.testing.assert_close(model.encode(x), model.posterior(x).mean * model.scale_factor)
    s1 = model.encode(x, sample=True, generator=torch.Generator().manual_seed(1))
    s1b = model.encode(x, sample=True, generator=torch.Generator().manual_seed(1))
    s2 = model.encode(x, sample=True, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(s1, s1b)
    assert not torch.allclose(s1, s2)
    # a sample is mean + std·ε with the generator's ε
    q = model.posterior(x)
    eps = torch.randn(q.mean.shape, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(s1, q.mean + q.std * eps)
    # and samples scatter around the mode with the posterior's std
    draws = torch.stack([q.sample(torch.Generator().manual_seed(i)) for i in range(200)])
    torch.testing.assert_close(draws.mean(0), q.mode(), atol=4 * q.std.max().item() / math.sqrt(200) + 1e-6, rtol=0)


# ---------------------------------------------------------------- training and the scale factor ----


def test_trained_autoencoder_beats_a_blank_prediction_on_held_out_clips(trained, clips):
    model, history = trained
    _, test = clips
    assert [r["step"] for r in history] == [100, 200, 300]
    assert set(history[0]) >= {"step", "loss", "recon", "kl", "psnr"}
    assert history[-1]["loss"] < history[0]["loss"]
    recon = reconstruct(model, test)  # (16, 1, 4, 16, 16)
    blank = torch.full_like(test, -1.0)  # the best "nothing" guess: all background
    p_model, p_blank = psnr(recon, test).mean().item(), psnr(blank, test).mean().item()
    # Seen on a 2-core CPU: with real MNIST digits ($VDIFF_MNIST_DIR) 22.6 dB against 14.0 dB for the blank
    # frame, SSIM 0.84 against 0.10; with the offline synthetic digits 22.5 dB against 11.4 dB.
    # +6 dB is a quarter of the blank frame's squared error.
    assert p_model > p_blank + 6, (p_model, p_blank)
    assert ssim(recon, test, window=7).mean() > ssim(blank, test, window=7).mean() + 0.4


def test_scale_factor_gives_unit_std_and_leaves_reconstructions_alone(trained, clips):
    model, _ = trained
    train, test = clips
    before = reconstruct(model, test)
    model.scale_factor.fill_(1.0)
    s = estimate_scale_factor(model, train[:64])
    assert s == pytest.approx(model.scale_factor.item())
    with torch.no_grad():
        z = model.encode(train[:64])  # scaled latents of the data it was estimated on
    assert z.std().item() == pytest.approx(1.0, rel=1e-3)
    torch.testing.assert_close(reconstruct(model, test), before, rtol=1e-4, atol=1e-5)  # decode divides it out
    # a Dataset works as well as a tensor, and set_it=False only reports
    from vdiff_edu.moving_mnist import MovingMNIST

    s_ds = estimate_scale_factor(model, MovingMNIST("train", length=64, **CLIP_KW), set_it=False)
    assert s_ds == pytest.approx(s, rel=1e-4)


def test_training_accepts_a_dataset_and_a_loader_and_calls_back():
    from torch.utils.data import DataLoader

    from vdiff_edu.moving_mnist import MovingMNIST

    ds = MovingMNIST("train", length=16, **CLIP_KW)
    seen = []
    model = tiny_model()
    hist = train_autoencoder(model, ds, steps=2, batch_size=6, log_every=1, progress=False, device="cpu",
                             callback=lambda step, rec: seen.append(step))
    assert seen == [1, 2] and len(hist) == 2
    loader = DataLoader(ds, batch_size=2, shuffle=True)
    hist = train_autoencoder(model, loader, steps=3, log_every=3, progress=False, device="cpu")
    assert len(hist) == 1 and math.isfinite(hist[0]["loss"])


def test_training_is_deterministic_given_the_seed(clips):
    train, _ = clips
    outs = []
    for _ in range(2):
        model = tiny_model(seed=3)
        outs.append(train_autoencoder(model, train, steps=3, batch_size=8, log_every=3, progress=False,
                                      device="cpu", seed=7)[0]["loss"])
    assert outs[0] == outs[1]


# ---------------------------------------------------------------- saving and loading ----


def test_save_load_round_trip(tmp_path):
    model = tiny_model(seed=5).eval()
    model.scale_factor.fill_(0.7)
    path = model.save(tmp_path / "ae.safetensors", extra_metadata={"psnr": 21.5})
    loaded = FrameAutoencoder.load(path, device="cpu")
    assert loaded.cfg == model.cfg and loaded.scale_factor.item() == pytest.approx(0.7)
    x = random_video(2, 1, 2, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(loaded.encode(x), model.encode(x), rtol=0, atol=0)
        torch.testing.assert_close(loaded.decode(model.encode(x)), model.decode(model.encode(x)), rtol=0, atol=0)
    from vdiff_edu.checkpoint import read_weights_metadata

    meta = read_weights_metadata(path)
    assert meta["psnr"] == 21.5 and meta["config"]["channel_mults"] == [1, 2, 2]


def test_load_refuses_a_file_of_another_model(tmp_path):
    from vdiff_edu.checkpoint import save_weights

    path = save_weights(tmp_path / "other.safetensors", torch.nn.Linear(2, 2), {"model": "UNet3D"})
    with pytest.raises(ValueError, match="does not hold a FrameAutoencoder"):
        FrameAutoencoder.load(path)


# ---------------------------------------------------------------- bad inputs ----


def test_bad_inputs_raise_errors_that_teach():
    model = tiny_model()
    with pytest.raises(ValueError, match=r"\(b, c, f, h, w\).*b c 1 h w"):
        model.encode(torch.zeros(2, 1, 16, 16))  # frames without a frame axis
    with pytest.raises(ValueError, match="in_channels=1"):
        model.encode(torch.zeros(1, 3, 2, 16, 16))
    with pytest.raises(ValueError, match="divisible by the downsampling factor 4"):
        model.encode(torch.zeros(1, 1, 2, 18, 16))
    with pytest.raises(ValueError, match="decode expects latents"):
        model.decode(torch.zeros(1, 3, 2, 4, 4))
    with pytest.raises(ValueError, match="image_size=30 must be divisible"):
        AutoencoderConfig(image_size=30)
    with pytest.raises(ValueError, match="latent_channels"):
        AutoencoderConfig(latent_channels=0)
    with pytest.raises(ValueError, match="steps >= 1"):
        train_autoencoder(model, torch.zeros(2, 1, 2, 16, 16), steps=0, progress=False)
    with pytest.raises(ValueError, match="preset"):
        ExperimentConfig.preset("huge")


# ---------------------------------------------------------------- notebook 05 exercises ----


@pytest.fixture()
def checks_and_solutions():
    sys.path.insert(0, str(NOTEBOOKS))
    try:
        from exercises import checks_05, solutions_05

        yield checks_05, solutions_05
    finally:
        sys.path.remove(str(NOTEBOOKS))


def test_exercise_checks_accept_the_solutions(checks_and_solutions, capsys):
    checks, sol = checks_and_solutions
    assert checks.check_psnr(sol.my_psnr)
    assert checks.check_latent_shape(sol.latent_shape)
    assert checks.check_kl(sol.kl_per_element)
    assert checks.check_scale_factor(sol.scale_factor_of)
    assert capsys.readouterr().out.count("✅") == 4


def test_exercise_checks_reject_wrong_answers_and_wait_for_unattempted_ones(checks_and_solutions, capsys):
    checks, _ = checks_and_solutions

    def not_yet(*args):
        raise NotImplementedError

    # wrong: natural log instead of log10; forgot that data_range is squared; KL without the ½; std not 1/std
    assert not checks.check_psnr(lambda x, y, data_range=2.0: 10 * torch.log(data_range**2 / ((x - y) ** 2).mean()))
    assert not checks.check_latent_shape(lambda shape, c_z, mults: (shape[0], c_z, shape[2], shape[3] // len(mults), shape[4] // len(mults)))
    assert not checks.check_kl(lambda m, lv: m**2 + lv.exp() - 1 - lv)
    assert not checks.check_scale_factor(lambda z: z.std())
    out = capsys.readouterr().out
    assert out.count("❌") == 4 and out.count("Hint") == 4
    for check in (checks.check_psnr, checks.check_latent_shape, checks.check_kl, checks.check_scale_factor):
        assert not check(not_yet) and not check(None)
    assert "not attempted yet" in capsys.readouterr().out


# ---------------------------------------------------------------- the temporally fine-tuned decoder ----


def test_a_temporal_decoder_starts_as_the_per_frame_one_and_fine_tunes_only_its_temporal_layers(tmp_path):
    from vdiff_edu.autoencoder import finetune_temporal_decoder, with_temporal_decoder

    torch.manual_seed(0)
    base = FrameAutoencoder(AutoencoderConfig.smoke()).eval()
    clips = torch.rand(6, 1, 4, 16, 16) * 2 - 1
    z = base.encode(clips)  # (6, 4, 4, 4, 4)
    video = with_temporal_decoder(base)
    assert video.cfg.temporal_decoder and not base.cfg.temporal_decoder
    torch.testing.assert_close(video.decode(z), base.decode(z))  # zero-initialised: the same decoder at first
    losses = finetune_temporal_decoder(video, clips, steps=5, batch_size=2)
    assert len(losses) == 5 and all(math.isfinite(x) for x in losses)
    trained = {k for k, v in video.state_dict().items()
               if k in base.state_dict() and not torch.equal(v, base.state_dict()[k])}
    assert trained == set()  # encoder and the per-frame decoder untouched
    with torch.no_grad():
        torch.testing.assert_close(video.decode(z, temporal=False), base.decode(z))  # "before", exactly
        after = video.decode(z)
        assert not torch.allclose(after, base.decode(z))
        # frames mix: changing frame 0's latent changes frame 1 only with the temporal layers
        z2 = z.clone()
        z2[:, :, 0] += 1.0
        assert not torch.allclose(video.decode(z2)[:, :, 1], after[:, :, 1])
        torch.testing.assert_close(video.decode(z2, temporal=False)[:, :, 1], base.decode(z)[:, :, 1])
    path = video.save(tmp_path / "ae.safetensors")
    torch.testing.assert_close(FrameAutoencoder.load(path).decode(z), after)
    with pytest.raises(ValueError, match="with_temporal_decoder"):
        finetune_temporal_decoder(base, clips, steps=1)
