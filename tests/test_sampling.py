"""Samplers: determinism, agreement with a problem whose answer is known, guidance, shapes, any number of steps."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from vdiff_edu.conditioning import Conditioning, DigitLabels
from vdiff_edu.sampling import (DPMSolverPP, ddim_step, ddpm_step, guidance_at, guided_prediction, predict_x0_eps,
                                sample, timestep_pairs)
from vdiff_edu.schedule import NoiseSchedule

SHAPE = (2, 1, 3, 8, 8)  # (b, c, f, h, w): a tiny batch of video clips


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: see conftest.one_thread


class TinyDenoiser(nn.Module):
    """A few-parameter stand-in for UNet3D with the same call: model(x, t, cond) -> same shape as x."""

    def __init__(self, channels: int = 1, num_classes: int = 10):
        super().__init__()
        self.cfg = SimpleNamespace(num_classes=num_classes, num_label_slots=1)  # read by Conditioning.for_unet
        self.conv = nn.Conv3d(channels, channels, 3, padding=1)
        self.time = nn.Linear(1, channels)
        self.label = nn.Embedding(num_classes + 1, channels)  # the last row is the null token

    def forward(self, x, t, cond=None):
        h = self.conv(x) + self.time(t.float()[:, None] / 1000)[:, :, None, None, None]
        if cond is not None:
            h = h + self.label(cond["labels"]).sum(1)[:, :, None, None, None]
        return h


class GaussianOracle(nn.Module):
    """The exact denoiser for data x₀ ~ N(μ, s²) in every coordinate: x_t ~ N(a·μ, a²s² + σ²) with a = √ᾱ_t,
    σ = √(1−ᾱ_t), so E[x₀ | x_t] = μ + a·s²/(a²s² + σ²)·(x_t − a·μ), returned as ε, x₀ or v."""

    def __init__(self, schedule, mu: float, std: float, prediction: str):
        super().__init__()
        self.schedule, self.mu, self.std, self.prediction = schedule, mu, std, prediction
        self.unused = nn.Parameter(torch.zeros(()))  # so sample() can find a device

    def forward(self, x, t, cond=None):
        ab = self.schedule.alpha_bar[t].reshape(-1, 1, 1, 1, 1)  # (b, 1, 1, 1, 1) float64
        a, sigma, xd = ab.sqrt(), (1 - ab).sqrt(), x.double()
        x0 = self.mu + a * self.std**2 / (a**2 * self.std**2 + sigma**2) * (xd - a * self.mu)
        eps = (xd - a * x0) / sigma
        return {"eps": eps, "x0": x0, "v": a * eps - sigma * x0}[self.prediction].float()


@pytest.fixture(scope="module")
def schedule():
    return NoiseSchedule("cosine", 1000)


@pytest.fixture
def model():
    torch.manual_seed(0)
    return TinyDenoiser()


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------- determinism and shapes ----


def test_ddim_eta0_is_deterministic_for_a_seed(model, schedule):
    a = sample(model, schedule, SHAPE, sampler="ddim", steps=8, generator=_gen(3))
    b = sample(model, schedule, SHAPE, sampler="ddim", steps=8, generator=_gen(3))
    c = sample(model, schedule, SHAPE, sampler="ddim", steps=8, generator=_gen(4))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.allclose(a, c), "another seed must give other clips"


def test_ddim_eta0_draws_noise_only_once(model, schedule):
    # η = 0: the only randomness is x_T, so giving x_T fixes the result whatever the generator
    x_T = torch.randn(SHAPE, generator=_gen(1))
    a = sample(model, schedule, None, sampler="ddim", steps=5, x_T=x_T, generator=_gen(7))
    b = sample(model, schedule, None, sampler="ddim", steps=5, x_T=x_T, generator=_gen(8))
    torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("sampler", ["ddpm", "ddim", "dpmpp"])
@pytest.mark.parametrize("steps", [1, 2, 7])
def test_any_number_of_steps_gives_finite_video(model, schedule, sampler, steps):
    x = sample(model, schedule, SHAPE, sampler=sampler, steps=steps, generator=_gen())
    assert x.shape == SHAPE and torch.isfinite(x).all()


def test_steps_outside_the_schedule_are_refused(model, schedule):
    for steps in (0, schedule.num_steps + 1):
        with pytest.raises(ValueError, match="steps must be between 1"):
            sample(model, schedule, SHAPE, steps=steps)
    with pytest.raises(ValueError, match="sampler must be one of"):
        sample(model, schedule, SHAPE, sampler="euler")
    with pytest.raises(ValueError, match="prediction must be one of"):
        sample(model, schedule, SHAPE, prediction="score")


def test_timestep_pairs_end_at_clean_data(schedule):
    pairs = timestep_pairs(schedule, 4)
    assert pairs == [(999, 749), (749, 499), (499, 249), (249, -1)]


def test_trajectory_holds_every_x_t_and_x0_hat(model, schedule):
    x, traj = sample(model, schedule, SHAPE, sampler="ddim", steps=6, generator=_gen(), return_trajectory=True)
    assert traj["t"].tolist() == schedule.timesteps(6).tolist()
    assert traj["x_t"].shape == (7, *SHAPE) and traj["x0_hat"].shape == (6, *SHAPE)
    torch.testing.assert_close(traj["x_t"][0], torch.randn(SHAPE, generator=_gen()))  # starts from the noise
    torch.testing.assert_close(traj["x_t"][-1], x)
    torch.testing.assert_close(traj["x0_hat"][-1], x)  # the last step lands exactly on x̂₀
    assert model.training, "sample() must put the model back in the mode it found it in"


def test_seeded_five_step_loop_is_pinned(schedule):
    # a known denoiser (no random weights), five DDIM steps: the number below only changes if the maths does
    oracle = GaussianOracle(schedule, mu=0.5, std=0.3, prediction="v")
    x = sample(oracle, schedule, SHAPE, sampler="ddim", steps=5, generator=_gen(0))
    torch.testing.assert_close(x.sum(), torch.tensor(194.9394), rtol=1e-5, atol=1e-3)


# ---------------------------------------------------------------- the step functions ----


@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
def test_predict_x0_eps_recovers_the_truth(schedule, prediction):
    x0, eps = torch.randn(SHAPE, generator=_gen(1)), torch.randn(SHAPE, generator=_gen(2))
    t = torch.tensor([10, 700])
    x_t = schedule.q_sample(x0, t, eps)
    out = {"eps": eps, "x0": x0, "v": schedule.v_target(x0, eps, t)}[prediction]
    x0_hat, eps_hat = predict_x0_eps(schedule, out, t, x_t, prediction)
    torch.testing.assert_close(x0_hat, x0, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(eps_hat, eps, atol=1e-4, rtol=1e-4)


def test_ddpm_step_is_the_posterior_of_ddpm_eq_7(schedule):
    # single step t -> t-1, hand-computed from β_t: μ̃ = √ᾱ_{t−1}β_t/(1−ᾱ_t)·x₀ + √α_t(1−ᾱ_{t−1})/(1−ᾱ_t)·x_t
    t, x0 = 500, torch.randn(SHAPE, generator=_gen(1))
    x_t = torch.randn(SHAPE, generator=_gen(2))
    ab_t, ab_s, beta = schedule.alpha_bar[t], schedule.alpha_bar[t - 1], schedule.betas[t]
    mean = ab_s.sqrt() * beta / (1 - ab_t) * x0 + (1 - beta).sqrt() * (1 - ab_s) / (1 - ab_t) * x_t
    var = (1 - ab_s) / (1 - ab_t) * beta
    z = torch.randn(SHAPE, generator=_gen(9))
    out = ddpm_step(schedule, x0, t, t - 1, x_t, prediction="x0", generator=_gen(9))
    torch.testing.assert_close(out, (mean + var.sqrt() * z).float(), atol=1e-5, rtol=1e-5)


def test_ddim_eta1_has_ddpms_variance(schedule):
    # DDIM eq. 16: η = 1 gives σ_t² = β̃_t, so with the same noise DDIM(η=1) and DDPM take the same step
    x_t, out = torch.randn(SHAPE, generator=_gen(1)), torch.randn(SHAPE, generator=_gen(2))
    a = ddim_step(schedule, out, 800, 600, x_t, "v", eta=1.0, generator=_gen(5))
    b = ddpm_step(schedule, out, 800, 600, x_t, "v", generator=_gen(5))
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_dpmpp_first_step_is_a_ddim_step(schedule):
    # DPM-Solver++(1) is DDIM (Lu et al. 2022, section 4.1); the 2M solver's first step is first order
    x_t, out = torch.randn(SHAPE, generator=_gen(1)), torch.randn(SHAPE, generator=_gen(2))
    a = DPMSolverPP(schedule).step(out, 800, 600, x_t, "v")
    b = ddim_step(schedule, out, 800, 600, x_t, "v", eta=0.0)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_every_sampler_lands_on_x0_hat_at_the_last_step(schedule):
    x_t, out = torch.randn(SHAPE, generator=_gen(1)), torch.randn(SHAPE, generator=_gen(2))
    x0_hat, _ = predict_x0_eps(schedule, out, 99, x_t, "v")
    for x in (ddpm_step(schedule, out, 99, -1, x_t, "v", generator=_gen()),
              ddim_step(schedule, out, 99, -1, x_t, "v", eta=1.0, generator=_gen()),
              DPMSolverPP(schedule).step(out, 99, -1, x_t, "v")):
        torch.testing.assert_close(x, x0_hat, atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------- a problem with a known answer ----

MU, STD = 0.5, 0.3
TOY_SHAPE = (500, 1, 4, 4, 4)  # 32,000 numbers: the sample std is known to about ±0.0012


@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
@pytest.mark.parametrize("sampler,steps", [("ddpm", 1000), ("ddim", 200), ("dpmpp", 50)])
def test_samplers_agree_with_the_known_distribution(schedule, sampler, steps, prediction):
    # Gaussian data N(μ, s²) has an exact denoiser; fed to any sampler, its outputs must be N(μ, s²) again
    oracle = GaussianOracle(schedule, MU, STD, prediction)
    x = sample(oracle, schedule, TOY_SHAPE, sampler=sampler, steps=steps, prediction=prediction, generator=_gen(0))
    assert abs(x.mean().item() - MU) < 0.01, f"{sampler}: mean {x.mean():.4f}, expected {MU}"
    assert abs(x.std().item() - STD) < 0.008, f"{sampler}: std {x.std():.4f}, expected {STD}"


def test_dpmpp_is_closer_than_ddim_at_few_steps(schedule):
    oracle = GaussianOracle(schedule, MU, STD, "v")
    err = {s: abs(sample(oracle, schedule, TOY_SHAPE, sampler=s, steps=10, generator=_gen(0)).std().item() - STD)
           for s in ("ddim", "dpmpp")}
    assert err["dpmpp"] < err["ddim"], f"a second-order solver should beat DDIM at 10 steps: {err}"


# ---------------------------------------------------------------- classifier-free guidance ----


def test_guidance_scale_one_is_the_conditional_prediction(model):
    x, t = torch.randn(SHAPE, generator=_gen(1)), torch.tensor([100, 900])
    cond = {"labels": torch.tensor([[3], [7]])}
    torch.testing.assert_close(guided_prediction(model, x, t, cond, 1.0), model(x, t, cond), rtol=0, atol=0)


def test_guidance_combines_conditional_and_unconditional(model):
    x, t = torch.randn(SHAPE, generator=_gen(1)), torch.tensor([100, 900])
    cond = {"labels": torch.tensor([[3], [7]])}
    null = Conditioning([DigitLabels(num_classes=10)]).null(cond)
    assert null["labels"].tolist() == [[10], [10]]
    expected = model(x, t, null) + 3.0 * (model(x, t, cond) - model(x, t, null))
    torch.testing.assert_close(guided_prediction(model, x, t, cond, 3.0), expected, atol=1e-5, rtol=1e-5)
    # and guidance changes the clips that come out
    a = sample(model, NoiseSchedule(), SHAPE, cond=cond, steps=4, generator=_gen(), guidance_scale=1.0)
    b = sample(model, NoiseSchedule(), SHAPE, cond=cond, steps=4, generator=_gen(), guidance_scale=3.0)
    assert not torch.allclose(a, b)


def test_guidance_in_an_interval_guides_only_the_steps_inside_it(model):
    # by hand: inside (lo, hi] the scale, outside 1; a dict of scales is passed through unchanged
    assert [guidance_at(4.0, t, (300, 900)) for t in (999, 901, 900, 500, 301, 300, 0)] == [1, 1, 4, 4, 4, 1, 1]
    assert guidance_at({"labels": 3.0}, 500, (300, 900)) == {"labels": 3.0} and guidance_at(2.0, 999, None) == 2.0
    # 4 DDIM steps visit t = 999, 749, 499, 249: the interval (-1, 700] guides the last two, so the network sees a
    # doubled batch (conditional and null branches) only there
    batches = []
    spy = TinyDenoiser()
    spy.load_state_dict(model.state_dict())
    spy.register_forward_pre_hook(lambda m, args: batches.append((int(args[1][0]), args[0].shape[0])))
    cond = {"labels": torch.tensor([[3], [7]])}
    ours = sample(spy, NoiseSchedule(), SHAPE, cond=cond, steps=4, generator=_gen(), guidance_scale=3.0,
                  guidance_interval=(-1, 700))
    assert batches == [(999, 2), (749, 2), (499, 4), (249, 4)]
    # the same loop written out: scale 1 at the first two steps, 3 at the last two
    schedule, x = NoiseSchedule(), torch.randn(SHAPE, generator=_gen())
    for (t, t_prev), s in zip(timestep_pairs(schedule, 4), (1.0, 1.0, 3.0, 3.0)):
        out = guided_prediction(model, x, torch.full((2,), t), cond, s)
        x = ddim_step(schedule, out, t, t_prev, x)
    torch.testing.assert_close(ours, x, rtol=0, atol=0)
    # an interval that holds every step is plain guidance; one that holds none is the conditional model
    every = sample(model, schedule, SHAPE, cond=cond, steps=4, generator=_gen(), guidance_scale=3.0)
    torch.testing.assert_close(sample(model, schedule, SHAPE, cond=cond, steps=4, generator=_gen(),
                                      guidance_scale=3.0, guidance_interval=(-1, 999)), every, rtol=0, atol=0)
    plain = sample(model, schedule, SHAPE, cond=cond, steps=4, generator=_gen(), guidance_scale=1.0)
    torch.testing.assert_close(sample(model, schedule, SHAPE, cond=cond, steps=4, generator=_gen(),
                                      guidance_scale=3.0, guidance_interval=(0, 1)), plain, rtol=0, atol=0)


@pytest.mark.parametrize("wrong", [(900, 300), (300, 300), (-2, 500), (0, 1000), (0.5, 900), (True, 900), (900,),
                                   "0,900", (0, float("nan"))])
def test_a_wrong_guidance_interval_is_refused_in_one_line(model, wrong):
    with pytest.raises(ValueError, match=r"guidance_interval is \(lo, hi\).*-1 <= lo < hi <= 999.*got"):
        sample(model, NoiseSchedule(), SHAPE, cond={"labels": torch.tensor([[3], [7]])}, steps=2,
               guidance_scale=3.0, guidance_interval=wrong)


def test_sampling_the_real_unet3d_with_labels_and_guidance(schedule):
    from vdiff_edu.unet import UNet3D, UNetConfig

    torch.manual_seed(0)
    unet = UNet3D(UNetConfig.smoke(in_channels=1, out_channels=1, num_label_slots=2))
    cond = {"labels": torch.tensor([[1, 2], [3, 4]])}
    x, traj = sample(unet, schedule, SHAPE, cond=cond, sampler="dpmpp", steps=3, guidance_scale=2.5,
                     generator=_gen(), return_trajectory=True)
    assert x.shape == SHAPE and traj["x_t"].shape == (4, *SHAPE) and torch.isfinite(x).all()


# ---------------------------------------------------------------- notebook 07 exercises ----


def test_notebook_07_checks_accept_solutions_and_reject_wrong_answers(capsys):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "notebooks"))
    from exercises import checks_07 as checks
    from exercises import solutions_07 as sol

    assert checks.check_ddim_eps_step(sol.ddim_eps_step)
    assert checks.check_guidance(sol.guidance)
    assert checks.check_posterior_variance(sol.posterior_variance)

    def returns_x0(x_t, eps, a_t, a_prev):
        return (x_t - (1 - a_t).sqrt() * eps) / a_t.sqrt()

    assert not checks.check_ddim_eps_step(returns_x0)
    assert "you returned x̂₀" in capsys.readouterr().out
    assert not checks.check_guidance(lambda c, u, s: c + s * (u - c))
    assert "swapped" in capsys.readouterr().out
    assert not checks.check_posterior_variance(lambda a_t, a_prev: 1 - a_t / a_prev)
    assert "not β̃_t" in capsys.readouterr().out

    def not_yet(*args):
        raise NotImplementedError

    for check in (checks.check_ddim_eps_step, checks.check_guidance, checks.check_posterior_variance):
        assert not check(not_yet) and not check(None)
    assert "not attempted yet" in capsys.readouterr().out


# ---------------------------------------------------------------- editing: SDEdit and DDIM inversion ----


def test_ddim_inversion_round_trips_through_the_exact_denoiser(schedule):
    from vdiff_edu.sampling import ddim_invert

    for prediction in ("eps", "v"):
        oracle = GaussianOracle(schedule, MU, STD, prediction)
        x0 = MU + STD * torch.randn(TOY_SHAPE, generator=_gen(3))
        x_T = ddim_invert(oracle, schedule, x0, steps=100, prediction=prediction)
        assert abs(x_T.std().item() - 1) < 0.05 and abs(x_T.mean().item()) < 0.1  # it lands near N(0, I)
        back = sample(oracle, schedule, None, sampler="ddim", steps=100, prediction=prediction, x_T=x_T)
        fresh = sample(oracle, schedule, None, sampler="ddim", steps=100, prediction=prediction,
                       x_T=torch.randn(TOY_SHAPE, generator=_gen(4)))
        assert (back - x0).abs().mean() < 0.02 and (back - x0).abs().max() < 0.1, prediction  # back onto the input
        assert (fresh - x0).abs().mean() > 10 * (back - x0).abs().mean()


def test_sdedit_runs_the_last_steps_from_the_noised_input(schedule):
    from vdiff_edu.sampling import edit_start, sdedit, timestep_pairs

    pairs = timestep_pairs(schedule, 50)
    assert edit_start(schedule, 50, 1.0) == pairs[0][0] and edit_start(schedule, 50, 0.3) == pairs[35][0]
    assert edit_start(schedule, 50, 0.001) == pairs[-1][0]  # at least one step
    calls = []
    oracle = GaussianOracle(schedule, MU, STD, "v")
    oracle.register_forward_hook(lambda m, i, o: calls.append(int(i[1][0])))
    x0 = MU + STD * torch.randn(TOY_SHAPE, generator=_gen(5))
    out = sdedit(oracle, schedule, x0, 0.3, steps=50, sampler="ddim", generator=_gen(6))
    assert calls == [t for t, _ in pairs[35:]]  # 15 network calls, from t₀ down
    again = sdedit(oracle, schedule, x0, 0.3, steps=50, sampler="ddim", generator=_gen(6))
    torch.testing.assert_close(out, again)  # seeded
    # a light edit stays near its input; a full-strength one does not (the oracle knows only the distribution)
    light = sdedit(oracle, schedule, x0, 0.1, steps=50, sampler="ddim", generator=_gen(6))
    full = sdedit(oracle, schedule, x0, 1.0, steps=50, sampler="ddim", generator=_gen(6))
    assert (light - x0).abs().mean() < 0.5 * (full - x0).abs().mean()
    with pytest.raises(ValueError, match=r"strength .* in \(0, 1\]"):
        sdedit(oracle, schedule, x0, 1.5, steps=50)
    with pytest.raises(ValueError, match="pass x_T"):
        sample(oracle, schedule, TOY_SHAPE, steps=10, strength=0.5)
