"""Run folders never lose work; a hint always works; every mistake at the command line is one line.

The scenarios an instructor meets in the first lab: a second run under the same name, a resume without --preset,
Ctrl-C in each stage, a save killed half-way, a run that diverges, weights from two different runs, and a
table of more than forty plain mistakes, each of which must exit 2 with one ``error:`` line that names the
offending flag, variable or file.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from vdiff_edu import __main__ as cli
from vdiff_edu import recipe
from vdiff_edu.checkpoint import load_checkpoint, load_weights
from vdiff_edu.pipeline import LatentVideoPipeline
from vdiff_edu.presets import ExperimentConfig
from vdiff_edu.recipe import train_pipeline
from vdiff_edu.runs import RunFolder, checkpoint_steps
from vdiff_edu.train import TrainConfig, Trainer, latest_checkpoint
from vdiff_edu.unet import UNet3D, UNetConfig
from vdiff_edu.schedule import NoiseSchedule

pytestmark = pytest.mark.usefixtures("one_thread")  # exact comparisons: one thread, one order of float sums


SMOKE = ExperimentConfig.smoke  # before the fixtures patch it


def quick() -> ExperimentConfig:
    """The smoke recipe, smaller still: a whole run (both denoiser stages) in a few seconds."""
    cfg = SMOKE()
    return replace(cfg, num_clips=16, autoencoder=replace(cfg.autoencoder, train_steps=3, batch_size=8),
                   image_train=replace(cfg.image_train, steps=4, batch_size=8, checkpoint_every=2, progress="none"),
                   train=replace(cfg.train, steps=6, batch_size=2, warmup=1, checkpoint_every=2, progress="none"))


def quiet(_):
    pass


def unet_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_weights(run_dir / "weights" / "unet.safetensors")[0]


@pytest.fixture
def runs(tmp_path, monkeypatch):
    monkeypatch.setenv("VDIFF_RUNS_DIR", str(tmp_path))
    monkeypatch.setenv("VDIFF_SMOKE", "1")
    for name in ("VDIFF_PRESET", "VDIFF_DEVICE", "VDIFF_MNIST_DIR", "VDIFF_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(ExperimentConfig, "smoke", staticmethod(quick))  # `--preset smoke` is the quick recipe
    return tmp_path


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    """One uninterrupted run, to compare interrupted-and-resumed runs with."""
    run_dir = tmp_path_factory.mktemp("reference") / "ref"
    train_pipeline(quick(), run_dir, log=quiet)
    return run_dir


# ---------------------------------------------------------------- 1. nothing is ever lost ----


def test_a_fresh_run_refuses_a_taken_name_and_overwrite_moves_the_old_run_aside(runs, capsys):
    assert cli.main(["train", "--preset", "smoke", "--name", "tiny"]) == 0
    before = (runs / "tiny" / "weights" / "unet.safetensors").read_bytes()
    capsys.readouterr()
    assert cli.main(["train", "--preset", "smoke", "--name", "tiny"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already holds a run" in err[0] and "--resume latest" in err[0] and "--overwrite" in err[0]
    assert (runs / "tiny" / "weights" / "unet.safetensors").read_bytes() == before  # untouched
    assert cli.main(["train", "--preset", "smoke", "--name", "tiny", "--overwrite"]) == 0
    moved = [p for p in runs.iterdir() if p.name.startswith("tiny.old-")]
    assert len(moved) == 1 and (moved[0] / "weights" / "unet.safetensors").read_bytes() == before
    assert "moved the earlier run" in capsys.readouterr().out
    assert RunFolder(runs / "tiny").run_id != RunFolder(moved[0]).run_id


def test_resume_without_a_preset_uses_the_runs_own_recipe(runs, monkeypatch, capsys):
    assert cli.main(["train", "--preset", "smoke", "--name", "r", "--steps", "2"]) == 0
    monkeypatch.setenv("VDIFF_SMOKE", "0")  # the default preset is now cpu: a resume must not take it
    capsys.readouterr()
    assert cli.main(["train", "--name", "r", "--resume", "latest", "--steps", "4"]) == 0
    out = capsys.readouterr().out
    assert "continuing the run" in out and "resumed from" in out
    pipe = LatentVideoPipeline.from_pretrained(runs / "r")
    assert pipe.config.image_size == quick().image_size and pipe.metadata["train_steps"] == 4
    assert cli.main(["train", "--name", "r", "--resume", "latest", "--preset", "cpu"]) == 2
    assert "leave out --preset" in capsys.readouterr().err


def test_retraining_the_autoencoder_of_a_trained_run_is_refused(runs, capsys):
    assert cli.main(["train", "--preset", "smoke", "--name", "t"]) == 0
    capsys.readouterr()
    assert cli.main(["train", "--name", "t", "--stage", "autoencoder", "--resume", "latest"]) == 2
    assert "already has a trained autoencoder" in capsys.readouterr().err
    record = json.loads((runs / "t" / "run.json").read_text())
    assert record["digits"].startswith("synthetic") and record["stages"]["clips"]["done"]


@pytest.mark.parametrize("stage", ["autoencoder", "frames", "clips"])
def test_ctrl_c_in_any_stage_stops_the_run_and_resume_continues_exactly(stage, tmp_path, monkeypatch, reference_run):
    run_dir = tmp_path / "run"
    if stage == "autoencoder":
        real = recipe.train_autoencoder

        def interrupted(*args, **kwargs):
            raise KeyboardInterrupt

        monkeypatch.setattr(recipe, "train_autoencoder", interrupted)
        callback = None
    else:
        def callback(trainer, step, history):
            in_frames = trainer.run_dir.name == "image_stage"
            if step == (2 if stage == "frames" else 3) and in_frames == (stage == "frames"):
                raise KeyboardInterrupt  # what the Trainer's Ctrl-C handler raises after a step

    result = train_pipeline(quick(), run_dir, log=quiet, callback=callback)
    assert result["interrupted"] == stage and "pipeline" not in result
    assert not (run_dir / "weights" / "unet.safetensors").exists()  # nothing after the stopped stage ran
    assert not RunFolder(run_dir).done(stage)
    if stage == "autoencoder":
        monkeypatch.setattr(recipe, "train_autoencoder", real)
    again = train_pipeline(None, run_dir, resume="latest", log=quiet)
    assert again["interrupted"] is None
    ref, got = unet_weights(reference_run), unet_weights(run_dir)
    assert all(torch.equal(ref[k], got[k]) for k in ref), "a resumed run must end where an uninterrupted one does"


def test_a_killed_save_never_costs_the_last_good_checkpoint(tmp_path, monkeypatch, capsys):
    train_pipeline(quick(), tmp_path, steps=4, log=quiet)
    last_good = latest_checkpoint(tmp_path)
    # 1. a save that dies half-way (here: the disk fills) leaves the last good checkpoint and no temporary file
    import vdiff_edu.checkpoint as checkpoint

    def dying_save(state, path):
        Path(path).write_bytes(b"half a checkpoint")
        raise OSError("No space left on device")

    monkeypatch.setattr(checkpoint.torch, "save", dying_save)
    with pytest.raises(OSError, match="No space"):
        train_pipeline(None, tmp_path, resume="latest", steps=6, log=quiet)
    monkeypatch.undo()
    assert latest_checkpoint(tmp_path) == last_good and load_checkpoint(last_good)["step"] == 4
    assert not list((tmp_path / "checkpoints").glob(".*.tmp"))
    # 2. a save killed outright (SIGKILL) leaves its temporary file: the next start removes it
    orphan = tmp_path / "checkpoints" / ".step_0000006.pt.k1ll3d.tmp"
    orphan.write_bytes(b"half")
    messages = []
    train_pipeline(None, tmp_path, resume="latest", steps=6, log=messages.append)
    assert not orphan.exists() and any("temporary file" in m for m in messages)
    assert load_checkpoint(latest_checkpoint(tmp_path))["step"] == 6


def test_checkpoints_of_another_run_are_never_pruned_or_taken_for_latest(tmp_path):
    train_pipeline(quick(), tmp_path, log=quiet)
    run_id = RunFolder(tmp_path).run_id
    foreign = load_checkpoint(latest_checkpoint(tmp_path))
    foreign.update(step=999, run_id="someone-else")
    torch.save(foreign, tmp_path / "checkpoints" / "step_0000999.pt")
    assert latest_checkpoint(tmp_path, run_id).name == "step_0000006.pt"
    train_pipeline(None, tmp_path, resume="latest", steps=8, log=quiet)  # saves and prunes (keep_last=2)
    assert (tmp_path / "checkpoints" / "step_0000999.pt").is_file()
    assert [s for s, _ in checkpoint_steps(tmp_path / "checkpoints", run_id)] == [6, 8]


def test_weights_from_two_runs_are_refused_together(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    train_pipeline(quick(), a, steps=2, log=quiet)
    train_pipeline(replace(quick(), seed=1), b, steps=2, log=quiet)
    (b / "weights" / "unet.safetensors").write_bytes((a / "weights" / "unet.safetensors").read_bytes())
    with pytest.raises(ValueError, match="different autoencoder"):
        LatentVideoPipeline.from_pretrained(b)
    LatentVideoPipeline.from_pretrained(a)  # a run's own pair loads


# ---------------------------------------------------------------- 2. a hint that works ----


def test_the_divergence_hint_followed_to_the_end(runs, capsys):
    assert cli.main(["train", "--preset", "smoke", "--name", "d", "--lr", "1e30"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "diverged" in err[0] and "--resume latest --lr" in err[0]
    assert cli.main(["train", "--name", "d", "--resume", "latest", "--lr", "1e-3"]) == 0
    state = load_checkpoint(latest_checkpoint(runs / "d"))
    assert TrainConfig.from_dict(state["config"]).lr == 1e-3
    assert all(torch.isfinite(v).all() for v in unet_weights(runs / "d").values())


def test_a_new_learning_rate_is_honoured_on_resume(tmp_path, capsys):
    torch.manual_seed(0)
    data = {"latents": torch.randn(8, 4, 2, 8, 8), "labels": torch.randint(0, 10, (8, 1))}

    def trainer(lr):
        torch.manual_seed(0)
        cfg = TrainConfig(steps=8, batch_size=2, lr=lr, warmup=2, progress="none", checkpoint_every=4)
        return Trainer(UNet3D(UNetConfig.smoke()), NoiseSchedule(), data, cfg, device="cpu", run_dir=tmp_path)

    trainer(1e-2).train(num_steps=4)
    resumed = trainer(1e-4)
    resumed.resume("latest")
    lam = resumed.lr_scheduler.lr_lambdas[0](4)
    assert math.isclose(resumed.optimizer.param_groups[0]["lr"], 1e-4 * lam, rel_tol=1e-12)
    assert "peak learning rate is now 0.0001" in capsys.readouterr().out
    resumed.train()
    assert math.isclose(resumed.history["lr"][-1], 1e-4 * resumed.lr_scheduler.lr_lambdas[0](7), rel_tol=1e-12)


def test_nan_weights_are_never_written_as_a_checkpoint(tmp_path):
    torch.manual_seed(0)
    data = {"latents": torch.randn(4, 4, 2, 8, 8), "labels": torch.randint(0, 10, (4, 1))}
    trainer = Trainer(UNet3D(UNetConfig.smoke()), NoiseSchedule(), data,
                      TrainConfig(steps=2, batch_size=2, progress="none", checkpoint_every=0), device="cpu",
                      run_dir=tmp_path)
    trainer.train()
    good = latest_checkpoint(tmp_path)
    with torch.no_grad():
        next(trainer.ema.model.parameters()).fill_(float("nan"))  # the EMA copy is checked too
    with pytest.raises(FloatingPointError, match="NaN or infinite"):
        trainer.save()
    assert latest_checkpoint(tmp_path) == good


# ---------------------------------------------------------------- 3. one clear line for every mistake ----


@pytest.fixture(scope="module")
def workshop(tmp_path_factory):
    """A trained run, and the broken things students bring: files that are not what they claim, folders without
    what they should hold, weights of two runs mixed. Made once for the whole table."""
    runs = tmp_path_factory.mktemp("workshop_runs")
    here = tmp_path_factory.mktemp("workshop")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VDIFF_RUNS_DIR", str(runs))
        mp.setenv("VDIFF_SMOKE", "1")
        mp.setattr(ExperimentConfig, "smoke", staticmethod(quick))
        assert cli.main(["train", "--preset", "smoke", "--name", "tiny"]) == 0
    (here / "notes.txt").write_text("not a checkpoint")
    (here / "empty").mkdir()
    broken = here / "broken_run" / "weights"
    broken.mkdir(parents=True)
    for f in ("autoencoder.safetensors", "unet.safetensors"):
        (broken / f).write_bytes((runs / "tiny" / "weights" / f).read_bytes())
    data = (broken / "unet.safetensors").read_bytes()
    (broken / "unet.safetensors").write_bytes(data[: len(data) // 2])  # a download that stopped half-way
    train_pipeline(replace(quick(), seed=3), here / "other", steps=2, log=quiet)
    mixed = here / "mixed" / "weights"
    mixed.mkdir(parents=True)
    (mixed / "unet.safetensors").write_bytes((runs / "tiny" / "weights" / "unet.safetensors").read_bytes())
    (mixed / "autoencoder.safetensors").write_bytes((here / "other" / "weights" / "autoencoder.safetensors").read_bytes())
    (here / "a_file").write_text("x")
    # a text model (issue 10): smoke-text, seconds-long, for the --prompt / --labels mistakes
    text = ExperimentConfig.preset("smoke-text")
    train_pipeline(replace(text, num_clips=16, autoencoder=replace(text.autoencoder, train_steps=2, batch_size=8),
                           image_train=None, train=replace(text.train, steps=2, batch_size=2, warmup=1,
                                                           checkpoint_every=0, progress="none")),
                   here / "text_run", log=quiet, minutes=0)
    (here / "blank_prompts.txt").write_text("\n  \n\n")
    (here / "three_prompts.txt").write_text("a 1\na 2\na 3\n")
    taken = here / "taken"
    taken.mkdir()
    (taken / "samples.npy").write_bytes(b"earlier work")
    # what `evaluate` is handed: files that are not uint8 clips (n, f, h, w), labels that do not fit them
    clips = np.zeros((3, 4, 16, 16), np.uint8)
    np.save(here / "objects.npy", np.array([{"clip": 1}, None], dtype=object), allow_pickle=True)
    np.save(here / "flat.npy", np.zeros((3, 16), np.uint8))
    np.save(here / "floats.npy", clips.astype(np.float32))
    np.save(here / "none.npy", clips[:0])
    np.savez(here / "arch.npz", clips=clips)
    (here / "not_npy.npy").write_text("these are not numbers")
    for name, labels in (("mismatch", np.zeros((2, 1), np.int64)), ("ok", np.zeros((3, 1), np.int64))):
        (here / name).mkdir()
        np.save(here / name / "samples.npy", clips)
        np.save(here / name / "labels.npy", labels)
    np.save(here / "nan_labels.npy", np.array([[1.0], [np.nan], [3.0]]))
    np.save(here / "big_labels.npy", np.array([[1], [12], [3]]))
    return {"runs": runs, "run": str(runs / "tiny"), "dir": here}


@pytest.fixture
def in_workshop(workshop, monkeypatch):
    monkeypatch.setenv("VDIFF_RUNS_DIR", str(workshop["runs"]))
    monkeypatch.setenv("VDIFF_SMOKE", "1")
    for name in ("VDIFF_PRESET", "VDIFF_DEVICE", "VDIFF_MNIST_DIR", "VDIFF_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(ExperimentConfig, "smoke", staticmethod(quick))
    return workshop


NO_CUDA = not torch.cuda.is_available()

BAD_INPUTS = [
    # (argv, extra environment, what the one error line must name)
    (["train", "--preset", "huge"], {}, "--preset"),
    (["train", "--name", "a/b"], {}, "--name"),
    (["train", "--name", ".."], {}, "--name"),
    (["train", "--steps", "0"], {}, "--steps"),
    (["train", "--steps", "-3"], {}, "--steps"),
    (["train", "--steps", "many"], {}, "--steps"),
    (["train", "--lr", "0"], {}, "--lr"),
    (["train", "--lr", "nan"], {}, "--lr"),
    (["train", "--lr", "-1"], {}, "--lr"),
    (["train", "--stage", "all"], {}, "--stage"),
    (["train", "--stesp", "3"], {}, "--stesp"),
    (["train", "--resume", "nowhere.pt"], {}, "--resume"),
    (["train", "--name", "tiny", "--preset", "smoke"], {}, "tiny"),
    (["train", "--name", "fresh", "--resume", "latest"], {}, "--resume"),
    (["train", "--name", "fresh", "--stage", "denoiser"], {}, "--stage denoiser"),
    (["train", "--name", "tiny", "--resume", "latest", "--preset", "cpu"], {}, "--preset"),
    (["train", "--name", "tiny", "--stage", "autoencoder", "--resume", "latest"], {}, "tiny"),
    (["train", "--name", "tiny", "--stage", "denoiser"], {}, "--resume latest"),
    (["train", "--name", "x", "--overwrite", "--resume", "latest"], {}, "--overwrite"),
    (["train", "--name", "tiny", "--resume", "{dir}/notes.txt"], {}, "notes.txt"),
    (["train", "--mnist-dir", "/nowhere/mnist"], {}, "--mnist-dir"),
    (["train", "--mnist-dir", "{dir}/empty"], {}, "--mnist-dir"),
    (["train"], {"VDIFF_MNIST_DIR": "{dir}/empty"}, "VDIFF_MNIST_DIR"),
    (["demo", "--skip-train"], {"VDIFF_MNIST_DIR": "{dir}/a_file"}, "VDIFF_MNIST_DIR"),
    (["info"], {"VDIFF_SMOKE": "2"}, "VDIFF_SMOKE"),
    (["train"], {"VDIFF_SMOKE": "yes"}, "VDIFF_SMOKE"),
    (["info"], {"VDIFF_PRESET": "huge"}, "VDIFF_PRESET"),
    (["train", "--device", "banana"], {}, "--device"),
    (["sample", "--weights", "{run}", "--device", "tpu"], {}, "--device"),
    (["sample", "--weights", "nowhere"], {}, "--weights"),
    (["sample", "--weights", "gpu"], {}, "--weights"),
    (["sample", "--weights", "{dir}/empty"], {}, "--weights"),
    (["sample", "--weights", "{dir}/broken_run"], {}, "unet.safetensors"),
    (["sample", "--weights", "{dir}/mixed"], {}, "--weights"),
    (["sample", "--weights", "{run}", "--n", "0"], {}, "--n"),
    (["sample", "--weights", "{run}", "--n", "-2"], {}, "--n"),
    (["sample", "--weights", "{run}", "--n", "x"], {}, "--n"),
    (["sample", "--weights", "{run}", "--labels", "3,x"], {}, "--labels"),
    (["sample", "--weights", "{run}", "--labels", "33"], {}, "--labels"),
    (["sample", "--weights", "{run}", "--labels", ","], {}, "--labels"),
    (["sample", "--weights", "{run}", "--labels", "3,7,1", "--n", "2"], {}, "--labels"),
    (["sample", "--weights", "{run}", "--steps", "0"], {}, "--steps"),
    (["sample", "--weights", "{run}", "--steps", "5000"], {}, "--steps"),
    (["sample", "--weights", "{run}", "--guidance", "nan"], {}, "--guidance"),
    (["sample", "--weights", "{run}", "--guidance", "inf"], {}, "--guidance"),
    (["sample", "--weights", "{run}", "--guidance", "-1"], {}, "--guidance"),
    (["sample", "--weights", "{run}", "--seed", "-1"], {}, "--seed"),
    (["sample", "--weights", "{run}", "--seed", str(2**64)], {}, "--seed"),
    (["sample", "--weights", "{run}", "--sampler", "euler"], {}, "--sampler"),
    (["sample", "--weights", "{run}", "--out", "{dir}/a_file"], {}, "--out"),
    (["sample", "--weights", "{run}", "--out", "{dir}/taken"], {}, "--out"),
    (["frobnicate"], {}, "frobnicate"),
    (["evaluate", "{dir}/nowhere.npy"], {}, "nowhere.npy"),
    (["evaluate", "{dir}/not_npy.npy"], {}, "not_npy.npy is not a .npy file"),
    (["evaluate", "{dir}/objects.npy"], {}, "objects.npy"),
    (["evaluate", "{dir}/flat.npy"], {}, "flat.npy"),
    (["evaluate", "{dir}/floats.npy"], {}, "floats.npy"),
    (["evaluate", "{dir}/none.npy"], {}, "none.npy"),
    (["evaluate", "{dir}/arch.npz"], {}, "arch.npz"),
    (["evaluate", "{dir}/mismatch"], {}, "labels.npy"),
    (["evaluate", "{dir}/ok/samples.npy", "--labels", "{dir}/nan_labels.npy"], {}, "nan_labels.npy"),
    (["evaluate", "{dir}/ok/samples.npy", "--labels", "{dir}/big_labels.npy"], {}, "big_labels.npy"),
    (["evaluate"], {}, "evaluate needs clips"),
    (["evaluate", "{dir}/ok", "--n-ref", "0"], {}, "--n-ref"),
    (["evaluate", "{dir}/ok", "--device", "banana"], {}, "--device"),
    (["evaluate", "{dir}/ok", "--mnist-dir", "/nowhere/mnist"], {}, "--mnist-dir"),
    # prompts (issue 10): a label model takes --labels, a text model --prompt / --prompts
    (["sample", "--weights", "{run}", "--prompt", "a bold 7"], {}, "--labels"),
    (["sample", "--weights", "{dir}/text_run", "--labels", "3"], {}, "--prompt"),
    (["sample", "--weights", "{dir}/text_run"], {}, "--prompt"),
    (["sample", "--weights", "{dir}/text_run", "--prompt", "a bolt 7"], {}, "'bolt' (closest: 'bold'"),
    (["sample", "--weights", "{dir}/text_run", "--prompts", "{dir}/nowhere.txt"], {}, "nowhere.txt"),
    (["sample", "--weights", "{dir}/text_run", "--prompts", "{dir}/blank_prompts.txt"], {}, "blank_prompts.txt"),
    (["sample", "--weights", "{dir}/text_run", "--prompts", "{dir}/three_prompts.txt", "--n", "2"], {}, "--prompts"),
    (["sample", "--weights", "{dir}/text_run", "--prompt", "a 3", "--prompts", "{dir}/three_prompts.txt"], {},
     "--prompts"),
    (["sample", "--weights", "{dir}/text_run", "--prompt", "3 and 7"], {}, "names 2 digits"),
]
if NO_CUDA:
    BAD_INPUTS += [(["train", "--device", "cuda"], {}, "--device"),
                   (["sample", "--weights", "{run}"], {"VDIFF_DEVICE": "cuda:0"}, "VDIFF_DEVICE")]


def test_the_table_has_enough_mistakes():
    assert len(BAD_INPUTS) >= 40


@pytest.mark.parametrize("argv, env, names", BAD_INPUTS, ids=[" ".join(a)[:60] for a, _, _ in BAD_INPUTS])
def test_every_mistake_is_one_line_naming_what_is_wrong(in_workshop, monkeypatch, capsys, argv, env, names):
    workshop = in_workshop
    fill = {"run": workshop["run"], "dir": str(workshop["dir"])}
    for key, value in env.items():
        monkeypatch.setenv(key, value.format(**fill))
    before = {p: p.stat().st_mtime_ns for p in Path(workshop["run"]).rglob("*") if p.is_file()}
    code = cli.main([a.format(**fill) for a in argv])
    out = capsys.readouterr()
    lines = [ln for ln in out.err.splitlines() if ln.strip()]
    assert code == 2, f"exit {code}; stderr: {out.err}"
    assert len(lines) == 1 and lines[0].startswith("error: "), out.err
    assert "Traceback" not in out.err + out.out
    assert names in lines[0], lines[0]
    after = {p: p.stat().st_mtime_ns for p in Path(workshop["run"]).rglob("*") if p.is_file()
             if p.name != "run.json"}
    assert all(after[p] == before[p] for p in after if p in before), "a refused command must not touch the run"
    assert (Path(workshop["dir"]) / "taken" / "samples.npy").read_bytes() == b"earlier work"


def test_no_traceback_in_a_real_process_and_debug_shows_it(tmp_path):
    env = {**os.environ, "VDIFF_RUNS_DIR": str(tmp_path), "VDIFF_SMOKE": "1"}
    out = subprocess.run([sys.executable, "-m", "vdiff_edu", "sample", "--weights", "nowhere"], capture_output=True,
                         text=True, env=env, timeout=300)
    assert out.returncode == 2 and out.stderr.strip().startswith("error: --weights nowhere")
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr
    out = subprocess.run([sys.executable, "-m", "vdiff_edu", "sample", "--weights", "nowhere"], capture_output=True,
                         text=True, env={**env, "VDIFF_DEBUG": "1"}, timeout=300)
    assert out.returncode == 2 and "Traceback" in out.stderr


def test_evaluate_warns_when_there_are_too_few_clips_for_a_frechet_distance(capsys):
    from vdiff_edu.eval.metrics import MIN_CLIPS_FOR_FD, evaluate_clips

    clips = np.zeros((4, 4, 16, 16), np.uint8)
    with pytest.raises(ValueError, match="at least 2"):
        evaluate_clips(clips[:1], verbose=False)
    result = evaluate_clips(clips, n_ref=8, verbose=False)  # it still scores them, and says how little that means
    assert "fvd_mm" in result["metrics"] and result["setup"]["n"] == 4
    err = capsys.readouterr().err
    assert "too few for a Fréchet distance" in err and str(MIN_CLIPS_FOR_FD) in err


def test_sampling_in_batches_keeps_the_first_clips(tmp_path):
    train_pipeline(quick(), tmp_path, steps=2, log=quiet)
    pipe = LatentVideoPipeline.from_pretrained(tmp_path)
    five = pipe(labels=[1, 2, 3, 4, 5], steps=2, seed=0, batch_size=2)
    assert five.shape[0] == 5
    assert torch.equal(five[:2], pipe(labels=[1, 2], steps=2, seed=0))
    assert torch.equal(pipe(labels=[1, 2, 3], steps=2, seed=0, batch_size=64), pipe(labels=[1, 2, 3], steps=2, seed=0))


def test_sample_never_overwrites_earlier_samples(runs, capsys):
    assert cli.main(["train", "--preset", "smoke", "--name", "s", "--steps", "2"]) == 0
    for _ in range(2):
        assert cli.main(["sample", "--weights", str(runs / "s"), "--n", "2", "--steps", "2"]) == 0
    assert (runs / "samples" / "s" / "samples.npy").is_file() and (runs / "samples" / "s-2" / "samples.npy").is_file()
    out = runs / "mine"
    assert cli.main(["sample", "--weights", str(runs / "s"), "--n", "2", "--steps", "2", "--out", str(out)]) == 0
    assert cli.main(["sample", "--weights", str(runs / "s"), "--n", "2", "--steps", "2", "--out", str(out)]) == 2
    assert cli.main(["sample", "--weights", str(runs / "s"), "--n", "2", "--steps", "2", "--out", str(out),
                     "--overwrite"]) == 0
