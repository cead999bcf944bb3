"""Copy a finished run's weights into the package as a preset's shipped weights, with honest, portable metadata.

    python scripts/ship_weights.py runs/cpu_frames cpu-frames \
        --command "VDIFF_MNIST_DIR=/path/to/mnist python -m vdiff_edu train --preset cpu-frames --minutes 0" \
        --machine "x86_64 Linux VM, 2 CPU cores (AMD EPYC), torch 2.13.0+cpu, 2 threads" --wall-seconds 1000

Writes ``vdiff_edu/weights/<preset>_autoencoder.safetensors`` and ``<preset>_unet.safetensors`` (and
``<preset>_text_encoder.safetensors`` for a text model). The tensors are copied bit for bit (so the fingerprints
the U-Net records still match); the metadata gains the command, the machine, the date and the wall time, and loses
every local path (the digit folder becomes ``$VDIFF_MNIST_DIR``). Refuses to replace shipped weights unless
``--overwrite``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
from pathlib import Path

from safetensors import safe_open
from safetensors.torch import load_file, save_file

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "vdiff_edu" / "weights"
FILES = ("autoencoder.safetensors", "unet.safetensors", "text_encoder.safetensors")
META_KEY = "vdiff_edu"


def portable(meta: dict, mnist_dir: str | None) -> dict:
    """``meta`` with the digit folder written as $VDIFF_MNIST_DIR: no path of this machine leaves it."""
    text = json.dumps(meta)
    if mnist_dir:
        text = text.replace(str(Path(mnist_dir).resolve()), "$VDIFF_MNIST_DIR").replace(mnist_dir, "$VDIFF_MNIST_DIR")
    return json.loads(text)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run", help="the run folder, e.g. runs/cpu_frames")
    p.add_argument("preset", help="the preset the weights are shipped for, e.g. cpu-frames")
    p.add_argument("--command", required=True, help="the command that trained them, with no local path")
    p.add_argument("--machine", required=True)
    p.add_argument("--wall-seconds", type=float, required=True, help="the training command's wall time")
    p.add_argument("--overwrite", action="store_true")
    args = p.parse_args()
    source = Path(args.run) / "weights"
    found = [name for name in FILES if (source / name).is_file()]
    if "unet.safetensors" not in found or "autoencoder.safetensors" not in found:
        print(f"error: {source} has no unet.safetensors and autoencoder.safetensors; is the run finished?",
              file=sys.stderr)
        return 2
    targets = {name: WEIGHTS / f"{args.preset}_{name}" for name in found}
    taken = [str(t) for t in targets.values() if t.exists()]
    if taken and not args.overwrite:
        print(f"error: {taken[0]} is already shipped; add --overwrite to replace it", file=sys.stderr)
        return 2
    extra = {"command": args.command, "machine": args.machine, "wall_seconds": round(args.wall_seconds, 1),
             "trained": datetime.date.today().isoformat()}
    for name, target in targets.items():
        with safe_open(str(source / name), framework="pt") as f:
            meta = json.loads((f.metadata() or {}).get(META_KEY, "{}"))
        meta = {**portable(meta, os.environ.get("VDIFF_MNIST_DIR")), **extra}
        tmp = target.with_suffix(".tmp")
        save_file(load_file(str(source / name)), str(tmp), metadata={META_KEY: json.dumps(meta, sort_keys=True)})
        os.replace(tmp, target)
        print(f"shipped {target.relative_to(ROOT)} ({target.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
