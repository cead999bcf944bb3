"""The smoke switch, and where things live.

Every notebook and command reads one environment variable, ``VDIFF_SMOKE``. When it is ``"1"`` everything
shrinks (fewer steps, smaller models, fewer clips) so the whole course executes in CI in minutes on 2 CPU
cores. The idea comes from the Pyro and BoTorch tutorials.

Each module keeps its own commented config dataclass with ``smoke()``, ``cpu()`` and ``gpu()`` presets next to
the code it configures (``UNetConfig`` in ``unet.py``, ``AutoencoderConfig`` in ``autoencoder.py``, ...);
this file holds only what they all share.
"""

from __future__ import annotations

import os
from pathlib import Path

PRESETS = ("smoke", "cpu", "gpu", "smoke-text", "cpu-text", "gpu-text",  # the *-text ones: prompts, not labels
           "smoke-frames", "cpu-frames", "gpu-frames",  # the *-frames ones: labels, and frames may be given
           "smoke-v2v", "cpu-v2v", "gpu-v2v")  # the *-v2v ones: an input video's structure plus a prompt

# The repository root (for a checkout) and the folder of weights shipped inside the package.
PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
WEIGHTS_DIR = PACKAGE_DIR / "weights"


def is_smoke() -> bool:
    """True when ``VDIFF_SMOKE=1``: run everything tiny, for CI and a quick look."""
    return os.environ.get("VDIFF_SMOKE", "0") == "1"


def default_preset() -> str:
    """``smoke`` under VDIFF_SMOKE=1, else ``VDIFF_PRESET`` (``cpu`` when unset)."""
    if is_smoke():
        return "smoke"
    preset = os.environ.get("VDIFF_PRESET", "cpu")
    check_preset(preset)
    return preset


def check_preset(preset: str) -> str:
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {PRESETS}; got {preset!r}. Pass --preset cpu for a laptop.")
    return preset


def runs_dir() -> Path:
    """Where commands write their outputs: ``VDIFF_RUNS_DIR`` or ``./runs`` (git-ignored)."""
    return Path(os.environ.get("VDIFF_RUNS_DIR", "runs"))


def max_steps() -> int | None:
    """The step cap ``VDIFF_MAX_STEPS`` (a positive integer), or None when it is unset or empty.

    It exists for one check, ``make check-full``: every notebook's full-mode branch (VDIFF_SMOKE unset: full-mode
    geometry, models and code paths) runs top to bottom on a CPU, with each long loop cut to a handful of
    iterations. Leave it unset for real work; the numbers a notebook's text quotes are those of real full mode.
    """
    value = os.environ.get("VDIFF_MAX_STEPS", "").strip()
    if not value:
        return None
    try:
        cap = int(value)
    except ValueError:
        cap = 0
    if cap < 1:
        raise ValueError(f"VDIFF_MAX_STEPS must be a positive integer; got {value!r}. "
                         f"Set it to a step cap such as VDIFF_MAX_STEPS=2, or unset it for no cap.")
    return cap


def capped(n: int, floor: int = 1) -> int:
    """``n``, cut to ``VDIFF_MAX_STEPS`` when that is set, but never below ``floor`` (nor above ``n``).

    Wrap the full-mode counts that only make a run long (optimizer steps, sampler steps, timing repeats, clips
    drawn for statistics): ``train_steps = 16 if SMOKE else capped(4_000)``. ``floor`` keeps a count that must
    stay large enough to mean something, or to be computable at all: ``capped(256, floor=16)`` for the clips of a
    covariance. Geometry and model sizes are never capped: running them is what the check is for.
    """
    cap = max_steps()
    return n if cap is None else min(n, max(cap, floor))
