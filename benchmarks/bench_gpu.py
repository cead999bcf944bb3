"""The gpu preset on a CUDA machine: training throughput, model FLOPs utilisation, peak memory, with and without
``torch.compile``. ``benchmarks/gpu_check.sh`` runs it first thing on a lent GPU.

    python benchmarks/bench_gpu.py --out OUT_DIR              # on a GPU: the gpu preset at its real geometry
    VDIFF_SMOKE=1 python benchmarks/bench_gpu.py --out /tmp/x # anywhere: the same code paths at smoke size (CPU)

What it measures, on the device at hand:

* the card's bf16 matrix rate, measured (an 8192³ bf16 product, mean of 10 after 3 warm-ups), beside its datasheet
  dense peak where the card is known: MFU is reported against both;
* the gpu preset's denoiser training step (forward, backward, AdamW, EMA; bf16 autocast on CUDA) at the preset's
  batch on random latents of its shape: clips/s after a warm-up, MFU = 3 × forward FLOPs per clip × clips/s /
  peak, and the peak memory allocated; once eager, once under ``torch.compile`` (its compile time too);
* the gpu preset's autoencoder training step: frames/s.

It writes ``OUT/bench_gpu.json`` and prints one Markdown table for ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import replace
from pathlib import Path

import torch

from vdiff_edu.autoencoder import FrameAutoencoder, autoencoder_loss
from vdiff_edu.conditioning import Conditioning
from vdiff_edu.optim import adamw_with_decay_groups
from vdiff_edu.presets import ExperimentConfig
from vdiff_edu.train import EMA, training_step
from vdiff_edu.unet import UNet3D
from vdiff_edu.utils import get_device

DATASHEET_BF16_DENSE = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12, "T4": 65e12}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device, warmup: int, repeats: int) -> float:
    """Seconds per call of ``fn`` after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync(device)
    return (time.perf_counter() - t0) / repeats


def matmul_rate(device: torch.device, n: int) -> float:
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    return 2 * n**3 / timed(lambda: a @ b, device, warmup=3, repeats=10)


def denoiser_step_rate(cfg: ExperimentConfig, device: torch.device, steps: int, compile_model: bool) -> dict:
    torch.manual_seed(0)
    unet = UNet3D(cfg.unet).to(device)
    model = torch.compile(unet) if compile_model else unet
    optimizer = adamw_with_decay_groups(unet, cfg.train.lr, fused=device.type == "cuda")
    ema = EMA(unet, cfg.train.ema_decay)
    schedule = cfg.noise_schedule().to(device)
    b = cfg.train.batch_size
    x0 = torch.randn(b, *cfg.latent_shape, device=device)  # (b, c_z, f, h/d, w/d)
    labels = torch.randint(0, 10, (b, cfg.unet.num_label_slots), device=device)
    cond = Conditioning.for_unet(cfg.unet).from_batch({"labels": labels}, device)

    def step():
        training_step(model, schedule, optimizer, ema, x0, cond, cfg.train.prediction, cfg.train.min_snr_gamma,
                      cfg.train.grad_clip, autocast=device.type == "cuda")

    t0 = time.perf_counter()
    step()  # the first step compiles, under torch.compile
    sync(device)
    first = time.perf_counter() - t0
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    seconds = timed(step, device, warmup=2, repeats=steps)
    flops = 3 * unet.flops_per_clip(*cfg.latent_shape[1:])  # forward + backward ≈ 3 forwards
    out = {"clips_per_s": b / seconds, "step_s": seconds, "first_step_s": first, "train_flops_per_clip": flops,
           "batch": b, "parameters": unet.num_parameters()}
    if device.type == "cuda":
        out["peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
    return out


def autoencoder_rate(cfg: ExperimentConfig, device: torch.device, steps: int) -> float:
    torch.manual_seed(0)
    ae = FrameAutoencoder(cfg.autoencoder).to(device)
    opt = torch.optim.AdamW(ae.parameters(), lr=cfg.autoencoder.lr)
    frames = torch.rand(cfg.autoencoder.batch_size, 1, cfg.image_size, cfg.image_size, device=device) * 2 - 1

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss = autoencoder_loss(ae, frames)[0]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return cfg.autoencoder.batch_size / timed(step, device, warmup=2, repeats=steps)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="folder for bench_gpu.json")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per measurement")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile measurement")
    args = parser.parse_args(argv)
    smoke = os.environ.get("VDIFF_SMOKE") == "1"
    device = get_device()
    cfg = ExperimentConfig.preset("smoke" if smoke else "gpu")
    if smoke:  # the same code paths, tiny: checks the script itself on any machine
        cfg = replace(cfg, train=replace(cfg.train, batch_size=2))
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    result = {"device": name, "torch": torch.__version__, "preset": cfg.name,
              "matmul_tflops_measured": matmul_rate(device, 512 if smoke else 8192) / 1e12}
    datasheet = next((v for k, v in DATASHEET_BF16_DENSE.items() if k in name), None)
    result["bf16_dense_tflops_datasheet"] = datasheet / 1e12 if datasheet else None
    runs = {"eager": denoiser_step_rate(cfg, device, args.steps, compile_model=False)}
    if not args.no_compile:
        runs["compiled"] = denoiser_step_rate(cfg, device, args.steps, compile_model=True)
    for run in runs.values():
        achieved = run["clips_per_s"] * run["train_flops_per_clip"]
        run["mfu_vs_measured_matmul"] = achieved / (result["matmul_tflops_measured"] * 1e12)
        run["mfu_vs_datasheet"] = achieved / datasheet if datasheet else None
    result["denoiser"] = runs
    result["autoencoder_frames_per_s"] = autoencoder_rate(cfg, device, args.steps)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_gpu.json").write_text(json.dumps(result, indent=2))
    print(f"{cfg.name} preset on {name} (torch {torch.__version__}); matmul {result['matmul_tflops_measured']:.0f} "
          f"TFLOP/s measured" + (f", {datasheet / 1e12:.0f} datasheet" if datasheet else ""))
    print("| denoiser step | clips/s | MFU (measured matmul) | MFU (datasheet) | peak memory | first step |")
    print("|---|---:|---:|---:|---:|---:|")
    for kind, run in runs.items():
        mfu_d = f"{run['mfu_vs_datasheet']:.1%}" if run["mfu_vs_datasheet"] is not None else "n/a"
        mem = f"{run['peak_memory_gib']:.1f} GiB" if "peak_memory_gib" in run else "n/a"
        print(f"| {kind} | {run['clips_per_s']:.1f} | {run['mfu_vs_measured_matmul']:.1%} | {mfu_d} | {mem} | "
              f"{run['first_step_s']:.1f} s |")
    print(f"autoencoder: {result['autoencoder_frames_per_s']:.0f} frames/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
