"""Benchmark of frames as the condition (issue 12): prediction scored against baselines, and 128-frame rollouts
with the coherence-over-time curve.

    VDIFF_MNIST_DIR=/path/to/mnist python benchmarks/bench_frames.py --weights cpu-frames --out runs/bench_frames

1. **Prediction** at the cpu geometry: 2 real frames given → 6 predicted, on clips of the fixed test split.
   The frames model (input channels), the same model given the frames through the noise (replacement), the same
   model given no frame at all (the unconditional model), copying the last frame, and sliding the last frame along
   the digit's velocity (an oracle for the deterministic rule). MSE / PSNR / SSIM as the mean over samples and as
   the best of N, and the tracked digit's position error per predicted frame. No label is given: the frames alone
   say which digit (the null label, "any digit"), so guidance is off.
2. **Rollouts** of ``--length`` frames from ``k`` real frames, each later window given the last ``k`` frames made,
   for k in ``--contexts`` and each scheme: plain (the context as made) and noise-augmented (the context noised
   at ``--noise-level`` before the model reads it), and each of them with the clip's label given as well ("plain +
   label", "noise-augmented + label": guided at the model's guidance scale, the frames kept in both branches);
   ``--schemes`` picks which. Per window of 8 frames: identity persistence, identity per
   frame, the context's digit kept, FVD-MM against real clips, ink and speed (``eval.metrics.coherence_over_time``).

Writes ``results.json`` and ``coherence.png`` to ``--out`` and prints Markdown tables for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from vdiff_edu.eval import metrics as M  # noqa: E402
from vdiff_edu.eval.feature_nets import load_feature_nets  # noqa: E402
from vdiff_edu.frames import past_mask  # noqa: E402
from vdiff_edu.moving_mnist import MovingMNIST  # noqa: E402
from vdiff_edu.pipeline import LatentVideoPipeline  # noqa: E402
from vdiff_edu.utils import from_uint8, to_uint8  # noqa: E402


def real_clips(cfg, n: int, num_frames: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 ``(n, num_frames, h, w)`` clips of the test split and their labels ``(n, digits)``."""
    kwargs = {**cfg.dataset_kwargs(), "num_frames": num_frames}
    ds = MovingMNIST(split="test", length=n, seed=seed, verbose=False, **kwargs)
    items = [ds[i] for i in range(n)]
    video = torch.stack([it["video"] for it in items])  # (n, 1, f, h, w)
    return np.asarray(to_uint8(video[:, 0])), torch.stack([it["labels"] for it in items]).numpy()


def prediction(pipe, args) -> tuple[dict, dict]:
    cfg, f, k = pipe.config, pipe.config.num_frames, args.given
    truth, _ = real_clips(cfg, args.n_predict, f, seed=11)  # (n, f, h, w)
    clips = from_uint8(torch.from_numpy(truth))[:, None]  # (n, 1, f, h, w)
    mask = past_mask(f, k)
    rows, errors = {}, {}
    kw = dict(sampler=args.sampler, steps=args.steps, guidance_scale=1.0)

    def sampled(method: str, given: torch.Tensor) -> np.ndarray:
        out = []
        for s in range(args.samples):
            video = pipe.predict(clips, given, method=method, seed=1000 + s, **kw)  # (n, 1, f, h, w)
            out.append(np.asarray(to_uint8(video[:, 0])))
        return np.stack(out, axis=1)  # (n, N, f, h, w)

    t0 = time.perf_counter()
    sets = {
        "frames model (channels)": sampled("channels", mask),
        "frames model (replacement)": sampled("replacement", mask),
        "unconditional (nothing given)": None,
        "copy last frame": M.copy_last_frame(truth[:, :k], f)[:, None],
        "constant velocity (oracle)": M.constant_velocity(truth[:, :k], f)[:, None],
    }
    nothing = sampled("channels", past_mask(f, 0))  # (n, N, f, h, w): the model's own clips, unrelated frames
    nothing[:, :, :k] = truth[:, None, :k]  # scored only on the predicted frames; the given ones in place
    sets["unconditional (nothing given)"] = nothing
    seconds = time.perf_counter() - t0
    for name, gen in sets.items():
        rows[name] = M.prediction_metrics(gen, truth, context_frames=k)
        err = M.position_errors(gen, truth)[:, :, k:]  # (n, N, f − k) px
        errors[name] = {"mean_per_frame": err.mean(dim=(0, 1)).tolist(),
                        "best_of_N_per_frame": err.min(dim=1).values.mean(0).tolist()}
    return {"rows": rows, "errors": errors, "seconds": seconds, "n": len(truth), "given": k,
            "samples": args.samples}, sets


def rollouts(pipe, args, nets) -> dict:
    cfg = pipe.config
    video_real, labels = real_clips(cfg, args.n_rollout, cfg.num_frames, seed=13)
    told = [tuple(r) if len(r) > 1 else r[0] for r in labels.tolist()]  # what pipe(labels=...) takes, per clip
    reference, _ = real_clips(cfg, 256, 8, seed=17)
    results = {}
    # the "+ label" schemes are told the digit too: the frames say where it is, the label which it is
    schemes = {"plain": (0.0, False), "noise-augmented": (args.noise_level, False), "plain + label": (0.0, True),
               "noise-augmented + label": (args.noise_level, True)}
    for k in args.contexts:
        for scheme in args.schemes:
            level, labelled = schemes[scheme]
            t0 = time.perf_counter()
            first = from_uint8(torch.from_numpy(video_real[:, :k]))[:, None]  # (n, 1, k, h, w)
            # without a label: the null one, "any digit", and nothing to guide towards
            given = dict(labels=told, guidance_scale=cfg.guidance_scale) if labelled else dict(guidance_scale=1.0)
            video = pipe.rollout(first, args.length, context=k, noise_level=level, sampler=args.sampler,
                                 steps=args.steps, seed=0, progress=False, **given)
            frames = np.asarray(to_uint8(video[:, 0]))  # (n, L, h, w)
            curve = M.coherence_over_time(frames, labels, nets, window=8, reference=reference)
            results[f"k={k} {scheme}"] = {key: np.asarray(v).tolist() for key, v in curve.items()}
            results[f"k={k} {scheme}"]["seconds"] = time.perf_counter() - t0
            np.save(Path(args.out) / f"rollout_k{k}_{scheme}.npy", frames[:8])
            print(f"  rollout k={k} {scheme}: {time.perf_counter() - t0:.0f} s; identity by window "
                  f"{np.round(curve['identity_persistence'], 2).tolist()}", flush=True)
    return results


LINE_STYLES = {"plain": "-", "noise-augmented": "--", "plain + label": ":", "noise-augmented + label": "-."}


def plot(results: dict, path: Path) -> None:
    keys = [("identity_persistence", "identity persistence (per clip)"), ("label_kept", "context's digit kept"),
            ("fvd_mm", "FVD-MM to real clips (lower is better)"), ("speed", "tracked speed, px/frame")]
    fig, axes = plt.subplots(2, 2, figsize=(10, 6.4), sharex=True)
    for ax, (key, title) in zip(axes.flat, keys):
        for name, curve in results.items():
            ax.plot(np.asarray(curve["start"]) + 4, curve[key], LINE_STYLES[name.split(" ", 1)[1]], marker=".",
                    label=name)
        ax.set(title=title, xlabel="frame (window centre)")
        ax.grid(alpha=0.3)
    axes[1, 1].axhline(1.8, color="grey", lw=0.8, ls=":", label="data speed 1.8")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("128-frame rollouts: how each window of 8 frames holds up")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--weights", default="cpu-frames")
    p.add_argument("--out", default="runs/bench_frames")
    p.add_argument("--n-predict", type=int, default=100)
    p.add_argument("--samples", type=int, default=10, help="N, samples per clip for best-of-N")
    p.add_argument("--given", type=int, default=2)
    p.add_argument("--n-rollout", type=int, default=64)
    p.add_argument("--length", type=int, default=128)
    p.add_argument("--contexts", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--noise-level", type=float, default=0.1)
    p.add_argument("--sampler", default="dpmpp")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--schemes", nargs="+", default=["plain", "noise-augmented"], choices=list(LINE_STYLES))
    p.add_argument("--skip", choices=("prediction", "rollouts"), default=None)
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    pipe = LatentVideoPipeline.from_pretrained(args.weights, device="cpu")
    nets = load_feature_nets(device="cpu")
    print(pipe)
    machine = f"{platform.machine()} CPU, {torch.get_num_threads()} threads, torch {torch.__version__}"
    results = {"machine": machine, "args": vars(args)}
    if args.skip != "prediction":
        results["prediction"], _ = prediction(pipe, args)
        pr = results["prediction"]
        n_best = f"best_of_{args.samples}"
        print(f"\n### Prediction: {pr['given']} given → {pipe.config.num_frames - pr['given']} predicted, {pr['n']} "
              f"test clips, N = {args.samples} ({args.sampler} × {args.steps}, {pr['seconds']:.0f} s)\n")
        print("| predictor | SSIM mean | SSIM best of N | PSNR mean | PSNR best of N | MSE mean | position error, "
              "first 3 predicted frames (px, mean) | per predicted frame |")
        print("|---|---:|---:|---:|---:|---:|---:|---|")
        for name, row in pr["rows"].items():
            best = n_best if f"ssim_{n_best}" in row else "best_of_1"
            err = pr["errors"][name]["mean_per_frame"]
            print(f"| {name} | {row['ssim_mean']:.3f} | {row[f'ssim_{best}']:.3f} | {row['psnr_mean']:.2f} | "
                  f"{row[f'psnr_{best}']:.2f} | {row['mse_mean']:.4f} | {np.mean(err[:3]):.2f} | "
                  f"{' '.join(f'{e:.1f}' for e in err)} |")
    if args.skip != "rollouts":
        results["rollouts"] = rollouts(pipe, args, nets)
        plot(results["rollouts"], out / "coherence.png")
        print(f"\n### Rollouts of {args.length} frames, {args.n_rollout} clips: per window of 8 frames\n")
        for key in ("identity_persistence", "label_kept", "fvd_mm", "speed", "ink"):
            print(f"\n{key}\n")
            starts = results["rollouts"][next(iter(results["rollouts"]))]["start"]
            print("| scheme | " + " | ".join(str(s) for s in starts) + " |")
            print("|---|" + "---:|" * len(starts))
            for name, curve in results["rollouts"].items():
                print(f"| {name} | " + " | ".join(f"{v:.2f}" for v in curve[key]) + " |")
    (out / "results.json").write_text(json.dumps(results, indent=1))
    print(f"\nwrote {out / 'results.json'}" + (f" and {out / 'coherence.png'}" if args.skip != "rollouts" else ""))


if __name__ == "__main__":
    main()
