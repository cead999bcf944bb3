"""What each part of the ``cpu`` recipe buys: train a variant from nothing, sample it, score it.

    VDIFF_MNIST_DIR=/path/to/mnist python benchmarks/ablate_cpu_recipe.py --variant clips-only
    VDIFF_MNIST_DIR=/path/to/mnist python benchmarks/ablate_cpu_recipe.py --variant small-label-init
    VDIFF_MNIST_DIR=/path/to/mnist python benchmarks/ablate_cpu_recipe.py --variant preset --seed 1

Variants (each changes one thing of ``ExperimentConfig.cpu()``):

* ``preset``: the preset as shipped (single latent frames first, then clips; label embedding initialised at
  std 0.3; ancestral DDPM sampling).
* ``clips-only``: no single-frame stage; the clip stage gets the steps that take the same wall time instead
  (``--extra-steps``, default 700, measured: the 800 × 256-frame stage costs about as much as 700 × 32-clip steps).
* ``small-label-init``: the label embedding keeps the module's own init (std 0.02).
* ``plain-v-clips``: the clip stage's loss is plain v-MSE, not min-SNR-γ 5 (which weights the noisiest steps,
  where a clip's layout is decided, by about SNR_t ≈ 0).
* ``quarter-batches``: every stage at a quarter of its batch (autoencoder 16 frames, single frames 64, clips 8):
  with ``--plan`` at four times the steps, the same samples seen in four times the optimizer steps.

``--plan AE,FRAMES,CLIPS`` trains exactly those step counts (``train --plan``), e.g. ``--plan 323,626,1179``, the
shipped weights' counts.

Each run trains with ``vdiff_edu.recipe.train_pipeline`` under ``runs/ablate_<variant>/``, at its step counts as written
(no time budget: ``minutes=0``), draws ``--n`` clips
(labels 0–9 in turn, the preset's sampler) and scores them with ``vdiff_edu.eval.metrics.evaluate_clips`` against the
fixed real evaluation split. ``--seed`` reruns a variant with other data, initialisation and noise, to see how far
two runs of the same recipe differ; ``--frame-steps`` and ``--clip-steps`` change the two stages' lengths. It prints the wall time of each stage and one Markdown table row;
``docs/benchmarks.md`` keeps the rows we measured.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace

import numpy as np
import torch

from vdiff_edu.config import runs_dir
from vdiff_edu.eval.metrics import evaluate_clips
from vdiff_edu.recipe import train_pipeline, with_batches_divided
from vdiff_edu.presets import ExperimentConfig
from vdiff_edu.utils import to_uint8

COLUMNS = ("condition_faithfulness", "identity_persistence", "identity_frames", "motion_plausibility", "fvd_mm",
           "frame_fd", "flicker")


def variant_config(name: str, extra_steps: int) -> ExperimentConfig:
    cfg = ExperimentConfig.cpu()
    if name == "preset":
        return cfg
    if name == "clips-only":
        return replace(cfg, image_train=None, train=replace(cfg.train, steps=cfg.train.steps + extra_steps))
    if name == "small-label-init":
        return replace(cfg, label_embedding_std=None)
    if name == "plain-v-clips":
        return replace(cfg, train=replace(cfg.train, min_snr_gamma=None))
    if name == "quarter-batches":
        return with_batches_divided(cfg, 4)
    raise SystemExit(f"--variant must be preset, clips-only, small-label-init, plain-v-clips or quarter-batches; "
                     f"got {name!r}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", default="preset")
    parser.add_argument("--extra-steps", type=int, default=700, help="clip steps that replace the frame stage")
    parser.add_argument("--n", type=int, default=200, help="clips to sample and score")
    parser.add_argument("--seed", type=int, default=0, help="the run's seed (data, initialisation, noise draws)")
    parser.add_argument("--frame-steps", type=int, default=None, help="override the single-frame stage's steps")
    parser.add_argument("--clip-steps", type=int, default=None, help="override the clip stage's steps")
    parser.add_argument("--plan", default=None, help="AE,FRAMES,CLIPS: exactly these step counts, e.g. 323,626,1179")
    args = parser.parse_args(argv)
    plan = None
    if args.plan is not None:
        try:
            plan = dict(zip(("autoencoder", "frames", "clips"), (int(n) for n in args.plan.split(",")), strict=True))
        except ValueError:
            raise SystemExit(f"--plan gives three step counts, AE,FRAMES,CLIPS, e.g. 323,626,1179; got {args.plan!r}")

    cfg = replace(variant_config(args.variant, args.extra_steps), seed=args.seed)
    name = args.variant + (f"_seed{args.seed}" if args.seed else "")
    if args.frame_steps is not None and cfg.image_train is not None:
        cfg = replace(cfg, image_train=replace(cfg.image_train, steps=args.frame_steps))
        name += f"_frames{args.frame_steps}"
    if args.clip_steps is not None:
        cfg = replace(cfg, train=replace(cfg.train, steps=args.clip_steps))
        name += f"_clips{args.clip_steps}"
    if plan is not None:
        name += "_plan" + "-".join(str(n) for n in plan.values())
    run_dir = runs_dir() / f"ablate_{name}"
    mnist_dir = os.environ.get("VDIFF_MNIST_DIR")
    start = time.perf_counter()
    # minutes=0: the variant's steps as written (or the plan's), not scaled by the preset's time budget, so rows
    # compare recipes
    result = train_pipeline(cfg, run_dir, mnist_dir=mnist_dir, minutes=0, plan=plan,
                            log=lambda s: print(s, flush=True))
    wall = time.perf_counter() - start
    pipe = result["pipeline"]
    labels = torch.arange(args.n) % cfg.unet.num_classes
    video = torch.cat([pipe(labels=labels[i:i + 50].tolist(), seed=i) for i in range(0, args.n, 50)])
    scores = evaluate_clips(np.asarray(to_uint8(video)[:, 0]), labels.numpy()[:, None], rule=cfg.rule,
                            reference={"mnist_dir": mnist_dir} if mnist_dir else None, out_dir=run_dir / "eval",
                            verbose=False)["metrics"]
    seconds = ", ".join(f"{k} {v:.0f} s" for k, v in result["seconds"].items() if k != "total")
    print(f"\nvariant {name}: trained in {wall / 60:.1f} min ({seconds})")
    print("| variant | train min | " + " | ".join(COLUMNS) + " |")
    print(f"| {name} | {wall / 60:.1f} | "
          + " | ".join(f"{scores[k]['generated']:.3f}" for k in COLUMNS) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
