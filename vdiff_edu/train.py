"""Training the denoiser: the objective, an EMA of the weights, and a Trainer that can stop and resume exactly.

Read it top to bottom:

    TrainConfig        every knob, commented (the recipes that set them are in presets.py)
    diffusion_loss     the objective: noise a clip, ask the network to undo it (ε-, x₀- or v-prediction),
                       optionally weighted by min-SNR-γ
    EMA                an exponential moving average of the weights, used for sampling
    training_step      one step, written out: forward + loss, backward, clip, optimizer step, EMA
    IndexSampler       which clips go into each batch, as a pure function of (seed, epoch, position)
    Trainer            the loop around training_step: batches, conditions and their dropout, warm-up/cosine
                       LR, checkpoints, exact resume, Ctrl-C, progress (+ DDP under torchrun)

The Trainer trains on anything indexable: a Moving MNIST dataset (``ds[i]`` → dict with ``video`` and ``labels``),
or clips encoded once by the autoencoder and cached as a dict of tensors ``{"latents": (n, c, f, h, w),
"labels": (n, slots)}``. Because batches are chosen by (seed, epoch, index) and every random number generator is
saved, a run that stops and resumes gives the same weights, bit for bit on a CPU, as one that never stopped.
"""

from __future__ import annotations

import copy
import gc
import math
import os
import random
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.distributed as dist
from einops import rearrange
from torch import Tensor, nn
from tqdm.auto import tqdm

from .checkpoint import load_checkpoint, save_checkpoint
from .conditioning import Conditioning, as_single_frames
from .optim import adamw_with_decay_groups, warmup_cosine, warmup_cosine_scheduler
from .runs import checkpoint_steps
from .schedule import PREDICTIONS
from .utils import get_device, seed_everything

TIMESTEPS = ("uniform", "logit-normal")  # how training draws each clip's t (draw_timesteps)


# ---------------------------------------------------------------- config ----


@dataclass
class TrainConfig:
    # --- how long, how big
    steps: int = 3_000                  # optimizer steps in total; the learning-rate schedule ends here
    batch_size: int = 16                # clips per step, over all processes together (the global batch)
    # --- optimizer: AdamW (Loshchilov & Hutter 2019)
    lr: float = 5e-4                    # peak learning rate, reached at the end of warm-up
    warmup: int = 100                   # steps of linear warm-up from lr/warmup to lr
    min_lr_ratio: float = 0.1           # the cosine decays to lr * min_lr_ratio at the last step
    weight_decay: float = 0.01          # decoupled weight decay on weight matrices / kernels (not biases, norms)
    adam_betas: tuple[float, float] = (0.9, 0.99)
    grad_clip: float | None = 1.0       # clip the global gradient norm to this (None: no clipping)
    ema_decay: float = 0.999            # EMA of the weights: θ_ema ← d·θ_ema + (1−d)·θ; sampling uses θ_ema
    ema_warmup: bool = True             # use d = min(decay, (1+n)/(10+n)) so the early EMA is not stuck at init
    # --- objective
    prediction: str = "v"               # what the network outputs: "eps" (noise), "x0" (clean clip) or "v"
    min_snr_gamma: float | None = 5.0   # min-SNR-γ loss weighting (Hang et al. 2023); None: plain MSE
    timesteps: str = "uniform"          # how each clip's t is drawn: "uniform" over {0, …, T−1} (DDPM), or
                                        # "logit-normal" (draw_timesteps), tilted towards the noisy steps when
    timestep_loc: float = 0.0           # ... its location is > 0 (0 and scale 1: Esser et al. 2024, SD3, §3.1)
    timestep_scale: float = 1.0         # ... and its scale
    cond_drop_prob: float = 0.1         # drop each condition (labels → null token) this often, for classifier-free
                                        # guidance; the Trainer's Conditioning uses it unless given its own
    frame_prob: float = 0.0             # this share of steps trains on the batch's frames as one-frame clips, the
                                        # temporal layers idle (joint image-video training, Ho et al. 2022): the
                                        # model then also knows its own image prediction, which temporal-
                                        # consistency guidance needs (sampling.temporal_guided_prediction)
    data_key: str | None = None         # which batch entry to denoise; None: "latents", else "video", else "x"
    # --- bookkeeping
    log_every: int = 50                 # print a line / record clips-per-second every this many steps
    sample_every: int = 0               # callbacks that draw preview samples do so this often (0: never)
    checkpoint_every: int = 500         # save a checkpoint every this many steps (0: only at the end / on Ctrl-C)
    keep_last: int = 3                  # keep this many checkpoints, delete older ones
    compile: bool = False               # torch.compile the model (faster on GPU after a slow first step)
    seed: int = 0                       # seeds the model-independent randomness: batches, timesteps, noise
    progress: str = "auto"              # "bar" (tqdm), "text" (plain lines), "none"; "auto": bar in a terminal
                                        # or notebook, text lines when output goes to a file

    @classmethod
    def smoke(cls) -> "TrainConfig":
        """Tens of steps on a tiny model: for tests and a quick look (seconds). The recipes that train real models
        (cpu, gpu) are whole experiments and live in ``presets.py``: ``ExperimentConfig.preset("cpu").train``."""
        return cls(steps=30, batch_size=4, lr=1e-3, warmup=5, ema_decay=0.9, log_every=10, checkpoint_every=0,
                   keep_last=2)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """Rebuild a config saved in a checkpoint (unknown keys are ignored)."""
        names = {f.name for f in fields(cls)}
        d = {k: (tuple(v) if k == "adam_betas" else v) for k, v in d.items() if k in names}
        return cls(**d)

    def validate(self, world_size: int = 1) -> None:
        if self.prediction not in PREDICTIONS:
            raise ValueError(f"TrainConfig.prediction must be one of {PREDICTIONS}; got {self.prediction!r}")
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError(f"TrainConfig.steps and batch_size must be >= 1; got steps={self.steps}, "
                             f"batch_size={self.batch_size}")
        if self.batch_size % world_size:
            raise ValueError(f"TrainConfig.batch_size={self.batch_size} is the global batch and must split evenly "
                             f"over {world_size} processes; use a multiple of {world_size}")
        if not 0.0 <= self.cond_drop_prob < 1.0:
            raise ValueError(f"TrainConfig.cond_drop_prob must be in [0, 1); got {self.cond_drop_prob}")
        if self.timesteps not in TIMESTEPS:
            raise ValueError(f"TrainConfig.timesteps must be one of {TIMESTEPS}; got {self.timesteps!r}")
        if not self.timestep_scale > 0:
            raise ValueError(f"TrainConfig.timestep_scale must be > 0; got {self.timestep_scale}")
        if not 0.0 <= self.frame_prob < 1.0:
            raise ValueError(f"TrainConfig.frame_prob is the share of steps on single frames, in [0, 1) (0 = clips "
                             f"only); got {self.frame_prob}")
        if self.progress not in ("auto", "bar", "text", "none"):
            raise ValueError(f"TrainConfig.progress must be 'auto', 'bar', 'text' or 'none'; got {self.progress!r}")


# ---------------------------------------------------------------- the objective ----


def min_snr_weight(snr: Tensor, prediction: str, gamma: float) -> Tensor:
    """Per-clip loss weights of min-SNR-γ (Hang et al. 2023, "Efficient Diffusion Training via Min-SNR
    Weighting Strategy", section 3.4). Each is min(SNR, γ) expressed for the target the network predicts:

        x₀-prediction:  w = min(SNR, γ)
        ε-prediction:   w = min(SNR, γ) / SNR           (= min(1, γ/SNR))
        v-prediction:   w = min(SNR, γ) / (SNR + 1)

    so that, whatever the network predicts, the implied x₀ error is weighted by min(SNR, γ): easy,
    almost-clean timesteps (huge SNR) stop dominating the gradient.
    """
    snr = snr.float()
    if prediction == "x0":
        return snr.clamp(max=gamma)
    if prediction == "eps":
        return (gamma / snr).clamp(max=1.0)  # written this way so SNR = 0 gives 1, not 0/0
    return snr.clamp(max=gamma) / (snr + 1)


def draw_timesteps(num_steps: int, n: int, generator: torch.Generator | None = None, device=None,
                   kind: str = "uniform", loc: float = 0.0, scale: float = 1.0) -> Tensor:
    """``n`` training timesteps in {0, …, T−1}, T = ``num_steps`` (long, on ``device``):

        uniform       t ~ U{0, …, T−1}                                   (DDPM, Ho et al. 2020, Algorithm 1)
        logit-normal  t = min(⌊T·sigmoid(loc + scale·z)⌋, T − 1),  z ~ N(0, 1)   (Esser et al. 2024, SD3, §3.1)

    The logit-normal puts more of training on the middle steps (loc = 0) or, with loc > 0, on the noisy ones, where
    a clip's layout and motion are decided; its tails are thin, so the very first and last steps get fewer draws
    than uniform gives them. "uniform" draws exactly what ``torch.randint`` draws (the random stream is unchanged).
    """
    if kind == "uniform":
        return torch.randint(0, num_steps, (n,), generator=generator, device=device)
    if kind != "logit-normal":
        raise ValueError(f"timesteps must be one of {TIMESTEPS}; got {kind!r}")
    z = torch.randn(n, generator=generator, device=device)  # (n,)
    return (torch.sigmoid(loc + scale * z) * num_steps).long().clamp(max=num_steps - 1)  # (n,)


def diffusion_loss(model: nn.Module, schedule, x0: Tensor, cond: dict | None = None, prediction: str = "v",
                   min_snr_gamma: float | None = None, generator: torch.Generator | None = None,
                   t: Tensor | None = None, noise: Tensor | None = None) -> Tensor:
    """The denoising objective on a batch of clean clips ``x0`` (b, c, f, h, w); returns a scalar.

    ``t`` and ``noise`` are drawn here (from ``generator``) unless given: the Trainer passes them so that
    several processes can share one global draw.
    """
    if prediction not in PREDICTIONS:
        raise ValueError(f"prediction must be one of {PREDICTIONS}; got {prediction!r}")
    b = x0.shape[0]
    gen_device = generator.device if generator is not None else x0.device
    # 1. a random timestep for every clip: t ~ U{0, ..., T−1}
    if t is None:
        t = torch.randint(0, schedule.num_steps, (b,), generator=generator, device=gen_device).to(x0.device)  # (b,)
    # 2. Gaussian noise: ε ~ N(0, I)
    if noise is None:
        noise = torch.randn(x0.shape, generator=generator, device=gen_device, dtype=x0.dtype).to(x0.device)
    # 3. the forward process (DDPM, Ho et al. 2020, eq. 4): x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε
    x_t = schedule.q_sample(x0, t, noise)  # (b, c, f, h, w)
    # 4. the regression target
    if prediction == "eps":
        target = noise                               # DDPM eq. 14: predict ε
    elif prediction == "x0":
        target = x0                                  # predict the clean clip
    else:
        target = schedule.v_target(x0, noise, t)     # Salimans & Ho 2022: v = √ᾱ_t·ε − √(1−ᾱ_t)·x₀
    # 5. the network's guess
    pred = model(x_t, t, cond)  # (b, c, f, h, w)
    # 6. mean squared error per clip, in float32 even under bf16 autocast
    mse = (pred.float() - target.float()).pow(2).flatten(1).mean(dim=1)  # (b,)
    # 7. optional min-SNR-γ weights, SNR(t) = ᾱ_t / (1 − ᾱ_t)
    if min_snr_gamma is not None:
        mse = mse * min_snr_weight(schedule.snr(t).to(mse.device), prediction, min_snr_gamma)
    return mse.mean()


def drop_labels(labels: Tensor, drop: Tensor, null_label: int) -> Tensor:
    """Condition dropout for classifier-free guidance (Ho & Salimans 2022): where ``drop`` (b,) is True the
    clip's labels (b, slots) become the null token, so the same network also learns p(x) without a condition.
    (The written-out version of ``conditioning.DigitLabels.drop``, which the Trainer uses for every kind.)"""
    return torch.where(drop[:, None], torch.full_like(labels, null_label), labels)  # (b, slots)


# ---------------------------------------------------------------- EMA ----


class EMA:
    """An exponential moving average of a model's weights: θ_ema ← d·θ_ema + (1 − d)·θ after every step.

    Samples from the averaged weights are smoother than from the raw ones. With ``warmup`` the decay is
    d = min(decay, (1 + n)/(10 + n)) after n updates (TensorFlow's ``ExponentialMovingAverage(num_updates)``),
    so a short run is not dominated by the random initial weights. ``ema.model`` is a ready-to-use copy.
    """

    def __init__(self, model: nn.Module, decay: float = 0.999, warmup: bool = True):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1); got {decay}. 0.999 averages over about 1000 steps.")
        self.decay, self.warmup, self.num_updates = decay, warmup, 0
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    def current_decay(self) -> float:
        n = self.num_updates
        return min(self.decay, (1 + n) / (10 + n)) if self.warmup else self.decay

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        d = self.current_decay()
        for p_ema, p in zip(self.model.parameters(), model.parameters()):
            p_ema.lerp_(p.detach(), 1.0 - d)  # θ_ema + (1−d)·(θ − θ_ema) = d·θ_ema + (1−d)·θ
        for b_ema, b in zip(self.model.buffers(), model.buffers()):
            b_ema.copy_(b)  # buffers (e.g. running statistics) are copied, not averaged
        self.num_updates += 1

    def copy_to(self, model: nn.Module) -> None:
        """Load the averaged weights into ``model`` (e.g. before saving it for sampling)."""
        model.load_state_dict(self.model.state_dict())

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "decay": self.decay, "warmup": self.warmup,
                "num_updates": self.num_updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.decay, self.warmup, self.num_updates = state["decay"], state["warmup"], state["num_updates"]


# ---------------------------------------------------------------- one training step ----


class NonFiniteStep(FloatingPointError):
    """A training step met a NaN or infinite loss or gradient norm; the weights were left unchanged."""

    def __init__(self, what: str, value: float):
        super().__init__(f"the {what} became {value}")
        self.what, self.value = what, value


def training_step(model: nn.Module, schedule, optimizer: torch.optim.Optimizer, ema: EMA, x0: Tensor,
                  cond: dict | None = None, prediction: str = "v", min_snr_gamma: float | None = None,
                  grad_clip: float | None = 1.0, t: Tensor | None = None, noise: Tensor | None = None,
                  generator: torch.Generator | None = None, lr_scheduler=None,
                  autocast: bool = False) -> tuple[Tensor, float]:
    """One optimizer step of the denoiser on clean clips ``x0`` (b, c, f, h, w); returns (loss, gradient norm).

    Everything else the Trainer does (batches, dropout of conditions, checkpoints, progress) happens around this.
    A NaN or infinite loss or gradient norm raises ``NonFiniteStep`` before the weights change.
    """
    # 1. forward: noise the clips, let the network predict, mean squared error (bf16 autocast on CUDA if asked)
    with torch.autocast(x0.device.type, dtype=torch.bfloat16, enabled=autocast):
        loss = diffusion_loss(model, schedule, x0, cond, prediction, min_snr_gamma, generator, t, noise)
    # 2. backward: gradients of the loss with respect to every weight
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    # 3. clip the global gradient norm (one bad batch cannot throw the weights far)
    max_norm = grad_clip if grad_clip is not None else float("inf")
    grad_norm = float(nn.utils.clip_grad_norm_(model.parameters(), max_norm))
    if not torch.isfinite(loss.detach()):
        raise NonFiniteStep("loss", loss.item())
    if not math.isfinite(grad_norm):
        raise NonFiniteStep("gradient norm", grad_norm)
    # 4. the optimizer step (and the learning rate for the next one)
    optimizer.step()
    if lr_scheduler is not None:
        lr_scheduler.step()
    # 5. the moving average of the weights, which sampling uses
    ema.update(model)
    return loss.detach(), grad_norm


# ---------------------------------------------------------------- data ----


class IndexSampler:
    """Dataset indices for each batch, as a pure function of (seed, epoch, index).

    Epoch e visits the ``n`` clips in the order ``randperm(n)`` seeded with (seed, e); a batch that runs past the
    end of an epoch continues into the next one. Its whole state is three integers, which the checkpoint saves.
    """

    def __init__(self, n: int, seed: int = 0):
        if n < 1:
            raise ValueError("the training data is empty; give the Trainer at least one clip")
        self.n, self.seed, self.epoch, self.index = n, seed, 0, 0
        self._perm_epoch, self._perm = -1, None

    def _order(self, epoch: int) -> Tensor:
        if epoch != self._perm_epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perm, self._perm_epoch = torch.randperm(self.n, generator=g), epoch
        return self._perm

    def next_indices(self, k: int) -> Tensor:
        """The next ``k`` indices, advancing the position."""
        parts = []
        while k > 0:
            take = min(k, self.n - self.index)
            parts.append(self._order(self.epoch)[self.index:self.index + take])
            self.index, k = self.index + take, k - take
            if self.index == self.n:
                self.epoch, self.index = self.epoch + 1, 0
        return torch.cat(parts)  # (k,)

    def state_dict(self) -> dict[str, int]:
        return {"n": self.n, "seed": self.seed, "epoch": self.epoch, "index": self.index}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if state["n"] != self.n:
            raise ValueError(f"the checkpoint was trained on {state['n']} clips but the data now has {self.n}; "
                             f"resume with the same data (or start a new run)")
        self.seed, self.epoch, self.index = state["seed"], state["epoch"], state["index"]


def fetch_batch(data, indices: Tensor) -> dict[str, Tensor | list]:
    """Gather the clips at ``indices`` from a dict of tensors, a ``TensorDataset`` (→ keys ``x``, ``labels``) or
    a map-style dataset whose items are dicts (e.g. ``MovingMNIST``: ``video``, ``labels``, ``caption``, ...).
    Tensors and arrays are stacked; strings (captions) come as a list, for the condition kinds that read them."""
    if isinstance(data, dict):
        return {k: v[indices] for k, v in data.items() if isinstance(v, Tensor)}
    if isinstance(data, torch.utils.data.TensorDataset):
        names = ("x", "labels")[: len(data.tensors)]
        return {name: tensor[indices] for name, tensor in zip(names, data.tensors)}
    items = [data[int(i)] for i in indices]
    if isinstance(items[0], (tuple, list)):
        items = [dict(zip(("x", "labels"), item)) for item in items]
    batch: dict[str, Tensor | list] = {}
    for key, value in items[0].items():
        if isinstance(value, (Tensor, np.ndarray)):
            batch[key] = torch.stack([torch.as_tensor(item[key]) for item in items])  # (b, ...)
        elif isinstance(value, str):
            batch[key] = [item[key] for item in items]  # b strings
    return batch


def _data_length(data) -> int:
    if isinstance(data, dict):
        lengths = {len(v) for v in data.values() if isinstance(v, Tensor)}
        if len(lengths) != 1:
            raise ValueError(f"a dict of training tensors needs the same first dimension everywhere; got {lengths}")
        return lengths.pop()
    if not (hasattr(data, "__len__") and hasattr(data, "__getitem__")):
        raise TypeError(f"the Trainer needs indexable data (len(data) and data[i]): a dataset such as MovingMNIST, "
                        f"a TensorDataset, or a dict of tensors like {{'latents': z, 'labels': y}}; "
                        f"got {type(data).__name__}")
    return len(data)


# ---------------------------------------------------------------- random number generators ----


def get_rng_state(noise_generator: torch.Generator | None = None) -> dict[str, Any]:
    """Every RNG state, as tensors and plain Python values (so ``torch.load(weights_only=True)`` reads it)."""
    py = random.getstate()
    np_state = np.random.get_state()
    state = {
        "python": {"version": py[0], "state": list(py[1]), "gauss": py[2]},
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    if noise_generator is not None:
        state["noise"] = noise_generator.get_state()
    return state


def set_rng_state(state: dict[str, Any], noise_generator: torch.Generator | None = None) -> None:
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    torch.set_rng_state(state["torch"].cpu())
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    if noise_generator is not None and "noise" in state:
        noise_generator.set_state(state["noise"].cpu())


# ---------------------------------------------------------------- distributed ----


def setup_distributed(device: torch.device | str | None = None) -> tuple[int, int, torch.device]:
    """(rank, world_size, device). Under ``torchrun --nproc_per_node=N`` (which sets WORLD_SIZE, RANK and
    LOCAL_RANK) this joins the process group: NCCL on GPUs, gloo on CPUs; each process gets its own GPU."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return 0, 1, get_device(str(device) if device is not None else None)
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", os.environ["RANK"]))
    device = torch.device(device) if device is not None else get_device()
    if device.type == "cuda":
        device = torch.device("cuda", local_rank if device.index is None else device.index)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return rank, world_size, device


def cleanup_distributed() -> None:
    """Leave the process group (call once at the end of a torchrun script, in every process, after the last
    Trainer is gone: ``del trainer``). All processes meet first: one that tore its group down while another was
    still talking to it would abort (gloo's "terminate called without an active exception"). A DDP wrapper still
    alive keeps the group's backend alive too, until the interpreter's own teardown, where gloo's threads abort
    the same way; hence the garbage collection first (wrappers caught in reference cycles)."""
    if dist.is_available() and dist.is_initialized():
        gc.collect()
        dist.barrier()
        dist.destroy_process_group()


# ---------------------------------------------------------------- the Trainer ----


def latest_checkpoint(run_dir: str | os.PathLike, run_id: str | None = None) -> Path | None:
    """The checkpoint under ``run_dir/checkpoints`` with the highest step stored inside it (of run ``run_id`` only,
    when given), or None."""
    ckpts = checkpoint_steps(Path(run_dir, "checkpoints"), run_id)
    return ckpts[-1][1] if ckpts else None


def check_finite_weights(*models: nn.Module) -> None:
    """Refuse to go on with weights that are NaN or infinite: a checkpoint must never hold them."""
    for model in models:
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point() and not torch.isfinite(tensor).all():
                raise FloatingPointError(f"weight {name} holds NaN or infinite values, so nothing was saved; the last "
                                         f"good checkpoint is untouched. Resume from it with a lower learning rate")


class Trainer:
    """Trains ``model`` to denoise the clips in ``data`` under ``schedule``.

        trainer = Trainer(UNet3D(UNetConfig.smoke()), NoiseSchedule(), MovingMNIST(...), TrainConfig.smoke(),
                          run_dir="runs/demo")
        history = trainer.train()                  # or train(resume="latest"), train(num_steps=100)
        clips = sample(trainer.ema.model, ...)     # sample from the averaged weights

    ``callback(trainer, step, history)`` runs after every step (on the first process only): a notebook uses it for a
    live loss plot or preview samples every ``cfg.sample_every`` steps. Ctrl-C finishes the current step, saves a
    checkpoint and returns the history; a NaN or inf loss raises ``FloatingPointError`` before anything is saved.
    Under ``torchrun`` every process runs this same code on its share of each batch (DistributedDataParallel).
    """

    def __init__(self, model: nn.Module, schedule, data, cfg: TrainConfig | None = None,
                 device: torch.device | str | None = None, run_dir: str | os.PathLike | None = None,
                 callback: Callable | None = None, conditioning: Conditioning | None = None,
                 run_id: str | None = None):
        self.cfg = cfg if cfg is not None else TrainConfig()
        self.run_id = run_id  # the run folder's id (runs.py): stored in every checkpoint, so pruning and "latest"
        #                       never touch another run's files
        self.rank, self.world_size, self.device = setup_distributed(device)
        self.cfg.validate(self.world_size)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.callback = callback
        seed_everything(self.cfg.seed)

        # the model, its EMA copy, and what the training step calls (DDP- and/or compile-wrapped)
        self.module = model.to(self.device)
        self.ema = EMA(self.module, self.cfg.ema_decay, self.cfg.ema_warmup)
        self.model = self.module
        if self.world_size > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = nn.parallel.DistributedDataParallel(self.module, device_ids=ids)
        if self.cfg.compile:
            self.model = torch.compile(self.model)
        self.schedule = schedule.to(self.device) if hasattr(schedule, "to") else schedule
        # what the model is conditioned on, and how often each condition is dropped (conditioning.py); by default
        # what a UNet3D's config says (digit labels when it has label slots), each dropped with cfg.cond_drop_prob
        if conditioning is None:
            conditioning = (Conditioning.for_unet(model.cfg, self.cfg.cond_drop_prob) if hasattr(model, "cfg")
                            else Conditioning())
        self.conditioning = conditioning

        # AdamW with weight decay on weight matrices and kernels only (fused kernels on CUDA); warm-up + cosine
        self.optimizer = adamw_with_decay_groups(self.module, self.cfg.lr, self.cfg.weight_decay, self.cfg.adam_betas,
                                                 fused=self.device.type == "cuda")
        self.lr_scheduler = warmup_cosine_scheduler(self.optimizer, self.cfg.warmup, self.cfg.steps,
                                                    self.cfg.min_lr_ratio)

        # data and noise: both depend only on cfg.seed and saved positions, never on the process
        self.data = data
        self.sampler = IndexSampler(_data_length(data), seed=self.cfg.seed)
        self.noise_generator = torch.Generator(device=self.device).manual_seed(self.cfg.seed + 1)
        self.step = 0
        self.history: dict[str, list] = {"step": [], "loss": [], "lr": [], "grad_norm": [], "clips_per_s": []}
        self._stop_requested = False
        self._last_saved_step = -1

    def retarget(self, cfg: TrainConfig) -> None:
        """Carry on with ``cfg``, which may change only ``steps`` and ``warmup`` (a time budget that re-sizes a
        running stage): the learning-rate schedule is re-aimed at the new end, from the step reached; the steps
        already taken keep the rates they had. A resume from a later checkpoint builds the same schedule."""
        now = asdict(self.cfg)
        changed = {k for k, v in asdict(cfg).items() if now[k] != v}
        if changed - {"steps", "warmup"}:
            raise ValueError(f"retarget changes only steps and warmup; got changes to {sorted(changed)}")
        if cfg.steps <= self.step:
            raise ValueError(f"retarget needs steps beyond the step reached ({self.step}); got steps={cfg.steps}")
        self.cfg = cfg

        def scale(step: int) -> float:
            return warmup_cosine(step, cfg.warmup, cfg.steps, cfg.min_lr_ratio)

        self.lr_scheduler.lr_lambdas = [scale] * len(self.optimizer.param_groups)  # the same position, a new end
        for group, base in zip(self.optimizer.param_groups, self.lr_scheduler.base_lrs):
            group["lr"] = base * scale(self.lr_scheduler.last_epoch)  # the rate of the next step

    # ------------------------------------------------------------ one step

    def _next_batch(self) -> tuple[Tensor, dict | None, Tensor, Tensor]:
        """This process's share of the next global batch: clean clips, conditions (some dropped), timesteps, noise."""
        B, shard = self.cfg.batch_size, slice(self.rank * self.cfg.batch_size // self.world_size,
                                              (self.rank + 1) * self.cfg.batch_size // self.world_size)
        batch = fetch_batch(self.data, self.sampler.next_indices(B)[shard])
        key = self.cfg.data_key or next((k for k in ("latents", "video", "x") if k in batch), None)
        if key not in batch:
            raise KeyError(f"the batch has keys {sorted(batch)}, none of which holds the clips to denoise; "
                           f"set TrainConfig.data_key to one of them")
        x0 = batch[key].to(self.device, torch.float32)  # (b, c, f, h, w), b = B / world_size
        # draw t, ε and the dropout masks for the WHOLE global batch, then keep this process's rows: every process
        # draws the same numbers, so N processes train exactly like one process with the same global batch
        g = self.noise_generator
        t = draw_timesteps(self.schedule.num_steps, B, g, self.device, self.cfg.timesteps, self.cfg.timestep_loc,
                           self.cfg.timestep_scale)[shard]  # (b,)
        noise = torch.randn((B, *x0.shape[1:]), generator=g, device=self.device)[shard]            # (b, c, f, h, w)
        drops = self.conditioning.draw_drops(B, g, self.device, shard, shape=(B, *x0.shape[1:]))  # {kind: (b,) bool, …}
        cond = self.conditioning.drop(self.conditioning.from_batch(batch, self.device), drops)
        if self.cfg.frame_prob > 0 and torch.rand((), generator=g, device=self.device) < self.cfg.frame_prob:
            # joint image-video training: this step, every frame is a one-frame clip with its clip's t
            f = x0.shape[2]
            x0, cond = as_single_frames(x0, cond)  # (b·f, c, 1, h, w)
            noise = rearrange(noise, "b c f h w -> (b f) c 1 h w")  # (b·f, c, 1, h, w)
            t = t.repeat_interleave(f)  # (b·f,)
        return x0, cond, t, noise

    def _train_step(self) -> tuple[float, float, float]:
        self.module.train()
        self._step_start = (get_rng_state(self.noise_generator), self.sampler.state_dict())
        self._in_step = True
        x0, cond, t, noise = self._next_batch()
        lr = self.optimizer.param_groups[0]["lr"]  # the learning rate this step uses
        try:
            loss, grad_norm = training_step(self.model, self.schedule, self.optimizer, self.ema, x0, cond,
                                            self.cfg.prediction, self.cfg.min_snr_gamma, self.cfg.grad_clip, t=t,
                                            noise=noise, lr_scheduler=self.lr_scheduler,
                                            autocast=self.device.type == "cuda")
        except NonFiniteStep as e:
            self._diverged(e.what, e.value)
        self._in_step = False  # from here on the step has happened
        if self.world_size > 1:  # the global batch's loss, so every process logs the same number
            dist.all_reduce(loss)
            loss = loss / self.world_size
        self.step += 1
        return loss.item(), grad_norm, lr

    def _diverged(self, what: str, value: float) -> None:
        last = latest_checkpoint(self.run_dir, self.run_id) if self.run_dir is not None else None
        raise FloatingPointError(
            f"the {what} became {value} at step {self.step + 1}: training diverged, so it stopped without saving "
            f"(the last good checkpoint is {last or 'none'}). Hints: lower the learning rate (now {self.cfg.lr:g}; "
            f"a resume with a lower TrainConfig.lr honours it, e.g. {self.cfg.lr / 4:g}); keep grad_clip on (now "
            f"{self.cfg.grad_clip}); check the clips are in [-1, 1] (or latents scaled by the autoencoder's "
            f"scale_factor); then resume from the last good checkpoint.")

    # ------------------------------------------------------------ the loop

    def train(self, num_steps: int | None = None, resume: str | os.PathLike | None = None,
              callback: Callable | None = None) -> dict[str, list]:
        """Train until ``cfg.steps`` (or for ``num_steps`` more steps) and return the history.

        ``resume``: None (carry on from the current state), ``"latest"`` (the newest checkpoint in
        ``run_dir``; starts fresh, saying so, when there is none) or the path of a checkpoint.
        """
        if resume is not None:
            self.resume(resume)
        end = self.cfg.steps if num_steps is None else min(self.cfg.steps, self.step + num_steps)
        callback = callback or self.callback
        bar = self._progress_bar(end)
        restore_sigint = self._catch_sigint()
        window_start, window_steps = time.perf_counter(), 0
        self._stop_requested, self._in_step = False, False
        try:
            while self.step < end:
                t0 = time.perf_counter()
                loss, grad_norm, lr = self._train_step()
                clips_per_s = self.cfg.batch_size / max(time.perf_counter() - t0, 1e-9)
                for k, v in zip(self.history, (self.step, loss, lr, grad_norm, clips_per_s)):
                    self.history[k].append(v)
                window_steps += 1
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss:.4f}", clips_s=f"{clips_per_s:.1f}", refresh=False)
                elif self.rank == 0 and self.cfg.progress != "none" and (self.step % self.cfg.log_every == 0
                                                                          or self.step == end):
                    rate = window_steps * self.cfg.batch_size / (time.perf_counter() - window_start)
                    print(f"step {self.step:>6}/{end}  loss {loss:.4f}  lr {lr:.2e}  grad {grad_norm:.2f}  "
                          f"{rate:.1f} clips/s", flush=True)
                    window_start, window_steps = time.perf_counter(), 0
                if self.cfg.checkpoint_every and self.step % self.cfg.checkpoint_every == 0:
                    self.save()
                if callback is not None and self.rank == 0:
                    callback(self, self.step, self.history)
                if self._stop_requested:
                    raise KeyboardInterrupt
        except KeyboardInterrupt:
            if self._in_step:  # interrupted half-way through a step: forget it, as if it never started
                set_rng_state(self._step_start[0], self.noise_generator)
                self.sampler.load_state_dict(self._step_start[1])
                self._in_step = False
            path = self.save()
            if self.rank == 0:
                print(f"\nInterrupted at step {self.step}; saved {path or '(no run_dir: nothing saved)'}. "
                      f"Resume with trainer.train(resume='latest').", flush=True)
            return self.history
        finally:
            restore_sigint()
            if bar is not None:
                bar.close()
        if self._last_saved_step != self.step:
            self.save()
        return self.history

    def _catch_sigint(self) -> Callable[[], None]:
        """Turn the first Ctrl-C into "stop after this step" (a second one stops at once). Only in the main
        thread of a single process: under torchrun the launcher handles signals."""
        if self.world_size > 1 or threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = signal.getsignal(signal.SIGINT)

        def handler(signum, frame):
            if self._stop_requested:
                raise KeyboardInterrupt
            self._stop_requested = True
            print("\nCtrl-C: finishing this step, then saving a checkpoint (press again to stop at once)",
                  file=sys.stderr, flush=True)

        signal.signal(signal.SIGINT, handler)
        return lambda: signal.signal(signal.SIGINT, previous)

    def _progress_bar(self, end: int):
        mode = self.cfg.progress
        if mode == "auto":
            mode = "bar" if (sys.stderr.isatty() or "ipykernel" in sys.modules) else "text"
        if mode != "bar" or self.rank != 0:
            return None
        return tqdm(total=end, initial=self.step, desc="training", unit="step", dynamic_ncols=True)

    # ------------------------------------------------------------ checkpoints

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly where we are."""
        return {
            "model": self.module.state_dict(),
            "ema": self.ema.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "lr_scheduler": self.lr_scheduler.state_dict(),
            "step": self.step,
            "rng": get_rng_state(self.noise_generator),
            "data": self.sampler.state_dict(),
            "config": asdict(self.cfg),
            "history": self.history,
            "world_size": self.world_size,
            "run_id": self.run_id,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.lr_scheduler.load_state_dict(state["lr_scheduler"])
        self.step = state["step"]
        set_rng_state(state["rng"], self.noise_generator)
        self.sampler.load_state_dict(state["data"])
        self.history = {k: list(v) for k, v in state["history"].items()}
        self.run_id = self.run_id or state.get("run_id")
        self._last_saved_step = self.step

    def save(self, path: str | os.PathLike | None = None) -> Path | None:
        """Write a checkpoint (atomically) to ``path`` or ``run_dir/checkpoints/step_XXXXXXX.pt`` and keep this run's
        newest ``cfg.keep_last`` (by the step stored inside each). Only the first process writes; without a path or
        run_dir nothing is saved. Weights that are not finite are never written."""
        if path is None and self.run_dir is None:
            return None
        path = Path(path) if path is not None else self.run_dir / "checkpoints" / f"step_{self.step:07d}.pt"
        check_finite_weights(self.module, self.ema.model)
        if self.rank == 0:
            save_checkpoint(path, self.state_dict())
            if self.run_dir is not None and self.cfg.keep_last > 0:
                own = checkpoint_steps(Path(self.run_dir, "checkpoints"), self.run_id)
                for _, old in own[:-self.cfg.keep_last]:
                    if old != path:
                        old.unlink()
        self._last_saved_step = self.step
        return path

    def load(self, path: str | os.PathLike) -> None:
        """Load a checkpoint written by ``save`` (refusing any file that would run code)."""
        state = load_checkpoint(path, map_location=self.device)
        saved = TrainConfig.from_dict(state["config"])
        changed = {f.name for f in fields(TrainConfig) if getattr(saved, f.name) != getattr(self.cfg, f.name)}
        changed -= {"progress", "log_every", "sample_every", "checkpoint_every", "keep_last", "compile"}
        if changed and self.rank == 0:
            print(f"note: resuming with a config that differs from the checkpoint's in {sorted(changed)}; "
                  f"the run will not match one that never stopped", flush=True)
        self.load_state_dict(state)
        if saved.lr != self.cfg.lr:
            self.set_peak_lr(self.cfg.lr)
            if self.rank == 0:
                print(f"note: the peak learning rate is now {self.cfg.lr:g} (the checkpoint's was {saved.lr:g}); "
                      f"from step {self.step} on the schedule uses it: lr {self.optimizer.param_groups[0]['lr']:.2e}",
                      flush=True)

    def set_peak_lr(self, lr: float) -> None:
        """Change the peak learning rate of a run in progress: the warm-up/cosine schedule continues from the
        current step with the new peak (the optimizer's moment estimates are kept). Resuming with a new
        ``TrainConfig.lr`` calls this, so "lower the learning rate, then resume" really lowers it."""
        self.lr_scheduler.base_lrs = [lr for _ in self.optimizer.param_groups]
        for group in self.optimizer.param_groups:
            group["initial_lr"] = lr
            group["lr"] = lr * self.lr_scheduler.lr_lambdas[0](self.lr_scheduler.last_epoch)

    def resume(self, resume: str | os.PathLike) -> bool:
        """Load ``"latest"`` (from run_dir) or a given checkpoint; return True if something was loaded."""
        if str(resume) == "latest":
            if self.run_dir is None:
                raise ValueError("resume='latest' needs a run_dir to look in; pass run_dir=... or a checkpoint path")
            path = latest_checkpoint(self.run_dir, self.run_id)
            if path is None:
                if self.rank == 0:
                    print(f"no checkpoint in {self.run_dir / 'checkpoints'}: starting fresh", flush=True)
                return False
        else:
            path = Path(resume)
            if not path.is_file():
                raise FileNotFoundError(f"resume={str(resume)!r}: no checkpoint there. Pass an existing .pt file, "
                                        f"'latest' (newest in run_dir/checkpoints) or None (start fresh)")
        self.load(path)
        if self.rank == 0:
            print(f"resumed from {path} at step {self.step}", flush=True)
        return True
