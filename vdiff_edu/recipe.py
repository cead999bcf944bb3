"""Training recipes: how the presets train a latent video pipeline from nothing, for ``train``, ``demo`` and the
notebooks. The pipeline itself (``pipeline.py``) only generates; everything about training lives here.

    train_pipeline(cfg, run_dir)
        1. clips        cfg.num_clips Moving MNIST clips, generated on the fly
        2. autoencoder  trained on their frames; its scale factor makes the latents unit-variance
        3. latents      every clip encoded once, cached beside what each condition kind keeps of it
        4. denoiser     A. on single latent frames, temporal attention idle (optional)
                        → inflate_to_video → B. on clips; the EMA weights are saved for sampling

    train_denoiser(data)   one call for a denoiser on any data (tests, quick experiments)

The recipes themselves, every number of them, are the presets in ``presets.py``.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.distributed as dist
from einops import rearrange
from torch import nn

from .attention import TemporalAttention
from .autoencoder import FrameAutoencoder, estimate_scale_factor, train_autoencoder
from .blocks import Full3dConv, TemporalConv
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .captions import caption, meanings_of_item
from .conditioning import Conditioning, conditioning_for, denoiser_for, per_frame
from .config import default_preset
from .moving_mnist import MovingMNIST
from .pipeline import AUTOENCODER_FILE, LatentVideoPipeline
from .presets import ExperimentConfig
from .runs import RunFolder, RunFolderError
from .schedule import NoiseSchedule
from .optim import adamw_with_decay_groups
from .train import EMA, Trainer, TrainConfig, fetch_batch, latest_checkpoint, setup_distributed, training_step
from .unet import UNet3D
from .utils import seed_everything

# ---------------------------------------------------------------- clips and their latents ----


MAX_BYTES_IN_MEMORY = 2**30  # pixel clips kept in memory for the autoencoder; more are generated when encoded


class ParaphrasedCaptions(torch.utils.data.Dataset):
    """A MovingMNIST whose captions are paraphrases: clip ``i``'s caption is ``captions.caption(meanings, rng=...)``
    with one of the *training* templates (never a held-out one), drawn from ``default_rng([seed, 10, i])``, so the
    caption depends only on the seed and the index. The meanings (digit, motion, start direction, style) come
    from the item's metadata (``captions.meanings_of_item``)."""

    def __init__(self, ds: MovingMNIST, seed: int = 0, says: tuple[str, ...] | None = None):
        self.ds, self.seed, self.source = ds, seed, ds.source
        self.says = says  # the Meaning fields the captions name (None: all of them)

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int) -> dict:
        item = dict(self.ds[i])
        rng = np.random.default_rng([self.seed, 10, int(i)])  # 10: issue 10's stream, apart from the clips' own
        meanings = meanings_of_item(item)
        if self.says is not None:  # e.g. ("digit", "style"): "a bold 8", for a model whose motion comes elsewhere
            meanings = tuple(replace(m, **{f: None for f in ("digit", "motion", "direction", "style")
                                           if f not in self.says}) for m in meanings)
        item["caption"] = caption(meanings, rng=rng)  # a TRAIN_TEMPLATES paraphrase
        return item


def training_dataset(cfg: ExperimentConfig, mnist_dir: str | os.PathLike | None = None, verbose: bool = False):
    """The experiment's training clips: ``MovingMNIST("train", length=cfg.num_clips, ...)`` (generated on the fly);
    for a text preset (``cfg.text``) with paraphrased captions (``ParaphrasedCaptions``)."""
    ds = MovingMNIST("train", length=cfg.num_clips, seed=cfg.seed, mnist_dir=mnist_dir, verbose=verbose,
                     **cfg.dataset_kwargs())
    says = cfg.structure.caption_says if cfg.structure is not None else None
    return ParaphrasedCaptions(ds, cfg.seed, says) if cfg.text is not None else ds


def clips_of(ds, start: int, stop: int, conditioning: Conditioning) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Clips ``start .. stop-1`` of a MovingMNIST: videos ``(n, 1, f, h, w)`` in [-1, 1] and what ``conditioning``
    keeps of them for the latent cache (for digit labels: ``{"labels": (n, digits)}``)."""
    batch = fetch_batch(ds, torch.arange(start, stop))
    return batch["video"], conditioning.cache_entries(batch)


@torch.no_grad()
def encode_clips(autoencoder: FrameAutoencoder, clips: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Encode clips ``(n, 1, f, h, w)`` once into scaled latents ``(n, c_z, f, h/d, w/d)`` (posterior means)."""
    autoencoder.eval()
    device = next(autoencoder.parameters()).device
    out = [autoencoder.encode(clips[i:i + batch_size].to(device)).cpu() for i in range(0, len(clips), batch_size)]
    return torch.cat(out)  # (n, c_z, f, h/d, w/d)


def encode_dataset(autoencoder: FrameAutoencoder, ds, first: torch.Tensor, first_entries: dict[str, torch.Tensor],
                   conditioning: Conditioning, batch_size: int = 256) -> dict[str, torch.Tensor]:
    """The latent cache of every clip of ``ds``: ``{"latents": (n, c_z, f, h/d, w/d), **condition entries}``. The
    clips already in memory (``first``: clips 0, 1, ..., with their ``first_entries``) are encoded as they are; the
    rest are generated batch by batch, so the pixels of a large dataset never sit in memory at once."""
    parts = [{"latents": encode_clips(autoencoder, first, batch_size), **first_entries}]
    for start in range(len(first), len(ds), batch_size):
        clips, entries = clips_of(ds, start, min(start + batch_size, len(ds)), conditioning)
        parts.append({"latents": encode_clips(autoencoder, clips, batch_size), **entries})
    return {key: torch.cat([part[key] for part in parts]) for key in parts[0]}


def read_latent_cache(path: Path, key: dict) -> dict[str, torch.Tensor] | None:
    """The cached latents (and condition entries) at ``path`` if they were made with ``key`` (the autoencoder's
    scale factor, the clips, the conditions); None if there is no cache, or it is stale or unreadable."""
    if not path.is_file():
        return None
    try:
        state = load_checkpoint(path)
    except CheckpointError:
        return None  # an older or damaged cache: encode again
    if state.get("key") != key:
        return None
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


# ---------------------------------------------------------------- the whole recipe ----


def train_pipeline(cfg: ExperimentConfig | None, run_dir: str | os.PathLike, stage: str = "both",
                   resume: str | os.PathLike | None = None, mnist_dir: str | os.PathLike | None = None,
                   steps: int | None = None, device: torch.device | str | None = None,
                   progress: str | None = None, callback: Callable | None = None,
                   log: Callable[[str], None] = print, overwrite: bool = False, lr: float | None = None,
                   minutes: float | None = None, deadline: float | None = None,
                   plan: dict[str, int] | None = None, batch_divisor: int | None = None) -> dict[str, Any]:
    """Train a latent video pipeline from nothing and write everything under ``run_dir`` (a run folder, runs.py):

        1. clips      ``cfg.num_clips`` Moving MNIST clips (MovingMNIST, split "train")
        2. autoencoder trained on their frames; scale factor = 1/std of the latents → weights/autoencoder.safetensors
        3. latents    every clip encoded once (and played backwards too, if ``reverse_augment``) → latents.pt
        4. denoiser   A. single frames (if ``cfg.image_train``) → inflate_to_video → B. clips → checkpoints/,
                      then weights/unet.safetensors (EMA)

    A fresh run refuses a folder that holds another run, unless ``overwrite`` (the old run is moved aside, never
    deleted). ``resume`` ("latest", or a checkpoint of the clip stage) and ``stage="denoiser"`` continue the run in
    ``run_dir`` with the recipe in its run.json (``cfg`` may be None; a different one is refused), in the stage where
    it stopped. ``steps`` and ``lr`` override the clip stage's step count and peak learning rate (and are
    remembered by the run). ``minutes`` (default ``cfg.time_budget_minutes``; 0 = none) is a time budget for the
    whole run: a few calibration steps measure this machine, every stage's step count is scaled to fit (keeping
    the recipe's proportions), the plan is re-sized at each stage boundary from the time actually left, and the
    clip stage is re-sized again at a few points as it runs (``PROBES``), shorter or longer, at the speed measured;
    ``deadline`` (a ``time.time()``) ends the budget at a clock time instead. A fixed ``steps`` turns it off. The
    chosen plan is remembered by the run, so a resume continues it exactly. ``plan`` (``{"autoencoder": …,
    "frames": …, "clips": …}``, as a budgeted run's run.json records it) trains exactly those step counts, with no
    budget: a budgeted run's step counts repeated on any machine. A budget that fits at most ×0.3 of the recipe's steps
    divides every stage's batch by 4 (``batch_divisor_for``: more, smaller steps in the same time);
    ``batch_divisor`` chooses that division instead, for a budget, a plan or fixed steps alike, and the run
    remembers it. An interruption (Ctrl-C) in any stage stops the
    run: ``result["interrupted"]`` names the stage, and nothing after it runs. Returns a dict with the pipeline (when the denoiser finished), the histories,
    the seconds each stage took and the paths written.
    """
    if stage not in ("autoencoder", "denoiser", "both"):
        raise ValueError(f"stage must be 'autoencoder', 'denoiser' or 'both'; got {stage!r}")
    if steps is not None and steps < 1:
        raise ValueError(f"steps must be >= 1; got {steps}")
    if lr is not None and not (lr > 0 and lr < float("inf")):
        raise ValueError(f"lr must be a positive number; got {lr}")
    run_dir = Path(run_dir)
    continuing = resume is not None or stage == "denoiser"
    if plan is not None:
        if continuing:
            raise ValueError("a resumed run keeps the step counts it started with; plan is only for a fresh run")
        if steps is not None:
            raise ValueError("plan gives every stage's step count, steps only the clip stage's; give one of them")
        if cfg is None:
            raise ValueError("a fresh run needs a recipe: pass cfg=ExperimentConfig.preset(...)")
        plan = checked_plan(plan, cfg)
    if batch_divisor is not None:
        if continuing:
            raise ValueError("a resumed run keeps the batches it started with; batch_divisor is only for a fresh run")
        if cfg is None:
            raise ValueError("a fresh run needs a recipe: pass cfg=ExperimentConfig.preset(...)")
        check_batch_divisor(batch_divisor, cfg, int(os.environ.get("WORLD_SIZE", "1")))
    # under torchrun: the first process writes every file (run folder, autoencoder, latents, weights); the others
    # wait for it, then all of them train the denoiser together (DistributedDataParallel, the global batch split)
    procs = Processes(device)
    device, leader = procs.device, procs.leader
    if not leader:
        log = _silent
    prepared: dict[str, Any] = {}

    def prepare() -> dict:
        prepared.update(_prepare(cfg, run_dir, stage, resume, mnist_dir, steps, device, progress, log, overwrite, lr,
                                 minutes, deadline, plan, batch_divisor, procs.world_size))
        return {"finished": "cfg" not in prepared, "cfg": prepared["cfg"].to_dict() if "cfg" in prepared else None,
                "train": asdict(prepared["cfg"].train) if "cfg" in prepared else None,
                "replanning": prepared.get("budget") is not None}

    shared = procs.leader_does(prepare)
    if shared["finished"]:  # stopped before the denoiser, or only the autoencoder was asked for
        return prepared["result"] if leader else {"run_dir": run_dir, "interrupted": None, "paths": {}, "seconds": {}}
    if leader:
        cfg, run, autoencoder, data, result, budget, conditioning, start = (prepared[k] for k in (
            "cfg", "run", "autoencoder", "data", "result", "budget", "conditioning", "start"))
    else:  # what the first process made, read back from the run folder
        start, budget = time.perf_counter(), None
        cfg = ExperimentConfig.from_dict(shared["cfg"])
        cfg = replace(cfg, train=TrainConfig.from_dict(shared["train"]))
        run = RunFolder(run_dir)
        autoencoder = FrameAutoencoder.load(run_dir / "weights" / AUTOENCODER_FILE, device=device)
        conditioning = conditioning_for(cfg)
        data = _played_both_ways(cfg, read_latent_cache(run_dir / "latents.pt", _cache_key(cfg, autoencoder,
                                                                                             conditioning)))
        result = {"run_dir": run_dir, "config": cfg, "seconds": {}, "paths": {}, "interrupted": None,
                  "run_id": run.run_id, "digits": run.record.get("digits")}
    latents = data["latents"]  # (n, c_z, f, h/d, w/d)
    source, weights_dir = result["digits"], run_dir / "weights"

    # 4. the denoiser: (A) single frames, then (B) clips
    seed_everything(cfg.seed)
    unet = denoiser_for(cfg)  # a UNet3D, or a TextConditionedDenoiser (U-Net + text encoder) for a text preset
    if cfg.label_embedding_std is not None and unet.label_embed is not None:
        nn.init.normal_(unet.label_embed.table.weight, std=cfg.label_embedding_std)
    schedule = cfg.noise_schedule()
    encoder_note = ""
    if cfg.text is not None:
        trained = any(p.requires_grad for p in unet.text_encoder.parameters())
        encoder_note = f" (with its text encoder, {'trained jointly' if trained else 'frozen'})"
    log(f"[4/4] denoiser: UNet3D {unet.num_parameters() / 1e6:.2f} M parameters{encoder_note}")
    histories = {}
    clip_checkpoints = latest_checkpoint(run_dir, run.run_id) is not None
    if cfg.image_train is not None and not run.done("frames"):
        if resume is not None and str(resume) != "latest":
            raise RunFolderError(f"{run_dir} stopped in its single-frame stage (A), and --resume {resume} names a "
                                 f"checkpoint of the clip stage; resume with --resume latest")
        t0 = time.perf_counter()
        n = len(latents) // (2 if cfg.reverse_augment else 1)  # the clips played forwards: their frames are all
        frames = rearrange(latents[:n], "n c f h w -> (n f) c 1 h w")  # every frame a one-frame clip
        frame_data = {"latents": frames, **{k: per_frame(v[:n], cfg.num_frames)  # each clip's condition,
                                            for k, v in data.items() if k != "latents"}}   # per frame
        log(f"      A. single frames: {cfg.image_train.steps} steps × {cfg.image_train.batch_size} of "
            f"{len(frames):,} latent frames {tuple(frames.shape[1:])}; temporal attention idle")
        set_temporal_attention_trainable(unet, False)
        image_trainer = Trainer(unet, schedule, frame_data, cfg.image_train, device=device,
                                run_dir=run_dir / "image_stage", callback=callback, run_id=run.run_id,
                                conditioning=conditioning_for(cfg, cfg.image_train.cond_drop_prob, single_frames=True))
        histories["image stage"] = image_trainer.train(resume="latest" if continuing else None)
        if image_trainer.step < cfg.image_train.steps:
            log(f"      A. interrupted at step {image_trainer.step}/{cfg.image_train.steps} (checkpoint saved)")
            result["histories"] = histories
            return _stopped(result, run, "frames", start, leader, step=image_trainer.step)
        if leader:
            run.mark("frames", done=True, steps=image_trainer.step)
        image_trainer.ema.copy_to(unet)  # carry on from the averaged weights
        set_temporal_attention_trainable(unet, True)
        inflate_to_video(unet)
        result["seconds"]["denoiser_images"] = time.perf_counter() - t0
        log(f"      A. done in {result['seconds']['denoiser_images']:.0f} s")
        if shared["replanning"]:  # every process asks, the first one answers
            took = result["seconds"]["denoiser_images"]
            clip_steps = procs.leader_does(lambda: _replan_clips(budget, run, took) if budget is not None else None)
            if clip_steps is not None:
                cfg = replace(cfg, train=replace(cfg.train, steps=clip_steps,
                                                 warmup=min(cfg.train.warmup, max(1, clip_steps // 10))))
    elif cfg.image_train is not None and not clip_checkpoints:
        # stage A finished earlier but B has no checkpoint yet: start B from A's averaged weights, inflated
        last_a = latest_checkpoint(run_dir / "image_stage", run.run_id)
        if last_a is None:
            raise RunFolderError(f"{run_dir}'s run.json says the single-frame stage is done, but its checkpoints are "
                                 f"missing from {run_dir / 'image_stage' / 'checkpoints'}; start a new run")
        unet.load_state_dict(load_checkpoint(last_a)["ema"]["model"])  # (a text model: U-Net and encoder)
        inflate_to_video(unet)
        log(f"      A. done earlier: starting the clip stage from {last_a}")
    result["config"] = cfg  # as it trains: the plan's step counts, the overrides
    t0 = time.perf_counter()
    log(f"      {'B. clips: ' if cfg.image_train is not None else ''}{cfg.train.steps} steps × "
        f"{cfg.train.batch_size} clips {tuple(latents.shape[1:])}")
    trainer = Trainer(unet, schedule, data, cfg.train, device=device, run_dir=run_dir, callback=callback,
                      conditioning=conditioning, run_id=run.run_id)
    clip_resume = resume if resume is not None and str(resume) != "latest" else ("latest" if continuing else None)
    stopped = False  # by Ctrl-C during one of the budget's stretches
    if shared["replanning"] and not continuing:  # a budget: time the clip stage as it runs, re-size it at PROBES
        t_stage = time.perf_counter()
        for fraction in PROBES:
            target = max(PROBE_STEPS, round(fraction * cfg.train.steps))
            if target >= cfg.train.steps or target <= trainer.step:
                continue
            t_chunk, chunk_start = time.perf_counter(), trainer.step
            trainer.train(resume=clip_resume, num_steps=target - trainer.step)
            clip_resume = None
            if trainer.step < target:  # Ctrl-C: the run stops below
                stopped = True
                break
            now = time.perf_counter()
            took, recent = now - t_stage, (now - t_chunk, trainer.step - chunk_start)
            steps_and_warmup = procs.leader_does(lambda: _resize_running_clips(budget, run, took, trainer.step, recent))
            if steps_and_warmup[0] != cfg.train.steps:
                cfg = replace(cfg, train=replace(cfg.train, steps=steps_and_warmup[0], warmup=steps_and_warmup[1]))
                trainer.retarget(cfg.train)
                result["config"] = cfg
    if not stopped:
        trainer.train(resume=clip_resume)
    histories["video stage" if cfg.image_train is not None else "loss"] = trainer.history
    result["history"] = trainer.history
    result["histories"] = histories
    result["seconds"]["denoiser"] = time.perf_counter() - t0
    if trainer.step < cfg.train.steps:
        log(f"      B. interrupted at step {trainer.step}/{cfg.train.steps} (checkpoint saved)")
        return _stopped(result, run, "clips", start, leader, step=trainer.step)
    result["seconds"]["total"] = time.perf_counter() - start
    if not leader:  # the first process writes the weights
        return result
    run.mark("clips", done=True, steps=trainer.step)
    pipe = LatentVideoPipeline(autoencoder, trainer.ema.model, schedule, cfg, device=device,
                               prediction=cfg.train.prediction, conditioning=conditioning)
    meta = {"digits": source, "train_steps": trainer.step, "run_id": run.run_id,
            "image_train_steps": cfg.image_train.steps if cfg.image_train is not None else 0,
            "train_seconds": {k: round(v, 1) for k, v in result["seconds"].items()}}
    result["paths"]["unet"] = pipe.save_pretrained(weights_dir, metadata=meta)[1]
    result["pipeline"] = pipe
    log(f"      trained to step {trainer.step} in {result['seconds']['denoiser']:.0f} s → {result['paths']['unet']}")
    return result



def _prepare(cfg: ExperimentConfig | None, run_dir: Path, stage: str, resume, mnist_dir, steps: int | None,
             device: torch.device, progress: str | None, log: Callable[[str], None], overwrite: bool,
             lr: float | None, minutes: float | None, deadline: float | None,
             plan: dict[str, int] | None = None, batch_divisor: int | None = None,
             world_size: int = 1) -> dict[str, Any]:
    """Steps 1-3 of ``train_pipeline`` (on the first process only, when there are several): claim the run folder,
    make the clips, plan the time budget, train the autoencoder and cache the latents. Returns what the denoiser
    needs, or ``{"result": ...}`` when the run stops here."""
    run = RunFolder(run_dir)
    cfg = _claim_run_folder(run, cfg, stage, resume, overwrite, log)
    removed = run.clean_temporary_files()
    if removed:
        log(f"removed {len(removed)} temporary file(s) left by an interrupted save: {', '.join(p.name for p in removed)}")
    # overrides (the clip stage's steps and lr, every stage's plan), remembered by the run so a resume keeps them
    overrides = {**run.record.get("overrides", {}), **({"steps": steps} if steps is not None else {}),
                 **({"lr": lr} if lr is not None else {}), **({"plan": plan} if plan is not None else {}),
                 **({"batch_divisor": batch_divisor} if batch_divisor is not None else {})}
    run.set(overrides=overrides)
    weights_dir = run_dir / "weights"
    weights_dir.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"run_dir": run_dir, "config": cfg, "seconds": {}, "paths": {}, "interrupted": None,
                              "run_id": run.run_id}
    start = time.perf_counter()

    # 1. the clips (the first ones in memory, for the autoencoder; the rest are generated when encoded)
    t0 = time.perf_counter()
    ds = training_dataset(cfg, mnist_dir)
    result["digits"] = source = ds.source
    if run.record.get("digits") is None:
        run.set(digits=source)
    elif run.record["digits"] != source:
        raise RunFolderError(f"{run_dir} trained on digits from {run.record['digits']!r}, but the digits now come from "
                             f"{source!r}; give it the same digits (VDIFF_MNIST_DIR or --mnist-dir as before), or start "
                             f"a new run with another --name")
    conditioning = conditioning_for(cfg)  # what the clips are conditioned on: labels, or caption ids
    bytes_per_clip = 4 * cfg.num_frames * cfg.image_size ** 2
    clips, entries = clips_of(ds, 0, min(len(ds), max(256, MAX_BYTES_IN_MEMORY // bytes_per_clip)), conditioning)
    result["seconds"]["data"] = time.perf_counter() - t0
    log(f"[1/4] data: {len(ds):,} clips {tuple(clips.shape[1:])} ({len(clips):,} in memory) in "
        f"{result['seconds']['data']:.1f} s; digits: {source}")

    # the time budget: measure this machine, then size every stage to fit (a plan the run remembers)
    budget = None
    if "plan" not in overrides and steps is None and "steps" not in overrides:
        minutes = cfg.time_budget_minutes if minutes is None else (minutes or None)
        seconds = (deadline - time.time()) if deadline is not None else (
            minutes * 60 - (time.perf_counter() - start) if minutes else None)
        if seconds is not None:
            budget = _Budget(cfg, seconds, clips, device, conditioning, len(ds), result["seconds"]["data"], log,
                             overrides.get("batch_divisor"), world_size)
            # what the budget scaled, and what a recipe step costs against a planned one (budget_note compares)
            result.update(recipe_steps=budget.recipe, recipe_batches=recipe_batches(cfg), step_cost=budget.step_cost)
            overrides["plan"] = budget.plan
            if budget.divisor != 1:
                overrides["batch_divisor"] = budget.divisor
            run.set(overrides=overrides)
    if overrides.get("batch_divisor", 1) != 1:
        cfg = with_batches_divided(cfg, overrides["batch_divisor"])
    if "plan" in overrides:
        cfg = with_steps(cfg, overrides["plan"])
    train_cfg = cfg.train
    if "steps" in overrides:
        train_cfg = replace(train_cfg, steps=overrides["steps"], warmup=min(train_cfg.warmup,
                                                                            max(1, overrides["steps"] // 10)))
    if "lr" in overrides:
        train_cfg = replace(train_cfg, lr=overrides["lr"])
    image_cfg = cfg.image_train
    if progress is not None:  # both stages show their progress the same way
        train_cfg = replace(train_cfg, progress=progress)
        image_cfg = replace(image_cfg, progress=progress) if image_cfg is not None else None
    cfg = replace(cfg, train=train_cfg, image_train=image_cfg)
    result["config"] = cfg

    # 2. the autoencoder, trained on single frames of those clips (it keeps no checkpoints: ~1 min on a CPU)
    ae_path = weights_dir / AUTOENCODER_FILE
    if run.done("autoencoder") and ae_path.is_file():
        autoencoder = FrameAutoencoder.load(ae_path, device=device)
        log(f"[2/4] autoencoder: loaded {ae_path} (scale factor {float(autoencoder.scale_factor):.3f})")
    else:
        t0 = time.perf_counter()
        seed_everything(cfg.seed)
        autoencoder = FrameAutoencoder(cfg.autoencoder)
        ae_progress = cfg.train.progress == "bar" or (cfg.train.progress == "auto" and (
            sys.stderr.isatty() or "ipykernel" in sys.modules))  # a bar where one can be seen, as the Trainer does
        try:
            result["autoencoder_history"] = train_autoencoder(autoencoder, clips, device=device, seed=cfg.seed,
                                                              progress=ae_progress, log_every=50)
        except KeyboardInterrupt:
            log("[2/4] autoencoder: interrupted; it keeps no checkpoints, so a resume trains it again from its start")
            return {"result": _stopped(result, run, "autoencoder", start)}
        scale = estimate_scale_factor(autoencoder, clips[:256])
        result["seconds"]["autoencoder"] = time.perf_counter() - t0
        last = result["autoencoder_history"][-1]
        autoencoder.save(ae_path, extra_metadata={"experiment": cfg.to_dict(), "digits": source, "run_id": run.run_id,
                                                   "train_seconds": round(result["seconds"]["autoencoder"], 1)})
        run.mark("autoencoder", done=True, steps=cfg.autoencoder.train_steps, psnr=round(last["psnr"], 2),
                 seconds=round(result["seconds"]["autoencoder"], 1))
        log(f"[2/4] autoencoder: {cfg.autoencoder.train_steps} steps in {result['seconds']['autoencoder']:.0f} s, "
            f"reconstruction PSNR {last['psnr']:.1f} dB, scale factor {scale:.3f} → {ae_path}")
    result["paths"]["autoencoder"] = ae_path
    if stage == "autoencoder":
        result["seconds"]["total"] = time.perf_counter() - start
        return {"result": result}

    # 3. latents: every clip encoded once (a resumed run reuses the cache written for its autoencoder)
    t0 = time.perf_counter()
    cache = run_dir / "latents.pt"
    key = _cache_key(cfg, autoencoder, conditioning)
    data = read_latent_cache(cache, key)
    cached = data is not None
    if not cached:
        try:
            data = encode_dataset(autoencoder, ds, clips, entries, conditioning)  # {"latents": (n, c_z, f, h/d, w/d), ..}
        except KeyboardInterrupt:
            log("[3/4] latents: interrupted; a resume encodes them again")
            return {"result": _stopped(result, run, "latents", start)}
        save_checkpoint(cache, {**data, "key": key})  # atomic
    del clips
    data = _played_both_ways(cfg, data)
    latents = data["latents"]  # (n, c_z, f, h/d, w/d)
    result["seconds"]["encode"] = time.perf_counter() - t0
    log(f"[3/4] latents: {tuple(latents.shape)} (std {latents.std():.2f}) in {result['seconds']['encode']:.1f} s"
        + (" (cached)" if cached else ""))

    if budget is not None:  # the autoencoder and the latents took what they took: re-size what is left
        overrides["plan"] = budget.replan(("frames", "clips"), result["seconds"].get("autoencoder"), "autoencoder")
        run.set(overrides=overrides)
        cfg = with_steps(cfg, overrides["plan"])
    return {"cfg": cfg, "run": run, "autoencoder": autoencoder, "data": data, "result": result, "budget": budget,
            "conditioning": conditioning, "start": start}


def _claim_run_folder(run: RunFolder, cfg: ExperimentConfig | None, stage: str, resume, overwrite: bool,
                      log: Callable[[str], None]) -> ExperimentConfig:
    """Make sure ``run`` is the folder of the run we are about to train, and return that run's recipe."""
    name = run.path.name
    if resume is None and stage != "denoiser":  # a fresh run (all stages, or the autoencoder first)
        if cfg is None:
            raise ValueError("a fresh run needs a recipe: pass cfg=ExperimentConfig.preset(...)")
        if run.holds_a_run():
            if not overwrite:
                raise RunFolderError(
                    f"{run.path} already holds a run ({run.describe()}); continue it with --resume latest, "
                    f"choose another --name, or pass --overwrite to move it aside (nothing is deleted)")
            moved = run.move_aside()
            log(f"moved the earlier run in {run.path} aside to {moved} (nothing was deleted)")
        run.create(cfg.to_dict())
        return cfg
    # continuing the run in this folder: --resume, or --stage denoiser after --stage autoencoder
    if not run.record:
        if run.holds_a_run():
            raise RunFolderError(f"{run.path} holds files of a run but no run.json (made by an older version?), so its "
                                 f"recipe is unknown; start a new run with another --name")
        what = "--resume" if resume is not None else "--stage denoiser"
        raise RunFolderError(f"{what}: there is no run in {run.path} to continue; start one with "
                             f"`python -m vdiff_edu train --preset cpu --name {name}`")
    recorded = ExperimentConfig.from_dict(run.record["recipe"])
    if cfg is not None and cfg.to_dict() != recorded.to_dict():
        raise RunFolderError(f"{run.path} was started with preset {recorded.name!r}, which differs from the recipe "
                             f"given ({cfg.name!r}); leave out --preset to continue it with its own recipe")
    if stage == "autoencoder" and run.done("autoencoder"):
        raise RunFolderError(f"{run.path} already has a trained autoencoder, and its denoiser learns that "
                             f"autoencoder's latents; retraining it would leave the rest behind. Start a new run "
                             f"(another --name), or pass --overwrite without --resume to move this run aside")
    if stage == "denoiser" and resume is None:
        if not run.done("autoencoder"):
            raise RunFolderError(f"--stage denoiser needs {name}'s autoencoder, which is not trained yet; train it first "
                                 f"with `python -m vdiff_edu train --name {name} --stage autoencoder --resume latest`")
        if run.done("frames") or latest_checkpoint(run.path, run.run_id) is not None or \
                latest_checkpoint(run.path / "image_stage", run.run_id) is not None:
            raise RunFolderError(f"the denoiser of {run.path} has already started; continue it with --resume latest")
    log(f"continuing the run in {run.path}: {run.describe()}; its digits: {run.record.get('digits')}")
    return recorded


def _stopped(result: dict, run: RunFolder, stage: str, start: float, leader: bool = True, **info) -> dict:
    """The run stopped (interrupted) in ``stage``: record it, and return what was done."""
    if leader:
        run.mark(stage, done=False, **info)
    result["interrupted"] = stage
    result["seconds"]["total"] = time.perf_counter() - start
    return result


def _cache_key(cfg: ExperimentConfig, autoencoder: FrameAutoencoder, conditioning: Conditioning) -> dict:
    """What the latent cache was made from: a cache with another key is stale and encoded again."""
    return {"scale_factor": float(autoencoder.scale_factor), "num_clips": cfg.num_clips, "seed": cfg.seed,
            "conditions": conditioning.names}


def _played_both_ways(cfg: ExperimentConfig, data: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A clip played backwards is another valid clip (``reverse_augment``): twice the data for free."""
    if not cfg.reverse_augment:
        return data
    return {k: torch.cat([v, v.flip(2) if k == "latents" else v]) for k, v in data.items()}


def _replan_clips(budget: "_Budget", run: RunFolder, took: float) -> int:
    overrides = run.record.get("overrides", {})
    overrides["plan"] = budget.replan(("clips",), took, "frames")
    run.set(overrides=overrides)
    return overrides["plan"]["clips"]


def _resize_running_clips(budget: "_Budget", run: RunFolder, took: float, done: int,
                          recent: tuple[float, int] | None = None) -> tuple[int, int]:
    """Re-size the running clip stage and remember the plan; returns its steps and warm-up, the warm-up sized as
    ``with_steps`` sizes it when the run is resumed from its plan."""
    overrides = run.record.get("overrides", {})
    overrides["plan"] = budget.resize_running("clips", took, done, recent)
    run.set(overrides=overrides)
    steps = overrides["plan"]["clips"]
    return steps, with_steps(budget.cfg, overrides["plan"]).train.warmup


def _silent(_: str) -> None:
    pass


class Processes:
    """The processes of one run: one, or N under ``torchrun --nproc_per_node=N``. The first (rank 0) is the leader:
    it alone writes files; ``leader_does(fn)`` runs ``fn`` there and hands every process its result (or error)."""

    def __init__(self, device: torch.device | str | None = None):
        self.rank, self.world_size, self.device = setup_distributed(device)

    @property
    def leader(self) -> bool:
        return self.rank == 0

    def leader_does(self, fn: Callable[[], Any]) -> Any:
        if self.world_size == 1:
            return fn()
        box: list[Any] = [None, None]
        if self.leader:
            try:
                box = [fn(), None]
            except Exception as e:  # every process must hear about it, or the others wait forever
                box = [None, e]
        dist.broadcast_object_list(box, src=0)
        if box[1] is not None:
            raise box[1]
        return box[0]


# ---------------------------------------------------------------- from an image model to a video model ----


def set_temporal_attention_trainable(unet: nn.Module, trainable: bool) -> None:
    """Freeze (or unfreeze) every ``TemporalAttention``. Frozen at its initial state its output projection is zero,
    so it adds nothing: on single frames the U-Net is then a plain image denoiser."""
    for m in unet.modules():
        if isinstance(m, TemporalAttention):
            m.requires_grad_(trainable)


@torch.no_grad()
def inflate_to_video(unet: nn.Module) -> nn.Module:
    """Turn a U-Net trained on single frames into one that treats every frame of a clip exactly alike.

    On one frame a temporal convolution only ever uses its centre tap (its neighbours are zero padding), so the
    other taps were never trained. Setting them to zero makes the network compute, on each frame of a clip, what
    it computed on single frames; the temporal layers then learn motion from there (the "inflation" of an image
    model into a video model: Ho et al. 2022, Video Diffusion Models; Blattmann et al. 2023, Video LDM).
    """
    for m in unet.modules():
        if isinstance(m, TemporalConv):
            w = m.conv.weight  # (out, in, k, 1): taps along the frame axis
        elif isinstance(m, Full3dConv):
            w = m.conv.weight  # (out, in, k_f, k_h, k_w)
        else:
            continue
        centre = w.shape[2] // 2
        w[:, :, :centre] = 0
        w[:, :, centre + 1:] = 0
    return unet


# ---------------------------------------------------------------- a time budget ----

STAGE_NAMES = ("autoencoder", "frames", "clips")  # the stages whose step counts a budget sizes
MARGIN = 0.04  # keep 4 % of the budget, and MARGIN_SECONDS, in hand: machines are noisy and rates drift
MARGIN_SECONDS = 10.0
PROBE_STEPS = 20  # a budgeted clip stage is first re-sized after its first tenth (at least this many steps) ...
PROBES = (0.1, 0.3, 0.5, 0.7, 0.85)  # ... and again after these shares of its steps: the machine's speed drifts


def recipe_steps(cfg: ExperimentConfig) -> dict[str, int]:
    """The step count of each trainable stage, as the recipe writes them."""
    steps = {"autoencoder": cfg.autoencoder.train_steps, "clips": cfg.train.steps}
    if cfg.image_train is not None:
        steps["frames"] = cfg.image_train.steps
    return steps


def recipe_batches(cfg: ExperimentConfig) -> dict[str, int]:
    """The batch size of each trainable stage, as the recipe writes them (frames, frames, clips)."""
    frames = {"frames": cfg.image_train.batch_size} if cfg.image_train is not None else {}
    return {"autoencoder": cfg.autoencoder.batch_size, **frames, "clips": cfg.train.batch_size}


def checked_plan(plan: dict[str, int], cfg: ExperimentConfig) -> dict[str, int]:
    """``plan`` if it gives a positive step count to each of ``cfg``'s stages and to nothing else; else a
    ValueError that names what was expected."""
    expected = [k for k in STAGE_NAMES if k in recipe_steps(cfg)]
    if sorted(plan) != sorted(expected):
        raise ValueError(f"a plan for the {cfg.name} recipe gives the step counts of {', '.join(expected)}; got "
                         f"{', '.join(plan) or 'none'}")
    for k in expected:
        if not isinstance(plan[k], int) or isinstance(plan[k], bool) or plan[k] < 1:
            raise ValueError(f"a plan's step counts are whole numbers >= 1; got {k}={plan[k]!r}")
    return {k: plan[k] for k in expected}


def plan_steps(steps: dict[str, int], seconds_per_step: dict[str, float], seconds_left: float) -> dict[str, int]:
    """Scale every stage's step count by one factor so that they all fit in ``seconds_left``:

        scale = seconds_left / Σ_stage steps_stage · seconds_per_step_stage,   steps_stage ← round(scale · steps_stage)

    keeping the recipe's proportions (how much of the time goes to what digits look like, and how much to how they
    move). At least one step per stage."""
    needed = sum(steps[k] * seconds_per_step[k] for k in steps)
    if seconds_left <= 0 or needed <= 0:
        raise ValueError(f"the time budget is already spent ({seconds_left:.0f} s left) before training; give more "
                         f"minutes (--minutes), or --minutes 0 for the recipe's fixed step counts")
    scale = seconds_left / needed
    return {k: max(1, round(scale * n)) for k, n in steps.items()}


def _seconds_per_call(fn: Callable[[], Any], warmup: int = 1, repeats: int = 3) -> float:
    """The fastest of ``repeats`` timed calls, after ``warmup`` untimed ones: noise on a busy machine only ever adds
    time, and a stage that then runs slower than this is re-sized as it runs (``_Budget.resize_running``)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def calibrate(cfg: ExperimentConfig, clips: torch.Tensor, device: torch.device,
              conditioning: Conditioning) -> dict[str, float]:
    """Seconds per step of every stage on this machine, from a few steps of throwaway copies of the networks
    (a few seconds in all); also seconds per clip to encode, and to sample one clip at the end."""
    schedule = cfg.noise_schedule()
    ae = FrameAutoencoder(cfg.autoencoder)
    few = clips[: max(1, min(len(clips), cfg.autoencoder.batch_size))]
    # one short call first (kernels, threads and caches warm up), then three timed ones of two steps; each call's
    # fixed cost is counted in, which errs on the safe side
    train_autoencoder(ae, few, steps=1, device=device, progress=False, log_every=10**9)
    rates = {}
    rates["autoencoder"] = _seconds_per_call(lambda: train_autoencoder(ae, few, steps=2, device=device, progress=False,
                                                                       log_every=10**9), warmup=0, repeats=3) / 2
    batch = clips[:16].to(device)
    with torch.no_grad():
        rates["encode_clip"] = _seconds_per_call(lambda: ae.encode(batch), repeats=2) / len(batch)
    unet = denoiser_for(cfg).to(device)
    optimizer, ema = adamw_with_decay_groups(unet, 1e-4), EMA(unet)
    c, f, h, w = cfg.latent_shape
    stages = [("clips", cfg.train, f)] + ([("frames", cfg.image_train, 1)] if cfg.image_train is not None else [])
    for name, train_cfg, frames in stages:
        x0 = torch.randn(train_cfg.batch_size, c, frames, h, w, device=device)
        batch_cond = _example_condition(conditioning, x0, cfg, device)
        rates[name] = _seconds_per_call(lambda: training_step(unet, schedule, optimizer, ema, x0, batch_cond,
                                                              train_cfg.prediction, train_cfg.min_snr_gamma,
                                                              train_cfg.grad_clip, autocast=device.type == "cuda"))
    n = 20  # what `train` and `demo` sample at the end, each with guidance: a forward pass over 2n clips per step
    x = torch.randn(2 * n, c, f, h, w, device=device)
    t = torch.full((2 * n,), schedule.num_steps - 1, device=device)
    sample_cond = _example_condition(conditioning, x, cfg, device)  # made once: only the forward pass is timed
    with torch.no_grad():
        rates["sample_clip"] = _seconds_per_call(lambda: unet(x, t, sample_cond), repeats=1)
    rates["sample_clip"] *= cfg.sample_steps / n
    return rates


def _example_condition(conditioning: Conditioning, x0: torch.Tensor, cfg: ExperimentConfig, device) -> dict | None:
    """A condition of every kind the model reads, for the clips ``x0 (b, c, f, h, w)``: what a step costs (labels,
    a long caption, the clips themselves as given frames, an empty silhouette as structure, a black reference
    image that is read)."""
    if not conditioning:
        return None
    b, f = x0.shape[0], x0.shape[2]
    size = cfg.image_size
    longest = "the bold digit 8 moves left and right, heading down and left"  # a long caption: a fair cost
    return conditioning.from_batch({"labels": torch.zeros(b, cfg.unet.num_label_slots, dtype=torch.long),
                                    "caption": [longest] * b, "latents": x0,
                                    "structure_ink": torch.zeros(b, 1, f, size, size, dtype=torch.uint8),
                                    "reference": torch.full((b, 1, size, size), -1.0)}, device)


def _rates_line(rates: dict[str, float], cfg: ExperimentConfig) -> str:
    parts = [f"autoencoder {cfg.autoencoder.batch_size / rates['autoencoder']:,.0f} frames/s"]
    if "frames" in rates:
        parts.append(f"single frames {cfg.image_train.batch_size / rates['frames']:,.0f}/s")
    parts.append(f"clips {cfg.train.batch_size / rates['clips']:,.0f}/s")
    return ", ".join(parts)


def with_steps(cfg: ExperimentConfig, steps: dict[str, int]) -> ExperimentConfig:
    """``cfg`` with the stages' step counts replaced (warm-up kept below a tenth of a stage)."""
    def stage(train_cfg: TrainConfig, n: int) -> TrainConfig:
        return replace(train_cfg, steps=n, warmup=min(train_cfg.warmup, max(1, n // 10)))

    cfg = replace(cfg, autoencoder=replace(cfg.autoencoder, train_steps=steps["autoencoder"]),
                  train=stage(cfg.train, steps["clips"]))
    if cfg.image_train is not None and "frames" in steps:
        cfg = replace(cfg, image_train=stage(cfg.image_train, steps["frames"]))
    return cfg


def with_batches_divided(cfg: ExperimentConfig, divisor: int) -> ExperimentConfig:
    """``cfg`` with every stage's batch (autoencoder, single frames, clips) divided by ``divisor``: the same samples
    in ``divisor`` times the optimizer steps (measured on a slow machine's short budget: docs/benchmarks.md, "A slow
    machine's budget")."""
    cfg = replace(cfg, autoencoder=replace(cfg.autoencoder, batch_size=cfg.autoencoder.batch_size // divisor),
                  train=replace(cfg.train, batch_size=cfg.train.batch_size // divisor))
    if cfg.image_train is not None:
        cfg = replace(cfg, image_train=replace(cfg.image_train, batch_size=cfg.image_train.batch_size // divisor))
    return cfg


SHORT_BUDGET = 0.75  # a budgeted run that saw under this share of the recipe's clips says so at its end
STAGE_SECONDS = {"autoencoder": "autoencoder", "frames": "denoiser_images", "clips": "denoiser"}  # result["seconds"]


def budget_note(result: dict) -> str | None:
    """For the end of a budgeted run (``train_pipeline``'s result) that saw well under its recipe's clips: what
    share it got, what that means for the samples, and how long the recipe's own step counts would take here,
    from the stages' own timings (seconds × recipe steps / trained steps × what a recipe step costs against a
    trained one, 1 unless the budget divided the batches). None for any other run."""
    recipe, secs = result.get("recipe_steps"), result.get("seconds", {})
    if not recipe or "total" not in secs:  # no budget, or a run that stopped early
        return None
    trained, batches = recipe_steps(result["config"]), recipe_batches(result["config"])
    recipe_batch = result.get("recipe_batches") or batches
    step_cost = result.get("step_cost") or {}
    share = trained["clips"] * batches["clips"] / (recipe["clips"] * recipe_batch["clips"])  # of the clips seen
    if share >= SHORT_BUDGET:
        return None
    whole = secs["total"] + sum(secs[STAGE_SECONDS[k]] * (recipe[k] / trained[k] * step_cost.get(k, 1.0) - 1)
                                for k in recipe if STAGE_SECONDS[k] in secs)
    name = result["config"].name
    if batches["clips"] == recipe_batch["clips"]:
        got = (f"this machine fit {trained['clips']:,} of the recipe's {recipe['clips']:,} clip steps into the budget "
               f"(×{share:.2f})")
    else:  # the budget divided the batches
        got = (f"this machine fit {trained['clips']:,} clip steps × {batches['clips']} clips into the budget, where the "
               f"recipe takes {recipe['clips']:,} × {recipe_batch['clips']} (×{share:.2f} of its clips, in smaller "
               f"batches: more steps learn more from a short budget)")
    return (f"{got}, so expect blurred digits that may change as they move (docs/benchmarks.md, \"What a "
            f"budget buys\", shows what each share draws). The recipe's own steps would take about "
            f"{whole / 60:.0f} min here: python -m vdiff_edu train --preset {name} --minutes 0 (or a longer budget, "
            f"--minutes {10 * math.ceil((whole * (1 + MARGIN) + MARGIN_SECONDS) / 600)})")


BATCH_DIVISORS = (1, 2, 4)  # what a run's batches may be divided by (`train --batch-divisor`)
SMALL_BATCH_SCALE = 0.3  # a budget that fits at most this share of the recipe's steps trains quarter batches


def check_batch_divisor(divisor: int, cfg: ExperimentConfig, world_size: int = 1) -> int:
    """``divisor`` if it is one of BATCH_DIVISORS and divides every stage's batch (the clip batch still splitting
    evenly over ``world_size`` processes); else a ValueError that says what would."""
    batches = recipe_batches(cfg)
    if isinstance(divisor, bool) or divisor not in BATCH_DIVISORS:
        raise ValueError(f"the batches can be divided by {', '.join(map(str, BATCH_DIVISORS))}; got {divisor!r}")
    uneven = [f"{k} {b}" for k, b in batches.items() if b % divisor]
    if uneven or (batches["clips"] // divisor) % world_size:
        raise ValueError(f"the {cfg.name} recipe's batches ({', '.join(f'{k} {b}' for k, b in batches.items())}) "
                         f"do not divide by {divisor}" + (f" ({', '.join(uneven)})" if uneven else
                                                          f" into clip batches that split over {world_size} "
                                                          f"processes") + "; give a smaller divisor")
    return divisor


def batch_divisor_for(scale: float, cfg: ExperimentConfig, world_size: int = 1) -> int:
    """What a budget that fits ×``scale`` of the recipe's steps divides every batch by: 4 (or 2, where the recipe's
    batches do not divide by 4) when ``scale ≤ SMALL_BATCH_SCALE``, else 1. Where so few steps fit, the number of
    steps limits learning, not the batch, and quarter batches buy about three times the steps in the same time. Measured on two 2-core
    machines (docs/benchmarks.md, "A short budget's batches"): at ×0.18 quarter batches drew the digit asked for
    in 0.66 of clips against 0.36, at ×0.29 in 0.94 against 0.72. Where ×0.47 fitted, half batches did worse
    (0.93 against 1.00), so above the threshold the recipe's batches stay."""
    if scale > SMALL_BATCH_SCALE:
        return 1
    for k in (4, 2):
        try:
            return check_batch_divisor(k, cfg, world_size)
        except ValueError:
            continue
    return 1


class _Budget:
    """The running plan of a time-budgeted run: calibrates once (twice when a short budget divides the batches:
    ``batch_divisor_for``), re-sizes the stages not yet started at each stage boundary, and the running clip stage
    at a few points along it."""

    def __init__(self, cfg: ExperimentConfig, seconds: float, clips, device, conditioning, num_clips: int,
                 data_seconds: float, log: Callable[[str], None], batch_divisor: int | None = None,
                 world_size: int = 1):
        self.log, self.recipe = log, recipe_steps(cfg)
        self.end = time.perf_counter() + seconds  # when everything, the final samples included, must be done
        self.margin = MARGIN * seconds + MARGIN_SECONDS
        t0 = time.perf_counter()
        self.rates = calibrate(cfg, clips, device, conditioning)
        generate = data_seconds / max(1, len(clips)) * (num_clips - len(clips))  # the clips not yet made
        self.after = self.rates["sample_clip"] * 20  # the samples `train` and `demo` draw at the end
        fixed = self.rates["encode_clip"] * num_clips + generate
        left = self.end - time.perf_counter() - fixed - self.after - self.margin
        need = sum(self.recipe[k] * self.rates[k] for k in self.recipe)
        order = [k for k in STAGE_NAMES if k in self.recipe]
        said = (f"      budget {seconds / 60:.1f} min: {_rates_line(self.rates, cfg)}; the recipe's "
                f"{' + '.join(f'{self.recipe[k]:,}' for k in order)} steps would take {need / 60:.1f} min")
        # a budget far shorter than the recipe: smaller batches in more steps (the same time, more learning)
        fits = left / need  # the share of the recipe's steps that fits at its batches
        self.divisor = batch_divisor if batch_divisor is not None else batch_divisor_for(fits, cfg, world_size)
        self.step_cost = {k: 1.0 for k in self.recipe}  # seconds of a recipe step / seconds of a planned step
        if self.divisor != 1:
            recipe_rates, cfg = self.rates, with_batches_divided(cfg, self.divisor)
            self.rates = {**recipe_rates, **calibrate(cfg, clips, device, conditioning)}
            self.step_cost = {k: recipe_rates[k] / self.rates[k] for k in self.recipe}
            left = self.end - time.perf_counter() - fixed - self.after - self.margin
            why = "" if batch_divisor is not None else f" (×{fits:.2f} of them fit: too few to learn well)"
            said += (f"{why}; every batch divided by {self.divisor} "
                     f"({' / '.join(str(recipe_batches(cfg)[k]) for k in order)}): {_rates_line(self.rates, cfg)}, "
                     f"{sum(self.recipe[k] * self.rates[k] for k in self.recipe) / 60:.1f} min for the recipe's steps")
        self.plan = plan_steps(self.recipe, self.rates, left)
        scale = self.plan["clips"] / self.recipe["clips"]
        log(f"{said}, so every stage is scaled ×{scale:.2f}: {' + '.join(f'{self.plan[k]:,}' for k in order)} steps "
            f"({', '.join(order)}; calibrated in {time.perf_counter() - t0:.1f} s)")
        self.cfg = cfg  # as it trains: the batches divided, if they are

    def replan(self, stages: tuple[str, ...], took: float | None, finished: str) -> dict[str, int]:
        """After ``finished`` took ``took`` seconds: correct the rates by how far off that stage's estimate was,
        and re-size ``stages`` to the time really left."""
        stages = tuple(k for k in stages if k in self.recipe)
        if took is not None and self.plan.get(finished):
            drift = took / (self.plan[finished] * self.rates[finished])  # > 1: this machine is slower than measured
            # only ever slow the estimates down (at most ×4): a stage that ran faster than calibrated says little
            # about the next one (measured: single frames ran 20 % fast, then clips ran at the calibrated rate,
            # and `make demo` overran its 10 minutes by 8 s when the clip stage was planned 20 % fast)
            drift = min(4.0, max(1.0, drift))
            for k in stages:
                self.rates[k] *= drift
        left = self.end - time.perf_counter() - self.after - self.margin
        new = plan_steps({k: self.recipe[k] for k in stages}, self.rates, left)
        self.plan = {**self.plan, **new}
        if stages == ("clips",):
            rate = self.cfg.train.batch_size / self.rates["clips"]
            self.log(f"      budget: at {rate:,.0f} clips/s, {new['clips']:,} clip steps fit in the remaining "
                     f"{left / 60:.1f} min")
        else:
            self.log(f"      budget: {left / 60:.1f} min left for {', '.join(stages)}: "
                     f"{' + '.join(f'{new[k]:,}' for k in stages)} steps")
        return self.plan

    def resize_running(self, stage: str, took: float, done: int,
                       recent: tuple[float, int] | None = None) -> dict[str, int]:
        """``stage`` has run ``done`` steps in ``took`` seconds (the last ``recent = (seconds, steps)`` of them most
        recently): re-size its total to what fits in the time left, at the slower of the two rates, shorter or
        longer than planned. Measured: a 20-minute budget's clip stage ran at 72 clips/s where 93 were planned
        and overran by 2.3 min (before this re-sizing); a 10-minute one calibrated at 53 clips/s in a slow moment
        and ended after 6.0 min (before it could lengthen)."""
        rate = took / max(1, done)  # seconds per step, as it ran (its first steps' start-up cost included)
        if recent is not None and recent[1] > 0:
            rate = max(rate, recent[0] / recent[1])  # a stage that slows down: the recent rate rules
        planned_rate, planned = self.rates[stage], self.plan[stage]
        self.rates[stage] = rate
        left = self.end - time.perf_counter() - self.after - self.margin
        total = max(done + 1, done + max(0, math.floor(left / rate)))
        if abs(total - planned) > 0.02 * planned:  # say so when the plan moves by more than 2 %
            batch = self.cfg.train.batch_size
            self.log(f"      budget: the clip stage runs at {batch / rate:,.0f} clips/s, not the {batch / planned_rate:,.0f} "
                     f"planned: {total:,} clip steps in all fit in the remaining {left / 60:.1f} min, not "
                     f"{planned:,}")
        self.plan = {**self.plan, stage: total}
        return self.plan


# ---------------------------------------------------------------- one call, for any data ----


def train_denoiser(data, cfg: TrainConfig | None = None, model: nn.Module | None = None, schedule=None,
                   device: torch.device | str | None = None, run_dir: str | os.PathLike | None = None,
                   resume: str | os.PathLike | None = None, callback: Callable | None = None) -> Trainer:
    """Train a denoiser on ``data`` and return the Trainer (``trainer.ema.model`` is the model to sample from,
    ``trainer.history`` the curves). Without ``model``/``schedule``/``cfg`` it builds the current preset's
    U-Net (``ExperimentConfig.preset(...).unet``, its channels and label slots taken from the data), a cosine
    ``NoiseSchedule`` and the preset's clip-stage ``TrainConfig``."""
    preset = ExperimentConfig.preset(default_preset())
    cfg = cfg if cfg is not None else preset.train
    if schedule is None:
        schedule = NoiseSchedule()
    if model is None:
        first = fetch_batch(data, torch.tensor([0]))
        key = cfg.data_key or next(k for k in ("latents", "video", "x") if k in first)
        channels = first[key].shape[1]  # (1, c, f, h, w)
        slots = first["labels"].shape[1] if "labels" in first else 0  # digits per clip (0: unconditional)
        model = UNet3D(replace(preset.unet, in_channels=channels, out_channels=channels, num_label_slots=slots))
    trainer = Trainer(model, schedule, data, cfg, device=device, run_dir=run_dir, callback=callback)
    trainer.train(resume=resume)
    return trainer
