"""Guidance at every step, or only inside an interval of timesteps: what each does to the digit and to its motion.

    VDIFF_MNIST_DIR=/path/to/mnist python benchmarks/bench_guidance_interval.py            # the default rows
    VDIFF_MNIST_DIR=/path/to/mnist python benchmarks/bench_guidance_interval.py --n 400 --rows 4:all,4:-1-900

Kynkäänniemi et al. (2024) found guidance harmful at the noisiest steps, useful in the middle and unneeded at the
end, and suggest exposing the interval where it applies (``sampling.guidance_at``). Here each row is a guidance
scale and an interval of timesteps ``lo-hi`` (guidance where lo < t ≤ hi, the conditional model alone elsewhere;
``all`` = every step). Every row draws ``--n`` clips from the same weights (digits 0–9 in turn, batches of 50
seeded 0, 50, 100, ...: the protocol of docs/benchmarks.md's identity tables), times them, and scores them with
``vdiff_edu.eval.metrics.evaluate_clips`` beside real clips. It prints one Markdown table; docs/benchmarks.md
keeps the one we measured.
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
from vdiff_edu.sampling import check_guidance_interval
from vdiff_edu.utils import to_uint8

DEFAULT_ROWS = "4:all,4:-1-900,5:-1-900,6:200-900,5:all"
COLUMNS = ("condition_faithfulness", "identity_persistence", "identity_frames", "motion_plausibility", "fvd_mm",
           "frame_fd", "flicker")
BATCH = 50
NUM_STEPS = 1000  # the shipped models' T (checked again by the sampler against the model's own schedule)


def parse_rows(text: str) -> list[tuple[float, tuple[int, int] | None]]:
    """``"4:all,4:-1-900"`` → [(4.0, None), (4.0, (-1, 900))]."""
    rows = []
    for item in text.split(","):
        scale, _, interval = item.partition(":")
        try:
            if interval == "all":
                rows.append((float(scale), None))
                continue
            lo, _, hi = interval.rpartition("-")
            rows.append((float(scale), check_guidance_interval((int(lo), int(hi)), NUM_STEPS)))
        except ValueError as e:
            raise SystemExit(f"--rows expects scale:lo-hi or scale:all items, e.g. 4:all,4:-1-900; got {item!r}"
                             + (f" ({e})" if "guidance_interval" in str(e) else ""))
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default="cpu", help="shipped preset name or a run folder (default: cpu)")
    parser.add_argument("--rows", default=DEFAULT_ROWS, help=f"scale:lo-hi items (default {DEFAULT_ROWS})")
    parser.add_argument("--n", type=int, default=200, help="clips per row (digits 0..9 in turn)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = parse_rows(args.rows)

    pipe = LatentVideoPipeline.from_pretrained(args.weights)
    cfg = pipe.config
    labels = torch.arange(args.n) % cfg.unet.num_classes
    reference = {"mnist_dir": os.environ["VDIFF_MNIST_DIR"]} if os.environ.get("VDIFF_MNIST_DIR") else None

    results = []
    for scale, interval in rows:
        start = time.perf_counter()
        video = torch.cat([pipe(labels=labels[i:i + BATCH].tolist(), seed=i, guidance_scale=scale,
                                guidance_interval=interval) for i in range(0, args.n, BATCH)])  # (n, 1, f, h, w)
        per_clip = (time.perf_counter() - start) / args.n
        metrics = evaluate_clips(np.asarray(to_uint8(video)[:, 0]), labels.numpy()[:, None], rule=cfg.rule,
                                 reference=reference, verbose=False)["metrics"]
        scores = {k: metrics[k]["generated"] for k in COLUMNS}
        real = {k: metrics[k]["real_vs_real"] for k in COLUMNS}
        where = "every step" if interval is None else f"{interval[0]} < t ≤ {interval[1]}"
        results.append((scale, where, per_clip, scores))
        print(f"guidance {scale:g} at {where}: {per_clip:.3f} s/clip  "
              + "  ".join(f"{k} {v:.3f}" for k, v in scores.items()), flush=True)

    print(f"\nMachine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, {args.threads} "
          f"threads. Weights `{args.weights}`, {cfg.sampler} {cfg.sample_steps} steps, {args.n} clips per row "
          f"(digits 0–9 in turn, batches of {BATCH} seeded 0, {BATCH}, ...).\n")
    print("| guidance | where | s per clip | " + " | ".join(COLUMNS) + " |")
    print("|---:|---|---:|" + "---:|" * len(COLUMNS))
    for scale, where, per_clip, scores in results:
        print(f"| {scale:g} | {where} | {per_clip:.3f} | " + " | ".join(f"{scores[k]:.3f}" for k in COLUMNS) + " |")
    print("| *real vs real* | | | " + " | ".join(f"{real[k]:.3f}" for k in COLUMNS) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
