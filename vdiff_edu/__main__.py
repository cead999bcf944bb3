"""The command line: ``python -m vdiff_edu {info,train,sample,evaluate,demo}``.

    python -m vdiff_edu info                                   versions, device, presets, shipped weights
    python -m vdiff_edu train --preset cpu --name my_run       autoencoder, then denoiser → runs/my_run/
    python -m vdiff_edu sample --weights cpu --labels 3,7      GIF + uint8 .npy + labels.npy
    python -m vdiff_edu evaluate ...                           the evaluation suite (vdiff_edu.eval)
    python -m vdiff_edu demo [--skip-train]                    what `make demo` runs

Every command writes under ``runs/`` (or ``VDIFF_RUNS_DIR``) and prints where. ``VDIFF_SMOKE=1`` shrinks
everything to seconds; ``VDIFF_MNIST_DIR`` names a folder of MNIST idx files. A mistake gets one line,
``error: …``, and exit status 2 (``VDIFF_DEBUG=1`` also prints the traceback); nothing a run wrote is ever
deleted or overwritten without ``--overwrite`` (which moves the old run aside).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
import traceback
from pathlib import Path

from .config import PRESETS, WEIGHTS_DIR, default_preset, is_smoke, runs_dir

# Each command imports what it needs inside its own function, on purpose: a command loads only the modules it
# uses (`info` never builds a U-Net, `sample` never loads the training recipe).

MAX_SEED = 2**63 - 1


class UsageError(Exception):
    """A mistake on the command line: printed as one teaching sentence, exit status 2."""


class Parser(argparse.ArgumentParser):
    """argparse, but a mistake is one line (``error: …``) instead of a usage block."""

    def error(self, message: str):
        raise UsageError(f"{message}; see `{self.prog} --help`")


# ---------------------------------------------------------------- checking what the user gave ----


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


def positive_int(flag: str, value: int | None, at_most: int | None = None) -> int | None:
    if value is None:
        return None
    if value < 1 or (at_most is not None and value > at_most):
        bound = f"between 1 and {at_most:,}" if at_most is not None else "at least 1"
        raise UsageError(f"{flag} must be {bound}; got {value}")
    return value


def finite_number(flag: str, value: float | None, low: float = 0.0, low_inclusive: bool = True,
                  hint: str = "") -> float | None:
    if value is None:
        return None
    if not math.isfinite(value) or value < low or (value == low and not low_inclusive):
        relation = ">=" if low_inclusive else ">"
        raise UsageError(f"{flag} must be a finite number {relation} {low:g}{hint}; got {value}")
    return value


def parse_plan(text: str, cfg) -> dict[str, int]:
    """``--plan 323,626,1179`` → ``{"autoencoder": 323, "frames": 626, "clips": 1179}`` for ``cfg``'s stages."""
    from .recipe import STAGE_NAMES, recipe_steps

    stages = [k for k in STAGE_NAMES if k in recipe_steps(cfg)]
    example = ",".join(str(recipe_steps(cfg)[k]) for k in stages)
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != len(stages) or not all(p.isdigit() and int(p) >= 1 for p in parts):
        raise UsageError(f"--plan takes {len(stages)} whole numbers >= 1, the step counts of the {cfg.name} recipe's "
                         f"{', '.join(stages)} stages (e.g. --plan {example}); got {text!r}")
    return dict(zip(stages, map(int, parts)))


def check_seed(value: int) -> int:
    if not 0 <= value <= MAX_SEED:
        raise UsageError(f"--seed must be between 0 and 2**63 - 1 = {MAX_SEED}; got {value}")
    return value


def check_device(value: str | None, flag: str = "--device") -> str | None:
    """``cpu``, ``cuda`` or ``cuda:N`` that this machine has; one line otherwise."""
    if value is None:
        return None
    import torch

    try:
        device = torch.device(value)
    except (RuntimeError, ValueError):
        raise UsageError(f"{flag} {value!r} is not a device; use cpu, cuda or cuda:N") from None
    if device.type not in ("cpu", "cuda"):
        raise UsageError(f"{flag} {value!r}: vdiff_edu runs on cpu or cuda; got device type {device.type!r}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"{flag} {value!r}: this machine has no CUDA GPU that torch {torch.__version__} can use; "
                             f"use --device cpu (or leave it out)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UsageError(f"{flag} {value!r}: there are only {torch.cuda.device_count()} CUDA device(s)")
    return value


def check_environment(command: str) -> None:
    """The environment variables the toolkit reads, checked once, each mistake in one line."""
    smoke = os.environ.get("VDIFF_SMOKE")
    if smoke not in (None, "", "0", "1"):
        raise UsageError(f"VDIFF_SMOKE must be 0 or 1 (1 = tiny models for a quick look); got {smoke!r}")
    preset = os.environ.get("VDIFF_PRESET")
    if preset not in (None, "") and preset not in PRESETS:
        raise UsageError(f"VDIFF_PRESET must be one of {', '.join(PRESETS)}; got {preset!r}. Unset it for cpu")
    check_device(os.environ.get("VDIFF_DEVICE") or None, flag="VDIFF_DEVICE")
    if command in ("train", "demo", "evaluate"):
        check_mnist_dir(os.environ.get("VDIFF_MNIST_DIR") or None, "VDIFF_MNIST_DIR")


def check_mnist_dir(folder: str | None, named: str) -> None:
    """A folder the user names must hold MNIST idx files (we never touch what is in it)."""
    if folder is None:
        return
    from .digits import find_mnist_files

    path = Path(folder).expanduser()
    if not path.is_dir():
        raise UsageError(f"{named}={folder!r} is not a folder; point it at the folder holding the MNIST idx files "
                         f"(t10k-images-idx3-ubyte.gz, ...), or unset it")
    if not find_mnist_files(path):
        raise UsageError(f"{named}={folder!r} holds no MNIST idx files (looked for t10k-images-idx3-ubyte[.gz] and "
                         f"train-images-idx3-ubyte[.gz] with their labels, also in MNIST/raw); point it at the "
                         f"folder that holds them, or unset it")


def _seconds(s: float) -> str:
    return f"{s:.1f} s" if s < 120 else f"{s / 60:.1f} min"


def _run_dir(name: str) -> Path:
    if not name or "/" in name or "\\" in name or name in (".", "..") or name.startswith("."):
        raise UsageError(f"--name is a folder name under {runs_dir()}/ (letters, digits, - and _), got {name!r}")
    return runs_dir() / name


def _free_folder(path: Path) -> Path:
    """``path`` if nothing is there, else the first of ``path-2``, ``path-3``, ... that is free."""
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}-{n}")
    return candidate


# ---------------------------------------------------------------- info ----


def cmd_info(args) -> int:
    import numpy as np
    import torch

    from . import __version__
    from .checkpoint import read_weights_metadata
    from .digits import find_mnist_files
    from .presets import ExperimentConfig
    from .utils import get_device

    print(f"vdiff_edu {__version__}  python {platform.python_version()}  torch {torch.__version__}  "
          f"numpy {np.__version__}")
    device = get_device()
    extra = f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""
    print(f"device: {device}{extra}; CPU threads: {torch.get_num_threads()}; smoke mode: {is_smoke()}; "
          f"runs go to {runs_dir()}/")
    mnist = os.environ.get("VDIFF_MNIST_DIR")
    if mnist:
        ok = Path(mnist).expanduser().is_dir() and bool(find_mnist_files(Path(mnist).expanduser()))
        mnist += "" if ok else "  (holds no MNIST idx files: train and demo will refuse it)"
    print(f"MNIST folder (VDIFF_MNIST_DIR): {mnist or 'not set (cache or download)'}")
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


def sample_and_write(pipe, out_dir: Path, title: str) -> tuple[dict, float]:
    """Sample 20 clips (10 for two digits per clip) with digits 0, 1, 2, ... in turn and write them to ``out_dir``;
    returns the paths written and the seconds it took. ``train`` and ``demo`` both end with this."""
    from .outputs import write_samples

    t0 = time.perf_counter()
    n = 20 if pipe.config.num_digits <= 1 else 10
    if pipe.reads_structure:  # video to video: test clips' structure, "a thin 0", "a regular 1", ...
        from .outputs import write_array
        from .structure import structure_image

        structure_from = structure_clips(pipe.config, n)  # (n, 1, f, h, w)
        prompts = default_edit_prompts(n, pipe.config.num_digits)
        video = pipe.edit(structure_from, prompts=prompts, seed=0)  # at the model's default level of detail
        paths = write_samples(video, prompt_labels(prompts, pipe.config.num_digits), out_dir, title=title,
                              prompts=prompts)
        structure = pipe.config.structure
        maps = structure_image(structure_from, structure.default_detail, structure.pooling)  # (n, f, h, w) uint8
        paths["structure"] = write_array(maps.numpy(), out_dir / "structure.npy")
        return paths, time.perf_counter() - t0
    if pipe.reads_prompts:  # a text model: "the digit 0 moves left and right", "the digit 1 moves up and down", ...
        prompts = default_prompts(n, pipe.config.num_digits)
        video = pipe(prompts=prompts, seed=0)
        return (write_samples(video, prompt_labels(prompts, pipe.config.num_digits), out_dir, title=title,
                              prompts=prompts), time.perf_counter() - t0)
    video = pipe(num_videos=n, seed=0)
    labels = pipe.encode_condition(None, n)["labels"].cpu()
    return write_samples(video, labels, out_dir, title=title), time.perf_counter() - t0


def default_prompts(n: int, num_digits: int = 1) -> list[str]:
    """``n`` prompts in today's caption wording: digits 0, 1, 2, ... in turn, each motion in turn."""
    from .captions import MOTIONS, TRAIN_TEMPLATES, Meaning, caption

    return [caption([Meaning((num_digits * i + k) % 10, MOTIONS[(num_digits * i + k) % len(MOTIONS)])
                     for k in range(num_digits)], TRAIN_TEMPLATES[0]) for i in range(n)]


def prompt_labels(prompts: list[str], num_digits: int = 1):
    """The digits each prompt names (``captions.parse_all``), ``(n, num_digits)`` int64; -1 where a prompt names no
    digit (the null prompt "", or "a bold one"'s missing second digit): what labels.npy holds for a text model."""
    import torch

    from .captions import parse_all

    labels = torch.full((len(prompts), num_digits), -1, dtype=torch.int64)
    for i, prompt in enumerate(prompts):
        try:
            digits = [m.digit for m in parse_all(prompt) if m.digit is not None]
        except ValueError as e:
            raise UsageError(f"prompt {i + 1} ({prompt!r}) cannot be read back into digits: {e}") from None
        if len(digits) > num_digits:
            raise UsageError(f"prompt {i + 1} ({prompt!r}) names {len(digits)} digits, but this model draws "
                             f"{num_digits} per clip; name at most {num_digits}")
        labels[i, :len(digits)] = torch.tensor(digits, dtype=torch.int64)
    return labels


def read_prompts(prompt: str | None, prompts_file: str | None) -> list[str] | None:
    """``--prompt TEXT`` or ``--prompts FILE`` (one prompt a line, blank lines skipped) → the prompts, or None."""
    if prompt is not None and prompts_file is not None:
        raise UsageError("give --prompt or --prompts FILE, not both")
    if prompt is not None:
        return [prompt.strip()]
    if prompts_file is None:
        return None
    path = Path(prompts_file)
    if not path.is_file():
        raise UsageError(f"--prompts {prompts_file}: no such file; give a text file with one prompt a line")
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        raise UsageError(f"--prompts {prompts_file} holds no prompt (only blank lines); write one prompt a line, "
                         f"e.g. 'a bold 7 moves left and right'")
    return lines


def cmd_train(args) -> int:
    try:
        return _train(args)
    finally:  # under torchrun every process leaves the group together (the first one last writes the samples)
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            from .train import cleanup_distributed

            cleanup_distributed()


def _train(args) -> int:
    import torch

    from .presets import ExperimentConfig
    from .recipe import budget_note, train_pipeline

    positive_int("--steps", args.steps, at_most=10_000_000)
    finite_number("--lr", args.lr, low=0.0, low_inclusive=False, hint=" (e.g. --lr 5e-4)")
    finite_number("--minutes", args.minutes, hint=" (0 = the recipe's fixed step counts)")
    if args.minutes is not None and args.steps is not None:
        raise UsageError("--steps fixes the clip stage's length and --minutes sizes every stage to a time budget; "
                         "give one of them")
    check_device(args.device)
    check_mnist_dir(args.mnist_dir, "--mnist-dir")
    continuing = args.resume is not None or args.stage == "denoiser"
    if args.plan is not None and (args.minutes is not None or args.steps is not None or continuing):
        given = "--minutes" if args.minutes is not None else "--steps" if args.steps is not None else (
            "--resume" if args.resume is not None else "--stage denoiser")
        raise UsageError(f"--plan fixes every stage's step count for a fresh run; it cannot go with {given} "
                         f"(a resumed run keeps its own plan)")
    if args.batch_divisor is not None and continuing:
        raise UsageError(f"--batch-divisor sets the batches of a fresh run; a resumed run keeps its own (leave out "
                         f"--batch-divisor {args.batch_divisor})")
    if args.overwrite and continuing:
        raise UsageError("--overwrite starts a fresh run (moving the old one aside); it cannot go with --resume or "
                         "--stage denoiser, which continue the run")
    preset = args.preset or (None if continuing else default_preset())
    cfg = ExperimentConfig.preset(preset) if preset is not None else None  # a resumed run reads its own recipe
    run_dir = _run_dir(args.name or preset or default_preset())
    plan = parse_plan(args.plan, cfg) if args.plan is not None else None
    if args.resume is not None and args.resume != "latest" and not Path(args.resume).is_file():
        raise UsageError(f"--resume {args.resume}: no such checkpoint. Pass 'latest' (the newest in "
                         f"{run_dir}/checkpoints) or the path of a .pt file there")
    rank, world_size = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    if rank == 0:  # under torchrun, the first process speaks (and writes) for all
        if cfg is not None:
            print(cfg.summary())
            if args.minutes is not None:
                print(f"  --minutes {args.minutes:g}: " + ("the recipe's step counts as written" if args.minutes == 0
                                                         else f"a {args.minutes:g}-minute budget for this run"))
            if plan is not None:
                print("  --plan: exactly " + ", ".join(f"{k} {n:,}" for k, n in plan.items()) + " steps (no time budget)")
            if args.batch_divisor is not None:
                from .recipe import check_batch_divisor, recipe_batches, with_batches_divided

                check_batch_divisor(args.batch_divisor, cfg, world_size)
                divided = recipe_batches(with_batches_divided(cfg, args.batch_divisor))
                print(f"  --batch-divisor {args.batch_divisor}: batches of " + ", ".join(f"{k} {b}" for k, b in
                                                                                     divided.items()))
        print(f"run folder: {run_dir}/  (torch threads: {torch.get_num_threads()}"
              + (f"; {world_size} processes" if world_size > 1 else "") + ")", flush=True)
    start = time.perf_counter()
    try:
        result = train_pipeline(cfg, run_dir, stage=args.stage, resume=args.resume, mnist_dir=args.mnist_dir,
                                steps=args.steps, device=args.device, overwrite=args.overwrite, lr=args.lr,
                                minutes=args.minutes, plan=plan, batch_divisor=args.batch_divisor)
        if rank != 0:
            return 0
    except FloatingPointError as e:
        print(f"error: {e} To follow that advice: python -m vdiff_edu train --name {run_dir.name} --resume latest "
              f"--lr <lower>", file=sys.stderr)
        return 1
    total = time.perf_counter() - start
    if result["interrupted"]:
        print(f"\nstopped in the {result['interrupted']} stage after {_seconds(total)}; everything trained so far is "
              f"kept. Continue with: python -m vdiff_edu train --name {run_dir.name} --resume latest", file=sys.stderr)
        return 130
    written = [f"  weights      {p}" for p in result["paths"].values()]
    if "pipeline" in result:
        from .outputs import write_loss_curve

        loss_png = write_loss_curve(result["histories"], run_dir / "loss.png", title=f"{run_dir.name}: denoiser loss")
        paths, secs = sample_and_write(result["pipeline"], run_dir / "samples", title=f"{run_dir.name}: samples")
        written += [f"  loss curve   {loss_png}", f"  samples      {paths['gif']}  {paths['png']}  {paths['npy']}",
                    f"               ({_seconds(secs)})",
                    f"  checkpoints  {run_dir / 'checkpoints'}/"]
    secs = ", ".join(f"{k} {_seconds(v)}" for k, v in result["seconds"].items() if k != "total")
    print(f"\ntrained in {_seconds(result['seconds']['total'])} ({secs}) on digits from {result['digits']}; wrote:")
    print("\n".join(written))
    note = budget_note(result)
    if note:
        print(note)
    if "pipeline" in result:
        pipe = result["pipeline"]
        ask = '--prompt "a bold 7 moves left and right"' if pipe.reads_prompts else "--labels 3,7"
        if pipe.reads_structure:  # the clips it ended with give their structure back
            ask = f'--structure-from {run_dir / "samples" / "samples.npy"} --prompt "the bold digit 8"'
        print(f"sample more: python -m vdiff_edu sample --weights {run_dir} {ask}")
    else:
        print(f"next: python -m vdiff_edu train --name {run_dir.name} --stage denoiser")
    print(f"(command total {_seconds(total)})")
    return 0


# ---------------------------------------------------------------- sample ----


def default_edit_prompts(n: int, num_digits: int = 1) -> list[str]:
    """``n`` prompts that name only content, for video to video: digits 0, 1, 2, ... in turn, each stroke in turn
    ("the thin digit 0", "the regular digit 1", ...)."""
    from .captions import STYLES, TRAIN_TEMPLATES, Meaning, caption

    return [caption([Meaning((num_digits * i + k) % 10, style=STYLES[(num_digits * i + k) % len(STYLES)])
                     for k in range(num_digits)], TRAIN_TEMPLATES[0]) for i in range(n)]


def structure_clips(cfg, n: int, seed: int = 1):
    """``n`` test-split clips of the model's geometry ``(n, 1, f, h, w)`` in [-1, 1]: the inputs whose structure the
    end-of-training samples keep (seed 1: other clips than the evaluation's)."""
    import torch

    from .moving_mnist import MovingMNIST
    from .train import fetch_batch

    ds = MovingMNIST("test", length=n, seed=seed, **cfg.dataset_kwargs())
    return fetch_batch(ds, torch.arange(n))["video"]


def cmd_sample(args) -> int:
    from .outputs import write_samples
    from .pipeline import LatentVideoPipeline

    n = positive_int("--n", args.n, at_most=100_000)
    steps = positive_int("--steps", args.steps)
    finite_number("--guidance", args.guidance, hint=" (1 = no guidance, 2-4 typical)")
    check_seed(args.seed)
    check_device(args.device)
    out = Path(args.out) if args.out else _free_folder(runs_dir() / "samples" / Path(str(args.weights)).name)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; give a folder (it is created if missing)")
    if args.out and (out / "samples.npy").exists() and not args.overwrite:
        raise UsageError(f"--out {out} already holds samples; choose another folder, or add --overwrite to replace them")
    try:
        pipe = LatentVideoPipeline.from_pretrained(args.weights, device=args.device)
    except (FileNotFoundError, ValueError) as e:
        raise UsageError(f"--weights {args.weights}: {e}") from None
    if steps is not None and steps > pipe.schedule.num_steps:
        raise UsageError(f"--steps must be between 1 and the model's {pipe.schedule.num_steps} noise levels; got {steps}")
    prompts = read_prompts(args.prompt, args.prompts)
    if args.structure_from is not None:
        if args.context_frames is not None:
            raise UsageError("give --structure-from (video to video) or --context-frames (prediction), not both")
        return _sample_edit(pipe, args, prompts, n, steps, out)
    if args.temporal_guidance != 1.0:
        raise UsageError("--temporal-guidance needs --structure-from FILE.npy (video to video)")
    if args.content_image is not None:
        raise UsageError("--content-image needs --structure-from FILE.npy (video to video: the clips whose structure "
                         "the new clips keep, their content from the image)")
    if args.structure_detail is not None:
        raise UsageError("--structure-detail needs --structure-from FILE.npy (uint8 (n, f, h, w), the clips whose "
                         "structure the new clips keep)")
    if pipe.reads_structure and pipe.reads_prompts and prompts is not None:
        print("note: a video-to-video model without --structure-from makes new clips from the prompt alone "
              "(no structure, level 0)")
    if args.context_frames is not None:
        return _sample_frames(pipe, args, prompts, n, steps, out)
    for flag, given in (("--interpolate", args.interpolate), ("--length", args.length is not None)):
        if given:
            raise UsageError(f"{flag} needs --context-frames FILE.npy (uint8 (n, k, h, w), the frames you give)")
    if pipe.reads_prompts:
        return _sample_prompts(pipe, args, prompts, n, steps, out)
    if prompts is not None:
        raise UsageError(f"--weights {args.weights} is a label model: it takes --labels (e.g. --labels 3,7), not "
                         f"--prompt/--prompts; for prompts load a text run (train one with --preset cpu-text)")
    slots = max(1, pipe.unet.cfg.num_label_slots)
    labels = parse_labels(args.labels, slots)
    if labels is not None and n is not None and len(labels) > n:
        raise UsageError(f"--labels gives {len(labels)} clips' digits but --n {n} clips hold only {n}; "
                         f"drop --n or give at most {n} labels")
    n = n if n is not None else (len(labels) if labels is not None else 16)
    if labels is None:
        cond = pipe.encode_condition(None, n)
    else:
        labels = [labels[i % len(labels)] for i in range(n)]  # repeat the labels to fill n clips
        cond = pipe.encode_condition(labels)
    print(pipe)
    digits = getattr(pipe, "metadata", {}).get("digits")
    if digits:
        print(f"trained on digits from: {digits}")
    t0 = time.perf_counter()
    video = pipe(cond["labels"].cpu() if cond is not None else None, num_videos=n, sampler=args.sampler,
                 steps=steps, guidance_scale=args.guidance, seed=args.seed)
    seconds = time.perf_counter() - t0
    paths = write_samples(video, cond["labels"].cpu() if cond is not None else None, out,
                          title=f"{args.weights}: {args.sampler or pipe.config.sampler}")
    print(f"{n} clips in {_seconds(seconds)} ({seconds / n:.2f} s per clip); wrote")
    for key, path in paths.items():
        print(f"  {key:<6} {path}")
    print("samples.npy: uint8 (n, f, h, w), 0 = background, 255 = digit; labels.npy: int64 (n, digits)")
    return 0


def _sample_prompts(pipe, args, prompts: list[str] | None, n: int | None, steps: int | None, out: Path) -> int:
    """``sample`` for a text model: prompts in (repeated to fill --n), clips, prompts.txt and labels.npy out."""
    from .outputs import write_samples

    if args.labels is not None:
        raise UsageError(f"--weights {args.weights} is a text model: it takes --prompt TEXT or --prompts FILE "
                         f"(e.g. --prompt \"a bold 7 moves left and right\"), not --labels")
    if prompts is None:
        raise UsageError(f"--weights {args.weights} is a text model: give --prompt \"a bold 7 moves left and right\" "
                         f"or --prompts FILE (one prompt a line)")
    if n is not None and len(prompts) > n:
        raise UsageError(f"--prompts gives {len(prompts)} prompts but --n {n} clips hold only {n}; drop --n or give "
                         f"at most {n} prompts")
    n = n if n is not None else len(prompts)
    prompts = [prompts[i % len(prompts)] for i in range(n)]  # repeat the prompts to fill n clips, in order
    try:
        pipe.encode_condition(prompts=prompts)  # unknown words: the tokenizer names them and the closest words
    except ValueError as e:
        raise UsageError(f"--prompt: {e}") from None
    labels = prompt_labels(prompts, pipe.config.num_digits)  # (n, digits), -1 = not named
    print(pipe)
    t0 = time.perf_counter()
    video = pipe(prompts=prompts, sampler=args.sampler, steps=steps, guidance_scale=args.guidance, seed=args.seed)
    seconds = time.perf_counter() - t0
    paths = write_samples(video, labels, out, title=f"{args.weights}: {args.sampler or pipe.config.sampler}",
                          prompts=prompts)
    print(f"{n} clips in {_seconds(seconds)} ({seconds / n:.2f} s per clip); wrote")
    for key, path in paths.items():
        print(f"  {key:<7} {path}")
    print("samples.npy: uint8 (n, f, h, w); prompts.txt: one prompt per clip, in clip order; labels.npy: int64 "
          "(n, digits), the digit(s) each prompt names (captions.parse), -1 where it names none")
    return 0


def _sample_edit(pipe, args, prompts: list[str] | None, n: int | None, steps: int | None, out: Path) -> int:
    """``sample --structure-from FILE.npy``: video to video. Each clip given keeps its structure (at
    --structure-detail) and takes its content from --prompt; writes structure.npy (the maps used) beside the clips,
    prompts.txt and labels.npy in clip order."""
    import numpy as np
    import torch

    from .eval.metrics import read_npy
    from .outputs import write_array, write_samples
    from .structure import finest_level, structure_image
    from .utils import from_uint8, to_uint8

    if not pipe.reads_structure:
        raise UsageError(f"--weights {args.weights} reads no structure: --structure-from needs a video-to-video "
                         f"model (train one with --preset cpu-v2v)")
    try:
        given = read_npy(args.structure_from, "--structure-from")
    except (FileNotFoundError, ValueError) as e:
        raise UsageError(str(e)) from None
    f, size = pipe.config.num_frames, pipe.config.image_size
    if given.dtype != np.uint8 or given.ndim != 4 or given.shape[1:] != (f, size, size):
        raise UsageError(f"--structure-from must be uint8 (n, {f}, {size}, {size}), clips of this model's geometry "
                         f"(0 = background, 255 = digit, as samples.npy); got {given.dtype} {given.shape}")
    finite_number("--temporal-guidance", args.temporal_guidance, hint=" (1 = the video model; 1-3 typical)")
    top = finest_level(size)
    detail = pipe.config.structure.default_detail if args.structure_detail is None else args.structure_detail
    if not 0 <= detail <= top:
        raise UsageError(f"--structure-detail must be 0 (ignore the input) to {top} (its exact silhouette); got "
                         f"{detail}")
    if n is not None and n != len(given):
        raise UsageError(f"--n {n} but --structure-from holds {len(given)} clips; drop --n (one new clip per clip "
                         f"given)")
    n = len(given)
    labels, references, per_clip = None, None, False
    if args.content_image is not None:
        if prompts is not None or args.labels is not None:
            raise UsageError("give --content-image or --prompt/--labels, not both: the model takes its content from "
                             "one (an image says what to draw, stroke included)")
        if not pipe.reads_references:
            raise UsageError(f"--weights {args.weights} takes its content from prompts only (it was trained without "
                             f"reference images); use --prompt, or a model trained with them (--preset cpu-v2v)")
        references = read_references(args.content_image, n, pipe.config.image_size, pipe.config.digit_size)
        per_clip = len(references) > 1
        references = references.expand(n, -1, -1, -1)  # (n, 1, h, w): one image for all, or one per clip
        prompts = [""] * n  # the empty prompt: the content is the image's
        written = torch.full((n, pipe.config.num_digits), -1)  # no digit named
    elif pipe.reads_prompts:
        if args.labels is not None:
            raise UsageError(f"--weights {args.weights} is a text model: name the new content with --prompt "
                             f"(e.g. --prompt \"a bold 8\"), not --labels")
        if prompts is None:
            raise UsageError("--structure-from needs --prompt TEXT (e.g. --prompt \"a bold 8\") or --prompts FILE: "
                             "the new content (the motion comes from the clips given)")
        if len(prompts) not in (1, n):
            raise UsageError(f"--prompts gives {len(prompts)} prompts for {n} clips; give one prompt per clip, or one "
                             f"for all")
        prompts = [prompts[i % len(prompts)] for i in range(n)]
        try:
            pipe.encode_condition(prompts=prompts)  # unknown words: the tokenizer names them and the closest words
        except ValueError as e:
            raise UsageError(f"--prompt: {e}") from None
        written = prompt_labels(prompts, pipe.config.num_digits)  # (n, digits), -1 = not named
    else:
        slots = max(1, pipe.unet.cfg.num_label_slots)
        parsed = parse_labels(args.labels, slots)
        if parsed is not None:
            labels = torch.as_tensor([parsed[i % len(parsed)] for i in range(n)]).reshape(n, slots)
        written = labels
    video_in = from_uint8(torch.from_numpy(given))[:, None]  # (n, 1, f, h, w) in [-1, 1]
    print(pipe)
    t0 = time.perf_counter()
    video = pipe.edit(video_in, prompts=None if references is not None else prompts, labels=labels,
                      references=references, detail=detail, sampler=args.sampler, steps=steps,
                      guidance_scale=args.guidance, temporal_guidance=args.temporal_guidance, seed=args.seed)
    seconds = time.perf_counter() - t0
    content = f", content of {Path(args.content_image).name}" if references is not None else ""
    rows = None if references is None else [f"image {Path(args.content_image).name}" + (f"[{i}]" if per_clip else "")
                                            for i in range(n)]  # the filmstrip's row labels
    paths = write_samples(video, written, out, title=f"{args.weights}: structure of {Path(args.structure_from).name} "
                          f"at detail {detail}{content}", prompts=prompts, row_labels=rows)
    paths["structure"] = write_array(structure_image(video_in, detail, pipe.config.structure.pooling).numpy(),
                                    out / "structure.npy")
    if references is not None:  # the images as the model read them: scaled and centred
        from .reference import centred

        paths["reference"] = write_array(to_uint8(centred(references)[:, 0]).numpy(), out / "references.npy")
    print(f"{n} clips in {_seconds(seconds)} ({seconds / n:.2f} s per clip); wrote")
    for key, path in paths.items():
        print(f"  {key:<9} {path}")
    print(f"samples.npy: uint8 (n, f, h, w); structure.npy: uint8 (n, f, h, w), the input's silhouette pooled at "
          f"detail {detail} (255 = all ink); prompts.txt and labels.npy in clip order" +
          ("; references.npy: uint8 (n, h, w), the content images as the model read them (scaled, centred)"
           if references is not None else ""))
    return 0


def read_references(path: str, n: int, image_size: int, digit_size: int):
    """``--content-image``: a .png (one digit for every clip) or a .npy of one image ``(h, w)`` or one per clip
    ``(n, h, w)``, white on black → references ``(n or 1, 1, image_size, image_size)`` in [-1, 1], centred (and
    scaled to ``digit_size`` unless a picture is a frame of the model's size; ``reference.reference_from_image``);
    every mistake one sentence."""
    import numpy as np
    import torch

    from .eval.metrics import read_npy
    from .reference import reference_from_image

    where = Path(path)
    if where.suffix.lower() == ".png":
        if not where.is_file():
            raise UsageError(f"--content-image: no file at {where}")
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(where) as image:
                images = np.asarray(image.convert("L"))[None]  # (1, h, w) uint8
        except (UnidentifiedImageError, OSError) as e:
            raise UsageError(f"--content-image: {where} is not a PNG Pillow can read ({e})") from None
    elif where.suffix.lower() == ".npy":
        try:
            images = read_npy(where, "--content-image")
        except (FileNotFoundError, ValueError) as e:
            raise UsageError(str(e)) from None
        images = images[None] if images.ndim == 2 else images
        if images.ndim != 3 or len(images) not in (1, n) or images.dtype.kind not in "uif":
            raise UsageError(f"--content-image: the .npy must hold one digit image (h, w) or one per clip ({n}, h, w) "
                             f"of grey levels; got {images.dtype} {images.shape}")
    else:
        raise UsageError(f"--content-image takes a .png or a .npy (a digit, white on black); got {where.name!r}")
    try:
        return torch.cat([reference_from_image(image, image_size, digit_size) for image in images])  # (k, 1, H, W)
    except ValueError as e:
        raise UsageError(f"--content-image: {e}") from None


def _sample_frames(pipe, args, prompts: list[str] | None, n: int | None, steps: int | None, out: Path) -> int:
    """``sample --context-frames FILE.npy``: the given frames in, whole clips out (given frames in place, unchanged),
    with context_mask.npy saying which frames were given."""
    import numpy as np
    import torch

    from .eval.metrics import read_npy
    from .frames import given_positions, interpolation_mask, past_mask
    from .outputs import write_array, write_samples
    from .utils import from_uint8

    try:
        given = read_npy(args.context_frames, "--context-frames")
    except (FileNotFoundError, ValueError) as e:
        raise UsageError(str(e)) from None
    f, size = pipe.config.num_frames, pipe.config.image_size
    if given.dtype != np.uint8 or given.ndim != 4 or given.shape[2:] != (size, size):
        raise UsageError(f"--context-frames must be uint8 (n, k, {size}, {size}), each clip's first k frames (0 = "
                         f"background, 255 = digit, as samples.npy); got {given.dtype} {given.shape}")
    k, length = given.shape[1], args.length if args.length is not None else f
    if args.interpolate and (k != 2 or length != f):
        raise UsageError(f"--interpolate takes exactly 2 frames per clip (the first and the last of a {f}-frame clip) "
                         f"and no --length; got {k} frames" + (f" and --length {length}" if length != f else ""))
    if not 1 <= k < min(f, length):
        raise UsageError(f"--context-frames gives {k} frames per clip, but the model makes clips of {f} frames and "
                         f"needs at least one to make: give 1 to {min(f, length) - 1} frames")
    if length < f:
        raise UsageError(f"--length must be at least the model's clip length, {f}; got {length}")
    if not 1 <= args.context < f:
        raise UsageError(f"--context must be between 1 and {f - 1} (frames each window of {f} is given); got "
                         f"{args.context}")
    finite_number("--noise-level", args.noise_level, hint=" (0 = the given frames as they are; 0.1-0.2 typical)")
    if n is not None and n != len(given):
        raise UsageError(f"--n {n} but --context-frames holds {len(given)} clips; drop --n (one video per clip given)")
    n = len(given)
    slots = max(1, pipe.unet.cfg.num_label_slots)
    labels = parse_labels(args.labels, slots) if not pipe.reads_prompts else None
    if labels is not None:
        if len(labels) not in (1, n):
            raise UsageError(f"--labels gives {len(labels)} clips' digits for {n} given clips; give one label per clip, "
                             f"or one for all")
        labels = torch.as_tensor([labels[i % len(labels)] for i in range(n)]).reshape(n, slots)
    if prompts is not None and not pipe.reads_prompts:
        raise UsageError("--prompt/--prompts need a text model; this one takes --labels")
    prompts = None if prompts is None else [prompts[i % len(prompts)] for i in range(n)]
    frames = from_uint8(torch.from_numpy(given))[:, None]  # (n, 1, k, h, w) in [-1, 1]
    kwargs = dict(labels=labels, prompts=prompts, method=args.method, noise_level=args.noise_level,
                  sampler=args.sampler, steps=steps, guidance_scale=args.guidance, seed=args.seed)
    print(pipe)
    t0 = time.perf_counter()
    try:
        if length > f:
            mask = past_mask(length, k)  # (length,): the first k given
            video = pipe.rollout(frames, length, context=args.context, progress=True, **kwargs)
        else:
            mask = interpolation_mask(f) if args.interpolate else past_mask(f, k)  # (f,)
            clips = torch.zeros(n, 1, f, size, size)
            clips[:, :, mask] = frames
            video = pipe.predict(clips, mask, **kwargs)
    except ValueError as e:
        raise UsageError(f"--weights {args.weights}: {e}") from None
    seconds = time.perf_counter() - t0
    paths = write_samples(video, labels, out, title=f"{args.weights}: given frames "
                          f"{', '.join(map(str, given_positions(mask)))} of {len(mask)}",
                          prompts=prompts)
    paths["mask"] = write_array(mask.numpy(), out / "context_mask.npy")
    print(f"{n} videos of {length} frames in {_seconds(seconds)} ({seconds / n:.2f} s per video); wrote")
    for key, path in paths.items():
        print(f"  {key:<7} {path}")
    print(f"samples.npy: uint8 (n, {length}, h, w), the given frames in place and unchanged; context_mask.npy: bool "
          f"({length},), True where a frame was given")
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
        raise UsageError("evaluation needs vdiff_edu.eval, which is not in this version yet")
    check_device(args.device)
    check_mnist_dir(args.mnist_dir, "--mnist-dir")
    return metrics.evaluate_command(args) or 0


# ---------------------------------------------------------------- demo ----


def cmd_demo(args) -> int:
    """Preview the data and the forward process, sample the shipped model, train the cpu preset from nothing."""
    import torch

    from .moving_mnist import MovingMNIST
    from .outputs import write_loss_curve, write_samples
    from .pipeline import LatentVideoPipeline
    from .presets import ExperimentConfig
    from .recipe import budget_note, train_pipeline
    from .schedule import NoiseSchedule
    from .viz import filmstrip, save_gif

    check_mnist_dir(args.mnist_dir, "--mnist-dir")
    out = runs_dir() / "demo"
    out.mkdir(parents=True, exist_ok=True)
    smoke = is_smoke()
    skip_train = args.skip_train or os.environ.get("VDIFF_DEMO_SKIP_TRAIN") == "1"
    deadline_env = os.environ.get("VDIFF_DEADLINE")
    if deadline_env is not None:
        try:
            float(deadline_env)
        except ValueError:
            raise UsageError(f"VDIFF_DEADLINE must be a Unix time in seconds (make demo sets it); got {deadline_env!r}") from None
    start, demo_start = time.perf_counter(), time.time()
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

    # 4. train the cpu preset from nothing (smoke under VDIFF_SMOKE=1), in a folder of its own
    if skip_train:
        print("[4/4] training skipped (--skip-train or VDIFF_DEMO_SKIP_TRAIN=1)")
    else:
        preset = "smoke" if smoke else "cpu"
        cfg = ExperimentConfig.preset(preset)
        run_dir = _free_folder(out / f"train_{preset}")  # an earlier demo's run is kept, never overwritten
        print(f"[4/4] training the {preset} preset from nothing → {run_dir}/ (its steps are scaled to fit this "
              f"machine into the time left)", flush=True)
        print(cfg.summary())
        t0 = time.perf_counter()
        # the whole demo (and, under `make demo`, the install before it: VDIFF_DEADLINE) ends within the budget
        deadline = None
        if cfg.time_budget_minutes:
            deadline = float(os.environ.get("VDIFF_DEADLINE") or demo_start + 60 * cfg.time_budget_minutes)
            print(f"      time budget: the demo ends by {time.strftime('%H:%M:%S', time.localtime(deadline))} "
                  f"({(deadline - time.time()) / 60:.1f} min from now)", flush=True)
        result = train_pipeline(cfg, run_dir, mnist_dir=args.mnist_dir, deadline=deadline,
                                log=lambda s: print("      " + s, flush=True))
        train_secs = time.perf_counter() - t0
        if result["interrupted"]:
            print(f"\ndemo stopped during training ({result['interrupted']} stage); continue that run with: "
                  f"VDIFF_RUNS_DIR={run_dir.parent} python -m vdiff_edu train --name {run_dir.name} --resume latest",
                  file=sys.stderr)
            return 130
        loss_png = write_loss_curve(result["histories"], run_dir / "loss.png", title=f"{preset} preset: denoiser loss")
        paths, _ = sample_and_write(result["pipeline"], run_dir / "samples",
                                    title=f"{preset} preset trained in {_seconds(train_secs)}")
        print(f"      trained in {_seconds(train_secs)}; samples → {paths['gif']}")
        note = budget_note(result)
        if note:
            print(f"      {note}; the shipped model's samples above show what the whole recipe draws")
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
    from .sampling import SAMPLERS

    parser = Parser(prog="python -m vdiff_edu", description=__doc__.split("\n\n")[0],
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="{info,train,sample,evaluate,demo}", parser_class=Parser)

    p = sub.add_parser("info", help="versions, device, presets, shipped weights and their cards")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("train", help="train the autoencoder, then the denoiser; outputs under runs/<name>/")
    p.add_argument("--preset", default=None, choices=PRESETS,
                   help=f"one of {', '.join(PRESETS)} (default: cpu; smoke under VDIFF_SMOKE=1; a resumed run "
                        f"uses its own)")
    p.add_argument("--name", default=None, help="run folder name under runs/ (default: the preset's name)")
    p.add_argument("--stage", choices=("autoencoder", "denoiser", "both"), default="both",
                   help="train only the autoencoder, only the denoiser (on the run's autoencoder), or both")
    p.add_argument("--resume", default=None, metavar="latest|PATH",
                   help="continue the run in runs/<name> where it stopped, with its own recipe")
    p.add_argument("--overwrite", action="store_true",
                   help="start afresh in a folder that holds a run: the old run is moved aside, never deleted")
    p.add_argument("--mnist-dir", default=None, help="folder with MNIST idx files (default: VDIFF_MNIST_DIR, cache)")
    p.add_argument("--steps", type=int, default=None, help="clip-stage denoiser steps (default: the preset's)")
    p.add_argument("--lr", type=float, default=None,
                   help="peak learning rate of the clip stage (default: the preset's); honoured on --resume")
    p.add_argument("--minutes", type=float, default=None,
                   help="time budget for the whole run: every stage is sized to fit it on this machine (default: the "
                        "preset's, 10 for cpu; 0 = exactly the recipe's step counts, as the shipped weights)")
    p.add_argument("--plan", default=None, metavar="AE,FRAMES,CLIPS",
                   help="exactly these step counts for the autoencoder, single-frame and clip stages (two numbers "
                        "for a recipe without a single-frame stage), no budget: repeats the plan a budgeted run "
                        "chose (its run.json, overrides.plan), e.g. the shipped weights' --plan 323,626,1179")
    p.add_argument("--batch-divisor", type=int, default=None, choices=(1, 2, 4),
                   help="divide every stage's batch by this (default: a budget far shorter than the recipe divides "
                        "them by 2 or 4, and a fixed run keeps the recipe's); with --plan it repeats a budgeted "
                        "run's batches (its run.json, overrides.batch_divisor)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: CUDA if present)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("sample", help="sample clips; writes samples.gif, samples.npy (uint8), labels.npy "
                                      "(and prompts.txt for a text model)")
    p.add_argument("--weights", default="cpu", help="'cpu' (the shipped weights) or a run folder such as runs/my_run")
    p.add_argument("--n", type=int, default=None, help="number of clips (default: one per label, or 16)")
    p.add_argument("--labels", default=None, help="digits, comma-separated, e.g. 3,7,1 (default: 0,1,2,... in turn)")
    p.add_argument("--prompt", default=None,
                   help='a text model\'s prompt, e.g. "a bold 7 moves left and right" ("" = the null prompt)')
    p.add_argument("--prompts", default=None, metavar="FILE",
                   help="a text model's prompts: a file with one prompt a line (blank lines skipped)")
    p.add_argument("--steps", type=int, default=None,
                   help="sampler steps (default: the model's; 50 for the shipped cpu model)")
    p.add_argument("--guidance", type=float, default=None, help="classifier-free guidance scale (default: the model's)")
    p.add_argument("--sampler", choices=SAMPLERS, default=None,
                   help="default: the model's (ddpm for the shipped cpu model)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--context-frames", default=None, metavar="FILE.npy",
                   help="given frames: uint8 (n, k, h, w), each clip's first k frames; the model makes the rest "
                        "(a frames model such as cpu-frames, or any model with --method replacement)")
    p.add_argument("--interpolate", action="store_true",
                   help="with --context-frames (n, 2, h, w): the first and the last frame are given, the model "
                        "fills in between")
    p.add_argument("--length", type=int, default=None,
                   help="with --context-frames: frames per video; longer than the model's clips rolls out window "
                        "by window (e.g. 128)")
    p.add_argument("--context", type=int, default=2,
                   help="with --length: frames each later window is given, the last ones made (default 2)")
    p.add_argument("--method", choices=("channels", "replacement"), default="channels",
                   help="how given frames reach the model: its input channels (trained for it; default) or the "
                        "noise (replacement, Ho et al. 2022; any model)")
    p.add_argument("--noise-level", type=float, default=0.0,
                   help="noise std added to the given frames' latents before the model reads them (default 0)")
    p.add_argument("--structure-from", default=None, metavar="FILE.npy",
                   help="video to video: uint8 (n, f, h, w) clips whose structure (where the ink is, frame by "
                        "frame) the new clips keep, their content from --prompt (a *-v2v model)")
    p.add_argument("--structure-detail", type=int, default=None,
                   help="with --structure-from: how much of the input's shape to keep, from 1 (only where the ink "
                        "is) to 5 on 32 px frames (its exact silhouette); 0 ignores the input (default: the model's, "
                        "2 for cpu-v2v)")
    p.add_argument("--temporal-guidance", type=float, default=1.0,
                   help="with --structure-from: temporal-consistency guidance ω_t (Gen-1): 1 = the video model "
                        "(default), above 1 pushes away from the frame-by-frame image model, 0 is that image model")
    p.add_argument("--content-image", default=None, metavar="FILE",
                   help="with --structure-from, instead of --prompt: the new content from a digit image, white on "
                        "black (\"this 8\"): a .png, or a .npy of one image (h, w) or one per clip (n, h, w)")
    p.add_argument("--out", default=None, help="output folder (default: a new runs/samples/<weights>[-N])")
    p.add_argument("--overwrite", action="store_true", help="replace the samples already in --out")
    p.add_argument("--device", default=None)
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("evaluate", help="the evaluation suite (vdiff_edu.eval)")
    metrics = _metrics_module()
    if metrics is not None:
        metrics.add_evaluate_arguments(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("demo", help="what `make demo` runs: data preview, shipped-model samples, a fresh cpu run")
    p.add_argument("--skip-train", action="store_true", help="skip training (also: VDIFF_DEMO_SKIP_TRAIN=1)")
    p.add_argument("--mnist-dir", default=None, help="folder with MNIST idx files (default: VDIFF_MNIST_DIR, cache)")
    p.set_defaults(func=cmd_demo)
    return parser


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def main(argv: list[str] | None = None) -> int:
    debug = os.environ.get("VDIFF_DEBUG") == "1"
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 0
        check_environment(args.command)
        return args.func(args)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except SystemExit as e:  # --help, or a command that exits with a message of its own
        if isinstance(e.code, str):
            print(f"error: {' '.join(e.code.split())}", file=sys.stderr)
            return 2
        return e.code or 0
    except Exception as e:
        if debug:
            traceback.print_exc()
        if isinstance(e, UsageError) or _is_user_facing(e):
            print(f"error: {_one_line(e)}", file=sys.stderr)
            return 2
        print(f"error: unexpected {type(e).__name__}: {_one_line(e)} (a bug in vdiff_edu; VDIFF_DEBUG=1 shows where)",
              file=sys.stderr)
        return 1


def _is_user_facing(e: BaseException) -> bool:
    """Errors that say what was wrong with a file, a folder or a value the user gave (they teach in one line)."""
    from .checkpoint import CheckpointError

    return isinstance(e, (ValueError, TypeError, OSError, KeyError, CheckpointError))


if __name__ == "__main__":
    sys.exit(main())
