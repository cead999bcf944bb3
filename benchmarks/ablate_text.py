"""What limits text-to-video: train a variant of the ``cpu-text`` recipe from nothing and measure its faithfulness.

    VDIFF_MNIST_DIR=/path/to/mnist python benchmarks/ablate_text.py --variant no-pooled --n 100
    VDIFF_MNIST_DIR=/path/to/mnist python benchmarks/ablate_text.py --variant frozen-clip --n 100

Variants (each changes one thing of ``ExperimentConfig.preset("cpu-text")``):

* ``preset``: the preset as shipped: the text encoder trained jointly with the U-Net, read through the pooled
  vector (added to the timestep embedding) and through cross-attention at the lowest level.
* ``no-pooled``: cross-attention only (``unet.pooled_context=False``): the words reach the U-Net only where
  cross-attention is.
* ``frozen-clip``: the text encoder is first trained as the text tower of a tiny CLIP on the same training clips
  and captions (``--clip-steps``, ``text.train_tiny_clip``), then frozen; the U-Net learns to read its features.
  This is Gen-2's arrangement (a pre-trained CLIP text encoder, never trained with the denoiser) in miniature.
* ``noisy-steps``: the clip stage trains more on the noisiest steps, where the direction of travel is worth the
  most loss (``benchmarks/motion_in_the_mean.py``): its t drawn logit-normal, loc 1.5 and scale 1.5 (median t = 818,
  t ≥ 950 on 17 % of draws against 5 % uniform; ``train.draw_timesteps``), and plain v-loss instead of
  min-SNR-γ, whose weight for v, min(SNR, γ)/(SNR + 1), is nearly 0 on exactly those steps.
* ``told-direction``: an oracle, to tell the text encoder's part from the U-Net's. Besides its caption (as in the
  preset) the U-Net is told the caption's direction of travel as a clean class label, parsed from the caption by the
  grammar (``captions.parse``) and added to the timestep embedding the way ``cpu`` is told its digit
  (``ParsedDirection``): 8 directions, 3 motions named without a direction, or the null label. If the clips then
  follow the direction, the U-Net and the budget can learn motion and what fails is the text encoder; if they
  still do not, no text encoder would help at this budget.
* ``shifted-schedule``: the noise schedule with every SNR divided by 3² (``ExperimentConfig.schedule_shift``,
  ``schedule.shift_snr``; Hoogeboom et al. 2023), for training and sampling, and the clip stage on plain v-loss (no
  min-SNR-γ, which would weigh the new high-noise steps near 0). An 8-frame clip gives its path away at a far lower
  SNR per element than one frame gives its digit, so with the preset's cosine schedule the direction is worth
  something only at t ≥ 950, where a 50-step sampler spends 2–3 steps; the shift gives it about 17 % of the steps.
* ``no-frames-stage``: no single-frame stage; its wall time goes to the clips (2,100 clip steps instead of 1,400).
  A single frame cannot show a motion, so in that stage the motion and direction words are noise the model learns
  to ignore; without it, do the words survive?
* ``clips-x3``: the clip stage three times as long, 4,200 steps instead of 1,400 (the 1,400 took 7–8 min on the
  2-core CPU in docs/text.md's runs): is it the budget?

Variants join with ``+``: ``told-direction+noisy-steps`` makes both changes.

Each run trains with ``vdiff_edu.recipe.train_pipeline`` (the recipe's step counts, no time budget) under
``runs/ablate_text_<variant>/`` and is measured by ``bench_text.measure``: faithfulness per attribute on seen,
unseen and paraphrased prompts, ``--n`` clips per group; then ``probe_text`` says which words its loss uses.
Prints the wall time of each stage and the tables; ``docs/text.md`` keeps what we measured.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import probe_text  # noqa: E402
from bench_text import measure, table  # noqa: E402

from vdiff_edu import recipe  # noqa: E402
from vdiff_edu.config import runs_dir  # noqa: E402
from vdiff_edu.presets import ExperimentConfig  # noqa: E402
from vdiff_edu import captions, pipeline  # noqa: E402
from vdiff_edu.conditioning import Conditioning, DigitLabels  # noqa: E402
from vdiff_edu.moving_mnist import MovingMNIST  # noqa: E402
from vdiff_edu.text import TinyClipConfig, train_tiny_clip, zero_shot_by_attribute  # noqa: E402

VARIANTS = ("preset", "no-pooled", "frozen-clip", "noisy-steps", "told-direction", "clips-x3", "shifted-schedule",
            "no-frames-stage")


class ParsedDirection(DigitLabels):
    """The oracle of ``told-direction``: a caption's direction of travel as a label ``(b, 1)``, read by the grammar,
    not learned: ``DIRECTIONS`` index 0–7; 8 + the ``MOTIONS`` index where the caption names a motion but no
    direction; 11, the null label, where it names neither (and for a dropped row). It fills the U-Net's ``labels``
    entry (``LabelEmbedding``, added to the timestep embedding); the caption is still read as in the preset."""

    name = "told_direction"
    NUM_CLASSES = len(captions.DIRECTIONS) + len(captions.MOTIONS)  # 11; 11 is the null label

    def __init__(self, drop_prob: float = 0.1):
        super().__init__(self.NUM_CLASSES, 1, drop_prob)

    def from_batch(self, batch: dict, device=None) -> dict[str, torch.Tensor]:
        if "told_direction" in batch:  # rows of the latent cache
            return {"labels": torch.as_tensor(batch["told_direction"]).long().to(device)}
        prompts = [batch["caption"]] if isinstance(batch["caption"], str) else list(batch["caption"])
        labels = [self.label_of(captions.parse(p)) for p in prompts]
        return {"labels": torch.tensor(labels, dtype=torch.int64, device=device)[:, None]}  # (b, 1)

    def cache_entries(self, batch: dict) -> dict[str, torch.Tensor]:
        return {"told_direction": self.from_batch(batch)["labels"].cpu()}

    def label_of(self, meaning: captions.Meaning) -> int:
        if meaning.direction is not None:
            return captions.DIRECTIONS.index(meaning.direction)
        if meaning.motion is not None:
            return len(captions.DIRECTIONS) + captions.MOTIONS.index(meaning.motion)
        return self.null_index


def told_direction_conditioning(build):
    """``conditioning_for`` with the caption's parsed direction added (``ParsedDirection``)."""
    def conditioning_for(cfg, drop_prob=None, single_frames=False):
        kinds = build(cfg, drop_prob, single_frames).without("labels").kinds
        drop = cfg.train.cond_drop_prob if drop_prob is None else drop_prob
        return Conditioning([ParsedDirection(drop)] + kinds)
    return conditioning_for


def variant_config(name: str, preset: str = "cpu-text") -> ExperimentConfig:
    """The preset with the variant's changes; ``a+b`` applies both (e.g. ``told-direction+noisy-steps``)."""
    cfg = ExperimentConfig.preset(preset)
    parts = name.split("+")
    for part in parts:
        if part not in VARIANTS or (part in ("preset", "frozen-clip") and len(parts) > 1):
            raise SystemExit(f"--variant must be one of {', '.join(VARIANTS)}, or several of them but preset and "
                             f"frozen-clip joined by '+' (e.g. told-direction+shifted-schedule); got {name!r}")
        if part == "no-pooled":
            cfg = replace(cfg, unet=replace(cfg.unet, pooled_context=False))
        if part == "told-direction":
            cfg = replace(cfg, unet=replace(cfg.unet, num_label_slots=1, num_classes=ParsedDirection.NUM_CLASSES))
        if part == "shifted-schedule":
            cfg = replace(cfg, schedule_shift=3.0, train=replace(cfg.train, min_snr_gamma=None))
        if part == "no-frames-stage":  # stage A's wall time given to clips, as footnote 2 of docs/text.md
            cfg = replace(cfg, image_train=None, train=replace(cfg.train, steps=cfg.train.steps * 3 // 2))
        if part == "clips-x3":
            cfg = replace(cfg, train=replace(cfg.train, steps=3 * cfg.train.steps))
        if part == "noisy-steps":
            cfg = replace(cfg, train=replace(cfg.train, timesteps="logit-normal", timestep_loc=1.5,
                                             timestep_scale=1.5, min_snr_gamma=None))
    return cfg


def pretrained_text_encoder(cfg: ExperimentConfig, steps: int, mnist_dir=None):
    """A tiny CLIP trained on the run's own training clips and captions (its text tower is then frozen)."""
    ds = recipe.training_dataset(cfg, mnist_dir)
    items = [ds[i] for i in range(len(ds))]
    clips = torch.stack([it["video"] for it in items])  # (n, 1, f, h, w)
    prompts = [it["caption"] for it in items]
    clip_cfg = TinyClipConfig.cpu(text=cfg.text, num_frames=cfg.num_frames)
    model, history = train_tiny_clip(clips, prompts, clip_cfg, steps=steps, device="cpu", seed=cfg.seed,
                                     log_every=max(1, steps // 5))
    return model, history


def zero_shot_on_eval_clips(clip_model, cfg, n: int = 256) -> dict[str, float]:
    """``text.zero_shot_by_attribute`` on n clips of the evaluation split (every combination)."""
    kwargs = cfg.dataset_kwargs()
    kwargs.pop("holdout", None)
    ds = MovingMNIST("eval", length=n, seed=0, verbose=False, **kwargs)
    items = [ds[i] for i in range(n)]
    clips = torch.stack([it["video"] for it in items])  # (n, 1, f, h, w)
    return zero_shot_by_attribute(clip_model, clips, [captions.meanings_of_item(it)[0] for it in items])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", default="preset")
    parser.add_argument("--n", type=int, default=100, help="clips per group to sample and score")
    parser.add_argument("--clip-steps", type=int, default=600, help="tiny-CLIP steps for frozen-clip")
    parser.add_argument("--preset", default="cpu-text", help="the text preset to vary (smoke-text: a quick check)")
    args = parser.parse_args(argv)
    cfg = variant_config(args.variant, args.preset)
    run_dir = runs_dir() / f"ablate_text_{args.variant}" if args.preset == "cpu-text" else \
        runs_dir() / f"ablate_{args.preset}_{args.variant}"
    start = time.perf_counter()
    extra = {}
    if args.variant == "frozen-clip":
        t0 = time.perf_counter()
        clip_model, history = pretrained_text_encoder(cfg, args.clip_steps)
        encoder = clip_model.text_encoder.requires_grad_(False)
        extra["clip_seconds"] = round(time.perf_counter() - t0, 1)
        extra["clip_loss_last20"] = round(sum(history["loss"][-20:]) / 20, 3)
        extra["clip_zero_shot"] = zero_shot_on_eval_clips(clip_model, cfg, 256 if args.preset == "cpu-text" else 8)
        print(f"tiny CLIP: {extra}", flush=True)
        build = recipe.denoiser_for

        def with_frozen_encoder(c):
            denoiser = build(c)
            denoiser.text_encoder.load_state_dict(encoder.state_dict())
            denoiser.text_encoder.requires_grad_(False)  # never trained with the denoiser
            return denoiser

        recipe.denoiser_for = with_frozen_encoder
    if "told-direction" in args.variant.split("+"):  # the run and the pipeline it returns are told the parsed direction
        recipe.conditioning_for = told_direction_conditioning(recipe.conditioning_for)
        pipeline.conditioning_for = told_direction_conditioning(pipeline.conditioning_for)
    result = recipe.train_pipeline(cfg, run_dir, minutes=0, overwrite=True)
    if args.variant == "frozen-clip":  # the encoder the U-Net learned to read is the tiny CLIP's, unchanged
        trained = result["pipeline"].unet.text_encoder.state_dict()
        assert all(torch.equal(v, trained[k]) for k, v in encoder.state_dict().items()), "the encoder moved"
    seconds = {k: round(v, 1) for k, v in result["seconds"].items()}
    print(f"variant {args.variant}: trained in {time.perf_counter() - start:.0f} s; stages {seconds} {extra}")
    results, _ = measure(result["pipeline"], args.n)
    results.update(variant=args.variant, seconds=seconds, **extra)
    (run_dir / "ablation.json").write_text(json.dumps(results, indent=1))
    print(table(results, rows=("generated",)))
    probe_text.main(["--weights", str(run_dir), "--timesteps", "999,950,900,600"])  # which words the model reads
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
