"""What every exercise check shares: it prints its message and returns a verdict that a notebook does not echo."""

from __future__ import annotations

import importlib
import inspect
import sys
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


@pytest.fixture
def exercises(monkeypatch):
    monkeypatch.syspath_prepend(str(NOTEBOOKS))
    yield
    for name in [m for m in sys.modules if m == "exercises" or m.startswith("exercises.")]:
        sys.modules.pop(name)


def _not_yet(*args):
    raise NotImplementedError


@pytest.mark.parametrize("nn", sorted(p.stem.removeprefix("checks_") for p in (NOTEBOOKS / "exercises").glob("checks_*.py")))
def test_every_check_returns_a_verdict_that_jupyter_does_not_echo(exercises, nn, capsys):
    from IPython.core.formatters import DisplayFormatter

    module = importlib.import_module(f"exercises.checks_{nn}")
    checks = [f for name, f in inspect.getmembers(module, inspect.isfunction) if name.startswith("check_")]
    assert checks, f"checks_{nn} has no check_* functions"
    for check in checks:
        result = check(_not_yet)
        assert not result and type(result).__name__ == "Verdict", check.__name__
        assert DisplayFormatter().format(result) == ({}, {})  # a cell ending with a check shows no True / False
    assert "not attempted yet" in capsys.readouterr().out  # the message is printed instead


def test_checks_11_accept_solutions_and_reject_mistakes(exercises, capsys):
    import torch

    from exercises import checks_11 as checks
    from exercises import solutions_11 as solutions

    assert checks.check_ends_mask(solutions.ends_mask)
    assert not checks.check_ends_mask(lambda f, a, b: torch.arange(f) < a)  # forgot the last frames
    assert not checks.check_ends_mask(lambda f, a, b: (torch.arange(f) < a) | (torch.arange(f) >= f - b))  # no refusal
    assert checks.check_first_lost_frame(solutions.first_lost_frame)
    assert not checks.check_first_lost_frame(  # forgets patience: every slip counts
        lambda p, y, patience=2: solutions.first_lost_frame(p, y, 1))
    assert not checks.check_first_lost_frame(  # 0 instead of -1 when the digit is never lost
        lambda p, y, patience=2: solutions.first_lost_frame(p, y, patience).clamp(min=0))
    assert checks.check_window_guess("longer", {1: 0.6, 4: 0.9})
    assert not checks.check_window_guess("shorter", {1: 0.6, 4: 0.9})
    assert checks.check_window_guess("same", {1: 0.80, 2: 0.9, 4: 0.83})
    assert not checks.check_window_guess("maybe", {1: 0.6, 4: 0.9})
    out = capsys.readouterr().out
    assert "matches" in out and "the measurement says" in out and "expected one of" in out


def test_checks_12_accept_solutions_and_reject_mistakes(exercises, capsys):
    from exercises import checks_12 as checks
    from exercises import solutions_12 as solutions
    from vdiff_edu.structure import pool

    assert checks.check_mean_pool(solutions.mean_pool)
    assert not checks.check_mean_pool(pool)  # the max (the default): any ink
    assert not checks.check_mean_pool(lambda s, level: solutions.mean_pool(s, max(level, 1)))  # level 0 not zeros
    assert checks.check_leak_guess(solutions.leak_guess, {0: 0.0, 1: 0.1, 5: 0.8})
    assert not checks.check_leak_guess("falls", {0: 0.0, 1: 0.1, 5: 0.8})
    assert checks.check_leak_guess("same", {1: 0.10, 5: 0.12})
    assert not checks.check_leak_guess("more", {1: 0.1, 5: 0.8})
    assert checks.check_temporal_mix(solutions.temporal_mix)
    assert not checks.check_temporal_mix(lambda v, i, w: v + w * (v - i))  # starts from the video prediction
    assert not checks.check_temporal_mix(lambda v, i, w: i + w * (i - v))  # the difference the wrong way round
    out = capsys.readouterr().out
    assert "took the max" in out and "the measurement says" in out and "start from the image" in out


def test_checks_10_accept_solutions_and_reject_mistakes(exercises, capsys):
    from exercises import checks_10 as checks
    from exercises import solutions_10 as solutions

    assert checks.check_is_held_out(solutions.is_held_out)
    assert not checks.check_is_held_out(lambda m, pairs: m.digit in {d for d, _ in pairs})  # the digit alone
    assert not checks.check_is_held_out(lambda m, pairs: (m.digit, m.motion) in pairs)  # forgets style pairs
    assert checks.check_template(solutions.my_template)
    assert not checks.check_template("the [{style} ]digit {num}[ {moves}][, {heading}]")  # an existing template
    assert not checks.check_template("a [{style} ]digit {num} that zooms[ {moves}]")  # 'zooms' is unknown
    assert not checks.check_template("{num} and {word}[ {moves}]")  # names the digit twice: reads as two digits
    assert not checks.check_template("a {colour} digit {num}")  # no such slot
    assert not checks.check_template("a video[ {moves}]")  # never names the digit
    assert checks.check_explanation(solutions.my_explanation)
    assert not checks.check_explanation("it failed")  # too short
    assert not checks.check_explanation("the clip looks wrong to me and I do not know why it is like this at all ok")
    out = capsys.readouterr().out
    assert "unknown slot" in out and "does not know 'zooms'" in out and "never names the digit" in out
    assert "describes 2 digits" in out and "not attempted yet" not in out


def test_checks_01a_accept_solutions_and_reject_mistakes(exercises, capsys):
    from functools import partial

    import torch

    from exercises import checks_01a as checks
    from exercises import solutions_01a as solutions
    from vdiff_edu.schedule import NoiseSchedule

    alpha_bar = NoiseSchedule("cosine", num_steps=100).alpha_bar.float()
    predict_x0 = partial(solutions.predict_x0, alpha_bar=alpha_bar)
    assert checks.check_predict_x0(predict_x0, alpha_bar)
    assert not checks.check_predict_x0(  # forgot the square roots
        lambda x, t, e: (x - (1 - alpha_bar[t]) * e) / alpha_bar[t], alpha_bar)
    assert not checks.check_predict_x0(  # took the noise out but kept the signal's scale
        lambda x, t, e: x - (1 - alpha_bar[t]).sqrt() * e, alpha_bar)
    assert not checks.check_predict_x0(lambda x, t, e: x, alpha_bar)  # x_t itself: right only near t = 0

    def ideal_eps(x_t, t, data):  # section 6's exact denoiser, as the notebook writes it
        a = alpha_bar[t]
        w = torch.softmax(-torch.cdist(x_t, a.sqrt() * data).pow(2) / (2 * (1 - a)), dim=1)
        return (x_t - a.sqrt() * (w @ data)) / (1 - a).sqrt()

    gaussian_eps = partial(solutions.gaussian_eps, alpha_bar=alpha_bar)
    assert checks.check_gaussian_eps(gaussian_eps, alpha_bar, ideal_eps)
    out = capsys.readouterr().out
    agreement = float(out.split("agrees with your formula to ")[1].split(" %")[0])
    assert agreement < 5.0  # the exact denoiser of 20,000 N(0, I) points is the formula, up to sampling noise
    assert not checks.check_gaussian_eps(lambda x, t: (1 - alpha_bar[t]) * x, alpha_bar)  # a variance, not a std
    assert not checks.check_gaussian_eps(lambda x, t: x / (1 - alpha_bar[t]).sqrt(), alpha_bar)  # grows
    assert not checks.check_gaussian_eps(lambda x, t: torch.zeros_like(x), alpha_bar)
    assert not checks.check_gaussian_eps(lambda x, t: x, alpha_bar)  # right only at t = T

    assert checks.check_no_noise_guess(solutions.no_noise_guess, 0.4)
    assert not checks.check_no_noise_guess("larger", 0.4)
    assert checks.check_no_noise_guess("same", 1.05)
    assert checks.check_no_noise_guess("larger", 1.6)
    assert not checks.check_no_noise_guess("bigger", 0.4)
    assert not checks.check_no_noise_guess(None, 0.4)
    out = capsys.readouterr().out
    assert "matches" in out and "the measurement says" in out and "expected one of" in out and "not attempted" in out
