"""Experiment presets: one dataclass that says everything a run needs, from the data to the sampler.

Each module keeps the config of what it builds (``AutoencoderConfig``, ``UNetConfig``, ``TrainConfig``); an
experiment composes them with the data geometry, the noise schedule and the sampler's defaults:

    ExperimentConfig
      data          image_size, num_frames, num_digits, digit_size, rule, speed, num_clips
      autoencoder   AutoencoderConfig  (its train_steps / batch_size / lr train it)
      unet          UNetConfig         (in_channels = the autoencoder's latent channels)
      train         TrainConfig        (the denoiser's optimizer, objective, EMA, checkpoints)
      schedule      schedule_kind, schedule_steps, schedule_shift   (noise_schedule() builds it)
      sampling      sampler, sample_steps, guidance_scale

    cfg = ExperimentConfig.preset("cpu")     # or .smoke() / .cpu() / .gpu()
    print(cfg.summary())

Three presets:

* ``smoke``: tiny everything; the whole pipeline runs in seconds (tests, CI, ``VDIFF_SMOKE=1``).
* ``cpu``: a classroom laptop. From nothing, the autoencoder and the denoiser train together within a 10-minute budget
  on 2 CPU cores (at the step counts below, measured on a quiet 2-core CPU, the clips show readable digits that
  keep their identity as they move; a slower machine fits fewer steps into the budget). The choices
  (measured, see ``docs/benchmarks.md``): 32×32 frames and 8 frames per clip, one digit of 20 px (a smaller digit
  leaves room to move), latents 4×8×8 per frame, a small factorized (2+1)-D U-Net with attention at 4×4; the clip
  stage's peak learning rate 2e-3 and guidance 4, which keep the digit in 0.975–0.98 of the clips of a 10-minute
  run on the 2-core CPU at about 1,050 clip steps and more (the shipped ``cpu`` weights: the step counts one such
  run chose, ``train --preset cpu --plan 323,626,1179``; ``cpu-text``, ``cpu-frames`` and ``cpu-v2v`` keep the first
  recipe, clip lr 1e-3 and guidance 3, ``_cpu_first_recipe``).
* ``gpu``: the full mode of the notebooks: 64×64, 16 frames, two digits, a U-Net of tens of millions of
  parameters that fits a 16 GB GPU.
* ``smoke-text``, ``cpu-text``, ``gpu-text``: the same geometries conditioned on a caption instead of a label
  (issue 10, notebook 10): stroke styles on, paraphrased captions from the training templates, a text encoder
  trained jointly with the U-Net, cross-attention at the U-Net's lowest level, some (digit, motion) and
  (digit, style) combinations held out of training. ``cpu-text``'s step counts are the ``cpu`` recipe's, not yet
  measured on captions.
* ``smoke-frames``, ``cpu-frames``, ``gpu-frames``: the label presets, able to be given frames too (issue 12,
  notebook 11): one model predicts, interpolates, generates, and rolls out long videos.
* ``smoke-v2v``, ``cpu-v2v``, ``gpu-v2v``: the text presets, also reading an input video's structure maps (issue 11,
  notebook 12): video-to-video, the structure of one clip with the content of a prompt (Gen-1 in miniature).

Each recipe is named once, here: the module configs have only a ``smoke()`` test size, and everything that
trains a real model (``train``, ``demo``, the notebooks, ``recipe.train_denoiser``) takes its networks and
training from ``ExperimentConfig.preset(name)``. The presets spell out every value, so the shipped model's
recipe does not move when a module's defaults do.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace

from .autoencoder import AutoencoderConfig
from .config import check_preset
from .frames import FramesConfig, cond_channels_for
from .sampling import SAMPLERS
from .schedule import NoiseSchedule, check_shift
from .reference import ReferenceConfig
from .structure import StructureConfig, structure_channels_for
from .text import TextEncoderConfig
from .train import TrainConfig
from .unet import UNetConfig


@dataclass
class ExperimentConfig:
    name: str = "custom"  # the preset it came from (or "custom")
    # --- the data: Moving MNIST clips (vdiff_edu.moving_mnist.MovingMNIST)
    image_size: int = 32  # frame side in pixels
    num_frames: int = 8  # frames per clip
    num_digits: int = 1  # digits per clip (also the U-Net's number of label slots)
    digit_size: int = 20  # digit side in pixels (MNIST's own is 28)
    rule: str = "deterministic"  # "deterministic" (Srivastava 2015) or "stochastic" (Denton & Fergus 2018)
    speed: float | None = None  # px per frame; None: MovingMNIST's default for the frame size
    num_clips: int = 4_000  # training clips, encoded once into cached latents
    reverse_augment: bool = True  # also train on every clip played backwards (still a valid bounce): 2× data
    seed: int = 0  # seeds the data, the autoencoder's training and the denoiser's
    styles: tuple[str, ...] = ("regular",)  # stroke styles the digits draw from (captions.STYLES); ("regular",) =
                                            # the clips made before styles existed
    holdout: tuple[tuple[int, str], ...] = ()  # (digit, motion) and (digit, style) pairs kept out of training,
                                               # e.g. ((3, "vertical"), (7, "bold")): measured as unseen combinations
    # --- the three networks' configs
    autoencoder: AutoencoderConfig = field(default_factory=AutoencoderConfig)
    unet: UNetConfig = field(default_factory=UNetConfig)
    text: TextEncoderConfig | None = None  # a caption-conditioned model: its text encoder (trained jointly with the
                                           # U-Net, conditioning.TextConditionedDenoiser); None = a label model
    caption_drop_prob: float = 0.1  # how often training replaces the caption by the empty prompt (for guidance)
    frames: FramesConfig | None = None  # a model that can be given frames (prediction, interpolation, rollouts;
                                        # conditioning.ContextFrames, notebook 11); None = it never is
    structure: StructureConfig | None = None  # a model that also reads an input video's structure maps
                                              # (video-to-video, Gen-1; conditioning.StructureMaps, notebook 12)
    reference: ReferenceConfig | None = None  # a video-to-video model that also takes its content from a digit
                                              # image ("this 8"; conditioning.CaptionOrReference); needs text
    label_embedding_std: float | None = None  # re-initialise the U-Net's label embedding at this std (None: keep its
                                              # own init, std 0.02). At 0.02 the label is a whisper next to the
                                              # timestep embedding and a minutes-long run hardly learns it
                                              # (measured: docs/benchmarks.md, "what the cpu recipe buys")
    # --- the denoiser's training: first single frames (optional), then clips
    image_train: TrainConfig | None = None  # stage A: train on single latent frames (batch_size counts frames),
                                            # temporal layers idle; None: skip (Video LDM, Blattmann et al. 2023)
    train: TrainConfig = field(default_factory=TrainConfig)  # stage B: train on clips (batch_size counts clips)
    # --- how long: a time budget that sizes every stage on the machine at hand (recipe.plan_steps)
    time_budget_minutes: float | None = None  # the whole run (data to samples) ends within this many minutes: the
                                              # step counts above are scaled together, keeping their proportions, to
                                              # what this machine can do; None: the step counts as written
    # --- the noise schedule (vdiff_edu.schedule.NoiseSchedule)
    schedule_kind: str = "cosine"  # "linear", "cosine" or "sigmoid"
    schedule_steps: int = 1000  # T, the number of noise levels
    schedule_shift: float = 1.0  # every SNR divided by shift² (schedule.shift_snr); > 1: more steps at high noise
    # --- sampling defaults (vdiff_edu.sampling.sample)
    sampler: str = "dpmpp"  # "ddpm", "ddim" or "dpmpp" (DPM-Solver++ 2M)
    sample_steps: int = 25  # network calls per clip
    guidance_scale: float = 3.0  # classifier-free guidance; 1 = plain conditional model

    def __post_init__(self):
        if self.sampler not in SAMPLERS:
            raise ValueError(f"ExperimentConfig.sampler must be one of {SAMPLERS}; got {self.sampler!r}")
        check_shift(self.schedule_shift, "ExperimentConfig.schedule_shift")
        if self.image_size % self.autoencoder.downsample:
            raise ValueError(f"image_size={self.image_size} must be a multiple of the autoencoder's downsampling "
                             f"{self.autoencoder.downsample}; use e.g. image_size=32")
        if self.unet.in_channels != self.autoencoder.latent_channels:
            raise ValueError(f"unet.in_channels={self.unet.in_channels} must equal autoencoder.latent_channels="
                             f"{self.autoencoder.latent_channels}: the U-Net denoises the autoencoder's latents")
        if self.unet.num_label_slots not in (0, self.num_digits):
            raise ValueError(f"unet.num_label_slots={self.unet.num_label_slots} must be num_digits={self.num_digits} "
                             f"(one label per digit) or 0 (unconditional)")
        if self.image_train is not None and self.unet.temporal_downsample_levels:
            raise ValueError("image_train (single frames) cannot run with unet.temporal_downsample_levels, which "
                             "need several frames; set image_train=None or temporal_downsample_levels=()")
        if self.time_budget_minutes is not None and not self.time_budget_minutes > 0:
            raise ValueError(f"ExperimentConfig.time_budget_minutes must be > 0 or None; got {self.time_budget_minutes}")
        if self.text is not None:
            if self.unet.context_dim != self.text.width:
                raise ValueError(f"unet.context_dim={self.unet.context_dim} must equal text.width={self.text.width}: "
                                 f"the U-Net's cross-attention reads the text encoder's token features; set "
                                 f"UNetConfig(context_dim={self.text.width})")
            if self.reverse_augment:
                raise ValueError("reverse_augment=True with captions: a clip played backwards starts in another "
                                 "direction, so its caption would lie; set reverse_augment=False for a text preset")
            if not 0.0 <= self.caption_drop_prob < 1.0:
                raise ValueError(f"caption_drop_prob must be in [0, 1) (0 = never dropped, no guidance); got "
                                 f"{self.caption_drop_prob}")
        if self.reference is not None and self.text is None:
            raise ValueError("reference (content from a digit image) joins a caption's tokens in cross-attention, "
                             "so it needs a text model: set text=TextEncoderConfig(...) too, or reference=None")
        if self.frames is not None and self.unet.cond_channels != cond_channels_for(self.autoencoder.latent_channels):
            want = cond_channels_for(self.autoencoder.latent_channels)
            raise ValueError(f"a frames model reads the given frames (their latents, the nearest one's, and the mask) "
                             f"as {want} extra input channels; set UNetConfig(cond_channels={want}) (it is "
                             f"{self.unet.cond_channels})")
        if self.structure is not None:
            want, d = structure_channels_for(self.autoencoder.downsample), self.autoencoder.downsample
            if self.unet.structure_channels != want:
                raise ValueError(f"a video-to-video model reads an input's structure maps (each {d}×{d} patch as "
                                 f"channels, and the level) as "
                                 f"{want} extra input channels; set UNetConfig(structure_channels={want}) (it is "
                                 f"{self.unet.structure_channels})")
            self.structure.levels(self.image_size)  # the frame side must allow the levels asked for
        if self.num_clips < 1 or self.sample_steps < 1:
            raise ValueError(f"num_clips and sample_steps must be >= 1; got {self.num_clips}, {self.sample_steps}")

    # ------------------------------------------------------------ derived sizes

    @property
    def latent_size(self) -> int:
        """Side of a latent frame: image_size / the autoencoder's downsampling."""
        return self.image_size // self.autoencoder.downsample

    @property
    def latent_shape(self) -> tuple[int, int, int, int]:
        """One latent clip, ``(c_z, f, h/d, w/d)``."""
        return (self.autoencoder.latent_channels, self.num_frames, self.latent_size, self.latent_size)

    def dataset_kwargs(self) -> dict:
        """Keyword arguments for ``MovingMNIST`` that give this experiment's clips."""
        kwargs = dict(num_frames=self.num_frames, image_size=self.image_size, num_digits=self.num_digits,
                      digit_size=self.digit_size, rule=self.rule, speed=self.speed)
        if tuple(self.styles) != ("regular",):
            kwargs["styles"] = tuple(self.styles)
        if self.holdout:
            kwargs["holdout"] = {(int(d), v) for d, v in self.holdout}
        return kwargs

    # ------------------------------------------------------------ presets

    @classmethod
    def smoke(cls) -> "ExperimentConfig":
        """Everything tiny: 16×16 frames, 4 frames, a few training steps. Seconds on a CPU."""
        return cls(
            name="smoke", image_size=16, num_frames=4, num_digits=1, digit_size=10, num_clips=64,
            autoencoder=AutoencoderConfig(base_channels=8, channel_mults=(1, 2, 2), num_res_blocks=1, groups=4,
                                          image_size=16, latent_channels=4, kl_weight=1e-4,
                                          train_steps=10, batch_size=16, lr=3e-3),
            unet=UNetConfig(in_channels=4, out_channels=4, base_channels=8, channel_mults=(1, 2), num_res_blocks=1,
                            spatial_attn_levels=(), temporal_attn_levels=(1,), num_heads=2, head_dim=8,
                            norm_groups=4, num_label_slots=1),
            label_embedding_std=0.3,
            image_train=TrainConfig(steps=5, batch_size=16, lr=2e-3, warmup=1, ema_decay=0.9, weight_decay=0.0,
                                    log_every=5, checkpoint_every=0, keep_last=1, progress="text"),
            train=TrainConfig(steps=10, batch_size=4, lr=1e-3, warmup=2, ema_decay=0.9, weight_decay=0.0,
                              log_every=5, checkpoint_every=5, keep_last=2, progress="text"),
            sampler="ddpm", sample_steps=4, guidance_scale=2.0,
        )

    @classmethod
    def cpu(cls) -> "ExperimentConfig":
        """A laptop, from nothing to readable moving digits in under 10 minutes on 2 cores (see the module doc)."""
        return cls(
            name="cpu", image_size=32, num_frames=8, num_digits=1, digit_size=20, num_clips=4_000,
            # 32×32 frames → 4×8×8 latents; narrow at full resolution, where convolutions cost the most
            autoencoder=AutoencoderConfig(base_channels=16, channel_mults=(1, 2, 4), num_res_blocks=1, groups=8,
                                          image_size=32, latent_channels=4, kl_weight=1e-4,
                                          train_steps=400, batch_size=64, lr=2e-3),
            # latents (4, 8, 8, 8): levels 8×8 (32 ch) and 4×4 (64 ch, spatial + temporal attention); 1.1 M params
            unet=UNetConfig(in_channels=4, out_channels=4, base_channels=32, channel_mults=(1, 2), num_res_blocks=1,
                            spatial_attn_levels=(1,), temporal_attn_levels=(1,), time_mixing="factorized",
                            num_heads=4, head_dim=32, norm_groups=8, max_frames=32, num_classes=10,
                            num_label_slots=1),
            label_embedding_std=0.3,
            # A: what digits look like, from single frames (8× cheaper per sample than a clip) ...
            image_train=TrainConfig(steps=800, batch_size=256, lr=2e-3, warmup=50, min_lr_ratio=0.1, weight_decay=0.0,
                                    ema_decay=0.995, prediction="v", min_snr_gamma=5.0, cond_drop_prob=0.1,
                                    log_every=50, checkpoint_every=400, keep_last=1),
            # B: ... then how they move, from clips (peak lr 2e-3, the single-frame stage's; at equal steps it keeps
            # the digit as 1e-3 does and scores a lower FVD-MM, 4.3 against 4.9; the first shipped weights used 1e-3)
            train=TrainConfig(steps=1_400, batch_size=32, lr=2e-3, warmup=50, min_lr_ratio=0.1, weight_decay=0.0,
                              ema_decay=0.995, prediction="v", min_snr_gamma=5.0, cond_drop_prob=0.1,
                              log_every=50, checkpoint_every=700, keep_last=2),
            schedule_kind="cosine", schedule_steps=1000,
            # ancestral DDPM: on this briefly trained model it moves the digits more plausibly and scores a lower
            # FVD-MM than DDIM or DPM-Solver++ at any step count, which draw slightly sharper frames
            # (benchmarks/bench_samplers.py; table in docs/benchmarks.md)
            # guidance 4 (3 before issue 15): under the 10-minute budget the digit is then kept in 0.98 and 0.975 of
            # the clips (two runs; 0.935 and 0.95 at 3), with motion plausibility 0.75 and 0.80 (0.78 and 0.82 at 3)
            sampler="ddpm", sample_steps=50, guidance_scale=4.0,
            # a classroom laptop is not the machine these steps were measured on: fit them into 10 minutes there
            # (`--minutes 0` trains exactly the steps above; `--plan 323,626,1179`, the shipped weights' counts, those)
            time_budget_minutes=10.0,
        )

    @classmethod
    def _cpu_first_recipe(cls) -> "ExperimentConfig":
        """``cpu`` as it was when the shipped cpu-text, cpu-frames and cpu-v2v weights were trained (clip-stage peak
        learning rate 1e-3, guidance 3): their recipes stay the ones their model cards give."""
        base = cls.cpu()
        return replace(base, train=replace(base.train, lr=1e-3), guidance_scale=3.0)

    @classmethod
    def gpu(cls) -> "ExperimentConfig":
        """One 16 GB GPU: 64×64, 16 frames, two digits; the notebooks' full mode."""
        return cls(
            name="gpu", image_size=64, num_frames=16, num_digits=2, digit_size=28, num_clips=50_000,
            autoencoder=AutoencoderConfig(base_channels=64, channel_mults=(1, 2, 4), num_res_blocks=2, groups=32,
                                          image_size=64, latent_channels=4, kl_weight=1e-4,
                                          train_steps=20_000, batch_size=128, lr=1e-3),
            unet=UNetConfig(in_channels=4, out_channels=4, base_channels=96, channel_mults=(1, 2, 3), num_res_blocks=2,
                            spatial_attn_levels=(1, 2), temporal_attn_levels=(0, 1, 2), num_heads=8, head_dim=32,
                            norm_groups=32, max_frames=32, num_label_slots=2, dropout=0.1),
            train=TrainConfig(steps=60_000, batch_size=64, lr=2e-4, warmup=1_000, ema_decay=0.9999,
                              log_every=100, checkpoint_every=2_000, compile=True),
            label_embedding_std=0.3,  # as the cpu preset, where it was measured (no GPU run measured yet)
            sampler="dpmpp", sample_steps=25, guidance_scale=3.0,
        )

    # ------------------------------------------------------------ text presets (issue 10): prompts instead of labels
    # Decisions, for all three:
    # * num_label_slots=0: a label beside the caption would let the U-Net read the digit from the label and ignore
    #   the text, and at sampling a prompt has no label to give; the caption is the only condition.
    # * the text encoder trains jointly with the U-Net (conditioning.TextConditionedDenoiser): one optimizer, one
    #   EMA, no extra stage. Pre-training it as a tiny CLIP and freezing it did worse on every measure at the cpu
    #   budget (benchmarks/ablate_text.py --variant frozen-clip; docs/text.md).
    # * cross-attention at the lowest level only (cross_attn_levels=(1,)): the cheapest place, where every position
    #   sees the whole digit; the words say what and how it moves, not where each pixel goes.
    # * pooled_context=True: the mean of the prompt's token features also joins the timestep embedding, as a label
    #   does, so every block of every level knows the prompt (Imagen, Saharia et al. 2022); cross-attention adds
    #   which word each position reads. Chosen, not yet measured against cross-attention alone
    #   (benchmarks/ablate_text.py --variant no-pooled).
    # * reverse_augment=False: a clip played backwards starts in another direction than its caption says.

    @classmethod
    def smoke_text(cls) -> "ExperimentConfig":
        """``smoke`` conditioned on captions: seconds on a CPU (tests, CI)."""
        # width 32, one layer, 20 positions (a one-digit caption is ≤ 16 words)
        return cls.smoke()._with_text("smoke-text", TextEncoderConfig.smoke(), cross_attn_levels=(1,))

    @classmethod
    def cpu_text(cls) -> "ExperimentConfig":
        """``cpu``'s geometry and budget (32×32, 8 frames, one digit, 10 minutes), conditioned on captions."""
        # width 64, two layers, 20 positions
        return cls._cpu_first_recipe()._with_text("cpu-text", TextEncoderConfig.cpu(), cross_attn_levels=(1,))

    @classmethod
    def gpu_text(cls) -> "ExperimentConfig":
        """``gpu``'s geometry (64×64, 16 frames, two digits), conditioned on captions (not yet run on a GPU)."""
        # width 128, four layers, 40 positions (a two-digit caption is ≤ 33 words)
        return cls.gpu()._with_text("gpu-text", TextEncoderConfig.gpu(), cross_attn_levels=(2,))

    def _with_text(self, name: str, text: TextEncoderConfig, cross_attn_levels: tuple[int, ...]) -> "ExperimentConfig":
        """This recipe, conditioned on captions instead of labels (the decisions above)."""
        return replace(self, name=name, styles=("thin", "regular", "bold"), reverse_augment=False,
                       holdout=((3, "vertical"), (7, "bold")), text=text, caption_drop_prob=0.1,
                       unet=replace(self.unet, context_dim=text.width, cross_attn_levels=cross_attn_levels,
                                    pooled_context=True, num_label_slots=0),
                       label_embedding_std=None)

    # ------------------------------------------------------------ frames presets (issue 12): given frames as well
    # The label presets' recipes, plus ContextFrames: each training clip shows its model the first frames (40 %),
    # the last (10 %), both ends (30 %) or none (20 %), as clean latents, the nearest given frame's latents and a
    # mask in 9 more input channels, and the given frames are noised by up to std 0.2 (noise augmentation) so that
    # rollouts on the model's own frames do not compound its errors as fast. The labels stay (a rollout can still
    # be asked for its digit) but the clip stage drops them half the time, not 10 %: given frames are read with
    # the null label, and a model that nearly always had its label learns to take the digit from the label and
    # not from the frames; and without min-SNR weighting (Hang et al. 2023), which for v-prediction gives the
    # noisiest timesteps a weight of about SNR_t ≈ 0 — exactly where the given frames decide what the clip shows
    # (at low noise x_t shows it already), so a min-SNR model hardly learns to read them (measured:
    # docs/benchmarks.md, "Frames as the condition").

    @classmethod
    def smoke_frames(cls) -> "ExperimentConfig":
        """``smoke`` that can also be given frames: seconds on a CPU (tests, CI)."""
        return cls.smoke()._with_frames("smoke-frames")

    @classmethod
    def cpu_frames(cls) -> "ExperimentConfig":
        """``cpu``'s geometry, recipe and 10-minute budget, for a model that can also be given frames."""
        return cls._cpu_first_recipe()._with_frames("cpu-frames")

    @classmethod
    def gpu_frames(cls) -> "ExperimentConfig":
        """``gpu``'s geometry (64×64, 16 frames, two digits) that can be given frames: the Stochastic Moving MNIST
        protocol (5 given → 10 predicted) fits in its 16 frames (not yet run on a GPU)."""
        return cls.gpu()._with_frames("gpu-frames")

    def _with_frames(self, name: str) -> "ExperimentConfig":
        """This recipe, able to be given frames (the decisions above)."""
        return replace(self, name=name, frames=FramesConfig(noise_aug=0.2),
                       unet=replace(self.unet, cond_channels=cond_channels_for(self.autoencoder.latent_channels)),
                       train=replace(self.train, cond_drop_prob=0.5, min_snr_gamma=None))

    # ------------------------------------------------------------ video-to-video presets (issue 11): structure + text
    # The text presets' recipes, plus StructureMaps: each training clip shows its model its own silhouette pooled at
    # a level drawn uniformly from 1 (a 2×2 grid) to the finest (single pixels), or no structure at all (10 %), in
    # d² + 1 more input channels; the captions name only the digit and its stroke (StructureConfig.caption_says),
    # since the motion comes from the structure; and one clip-stage step in ten trains on single frames (joint
    # image-video training, TrainConfig.frame_prob), so that the model keeps the image prediction which
    # temporal-consistency guidance pushes away from (Gen-1, section 3.3); and 40 % of the clips are shown their own
    # digit image (first frame, centred) instead of their caption, so that content can come from either
    # (ReferenceConfig, "this 8" beside "the digit 8"; Gen-1 takes content from an image embedding). Everything else
    # (the text encoder trained jointly, the held-out pairs, the step counts) is the text recipe's, not yet tuned for
    # structure.

    @classmethod
    def smoke_v2v(cls) -> "ExperimentConfig":
        """``smoke-text`` that also reads an input video's structure: seconds on a CPU (tests, CI)."""
        return cls.smoke_text()._with_structure("smoke-v2v")

    @classmethod
    def cpu_v2v(cls) -> "ExperimentConfig":
        """``cpu-text``'s geometry, recipe and budget, reading an input video's structure as well."""
        return cls.cpu_text()._with_structure("cpu-v2v")

    @classmethod
    def gpu_v2v(cls) -> "ExperimentConfig":
        """``gpu-text``'s geometry (64×64, 16 frames, two digits), reading an input's structure (not yet run on a GPU)."""
        return cls.gpu_text()._with_structure("gpu-v2v")

    def _with_structure(self, name: str) -> "ExperimentConfig":
        """This text recipe, reading an input video's structure maps too (the decisions above)."""
        return replace(self, name=name, structure=StructureConfig(), reference=ReferenceConfig(),
                       unet=replace(self.unet, structure_channels=structure_channels_for(self.autoencoder.downsample)),
                       train=replace(self.train, frame_prob=0.1))

    def noise_schedule(self) -> NoiseSchedule:
        """The schedule this experiment trains and samples with."""
        return NoiseSchedule(self.schedule_kind, self.schedule_steps, shift=self.schedule_shift)

    @classmethod
    def preset(cls, name: str) -> "ExperimentConfig":
        """``ExperimentConfig.preset("cpu")`` or ``("cpu-text")``; an unknown name says which exist."""
        return getattr(cls, check_preset(name).replace("-", "_"))()

    # ------------------------------------------------------------ to and from JSON (weights' metadata)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ExperimentConfig":
        """Rebuild a config saved with ``to_dict`` (unknown keys are ignored, so older files still load)."""
        known = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k in known}
        sub = {"autoencoder": AutoencoderConfig, "unet": UNetConfig}
        for key, klass in sub.items():
            if isinstance(d.get(key), dict):
                names = {f.name for f in fields(klass)}
                d[key] = klass(**{k: v for k, v in d[key].items() if k in names})
        for key in ("train", "image_train"):
            if isinstance(d.get(key), dict):
                d[key] = TrainConfig.from_dict(d[key])
        if isinstance(d.get("frames"), dict):
            names = {f.name for f in fields(FramesConfig)}
            d["frames"] = FramesConfig(**{k: v for k, v in d["frames"].items() if k in names})
        if isinstance(d.get("structure"), dict):
            names = {f.name for f in fields(StructureConfig)}
            d["structure"] = StructureConfig(**{k: v for k, v in d["structure"].items() if k in names})
        if isinstance(d.get("reference"), dict):
            names = {f.name for f in fields(ReferenceConfig)}
            d["reference"] = ReferenceConfig(**{k: v for k, v in d["reference"].items() if k in names})
        if isinstance(d.get("text"), dict):
            names = {f.name for f in fields(TextEncoderConfig)}
            d["text"] = TextEncoderConfig(**{k: v for k, v in d["text"].items() if k in names})
        if "styles" in d:
            d["styles"] = tuple(d["styles"])
        if "holdout" in d:
            d["holdout"] = tuple((int(a), b) for a, b in d["holdout"])  # JSON lists back to pairs
        return cls(**d)

    def summary(self) -> str:
        """A few lines a learner can read: the data, the three networks' sizes, the training budget."""
        ae, u, t = self.autoencoder, self.unet, self.train
        return "\n".join([
            f"preset {self.name!r}",
            f"  data         {self.num_clips:,} clips of {self.num_frames}×{self.image_size}×{self.image_size}, "
            f"{self.num_digits} digit(s) of {self.digit_size} px ({self.rule})",
            f"  autoencoder  {self.image_size}×{self.image_size} → {ae.latent_channels}×{self.latent_size}×"
            f"{self.latent_size}, widths {ae.base_channels}×{ae.channel_mults}, {ae.train_steps} steps × "
            f"{ae.batch_size} frames",
            f"  denoiser     UNet3D widths {u.base_channels}×{u.channel_mults}, {u.time_mixing}, {t.prediction}-"
            f"prediction; " + (f"{self.image_train.steps} steps × {self.image_train.batch_size} single frames, then "
                               if self.image_train is not None else "") +
            f"{t.steps} steps × {t.batch_size} clips, lr {t.lr:g}",
            f"  schedule     {self.schedule_kind}, T={self.schedule_steps}"
            + (f", SNR shifted by 1/{self.schedule_shift:g}²" if self.schedule_shift != 1 else "") +
            f"; sampler {self.sampler}, "
            f"{self.sample_steps} steps, guidance {self.guidance_scale:g}",
        ] + ([f"  text         TextEncoder width {self.text.width} × {self.text.num_layers} layers, trained with the "
              f"U-Net; cross-attention at levels {self.unet.attn_cross_levels}; captions dropped "
              f"{self.caption_drop_prob:g}; styles {', '.join(self.styles)}; held out {list(self.holdout)}"]
             if self.text is not None else []) + ([f"  frames       given frames as {self.unet.cond_channels} more input "
              f"channels; tasks past/future/both/none drawn {self.frames.task_probs}; noise augmentation up to "
              f"std {self.frames.noise_aug:g}"] if self.frames is not None else []) + ([f"  structure    an input's "
              f"silhouette {self.structure.pooling}-pooled at levels {self.structure.levels(self.image_size)} (0 = none, drawn "
              f"{self.structure.drop_prob:g}) as {self.unet.structure_channels} more input channels; captions name "
              f"{' and '.join(self.structure.caption_says)}"] if self.structure is not None else []) + (
             [f"  reference    {self.reference.prob:g} of the clips shown their own digit image (centred) instead of "
              f"their caption: content from a caption or a digit image"] if self.reference is not None else []) + ([
              f"  time budget  {self.time_budget_minutes:g} min: the step counts are scaled to fit this machine "
              f"(--minutes 0: exactly these)"] if self.time_budget_minutes else []))
