"""The objective, EMA, the LR schedule, the data sampler and the Trainer: exact resume, Ctrl-C, NaN stop, safe files."""

from __future__ import annotations

import copy
import math
import os
import pickle
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from vdiff_edu.checkpoint import CheckpointError, load_checkpoint
from vdiff_edu.schedule import NoiseSchedule
from vdiff_edu.unet import UNet3D, UNetConfig
from vdiff_edu.optim import warmup_cosine
from vdiff_edu.recipe import train_denoiser
from vdiff_edu.train import (EMA, IndexSampler, NonFiniteStep, TrainConfig, Trainer, diffusion_loss, draw_timesteps,
                             drop_labels, fetch_batch, latest_checkpoint, min_snr_weight, training_step)

ROOT = Path(__file__).resolve().parents[1]
SHAPE = (4, 1, 3, 8, 8)  # (b, c, f, h, w)


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: see conftest.one_thread


class TinyDenoiser(nn.Module):
    """A few-parameter stand-in for UNet3D with the same call: model(x, t, cond) -> same shape as x."""

    def __init__(self, channels: int = 1, num_classes: int = 10, num_label_slots: int = 2):
        super().__init__()
        self.cfg = SimpleNamespace(num_classes=num_classes, num_label_slots=num_label_slots)  # Conditioning.for_unet
        self.conv = nn.Conv3d(channels, 8, 3, padding=1)
        self.out = nn.Conv3d(8, channels, 3, padding=1)
        self.time = nn.Linear(1, 8)
        self.label = nn.Embedding(num_classes + 1, 8)  # the last row is the null token

    def forward(self, x, t, cond=None):
        h = self.conv(x) + self.time(t.float()[:, None] / 1000)[:, :, None, None, None]
        if cond is not None:
            h = h + self.label(cond["labels"]).sum(1)[:, :, None, None, None]
        return self.out(torch.relu(h))


def make_data(n: int = 24) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(123)
    return {"video": torch.rand((n, *SHAPE[1:]), generator=g) * 2 - 1,
            "labels": torch.randint(0, 10, (n, 2), generator=g)}


def make_trainer(run_dir=None, steps: int = 8, **overrides) -> Trainer:
    """The same trainer (the real UNet3D, smoke size, two digit labels per clip) in every process: the resume and
    DDP tests rebuild it in fresh Python processes; one thread everywhere, so float sums add up in one order."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = UNet3D(UNetConfig.smoke(in_channels=1, out_channels=1, num_label_slots=2))
    cfg = TrainConfig(steps=steps, batch_size=4, lr=3e-3, warmup=2, ema_decay=0.9, log_every=100, checkpoint_every=0,
                      keep_last=2, progress="none", cond_drop_prob=0.25, seed=7)
    for k, v in overrides.items():
        setattr(cfg, k, v)
    return Trainer(model, NoiseSchedule(), make_data(), cfg, device="cpu", run_dir=run_dir)


def assert_same_state(a: Trainer, b: Trainer) -> None:
    for name, x in a.module.state_dict().items():
        torch.testing.assert_close(b.module.state_dict()[name], x, rtol=0, atol=0, msg=f"model weight {name} differs")
    for name, x in a.ema.model.state_dict().items():
        torch.testing.assert_close(b.ema.model.state_dict()[name], x, rtol=0, atol=0, msg=f"EMA weight {name} differs")
    for sa, sb in zip(a.optimizer.state.values(), b.optimizer.state.values()):
        for k in sa:
            torch.testing.assert_close(sb[k], sa[k], rtol=0, atol=0)
    assert a.step == b.step


# ---------------------------------------------------------------- the objective ----


@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
def test_diffusion_loss_is_the_written_out_objective(prediction):
    schedule, model = NoiseSchedule(), TinyDenoiser()
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(SHAPE, generator=g), torch.randn(SHAPE, generator=g)
    t = torch.tensor([0, 250, 500, 999])
    ab = schedule.alpha_bar[t].float().reshape(-1, 1, 1, 1, 1)
    x_t = ab.sqrt() * x0 + (1 - ab).sqrt() * noise  # DDPM eq. 4
    target = {"eps": noise, "x0": x0, "v": ab.sqrt() * noise - (1 - ab).sqrt() * x0}[prediction]
    expected = (model(x_t, t) - target).pow(2).mean()
    got = diffusion_loss(model, schedule, x0, prediction=prediction, t=t, noise=noise)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_min_snr_weights_by_hand():
    snr = torch.tensor([0.0, 0.5, 5.0, 50.0])
    torch.testing.assert_close(min_snr_weight(snr, "x0", 5.0), torch.tensor([0.0, 0.5, 5.0, 5.0]))
    torch.testing.assert_close(min_snr_weight(snr, "eps", 5.0), torch.tensor([1.0, 1.0, 1.0, 0.1]))
    torch.testing.assert_close(min_snr_weight(snr, "v", 5.0), torch.tensor([0.0, 0.5 / 1.5, 5 / 6, 5 / 51]))


def test_min_snr_loss_weights_each_clip():
    schedule, model = NoiseSchedule(), TinyDenoiser()
    g = torch.Generator().manual_seed(0)
    x0, noise, t = torch.randn(SHAPE, generator=g), torch.randn(SHAPE, generator=g), torch.tensor([5, 100, 600, 990])
    per_clip = torch.stack([diffusion_loss(model, schedule, x0[i:i + 1], t=t[i:i + 1], noise=noise[i:i + 1])
                            for i in range(4)])
    w = min_snr_weight(schedule.snr(t), "v", 5.0)
    got = diffusion_loss(model, schedule, x0, t=t, noise=noise, min_snr_gamma=5.0)
    torch.testing.assert_close(got, (w * per_clip).mean(), rtol=1e-5, atol=1e-6)


def test_diffusion_loss_draws_from_the_generator():
    schedule, model, x0 = NoiseSchedule(), TinyDenoiser(), torch.randn(SHAPE)
    a = diffusion_loss(model, schedule, x0, generator=torch.Generator().manual_seed(1))
    b = diffusion_loss(model, schedule, x0, generator=torch.Generator().manual_seed(1))
    assert a.item() == b.item()
    with pytest.raises(ValueError, match="prediction must be one of"):
        diffusion_loss(model, schedule, x0, prediction="score")


def test_timesteps_uniform_is_randint_and_logit_normal_tilts_towards_noise():
    uniform = draw_timesteps(1000, 50, torch.Generator().manual_seed(3))
    assert torch.equal(uniform, torch.randint(0, 1000, (50,), generator=torch.Generator().manual_seed(3)))
    t = draw_timesteps(1000, 200_000, torch.Generator().manual_seed(0), kind="logit-normal", loc=1.5, scale=1.5)
    assert t.dtype == torch.long and 0 <= int(t.min()) and int(t.max()) <= 999
    # by hand: the median is T·sigmoid(loc) = 1000·sigmoid(1.5) = 817.6; P(t ≥ 950) = P(z > (logit 0.95 − 1.5)/1.5),
    # = P(z > 0.963)
    assert abs(float(t.float().median()) - 817.6) < 3
    assert abs(float((t >= 950).float().mean()) - 0.1678) < 0.005  # uniform gives these steps 0.05
    centred = draw_timesteps(1000, 200_000, torch.Generator().manual_seed(0), kind="logit-normal")
    assert abs(float(centred.float().median()) - 500) < 3
    with pytest.raises(ValueError, match="timesteps must be one of"):
        draw_timesteps(1000, 4, kind="cosine")
    with pytest.raises(ValueError, match="timesteps must be one of"):
        TrainConfig(timesteps="lognormal").validate()
    with pytest.raises(ValueError, match="timestep_scale must be > 0"):
        TrainConfig(timesteps="logit-normal", timestep_scale=0.0).validate()


def test_the_trainer_draws_its_timesteps_as_configured(monkeypatch):
    seen = []
    real = training_step

    def spy(*args, t=None, **kwargs):
        seen.append(t.clone())
        return real(*args, t=t, **kwargs)

    monkeypatch.setattr("vdiff_edu.train.training_step", spy)
    make_trainer(steps=30, batch_size=8, timesteps="logit-normal", timestep_loc=3.0, timestep_scale=0.3).train()
    t = torch.cat(seen).float()  # sigmoid(3 ± 3·0.3) is 0.89–0.98: every t in about 890–980
    assert len(t) == 240 and t.min() > 800 and t.mean() > 900
    seen.clear()
    make_trainer(steps=30, batch_size=8).train()  # the default: uniform
    assert torch.cat(seen).float().mean() < 700


def test_drop_labels_uses_the_null_token():
    labels = torch.tensor([[1, 2], [3, 4], [5, 6]])
    out = drop_labels(labels, torch.tensor([False, True, False]), null_label=10)
    assert out.tolist() == [[1, 2], [10, 10], [5, 6]]


# ---------------------------------------------------------------- EMA and learning rate ----


def test_ema_update_copy_and_state():
    model = nn.Linear(2, 2)
    ema = EMA(model, decay=0.9, warmup=False)
    before = ema.model.weight.clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update(model)
    torch.testing.assert_close(ema.model.weight, 0.9 * before + 0.1 * model.weight)  # θ_ema ← d·θ_ema + (1−d)·θ
    assert not ema.model.weight.requires_grad
    other = nn.Linear(2, 2)
    ema.copy_to(other)
    torch.testing.assert_close(other.weight, ema.model.weight)
    restored = EMA(nn.Linear(2, 2), decay=0.5)
    restored.load_state_dict(ema.state_dict())
    torch.testing.assert_close(restored.model.weight, ema.model.weight)
    assert (restored.decay, restored.num_updates) == (0.9, 1)


def test_ema_warmup_starts_fast():
    ema = EMA(nn.Linear(1, 1), decay=0.999, warmup=True)
    assert ema.current_decay() == pytest.approx(0.1)  # (1 + 0) / (10 + 0)
    ema.num_updates = 10_000
    assert ema.current_decay() == 0.999


def test_warmup_then_cosine():
    lr = [warmup_cosine(s, warmup=4, total=12, min_ratio=0.1) for s in range(13)]
    assert lr[:4] == [0.25, 0.5, 0.75, 1.0]
    assert lr[4] == 1.0 and lr[8] == pytest.approx(0.55) and lr[12] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(lr[4:], lr[5:])), "the cosine part only goes down"


# ---------------------------------------------------------------- data ----


def test_index_sampler_visits_every_clip_once_per_epoch_and_resumes():
    s = IndexSampler(10, seed=3)
    first = s.next_indices(4).tolist() + s.next_indices(6).tolist()
    assert sorted(first) == list(range(10)) and s.epoch == 1
    s.next_indices(3)
    state = s.state_dict()
    rest = s.next_indices(12).tolist()  # runs over into epoch 2
    t = IndexSampler(10, seed=3)
    t.load_state_dict(state)
    assert t.next_indices(12).tolist() == rest
    with pytest.raises(ValueError, match="trained on 10 clips"):
        IndexSampler(11).load_state_dict(state)


def test_training_step_is_loss_backward_clip_step_ema():
    """One step by hand (SGD, so the update is -lr·clipped gradient) equals ``training_step``'s."""
    torch.manual_seed(0)
    model, schedule = TinyDenoiser(), NoiseSchedule()
    x0, noise, t = torch.randn(SHAPE), torch.randn(SHAPE), torch.tensor([3, 300, 600, 900])
    cond = {"labels": torch.randint(0, 10, (4, 2))}
    twin = copy.deepcopy(model)
    # by hand
    loss = diffusion_loss(twin, schedule, x0, cond, "v", 5.0, t=t, noise=noise)
    grads = torch.autograd.grad(loss, list(twin.parameters()))
    norm = torch.sqrt(sum(g.pow(2).sum() for g in grads))
    scale = min(1.0, 0.5 / (norm.item() + 1e-6))  # clip_grad_norm_ to 0.5
    expected = [p.detach() - 0.1 * scale * g for p, g in zip(twin.parameters(), grads)]
    # the package's step
    ema = EMA(model, decay=0.5, warmup=False)
    before = [p.detach().clone() for p in model.parameters()]
    got_loss, got_norm = training_step(model, schedule, torch.optim.SGD(model.parameters(), lr=0.1), ema, x0, cond,
                                       prediction="v", min_snr_gamma=5.0, grad_clip=0.5, t=t, noise=noise)
    torch.testing.assert_close(got_loss, loss.detach())
    assert abs(got_norm - norm.item()) < 1e-5
    for p, e, b, p_ema in zip(model.parameters(), expected, before, ema.model.parameters()):
        torch.testing.assert_close(p.detach(), e, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(p_ema, 0.5 * b + 0.5 * p.detach(), rtol=1e-5, atol=1e-6)  # EMA after the step


def test_training_step_refuses_a_nan_before_the_weights_change():
    model, schedule = TinyDenoiser(), NoiseSchedule()
    before = [p.detach().clone() for p in model.parameters()]
    x0 = torch.randn(SHAPE)
    x0[0, 0, 0, 0, 0] = float("nan")
    ema = EMA(model)
    with pytest.raises(NonFiniteStep, match="became nan"):
        training_step(model, schedule, torch.optim.SGD(model.parameters(), lr=0.1), ema, x0)
    assert all(torch.equal(p, b) for p, b in zip(model.parameters(), before)) and ema.num_updates == 0


def test_fetch_batch_from_tensors_datasets_and_lists():
    data = make_data(6)
    idx = torch.tensor([4, 1])
    assert torch.equal(fetch_batch(data, idx)["video"], data["video"][idx])
    td = torch.utils.data.TensorDataset(data["video"], data["labels"])
    assert torch.equal(fetch_batch(td, idx)["labels"], data["labels"][idx])
    items = [{"video": data["video"][i], "labels": data["labels"][i], "caption": "a digit"} for i in range(6)]
    batch = fetch_batch(items, idx)
    assert set(batch) == {"video", "labels", "caption"} and batch["video"].shape == (2, *SHAPE[1:])
    assert batch["caption"] == ["a digit", "a digit"]  # strings come as a list, for the kinds that read captions


def test_trainer_learns_from_cached_latents_in_a_tensor_dataset():
    torch.manual_seed(0)
    latents = torch.randn(16, 2, 3, 4, 4) * 0.5
    cfg = TrainConfig(steps=3, batch_size=4, progress="none", warmup=1)
    cache = {"latents": latents, "labels": torch.zeros(16, 1).long()}
    trainer = Trainer(TinyDenoiser(channels=2, num_label_slots=1), NoiseSchedule(), cache, cfg, device="cpu")
    history = trainer.train()
    assert history["step"] == [1, 2, 3] and all(math.isfinite(v) for v in history["loss"])


def test_training_lowers_the_loss():
    # every clip is the same pattern: predicting x₀ is learnable, so the loss must fall well below its start
    torch.manual_seed(0)
    pattern = torch.rand(1, *SHAPE[1:]) * 2 - 1
    model = UNet3D(UNetConfig.smoke(in_channels=1, out_channels=1, num_label_slots=0))  # unconditional
    cfg = TrainConfig(steps=30, batch_size=4, lr=1e-2, warmup=3, prediction="x0", min_snr_gamma=None, progress="none")
    loss = Trainer(model, NoiseSchedule(), {"video": pattern.repeat(8, 1, 1, 1, 1)}, cfg, device="cpu").train()["loss"]
    assert sum(loss[-8:]) < 0.5 * sum(loss[:8]), f"loss did not go down: {loss[:3]} ... {loss[-3:]}"


# ---------------------------------------------------------------- checkpoints and exact resume ----


def test_checkpoint_holds_everything_and_keeps_the_last_n(tmp_path):
    trainer = make_trainer(tmp_path, steps=6, checkpoint_every=2, keep_last=2)
    trainer.train()
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["step_0000004.pt", "step_0000006.pt"]
    state = load_checkpoint(latest_checkpoint(tmp_path))  # weights_only=True inside
    expected = {"model", "ema", "optimizer", "lr_scheduler", "step", "rng", "data", "config", "format_version"}
    assert expected <= set(state)
    assert set(state["rng"]) >= {"python", "numpy", "torch", "noise"}
    assert state["step"] == 6 and state["data"] == {"n": 24, "seed": 7, "epoch": 1, "index": 0}
    assert state["config"]["batch_size"] == 4 and isinstance(state["config"], dict)


def test_resume_in_process_is_exact(tmp_path):
    full = make_trainer(steps=8)
    full.train()
    half = make_trainer(tmp_path, steps=8)
    half.train(num_steps=4)
    resumed = make_trainer(tmp_path, steps=8)
    resumed.train(resume="latest")
    assert_same_state(full, resumed)
    assert resumed.history["step"] == list(range(1, 9))


@pytest.mark.slow  # starts a second Python process
def test_resume_in_a_fresh_process_is_bit_identical(tmp_path):
    # N steps + save, then a NEW Python process loads and runs N more: the weights equal 2N uninterrupted steps
    half = make_trainer(tmp_path, steps=8)
    half.train(num_steps=4)
    assert latest_checkpoint(tmp_path).name == "step_0000004.pt"
    script = (
        "import sys, torch; sys.path.insert(0, sys.argv[1]); from test_train import make_trainer;"
        "tr = make_trainer(sys.argv[2], steps=8); tr.train(resume='latest');"
        "torch.save({'model': tr.module.state_dict(), 'ema': tr.ema.model.state_dict()}, sys.argv[3])"
    )
    out = tmp_path / "resumed.pt"
    subprocess.run([sys.executable, "-c", script, str(ROOT / "tests"), str(tmp_path), str(out)], check=True,
                   env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    resumed = torch.load(out, weights_only=True)
    full = make_trainer(steps=8)
    full.train()
    for name, x in full.module.state_dict().items():
        assert torch.equal(resumed["model"][name], x), f"{name} differs after resuming in a fresh process"
    for name, x in full.ema.model.state_dict().items():
        assert torch.equal(resumed["ema"][name], x), f"EMA {name} differs after resuming in a fresh process"


def test_resume_paths(tmp_path, capsys):
    trainer = make_trainer(tmp_path, steps=2)
    with pytest.raises(FileNotFoundError, match="no checkpoint there"):
        trainer.train(resume=tmp_path / "nope.pt")
    trainer.train(resume="latest")  # nothing saved yet: says so and starts fresh
    assert "starting fresh" in capsys.readouterr().out
    assert trainer.step == 2


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_a_crafted_pickle_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"format_version": 1, "model": Evil()}))
    with pytest.raises(CheckpointError, match="refused"):
        make_trainer(tmp_path).train(resume=path)


def test_a_truncated_checkpoint_gives_a_clear_error(tmp_path):
    trainer = make_trainer(tmp_path, steps=2)
    trainer.train()
    path = latest_checkpoint(tmp_path)
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        make_trainer(tmp_path, steps=4).train(resume=path)


def test_a_crash_while_saving_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    trainer = make_trainer(tmp_path, steps=2)
    trainer.train()
    path = latest_checkpoint(tmp_path)
    good = path.read_bytes()

    def crash(obj, f, *args, **kwargs):
        Path(f).write_bytes(b"half a checkpoint")
        raise KeyboardInterrupt  # Ctrl-C in the middle of writing

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        trainer.save(path)
    assert path.read_bytes() == good
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name], "no temporary file may be left behind"


# ---------------------------------------------------------------- stopping ----


def test_keyboard_interrupt_saves_and_returns_the_history(tmp_path):
    def stop_at_3(trainer, step, history):
        if step == 3:
            raise KeyboardInterrupt

    trainer = make_trainer(tmp_path, steps=8)
    history = trainer.train(callback=stop_at_3)
    assert history["step"] == [1, 2, 3]
    assert latest_checkpoint(tmp_path).name == "step_0000003.pt"
    resumed = make_trainer(tmp_path, steps=8)
    resumed.train(resume="latest")
    full = make_trainer(steps=8)
    full.train()
    assert_same_state(full, resumed)


def test_ctrl_c_finishes_the_step_then_saves(tmp_path):
    def press_ctrl_c(trainer, step, history):
        if step == 2:
            os.kill(os.getpid(), signal.SIGINT)

    trainer = make_trainer(tmp_path, steps=8)
    # the handler in place before training (Python's own, unless something earlier in this test process, such as
    # an asyncio runner of a notebook test on the same pytest-xdist worker, installed another)
    before = signal.getsignal(signal.SIGINT)
    history = trainer.train(callback=press_ctrl_c)
    assert history["step"][-1] == 2 and latest_checkpoint(tmp_path).name == "step_0000002.pt"
    assert signal.getsignal(signal.SIGINT) is before, "the Ctrl-C handler must be restored"


def test_an_interrupt_mid_step_is_forgotten(tmp_path, monkeypatch):
    trainer = make_trainer(tmp_path, steps=8)
    trainer.train(num_steps=2)
    real_next_batch, calls = trainer._next_batch, []

    def next_batch_then_ctrl_c():
        calls.append(1)
        batch = real_next_batch()  # draws noise and advances the data position...
        raise KeyboardInterrupt  # ...then Ctrl-C arrives before the update

    monkeypatch.setattr(trainer, "_next_batch", next_batch_then_ctrl_c)
    trainer.train()
    assert calls and trainer.step == 2
    resumed = make_trainer(tmp_path, steps=8)
    resumed.train(resume="latest")
    full = make_trainer(steps=8)
    full.train()
    assert_same_state(full, resumed)


def test_nan_loss_stops_with_a_hint_and_saves_nothing_bad(tmp_path):
    def poison(trainer, step, history):
        if step == 3:
            with torch.no_grad():
                trainer.module.conv_out.conv.bias.fill_(float("nan"))

    trainer = make_trainer(tmp_path, steps=8, checkpoint_every=2)
    with pytest.raises(FloatingPointError, match="diverged.*lower TrainConfig.lr"):
        trainer.train(callback=poison)
    assert latest_checkpoint(tmp_path).name == "step_0000002.pt"
    state = load_checkpoint(latest_checkpoint(tmp_path))
    assert all(torch.isfinite(v).all() for v in state["model"].values())


def test_config_presets_and_validation():
    from vdiff_edu.presets import ExperimentConfig

    for name in ("smoke", "cpu", "gpu"):
        cfg = ExperimentConfig.preset(name).train  # the recipes live in presets.py, named once
        cfg.validate()
        assert TrainConfig.from_dict(vars(cfg)) == cfg
    assert TrainConfig.smoke().steps < ExperimentConfig.cpu().train.steps < ExperimentConfig.gpu().train.steps
    assert not hasattr(TrainConfig, "cpu") and not hasattr(TrainConfig, "gpu")  # no second copy of a recipe
    with pytest.raises(ValueError, match="split evenly over 3 processes"):
        TrainConfig(batch_size=4).validate(world_size=3)
    with pytest.raises(ValueError, match="prediction must be one of"):
        TrainConfig(prediction="eps2").validate()
    with pytest.raises(TypeError, match="indexable data"):
        Trainer(TinyDenoiser(), NoiseSchedule(), iter([]), TrainConfig.smoke(), device="cpu")


# ---------------------------------------------------------------- notebook 06 exercises ----


def test_notebook_06_checks_accept_solutions_and_reject_wrong_answers(capsys):
    sys.path.insert(0, str(ROOT / "notebooks"))
    from exercises import checks_06 as checks
    from exercises import solutions_06 as sol

    assert checks.check_eps_loss(sol.eps_loss)
    assert checks.check_min_snr_eps(sol.min_snr_eps)
    assert checks.check_ema_update(sol.ema_update)

    def x0_target(model, x0, t, noise, alpha_bar):
        ab = alpha_bar[t].float().view(-1, 1, 1, 1, 1)
        return (model(ab.sqrt() * x0 + (1 - ab).sqrt() * noise, t) - x0).pow(2).mean()

    def swapped(ema_params, params, decay):
        for e, p in zip(ema_params, params):
            e.mul_(1 - decay).add_(p, alpha=decay)

    assert not checks.check_eps_loss(x0_target)
    assert "target is the noise" in capsys.readouterr().out
    assert not checks.check_min_snr_eps(lambda snr, gamma: snr.clamp(max=gamma) / snr)
    assert "SNR = 0" in capsys.readouterr().out
    assert not checks.check_ema_update(swapped)
    assert "swapped" in capsys.readouterr().out

    def new_tensors(ema_params, params, decay):  # the right values, but the EMA model never changes
        return [decay * e + (1 - decay) * p for e, p in zip(ema_params, params)]

    def into_params(ema_params, params, decay):  # right values in ema, but the model's weights overwritten too
        for e, p in zip(ema_params, params):
            e.mul_(decay).add_(p, alpha=1 - decay)
            p.copy_(e)

    assert not checks.check_ema_update(new_tensors)
    assert "did not change" in capsys.readouterr().out
    assert not checks.check_ema_update(into_params)
    assert "params) changed" in capsys.readouterr().out

    def not_yet(*args):
        raise NotImplementedError

    for check in (checks.check_eps_loss, checks.check_min_snr_eps, checks.check_ema_update):
        assert not check(not_yet) and not check(None)  # a friendly reminder, never an exception
    assert "not attempted yet" in capsys.readouterr().out

    # exercise 4: the measurement decides which guess is right, and the message says what was measured
    quiet_worse, quiet_same = {0.3: 0.55, 0.02: 0.25}, {0.3: 0.55, 0.02: 0.53}
    assert checks.check_label_std_guess("fewer", quiet_worse)
    assert "0.25" in capsys.readouterr().out
    assert not checks.check_label_std_guess("more", quiet_worse)  # a plausible wrong guess
    assert 'says "fewer"' in capsys.readouterr().out
    assert not checks.check_label_std_guess("fewer", quiet_same)  # the same guess, where the measurement differs
    assert checks.check_label_std_guess("same", quiet_same)
    assert checks.check_label_std_guess("more", {0.3: 0.4, 0.02: 0.5})
    capsys.readouterr()
    assert not checks.check_label_std_guess("less", quiet_worse)
    assert "expected one of" in capsys.readouterr().out
    assert not checks.check_label_std_guess("fewer", {0.3: 0.55})  # only one of the two runs
    assert "both starting sizes" in capsys.readouterr().out
    assert not checks.check_label_std_guess(None, None)
    assert "not attempted yet" in capsys.readouterr().out


def test_train_denoiser_builds_a_unet_that_fits_the_data(tmp_path, monkeypatch):
    monkeypatch.setenv("VDIFF_SMOKE", "1")
    cfg = TrainConfig(steps=2, batch_size=2, progress="none", warmup=1)
    trainer = train_denoiser(make_data(6), cfg, run_dir=tmp_path, device="cpu")
    assert trainer.step == 2 and latest_checkpoint(tmp_path).name == "step_0000002.pt"
    assert (trainer.module.cfg.in_channels, trainer.module.cfg.num_label_slots) == (1, 2)


# ---------------------------------------------------------------- re-aiming a running stage ----


def test_retarget_reaims_the_learning_rate_and_a_resume_builds_the_same_schedule(tmp_path):
    from dataclasses import replace

    from vdiff_edu.optim import warmup_cosine

    a = make_trainer(tmp_path / "a", steps=20, checkpoint_every=4)
    a.train(num_steps=6)
    a.retarget(replace(a.cfg, steps=12))  # a budget found the stage slower than planned: end at 12, not 20
    a.train()
    assert a.step == 12 and a.history["step"][-1] == 12
    for step, lr in zip(a.history["step"], a.history["lr"]):  # step s (1-based) ran at the rate of position s-1
        total = 20 if step <= 6 else 12
        assert lr == pytest.approx(a.cfg.lr * warmup_cosine(step - 1, 2, total, a.cfg.min_lr_ratio), rel=1e-6)
    assert a.history["lr"][-1] == pytest.approx(a.cfg.lr * warmup_cosine(11, 2, 12, a.cfg.min_lr_ratio))
    # a fresh Trainer with the new length, resumed from the checkpoint at step 8, ends bit-identical
    b = make_trainer(tmp_path / "a", steps=12, checkpoint_every=4)
    b.train(resume=tmp_path / "a" / "checkpoints" / "step_0000008.pt")
    assert_same_state(a, b)
    with pytest.raises(ValueError, match="changes only steps and warmup.*'lr'"):
        a.retarget(replace(a.cfg, steps=30, lr=1.0))
    with pytest.raises(ValueError, match="beyond the step reached"):
        a.retarget(replace(a.cfg, steps=10))
