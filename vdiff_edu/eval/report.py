"""The evaluation's reports, in Markdown and JSON.

1. **the evaluation report** — ``format_table`` (one row per metric, one column per set of clips),
   ``format_report`` (the setup, the table, identity by frame index, prediction metrics, what each metric means) and ``write_report``
   (``evaluation.md`` and ``evaluation.json``, written atomically) for an ``evaluate_clips`` result;
2. **the feature networks' card** — ``feature_net_card``, the Markdown shipped beside their weights
   (``vdiff_edu/weights/FEATURE_NETS.md``), generated from the training run's metadata.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
from torch import nn

from ..utils import atomic_write_bytes, count_parameters
from .feature_nets import CLASSIFIER_FILE, VIDEO_ENCODER_FILE

# ---------------------------------------------------------------- 1. the evaluation report ----


def format_value(v) -> str:
    """A number as the tables print it: 3 decimals in [0.01, 100) (and for 0), 1 decimal from 100 on, otherwise
    scientific with 2 decimals; None and NaN print as n/a."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if v == 0 or 0.01 <= abs(v) < 100:
        return f"{v:.3f}"
    return f"{v:.1f}" if abs(v) >= 100 else f"{v:.2e}"


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and (math.isnan(obj) or math.isinf(obj)):
        return None
    if isinstance(obj, (np.floating, np.integer)):
        return _jsonable(obj.item())
    return obj


def format_table(result: dict) -> str:
    """The metrics of an ``evaluate_clips`` result as a Markdown table: one row per metric, one column per set."""
    cols = list(next(iter(result["metrics"].values())).keys())
    titles = {"generated": "generated", "real_vs_real": "real vs real", "shuffled": "shuffled frames",
              "frozen": "frozen first frame", "noise": "pure noise"}
    lines = ["| metric | better | " + " | ".join(titles.get(c, c) for c in cols) + " |",
             "|---|---|" + "---:|" * len(cols)]
    for key, row in result["metrics"].items():
        lines.append(f"| {key} | {result['better'][key]} | " + " | ".join(format_value(row[c]) for c in cols) + " |")
    return "\n".join(lines)


def format_report(result: dict) -> str:
    """The full Markdown report: setup, the metric table, identity by frame index, the prediction table (if any),
    what each metric means."""
    s = result["setup"]
    out = ["# Evaluation\n",
           f"{s['n']} clips of {s['num_frames']} frames × {s['image_size']}×{s['image_size']} px, {s['num_digits']} "
           f"digit(s) of {s['digit_size']} px, rule `{s['rule']}`; distances to {s['n_ref']} real clips of the "
           f"fixed evaluation split (seed {s['seed']}, digits: {s['digit_source']}). Baselines: *real vs real* is a "
           f"second real set of the same size; the broken sets are that set with its frames shuffled, its first "
           f"frame frozen, or pure noise.\n", format_table(result), ""]
    if result.get("identity_by_frame"):
        curves = result["identity_by_frame"]
        f = len(next(iter(curves.values())))
        out += ["## Identity by frame index\n",
                "Fraction of clips whose frame i shows the clip's digits (`identity_by_frame_index`): a dip names the "
                "frame where digits turn into others.\n",
                "| set | " + " | ".join(str(i) for i in range(f)) + " |", "|---|" + "---:|" * f]
        out += [f"| {c} | " + " | ".join(f"{v:.2f}" for v in curve) + " |" for c, curve in curves.items()]
        out.append("")
    if result.get("prediction"):
        pred = result["prediction"]
        cols = [c for c in pred if pred[c] is not None]
        keys = [k for k in pred[cols[0]] if k != "num_samples_per_clip"]
        out += ["## Prediction (frames after the context)\n",
                "| metric | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
        out += [f"| {k} | " + " | ".join(format_value(pred[c].get(k)) for c in cols) + " |" for k in keys]
        out.append("")
    out += ["## What the metrics mean\n"] + [f"- **{k}** ({result['better'][k]} is better): {d}"
                                            for k, d in result["descriptions"].items()]
    return "\n".join(out) + "\n"


def write_report(result: dict, out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``evaluation.md`` (``format_report``) and ``evaluation.json`` (NaN as null) into ``out_dir``,
    atomically; return their paths."""
    out_dir = Path(out_dir)
    md, js = out_dir / "evaluation.md", out_dir / "evaluation.json"
    atomic_write_bytes(js, json.dumps(_jsonable(result), indent=2).encode())
    atomic_write_bytes(md, format_report(result).encode())
    return md, js


# ---------------------------------------------------------------- 2. the feature networks' card ----


def feature_net_card(meta: dict, classifier: nn.Module, video_encoder: nn.Module) -> str:
    """The Markdown card shipped beside the weights: what the networks are, how they were trained, and their
    held-out accuracy (the numbers come straight from the training run's metadata)."""
    cfg, acc = meta["config"], meta["accuracy"]
    keys = ("frame_set", "clip_digits", "clip_directions", "clip_bounce")
    rows = [f"| {name} | {a['num_clips']} | " + " | ".join(f"{a[k]:.3f}" for k in keys) + " |" for name, a in acc.items()]
    geos = "\n".join(f"- **{name}**: {g['num_frames']} frames of {g['image_size']}×{g['image_size']}, "
                     f"{g['num_digits']} digit(s) of {g['digit_size']} px, {g['rule']} rule" for name, g in meta["geometries"].items())
    mixture = "\n".join(f"- weight {w}: {g['num_frames']} frames, {g['image_size']} px, {g['num_digits']} digit(s) of "
                        f"{g['digit_size']} px, {g['rule']}" for w, g in cfg["mixture"])
    source = re.sub(r" of /\S+", " of $VDIFF_MNIST_DIR", meta["digit_source"])  # no local paths on the card
    return f"""# Feature networks for evaluating Moving MNIST videos

`{CLASSIFIER_FILE}` (DigitClassifier, {count_parameters(classifier):,} parameters) and `{VIDEO_ENCODER_FILE}`
(VideoEncoder, {count_parameters(video_encoder):,} parameters): the networks behind `vdiff_edu.eval.metrics`. Written by
`python -m vdiff_edu evaluate --train-feature-nets` (`vdiff_edu.eval.training.train_feature_nets`); this card is
generated by the same run, so its numbers are the run's own.

## What they are

- **DigitClassifier**: a frame → which of the digits 0-9 are present (multi-label, sigmoid > 0.5). Four 3×3
  conv + batch-norm + ReLU layers with max-pooling, then a spatial max over the feature maps ({cfg['feature_dim']}
  features: the frame FD uses them) and a linear layer. Used by `frame_fd`, `identity_persistence`,
  `identity_frames`, `condition_faithfulness`.
- **VideoEncoder**: a clip → proxy labels: which digits are present (10), which of 8 compass directions the digits
  move in during the clip (8), whether any digit bounces (1). (2+1)D (Tran et al. 2018): a small 2-D network on
  every frame and its difference to the next frame, then two temporal convolutions, mean + max pooling over frames and space, a linear layer to {cfg['feature_dim']} features (FVD-MM and KVD-MM use them), a linear head.

## Input geometry

Features are returned divided by their root mean square on held-out real clips (video {meta.get('feature_rms', {}).get('video', 1.0):.3g},
frame {meta.get('feature_rms', {}).get('frame', 1.0):.3g}), so they are of order 1, as KID's kernel (xᵀy/d + 1)³ expects.

Every clip is brought to the canonical geometry **{meta['canonical']['num_frames']} frames × {meta['canonical']['image_size']}×{meta['canonical']['image_size']}**
before either network sees it (`canonicalize`: area-resize each frame; pick the nearest frame for each of the
canonical times, so 8 frames are each shown twice and 20 lose 4). Pixels in [-1, 1] (uint8 0..255 are converted).
The course's two geometries, both scored by these networks:

{geos}

## Training

Trained from scratch on a mixture of Moving MNIST geometries (train split; the digits: {source}):

{mixture}

{cfg['train_steps']} AdamW steps (lr {cfg['lr']}, cosine to 0, weight decay {cfg['weight_decay']}), {cfg['batch_size']} fresh clips per
step mixed from {cfg['geometries_per_batch']} draws of the mixture (so batch norm sees the mixture it is used on), and
{cfg['frames_per_clip']} frames of each clip for the classifier; {'the classifier sees half of its clips blurred, half with fainter ink and half with noise added (`augment`), so it still reads the digits of slightly degraded generated clips (the video encoder sees clean clips: its features should notice the degradation); ' if cfg.get('augment') else ''}binary cross-entropy; seed {cfg['seed']}. It took
{meta['train_seconds']:.0f} s on {meta['device']} with {meta['torch_threads']} thread(s), torch {meta['torch_version']} (on the
development machine: 2 cores shared with other jobs, so slower than an idle one). Reproduce it with

    VDIFF_MNIST_DIR=/path/to/mnist python -m vdiff_edu evaluate --train-feature-nets --threads {meta['torch_threads']}

Same seed, same digits, same thread count → the same weights (tested on the smoke preset).

## Held-out accuracy

On {acc[next(iter(acc))]['num_clips']} clips per geometry of the *test* split (digit images never seen in training;
`evaluate_feature_nets(nets, num_clips, seed=1)`). Exact-match: every one of the labels must be right.

| geometry | clips | frame_set | clip_digits | clip_directions | clip_bounce |
|---|---:|---:|---:|---:|---:|
{chr(10).join(rows)}

- `frame_set`: frames whose predicted digit set is exactly right (classifier); guessing gets 1 in 10 (one digit)
  or about 1 in 50 (two digits) right;
- `clip_digits`, `clip_directions`, `clip_bounce`: clips whose digit set / set of direction bins moved in /
  any-bounce flag the video encoder gets exactly right. Nearly every clip bounces, so `clip_bounce` mostly
  reflects that base rate. The video encoder's proxy tasks are only a means to useful features: its accuracy
  says its features know digits and motion, not that it is a good classifier.

`benchmarks/bench_feature_nets.py` re-measures these; `tests/test_metrics.py` checks a small sample of them.

## Limits

- Trained on real MNIST digits: on the synthetic fallback digits the classifier is far less accurate, so identity
  and faithfulness scores there are rough. Distances are still comparable between sets scored the same way.
- Single frames are misread now and then (`frame_set` above), so `identity_persistence` calls a frame off only
  when another digit is read more than 0.5 more probable than the clip's: real one-digit clips stay near 1 and a
  frame whose digit is replaced is still caught (measured by `benchmarks/bench_identity.py`, docs/benchmarks.md).
- Two digits at 64×64 are seen at 32×32 (digits of 14 px) and overlapping digits are often confused, which is why
  `identity_persistence` and `identity_frames` do not judge frames where two tracked digits are closer than half
  a digit; even so real two-digit clips do not all score 1 (see the real-vs-real rows in `docs/benchmarks.md`).
  `python -m vdiff_edu evaluate --train-feature-nets --feature-preset gpu` trains longer (for a GPU).
- FVD-MM values are comparable only between runs scored with the same weights, the same n and the same geometry.
"""
