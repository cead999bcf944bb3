"""Saving and loading models so that a file can never run code, and a crash never corrupts the last good file.

Two formats, both safe:

* **weights** (``.safetensors``): a model's tensors plus a JSON dict of metadata (its config, the data it saw,
  its metrics). This is what the toolkit ships and what ``from_pretrained``-style loaders read.
* **training checkpoints** (``.pt``): everything needed to resume training exactly (model, EMA, optimizer,
  LR scheduler, step, RNG states, data position, config). Saved with ``torch.save`` and loaded with
  ``torch.load(weights_only=True)``, which only rebuilds tensors and plain containers: a crafted pickle that
  tries to run code is refused.

Both are written atomically (``utils.atomic_path``): temporary file, fsync, rename.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from .utils import atomic_path

CHECKPOINT_FORMAT_VERSION = 1
_META_KEY = "vdiff_edu"  # safetensors metadata is str -> str; ours is one JSON string under this key


class CheckpointError(RuntimeError):
    """A checkpoint or weights file that cannot be read: truncated, corrupt, unsafe, or of another format."""


# ---------------------------------------------------------------- weights (safetensors) ----


def weights_fingerprint(model_or_state: nn.Module | dict[str, torch.Tensor]) -> str:
    """A short SHA-256 of a model's tensors (names, shapes, dtypes and bytes): two files with the same fingerprint
    hold the same weights. A U-Net's file records its autoencoder's, so a pipeline can refuse parts that were
    never trained together."""
    state = model_or_state.state_dict() if isinstance(model_or_state, nn.Module) else model_or_state
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().to("cpu").contiguous()
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()[:16]


def save_weights(path: str | os.PathLike, model_or_state: nn.Module | dict[str, torch.Tensor], metadata: dict | None = None) -> Path:
    """Save a model's tensors (or a state dict) and JSON-able ``metadata`` to ``path`` atomically; the metadata also
    gets the weights' ``fingerprint``. Weights that hold NaN or infinite values are refused."""
    state = model_or_state.state_dict() if isinstance(model_or_state, nn.Module) else model_or_state
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise CheckpointError(f"refusing to save {path}: {bad[0]} (and {len(bad) - 1} more) hold NaN or infinite "
                              f"values; the previous file there is untouched")
    # safetensors wants contiguous tensors that do not share memory
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}
    meta = {_META_KEY: json.dumps({**(metadata or {}), "fingerprint": weights_fingerprint(tensors)}, sort_keys=True)}
    path = Path(path)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return path


def read_weights_metadata(path: str | os.PathLike) -> dict:
    """The metadata dict stored by ``save_weights`` (without reading the tensors)."""
    path = _existing(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path} is not a readable .safetensors file ({e}); re-download or re-save it") from e
    return json.loads(meta.get(_META_KEY, "{}"))


def load_weights(path: str | os.PathLike, model: nn.Module | None = None, device: str | torch.device = "cpu", strict: bool = True):
    """Load tensors saved by ``save_weights``. With ``model``, load them into it and return ``(model, metadata)``;
    without, return ``(state_dict, metadata)``."""
    path = _existing(path)
    try:
        state = load_file(str(path), device=str(device))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path} is not a readable .safetensors file ({e}); it may be truncated: re-download or re-save it") from e
    meta = read_weights_metadata(path)
    if model is None:
        return state, meta
    missing, unexpected = model.load_state_dict(state, strict=strict)
    return model, meta


# ---------------------------------------------------------------- training checkpoints (.pt) ----


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Save a resumable training state atomically. ``state`` holds tensors, numbers, strings, lists and dicts only
    (so ``torch.load(weights_only=True)`` can read it back); the format version is added here."""
    path = Path(path)
    state = {"format_version": CHECKPOINT_FORMAT_VERSION, **state}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by ``save_checkpoint``, refusing anything that would need to run code."""
    path = _existing(path)
    with open(path, "rb") as f:
        head = f.read(2)
    if not zipfile.is_zipfile(path) and head[:1] != b"\x80":  # neither torch.save's zip nor a (legacy) pickle
        raise CheckpointError(f"{path} is not a training checkpoint (a .pt file written by vdiff_edu's Trainer), or it is "
                              f"truncated or corrupt; pass a checkpoint from runs/<name>/checkpoints/, or 'latest'")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(
            f"{path} holds objects that would need to run code to load, and was refused (weights_only=True). "
            f"Only load checkpoints written by vdiff_edu.checkpoint.save_checkpoint. Details: {e}"
        ) from e
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as e:
        raise CheckpointError(f"{path} could not be read; it is probably truncated or corrupt ({type(e).__name__}: {e}). "
                              f"Resume from an earlier checkpoint or start fresh.") from e
    if not isinstance(state, dict) or "format_version" not in state:
        raise CheckpointError(f"{path} is not a vdiff_edu training checkpoint (no format_version)")
    if state["format_version"] > CHECKPOINT_FORMAT_VERSION:
        raise CheckpointError(f"{path} has format version {state['format_version']}, newer than this toolkit's "
                              f"{CHECKPOINT_FORMAT_VERSION}; upgrade vdiff_edu to read it")
    return state


def _existing(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}; check the path (training writes runs/<name>/checkpoints/)")
    return path
