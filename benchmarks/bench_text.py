"""Benchmark of text-to-video (issue 10): does a clip made from a prompt show what the prompt says?

    VDIFF_MNIST_DIR=/path/to/mnist python benchmarks/bench_text.py --weights runs/cpu-text --n 200 --out runs/bench_text

Three groups of ``--n`` prompts, each written from a real clip of the fixed evaluation split (test digits, never
seen in training), so that the real clip is there to compare:

    seen        meanings the model was trained on (no held-out digit–motion or digit–style pair), training templates
    unseen      held-out combinations only (the run's ``holdout``, e.g. a 3 moving vertically, a bold 7)
    paraphrase  the seen meanings, said with the held-out templates (phrasings never trained on)

Each prompt names digit, motion, start direction and style. Per group and attribute, faithfulness
(``eval.prompts.prompt_faithfulness``) of: the generated clips; the real clips with their own captions (the
ceiling of what the measurements can confirm); the real clips with a shuffled caption of the same group (chance).
The style reader's cuts are calibrated on other real clips. With ``--clip-steps N`` a tiny CLIP is first trained
on real training clips (every combination) as a judge, and each row also gets its mean text-video similarity
(CLIPSIM, as the Video LDM paper reports beside its classifier scores). Prints a Markdown table, writes
``results.json`` and a figure of the first clips of each group to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import torch  # noqa: E402

from vdiff_edu import captions, viz  # noqa: E402
from vdiff_edu.eval.feature_nets import load_feature_nets  # noqa: E402
from vdiff_edu.eval.prompts import ATTRIBUTES, calibrate_style_cuts, prompt_faithfulness  # noqa: E402
from vdiff_edu.moving_mnist import MovingMNIST  # noqa: E402
from vdiff_edu.pipeline import LatentVideoPipeline  # noqa: E402
from vdiff_edu.text import TinyClipConfig, text_video_similarity, train_tiny_clip  # noqa: E402
from vdiff_edu.utils import from_uint8, to_uint8  # noqa: E402

GROUPS = ("seen", "unseen", "paraphrase")


def real_set(cfg, split: str, n: int, start: int, keep) -> tuple[np.ndarray, list[captions.Meaning]]:
    """The first ``n`` clips from index ``start`` of ``split`` whose meaning passes ``keep``: uint8 (n, f, h, w)."""
    kwargs = cfg.dataset_kwargs()
    holdout = kwargs.pop("holdout", set())
    ds = MovingMNIST(split=split, length=start + 50 * n, seed=0, verbose=False,
                     holdout=holdout if split == "holdout" else None, **kwargs)
    clips, meanings = [], []
    for i in range(start, len(ds)):
        item = ds[i]
        m = captions.meanings_of_item(item)[0]
        if keep(m):
            clips.append(to_uint8(item["video"][0]).numpy())
            meanings.append(m)
            if len(clips) == n:
                break
    if len(clips) < n:
        raise RuntimeError(f"only {len(clips)} of {n} clips of split {split!r} passed the filter")
    return np.stack(clips), meanings


def tiny_clip_for(cfg, steps: int, clips: int = 3000):
    """A tiny CLIP trained on real training clips of the run's geometry and styles (train digits), each with a
    training-template caption: the judge of text-video agreement (CLIPSIM), never trained with the generator."""
    kwargs = cfg.dataset_kwargs()
    kwargs.pop("holdout", None)  # the judge sees every combination: it must be able to score the unseen ones
    ds = MovingMNIST(split="train", length=clips, seed=123, verbose=False, **kwargs)
    items = [ds[i] for i in range(clips)]
    rng = np.random.default_rng(123)
    prompts = [captions.caption(captions.meanings_of_item(it), rng=rng) for it in items]
    model, _ = train_tiny_clip(torch.stack([it["video"] for it in items]), prompts,
                               TinyClipConfig.cpu(num_frames=cfg.num_frames), steps=steps, device="cpu")
    return model


def measure(pipe, n: int, guidance: float | None = None, sampler: str | None = None, steps: int | None = None,
            batch: int = 50, judge=None) -> tuple[dict, dict]:
    """The three groups' faithfulness tables for a text pipeline, and the first clips of each group for a figure.
    With a ``judge`` (a trained TinyCLIP), also the mean text-video similarity of each row (CLIPSIM)."""
    cfg = pipe.config
    held = {(int(d), v) for d, v in cfg.holdout}

    def is_held(m):
        return (m.digit, m.motion) in held or (m.digit, m.style) in held

    nets = load_feature_nets()
    cal_clips, cal_meanings = real_set(cfg, "eval", 300, 20_000, lambda m: True)
    cuts = calibrate_style_cuts(cal_clips, [m.style for m in cal_meanings])
    rng = np.random.default_rng(0)
    seen_clips, seen = real_set(cfg, "eval", n, 0, lambda m: not is_held(m))
    unseen_clips, unseen = real_set(cfg, "holdout", n, 0, lambda m: True)
    train_t, held_t = captions.TRAIN_TEMPLATES, captions.HELD_OUT_TEMPLATES
    groups = {
        "seen": (seen_clips, [captions.caption(m, train_t[rng.integers(len(train_t))]) for m in seen]),
        "unseen": (unseen_clips, [captions.caption(m, train_t[rng.integers(len(train_t))]) for m in unseen]),
        "paraphrase": (seen_clips, [captions.caption(m, held_t[rng.integers(len(held_t))]) for m in seen]),
    }
    results = {"style_cuts": cuts, "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads, "
               f"torch {torch.__version__}", "n": n, "groups": {}}
    shown = {}
    for name, (real, prompts) in groups.items():
        start = time.perf_counter()
        video = pipe(prompts=prompts, sampler=sampler, steps=steps, guidance_scale=guidance, seed=1,
                     batch_size=batch)  # (n, 1, f, h, w)
        seconds = time.perf_counter() - start
        made = to_uint8(video[:, 0]).numpy()
        shuffled = list(np.random.default_rng(1).permutation(prompts))
        results["groups"][name] = {
            "generated": prompt_faithfulness(made, prompts, nets, cuts),
            "real, own caption": prompt_faithfulness(real, prompts, nets, cuts),
            "real, shuffled caption": prompt_faithfulness(real, shuffled, nets, cuts),
            "seconds per clip": seconds / len(prompts), "prompts": prompts[:8]}
        if judge is not None:
            for row, clips, ps in (("generated", made, prompts), ("real, own caption", real, prompts),
                                   ("real, shuffled caption", real, shuffled)):
                video = from_uint8(torch.from_numpy(clips))[:, None]  # (n, 1, f, h, w) in [-1, 1]
                results["groups"][name][row]["clipsim"] = float(text_video_similarity(judge, video, ps).mean())
        if name == "unseen":  # each held-out pair on its own: which combinations does the model compose?
            results["groups"][name]["generated, by held-out pair"] = {
                f"{d} {v}": prompt_faithfulness(made[idx], [prompts[i] for i in idx], nets, cuts)
                for d, v in sorted(held)
                for idx in [[i for i, m in enumerate(unseen) if (m.digit, m.motion) == (d, v) or (m.digit, m.style) == (d, v)]]
                if idx}
        shown[name] = (made[:6], prompts[:6])
        print(f"{name}: {seconds / len(prompts):.3f} s per clip", flush=True)
    return results, shown


def table(results: dict, rows=("generated", "real, own caption", "real, shuffled caption")) -> str:
    judged = "clipsim" in next(iter(results["groups"].values()))["generated"]
    cols = ATTRIBUTES + (("clipsim",) if judged else ())
    lines = ["| group | clips | " + " | ".join(cols) + " |", "|---|---|" + "---:|" * len(cols)]
    for name, r in results["groups"].items():
        for row in rows:
            lines.append(f"| {name} | {row} | " + " | ".join(f"{r[row][a]:.3f}" for a in cols) + " |")
        for pair, score in r.get("generated, by held-out pair", {}).items():
            lines.append(f"| {name}: {pair} ({score['n_digit']} clips) | generated | "
                         + " | ".join(f"{score[a]:.3f}" for a in ATTRIBUTES) + (" | |" if judged else " |"))
    return "\n".join(lines)


def figure(shown: dict, path: Path) -> None:
    """The first clips of each group, one row per clip labelled with its group and prompt (``viz.filmstrip``)."""
    clips = np.concatenate([made for made, _ in shown.values()])  # uint8 (rows, f, h, w)
    labels = [f"{name}\n{prompt}" for name, (_, prompts) in shown.items() for prompt in prompts]
    fig = viz.filmstrip(clips, labels=labels, frames=clips.shape[1])
    fig.savefig(path, dpi=90)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", default="runs/cpu-text", help="a text run folder or shipped name")
    ap.add_argument("--n", type=int, default=200, help="clips per group")
    ap.add_argument("--guidance", type=float, default=None, help="guidance scale (default: the run's)")
    ap.add_argument("--sampler", default=None)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", default="runs/bench_text")
    ap.add_argument("--clip-steps", type=int, default=0,
                    help="train a tiny CLIP judge for this many steps and report CLIPSIM (0: no judge)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pipe = LatentVideoPipeline.from_pretrained(args.weights)
    if not pipe.reads_prompts:
        raise SystemExit(f"{args.weights} is a label model; give a text run (train one with --preset cpu-text)")
    judge = tiny_clip_for(pipe.config, args.clip_steps) if args.clip_steps else None
    results, shown = measure(pipe, args.n, args.guidance, args.sampler, args.steps, args.batch, judge)
    results["weights"] = str(args.weights)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    print(f"\n{args.weights}, {args.n} clips per group; {results['machine']}\n")
    print(table(results))
    figure(shown, out / "clips.png")
    print(f"\nwrote {out / 'results.json'} and {out / 'clips.png'}")


if __name__ == "__main__":
    main()
