"""Noise schedules: ᾱ's shape and closed forms, the forward process's statistics, and the ε / x₀ / v round trips."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch

from vdiff_edu.schedule import KINDS, NoiseSchedule, shift_snr

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "notebooks"))

ALL = [(kind, z) for kind in KINDS for z in (False, True)]


# ----------------------------------------------------------------------------------------------------------------
# The tables


@pytest.mark.parametrize("kind,zero", ALL)
def test_tables_are_float64_and_consistent(kind, zero):
    s = NoiseSchedule(kind, num_steps=200, zero_terminal_snr=zero)
    for name in ("betas", "alphas", "alpha_bar"):
        table = getattr(s, name)
        assert table.dtype == torch.float64 and table.shape == (200,), name
    torch.testing.assert_close(s.alphas, 1 - s.betas)
    torch.testing.assert_close(s.alpha_bar, torch.cumprod(s.alphas, 0))
    assert s.num_steps == 200 and s.kind == kind


@pytest.mark.parametrize("kind", KINDS)
def test_alpha_bar_strictly_decreasing_in_unit_interval(kind):
    ab = NoiseSchedule(kind, num_steps=1000).alpha_bar
    assert (ab > 0).all() and (ab <= 1).all()
    assert (ab[1:] < ab[:-1]).all()
    assert ab[0] > 0.999 and ab[-1] < 1e-3  # nearly clean at the start, nearly pure noise at the end


def test_cosine_matches_closed_form():
    # iDDPM eq. 17: ᾱ_t = f(t)/f(0), f(t) = cos²(((t/T + s)/(1 + s))·π/2); code index i is the paper's t = i + 1.
    T, s = 1000, 0.008
    sched = NoiseSchedule("cosine", num_steps=T)
    f = lambda t: math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2  # noqa: E731
    expected = torch.tensor([f(i + 1) / f(0) for i in range(T)], dtype=torch.float64)
    unclipped = sched.betas < 0.999  # only the very last β hits the 0.999 clip
    assert unclipped[:-1].all() and not unclipped[-1]
    torch.testing.assert_close(sched.alpha_bar[:-1], expected[:-1], rtol=1e-9, atol=1e-12)
    # hand-computed values: ᾱ at the paper's t = 1 and t = 500
    assert sched.alpha_bar[0].item() == pytest.approx(0.99995872, abs=1e-8)  # β_1 ≈ 4.1e-5
    assert sched.alpha_bar[499].item() == pytest.approx(f(500) / f(0), rel=1e-9)
    assert 0.45 < sched.alpha_bar[499].item() < 0.51  # half way: about half the signal power is left


def test_linear_endpoints_and_scaling():
    s = NoiseSchedule("linear", num_steps=1000)
    assert s.betas[0].item() == pytest.approx(1e-4) and s.betas[-1].item() == pytest.approx(0.02)
    torch.testing.assert_close(s.betas[1:] - s.betas[:-1], torch.full((999,), (0.02 - 1e-4) / 999, dtype=torch.float64))
    s250 = NoiseSchedule("linear", num_steps=250)  # endpoints scaled by 1000/T = 4
    assert s250.betas[0].item() == pytest.approx(4e-4) and s250.betas[-1].item() == pytest.approx(0.08)


def test_sigmoid_is_a_different_curve_with_clipped_end():
    sig, cos = NoiseSchedule("sigmoid", 1000), NoiseSchedule("cosine", 1000)
    assert sig.betas.max().item() == pytest.approx(0.999)
    assert (sig.alpha_bar - cos.alpha_bar).abs().max() > 0.01


@pytest.mark.parametrize("kind", KINDS)
def test_zero_terminal_snr(kind):
    plain = NoiseSchedule(kind, num_steps=1000)
    zero = NoiseSchedule(kind, num_steps=1000, zero_terminal_snr=True)
    assert zero.alpha_bar[-1].item() == 0.0 and plain.alpha_bar[-1].item() > 0
    assert zero.alpha_bar[0].item() == pytest.approx(plain.alpha_bar[0].item(), rel=1e-12)  # ᾱ_0 kept
    assert (zero.alpha_bar[1:] < zero.alpha_bar[:-1]).all()
    assert zero.snr(torch.tensor([999])).item() == 0.0 and zero.log_snr(999).item() == -math.inf
    assert zero.betas[-1].item() == pytest.approx(1.0)


def test_shift_snr_by_hand():
    """β = (0.5, 0.5): ᾱ = (0.5, 0.25). Shift 2 divides each SNR (1, 1/3) by 4: ᾱ' = ᾱ / (ᾱ + 4(1 − ᾱ)) =
    (0.2, 1/13), so β' = (0.8, 1 − (1/13)/0.2 = 8/13)."""
    betas = torch.tensor([0.5, 0.5], dtype=torch.float64)
    torch.testing.assert_close(shift_snr(betas, 2.0), torch.tensor([0.8, 8 / 13], dtype=torch.float64))
    assert shift_snr(betas, 1.0) is betas


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shift", [0.5, 2.0, 3.0])
def test_shifted_schedule_divides_every_snr(kind, shift):
    plain, shifted = NoiseSchedule(kind, 1000), NoiseSchedule(kind, 1000, shift=shift)
    t = torch.arange(1000)
    torch.testing.assert_close(shifted.snr(t), plain.snr(t) / shift**2, rtol=1e-9, atol=0)
    torch.testing.assert_close(shifted.log_snr(t) - plain.log_snr(t), torch.full((1000,), -2 * math.log(shift),
                                                                             dtype=torch.float64))
    assert shifted.shift == shift and f"shift={shift:g}" in repr(shifted)


def test_shift_one_is_the_schedule_and_works_with_zero_terminal_snr():
    assert torch.equal(NoiseSchedule("cosine", 1000, shift=1.0).betas, NoiseSchedule("cosine", 1000).betas)
    zero = NoiseSchedule("cosine", 1000, zero_terminal_snr=True, shift=3.0)
    assert zero.alpha_bar[-1].item() == 0.0 and (zero.alpha_bar.diff() < 0).all()
    plain = NoiseSchedule("cosine", 1000, zero_terminal_snr=True)
    assert (zero.snr(torch.arange(1, 999)) < plain.snr(torch.arange(1, 999))).all()  # more noise everywhere


@pytest.mark.parametrize("shift", [0, -2.0, True, "3", float("nan")])
def test_bad_shift_is_refused(shift):
    with pytest.raises(ValueError, match="shift must be a number > 0"):
        NoiseSchedule("cosine", 1000, shift=shift)


def test_snr_and_log_snr():
    s = NoiseSchedule("linear", num_steps=1000)
    t = torch.tensor([0, 10, 500, 999])
    ab = s.alpha_bar[t]
    torch.testing.assert_close(s.snr(t), ab / (1 - ab))
    torch.testing.assert_close(s.log_snr(t), torch.log(ab / (1 - ab)))
    assert s.snr(t).shape == (4,) and s.log_snr(0).shape == ()
    assert (s.log_snr(torch.arange(1000)).diff() < 0).all()


# ----------------------------------------------------------------------------------------------------------------
# The forward process


def test_q_sample_formula_on_5d_video():
    s = NoiseSchedule("cosine", num_steps=100)
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(3, 1, 4, 8, 8, generator=g) * 2 - 1  # (b, c, f, h, w)
    eps = torch.randn(x0.shape, generator=g)
    t = torch.tensor([0, 50, 99])
    x_t = s.q_sample(x0, t, eps)
    assert x_t.shape == x0.shape and x_t.dtype == x0.dtype
    for i in range(3):  # each sample uses its own step
        ab = s.alpha_bar[t[i]].float()
        torch.testing.assert_close(x_t[i], ab.sqrt() * x0[i] + (1 - ab).sqrt() * eps[i])


def test_q_sample_mean_and_variance_over_many_draws():
    # DDPM eq. 4: q(x_t | x_0) = N(√ᾱ_t·x_0, (1−ᾱ_t)·I). With 20 000 draws the standard error of the mean is
    # ≤ 0.007 and of the variance ≤ 0.01, far below the gap a wrong formula makes (e.g. ᾱ for √ᾱ: ≥ 0.1 here).
    s = NoiseSchedule("linear", num_steps=1000)
    g = torch.Generator().manual_seed(1)
    n = 20_000
    x0 = torch.tensor([0.8, -0.5, 0.3], dtype=torch.float64).expand(n, 3)  # (n, 3): the same x₀ every draw
    for step in (100, 300, 600):
        t = torch.full((n,), step)
        x_t = s.q_sample(x0, t, generator=g)
        ab = s.alpha_bar[step]
        torch.testing.assert_close(x_t.mean(0), ab.sqrt() * x0[0], atol=0.03, rtol=0)
        torch.testing.assert_close(x_t.var(0), (1 - ab).expand(3), atol=0.04, rtol=0)


def test_q_sample_draws_noise_reproducibly():
    s = NoiseSchedule()
    x0 = torch.zeros(2, 1, 3, 4, 4)
    a = s.q_sample(x0, torch.tensor([5, 900]), generator=torch.Generator().manual_seed(3))
    b = s.q_sample(x0, torch.tensor([5, 900]), generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b)
    assert a[1].std() > 5 * a[0].std()  # step 900 is much noisier than step 5


@pytest.mark.parametrize("kind,zero", ALL)
def test_eps_x0_v_round_trips(kind, zero):
    s = NoiseSchedule(kind, num_steps=1000, zero_terminal_snr=zero)
    g = torch.Generator().manual_seed(2)
    x0 = torch.randn(6, 2, 3, 4, 5, generator=g, dtype=torch.float64)  # (b, c, f, h, w)
    eps = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    t = torch.tensor([0, 1, 250, 500, 900, 998])  # ε ↔ x₀ is ill-posed at a zero-SNR last step; v is tested there below
    x_t = s.q_sample(x0, t, eps)
    v = s.v_target(x0, eps, t)
    tight = dict(rtol=1e-9, atol=1e-7)
    torch.testing.assert_close(s.eps_to_x0(x_t, t, eps), x0, **tight)
    torch.testing.assert_close(s.x0_to_eps(x_t, t, x0), eps, **tight)
    torch.testing.assert_close(s.v_to_x0(x_t, t, v), x0, **tight)
    torch.testing.assert_close(s.v_to_eps(x_t, t, v), eps, **tight)
    # v is a rotation of (ε, x₀): ‖v‖² + ‖x_t‖² = ‖ε‖² + ‖x₀‖²
    torch.testing.assert_close(v.pow(2) + x_t.pow(2), eps.pow(2) + x0.pow(2), **tight)


def test_v_is_finite_at_zero_terminal_snr():
    s = NoiseSchedule("cosine", num_steps=100, zero_terminal_snr=True)
    x0 = torch.randn(2, 1, 2, 3, 3, dtype=torch.float64)
    eps = torch.randn_like(x0)
    t = torch.tensor([99, 99])
    x_t = s.q_sample(x0, t, eps)
    torch.testing.assert_close(x_t, eps)  # the last step is pure noise
    torch.testing.assert_close(s.v_to_x0(x_t, t, s.v_target(x0, eps, t)), x0)  # v still recovers x₀


def test_extract_broadcasts_over_any_number_of_axes():
    s = NoiseSchedule("cosine", num_steps=10)
    t = torch.tensor([0, 9])
    for shape in [(2,), (2, 3), (2, 1, 4, 4), (2, 1, 3, 4, 4), (2, 1, 1, 1, 1, 1)]:
        x = torch.zeros(shape, dtype=torch.float32)
        out = s._extract(s.alpha_bar, t, x)
        assert out.shape == (2,) + (1,) * (len(shape) - 1) and out.dtype == torch.float32 and out.device == x.device
        assert out.flatten().tolist() == pytest.approx(s.alpha_bar[[0, 9]].tolist(), rel=1e-6)


def test_single_step_broadcasts_over_batch():
    s = NoiseSchedule()
    x0, eps = torch.randn(3, 1, 2, 4, 4), torch.randn(3, 1, 2, 4, 4)
    torch.testing.assert_close(s.q_sample(x0, 7, eps), s.q_sample(x0, torch.full((3,), 7), eps))
    torch.testing.assert_close(s.q_sample(x0, torch.tensor(7), eps), s.q_sample(x0, torch.full((3,), 7), eps))


# ----------------------------------------------------------------------------------------------------------------
# Timesteps, device, repr


def test_timesteps_trailing_spacing():
    s = NoiseSchedule(num_steps=1000)
    assert s.timesteps(4).tolist() == [999, 749, 499, 249]
    assert s.timesteps(1).tolist() == [999]
    assert s.timesteps(1000).tolist() == list(range(999, -1, -1))
    for n in (3, 7, 50, 333, 999):
        ts = s.timesteps(n)
        assert ts.dtype == torch.long and len(ts) == n and ts[0] == 999 and ts.min() >= 0
        assert (ts.diff() < 0).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_data_with_cpu_or_cuda_tables():
    s = NoiseSchedule("cosine", num_steps=100)
    x0 = torch.randn(2, 1, 3, 4, 4, device="cuda")
    t = torch.tensor([3, 90], device="cuda")
    on_cpu_tables = s.q_sample(x0, t, torch.zeros_like(x0))
    assert on_cpu_tables.device.type == "cuda"
    assert s.to("cuda") is s and s.alpha_bar.device.type == "cuda" and s.alpha_bar.dtype == torch.float64
    torch.testing.assert_close(s.q_sample(x0, t, torch.zeros_like(x0)), on_cpu_tables)
    assert s.timesteps(5).device.type == "cuda" and s.snr(t).device.type == "cuda"


def test_to_returns_self_and_repr():
    s = NoiseSchedule("sigmoid", num_steps=50)
    assert s.to("cpu") is s and s.alpha_bar.device.type == "cpu"
    text = repr(s)
    assert "sigmoid" in text and "50" in text


# ----------------------------------------------------------------------------------------------------------------
# Errors that teach


def test_unknown_kind_names_the_valid_kinds():
    with pytest.raises(ValueError, match=r"linear.*cosine.*sigmoid.*'quadratic'"):
        NoiseSchedule("quadratic")


@pytest.mark.parametrize("steps", [0, 1, -5, 2.5])
def test_bad_num_steps(steps):
    with pytest.raises(ValueError, match="num_steps"):
        NoiseSchedule(num_steps=steps)


def test_t_out_of_range_names_the_range():
    s = NoiseSchedule(num_steps=100)
    x = torch.zeros(2, 1, 2, 4, 4)
    with pytest.raises(ValueError, match=r"\[0, 100\).*100"):
        s.q_sample(x, torch.tensor([3, 100]), x)
    with pytest.raises(ValueError, match=r"\[0, 100\)"):
        s.snr(torch.tensor([-1]))


def test_t_wrong_shape_or_dtype():
    s = NoiseSchedule(num_steps=100)
    x = torch.zeros(2, 1, 2, 4, 4)
    with pytest.raises(ValueError, match=r"shape \(b,\) = \(2,\)"):
        s.q_sample(x, torch.tensor([1, 2, 3]), x)
    with pytest.raises(ValueError, match=r"shape \(b,\)"):
        s.eps_to_x0(x, torch.tensor([[1, 2]]), x)
    with pytest.raises(TypeError, match="long"):
        s.q_sample(x, torch.tensor([1.0, 2.0]), x)


def test_mismatched_noise_shape():
    s = NoiseSchedule(num_steps=100)
    with pytest.raises(ValueError, match="same shape"):
        s.q_sample(torch.zeros(2, 1, 2, 4, 4), torch.tensor([1, 2]), torch.zeros(2, 1, 4, 4))


def test_timesteps_bad_n():
    s = NoiseSchedule(num_steps=100)
    for n in (0, 101):
        with pytest.raises(ValueError, match=r"\[1, 100\]"):
            s.timesteps(n)


# ----------------------------------------------------------------------------------------------------------------
# Notebook 02's exercise checks: they accept the solutions, reject wrong answers, and never raise


def _wrong_q_sample_4d(x0, t, eps, alpha_bar):  # the classic bug: reshape for images, not video
    a = alpha_bar[t].view(-1, 1, 1, 1)
    return a.sqrt() * x0 + (1 - a).sqrt() * eps


def _wrong_q_sample_no_sqrt(x0, t, eps, alpha_bar):
    a = alpha_bar[t].view(-1, 1, 1, 1, 1)
    return a * x0 + (1 - a) * eps


def _not_yet(*args):
    raise NotImplementedError


def test_exercise_checks(capsys):
    from exercises import checks_02 as checks
    from exercises import solutions_02 as sol

    pairs = [
        (checks.check_q_sample, sol.my_video_q_sample, [_wrong_q_sample_4d, _wrong_q_sample_no_sqrt]),
        (checks.check_half_signal_step, sol.half_signal_step,
         [lambda s: sol.half_signal_step(s) + 1, lambda s: int((s.alpha_bar.sqrt() < 0.5).nonzero()[0])]),
        (checks.check_v_to_x0, sol.my_v_to_x0,
         [lambda x_t, t, v, ab: sol.my_v_to_x0(x_t, t, -v, ab), lambda x_t, t, v, ab: x_t]),
        (checks.check_zero_terminal_snr, sol.my_zero_terminal_snr,
         [lambda b: b, lambda b: torch.cat([b[:-1], torch.ones(1, dtype=b.dtype)]) * 0.5]),
    ]
    for check, solution, wrongs in pairs:
        assert check(solution), check.__name__
        assert "✅" in capsys.readouterr().out
        for wrong in wrongs:
            assert not check(wrong), (check.__name__, wrong)
            assert "Hint" in capsys.readouterr().out
        for untried in (None, _not_yet):
            assert not check(untried)
            assert "not attempted" in capsys.readouterr().out
        assert not check(lambda *a: 1 / 0)  # a crash in the learner's code is reported, not raised
        assert "ZeroDivisionError" in capsys.readouterr().out
