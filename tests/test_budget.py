"""The time budget: every stage sized to fit the machine at hand, keeping the recipe's proportions, re-sized at
each stage boundary from the time really left, remembered by the run so a resume continues the same plan."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from vdiff_edu import recipe
from vdiff_edu.presets import ExperimentConfig
from vdiff_edu.recipe import plan_steps, recipe_steps, train_pipeline

pytestmark = pytest.mark.usefixtures("one_thread")


def test_plan_keeps_the_proportions_and_fits_the_time():
    steps = {"autoencoder": 400, "frames": 800, "clips": 1400}
    rates = {"autoencoder": 0.1, "frames": 0.2, "clips": 0.25}  # seconds per step
    need = sum(steps[k] * rates[k] for k in steps)  # 40 + 160 + 350 = 550 s
    assert need == pytest.approx(550.0)
    for left in (100.0, 550.0, 1200.0):
        plan = plan_steps(steps, rates, left)
        spent = sum(plan[k] * rates[k] for k in plan)
        assert abs(spent - left) <= sum(rates.values())  # fills the time, to rounding
        for k in steps:
            assert abs(plan[k] - steps[k] * left / need) <= 0.5  # one factor for every stage
    assert plan_steps(steps, rates, need) == steps  # exactly the recipe when it fits exactly
    assert plan_steps(steps, rates, 1e-3) == {"autoencoder": 1, "frames": 1, "clips": 1}  # never zero steps
    with pytest.raises(ValueError, match="already spent.*--minutes"):
        plan_steps(steps, rates, -5.0)


def test_a_budgeted_run_sizes_its_stages_and_a_resume_keeps_the_plan(tmp_path, monkeypatch):
    cfg = ExperimentConfig.smoke()
    cfg = replace(cfg, num_clips=16, time_budget_minutes=10 / 60,
                  autoencoder=replace(cfg.autoencoder, train_steps=3, batch_size=8),
                  image_train=replace(cfg.image_train, steps=4, batch_size=8, progress="none"),
                  train=replace(cfg.train, steps=6, batch_size=2, warmup=1, checkpoint_every=0, progress="none"))
    fake = {"autoencoder": 0.2, "frames": 0.2, "clips": 0.2, "encode_clip": 0.0, "sample_clip": 0.0}
    calls = []
    monkeypatch.setattr(recipe, "calibrate", lambda *a, **k: calls.append(1) or dict(fake))
    monkeypatch.setattr(recipe, "MARGIN_SECONDS", 0.0)
    messages = []
    result = train_pipeline(cfg, tmp_path, log=messages.append)
    assert result["interrupted"] is None and len(calls) == 1
    plan = json.loads((tmp_path / "run.json").read_text())["overrides"]["plan"]
    assert set(plan) == set(recipe_steps(cfg)) and all(n >= 1 for n in plan.values())
    first = next(m for m in messages if "scaled ×" in m)
    assert "the recipe's 3 + 4 + 6 steps" in first  # it says what it measured and what it chose
    assert any("clip steps fit in the remaining" in m for m in messages)
    assert result["history"]["step"][-1] == plan["clips"] == result["config"].train.steps
    # the stages not yet begun were re-sized from the time really left (the fake 0.2 s/step was far too slow, so
    # time was left over); a stage that ran fast never makes the estimates faster, only the time left counts
    assert plan["frames"] >= round(4 * plan["autoencoder"] / 3) and plan["clips"] > round(6 * plan["autoencoder"] / 3)
    # a resume continues the remembered plan, without measuring again
    again = train_pipeline(None, tmp_path, resume="latest", log=messages.append)
    assert len(calls) == 1 and again["history"]["step"][-1] == plan["clips"]


def test_minutes_zero_and_fixed_steps_train_the_recipe_as_written(tmp_path, monkeypatch):
    monkeypatch.setattr(recipe, "calibrate", lambda *a, **k: pytest.fail("a fixed run must not calibrate"))
    cfg = ExperimentConfig.smoke()
    cfg = replace(cfg, num_clips=16, time_budget_minutes=5.0,
                  autoencoder=replace(cfg.autoencoder, train_steps=2, batch_size=8),
                  image_train=replace(cfg.image_train, steps=2, batch_size=8, progress="none"),
                  train=replace(cfg.train, steps=3, batch_size=2, warmup=1, checkpoint_every=0, progress="none"))
    out = train_pipeline(cfg, tmp_path / "a", minutes=0, log=lambda s: None)
    assert out["history"]["step"][-1] == 3
    out = train_pipeline(cfg, tmp_path / "b", steps=2, log=lambda s: None)
    assert out["history"]["step"][-1] == 2
