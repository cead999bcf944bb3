"""The time budget: every stage sized to fit the machine at hand, keeping the recipe's proportions, re-sized at
each stage boundary from the time really left, remembered by the run so a resume continues the same plan."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest

from vdiff_edu import recipe
from vdiff_edu.presets import ExperimentConfig
from vdiff_edu.recipe import (budget_note, plan_steps, recipe_steps, train_pipeline, with_batches_divided,
                              with_steps)

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


def _tiny_budgeted() -> ExperimentConfig:
    """The smoke preset cut to a few steps a stage, with a 10-second budget."""
    cfg = ExperimentConfig.smoke()
    return replace(cfg, num_clips=16, time_budget_minutes=10 / 60,
                   autoencoder=replace(cfg.autoencoder, train_steps=3, batch_size=8),
                   image_train=replace(cfg.image_train, steps=4, batch_size=8, progress="none"),
                   train=replace(cfg.train, steps=6, batch_size=2, warmup=1, checkpoint_every=0, progress="none"))


def test_a_budgeted_run_sizes_its_stages_and_a_resume_keeps_the_plan(tmp_path, monkeypatch):
    cfg = _tiny_budgeted()
    fake = {"autoencoder": 0.5, "frames": 0.5, "clips": 0.5, "encode_clip": 0.0, "sample_clip": 0.0}
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
    assert result["recipe_steps"] == recipe_steps(cfg)  # what the budget scaled, for budget_note
    # the stages not yet begun were re-sized from the time really left (the fake 0.5 s/step was far too slow, so
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
    assert budget_note(out) is None  # fewer steps than the recipe, but asked for: nothing to warn about


def test_a_short_budget_says_what_share_it_got_and_how_long_the_recipe_would_take():
    # the cpu preset's `make demo` on a 2-core machine 2.5× slower than the one its recipe was measured on
    recipe_cfg = ExperimentConfig.cpu()
    trained = {"autoencoder": 71, "frames": 129, "clips": 211}
    seconds = {"data": 3.8, "autoencoder": 35.0, "encode": 60.0, "denoiser_images": 97.0, "denoiser": 192.0,
               "total": 390.0}
    result = {"recipe_steps": recipe_steps(recipe_cfg), "config": with_steps(recipe_cfg, trained),
              "seconds": seconds}
    note = budget_note(result)
    # by hand: 390 + 35·(400/71 − 1) + 97·(800/129 − 1) + 192·(1400/211 − 1) = 390 + 162.2 + 504.6 + 1081.9 s
    assert "211 of the recipe's 1,400 clip steps" in note and "×0.15" in note
    assert "about 36 min here" in note and "train --preset cpu --minutes 0" in note
    assert "--minutes 40" in note
    # a budget that bought most of the recipe says nothing; nor does a run without a budget or one that stopped
    assert budget_note({**result, "config": with_steps(recipe_cfg, {**trained, "clips": 1050})}) is None
    assert budget_note({**result, "recipe_steps": None}) is None
    assert budget_note({**result, "seconds": {k: v for k, v in seconds.items() if k != "total"}}) is None


def test_a_plan_trains_exactly_its_step_counts_and_is_remembered(tmp_path, monkeypatch):
    monkeypatch.setattr(recipe, "calibrate", lambda *a, **k: pytest.fail("a planned run must not calibrate"))
    cfg = _tiny_budgeted()  # a 10-second budget that the plan turns off
    plan = {"autoencoder": 2, "frames": 3, "clips": 5}
    out = train_pipeline(cfg, tmp_path, plan=plan, log=lambda s: None)
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["overrides"]["plan"] == plan and record["stages"]["autoencoder"]["steps"] == 2
    assert out["history"]["step"][-1] == 5 and out["config"].image_train.steps == 3
    again = train_pipeline(None, tmp_path, resume="latest", log=lambda s: None)  # a resume keeps it
    assert again["history"]["step"][-1] == 5
    # what a plan must give: a whole number >= 1 for each of the recipe's stages, and nothing else
    for wrong, message in (({"autoencoder": 2, "clips": 5}, "autoencoder, frames, clips; got autoencoder, clips"),
                           ({**plan, "frames": 0}, "frames=0"), ({**plan, "clips": 2.5}, "clips=2.5")):
        with pytest.raises(ValueError, match=message):
            train_pipeline(cfg, tmp_path / "wrong", plan=wrong, log=lambda s: None)
    with pytest.raises(ValueError, match="give one of them"):
        train_pipeline(cfg, tmp_path / "wrong", plan=plan, steps=4, log=lambda s: None)
    assert not (tmp_path / "wrong").exists()  # refused before any folder is made


def _budget(monkeypatch, seconds: float, rates: dict) -> "recipe._Budget":
    monkeypatch.setattr(recipe, "calibrate", lambda *a, **k: dict(rates))
    monkeypatch.setattr(recipe, "MARGIN_SECONDS", 0.0)
    messages: list[str] = []
    budget = recipe._Budget(ExperimentConfig.smoke(), seconds, [None], "cpu", None, 1, 0.0, messages.append)
    return budget, messages


def test_a_running_stage_is_resized_to_fit_the_time_left_at_its_slower_rate(monkeypatch):
    rates = {"autoencoder": 0.01, "frames": 0.01, "clips": 0.01, "encode_clip": 0.0, "sample_clip": 0.0}
    budget, messages = _budget(monkeypatch, 100.0, rates)
    budget.plan["clips"] = 1000
    budget.end = recipe.time.perf_counter() + 50.0  # 50 s left (less the 4 % margin: 46 s)
    # 100 of its steps took 20 s: 0.2 s a step where 0.01 was planned, so 46 / 0.2 = 230 more steps fit
    plan = budget.resize_running("clips", took=20.0, done=100)
    assert 100 + 225 <= plan["clips"] <= 100 + 230 and budget.rates["clips"] == pytest.approx(0.2)
    assert "runs at" in messages[-1] and "not 1,000" in messages[-1]
    # a stage that runs faster than planned is lengthened to fill the time: 46 / 0.1 = 460 more steps, not 200
    fast, messages = _budget(monkeypatch, 100.0, rates)
    fast.plan["clips"], fast.end = 300, recipe.time.perf_counter() + 50.0
    assert 100 + 455 <= fast.resize_running("clips", took=10.0, done=100)["clips"] <= 100 + 460
    assert "not 300" in messages[-1]
    # a plan that moves by less than 2 % is not worth a line of output
    steady, messages = _budget(monkeypatch, 100.0, rates)
    steady.plan["clips"], steady.end = 560, recipe.time.perf_counter() + 50.0
    count = len(messages)
    assert 555 <= steady.resize_running("clips", took=10.0, done=100)["clips"] <= 560 and len(messages) == count
    # ... unless its recent steps ran slower than its average: 8 s for the last 20, 0.4 s a step, 115 more
    slowing, _ = _budget(monkeypatch, 100.0, rates)
    slowing.plan["clips"], slowing.end = 300, recipe.time.perf_counter() + 50.0
    assert 100 + 110 <= slowing.resize_running("clips", took=10.0, done=100, recent=(8.0, 20))["clips"] <= 100 + 115
    # with no time left it still takes one more step (a stage always ends on a step it was planned to take)
    late, _ = _budget(monkeypatch, 100.0, rates)
    late.plan["clips"], late.end = 300, recipe.time.perf_counter() - 1.0
    assert late.resize_running("clips", took=20.0, done=100)["clips"] == 101


def test_calibration_takes_the_fastest_of_its_timed_calls(monkeypatch):
    clock = iter([0.0, 5.0, 10.0, 11.0, 20.0, 23.0])  # three timed calls: 5 s, 1 s, 3 s
    monkeypatch.setattr(recipe.time, "perf_counter", lambda: next(clock))
    calls = []
    assert recipe._seconds_per_call(lambda: calls.append(1), warmup=2, repeats=3) == 1.0
    assert len(calls) == 5  # two untimed warm-up calls, then three timed ones


def test_a_budgeted_clip_stage_is_resized_as_it_runs_and_a_resume_keeps_the_last_size(tmp_path, monkeypatch):
    cfg = _tiny_budgeted()
    monkeypatch.setattr(recipe, "calibrate", lambda *a, **k: {"autoencoder": 0.01, "frames": 0.01, "clips": 0.01,
                                                              "encode_clip": 0.0, "sample_clip": 0.0})
    monkeypatch.setattr(recipe, "plan_steps", lambda steps, rates, left: {k: {"clips": 200}.get(k, 2) for k in steps})
    seen, sizes = [], iter([200, 150, 150, 120])  # what each re-sizing decides: keep, cut, keep, cut

    def resize(self, stage, took, done, recent=None):
        seen.append((done, recent[1]))
        self.plan = {**self.plan, stage: next(sizes)}
        return self.plan

    monkeypatch.setattr(recipe._Budget, "resize_running", resize)
    result = train_pipeline(cfg, tmp_path, log=lambda s: None)
    # re-sized after 10 %, 30 %, 50 % and 70 % of the steps planned at that moment (85 % of 120 is behind it);
    # each time with the steps since the last re-sizing as the recent ones
    assert seen == [(20, 20), (60, 40), (75, 15), (105, 30)]
    assert result["history"]["step"][-1] == 120 == result["config"].train.steps
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["overrides"]["plan"]["clips"] == 120 and record["stages"]["clips"]["steps"] == 120
    again = train_pipeline(None, tmp_path, resume="latest", log=lambda s: None)  # done: nothing more to train
    assert again["history"]["step"][-1] == 120


@pytest.mark.parametrize("name", ["smoke", "smoke-text", "smoke-frames", "smoke-v2v"])
def test_calibration_measures_every_preset_s_conditions(name):
    """A time budget starts by timing a few steps with an example of every condition the model reads: the
    structure maps and reference images of a video-to-video model too (once, `train --preset cpu-v2v` with its
    default budget stopped here: the example had no silhouettes)."""
    import torch

    from vdiff_edu.conditioning import conditioning_for
    from vdiff_edu.recipe import training_dataset
    from vdiff_edu.train import fetch_batch

    cfg = replace(ExperimentConfig.preset(name), num_clips=16)
    clips = fetch_batch(training_dataset(cfg), torch.arange(16))["video"]  # (16, 1, f, h, w)
    rates = recipe.calibrate(cfg, clips, torch.device("cpu"), conditioning_for(cfg))
    assert {"autoencoder", "frames", "clips", "encode_clip", "sample_clip"} <= set(rates)
    assert all(v > 0 for v in rates.values())


def test_batches_divided_by_hand():
    cfg = with_batches_divided(ExperimentConfig.cpu(), 4)  # 64 / 256 / 32 in the recipe
    assert (cfg.autoencoder.batch_size, cfg.image_train.batch_size, cfg.train.batch_size) == (16, 64, 8)
    assert recipe_steps(cfg) == recipe_steps(ExperimentConfig.cpu())  # the steps are left to the plan


def test_a_short_budget_divides_the_batches_by_the_largest_divisor_that_keeps_within_the_recipe_s_steps():
    cpu = ExperimentConfig.cpu()  # batches 64 / 256 / 32
    # quarter batches where at most 0.3 of the recipe's steps fit, the recipe's batches above
    for scale, k in ((0.05, 4), (0.18, 4), (0.29, 4), (0.3, 4), (0.31, 1), (0.47, 1), (0.75, 1), (1.5, 1)):
        assert recipe.batch_divisor_for(scale, cpu) == k, scale
    # under torchrun the clip batch must still split evenly: 32 / 4 = 8 clips over 16 processes does not
    assert recipe.batch_divisor_for(0.18, cpu, world_size=8) == 4
    assert recipe.batch_divisor_for(0.18, cpu, world_size=16) == 2
    tiny = _tiny_budgeted()  # batches 8 / 8 / 2: a quarter of 2 clips is no batch
    assert recipe.batch_divisor_for(0.1, tiny) == 2
    with pytest.raises(ValueError, match=r"do not divide by 4 \(clips 2\); give a smaller divisor"):
        recipe.check_batch_divisor(4, tiny)
    for wrong in (3, 0, True, 2.0 + 0.5):
        with pytest.raises(ValueError, match="can be divided by 1, 2, 4; got"):
            recipe.check_batch_divisor(wrong, cpu)


def _calibrate_by_batch(calls: list, seconds_at_recipe: float, cost_of_half: float):
    """A fake ``calibrate``: ``seconds_at_recipe`` a step at the tiny recipe's clip batch (2), ``cost_of_half`` of
    that at half the batch."""
    def fake(cfg, *a, **k):
        calls.append(cfg.train.batch_size)
        s = seconds_at_recipe * (1.0 if cfg.train.batch_size == 2 else cost_of_half)
        return {"autoencoder": s, "frames": s, "clips": s, "encode_clip": 0.0, "sample_clip": 0.0}
    return fake


def test_a_short_budget_trains_smaller_batches_and_a_resume_keeps_them(tmp_path, monkeypatch):
    cfg = _tiny_budgeted()  # 3 + 4 + 6 steps at batches 8 / 8 / 2, a 10-second budget
    calls: list[int] = []
    # 4 s a step: the recipe would take 52 s, ×0.18 of it fits; half batches (a quarter of 2 clips is no batch) at
    # 0.6 of the cost
    monkeypatch.setattr(recipe, "calibrate", _calibrate_by_batch(calls, 4.0, 0.6))
    monkeypatch.setattr(recipe, "MARGIN_SECONDS", 0.0)
    messages: list[str] = []
    result = train_pipeline(cfg, tmp_path, log=messages.append)
    assert result["interrupted"] is None
    assert calls == [2, 1]  # measured at the recipe's batches, then at the half batches it chose
    first = next(m for m in messages if "scaled ×" in m)
    assert re.search(r"would take 0\.9 min \(×0\.1\d of them fit: too few to learn well\)", first)
    assert "every batch divided by 2 (4 / 4 / 1)" in first
    trained = result["config"]
    assert (trained.autoencoder.batch_size, trained.image_train.batch_size, trained.train.batch_size) == (4, 4, 1)
    assert result["recipe_batches"] == {"autoencoder": 8, "frames": 8, "clips": 2}
    assert result["step_cost"] == {k: pytest.approx(1 / 0.6) for k in ("autoencoder", "frames", "clips")}
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["overrides"]["batch_divisor"] == 2
    assert record["recipe"]["train"]["batch_size"] == 2  # the recipe is kept as written; the run's choice beside it
    again = train_pipeline(None, tmp_path, resume="latest", log=messages.append)  # no measuring, the same batches
    assert calls == [2, 1] and again["config"].train.batch_size == 1
    with pytest.raises(ValueError, match="a resumed run keeps the batches it started with"):
        train_pipeline(None, tmp_path, resume="latest", batch_divisor=1, log=messages.append)
    # asked for the recipe's batches, the same short budget keeps them (and measures once)
    calls.clear()
    kept = train_pipeline(cfg, tmp_path / "kept", batch_divisor=1, log=lambda s: None)
    assert calls == [2] and kept["config"].train.batch_size == 2
    assert "batch_divisor" in json.loads((tmp_path / "kept" / "run.json").read_text())["overrides"]


def test_a_plan_with_divided_batches_repeats_a_budgeted_run(tmp_path, monkeypatch):
    monkeypatch.setattr(recipe, "calibrate", lambda *a, **k: pytest.fail("a planned run must not calibrate"))
    cfg = _tiny_budgeted()
    out = train_pipeline(cfg, tmp_path, plan={"autoencoder": 2, "frames": 3, "clips": 5}, batch_divisor=2,
                         log=lambda s: None)
    assert out["history"]["step"][-1] == 5
    assert (out["config"].autoencoder.batch_size, out["config"].image_train.batch_size,
            out["config"].train.batch_size) == (4, 4, 1)
    again = train_pipeline(None, tmp_path, resume="latest", log=lambda s: None)
    assert again["config"].train.batch_size == 1
    with pytest.raises(ValueError, match="do not divide by 4"):
        train_pipeline(cfg, tmp_path / "wrong", plan={"autoencoder": 2, "frames": 3, "clips": 5}, batch_divisor=4,
                       log=lambda s: None)
    assert not (tmp_path / "wrong").exists()


def test_a_short_budget_in_smaller_batches_says_what_share_of_the_clips_it_saw():
    # the slow machine's demo budget in quarter batches (docs/benchmarks.md, "A slow machine's budget")
    recipe_cfg = ExperimentConfig.cpu()
    trained_cfg = with_steps(with_batches_divided(recipe_cfg, 4), {"autoencoder": 291, "frames": 442, "clips": 764})
    seconds = {"data": 3.8, "autoencoder": 40.0, "encode": 60.0, "denoiser_images": 130.0, "denoiser": 220.0,
               "total": 400.0}
    # a recipe step costs 4 × the per-sample speed ratio measured there (0.77, 0.83, 0.75) of a quarter step
    cost = {"autoencoder": 3.1, "frames": 3.3, "clips": 3.0}
    result = {"recipe_steps": recipe_steps(recipe_cfg), "recipe_batches": recipe.recipe_batches(recipe_cfg),
              "step_cost": cost, "config": trained_cfg, "seconds": seconds}
    note = budget_note(result)
    # by hand: 764·8 / (1400·32) = 0.136 of the clips; 400 + 40·(400/291·3.1 − 1) + 130·(800/442·3.3 − 1)
    # + 220·(1400/764·3.0 − 1) = 400 + 130.4 + 646.5 + 989.4 = 2166 s, 36 min; (2166·1.04 + 10) / 600 → 40
    assert "764 clip steps × 8 clips into the budget, where the recipe takes 1,400 × 32 (×0.14 of its clips" in note
    assert "about 36 min here" in note and "--minutes 40" in note
    # the same clips seen in smaller batches, three quarters of the recipe's or more: nothing to say
    enough = with_steps(with_batches_divided(recipe_cfg, 4), {"autoencoder": 291, "frames": 442, "clips": 4200})
    assert budget_note({**result, "config": enough}) is None
