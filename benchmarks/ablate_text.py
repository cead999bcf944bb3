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

Each run trains with ``vdiff_edu.recipe.train_pipeline`` (the recipe's step counts, no time budget) under
``runs/ablate_text_<variant>/`` and is measured by ``bench_text.measure``: faithfulness per attribute on seen,
unseen and paraphrased prompts, ``--n`` clips per group. Prints the wall time of each stage and the table;
``docs/text.md`` keeps what we measured.
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
from bench_text import measure, table  # noqa: E402

from vdiff_edu import recipe  # noqa: E402
from vdiff_edu.config import runs_dir  # noqa: E402
from vdiff_edu.presets import ExperimentConfig  # noqa: E402
from vdiff_edu import captions  # noqa: E402
from vdiff_edu.moving_mnist import MovingMNIST  # noqa: E402
from vdiff_edu.text import TinyClipConfig, train_tiny_clip, zero_shot_by_attribute  # noqa: E402

VARIANTS = ("preset", "no-pooled", "frozen-clip", "noisy-steps")


def variant_config(name: str, preset: str = "cpu-text") -> ExperimentConfig:
    cfg = ExperimentConfig.preset(preset)
    if name in ("preset", "frozen-clip"):
        return cfg
    if name == "no-pooled":
        return replace(cfg, unet=replace(cfg.unet, pooled_context=False))
    if name == "noisy-steps":
        return replace(cfg, train=replace(cfg.train, timesteps="logit-normal", timestep_loc=1.5, timestep_scale=1.5,
                                          min_snr_gamma=None))
    raise SystemExit(f"--variant must be one of {', '.join(VARIANTS)}; got {name!r}")


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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
