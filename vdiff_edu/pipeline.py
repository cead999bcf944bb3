"""LatentVideoPipeline: from digit labels to moving digits, through the latent space.

The generation function of a latent video model, step by step (the shape of the one an article on Runway's
models sketches, and of the diffusers pipelines):

    labels ─encode_condition─► cond ─┐
    seed ─initial_noise─► z_T ───────┴─denoise (U-Net + scheduler loop)─► z_0 ─decode─► video
           (n, c_z, f, h/d, w/d)                                                      (n, 1, f, h, w)

    pipe = LatentVideoPipeline.from_pretrained("cpu")          # the weights shipped in vdiff_edu/weights/
    video = pipe(labels=[3, 7], seed=0)                        # (2, 1, 8, 32, 32) in [-1, 1]

    cond = pipe.encode_condition([3, 7])                       # the same, one step at a time
    z_T = pipe.initial_noise(2, generator=torch.Generator().manual_seed(0))
    z_0 = pipe.denoise(z_T, cond, steps=50, guidance_scale=3.0)
    video = pipe.decode(z_0)

The sampling loop itself lives in ``sampling.py``; this module only composes the pieces, so each step can be
called (and looked at) on its own in notebooks 00 and 08.

Below the pipeline: ``train_pipeline``, which trains one from nothing (autoencoder → cached latents → the
denoiser on single latent frames → ``inflate_to_video`` → the denoiser on clips) for the command line's ``train``
and ``demo``, and the helpers that write its outputs.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from einops import rearrange
from torch import nn

from .autoencoder import FrameAutoencoder, estimate_scale_factor, train_autoencoder
from .checkpoint import load_weights, read_weights_metadata, save_weights
from .config import PRESETS, WEIGHTS_DIR
from .presets import ExperimentConfig
from .sampling import sample
from .schedule import NoiseSchedule
from .unet import UNet3D, UNetConfig
from .utils import atomic_path, get_device, seed_everything

AUTOENCODER_FILE = "autoencoder.safetensors"  # in a saved pipeline's folder (shipped: "<preset>_autoencoder...")
UNET_FILE = "unet.safetensors"


# ---------------------------------------------------------------- the pipeline ----


class LatentVideoPipeline:
    """Autoencoder + denoiser + noise schedule, and the call that turns labels into clips.

    ``autoencoder``: a trained ``FrameAutoencoder`` (its ``scale_factor`` set); ``unet``: a ``UNet3D`` trained on
    its latents; ``schedule``: the ``NoiseSchedule`` it was trained with; ``config``: the ``ExperimentConfig``
    (sampler defaults, clip geometry, prediction type). Everything is moved to ``device`` (default: the
    autoencoder's) and put in eval mode.
    """

    def __init__(self, autoencoder: FrameAutoencoder, unet: UNet3D, schedule: NoiseSchedule,
                 config: ExperimentConfig | None = None, device: torch.device | str | None = None):
        if unet.cfg.in_channels != autoencoder.cfg.latent_channels:
            raise ValueError(f"the U-Net denoises {unet.cfg.in_channels}-channel latents but the autoencoder makes "
                             f"{autoencoder.cfg.latent_channels}; pair a U-Net with the autoencoder it was trained on")
        self.config = config if config is not None else ExperimentConfig(
            autoencoder=autoencoder.cfg, unet=unet.cfg, image_size=autoencoder.cfg.image_size,
            num_digits=max(1, unet.cfg.num_label_slots))
        self.device = torch.device(device) if device is not None else next(autoencoder.parameters()).device
        self.autoencoder = autoencoder.to(self.device).eval()
        self.unet = unet.to(self.device).eval()
        self.schedule = schedule.to(self.device)

    def __repr__(self) -> str:
        c = self.config
        return (f"LatentVideoPipeline(preset={c.name!r}: clips {c.num_frames}×{c.image_size}×{c.image_size} ↔ latents "
                f"{c.latent_shape}, UNet3D {self.unet.num_parameters() / 1e6:.2f} M, autoencoder "
                f"{sum(p.numel() for p in self.autoencoder.parameters()) / 1e6:.2f} M, {c.schedule_kind} schedule "
                f"T={self.schedule.num_steps}, sampler {c.sampler} × {c.sample_steps}, guidance {c.guidance_scale:g}, "
                f"device {self.device})")

    # ------------------------------------------------------------ 1. the condition

    def encode_condition(self, labels: Any, num_videos: int | None = None) -> dict | None:
        """Digit labels → the U-Net's condition ``{"labels": long (n, num_label_slots)}``.

        ``labels``: an int, a list of ints (one digit per clip), a list of tuples (one per clip, one digit per
        slot), or a tensor ``(n,)`` / ``(n, slots)``. ``None``: digits 0, 1, 2, ... in turn for ``num_videos``
        clips. The value ``num_classes`` (10) is the null token: "any digit" (the unconditional model).
        """
        cfg = self.unet.cfg
        if cfg.num_label_slots == 0:
            if labels is not None:
                raise ValueError("this U-Net was trained without labels (num_label_slots=0); call it with labels=None")
            return None
        slots = cfg.num_label_slots
        if labels is None:
            n = 1 if num_videos is None else num_videos
            labels = (torch.arange(n * slots) % cfg.num_classes).reshape(n, slots)
        if isinstance(labels, (int, np.integer)):
            labels = [int(labels)]
        labels = torch.as_tensor(labels if isinstance(labels, torch.Tensor) else np.asarray(labels)).long().cpu()
        if labels.ndim == 1 and slots == 1:
            labels = labels[:, None]  # (n, 1)
        if labels.ndim != 2 or labels.shape[1] != slots or labels.shape[0] < 1:
            raise ValueError(f"labels must give {slots} digit(s) per clip: shape (n, {slots}) or, for one slot, a list "
                             f"of n digits; got shape {tuple(labels.shape)}. Example: labels=[3, 7]" +
                             ("" if slots == 1 else f" becomes labels=[(3, 7), (1, 2)] for {slots} digits per clip"))
        if labels.min() < 0 or labels.max() > cfg.num_classes:
            raise ValueError(f"labels must be digits 0..{cfg.num_classes - 1} (or {cfg.num_classes}, the null token "
                             f"'any digit'); got values {labels.min().item()}..{labels.max().item()}")
        if num_videos is not None and len(labels) != num_videos:
            raise ValueError(f"got {len(labels)} labels for num_videos={num_videos}; give one label per video "
                             f"(or leave num_videos out)")
        return {"labels": labels.to(self.device)}  # (n, slots)

    # ------------------------------------------------------------ 2. the starting noise

    def initial_noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """z_T ~ N(0, I), shaped like ``n`` latent clips ``(n, c_z, f, h/d, w/d)``. Drawn on the CPU from
        ``generator`` and then moved, so a seed gives the same noise on every device."""
        if n < 1:
            raise ValueError(f"need at least one video; got n={n}")
        shape = (n, *self.config.latent_shape)  # (n, c_z, f, h/d, w/d)
        return torch.randn(shape, generator=generator).to(self.device)

    # ------------------------------------------------------------ 3. the denoising loop

    @torch.no_grad()
    def denoise(self, latents: torch.Tensor, cond: dict | None = None, sampler: str | None = None,
                steps: int | None = None, guidance_scale: float | None = None,
                generator: torch.Generator | None = None, return_trajectory: bool = False, progress: bool = False):
        """z_T → z_0 with ``steps`` U-Net calls of ``sampler`` (defaults from the config), classifier-free guidance
        at ``guidance_scale``. With ``return_trajectory=True`` returns ``(z_0, trajectory)`` as ``sampling.sample``
        does (every z_t and every predicted ẑ_0, in latent space: decode them to look)."""
        c = self.config
        return sample(self.unet, self.schedule, None, cond, sampler=sampler or c.sampler,
                      steps=steps or c.sample_steps,
                      guidance_scale=c.guidance_scale if guidance_scale is None else guidance_scale,
                      prediction=c.train.prediction, generator=generator, device=self.device,
                      return_trajectory=return_trajectory, progress=progress, x_T=latents)

    # ------------------------------------------------------------ 4. back to pixels (and the way in)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Latent clips ``(n, c_z, f, h/d, w/d)`` → videos ``(n, 1, f, h, w)`` in [-1, 1], on the CPU."""
        return self.autoencoder.decode(latents.to(self.device)).clamp(-1, 1).float().cpu()

    @torch.no_grad()
    def encode(self, video: torch.Tensor) -> torch.Tensor:
        """Videos ``(n, 1, f, h, w)`` in [-1, 1] → scaled latents ``(n, c_z, f, h/d, w/d)`` (the posterior mean)."""
        return self.autoencoder.encode(video.to(self.device))

    # ------------------------------------------------------------ all four in one call

    def __call__(self, labels: Any = None, num_videos: int | None = None, sampler: str | None = None,
                 steps: int | None = None, guidance_scale: float | None = None, seed: int | None = 0,
                 generator: torch.Generator | None = None, progress: bool = False) -> torch.Tensor:
        """Labels → videos ``(n, 1, f, h, w)`` in [-1, 1] (CPU). ``labels=None`` gives digits 0, 1, 2, ... for
        ``num_videos`` clips (default 10 for one digit per clip). ``seed`` (or a ``generator``) fixes the result."""
        if labels is None and num_videos is None:
            num_videos = self.unet.cfg.num_classes
        if generator is None:
            generator = torch.Generator().manual_seed(0 if seed is None else seed)
        cond = self.encode_condition(labels, num_videos)  # 1. {"labels": (n, slots)}
        n = cond["labels"].shape[0] if cond is not None else num_videos
        z_T = self.initial_noise(n, generator)  # 2. (n, c_z, f, h/d, w/d)
        z_0 = self.denoise(z_T, cond, sampler, steps, guidance_scale, generator, progress=progress)  # 3. same shape
        return self.decode(z_0)  # 4. (n, 1, f, h, w)

    # ------------------------------------------------------------ saving and loading

    def save_pretrained(self, directory: str | os.PathLike, prefix: str = "", metadata: dict | None = None) -> list[Path]:
        """Write ``{prefix}autoencoder.safetensors`` and ``{prefix}unet.safetensors`` into ``directory``
        (atomically); the U-Net's file holds the experiment config, so ``from_pretrained(directory)`` rebuilds
        everything. ``metadata`` (JSON-able) is stored in both files: the training command, time, metrics."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        extra = {"experiment": self.config.to_dict(), **(metadata or {})}
        ae_path = self.autoencoder.save(directory / f"{prefix}{AUTOENCODER_FILE}", extra_metadata=extra)
        unet_meta = {"model": "UNet3D", "config": _plain(self.unet.cfg), **extra}
        unet_path = save_weights(directory / f"{prefix}{UNET_FILE}", self.unet, unet_meta)
        return [Path(ae_path), Path(unet_path)]

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike = "cpu",
                        device: torch.device | str | None = None) -> "LatentVideoPipeline":
        """Load a pipeline: a preset name with shipped weights (``"cpu"``), a folder written by
        ``save_pretrained``, or a training run's folder (``runs/<name>``, which keeps them in ``weights/``)."""
        ae_path, unet_path = find_weights(name_or_path)
        device = get_device(device) if not isinstance(device, torch.device) else device
        meta = read_weights_metadata(unet_path)
        if meta.get("model") != "UNet3D" or "config" not in meta:
            raise ValueError(f"{unet_path} does not hold a UNet3D (metadata model={meta.get('model')!r}); "
                             f"save pipelines with LatentVideoPipeline.save_pretrained")
        unet = UNet3D(_unet_config(meta["config"]))
        load_weights(unet_path, unet, device="cpu")
        autoencoder = FrameAutoencoder.load(ae_path)
        config = ExperimentConfig.from_dict(meta["experiment"]) if "experiment" in meta else None
        schedule = (NoiseSchedule(config.schedule_kind, config.schedule_steps) if config is not None
                    else NoiseSchedule())
        pipe = cls(autoencoder, unet, schedule, config, device=device)
        pipe.metadata = meta
        return pipe


def find_weights(name_or_path: str | os.PathLike) -> tuple[Path, Path]:
    """Where a pipeline's two weight files are: ``(autoencoder, unet)``; an error that says what exists if not."""
    name = str(name_or_path)
    if name in PRESETS and not Path(name).exists():
        ae, unet = WEIGHTS_DIR / f"{name}_{AUTOENCODER_FILE}", WEIGHTS_DIR / f"{name}_{UNET_FILE}"
        if ae.is_file() and unet.is_file():
            return ae, unet
        shipped = sorted(p.name[: -len(UNET_FILE) - 1] for p in WEIGHTS_DIR.glob(f"*_{UNET_FILE}"))
        raise FileNotFoundError(
            f"no shipped weights for preset {name!r} (looked for {unet.name} and {ae.name} in {WEIGHTS_DIR}); "
            f"shipped presets: {shipped or 'none'}. Train your own with "
            f"`python -m vdiff_edu train --preset {name} --name my_run`, then load 'runs/my_run'.")
    folder = Path(name_or_path)
    for where in (folder, folder / "weights"):
        if (where / UNET_FILE).is_file() and (where / AUTOENCODER_FILE).is_file():
            return where / AUTOENCODER_FILE, where / UNET_FILE
    if not folder.exists():
        raise FileNotFoundError(f"{name!r} is neither a preset with shipped weights {PRESETS} nor an existing folder; "
                                f"pass 'cpu' or a run folder such as runs/my_run")
    stage_hint = (" The run has an autoencoder but no denoiser yet: train it with `python -m vdiff_edu train "
                  f"--name {folder.name} --stage denoiser`." if (folder / "weights" / AUTOENCODER_FILE).is_file() else
                  f" Train one with `python -m vdiff_edu train --preset cpu --name {folder.name}`.")
    raise FileNotFoundError(f"no {UNET_FILE} and {AUTOENCODER_FILE} in {folder} or {folder / 'weights'}." + stage_hint)


def _plain(cfg) -> dict:
    from dataclasses import asdict

    return asdict(cfg)


def _unet_config(d: dict) -> UNetConfig:
    from dataclasses import fields

    names = {f.name for f in fields(UNetConfig)}
    return UNetConfig(**{k: v for k, v in d.items() if k in names})


# ---------------------------------------------------------------- training one from nothing ----


MAX_BYTES_IN_MEMORY = 2**30  # pixel clips kept in memory for the autoencoder; more are generated when encoded


def training_dataset(cfg: ExperimentConfig, mnist_dir: str | os.PathLike | None = None, verbose: bool = False):
    """The experiment's training clips: ``MovingMNIST("train", length=cfg.num_clips, ...)`` (generated on the fly)."""
    from .moving_mnist import MovingMNIST

    return MovingMNIST("train", length=cfg.num_clips, seed=cfg.seed, mnist_dir=mnist_dir, verbose=verbose,
                       **cfg.dataset_kwargs())


def clips_of(ds, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Clips ``start .. stop-1`` of a MovingMNIST: videos ``(n, 1, f, h, w)`` in [-1, 1] and labels ``(n, digits)``."""
    items = [ds[i] for i in range(start, stop)]
    return torch.stack([it["video"] for it in items]), torch.stack([it["labels"] for it in items]).long()


@torch.no_grad()
def encode_clips(autoencoder: FrameAutoencoder, clips: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Encode clips ``(n, 1, f, h, w)`` once into scaled latents ``(n, c_z, f, h/d, w/d)`` (posterior means)."""
    autoencoder.eval()
    device = next(autoencoder.parameters()).device
    out = [autoencoder.encode(clips[i:i + batch_size].to(device)).cpu() for i in range(0, len(clips), batch_size)]
    return torch.cat(out)  # (n, c_z, f, h/d, w/d)


def encode_dataset(autoencoder: FrameAutoencoder, ds, first: torch.Tensor, first_labels: torch.Tensor,
                   batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """Latents ``(n, c_z, f, h/d, w/d)`` and labels ``(n, digits)`` of every clip of ``ds``. The clips already in
    memory (``first``: clips 0, 1, ...) are encoded as they are; the rest are generated batch by batch, so the pixels
    of a large dataset never sit in memory at once."""
    latents, labels = [encode_clips(autoencoder, first, batch_size)], [first_labels]
    for start in range(len(first), len(ds), batch_size):
        clips, lab = clips_of(ds, start, min(start + batch_size, len(ds)))
        latents.append(encode_clips(autoencoder, clips, batch_size))
        labels.append(lab)
    return torch.cat(latents), torch.cat(labels)


def train_pipeline(cfg: ExperimentConfig, run_dir: str | os.PathLike, stage: str = "both",
                   resume: str | os.PathLike | None = None, mnist_dir: str | os.PathLike | None = None,
                   steps: int | None = None, device: torch.device | str | None = None,
                   progress: str | None = None, callback: Callable | None = None,
                   log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train a latent video pipeline from nothing and write everything under ``run_dir``:

        1. clips      ``cfg.num_clips`` Moving MNIST clips (MovingMNIST, split "train")
        2. autoencoder trained on their frames; scale factor = 1/std of the latents → weights/autoencoder.safetensors
        3. latents    every clip encoded once (and played backwards too, if ``reverse_augment``) → latents.pt
        4. denoiser   the Trainer on the cached latents → checkpoints/, then weights/unet.safetensors (EMA)

    ``stage``: "autoencoder", "denoiser" (needs the run's autoencoder) or "both". ``resume``: "latest" or a
    checkpoint path, for the denoiser (a resumed run also reuses the run's autoencoder). ``steps`` overrides the
    denoiser's ``cfg.train.steps``. Returns a dict with the pipeline (when the denoiser was trained), the
    histories, the seconds each stage took and the paths written.
    """
    from dataclasses import replace

    if stage not in ("autoencoder", "denoiser", "both"):
        raise ValueError(f"stage must be 'autoencoder', 'denoiser' or 'both'; got {stage!r}")
    run_dir = Path(run_dir)
    weights_dir = run_dir / "weights"
    weights_dir.mkdir(parents=True, exist_ok=True)
    device = get_device(device) if not isinstance(device, torch.device) else device
    if steps is not None:
        if steps < 1:
            raise ValueError(f"steps must be >= 1; got {steps}")
        cfg = replace(cfg, train=replace(cfg.train, steps=steps, warmup=min(cfg.train.warmup, max(1, steps // 10))))
    if progress is not None:
        cfg = replace(cfg, train=replace(cfg.train, progress=progress))
    result: dict[str, Any] = {"run_dir": run_dir, "config": cfg, "seconds": {}, "paths": {}}
    (run_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
    start = time.perf_counter()

    # 1. the clips (the first ones in memory, for the autoencoder; the rest are generated when encoded)
    t0 = time.perf_counter()
    ds = training_dataset(cfg, mnist_dir)
    bytes_per_clip = 4 * cfg.num_frames * cfg.image_size ** 2
    clips, labels = clips_of(ds, 0, min(len(ds), max(256, MAX_BYTES_IN_MEMORY // bytes_per_clip)))
    result["seconds"]["data"] = time.perf_counter() - t0
    result["digits"] = source = ds.source
    log(f"[1/4] data: {len(ds):,} clips {tuple(clips.shape[1:])} ({len(clips):,} in memory) in "
        f"{result['seconds']['data']:.1f} s; digits: {source}")

    # 2. the autoencoder, trained on single frames of those clips
    ae_path = weights_dir / AUTOENCODER_FILE
    reuse = stage == "denoiser" or (resume is not None and ae_path.is_file())
    if reuse:
        if not ae_path.is_file():
            raise FileNotFoundError(f"--stage denoiser needs the run's autoencoder at {ae_path}; train it first with "
                                    f"`python -m vdiff_edu train --preset {cfg.name} --name {run_dir.name} "
                                    f"--stage autoencoder` (or --stage both)")
        autoencoder = FrameAutoencoder.load(ae_path, device=device)
        log(f"[2/4] autoencoder: loaded {ae_path} (scale factor {float(autoencoder.scale_factor):.3f})")
    else:
        t0 = time.perf_counter()
        seed_everything(cfg.seed)
        autoencoder = FrameAutoencoder(cfg.autoencoder)
        ae_progress = cfg.train.progress == "bar" or (cfg.train.progress == "auto" and (
            sys.stderr.isatty() or "ipykernel" in sys.modules))  # a bar where one can be seen, as the Trainer does
        result["autoencoder_history"] = train_autoencoder(autoencoder, clips, device=device, seed=cfg.seed,
                                                          progress=ae_progress, log_every=50)
        scale = estimate_scale_factor(autoencoder, clips[:256])
        result["seconds"]["autoencoder"] = time.perf_counter() - t0
        last = result["autoencoder_history"][-1]
        autoencoder.save(ae_path, extra_metadata={"experiment": cfg.to_dict(), "digits": source,
                                                   "train_seconds": round(result["seconds"]["autoencoder"], 1)})
        log(f"[2/4] autoencoder: {cfg.autoencoder.train_steps} steps in {result['seconds']['autoencoder']:.0f} s, "
            f"reconstruction PSNR {last['psnr']:.1f} dB, scale factor {scale:.3f} → {ae_path}")
    result["paths"]["autoencoder"] = ae_path
    if stage == "autoencoder":
        result["seconds"]["total"] = time.perf_counter() - start
        return result

    # 3. latents: every clip encoded once (a resumed run reuses the cache written for its autoencoder)
    t0 = time.perf_counter()
    cache = run_dir / "latents.pt"
    key = {"scale_factor": float(autoencoder.scale_factor), "num_clips": len(ds), "seed": cfg.seed}
    cached = torch.load(cache, weights_only=True) if reuse and cache.is_file() else None
    if cached is not None and cached.get("key") == key:
        latents, labels = cached["latents"], cached["labels"]
    else:
        latents, labels = encode_dataset(autoencoder, ds, clips, labels)  # (n, c_z, f, h/d, w/d), (n, digits)
        with atomic_path(cache) as tmp:
            torch.save({"latents": latents, "labels": labels, "key": key}, tmp)
    del clips
    if cfg.reverse_augment:  # a clip played backwards is another valid clip: twice the data for free
        latents, labels = torch.cat([latents, latents.flip(2)]), torch.cat([labels, labels])
    result["seconds"]["encode"] = time.perf_counter() - t0
    log(f"[3/4] latents: {tuple(latents.shape)} (std {latents.std():.2f}) in {result['seconds']['encode']:.1f} s"
        + (" (cached)" if cached is not None and cached.get("key") == key else ""))

    # 4. the denoiser: (A) single frames, then (B) clips
    from .train import Trainer, latest_checkpoint

    seed_everything(cfg.seed)
    unet = UNet3D(cfg.unet)
    if cfg.label_embedding_std is not None and unet.label_embed is not None:
        nn.init.normal_(unet.label_embed.table.weight, std=cfg.label_embedding_std)
    schedule = NoiseSchedule(cfg.schedule_kind, cfg.schedule_steps)
    log(f"[4/4] denoiser: UNet3D {unet.num_parameters() / 1e6:.2f} M parameters")
    histories = {}
    video_started = resume is not None and latest_checkpoint(run_dir) is not None
    if cfg.image_train is not None and not video_started:
        t0 = time.perf_counter()
        frames = rearrange(latents[: len(latents) // (2 if cfg.reverse_augment else 1)],
                           "n c f h w -> (n f) c 1 h w")  # every frame a one-frame clip
        frame_labels = labels[: len(frames) // cfg.num_frames].repeat_interleave(cfg.num_frames, dim=0)
        log(f"      A. single frames: {cfg.image_train.steps} steps × {cfg.image_train.batch_size} of "
            f"{len(frames):,} latent frames {tuple(frames.shape[1:])}; temporal attention idle")
        set_temporal_attention_trainable(unet, False)
        image_trainer = Trainer(unet, schedule, {"latents": frames, "labels": frame_labels}, cfg.image_train,
                                device=device, run_dir=run_dir / "image_stage", callback=callback)
        histories["image stage"] = image_trainer.train(resume=resume)
        image_trainer.ema.copy_to(unet)  # carry on from the averaged weights
        set_temporal_attention_trainable(unet, True)
        inflate_to_video(unet)
        result["seconds"]["denoiser_images"] = time.perf_counter() - t0
        log(f"      A. done in {result['seconds']['denoiser_images']:.0f} s")
    t0 = time.perf_counter()
    log(f"      {'B. clips: ' if cfg.image_train is not None else ''}{cfg.train.steps} steps × "
        f"{cfg.train.batch_size} clips {tuple(latents.shape[1:])}")
    trainer = Trainer(unet, schedule, {"latents": latents, "labels": labels}, cfg.train, device=device,
                      run_dir=run_dir, callback=callback)
    histories["video stage" if cfg.image_train is not None else "loss"] = trainer.train(resume=resume)
    result["history"] = trainer.history
    result["histories"] = histories
    result["seconds"]["denoiser"] = time.perf_counter() - t0
    result["seconds"]["total"] = time.perf_counter() - start
    result["interrupted"] = trainer.step < cfg.train.steps
    pipe = LatentVideoPipeline(autoencoder, trainer.ema.model, schedule, cfg, device=device)
    meta = {"digits": source, "train_steps": trainer.step,
            "image_train_steps": cfg.image_train.steps if cfg.image_train is not None else 0,
            "train_seconds": {k: round(v, 1) for k, v in result["seconds"].items()}}
    result["paths"]["unet"] = pipe.save_pretrained(weights_dir, metadata=meta)[1]
    result["pipeline"] = pipe
    log(f"      trained to step {trainer.step} in {result['seconds']['denoiser']:.0f} s → {result['paths']['unet']}")
    return result


def set_temporal_attention_trainable(unet: nn.Module, trainable: bool) -> None:
    """Freeze (or unfreeze) every ``TemporalAttention``. Frozen at its initial state its output projection is zero,
    so it adds nothing: on single frames the U-Net is then a plain image denoiser."""
    from .attention import TemporalAttention

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
    from .blocks import Full3dConv, TemporalConv

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


# ---------------------------------------------------------------- writing samples ----


def write_samples(video: torch.Tensor, labels: torch.Tensor | None, out_dir: str | os.PathLike,
                  fps: float = 4, title: str | None = None) -> dict[str, Path]:
    """Write clips ``(n, 1, f, h, w)`` in [-1, 1] for any outside tool to judge:

        samples.npy   uint8 (n, f, h, w), 0 = black background, 255 = digit
        labels.npy    int64 (n, slots), the digits asked for
        samples.gif   the clips tiled in a grid, looping
        samples.png   a filmstrip: one row per clip, one column per frame
    """
    from .utils import to_uint8
    from .viz import filmstrip, save_gif

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    frames = np.asarray(to_uint8(video[:, 0]))  # (n, f, h, w) uint8
    paths = {"npy": out_dir / "samples.npy", "gif": out_dir / "samples.gif", "png": out_dir / "samples.png"}
    with atomic_path(paths["npy"]) as tmp, open(tmp, "wb") as f:
        np.save(f, frames)
    if labels is not None:
        paths["labels"] = out_dir / "labels.npy"
        with atomic_path(paths["labels"]) as tmp, open(tmp, "wb") as f:
            np.save(f, np.asarray(labels.cpu(), dtype=np.int64))
    save_gif(video, paths["gif"], fps=fps, scale=2, nrow=min(8, len(video)))
    rows = None if labels is None else [",".join(str(int(d)) for d in row) for row in labels.reshape(len(video), -1)]
    fig = filmstrip(video[:16], labels=None if rows is None else rows[:16], title=title)
    with atomic_path(paths["png"]) as tmp:
        fig.savefig(tmp, format="png", dpi=80, bbox_inches="tight")
    _close(fig)
    return paths


def write_loss_curve(history: dict, path: str | os.PathLike, title: str | None = None) -> Path:
    """Save a loss curve as a PNG: one Trainer ``history``, or ``{name: history}`` for several stages (drawn one
    after the other on a common step axis)."""
    import matplotlib.pyplot as plt

    stages = {"loss": history} if "loss" in history else history
    fig, ax = plt.subplots(figsize=(6, 3.4))
    offset = 0
    for name, h in stages.items():
        steps = np.asarray(h["step"]) + offset
        loss = np.asarray(h["loss"], dtype=float)
        smooth, ema = [], loss[0] if len(loss) else 0.0
        for v in loss:  # exponential moving average, as viz.plot_loss draws it
            ema = 0.9 * ema + 0.1 * v
            smooth.append(ema)
        (line,) = ax.plot(steps, loss, alpha=0.3)
        ax.plot(steps, smooth, color=line.get_color(), label=name)
        offset = int(steps[-1]) if len(steps) else offset
    ax.set(xlabel="step", ylabel="loss", yscale="log", title=title or "training loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=80, bbox_inches="tight")
    _close(fig)
    return path


def _close(fig) -> None:
    import matplotlib.pyplot as plt

    plt.close(fig)
