"""``python -m vdiff_edu``: info, train, sample and demo on smoke-sized models in a temporary runs folder, the
sample file convention, and the errors that teach."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from vdiff_edu import __main__ as cli
from vdiff_edu.presets import ExperimentConfig


@pytest.fixture
def runs(tmp_path, monkeypatch):
    monkeypatch.setenv("VDIFF_RUNS_DIR", str(tmp_path))
    monkeypatch.setenv("VDIFF_SMOKE", "1")
    return tmp_path


@pytest.fixture
def quick_smoke(monkeypatch):
    """Make the smoke preset even smaller, so a whole `train` finishes in seconds."""
    smoke = ExperimentConfig.smoke

    def quicker():
        cfg = smoke()
        return replace(cfg, num_clips=16, autoencoder=replace(cfg.autoencoder, train_steps=3, batch_size=8),
                       train=replace(cfg.train, steps=3, batch_size=2, warmup=1, checkpoint_every=0))

    monkeypatch.setattr(ExperimentConfig, "smoke", staticmethod(quicker))


@pytest.fixture
def trained_run(runs, quick_smoke):
    assert cli.main(["train", "--preset", "smoke", "--name", "tiny"]) == 0
    return runs / "tiny"


def test_help_runs_as_a_module():
    out = subprocess.run([sys.executable, "-m", "vdiff_edu", "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0
    for command in ("info", "train", "sample", "evaluate", "demo"):
        assert command in out.stdout


def test_info_lists_presets_and_weights(runs, capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert "torch" in out and "device" in out
    for preset in ("smoke", "cpu", "gpu"):
        assert f"preset '{preset}'" in out
    assert "shipped weights" in out


def test_train_writes_the_run_folder(runs, quick_smoke, capsys):
    assert cli.main(["train", "--preset", "smoke", "--name", "tiny"]) == 0
    trained_run = runs / "tiny"
    for path in ("weights/autoencoder.safetensors", "weights/unet.safetensors", "loss.png", "run.json",
                 "samples/samples.gif", "samples/samples.npy", "samples/labels.npy"):
        assert (trained_run / path).is_file(), path
    assert any((trained_run / "checkpoints").glob("step_*.pt"))
    out = capsys.readouterr().out
    assert str(trained_run / "loss.png") in out  # it says where everything is


def test_sample_writes_uint8_clips_and_labels(trained_run, runs, capsys):
    out_dir = runs / "my_samples"
    assert cli.main(["sample", "--weights", str(trained_run), "--labels", "3,7", "--n", "3", "--steps", "2",
                     "--out", str(out_dir)]) == 0
    cfg = ExperimentConfig.smoke()
    frames = np.load(out_dir / "samples.npy")
    assert frames.dtype == np.uint8 and frames.shape == (3, cfg.num_frames, cfg.image_size, cfg.image_size)
    labels = np.load(out_dir / "labels.npy")
    assert labels.dtype == np.int64 and labels[:, 0].tolist() == [3, 7, 3]  # the labels repeat to fill --n
    assert (out_dir / "samples.gif").is_file()
    assert "s per clip" in capsys.readouterr().out


def test_train_resume_and_stage(trained_run, capsys):
    assert cli.main(["train", "--preset", "smoke", "--name", "tiny", "--stage", "denoiser", "--resume", "latest",
                     "--steps", "4"]) == 0
    assert "resumed from" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["train", "--preset", "huge"], "invalid choice: 'huge'"),
    (["train", "--preset", "smoke", "--name", "x", "--resume", "nowhere.pt"], "no such checkpoint"),
    (["sample", "--weights", "gpu"], "no shipped weights for preset 'gpu'"),
    (["sample", "--weights", "runs_that_do_not_exist"], "neither a preset"),
    (["train", "--preset", "cpu", "--plan", "323,626"], "--plan takes 3 whole numbers >= 1, the step counts of the "
                                                        "cpu recipe's autoencoder, frames, clips stages (e.g. --plan "
                                                        "400,800,1400); got '323,626'"),
    (["train", "--preset", "cpu", "--plan", "323,0,1179"], "--plan takes 3 whole numbers"),
    (["train", "--preset", "cpu", "--plan", "323,626,1179", "--minutes", "5"], "cannot go with --minutes"),
    (["train", "--name", "x", "--resume", "latest", "--plan", "1,2,3"], "cannot go with --resume"),
    (["train", "--preset", "cpu", "--batch-divisor", "3"], "invalid choice: 3 (choose from 1, 2, 4)"),
    (["train", "--name", "x", "--resume", "latest", "--batch-divisor", "2"], "a resumed run keeps its own"),
])
def test_errors_teach(runs, capsys, argv, message):
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err


def test_bad_labels_teach(trained_run, capsys):
    assert cli.main(["sample", "--weights", str(trained_run), "--labels", "3,x"]) == 2
    assert "--labels must be" in capsys.readouterr().err


def test_train_with_a_plan_trains_those_steps(runs, quick_smoke, capsys):
    assert cli.main(["train", "--preset", "smoke", "--name", "planned", "--plan", "2,3,4"]) == 0
    out = capsys.readouterr().out
    assert "--plan: exactly autoencoder 2, frames 3, clips 4 steps" in out and "trained to step 4" in out
    # a budgeted run's batches too (its run.json's overrides.batch_divisor)
    assert cli.main(["train", "--preset", "smoke", "--name", "halved", "--plan", "2,3,4", "--batch-divisor", "2"]) == 0
    out = capsys.readouterr().out
    assert "--batch-divisor 2: batches of autoencoder 4, frames 8, clips 1" in out and "4 steps × 1 clips" in out


def test_parse_labels():
    assert cli.parse_labels("3,7, 1") == [3, 7, 1]
    assert cli.parse_labels("37,12", num_slots=2) == [(3, 7), (1, 2)]
    assert cli.parse_labels(None) is None
    for bad in ("", "12", "a"):
        with pytest.raises(cli.UsageError):
            cli.parse_labels(bad)


def test_a_short_budget_tells_the_learner_what_it_bought(runs, quick_smoke, monkeypatch, capsys):
    from vdiff_edu import recipe

    # a machine so slow (100 s a step, every stage) that a 1-minute budget buys one step of each stage
    slow = {"autoencoder": 100.0, "frames": 100.0, "clips": 100.0, "encode_clip": 0.0, "sample_clip": 0.0}
    monkeypatch.setattr(recipe, "calibrate", lambda *a, **k: dict(slow))
    assert cli.main(["train", "--preset", "smoke", "--name", "slow", "--minutes", "1"]) == 0
    out = capsys.readouterr().out
    assert "every batch divided by 2" in out  # far too short for the recipe: smaller batches, more steps
    assert "this machine fit 1 clip steps × 1 clips into the budget, where the recipe takes 3 × 2 (×0.17" in out
    assert "train --preset smoke --minutes 0" in out
    # asked to keep the recipe's batches, it says what share of the steps it got
    assert cli.main(["train", "--preset", "smoke", "--name", "slow_kept", "--minutes", "1", "--batch-divisor", "1"]) == 0
    assert "this machine fit 1 of the recipe's 3 clip steps into the budget (×0.33)" in capsys.readouterr().out
    # the recipe's own steps: nothing to say
    assert cli.main(["train", "--preset", "smoke", "--name", "whole", "--minutes", "0"]) == 0
    assert "this machine fit" not in capsys.readouterr().out


def test_demo_without_training(runs, capsys):
    assert cli.main(["demo", "--skip-train"]) == 0
    out = capsys.readouterr().out
    assert (runs / "demo" / "moving_mnist.gif").is_file()
    assert (runs / "demo" / "forward_process.png").is_file()
    assert "training skipped" in out


def test_demo_trains_the_smoke_preset(runs, quick_smoke, capsys):
    assert cli.main(["demo"]) == 0
    run = runs / "demo" / "train_smoke"
    assert (run / "samples" / "samples.gif").is_file() and (run / "loss.png").is_file()
    assert "demo done" in capsys.readouterr().out

