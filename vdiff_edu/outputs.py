"""What the commands write, in formats any outside tool can read: a folder of sampled clips, and a loss curve.

    write_samples(video, labels, "runs/my_run/samples")   samples.npy (uint8), labels.npy, samples.gif, samples.png
    write_loss_curve(histories, "runs/my_run/loss.png")   one curve per training stage, one after the other

Every file is written atomically (``utils.atomic_path``): a crash never leaves half a file behind.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from .utils import atomic_path, to_uint8
from .viz import filmstrip, save_gif


def write_samples(video: torch.Tensor, labels: torch.Tensor | None, out_dir: str | os.PathLike,
                  fps: float = 4, title: str | None = None, prompts: list[str] | None = None,
                  row_labels: list[str] | None = None) -> dict[str, Path]:
    """Write clips ``(n, 1, f, h, w)`` in [-1, 1] for any outside tool to judge:

        samples.npy   uint8 (n, f, h, w), 0 = black background, 255 = digit
        labels.npy    int64 (n, slots), the digits asked for (from prompts: the digits they name, -1 = none)
        prompts.txt   (a text model) one prompt per clip, in clip order; "" = the null prompt, an empty line
        samples.gif   the clips tiled in a grid, looping
        samples.png   a filmstrip: one row per clip, one column per frame, each row labelled with its digits, its
                      prompt, or ``row_labels`` when given (e.g. what else the clip was made from)
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    frames = np.asarray(to_uint8(video[:, 0]))  # (n, f, h, w) uint8
    paths = {"npy": out_dir / "samples.npy", "gif": out_dir / "samples.gif", "png": out_dir / "samples.png"}
    write_array(frames, paths["npy"])
    if labels is not None:
        paths["labels"] = write_array(np.asarray(labels.cpu(), dtype=np.int64), out_dir / "labels.npy")
    if prompts is not None:
        if len(prompts) != len(video):
            raise ValueError(f"got {len(prompts)} prompts for {len(video)} clips; give one prompt per clip")
        paths["prompts"] = out_dir / "prompts.txt"
        with atomic_path(paths["prompts"]) as tmp:
            Path(tmp).write_text("".join(p + "\n" for p in prompts), encoding="utf-8")
    save_gif(video, paths["gif"], fps=fps, scale=2, nrow=min(8, len(video)))
    rows = None if labels is None else [",".join(str(int(d)) for d in row) for row in labels.reshape(len(video), -1)]
    if prompts is not None:
        rows = [p or "(null prompt)" for p in prompts]
    if row_labels is not None:
        rows = list(row_labels)
    fig = filmstrip(video[:16], labels=None if rows is None else rows[:16], title=title)
    with atomic_path(paths["png"]) as tmp:
        fig.savefig(tmp, format="png", dpi=80, bbox_inches="tight")
    _close(fig)
    return paths


def write_array(array: np.ndarray, path: str | os.PathLike) -> Path:
    """``np.save`` to ``path``, atomically."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, array)
    return path


def write_loss_curve(history: dict, path: str | os.PathLike, title: str | None = None) -> Path:
    """Save a loss curve as a PNG: one Trainer ``history``, or ``{name: history}`` for several stages (drawn one
    after the other on a common step axis)."""
    stages = {"loss": history} if "loss" in history else history
    fig, ax = plt.subplots(figsize=(6, 3.4))
    offset = 0
    for name, h in stages.items():
        steps = np.asarray(h["step"]) + offset
        loss = np.asarray(h["loss"], dtype=float)
        smooth, ema = [], loss[0] if len(loss) else 0.0
        for v in loss:  # exponential moving average, as viz.plot_loss draws it
            ema = 0.9 * ema + 0.1 * v
            smooth.append(ema)
        (line,) = ax.plot(steps, loss, alpha=0.3)
        ax.plot(steps, smooth, color=line.get_color(), label=name)
        offset = int(steps[-1]) if len(steps) else offset
    ax.set(xlabel="step", ylabel="loss", yscale="log", title=title or "training loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=80, bbox_inches="tight")
    _close(fig)
    return path


def _close(fig) -> None:
    plt.close(fig)
