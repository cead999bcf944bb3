"""LatentVideoPipeline: from digit labels to moving digits, through the latent space.

The generation function of a latent video model, step by step (the shape of the one an article on Runway's
models sketches, and of the diffusers pipelines):

    labels ─encode_condition─► cond ─┐
    seed ─initial_noise─► z_T ───────┴─denoise (U-Net + scheduler loop)─► z_0 ─decode─► video
           (n, c_z, f, h/d, w/d)                                                      (n, 1, f, h, w)

    pipe = LatentVideoPipeline.from_pretrained("cpu")          # the weights shipped in vdiff_edu/weights/
    video = pipe(labels=[3, 7], seed=0)                        # (2, 1, 8, 32, 32) in [-1, 1]

    pipe = LatentVideoPipeline.from_pretrained("runs/my_text_run")       # a text preset (cpu-text): prompts
    video = pipe(prompts=["a bold 7 moves left and right", ""], seed=0)  # "" = the null prompt (unconditional)

    cond = pipe.encode_condition([3, 7])                       # the same, one step at a time
    z_T = pipe.initial_noise(2, generator=torch.Generator().manual_seed(0))
    z_0 = pipe.denoise(z_T, cond, steps=50, guidance_scale=3.0)
    video = pipe.decode(z_0)

The sampling loop itself lives in ``sampling.py`` and the conditions in ``conditioning.py``; this module only
composes the pieces, so each step can be called (and looked at) on its own in notebooks 00 and 08. A pipeline
only generates: training one from nothing is ``recipe.train_pipeline``.
"""

from __future__ import annotations

import os
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .autoencoder import FrameAutoencoder
from .checkpoint import load_weights, read_weights_metadata, save_weights, weights_fingerprint
from .conditioning import Conditioning, TextConditionedDenoiser, conditioning_for
from .config import PRESETS, WEIGHTS_DIR
from .frames import check_mask, paste_given
from .presets import ExperimentConfig
from .rollout import predict, rollout
from .sampling import sample
from .schedule import PREDICTIONS, NoiseSchedule
from .structure import check_level
from .unet import UNet3D, UNetConfig
from .utils import get_device

AUTOENCODER_FILE = "autoencoder.safetensors"  # in a saved pipeline's folder (shipped: "<preset>_autoencoder...")
UNET_FILE = "unet.safetensors"
TEXT_ENCODER_FILE = "text_encoder.safetensors"  # a text model's encoder, beside its U-Net (same prefix)
REFERENCE_ENCODER_FILE = "reference_encoder.safetensors"  # a video-to-video model's digit-image encoder, likewise


# ---------------------------------------------------------------- the pipeline ----


class LatentVideoPipeline:
    """Autoencoder + denoiser + noise schedule, and the call that turns labels into clips.

    ``autoencoder``: a trained ``FrameAutoencoder`` (its ``scale_factor`` set); ``unet``: a ``UNet3D`` trained on
    its latents; ``schedule``: the ``NoiseSchedule`` it was trained with; ``config``: the ``ExperimentConfig``
    (sampler defaults, clip geometry); ``prediction``: what the U-Net outputs ("eps", "x0" or "v"), as saved
    with its weights (default: ``config.train.prediction``); ``conditioning``: its kinds of condition (default:
    what its config says, ``Conditioning.for_unet``). Everything is moved to ``device`` (default: the
    autoencoder's) and put in eval mode.
    """

    def __init__(self, autoencoder: FrameAutoencoder, unet: UNet3D, schedule: NoiseSchedule,
                 config: ExperimentConfig | None = None, device: torch.device | str | None = None,
                 prediction: str | None = None, conditioning: Conditioning | None = None):
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
        self.prediction = prediction if prediction is not None else self.config.train.prediction
        if self.prediction not in PREDICTIONS:
            raise ValueError(f"prediction must be one of {PREDICTIONS} (what the U-Net was trained to output); "
                             f"got {self.prediction!r}")
        if isinstance(unet, TextConditionedDenoiser) and self.config.text is None:
            raise ValueError("the U-Net reads captions (a TextConditionedDenoiser) but its config has text=None; pass "
                             "the ExperimentConfig it was trained with (a text preset such as cpu-text)")
        self.conditioning = (conditioning if conditioning is not None else conditioning_for(self.config))

    @property
    def reads_prompts(self) -> bool:
        """True for a text model (its U-Net reads captions through a jointly trained text encoder)."""
        return isinstance(self.unet, TextConditionedDenoiser)

    def __repr__(self) -> str:
        c = self.config
        return (f"LatentVideoPipeline(preset={c.name!r}: clips {c.num_frames}×{c.image_size}×{c.image_size} ↔ latents "
                f"{c.latent_shape}, UNet3D {self.unet.num_parameters() / 1e6:.2f} M, autoencoder "
                f"{sum(p.numel() for p in self.autoencoder.parameters()) / 1e6:.2f} M, {c.schedule_kind} schedule "
                f"T={self.schedule.num_steps}, sampler {c.sampler} × {c.sample_steps}, guidance {c.guidance_scale:g}, "
                f"device {self.device})")

    # ------------------------------------------------------------ 1. the condition

    def encode_condition(self, labels: Any = None, num_videos: int | None = None,
                         prompts: str | list[str] | None = None) -> dict | None:
        """Digit labels (a label model) or prompts (a text model) → the U-Net's condition.

        A text model: ``prompts`` (a string or a list, one per clip; ``""`` is the null prompt, the unconditional
        model) → ``{"caption_ids", "caption_mask": (n, L)}``, which the model's own text encoder reads. A word the
        tokenizer does not know is an error naming it and the closest vocabulary words.

        A label model: ``{"labels": long (n, num_label_slots)}``.

        ``labels``: an int, a list of ints (one digit per clip), a list of tuples (one per clip, one digit per
        slot), or a tensor ``(n,)`` / ``(n, slots)``. ``None``: digits 0, 1, 2, ... in turn for ``num_videos``
        clips. The value ``num_classes`` (10) is the null token: "any digit" (the unconditional model).
        """
        if self.reads_prompts:
            if labels is not None:
                raise ValueError("this model reads prompts, not labels (it was trained on captions); call it with "
                                 "prompts=['a bold 7 moves left and right', ...]")
            if prompts is None:
                raise ValueError("this model reads prompts: give prompts=[...] (one per clip; '' = the null prompt)")
            prompts = [prompts] if isinstance(prompts, str) else list(prompts)
            if not prompts or not all(isinstance(p, str) for p in prompts):
                raise ValueError(f"prompts must be a non-empty list of strings, one per clip; got {prompts!r}")
            if num_videos is not None and len(prompts) != num_videos:
                raise ValueError(f"got {len(prompts)} prompts for num_videos={num_videos}; give one prompt per video "
                                 f"(or leave num_videos out)")
            given = self.conditioning.without("frames", "structure")  # conditions that come from pixels: elsewhere
            return given.from_batch({"caption": prompts}, self.device)  # ids, mask (n, L)
        if prompts is not None:
            raise ValueError("this model reads digit labels, not prompts (it was trained without captions); call it "
                             "with labels=[3, 7], or load a text model (a run of --preset cpu-text)")
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
        if num_videos is not None and len(labels) != num_videos:
            raise ValueError(f"got {len(labels)} labels for num_videos={num_videos}; give one label per video "
                             f"(or leave num_videos out)")
        given = self.conditioning.without("frames", "structure")  # conditions that come from pixels: elsewhere
        return given.from_batch({"labels": labels}, self.device)  # {"labels": (n, slots)}

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
                steps: int | None = None, guidance_scale: float | dict[str, float] | None = None,
                generator: torch.Generator | None = None, return_trajectory: bool = False, progress: bool = False,
                guidance_interval: tuple[int, int] | None = None):
        """z_T → z_0 with ``steps`` U-Net calls of ``sampler`` (defaults from the config), classifier-free guidance
        at ``guidance_scale`` (one number, or one per kind of condition: ``{"labels": 3.0}``), only at the steps
        lo < t ≤ hi if ``guidance_interval = (lo, hi)`` is given (``sampling.guidance_at``). With
        ``return_trajectory=True`` returns ``(z_0, trajectory)`` as ``sampling.sample`` does (every z_t and every
        predicted ẑ_0, in latent space: decode them to look)."""
        return sample(self.unet, self.schedule, None, cond, generator=generator, device=self.device,
                      return_trajectory=return_trajectory, progress=progress, x_T=latents,
                      conditioning=self.conditioning, guidance_interval=guidance_interval,
                      **self._sampling(sampler, steps, guidance_scale))

    # ------------------------------------------------------------ 4. back to pixels (and the way in)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor, temporal: bool = True) -> torch.Tensor:
        """Latent clips ``(n, c_z, f, h/d, w/d)`` → videos ``(n, 1, f, h, w)`` in [-1, 1], on the CPU.
        ``temporal=False``: every frame decoded on its own, even by a temporally fine-tuned decoder."""
        return self.autoencoder.decode(latents.to(self.device), temporal).clamp(-1, 1).float().cpu()

    @torch.no_grad()
    def encode(self, video: torch.Tensor) -> torch.Tensor:
        """Videos ``(n, 1, f, h, w)`` in [-1, 1] → scaled latents ``(n, c_z, f, h/d, w/d)`` (the posterior mean)."""
        return self.autoencoder.encode(video.to(self.device))

    # ------------------------------------------------------------ all four in one call

    def __call__(self, labels: Any = None, num_videos: int | None = None, sampler: str | None = None,
                 steps: int | None = None, guidance_scale: float | dict[str, float] | None = None,
                 seed: int | None = 0, generator: torch.Generator | None = None, progress: bool = False,
                 batch_size: int = 64, prompts: str | list[str] | None = None,
                 guidance_interval: tuple[int, int] | None = None) -> torch.Tensor:
        """Labels → videos ``(n, 1, f, h, w)`` in [-1, 1] (CPU). ``labels=None`` gives digits 0, 1, 2, ... for
        ``num_videos`` clips (default 10 for one digit per clip). ``seed`` (or a ``generator``) fixes the result.
        Clips are made ``batch_size`` at a time (one generator throughout), so any number fits in memory and the
        first ``batch_size`` clips are the same whatever ``n`` is. ``guidance_interval``: as in ``denoise``."""
        if labels is None and num_videos is None and prompts is None:
            num_videos = self.unet.cfg.num_classes
        if generator is None:
            generator = torch.Generator().manual_seed(0 if seed is None else seed)
        cond = self.encode_condition(labels, num_videos, prompts)  # 1. {"labels": (n, slots)} or caption ids (n, L)
        n = next(iter(cond.values())).shape[0] if cond is not None else num_videos
        videos = []
        for rows in _batches(n, batch_size):
            part = _rows(cond, rows)
            z_T = self.initial_noise(rows.stop - rows.start, generator)  # 2. (b, c_z, f, h/d, w/d)
            z_0 = self.denoise(z_T, part, sampler, steps, guidance_scale, generator, progress=progress,
                               guidance_interval=guidance_interval)  # 3. same
            videos.append(self.decode(z_0))  # 4. (b, 1, f, h, w)
        return torch.cat(videos)

    # ------------------------------------------------------------ given frames: predict, interpolate, roll out

    def predict(self, frames: torch.Tensor, mask, labels: Any = None, prompts: str | list[str] | None = None,
                method: str = "channels", noise_level: float = 0.0, sampler: str | None = None,
                steps: int | None = None, guidance_scale: float | dict[str, float] | None = None, seed: int | None = 0,
                generator: torch.Generator | None = None, batch_size: int = 64) -> torch.Tensor:
        """Clips of which some frames are given → the whole clips ``(n, 1, f, h, w)`` in [-1, 1] (CPU), the given
        frames returned exactly as they came.

        ``frames (n, 1, f, h, w)`` in [-1, 1] (only the frames where ``mask`` is True are read); ``mask`` ``(f,)``
        or ``(n, f)``, True = given: ``frames.past_mask(8, 2)`` predicts 6 frames from 2,
        ``frames.interpolation_mask(8)`` fills in between the first and the last. ``labels`` default to the null
        label, "any digit" (the frames show which); ``method`` and ``noise_level``: see ``rollout.py``."""
        frames = self._check_pixels(frames, "frames")
        n, f = frames.shape[0], frames.shape[2]
        if f != self.config.num_frames:
            raise ValueError(f"this model makes clips of {self.config.num_frames} frames; frames has {f} (shape "
                             f"{tuple(frames.shape)}). For longer videos use rollout")
        mask = check_mask(mask, n, f)  # (n, f)
        cond = self._other_conditions(labels, prompts, n)
        generator = generator if generator is not None else torch.Generator().manual_seed(0 if seed is None else seed)
        out = []
        for rows in _batches(n, batch_size):
            z = self.encode(frames[rows])  # (b, c_z, f, h/d, w/d)
            z = predict(self.unet, self.schedule, z, mask[rows], self.conditioning, _rows(cond, rows), method,
                        noise_level, generator, **self._sampling(sampler, steps, guidance_scale))
            out.append(paste_given(self.decode(z), frames[rows], mask[rows]))  # (b, 1, f, h, w), given frames exact
        return torch.cat(out)

    def rollout(self, first: torch.Tensor, length: int, context: int = 2, labels: Any = None,
                prompts: str | list[str] | None = None, method: str = "channels", noise_level: float = 0.0,
                sampler: str | None = None, steps: int | None = None,
                guidance_scale: float | dict[str, float] | None = None, seed: int | None = 0,
                generator: torch.Generator | None = None, batch_size: int = 64, progress: bool = False) -> torch.Tensor:
        """A long video from its first frames: ``first (n, 1, k₀, h, w)`` in [-1, 1] → ``(n, 1, length, h, w)``, made
        window by window, each given the last ``context`` frames (``rollout.rollout``); the first k₀ frames are
        returned exactly as they came."""
        first = self._check_pixels(first, "first")
        n, k0 = first.shape[0], first.shape[2]
        cond = self._other_conditions(labels, prompts, n)
        generator = generator if generator is not None else torch.Generator().manual_seed(0 if seed is None else seed)
        out = []
        for rows in _batches(n, batch_size):
            z = rollout(self.unet, self.schedule, self.encode(first[rows]), length, self.conditioning,
                        _rows(cond, rows), self.config.num_frames, context, method, noise_level, generator, progress,
                        **self._sampling(sampler, steps, guidance_scale))  # (b, c_z, length, h/d, w/d)
            video = self.decode(z)  # (b, 1, length, h, w)
            video[:, :, :k0] = first[rows]
            out.append(video)
        return torch.cat(out)

    # ------------------------------------------------------------ video to video: one clip's structure, new content

    @property
    def reads_structure(self) -> bool:
        """True for a video-to-video model (its U-Net reads an input video's structure maps)."""
        return "structure" in self.conditioning.names

    @property
    def reads_references(self) -> bool:
        """True for a model that can take its content from a digit image ("this 8"; ``reference.py``)."""
        return "reference" in self.conditioning.kind("caption").unet_keys if self.reads_prompts else False

    def edit(self, structure_from: torch.Tensor, prompts: str | list[str] | None = None, labels: Any = None,
             references: torch.Tensor | None = None, detail: int | None = None, sampler: str | None = None,
             steps: int | None = None, guidance_scale: float | dict[str, float] | None = None,
             temporal_guidance: float = 1.0,
             seed: int | None = 0, generator: torch.Generator | None = None, batch_size: int = 64,
             progress: bool = False, return_latents: bool = False) -> torch.Tensor:
        """Video to video (Gen-1, Esser et al. 2023): new clips ``(n, 1, f, h, w)`` in [-1, 1] (CPU) that keep the
        structure of ``structure_from`` (pixel clips ``(n, 1, f, h, w)`` in [-1, 1]) and take their content from
        ``prompts`` (a text model: "a bold 8"; one per clip, or one for all), ``labels``, or ``references``: digit
        images ``(n, 1, h, w)`` in [-1, 1] (one per clip, or ``(1, 1, h, w)`` for all; each is centred first,
        ``reference.centred``; ``reference.reference_from_image`` makes one from any picture): "this 8", for a model
        trained with them (``reads_references``). Give a prompt or a reference, not both: training showed one.

        ``detail`` is the structure's level of detail (``structure.py``): from 1 (only where the ink is) to
        ``structure.finest_level(h)`` (its exact silhouette); 0 ignores the input; None: the model's
        ``StructureConfig.default_detail`` (2 for cpu-v2v). Classifier-free guidance pushes towards the prompt only;
        both branches read the structure, unless ``guidance_scale`` is a dict that names "structure" too.

        ``temporal_guidance`` ω_t: 1 = the video model; > 1 pushes away from its frame-by-frame image prediction
        (``sampling.temporal_guided_prediction``; on cpu-v2v ω_t = 2 measured no less flicker and a weaker prompt,
        ``docs/video_to_video.md``). ``return_latents=True`` returns the latents ``(n, c_z, f, h/d, w/d)`` instead,
        to decode them yourself (e.g. with and without a decoder's temporal layers)."""
        if not self.reads_structure:
            raise ValueError("this model reads no structure (it was not trained for video to video); load a "
                             "*-v2v model (a run of --preset cpu-v2v) or use the pipeline's own call for new clips")
        video = self._check_pixels(structure_from, "structure_from")
        n, f = video.shape[0], video.shape[2]
        if f != self.config.num_frames:
            raise ValueError(f"this model makes clips of {self.config.num_frames} frames; structure_from has {f} "
                             f"(shape {tuple(video.shape)})")
        kind = self.conditioning.kind("structure")
        detail = self.config.structure.default_detail if detail is None else detail
        detail = check_level(detail, self.config.image_size)
        if isinstance(prompts, str):
            prompts = [prompts] * n
        cond = self._other_conditions(labels, prompts, n) or {}
        if references is not None:
            cond.update(self._references(references, n, prompts))  # the empty prompt, and the images' tokens
        cond.update(kind.maps(video, detail, self.device))  # {"structure": (n, d² + 1, f, h/d, w/d)}
        # guidance nulls the content only: both branches read the structure (unless a dict of scales names it)
        guide_structure = isinstance(guidance_scale, dict) and "structure" in guidance_scale
        conditioning = self.conditioning if guide_structure else self.conditioning.without("structure")
        if generator is None:
            generator = torch.Generator().manual_seed(0 if seed is None else seed)
        videos = []
        for rows in _batches(n, batch_size):
            z_T = self.initial_noise(rows.stop - rows.start, generator)  # (b, c_z, f, h/d, w/d)
            z_0 = sample(self.unet, self.schedule, None, _rows(cond, rows), generator=generator, device=self.device,
                         progress=progress, x_T=z_T, conditioning=conditioning, temporal_guidance=temporal_guidance,
                         **self._sampling(sampler, steps, guidance_scale))  # (b, c_z, f, h/d, w/d)
            videos.append(z_0.cpu() if return_latents else self.decode(z_0))  # (b, 1, f, h, w)
        return torch.cat(videos)

    def _references(self, references, n: int, prompts) -> dict[str, torch.Tensor]:
        """Digit images ``(n or 1, 1, h, w)`` → the condition's ``reference (n, 1, h, w)`` (centred) and
        ``reference_given (n,)`` (all True)."""
        from .reference import centred

        if not self.reads_references:
            raise ValueError("this model takes its content from prompts only (it was trained without reference "
                             "images); give prompts=..., or load a model trained with them (cpu-v2v)")
        if prompts is not None and any(p for p in prompts):
            raise ValueError("give prompts or references, not both: the model was trained on one or the other "
                             "(a reference alone says what to draw, stroke included)")
        size = self.config.image_size
        images = torch.as_tensor(references, dtype=torch.float32).cpu()
        if images.ndim != 4 or images.shape[1:] != (1, size, size) or len(images) not in (1, n):
            raise ValueError(f"references must be digit images (n, 1, {size}, {size}) in [-1, 1], one per clip "
                             f"({n}) or one for all; got shape {tuple(images.shape)}. From any picture: "
                             f"reference.reference_from_image(image, {size}, {self.config.digit_size})")
        images = centred(images.expand(n, -1, -1, -1))  # (n, 1, h, w)
        return {"reference": images.to(self.device), "reference_given": torch.ones(n, dtype=torch.bool,
                                                                                  device=self.device)}

    def _check_pixels(self, frames, what: str) -> torch.Tensor:
        frames = torch.as_tensor(frames, dtype=torch.float32).cpu()
        size = self.config.image_size
        if frames.ndim != 5 or frames.shape[1] != 1 or frames.shape[3:] != (size, size):
            raise ValueError(f"{what} must be clips (n, 1, f, {size}, {size}) in [-1, 1]; got shape "
                             f"{tuple(frames.shape)}. From uint8 frames (n, f, h, w): utils.from_uint8(x)[:, None]")
        return frames

    def _other_conditions(self, labels, prompts, n: int) -> dict | None:
        """The conditions beside the frames, for ``n`` clips: labels (default: the null label, "any digit"), or a
        text model's prompts (default: the empty prompt)."""
        if self.reads_prompts and prompts is None:
            prompts = [""] * n
        if not self.reads_prompts and labels is None and self.unet.cfg.num_label_slots:
            labels = torch.full((n, self.unet.cfg.num_label_slots), self.unet.cfg.num_classes)
        return self.encode_condition(labels, n, prompts)

    def _sampling(self, sampler, steps, guidance_scale) -> dict:
        c = self.config
        return dict(sampler=sampler or c.sampler, steps=steps or c.sample_steps,
                    guidance_scale=c.guidance_scale if guidance_scale is None else guidance_scale,
                    prediction=self.prediction)

    # ------------------------------------------------------------ saving and loading

    def save_pretrained(self, directory: str | os.PathLike, prefix: str = "", metadata: dict | None = None) -> list[Path]:
        """Write ``{prefix}autoencoder.safetensors`` and ``{prefix}unet.safetensors`` into ``directory``
        (atomically); the U-Net's file holds the experiment config, so ``from_pretrained(directory)`` rebuilds
        everything. ``metadata`` (JSON-able) is stored in both files: the training command, time, metrics."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        extra = {"experiment": self.config.to_dict(), **(metadata or {})}
        ae_path = self.autoencoder.save(directory / f"{prefix}{AUTOENCODER_FILE}", extra_metadata=extra)
        unet_meta = {"model": "UNet3D", "config": asdict(self.unet.cfg), "prediction": self.prediction,
                     "autoencoder_fingerprint": weights_fingerprint(self.autoencoder), **extra}
        unet, written = self.unet, []
        if self.reads_prompts:  # a text model: the U-Net and its text encoder, each in its own file
            unet, encoder = self.unet.unet, self.unet.text_encoder
            text_path = save_weights(directory / f"{prefix}{TEXT_ENCODER_FILE}", encoder,
                                     {"model": "TextEncoder", "config": asdict(encoder.cfg), **extra})
            unet_meta["text_encoder"] = {"config": asdict(encoder.cfg), "fingerprint": weights_fingerprint(encoder)}
            written.append(Path(text_path))
            images = self.unet.reference_encoder
            if images is not None:  # content from a digit image too ("this 8")
                image_path = save_weights(directory / f"{prefix}{REFERENCE_ENCODER_FILE}", images,
                                          {"model": "ReferenceEncoder", "config": asdict(images.cfg), **extra})
                unet_meta["reference_encoder"] = {"config": asdict(images.cfg), "image_size": images.image_size,
                                                  "width": images.width, "fingerprint": weights_fingerprint(images)}
                written.append(Path(image_path))
        unet_path = save_weights(directory / f"{prefix}{UNET_FILE}", unet, unet_meta)
        return [Path(ae_path), Path(unet_path)] + written

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
        _check_parts_belong_together(unet_path, meta, ae_path, read_weights_metadata(ae_path))
        unet = UNet3D(_unet_config(meta["config"]))
        load_weights(unet_path, unet, device="cpu")
        if "text_encoder" in meta:  # a text model: its encoder is saved beside the U-Net
            images = (_load_reference_encoder(unet_path, meta["reference_encoder"])
                      if "reference_encoder" in meta else None)
            unet = TextConditionedDenoiser(unet, _load_text_encoder(unet_path, meta["text_encoder"]), images)
        autoencoder = FrameAutoencoder.load(ae_path)
        config = ExperimentConfig.from_dict(meta["experiment"]) if "experiment" in meta else None
        if config is not None and (config.image_size != autoencoder.cfg.image_size
                                   or config.autoencoder.latent_channels != autoencoder.cfg.latent_channels):
            raise ValueError(f"{unet_path} was trained for {config.image_size}-px frames and "
                             f"{config.autoencoder.latent_channels}-channel latents, but {ae_path} makes "
                             f"{autoencoder.cfg.image_size}-px frames and {autoencoder.cfg.latent_channels}-channel "
                             f"latents; keep a run's two weight files together")
        schedule = config.noise_schedule() if config is not None else NoiseSchedule()
        # what the U-Net outputs is part of the model: saved beside its weights (older files: in its training recipe)
        prediction = meta.get("prediction") or (config.train.prediction if config is not None else None)
        pipe = cls(autoencoder, unet, schedule, config, device=device, prediction=prediction)
        pipe.metadata = meta
        return pipe


def _batches(n: int, batch_size: int) -> list[slice]:
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}")
    return [slice(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]


def _rows(cond: dict | None, rows: slice) -> dict | None:
    return None if cond is None else {k: v[rows] for k, v in cond.items()}


def _check_parts_belong_together(unet_path: Path, unet_meta: dict, ae_path: Path, ae_meta: dict) -> None:
    """A U-Net learns the latents of one autoencoder: refuse a pair whose files say they were not trained together
    (the U-Net records its autoencoder's fingerprint; files saved before fingerprints existed are let through)."""
    want, have = unet_meta.get("autoencoder_fingerprint"), ae_meta.get("fingerprint")
    if want and have and want != have:
        raise ValueError(f"{unet_path} was trained on the latents of a different autoencoder than {ae_path} "
                         f"(fingerprint {want}, found {have}); the two files come from different runs. Keep a run's "
                         f"two weight files together, or train a denoiser for this autoencoder")


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


def _load_text_encoder(unet_path: Path, saved: dict):
    """The text encoder saved beside ``unet_path`` (``TEXT_ENCODER_FILE``, same prefix), checked against the
    fingerprint the U-Net recorded: the two were trained together."""
    from .text import TextEncoder, TextEncoderConfig

    path = unet_path.with_name(unet_path.name.replace(UNET_FILE, TEXT_ENCODER_FILE))
    if not path.is_file():
        raise FileNotFoundError(f"{unet_path} reads captions, but its text encoder {path.name} is missing from "
                                f"{path.parent}; keep a text model's three weight files together")
    names = {f.name for f in fields(TextEncoderConfig)}
    encoder = TextEncoder(TextEncoderConfig(**{k: v for k, v in saved["config"].items() if k in names}))
    load_weights(path, encoder, device="cpu")
    if saved.get("fingerprint") and weights_fingerprint(encoder) != saved["fingerprint"]:
        raise ValueError(f"{path} is not the text encoder {unet_path} was trained with (fingerprints differ); "
                         f"keep a run's weight files together")
    return encoder


def _load_reference_encoder(unet_path: Path, saved: dict):
    """The reference encoder saved beside ``unet_path`` (``REFERENCE_ENCODER_FILE``), checked against its
    fingerprint as the text encoder is."""
    from .reference import ReferenceConfig, ReferenceEncoder

    path = unet_path.with_name(unet_path.name.replace(UNET_FILE, REFERENCE_ENCODER_FILE))
    if not path.is_file():
        raise FileNotFoundError(f"{unet_path} reads digit images, but its reference encoder {path.name} is missing "
                                f"from {path.parent}; keep a video-to-video model's weight files together")
    names = {f.name for f in fields(ReferenceConfig)}
    cfg = ReferenceConfig(**{k: v for k, v in saved["config"].items() if k in names})
    encoder = ReferenceEncoder(saved["image_size"], saved["width"], cfg)
    load_weights(path, encoder, device="cpu")
    if saved.get("fingerprint") and weights_fingerprint(encoder) != saved["fingerprint"]:
        raise ValueError(f"{path} is not the reference encoder {unet_path} was trained with (fingerprints differ); "
                         f"keep a run's weight files together")
    return encoder


def _unet_config(d: dict) -> UNetConfig:
    names = {f.name for f in fields(UNetConfig)}
    return UNetConfig(**{k: v for k, v in d.items() if k in names})
