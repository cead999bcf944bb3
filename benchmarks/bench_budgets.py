"""What a time budget buys: train the ``cpu`` preset from nothing under budgets of 5, 10 and 20 minutes, score each.

    VDIFF_MNIST_DIR=/path/to/mnist python benchmarks/bench_budgets.py                        # 5, 10 and 20 minutes
    VDIFF_MNIST_DIR=/path/to/mnist python benchmarks/bench_budgets.py --minutes 10 --n 200   # one budget
    VDIFF_MNIST_DIR=/path/to/mnist python benchmarks/bench_budgets.py --minutes 10 --lr 0.002  # another clip-stage LR

For each budget the script runs ``vdiff_edu.recipe.train_pipeline`` exactly as ``train --preset cpu --minutes M``
does (a few calibration steps measure this machine, every stage is scaled to fit, and the plan is re-sized at each
stage boundary), in a fresh folder under ``runs/budget_<M>min/`` (an earlier one is moved aside, never deleted).
It records the steps the budget chose for each stage and the wall time of the whole run, then draws ``--n`` clips
(digits 0–9 in turn, the preset's sampler, the same seeds for every budget) and scores them with the evaluation
suite (``vdiff_edu.eval.metrics.evaluate_clips``) beside real clips of the same geometry. It prints one Markdown
table (``--json`` also writes every number); ``docs/benchmarks.md`` keeps the table we measured.

Timings mean something only on a quiet machine: the budget itself is sized from the speed measured, so a busy
machine gets fewer steps (and a worse model), not a longer run. The script prints the load average it saw.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

from vdiff_edu.config import runs_dir
from vdiff_edu.eval.metrics import evaluate_clips
from vdiff_edu.presets import ExperimentConfig
from vdiff_edu.recipe import train_pipeline
from vdiff_edu.utils import to_uint8

COLUMNS = ("condition_faithfulness", "identity_persistence", "identity_frames", "motion_plausibility", "fvd_mm",
           "frame_fd", "flicker")
SHORT = {"condition_faithfulness": "faithful", "identity_persistence": "identity/clip",
         "identity_frames": "identity/frame", "motion_plausibility": "motion", "fvd_mm": "FVD-MM",
         "frame_fd": "frame FD", "flicker": "flicker"}


def load() -> str:
    try:
        return " / ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def one_budget(minutes: float, n: int, mnist_dir: str | None, lr: float | None = None,
               batch_divisor: int | None = None) -> dict:
    """Train the cpu preset under a budget of ``minutes`` (with the clip stage's peak learning rate ``lr``, default
    the preset's; every stage's batch divided by ``batch_divisor``, default what the budget chooses), sample ``n``
    clips, score them. Returns every number."""
    cfg = ExperimentConfig.preset("cpu")
    run_dir = runs_dir() / (f"budget_{minutes:g}min" + (f"_lr{lr:g}" if lr is not None else "")
                            + (f"_batch_div{batch_divisor}" if batch_divisor is not None else ""))
    lines: list[str] = []

    def log(s: str) -> None:
        lines.append(s)
        print(s, flush=True)

    start = time.perf_counter()
    result = train_pipeline(cfg, run_dir, mnist_dir=mnist_dir, minutes=minutes, log=log, overwrite=True,
                            progress="none", lr=lr, batch_divisor=batch_divisor)
    train_wall = time.perf_counter() - start
    stages = json.loads((run_dir / "run.json").read_text())["stages"]  # the steps each stage really trained
    steps = {stage: stages.get(stage, {}).get("steps", 0) for stage in ("autoencoder", "frames", "clips")}
    pipe = result["pipeline"]
    labels = torch.arange(n) % cfg.unet.num_classes
    t0 = time.perf_counter()
    video = torch.cat([pipe(labels=labels[i:i + 50].tolist(), seed=i) for i in range(0, n, 50)])
    sample_seconds = time.perf_counter() - t0
    scores = evaluate_clips(np.asarray(to_uint8(video)[:, 0]), labels.numpy()[:, None], rule=cfg.rule,
                            reference={"mnist_dir": mnist_dir} if mnist_dir else None, out_dir=run_dir / "eval",
                            verbose=False)["metrics"]
    chosen = json.loads((run_dir / "run.json").read_text())["overrides"].get("batch_divisor", 1)
    return {"minutes": minutes, "lr": lr if lr is not None else cfg.train.lr, "batch_divisor": chosen,
            "divisor_asked": batch_divisor, "train_wall_s": round(train_wall, 1), "sample_s": round(sample_seconds, 1),
            "steps": steps, "seconds": {k: round(v, 1) for k, v in result["seconds"].items()},
            "budget_log": [s.strip() for s in lines if "budget" in s],
            "generated": {k: scores[k]["generated"] for k in COLUMNS},
            "real": {k: scores[k]["real_vs_real"] for k in COLUMNS}}


def table(rows: list[dict]) -> str:
    recipe = ExperimentConfig.preset("cpu")
    head = ("| run | trained in | steps: autoencoder / frames / clips | "
            + " | ".join(SHORT[k] for k in COLUMNS) + " |")
    out = [head, "|" + "---|" * (3 + len(COLUMNS))]
    for r in rows:
        s = r["steps"]
        batches = (f", batches ÷{r['batch_divisor']}" if r.get("batch_divisor", 1) != 1 else "") + (
            " (the budget's choice)" if r.get("divisor_asked", 1) is None else "")
        out.append(f"| {r['minutes']:g}-minute budget, clip lr {r.get('lr', recipe.train.lr):g}{batches} | "
                   f"{r['train_wall_s'] / 60:.1f} min | "
                   f"{s['autoencoder']} / {s['frames']} / {s['clips']} | "
                   + " | ".join(f"{r['generated'][k]:.3f}" for k in COLUMNS) + " |")
    out.append(f"| real clips (same geometry) | | (recipe: {recipe.autoencoder.train_steps} / "
               f"{recipe.image_train.steps} / {recipe.train.steps}) | "
               + " | ".join(f"{rows[0]['real'][k]:.3f}" for k in COLUMNS) + " |")
    return "\n".join(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[5, 10, 20], help="the budgets, in minutes")
    parser.add_argument("--n", type=int, default=200, help="clips to sample and score per budget")
    parser.add_argument("--json", default=None, help="also write every number to this JSON file")
    parser.add_argument("--lr", type=float, default=None, help="the clip stage's peak learning rate (default: the preset's)")
    parser.add_argument("--batch-divisor", type=int, default=None, choices=(1, 2, 4),
                        help="divide every stage's batch by this (more, smaller steps in the same time; default: "
                             "what the budget chooses, as `train --minutes M` does)")
    args = parser.parse_args(argv)
    if any(not m > 0 for m in args.minutes):
        raise SystemExit(f"--minutes takes budgets above 0 (0 means no budget); got {args.minutes}")
    mnist_dir = os.environ.get("VDIFF_MNIST_DIR")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {load()} at the start")
    rows = []
    for minutes in args.minutes:
        print(f"\n=== a {minutes:g}-minute budget ===", flush=True)
        rows.append(one_budget(minutes, args.n, mnist_dir, args.lr, args.batch_divisor))
        print(f"    trained in {rows[-1]['train_wall_s'] / 60:.1f} min, steps {rows[-1]['steps']}, "
              f"load average {load()}", flush=True)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(rows, f, indent=1)
    print("\n" + table(rows))
    print(f"\nload average at the end {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
