"""Zero-shot accuracy of a tiny CLIP trained on captioned Moving MNIST clips (one digit, 8 × 32 × 32).

    VDIFF_MNIST_DIR=/path/to/mnist python benchmarks/bench_tiny_clip.py      # 1,000 clips, 200 steps: ~2 min on a CPU
    VDIFF_MNIST_DIR=/path/to/mnist python benchmarks/bench_tiny_clip.py --clips 4000 --steps 1000

1. Training clips (train digits) each get one caption: a random training template (``captions.TRAIN_TEMPLATES``)
   of the clip's digit, motion and start direction, with the motion and the direction each left out with
   probability ``--drop`` (so that short prompts such as "the digit 3" mean something too). Clips are drawn in all
   three stroke styles, and the style is left out with the same probability.
2. ``text.train_tiny_clip`` with the ``cpu`` TinyClipConfig.
3. Zero-shot on the fixed evaluation clips (test digits): for each question, one candidate prompt per answer,
   the true answer the clip's own; each line of the table is ``zero_shot_accuracy`` and its chance level.
   "held-out" lines phrase the candidates with a template the model never saw (``HELD_OUT_TEMPLATES``).
4. ``text_video_similarity`` of each clip with its own full caption, and with the caption of another clip.

It prints one Markdown table; ``docs/text.md`` holds the one we measured.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np
import torch

from vdiff_edu.captions import (DIRECTIONS, HELD_OUT_TEMPLATES, MOTIONS, STYLES, TRAIN_TEMPLATES, Meaning, caption,
                                meanings_of_item)
from vdiff_edu.text import TinyClipConfig, text_video_similarity, train_tiny_clip, zero_shot_accuracy

from vdiff_edu.moving_mnist import MovingMNIST


def clips_and_meanings(split: str, n: int, seed: int) -> tuple[torch.Tensor, list[Meaning], str]:
    """``n`` clips (n, 1, 8, 32, 32) of one digit, the Meaning of each, and where the digits came from."""
    ds = MovingMNIST(split=split, num_frames=8, image_size=32, digit_size=20, num_digits=1, length=n, seed=seed,
                     styles=STYLES, mnist_dir=os.environ.get("VDIFF_MNIST_DIR"), verbose=False)
    items = [ds[i] for i in range(n)]
    return torch.stack([it["video"] for it in items]), [meanings_of_item(it)[0] for it in items], ds.source


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=1000, help="training clips")
    parser.add_argument("--eval-clips", type=int, default=256, help="evaluation clips")
    parser.add_argument("--steps", type=int, default=200, help="training steps")
    parser.add_argument("--drop", type=float, default=0.3, help="probability of leaving out motion / direction")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: fastest on a busy machine)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--video-channels", default="16,32", help="widths of the video encoder's levels")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)

    # 1. captioned training clips
    t0 = time.perf_counter()
    clips, meanings, source = clips_and_meanings("train", args.clips, args.seed)
    prompts = []
    for m in meanings:
        keep = Meaning(m.digit, m.motion if rng.random() > args.drop else None,
                       m.direction if rng.random() > args.drop else None, m.style if rng.random() > args.drop else None)
        prompts.append(caption(keep, rng=rng))
    eval_clips, eval_meanings, eval_source = clips_and_meanings("eval", args.eval_clips, 0)
    t_data = time.perf_counter() - t0

    # 2. train
    t0 = time.perf_counter()
    cfg = TinyClipConfig.cpu(video_channels=tuple(int(c) for c in args.video_channels.split(",")))
    model, history = train_tiny_clip(clips, prompts, cfg, steps=args.steps, device="cpu", seed=args.seed)
    t_train = time.perf_counter() - t0

    # 3. zero-shot questions: (name, candidate prompts per clip, true index per clip)
    t0 = time.perf_counter()
    rows = []

    def ask(name, template, field, values, base=lambda m: {}):
        # every clip gets its own candidate list when the other fields come from the clip (its digit)
        correct, n = 0.0, len(eval_meanings)
        groups: dict[tuple, list[int]] = {}
        for i, m in enumerate(eval_meanings):
            groups.setdefault(tuple(sorted(base(m).items())), []).append(i)
        for key, idx in groups.items():
            candidates = [caption(Meaning(**dict(key), **{field: v}), template) for v in values]
            truth = [values.index(getattr(eval_meanings[i], field)) for i in idx]
            correct += zero_shot_accuracy(model, eval_clips[idx], candidates, truth) * len(idx)
        rows.append((name, f"`{caption(Meaning(**{**dict(next(iter(groups))), field: values[0]}), template)}` …",
                     correct / n, 1 / len(values)))

    own_digit = lambda m: {"digit": m.digit}  # noqa: E731
    ask("digit (10 prompts), training template", TRAIN_TEMPLATES[0], "digit", list(range(10)))
    ask("digit (10 prompts), held-out template", HELD_OUT_TEMPLATES[0], "digit", list(range(10)))
    ask("motion (3 prompts, own digit), training template", TRAIN_TEMPLATES[0], "motion", list(MOTIONS), own_digit)
    ask("motion (3 prompts, own digit), held-out template", HELD_OUT_TEMPLATES[1], "motion", list(MOTIONS), own_digit)
    ask("direction (8 prompts, own digit), training template", TRAIN_TEMPLATES[0], "direction", list(DIRECTIONS),
        own_digit)
    ask("direction (8 prompts, own digit), held-out template", HELD_OUT_TEMPLATES[1], "direction", list(DIRECTIONS),
        own_digit)
    ask("style (3 prompts, own digit), training template", TRAIN_TEMPLATES[0], "style", list(STYLES), own_digit)
    ask("style (3 prompts, own digit), held-out template", HELD_OUT_TEMPLATES[1], "style", list(STYLES), own_digit)
    t_eval = time.perf_counter() - t0

    # 4. similarity with the own caption and with another clip's
    own = [caption(m, TRAIN_TEMPLATES[0]) for m in eval_meanings]
    other = own[1:] + own[:1]
    sim_own = text_video_similarity(model, eval_clips, own).mean().item()
    sim_other = text_video_similarity(model, eval_clips, other).mean().item()

    print(f"TinyCLIP cpu preset, video levels {cfg.video_channels}, "
          f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters; "
          f"{args.clips} training clips, {args.steps} steps (batch {TinyClipConfig.cpu().batch_size}); "
          f"{args.eval_clips} evaluation clips; digits: train {source}; eval {eval_source}")
    print(f"loss {np.mean(history['loss'][:5]):.3f} (first 5 steps) -> {np.mean(history['loss'][-20:]):.3f} "
          f"(last 20), temperature {history['temperature'][-1]:.3f}")
    print(f"time: data {t_data:.0f} s, training {t_train:.0f} s, zero-shot {t_eval:.0f} s; {platform.machine()} CPU, "
          f"{args.threads} thread(s), torch {torch.__version__}, python {sys.version.split()[0]}\n")
    print("| question | candidates | zero-shot accuracy | chance |\n|---|---|---:|---:|")
    for name, example, acc, chance in rows:
        print(f"| {name} | {example} | {acc:.3f} | {chance:.3f} |")
    print(f"\ntext_video_similarity: own caption {sim_own:.3f}, another clip's caption {sim_other:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
