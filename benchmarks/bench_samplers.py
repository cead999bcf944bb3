"""Samplers against quality and time: which sampler and how many steps the shipped ``cpu`` model should use.

    VDIFF_MNIST_DIR=/path/to/mnist python benchmarks/bench_samplers.py                  # the default grid
    VDIFF_MNIST_DIR=/path/to/mnist python benchmarks/bench_samplers.py --n 200 --grid ddpm:50,dpmpp:25

For every (sampler, steps) pair it draws ``--n`` clips from the same weights with the same seed and labels
0, 1, 2, ... (guidance at the model's default), times the sampling on this machine (seconds per clip, batch of
``--batch``), and scores the clips with ``vdiff_edu.eval.metrics.evaluate_clips`` against the fixed real evaluation
split. It prints one Markdown table; ``docs/benchmarks.md`` holds the one we measured. The real digits come from
``VDIFF_MNIST_DIR`` when it is set (as for the shipped model's own evaluation), else from the toolkit's usual
digit sources.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np
import torch

from vdiff_edu.eval.metrics import evaluate_clips
from vdiff_edu.pipeline import LatentVideoPipeline
from vdiff_edu.utils import to_uint8

DEFAULT_GRID = "ddpm:10,ddpm:25,ddpm:50,ddpm:100,ddim:25,ddim:50,dpmpp:10,dpmpp:25,dpmpp:50"
COLUMNS = ("condition_faithfulness", "identity_persistence", "motion_plausibility", "fvd_mm", "frame_fd", "flicker")


def parse_grid(text: str) -> list[tuple[str, int]]:
    pairs = []
    for item in text.split(","):
        name, _, steps = item.partition(":")
        if name not in ("ddpm", "ddim", "dpmpp") or not steps.isdigit():
            raise SystemExit(f"--grid expects sampler:steps pairs such as ddpm:50,dpmpp:25; got {item!r}")
        pairs.append((name, int(steps)))
    return pairs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default="cpu", help="shipped preset name or a run folder (default: cpu)")
    parser.add_argument("--grid", default=DEFAULT_GRID, help=f"sampler:steps pairs (default {DEFAULT_GRID})")
    parser.add_argument("--n", type=int, default=100, help="clips per setting (labels 0..9 in turn)")
    parser.add_argument("--batch", type=int, default=50, help="clips per sampling call")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    pipe = LatentVideoPipeline.from_pretrained(args.weights)
    cfg = pipe.config
    labels = torch.arange(args.n) % cfg.unet.num_classes
    reference = {"mnist_dir": os.environ["VDIFF_MNIST_DIR"]} if os.environ.get("VDIFF_MNIST_DIR") else None
    pipe(labels=[0], steps=2)  # warm-up

    rows = []
    for sampler, steps in parse_grid(args.grid):
        clips, start = [], time.perf_counter()
        for i in range(0, args.n, args.batch):
            chunk = labels[i:i + args.batch].tolist()
            clips.append(pipe(labels=chunk, sampler=sampler, steps=steps, seed=i))  # (b, 1, f, h, w)
        per_clip = (time.perf_counter() - start) / args.n
        video = to_uint8(torch.cat(clips))[:, 0]  # (n, f, h, w) uint8
        result = evaluate_clips(np.asarray(video), labels.numpy()[:, None], rule=cfg.rule, reference=reference,
                                verbose=False)
        scores = {k: result["metrics"][k]["generated"] for k in COLUMNS}
        rows.append((sampler, steps, per_clip, scores))
        print(f"{sampler:6s} {steps:4d} steps: {per_clip:.3f} s/clip  " +
              "  ".join(f"{k} {v:.3f}" for k, v in scores.items()), flush=True)
        real = {k: result["metrics"][k]["real_vs_real"] for k in COLUMNS}

    print(f"\nMachine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, {args.threads} "
          f"threads. Weights `{args.weights}`, guidance {cfg.guidance_scale:g}, {args.n} clips per row (labels "
          f"0–9 in turn), batches of {args.batch}.\n")
    print("| sampler | steps | s per clip | " + " | ".join(COLUMNS) + " |")
    print("|---|---:|---:|" + "---:|" * len(COLUMNS))
    for sampler, steps, per_clip, scores in rows:
        print(f"| {sampler} | {steps} | {per_clip:.3f} | " + " | ".join(f"{scores[k]:.3f}" for k in COLUMNS) + " |")
    print("| *real vs real* | | | " + " | ".join(f"{real[k]:.3f}" for k in COLUMNS) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
