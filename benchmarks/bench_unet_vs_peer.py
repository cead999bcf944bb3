"""Training-step speed and memory of our UNet3D against ``Unet3D`` of video-diffusion-pytorch, at equal size.

Both networks get the same clips, batch and timesteps; one "step" is a forward pass, an MSE loss against a random
target and the backward pass (no optimizer). The two models are timed in the same process, alternating round by
round (which one goes first alternates too), so a busy machine slows both alike. Reported: clips per second (the
median step), the ratio ours / peer, parameters, forward GFLOPs per clip (``torch.utils.flop_counter``, the same
count for both), and peak extra memory of one step (activations, gradients, temporaries: the allocation trace of
``torch.profiler`` on CPU, ``torch.cuda.max_memory_allocated`` on CUDA).

Configurations (issue 3, section 6). The peer is ``Unet3D(dim, channels)`` with its defaults (``dim_mults=(1, 2,
4, 8)``, 8 heads of 32), its ``dim`` chosen so its parameter count is closest to ours (``--peer-dim`` overrides it).
    pixel       clips (1, 10, 64, 64), Moving MNIST frames; ours has the peer's levels and widths (1, 2, 4, 8)
    latent      clips (4, 10, 16, 16), latents of 64×64 frames; ours has the peer's levels and widths
    latent-gpu  the same clips; ours is the ``gpu`` preset, which puts far more compute at 16×16 (see the FLOPs)

The peer lives only in its own environment, never in the project's:

    python3 -m venv benchmarks/.venv-peer
    benchmarks/.venv-peer/bin/pip install torch==2.13.0 einops          # the CPU build where there is no GPU
    benchmarks/.venv-peer/bin/pip install --no-deps video-diffusion-pytorch einops-exts rotary-embedding-torch \
        tqdm pillow numpy
    benchmarks/.venv-peer/bin/pip install --no-deps -e .                 # optional: this script also finds the repo
    benchmarks/.venv-peer/bin/python benchmarks/bench_unet_vs_peer.py --threads 1

The peer's module imports torchvision for its dataset and GIF helpers only (not for ``Unet3D``). When torchvision
cannot be imported (the index here has only CUDA builds of it, which fail next to a CPU torch), a stand-in module
is put in its place; ``Unet3D`` never touches it.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import types
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]

# ----------------------------------------------------------------------------- importing both models


def import_ours():
    try:
        import vdiff_edu  # noqa: F401
    except ImportError:
        sys.path.insert(0, str(REPO))
    from vdiff_edu.unet import UNet3D, UNetConfig

    return UNet3D, UNetConfig


def _stand_in_torchvision() -> None:
    """Put an inert ``torchvision`` in ``sys.modules``: the peer imports ``transforms`` and ``utils`` at load time."""

    class Unused:
        def __init__(self, *args, **kwargs):
            pass

    def any_name(name):
        if name.startswith("__"):
            raise AttributeError(name)
        return Unused

    tv = types.ModuleType("torchvision")
    for sub in ("transforms", "utils"):
        mod = types.ModuleType(f"torchvision.{sub}")
        mod.__getattr__ = any_name
        setattr(tv, sub, mod)
        sys.modules[f"torchvision.{sub}"] = mod
    sys.modules["torchvision"] = tv


def import_peer():
    try:
        import torchvision  # noqa: F401
    except Exception:  # missing, or a CUDA build next to a CPU torch
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
        _stand_in_torchvision()
    try:
        from video_diffusion_pytorch.video_diffusion_pytorch import Unet3D
    except ImportError as err:
        raise SystemExit(
            f"cannot import video_diffusion_pytorch ({err}). Run this script with the benchmark's own environment, "
            "benchmarks/.venv-peer/bin/python (see the docstring for how to make it)."
        ) from None
    return Unet3D


# ----------------------------------------------------------------------------- configurations


CONFIGS = {
    # name: (clip shape (c, f, h, w), our config overrides)
    "pixel": ((1, 10, 64, 64), dict(in_channels=1, out_channels=1, base_channels=16, channel_mults=(1, 2, 4, 8),
                                    num_res_blocks=1, spatial_attn_levels=(2, 3), temporal_attn_levels=(2, 3),
                                    num_heads=8, head_dim=32, norm_groups=8)),
    "latent": ((4, 10, 16, 16), dict(in_channels=4, out_channels=4, base_channels=48, channel_mults=(1, 2, 4, 8),
                                     num_res_blocks=1, spatial_attn_levels=(2, 3), temporal_attn_levels=(2, 3),
                                     num_heads=8, head_dim=32, norm_groups=8)),
    # the gpu preset without labels and dropout (the peer has neither)
    "latent-gpu": ((4, 10, 16, 16), dict(preset="gpu")),
}


def build_ours(UNet3D, UNetConfig, spec: dict):
    spec = dict(spec)
    preset = spec.pop("preset", None)
    common = dict(num_label_slots=0, dropout=0.0, time_mixing="factorized")
    cfg = getattr(UNetConfig, preset)(**common, **spec) if preset else UNetConfig(**common, **spec)
    return UNet3D(cfg)


def count(model) -> int:
    return sum(p.numel() for p in model.parameters())


def build_peer(Unet3D, channels: int, target_params: int, dim: int | None):
    """The peer at ``dim``, or at the even ``dim`` whose parameter count is closest to ``target_params``."""
    if dim is not None:
        return Unet3D(dim=dim, channels=channels), dim
    params = {}

    def n(d):
        if d not in params:
            params[d] = count(Unet3D(dim=d, channels=channels))
        return params[d]

    lo, hi = 4, 256  # even dims; the count grows with dim: bisect for the first dim at or above the target
    while hi - lo > 2:
        mid = (lo + hi) // 4 * 2
        lo, hi = (mid, hi) if n(mid) < target_params else (lo, mid)
    best = min((lo, hi), key=lambda d: abs(n(d) - target_params))
    return Unet3D(dim=best, channels=channels), best


def forward_flops(model, x, t) -> int:
    """Forward FLOPs for one clip, counted by ``torch.utils.flop_counter`` (convs, matmuls, attention)."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x[:1], t[:1])
    return counter.get_total_flops()


# ----------------------------------------------------------------------------- measuring


def train_step(model, x, t, target):
    model.zero_grad(set_to_none=True)
    loss = F.mse_loss(model(x, t), target)
    loss.backward()


def timed_steps(model, x, t, target, steps: int) -> list[float]:
    times = []
    for _ in range(steps):
        if x.device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        train_step(model, x, t, target)
        if x.device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return times


def peak_step_memory(model, x, t, target) -> int:
    """Peak bytes allocated during one step beyond what was allocated before it."""
    model.zero_grad(set_to_none=True)
    if x.device.type == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        train_step(model, x, t, target)
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        train_step(model, x, t, target)
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    current = peak = 0
    for e in sorted(events, key=lambda e: e.start_ns()):
        current += e.nbytes()
        peak = max(peak, current)
    return peak


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} logical cores"


def run_config(name, Ours, OursConfig, Peer, args, device):
    (c, f, h, w), spec = CONFIGS[name]
    torch.manual_seed(0)
    ours = build_ours(Ours, OursConfig, spec).to(device)
    peer, peer_dim = build_peer(Peer, c, count(ours), args.peer_dim)
    peer = peer.to(device)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, c, f, h, w, generator=gen).to(device)
    target = torch.randn(x.shape, generator=gen).to(device)
    t = torch.randint(0, 1000, (args.batch,), generator=gen).to(device)
    models = {"ours": ours, "peer": peer}
    for model in models.values():  # warm up: allocator, kernels, lazy init
        timed_steps(model, x, t, target, 1)
    times = {k: [] for k in models}
    for r in range(args.rounds):
        order = ("ours", "peer") if r % 2 == 0 else ("peer", "ours")
        for k in order:
            times[k] += timed_steps(models[k], x, t, target, args.steps)
    memory = {k: peak_step_memory(m, x, t, target) for k, m in models.items()}
    step = {k: statistics.median(v) for k, v in times.items()}
    return dict(
        config=name, clip=(c, f, h, w), batch=args.batch, peer_dim=peer_dim,
        params={k: count(m) for k, m in models.items()},
        clips_per_s={k: args.batch / s for k, s in step.items()},
        step_s=step, spread={k: (min(v), max(v)) for k, v in times.items()},
        memory=memory, gflops={k: forward_flops(m, x, t) / 1e9 for k, m in models.items()},
        steps=len(times["ours"]),
    )


def _short(path: str) -> str:
    try:
        return str(Path(path).relative_to(REPO))
    except ValueError:
        return path


def report(results, args, device) -> str:
    lines = [
        f"command: {' '.join([_short(sys.executable)] + sys.argv)}",
        f"machine: {machine()}; device {device}; torch {torch.__version__}; threads {torch.get_num_threads()}",
        "",
        "| config | clip (c, f, h, w) × batch | params ours / peer | fwd GFLOPs/clip ours / peer | clips/s ours | "
        "clips/s peer | ratio | peak step memory ours / peer |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        ratio = r["clips_per_s"]["ours"] / r["clips_per_s"]["peer"]
        mem = " / ".join(f"{r['memory'][k] / 2**20:,.0f} MiB" for k in ("ours", "peer"))
        lines.append(
            f"| {r['config']} | {r['clip']} × {r['batch']} | {r['params']['ours'] / 1e6:.2f} M / "
            f"{r['params']['peer'] / 1e6:.2f} M (dim={r['peer_dim']}) | {r['gflops']['ours']:.1f} / "
            f"{r['gflops']['peer']:.1f} | {r['clips_per_s']['ours']:.3f} | {r['clips_per_s']['peer']:.3f} | "
            f"**{ratio:.2f}×** | {mem} |"
        )
    lines.append("")
    for r in results:
        s = r["spread"]
        lines.append(f"{r['config']}: {r['steps']} timed steps each; step time min–max ours "
                     f"{s['ours'][0]:.2f}–{s['ours'][1]:.2f} s, peer {s['peer'][0]:.2f}–{s['peer'][1]:.2f} s")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", choices=[*CONFIGS, "all"], default="all")
    parser.add_argument("--batch", type=int, default=2, help="clips per step (default 2)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    parser.add_argument("--steps", type=int, default=2, help="timed steps per model per round (default 2)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--peer-dim", type=int, default=None, help="the peer's dim (default: match our parameters)")
    args = parser.parse_args(argv)
    if args.peer_dim is not None and args.config == "all":
        parser.error("--peer-dim needs a single --config (pixel or latent)")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    Ours, OursConfig = import_ours()
    Peer = import_peer()
    names = list(CONFIGS) if args.config == "all" else [args.config]
    results = []
    for name in names:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        results.append(run_config(name, Ours, OursConfig, Peer, args, device))
    print(report(results, args, device))
    return 0


if __name__ == "__main__":
    sys.exit(main())
