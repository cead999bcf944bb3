"""Small helpers every module uses: the device, seeding, parameter counts, atomic file writes, the pixel
conversion to and from uint8, a Gaussian blur, and argument checks that name what is wrong.

Pixel convention: inside the toolkit videos are float32 in [-1, 1] (-1 = black background, 1 = ink); files that
leave it hold uint8 0..255 (``to_uint8`` / ``from_uint8``, defined here once).
"""

from __future__ import annotations

import math
import os
import random
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def get_device(prefer: str | None = None) -> torch.device:
    """Pick the device once: ``prefer`` (or ``VDIFF_DEVICE``) if given, else CUDA when present, else CPU."""
    name = prefer or os.environ.get("VDIFF_DEVICE")
    if name:
        device = torch.device(name)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device {name!r} was asked for but CUDA is not available; use 'cpu' or unset VDIFF_DEVICE")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (all devices); return a CPU ``torch.Generator`` seeded the same."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters, e.g. ``print(f"{count_parameters(m) / 1e6:.2f} M parameters")``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def randn_like(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Standard normal noise shaped like ``x`` (same dtype and device), drawn from ``generator`` on the generator's
    own device when one is given, so a CPU generator gives the same noise on every device."""
    if generator is None:
        return torch.randn_like(x)
    return torch.randn(x.shape, generator=generator, device=generator.device, dtype=x.dtype).to(x.device)


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it over ``path`` in one step.

    A crash (or Ctrl-C) while writing leaves the previous file at ``path`` untouched and removes the
    temporary file: nothing is ever left half written.

        with atomic_path("ckpt.pt") as tmp:
            torch.save(state, tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        with open(tmp, "rb+") as f:  # make sure the bytes are on disk before the rename
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes owner-only files; give the usual permissions
        os.replace(tmp, path)  # atomic on POSIX and Windows
    finally:
        if tmp.exists():
            tmp.unlink()


def _umask() -> int:
    mask = os.umask(0)  # the only portable way to read the umask is to set it and set it back
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see ``atomic_path``)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


# ---------------------------------------------------------------- pixels: [-1, 1] floats ↔ uint8 ----


def to_uint8(video: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
    """Float pixels in [-1, 1] → uint8 0..255 (-1 → 0 black background, +1 → 255 ink), same shape, and the same
    kind as given: a tensor gives a tensor (on its device), anything else (an array, a list) a numpy array.

        byte = round((clip(x, −1, 1) + 1) · 127.5)      in float32, ties to even: 0.0 → 127.5 → 128

    Files that leave the toolkit hold ``(n, f, h, w)``: drop the channel axis first, ``to_uint8(video[:, 0])``."""
    if isinstance(video, torch.Tensor):
        return ((video.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    x = np.asarray(video, dtype=np.float32)
    return np.rint((np.clip(x, -1, 1) + 1) * 127.5).astype(np.uint8)


def from_uint8(frames: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
    """uint8 0..255 → float32 in [-1, 1] (x = byte / 127.5 − 1), same shape and kind; the inverse of ``to_uint8``."""
    if frames.dtype not in (torch.uint8, np.uint8):
        raise TypeError(f"from_uint8 expects uint8 frames (0..255), got dtype {frames.dtype}; "
                        "for floats already in [-1, 1] there is nothing to convert.")
    if isinstance(frames, torch.Tensor):
        return frames.float() / 127.5 - 1
    return frames.astype(np.float32) / np.float32(127.5) - np.float32(1)


# ---------------------------------------------------------------- Gaussian blur ----


def gaussian_kernel(sigma: float, radius: int, dtype: torch.dtype = torch.float32,
                    device: torch.device | str | None = None) -> torch.Tensor:
    """A normalised 1-D Gaussian of ``2·radius + 1`` taps, ``(2r + 1,)`` summing to 1:

        g[k] = exp(−k² / 2σ²) / Σ_j exp(−j² / 2σ²)      for k = −radius … radius

    Its outer product ``g[:, None] * g[None, :]`` is the 2-D Gaussian, so a 2-D blur is two 1-D passes (a
    separable filter: 2·(2r + 1) taps per pixel, not (2r + 1)²)."""
    if sigma <= 0:
        raise ValueError(f"sigma is the width of the Gaussian in px and must be > 0; got {sigma}")
    k = torch.arange(-radius, radius + 1, dtype=dtype, device=device)  # (2r + 1,) offsets from the centre
    g = torch.exp(-(k**2) / (2 * sigma**2))
    return g / g.sum()


def gaussian_blur(frames: torch.Tensor, sigma: float, radius: int | None = None) -> torch.Tensor:
    """Blur one-channel frames ``(n, 1, h, w)`` with a Gaussian of standard deviation ``sigma`` px: the columns,
    then the rows (``gaussian_kernel``), edge pixels repeated beyond the border. ``radius`` defaults to ⌈3σ⌉
    (the taps left out hold under 0.3 % of the weight). Same shape out."""
    if frames.dim() != 4 or frames.shape[1] != 1:
        raise ValueError(f"gaussian_blur expects one-channel frames (n, 1, h, w), got {tuple(frames.shape)}; "
                         f"fold clips into frames first: rearrange(video, 'b c f h w -> (b c f) 1 h w')")
    radius = int(math.ceil(3 * sigma)) if radius is None else radius
    g = gaussian_kernel(sigma, radius, frames.dtype, frames.device)  # (2r + 1,)
    x = F.conv2d(F.pad(frames, (0, 0, radius, radius), mode="replicate"), g.view(1, 1, -1, 1))  # (n, 1, h, w) columns
    return F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="replicate"), g.view(1, 1, 1, -1))  # (n, 1, h, w) rows


# ---------------------------------------------------------------- argument checks that teach ----


def check_int(name: str, value, lo: int, hi: int | None = None, hint: str = "") -> None:
    """Refuse ``value`` unless it is an integer in [lo, hi] (or >= lo), naming it, its value and the range."""
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= lo
    if not ok or (hi is not None and value > hi):
        rng = f"[{lo}, {hi}]" if hi is not None else f">= {lo}"
        raise ValueError(f"{name} must be an integer {rng}; got {value!r}. {hint}".rstrip())


def check_choice(name: str, value, choices: Sequence[str]) -> None:
    """Refuse ``value`` unless it is one of ``choices``, naming them."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}; got {value!r}.")
