"""Benchmark of the evaluation suite: the shipped feature networks' held-out accuracy, and every metric's
real-vs-real and broken baselines for both course geometries.

    VDIFF_MNIST_DIR=/path/to/mnist python benchmarks/bench_feature_nets.py            # print both tables
    VDIFF_MNIST_DIR=/path/to/mnist python benchmarks/bench_feature_nets.py --write-docs

``--write-docs`` replaces the evaluation section of ``docs/benchmarks.md`` (between its two marker comments, or
appended at the end the first time) and leaves the other sections alone. The accuracy is measured on the same
fixed held-out set the card (``vdiff_edu/weights/FEATURE_NETS.md``) quotes: ``eval_clips`` test-split clips per
geometry, seed 1. Real MNIST digits are needed for numbers comparable with the card.
"""

from __future__ import annotations

import argparse
import platform
import re
import sys
import time
from pathlib import Path

import torch

from vdiff_edu.eval import metrics, report
from vdiff_edu.eval.feature_nets import GEOMETRIES, evaluate_feature_nets, load_feature_nets

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- evaluation:start -->", "<!-- evaluation:end -->"


def accuracy_table(nets, num_clips: int) -> tuple[str, dict]:
    got = evaluate_feature_nets(nets, num_clips=num_clips, seed=1)
    card = nets.metadata["classifier"]["accuracy"]
    keys = ("frame_set", "clip_digits", "clip_directions", "clip_bounce")
    lines = ["| geometry | " + " | ".join(keys) + " |", "|---|" + "---:|" * len(keys)]
    for name, acc in got.items():
        cells = [f"{acc[k]:.3f} (card {card[name][k]:.3f})" for k in keys]
        lines.append(f"| {name} ({num_clips} clips) | " + " | ".join(cells) + " |")
    return "\n".join(lines), got


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-clips", type=int, default=None, help="clips per set (default: the card's held-out size)")
    parser.add_argument("--n", type=int, default=256, help="clips per baseline set")
    parser.add_argument("--n-ref", type=int, default=256, help="real reference clips")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--write-docs", action="store_true", help="update the evaluation section of docs/benchmarks.md")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    nets = load_feature_nets(device="cpu")
    num_clips = args.num_clips or nets.metadata["classifier"]["accuracy"]["cpu"]["num_clips"]
    start = time.time()
    acc_md, _ = accuracy_table(nets, num_clips)
    print(acc_md, f"\n({time.time() - start:.0f} s)\n")

    sections = []
    for name, geo in GEOMETRIES.items():
        start = time.time()
        result = metrics.evaluate_clips(None, n=args.n, n_ref=args.n_ref, verbose=False, **geo)
        seconds = time.time() - start
        table = report.format_table(result)
        print(f"{name} geometry ({seconds:.0f} s):\n{table}\n")
        sections.append((name, geo, result, table, seconds))

    if args.write_docs:
        source = re.sub(r" of /\S+", " of $VDIFF_MNIST_DIR", sections[0][2]["setup"]["digit_source"])
        machine = f"{platform.machine()} CPU, {args.threads} thread(s), torch {torch.__version__}"
        body = [START, "## Evaluation suite: feature networks and metric baselines", "",
                f"Measured with `python benchmarks/bench_feature_nets.py --write-docs` on {machine} "
                f"(shared 2-core machine). Digits: {source}.", "",
                "### Held-out accuracy of the shipped feature networks", "",
                "Exact-match accuracy on the fixed held-out set (test-split clips, seed 1): `frame_set` = frames whose "
                "predicted digit set is exactly right (digit classifier); `clip_*` = clips whose digit set, set of "
                "direction bins moved in, and any-bounce flag the video encoder gets exactly right. In brackets: the "
                "value on the card (`vdiff_edu/weights/FEATURE_NETS.md`).", "", acc_md, ""]
        for name, geo, result, table, seconds in sections:
            s = result["setup"]
            body += [f"### Metric baselines, {name} geometry", "",
                     f"{s['n']} clips per set, reference {s['n_ref']} real clips: {geo['num_frames']} frames × "
                     f"{geo['image_size']}×{geo['image_size']}, {geo['num_digits']} digit(s) of {geo['digit_size']} px, "
                     f"rule `{geo['rule']}` ({seconds:.0f} s). The shipped model's column is added by "
                     f"`python -m vdiff_edu evaluate runs/<name>`.", "", table, ""]
        body += ["How to read these: a model is good on a metric when its value sits next to *real vs real* and far "
                 "from the broken columns. Each metric targets one failure and is blind to others: `frame_fd` cannot "
                 "see shuffled frames (the same frames, in another order), `identity_persistence` and `identity_frames` "
                 "cannot see a frozen frame (its digit never changes) nor noise the classifier reads the same way "
                 "throughout, `motion_plausibility` and `dynamic_degree` see exactly those. `kvd_mm` is unbiased, so "
                 "real vs real may be negative. On two digits at 64×64 the classifier's confusions of overlapping "
                 "digits cap `identity_persistence` below 1 for real clips, although frames where the tracked digits "
                 "overlap are not judged. What `identity_persistence` sees, frame by frame: the identity section "
                 "below (`benchmarks/bench_identity.py`).",
                 "", END]
        text = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n"
        block = "\n".join(body)
        if START in text and END in text:
            text = re.sub(re.escape(START) + r".*?" + re.escape(END), lambda _: block, text, flags=re.S)
        else:
            text = text.rstrip("\n") + "\n\n" + block + "\n"
        from vdiff_edu.utils import atomic_write_bytes

        atomic_write_bytes(DOCS, text.encode())
        print(f"updated {DOCS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
