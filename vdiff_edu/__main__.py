"""The command line: ``python -m vdiff_edu {info,train,sample,evaluate,demo}``.

    python -m vdiff_edu info                                   versions, device, presets, shipped weights
    python -m vdiff_edu train --preset cpu --name my_run       autoencoder, then denoiser → runs/my_run/
    python -m vdiff_edu sample --weights cpu --labels 3,7      GIF + uint8 .npy + labels.npy
    python -m vdiff_edu evaluate ...                           the evaluation suite (vdiff_edu.metrics)
    python -m vdiff_edu demo [--skip-train]                    what `make demo` runs

Every command writes under ``runs/`` (or ``VDIFF_RUNS_DIR``) and prints where. ``VDIFF_SMOKE=1`` shrinks
everything to seconds; ``VDIFF_MNIST_DIR`` names a folder of MNIST idx files.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

from .config import PRESETS, WEIGHTS_DIR, default_preset, is_smoke, runs_dir


class UsageError(Exception):
    """A mistake on the command line: printed as one teaching sentence, exit status 2."""


# ---------------------------------------------------------------- helpers ----


def parse_labels(text: str | None, num_slots: int = 1) -> list | None:
    """``"3,7,1"`` → ``[3, 7, 1]``; for two digits per clip ``"37,12"`` → ``[(3, 7), (1, 2)]``."""
    if text is None:
        return None
    out = []
    for token in text.replace(" ", "").split(","):
        if not token:
            continue
        if not token.isdigit() or len(token) != num_slots:
            example = "3,7,1" if num_slots == 1 else ",".join(["37", "12", "90"][:2])
            raise UsageError(f"--labels must be comma-separated clips of {num_slots} digit(s) 0-9 each, e.g. "
                             f"--labels {example}; got {token!r} in {text!r}")
        out.append(int(token) if num_slots == 1 else tuple(int(c) for c in token))
    if not out:
        raise UsageError(f"--labels is empty; give at least one digit, e.g. --labels 3,7 (got {text!r})")
    return out


def _seconds(s: float) -> str:
    return f"{s:.1f} s" if s < 120 else f"{s / 60:.1f} min"


def _run_dir(name: str) -> Path:
    if not name or "/" in name or name in (".", ".."):
        raise UsageError(f"--name is a folder name under {runs_dir()}/ (letters, digits, - and _), got {name!r}")
    return runs_dir() / name


# ---------------------------------------------------------------- info ----


def cmd_info(args) -> int:
    import numpy as np
    import torch

    from . import __version__
    from .checkpoint import read_weights_metadata
    from .presets import ExperimentConfig
    from .utils import get_device

    print(f"vdiff_edu {__version__}  python {platform.python_version()}  torch {torch.__version__}  "
          f"numpy {np.__version__}")
    device = get_device()
    extra = f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""
    print(f"device: {device}{extra}; CPU threads: {torch.get_num_threads()}; smoke mode: {is_smoke()}; "
          f"runs go to {runs_dir()}/")
    print(f"MNIST folder (VDIFF_MNIST_DIR): {os.environ.get('VDIFF_MNIST_DIR') or 'not set (cache or download)'}")
    print("\npresets (python -m vdiff_edu train --preset NAME):")
    for name in PRESETS:
        print(ExperimentConfig.preset(name).summary())
    print(f"\nshipped weights in {WEIGHTS_DIR}:")
    files = sorted(WEIGHTS_DIR.glob("*.safetensors"))
    if not files:
        print("  none")
    for path in files:
        try:
            meta = read_weights_metadata(path)
        except Exception as e:  # a damaged file must not break `info`
            meta = {"error": str(e)}
        what = meta.get("model", "?")
        steps = f", {meta['train_steps']} steps" if "train_steps" in meta else ""
        print(f"  {path.name:<34} {path.stat().st_size / 1e6:6.2f} MB  {what}{steps}")
    for card in sorted(WEIGHTS_DIR.glob("*.md")):
        lines = [ln for ln in card.read_text().splitlines() if ln.strip()]
        print(f"  card {card.name}: {lines[0].lstrip('# ') if lines else '(empty)'}")
    return 0


# ---------------------------------------------------------------- train ----


def cmd_train(args) -> int:
    import torch

    from .pipeline import train_pipeline
    from .presets import ExperimentConfig

    preset = args.preset or default_preset()
    try:
        cfg = ExperimentConfig.preset(preset)
    except ValueError as e:
        raise UsageError(str(e)) from None
    run_dir = _run_dir(args.name or preset)
    if args.resume is not None and args.resume != "latest" and not Path(args.resume).is_file():
        raise UsageError(f"--resume {args.resume}: no such checkpoint. Pass 'latest' (the newest in "
                         f"{run_dir}/checkpoints) or the path of a .pt file there")
    if args.resume is None and args.stage != "autoencoder" and any((run_dir / "checkpoints").glob("*.pt")):
        print(f"note: {run_dir} already holds checkpoints; this run starts fresh and replaces them "
              f"(add --resume latest to continue instead)")
    print(cfg.summary())
    print(f"run folder: {run_dir}/  (torch threads: {torch.get_num_threads()})", flush=True)
    start = time.perf_counter()
    result = train_pipeline(cfg, run_dir, stage=args.stage, resume=args.resume, mnist_dir=args.mnist_dir,
                            steps=args.steps, device=args.device)
    total = time.perf_counter() - start
    written = [f"  weights      {p}" for p in result["paths"].values()]
    if "history" in result:
        from .pipeline import write_loss_curve, write_samples

        loss_png = write_loss_curve(result["histories"], run_dir / "loss.png", title=f"{run_dir.name}: denoiser loss")
        pipe = result["pipeline"]
        t0 = time.perf_counter()
        n = 20 if cfg.num_digits == 1 else 10
        video = pipe(num_videos=n, seed=0)
        labels = pipe.encode_condition(None, n)["labels"].cpu()
        paths = write_samples(video, labels, run_dir / "samples", title=f"{run_dir.name}: samples")
        written += [f"  loss curve   {loss_png}", f"  samples      {paths['gif']}  {paths['png']}  {paths['npy']}",
                    f"               ({n} clips, {_seconds(time.perf_counter() - t0)})",
                    f"  checkpoints  {run_dir / 'checkpoints'}/"]
    secs = ", ".join(f"{k} {_seconds(v)}" for k, v in result["seconds"].items() if k != "total")
    print(f"\ntrained in {_seconds(result['seconds']['total'])} ({secs}); wrote:")
    print("\n".join(written))
    if "pipeline" in result:
        print(f"sample more: python -m vdiff_edu sample --weights {run_dir} --labels 3,7")
    print(f"(command total {_seconds(total)})")
    return 0


# ---------------------------------------------------------------- sample ----


def cmd_sample(args) -> int:
    import torch

    from .pipeline import LatentVideoPipeline, write_samples

    try:
        pipe = LatentVideoPipeline.from_pretrained(args.weights, device=args.device)
    except FileNotFoundError as e:
        raise UsageError(str(e)) from None
    slots = max(1, pipe.unet.cfg.num_label_slots)
    labels = parse_labels(args.labels, slots)
    n = args.n if args.n is not None else (len(labels) if labels is not None else 16)
    if n < 1:
        raise UsageError(f"--n must be at least 1; got {n}")
    if labels is None:
        cond = pipe.encode_condition(None, n)
    else:
        labels = [labels[i % len(labels)] for i in range(n)]  # repeat the labels to fill n clips
        cond = pipe.encode_condition(labels)
    if args.guidance is not None and args.guidance < 0:
        raise UsageError(f"--guidance must be >= 0 (1 = no guidance, 2-4 typical); got {args.guidance}")
    out = Path(args.out) if args.out else runs_dir() / "samples" / Path(str(args.weights)).name
    print(pipe)
    t0 = time.perf_counter()
    try:
        video = pipe(cond["labels"].cpu() if cond is not None else None, num_videos=n, sampler=args.sampler,
                     steps=args.steps, guidance_scale=args.guidance, seed=args.seed)
    except ValueError as e:
        raise UsageError(str(e)) from None
    seconds = time.perf_counter() - t0
    paths = write_samples(video, cond["labels"].cpu() if cond is not None else None, out,
                          title=f"{args.weights}: {args.sampler or pipe.config.sampler}")
    print(f"{n} clips in {_seconds(seconds)} ({seconds / n:.2f} s per clip); wrote")
    for key, path in paths.items():
        print(f"  {key:<6} {path}")
    print("samples.npy: uint8 (n, f, h, w), 0 = background, 255 = digit; labels.npy: int64 (n, digits)")
    return 0


# ---------------------------------------------------------------- evaluate ----


def _metrics_module():
    try:
        from .eval import cli as metrics
    except ImportError:
        return None
    if not (hasattr(metrics, "add_evaluate_arguments") and hasattr(metrics, "evaluate_command")):
        return None
    return metrics


def cmd_evaluate(args) -> int:
    metrics = _metrics_module()
    if metrics is None:
        raise UsageError("evaluation needs vdiff_edu.metrics, which is not in this version yet")
    return metrics.evaluate_command(args) or 0


# ---------------------------------------------------------------- demo ----


def cmd_demo(args) -> int:
    """Preview the data and the forward process, sample the shipped model, train the cpu preset from nothing."""
    import torch

    from .moving_mnist import MovingMNIST
    from .pipeline import LatentVideoPipeline, train_pipeline, write_loss_curve, write_samples
    from .presets import ExperimentConfig
    from .schedule import NoiseSchedule
    from .viz import filmstrip, save_gif

    out = runs_dir() / "demo"
    out.mkdir(parents=True, exist_ok=True)
    smoke = is_smoke()
    skip_train = args.skip_train or os.environ.get("VDIFF_DEMO_SKIP_TRAIN") == "1"
    start = time.perf_counter()
    written: list[str] = []

    # 1. Moving MNIST: a preview GIF of training clips
    t0 = time.perf_counter()
    geometry = dict(num_frames=8, image_size=32, num_digits=1, digit_size=20) if smoke else \
        dict(num_frames=20, image_size=64, num_digits=2)
    ds = MovingMNIST("train", length=16, mnist_dir=args.mnist_dir, **geometry)
    clips = torch.stack([ds[i]["video"] for i in range(8 if smoke else 16)])  # (n, 1, f, h, w)
    gif = save_gif(clips, out / "moving_mnist.gif", fps=8, scale=2 if smoke else 1)
    print(f"[1/4] Moving MNIST preview ({ds.source}) → {gif}  ({_seconds(time.perf_counter() - t0)})")
    print(f"      first caption: {ds[0]['caption']!r}")
    written.append(f"  Moving MNIST preview    {gif}")

    # 2. the forward process: one clip noised at growing t
    t0 = time.perf_counter()
    schedule = NoiseSchedule("cosine", 1000)
    ts = [0, 100, 250, 500, 750, 999]
    x0 = clips[:1].expand(len(ts), -1, -1, -1, -1)
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0))
    x_t = schedule.q_sample(x0, torch.tensor(ts), noise).clamp(-1, 1)
    fig = filmstrip(x_t, labels=[f"t={t}" for t in ts], frames=6,
                    title="forward process q(x_t | x_0), cosine schedule")
    fig.savefig(out / "forward_process.png", dpi=80, bbox_inches="tight")
    _close(fig)
    print(f"[2/4] forward process → {out / 'forward_process.png'}  ({_seconds(time.perf_counter() - t0)})")
    written.append(f"  forward process figure  {out / 'forward_process.png'}")

    # 3. samples from the shipped weights
    t0 = time.perf_counter()
    try:
        pipe = LatentVideoPipeline.from_pretrained("cpu")
    except FileNotFoundError as e:
        print(f"[3/4] shipped weights: skipped ({e})")
    else:
        n = 10
        steps = 4 if smoke else None
        video = pipe(num_videos=n, seed=0, steps=steps)
        labels = pipe.encode_condition(None, n)["labels"].cpu()
        paths = write_samples(video, labels, out / "shipped_samples", title="shipped cpu model: digits 0-9")
        secs = time.perf_counter() - t0
        print(f"[3/4] shipped cpu model: {n} clips (digits 0-9) in {_seconds(secs)} → {paths['gif']}")
        written.append(f"  shipped-model samples   {paths['gif']}  ({_seconds(secs)})")

    # 4. train the cpu preset from nothing (smoke under VDIFF_SMOKE=1)
    if skip_train:
        print("[4/4] training skipped (--skip-train or VDIFF_DEMO_SKIP_TRAIN=1)")
    else:
        preset = "smoke" if smoke else "cpu"
        cfg = ExperimentConfig.preset(preset)
        run_dir = out / f"train_{preset}"
        print(f"[4/4] training the {preset} preset from nothing → {run_dir}/ (the cpu preset takes under 10 min "
              f"on 2 cores)", flush=True)
        print(cfg.summary())
        t0 = time.perf_counter()
        result = train_pipeline(cfg, run_dir, mnist_dir=args.mnist_dir,
                                log=lambda s: print("      " + s, flush=True))
        train_secs = time.perf_counter() - t0
        loss_png = write_loss_curve(result["histories"], run_dir / "loss.png", title=f"{preset} preset: denoiser loss")
        n = 20 if cfg.num_digits == 1 else 10
        video = result["pipeline"](num_videos=n, seed=0)
        labels = result["pipeline"].encode_condition(None, n)["labels"].cpu()
        paths = write_samples(video, labels, run_dir / "samples", title=f"{preset} preset trained in "
                                                                          f"{_seconds(train_secs)}")
        print(f"      trained in {_seconds(train_secs)}; samples → {paths['gif']}")
        written += [f"  freshly trained samples {paths['gif']}  {paths['png']}",
                    f"  loss curve              {loss_png}",
                    f"  its weights             {run_dir / 'weights'}/  (trained in {_seconds(train_secs)})"]

    print(f"\ndemo done in {_seconds(time.perf_counter() - start)}. Everything is under {out}/:")
    print("\n".join(written))
    return 0


def _close(fig) -> None:
    import matplotlib.pyplot as plt

    plt.close(fig)


# ---------------------------------------------------------------- the parser ----


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m vdiff_edu", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="{info,train,sample,evaluate,demo}")

    p = sub.add_parser("info", help="versions, device, presets, shipped weights and their cards")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("train", help="train the autoencoder, then the denoiser; outputs under runs/<name>/")
    p.add_argument("--preset", default=None, help=f"one of {', '.join(PRESETS)} (default: cpu; smoke under VDIFF_SMOKE=1)")
    p.add_argument("--name", default=None, help="run folder name under runs/ (default: the preset's name)")
    p.add_argument("--stage", choices=("autoencoder", "denoiser", "both"), default="both",
                   help="train only the autoencoder, only the denoiser (on the run's autoencoder), or both")
    p.add_argument("--resume", default=None, metavar="latest|PATH", help="continue the denoiser from a checkpoint")
    p.add_argument("--mnist-dir", default=None, help="folder with MNIST idx files (default: VDIFF_MNIST_DIR, cache)")
    p.add_argument("--steps", type=int, default=None, help="denoiser steps (default: the preset's)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: CUDA if present)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("sample", help="sample clips; writes samples.gif, samples.npy (uint8) and labels.npy")
    p.add_argument("--weights", default="cpu", help="'cpu' (the shipped weights) or a run folder such as runs/my_run")
    p.add_argument("--n", type=int, default=None, help="number of clips (default: one per label, or 16)")
    p.add_argument("--labels", default=None, help="digits, comma-separated, e.g. 3,7,1 (default: 0,1,2,... in turn)")
    p.add_argument("--steps", type=int, default=None,
                   help="sampler steps (default: the model's; 50 for the shipped cpu model)")
    p.add_argument("--guidance", type=float, default=None, help="classifier-free guidance scale (default: the model's)")
    p.add_argument("--sampler", choices=("ddpm", "ddim", "dpmpp"), default=None,
                   help="default: the model's (ddpm for the shipped cpu model)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="output folder (default: runs/samples/<weights>)")
    p.add_argument("--device", default=None)
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("evaluate", help="the evaluation suite (vdiff_edu.metrics)")
    metrics = _metrics_module()
    if metrics is not None:
        metrics.add_evaluate_arguments(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("demo", help="what `make demo` runs: data preview, shipped-model samples, a fresh cpu run")
    p.add_argument("--skip-train", action="store_true", help="skip training (also: VDIFF_DEMO_SKIP_TRAIN=1)")
    p.add_argument("--mnist-dir", default=None, help="folder with MNIST idx files (default: VDIFF_MNIST_DIR, cache)")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return args.func(args)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
