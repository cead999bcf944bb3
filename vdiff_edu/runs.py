"""Run folders: one folder per training run, which remembers its own recipe and never loses work.

    runs/my_run/
        run.json                 who this run is: its id, its recipe (the ExperimentConfig), the digits it trained
                                 on, and which stages are done
        weights/                 autoencoder.safetensors, unet.safetensors (the EMA weights, for sampling)
        latents.pt               every training clip encoded once, with what each condition keeps of it
        image_stage/checkpoints  stage A (single frames): step_XXXXXXX.pt
        checkpoints/             stage B (clips): step_XXXXXXX.pt
        loss.png, samples/       what ``train`` draws at the end

The rules, so that nothing is ever lost:

* A folder belongs to one run. A fresh run refuses a folder that holds another one; ``--overwrite`` moves the old
  run aside (``runs/my_run.old-20261201-093000``), it never deletes it.
* A resumed run reads its recipe from ``run.json``; it does not take a new one.
* Checkpoints carry their run's id and their step; ``latest`` and pruning go by what is inside them, within one
  run only.
* Temporary files left by a save that was killed are removed the next time the run starts.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import torch

from .utils import atomic_write_bytes

RUN_FILE = "run.json"
STAGES = ("autoencoder", "latents", "frames", "clips")


class RunFolderError(ValueError):
    """A run folder cannot be used the way it was asked for; the message says why and what to do."""


class RunFolder:
    """The folder of one training run, and its ``run.json`` record."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.record: dict[str, Any] = self._read()

    def _read(self) -> dict[str, Any]:
        file = self.path / RUN_FILE
        if not file.is_file():
            return {}
        try:
            record = json.loads(file.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise RunFolderError(f"{file} is not readable JSON ({e}); it records the run's recipe. Restore it, or "
                                 f"start a new run with another --name") from None
        if not isinstance(record, dict) or "run_id" not in record:
            raise RunFolderError(f"{file} is not a vdiff_edu run record (no run_id); start a new run with another --name")
        return record

    # ------------------------------------------------------------ what is there

    @property
    def run_id(self) -> str | None:
        return self.record.get("run_id")

    def holds_a_run(self) -> bool:
        """Anything a run writes: its record, weights, a latent cache or checkpoints."""
        if not self.path.is_dir():
            return False
        return bool(self.record) or any((self.path / p).exists() for p in
                                        ("weights", "latents.pt", "checkpoints", "image_stage"))

    def done(self, stage: str) -> bool:
        return bool(self.record.get("stages", {}).get(stage, {}).get("done"))

    def describe(self) -> str:
        """One line: which preset, when it started, how far it got."""
        if not self.record:
            return "files of a run without a run.json (made by an older version, or copied in)"
        stages = self.record.get("stages", {})
        parts = [f"{s} {'done' if v.get('done') else 'started'}" for s, v in stages.items()]
        return (f"preset {self.record.get('recipe', {}).get('name', '?')!r}, started {self.record.get('created', '?')}, "
                f"{', '.join(parts) or 'nothing trained yet'}")

    # ------------------------------------------------------------ changing it

    def create(self, recipe: dict, digits: str | None = None) -> str:
        """Start a new run here: a fresh id and the recipe it trains with."""
        self.path.mkdir(parents=True, exist_ok=True)
        self.record = {"run_id": uuid.uuid4().hex[:12], "created": time.strftime("%Y-%m-%d %H:%M:%S"),
                       "recipe": recipe, "digits": digits, "stages": {}}
        self._write()
        return self.record["run_id"]

    def set(self, **fields) -> None:
        self.record.update(fields)
        self._write()

    def mark(self, stage: str, done: bool, **info) -> None:
        """Record how far ``stage`` got (``done``, steps, seconds, ...)."""
        if stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}; got {stage!r}")
        self.record.setdefault("stages", {})[stage] = {"done": done, **info}
        self._write()

    def move_aside(self) -> Path:
        """Rename this folder to ``<name>.old-<date>-<time>`` (never deleting anything) and return the new path."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = self.path.with_name(f"{self.path.name}.old-{stamp}")
        n = 1
        while target.exists():
            n += 1
            target = self.path.with_name(f"{self.path.name}.old-{stamp}-{n}")
        self.path.rename(target)
        self.record = {}
        return target

    def clean_temporary_files(self) -> list[Path]:
        """Remove what a killed atomic save left behind (``.<name>.XXXX.tmp`` beside the file it was writing)."""
        removed = []
        for folder in (self.path, self.path / "weights", self.path / "checkpoints", self.path / "image_stage" /
                       "checkpoints"):
            if folder.is_dir():
                for tmp in folder.glob(".*.tmp"):
                    tmp.unlink(missing_ok=True)
                    removed.append(tmp)
        return removed

    def _write(self) -> None:
        atomic_write_bytes(self.path / RUN_FILE, (json.dumps(self.record, indent=2) + "\n").encode())


# ---------------------------------------------------------------- checkpoints, by what is inside them ----


def checkpoint_steps(folder: str | Path, run_id: str | None = None) -> list[tuple[int, Path]]:
    """``(step, path)`` of every readable ``*.pt`` checkpoint in ``folder`` that belongs to ``run_id`` (any run when
    None), sorted by the step stored inside it. Unreadable files are left alone (never deleted)."""
    out = []
    for path in Path(folder).glob("*.pt"):
        try:
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except Exception:  # a damaged or foreign file: not ours to judge here, and never ours to delete
            continue
        if not isinstance(state, dict) or "step" not in state:
            continue
        if run_id is not None and state.get("run_id") != run_id:
            continue
        out.append((int(state["step"]), path))
    return sorted(out)
