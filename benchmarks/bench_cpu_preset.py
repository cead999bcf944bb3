"""Benchmark of the end-to-end presets: how fast the ``cpu`` preset trains and samples, and how long ``make demo`` takes.

    VDIFF_MNIST_DIR=/path/to/mnist python benchmarks/bench_cpu_preset.py                 # throughput + sampling
    VDIFF_MNIST_DIR=/path/to/mnist python benchmarks/bench_cpu_preset.py --demo          # + time `demo` end to end
    VDIFF_MNIST_DIR=/path/to/mnist python benchmarks/bench_cpu_preset.py --demo --write-docs

Measures, on this machine:

* training throughput of the cpu preset: autoencoder frames/s, the denoiser's single-frame stage frames/s and its
  clip stage clips/s (a few timed steps of each,
  after a warm-up), and what the preset's step counts then cost in seconds;
* sampling seconds per clip from the shipped weights at 10, 25 and 50 steps (the model's own sampler, guidance on;
  ``bench_samplers.py`` compares samplers by quality);
* with ``--demo``: the wall time of ``python -m vdiff_edu demo`` (data preview, shipped samples, training the cpu
  preset from nothing, its samples), in a temporary runs folder;
* on a CUDA machine, the gpu preset's denoiser clips/s, model FLOPs utilisation and peak memory.

``--write-docs`` replaces the cpu-preset section of ``docs/benchmarks.md`` (between its two marker comments, or
appended at the end the first time) and leaves the other sections alone. Timings are only comparable on a quiet
machine: other jobs on the same cores slow everything down (the script prints the load average it saw).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from vdiff_edu.autoencoder import FrameAutoencoder, autoencoder_loss
from vdiff_edu.presets import ExperimentConfig
from vdiff_edu.train import Trainer
from vdiff_edu.unet import UNet3D

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- cpu-preset:start -->", "<!-- cpu-preset:end -->"


def load() -> str:
    try:
        return " / ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def autoencoder_frames_per_s(cfg: ExperimentConfig, steps: int, device) -> float:
    """Frames per second of the autoencoder's training step (forward, backward, AdamW) at the preset's batch."""
    ae = FrameAutoencoder(cfg.autoencoder).to(device)
    opt = torch.optim.AdamW(ae.parameters(), lr=cfg.autoencoder.lr)
    frames = torch.rand(cfg.autoencoder.batch_size, 1, cfg.image_size, cfg.image_size, device=device) * 2 - 1

    def step():
        loss = autoencoder_loss(ae, frames)[0]
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(2):
        step()
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return steps * cfg.autoencoder.batch_size / (time.perf_counter() - start)


def denoiser_clips_per_s(cfg: ExperimentConfig, steps: int, device, frames: bool = False) -> tuple[float, float | None]:
    """Clips per second of the Trainer's step on random latents of the preset's shape (``frames=True``: single
    latent frames at the image stage's batch, as ``train_pipeline`` trains first); and the peak CUDA memory."""
    stage = cfg.image_train if frames else cfg.train
    shape = (cfg.latent_shape[0], 1, *cfg.latent_shape[2:]) if frames else cfg.latent_shape
    n = max(stage.batch_size * 2, 64)
    data = {"latents": torch.randn(n, *shape), "labels": torch.randint(0, 10, (n, cfg.num_digits))}
    train_cfg = replace(stage, steps=steps + 2, checkpoint_every=0, progress="none", compile=False)
    trainer = Trainer(UNet3D(cfg.unet), cfg.noise_schedule(), data, train_cfg,
                      device=device)
    trainer.train(num_steps=2)  # warm-up
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    _sync(device)
    start = time.perf_counter()
    trainer.train(num_steps=steps)
    _sync(device)
    rate = steps * stage.batch_size / (time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None
    return rate, peak


def sampling_seconds_per_clip(weights: str, steps_list, n: int) -> dict[int, float]:
    from vdiff_edu.pipeline import LatentVideoPipeline

    pipe = LatentVideoPipeline.from_pretrained(weights, device="cpu")
    pipe(labels=[0], steps=2)  # warm-up
    out = {}
    for steps in steps_list:
        start = time.perf_counter()
        pipe(num_videos=n, steps=steps, seed=0)
        out[steps] = (time.perf_counter() - start) / n
    return out


def time_demo(threads: int) -> tuple[float, str]:
    """Run `python -m vdiff_edu demo` in a fresh runs folder; return its wall time and its last lines."""
    with tempfile.TemporaryDirectory(prefix="vdiff-bench-demo-") as tmp:
        env = {**os.environ, "VDIFF_RUNS_DIR": tmp, "OMP_NUM_THREADS": str(threads)}
        env.pop("VDIFF_SMOKE", None)
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "vdiff_edu", "demo"], env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - start
    if out.returncode != 0:
        raise RuntimeError(f"demo failed ({out.returncode}):\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return seconds, out.stdout


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (the target laptop has 2 cores)")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per network")
    parser.add_argument("--n", type=int, default=8, help="clips per sampling timing")
    parser.add_argument("--weights", default="cpu", help="weights to time sampling with (default: shipped cpu)")
    parser.add_argument("--demo", action="store_true", help="also time `python -m vdiff_edu demo` (about 10 min)")
    parser.add_argument("--write-docs", action="store_true", help="update the cpu-preset section of docs/benchmarks.md")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cpu = torch.device("cpu")
    cfg = ExperimentConfig.cpu()
    load_before = load()

    lines = [f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores visible, torch "
             f"{torch.__version__}, {args.threads} threads; load average before: {load_before}. Command: "
             f"`python benchmarks/bench_cpu_preset.py{' --demo' if args.demo else ''}`.", ""]

    fps = autoencoder_frames_per_s(cfg, max(3, args.steps // 2), cpu)
    cps, _ = denoiser_clips_per_s(cfg, args.steps, cpu)
    ae_s = cfg.autoencoder.train_steps * cfg.autoencoder.batch_size / fps
    dn_s = cfg.train.steps * cfg.train.batch_size / cps
    if cfg.image_train is not None:
        frames_ps, _ = denoiser_clips_per_s(cfg, max(3, args.steps // 2), cpu, frames=True)
        im_s = cfg.image_train.steps * cfg.image_train.batch_size / frames_ps
    unet = UNet3D(cfg.unet)
    gflop = unet.flops_per_clip(cfg.num_frames, cfg.latent_size, cfg.latent_size) / 1e9
    lines += ["| cpu preset, training | throughput | preset's steps | predicted time |", "|---|---:|---:|---:|",
              f"| autoencoder ({sum(p.numel() for p in FrameAutoencoder(cfg.autoencoder).parameters()) / 1e3:.0f} k "
              f"params) | {fps:,.0f} frames/s | {cfg.autoencoder.train_steps} × {cfg.autoencoder.batch_size} "
              f"frames | {ae_s:.0f} s |",
              *([f"| denoiser, stage A: single latent frames | {frames_ps:,.0f} frames/s | {cfg.image_train.steps} × "
                 f"{cfg.image_train.batch_size} frames | {im_s:.0f} s |"] if cfg.image_train is not None else []),
              f"| denoiser (UNet3D {unet.num_parameters() / 1e6:.2f} M params, {gflop:.2f} GFLOP/clip forward) | "
              f"{cps:.1f} clips/s | {cfg.train.steps} × {cfg.train.batch_size} clips | {dn_s:.0f} s |", ""]
    print("\n".join(lines[2:]), flush=True)

    try:
        per_clip = sampling_seconds_per_clip(args.weights, (10, 25, 50), args.n)
    except FileNotFoundError as e:
        print(f"sampling skipped: {e}")
    else:
        lines += [f"| sampling from `{args.weights}` ({cfg.sampler}, guidance {cfg.guidance_scale:g}, {args.n} clips "
                  f"per call) | 10 steps | 25 steps | 50 steps |", "|---|---:|---:|---:|",
                  "| seconds per clip | " + " | ".join(f"{per_clip[s]:.2f}" for s in (10, 25, 50)) + " |", ""]
        print("\n".join(lines[-4:]), flush=True)

    if args.demo:
        seconds, out = time_demo(args.threads)
        trained = re.search(r"trained in ([0-9.]+ (?:s|min))", out)
        lines += [f"`python -m vdiff_edu demo` (cpu preset, training included): **{seconds / 60:.1f} min** wall "
                  f"on {args.threads} threads" + (f"; of which training the cpu preset from nothing: "
                                                 f"{trained.group(1)}" if trained else "") + ".", ""]
        print(lines[-2], flush=True)

    if torch.cuda.is_available():
        gpu = torch.device("cuda")
        gcfg = ExperimentConfig.gpu()
        rate, peak = denoiser_clips_per_s(gcfg, args.steps, gpu)
        g_unet = UNet3D(gcfg.unet)
        flops = 3 * g_unet.flops_per_clip(gcfg.num_frames, gcfg.latent_size, gcfg.latent_size)  # forward + backward
        peak_flops = {"H100": 989e12, "H200": 989e12, "A100": 312e12}.get(
            next((k for k in ("H100", "H200", "A100") if k in torch.cuda.get_device_name()), ""), None)
        mfu = f"{rate * flops / peak_flops:.1%}" if peak_flops else "n/a (unknown peak)"
        lines += [f"gpu preset on {torch.cuda.get_device_name()}: {rate:.1f} clips/s, MFU {mfu} (bf16 dense peak), "
                  f"peak memory {peak:.1f} GiB.", ""]
        print(lines[-2])

    lines.append(f"Load average after: {load()}.")
    if args.write_docs:
        write_docs("\n".join(lines))
    return 0


def write_docs(body: str) -> None:
    section = f"{START}\n## End-to-end: the cpu preset\n\n{body}\n{END}"
    text = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n"
    if START in text and END in text:
        text = re.sub(re.escape(START) + r".*?" + re.escape(END), lambda m: section, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    DOCS.write_text(text)
    print(f"updated {DOCS}")


if __name__ == "__main__":
    sys.exit(main())
