"""Benchmark of the identity measure (issue 15): the windowed measure of old against the per-frame rule, on real
clips, on the same clips with one frame's digit replaced, and on clips from the shipped cpu weights.

    python -m vdiff_edu sample --weights cpu --n 200 --out runs/identity_cpu200 --device cpu
    VDIFF_MNIST_DIR=/path/to/mnist python benchmarks/bench_identity.py --samples runs/identity_cpu200

Prints, per set: how well the digit classifier reads real frames (top-1 and exact digit set), the old measure
(``windowed_identity_persistence``), the new ``identity_persistence`` (per clip) and ``identity_frames`` (per
frame), the per-frame-index curve, and for replaced clips how often the replaced frame itself is the one flagged.
Real MNIST digits are needed for numbers comparable with docs/benchmarks.md. Without ``--samples`` the generated
rows are skipped. Takes about a minute on 2 CPU cores (sampling the 200 clips takes a few more).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time

import numpy as np
import torch

from vdiff_edu.eval import metrics as M
from vdiff_edu.eval.feature_nets import GEOMETRIES, load_feature_nets


def measure(nets, clips: np.ndarray, geo: dict) -> dict:
    """Old and new identity measures of uint8 clips ``(n, f, h, w)``, as ``evaluate_clips`` computes them."""
    probs, _ = nets.frame_outputs(clips)  # (n, f, 10)
    scored = ~M.overlapping_frames(M.track_digits(clips, geo["num_digits"]), geo["digit_size"])  # (n, f)
    kw = dict(num_digits=geo["num_digits"], scored=scored)
    return {"probs": probs, "scored": scored,
            "old": M.windowed_identity_persistence(probs),
            "clip": M.identity_persistence(probs, **kw),
            "frame": M.identity_frames(probs, **kw),
            "by_frame": M.identity_by_frame_index(probs, **kw),
            "shows": M.frames_show_clip_digits(probs, geo["num_digits"])}  # (n, f)


def row(name: str, m: dict, extra: str = "") -> str:
    curve = " ".join(f"{v:.2f}" for v in m["by_frame"])
    return (f"| {name} | {len(m['probs'])} | {m['old']:.3f} | {m['clip']:.3f} | {m['frame']:.3f} | {curve} | "
            f"{extra} |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", help="samples.npy or a run folder from `python -m vdiff_edu sample --weights cpu`")
    parser.add_argument("--n", type=int, default=512, help="real cpu-geometry clips (default 512)")
    parser.add_argument("--n-gpu", type=int, default=256, help="real gpu-geometry clips (default 256; 0 skips)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.time()
    nets = load_feature_nets(device="cpu")
    lines = ["| set | clips | old windowed (per clip) | identity_persistence (per clip) | identity_frames (per frame) "
             "| by frame index | replaced frame flagged |", "|---|---:|---:|---:|---:|---|---:|"]
    source = None
    for name, n in (("cpu", args.n), ("gpu", args.n_gpu)):
        if n == 0:
            continue
        geo = GEOMETRIES[name]
        data = M.replaced_frame_clips(n, 0, **geo)  # real clips, and each with one frame's digit replaced
        source = source or M.real_clips(1, 0, **geo)[2]
        real, rep = measure(nets, data["clips"], geo), measure(nets, data["replaced"], geo)
        # how well the classifier reads single real frames: top-1 (one digit) and the exact digit set
        probs = real["probs"]
        want = torch.nn.functional.one_hot(torch.as_tensor(data["labels"]), 10).amax(1).bool()[:, None]  # (n, 1, 10)
        exact = float(((probs > 0.5) == want).all(-1).float().mean())
        read = f"{exact:.3f} of frames exactly right (sigmoid > 0.5 = the digit set)"
        if geo["num_digits"] == 1:
            read += f", {float((probs.argmax(-1) == torch.as_tensor(data['labels'])).float().mean()):.3f} right by top-1"
        print(f"{name} geometry, {n} real clips: the classifier reads {read}; "
              f"{float(real['scored'].float().mean()):.3f} of frames scored (digits apart)")
        at = torch.arange(n), torch.as_tensor(data["frame"])
        hit = ~rep["shows"][at]  # (n,) the replaced frame itself is off (before leaving out overlaps)
        hit_scored = hit[rep["scored"][at]]  # only where the replaced frame is scored
        lines.append(row(f"real, {name} geometry", real))
        lines.append(row(f"one frame replaced, {name} geometry", rep,
                         f"{float(hit.float().mean()):.3f} (scored frames: {float(hit_scored.float().mean()):.3f})"))
    if args.samples:
        clips, labels, _ = M.load_clips(args.samples)
        gen = measure(nets, clips, GEOMETRIES["cpu"])
        lines.append(row("shipped cpu weights", gen))
        bad = (~gen["shows"]).any(1).nonzero()[:, 0][:8].tolist()
        print(f"generated clips with an off frame (first 8): {bad}")
    print(f"\ndigits: {source}; {platform.machine()} CPU, {args.threads} thread(s), torch {torch.__version__}; "
          f"{time.time() - start:.0f} s\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
