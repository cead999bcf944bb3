"""Which words of a prompt does a text model use? The denoising loss of real clips with their true caption and with
one part of it changed.

    VDIFF_MNIST_DIR=/path/to/mnist python benchmarks/probe_text.py --weights cpu-text

A model that reads a word does worse when that word is wrong: its v-loss on real clips (evaluation split, every
combination) rises. One caption per clip in the first training template, every clip with the same noise and the
same timestep t, for t in --timesteps; the variants change one thing each: the motion (another family, no
direction), the start direction (reversed), the digit (d + 1 mod 10), or leave only digit and style, or give the
empty prompt. Equal losses for "true" and a variant mean that the model ignores what the variant changed.
"""

from __future__ import annotations

import argparse

import torch

from vdiff_edu import captions
from vdiff_edu.moving_mnist import MovingMNIST
from vdiff_edu.pipeline import LatentVideoPipeline
from vdiff_edu.train import diffusion_loss

OTHER_MOTION = {"horizontal": "vertical", "vertical": "horizontal", "diagonal": "horizontal"}
REVERSED = {"right": "left", "left": "right", "up": "down", "down": "up", "up-right": "down-left",
            "down-left": "up-right", "up-left": "down-right", "down-right": "up-left"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default="cpu-text")
    parser.add_argument("--n", type=int, default=128, help="real clips")
    parser.add_argument("--timesteps", default="900,600,300")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    pipe = LatentVideoPipeline.from_pretrained(args.weights)
    cfg = pipe.config
    kwargs = cfg.dataset_kwargs()
    kwargs.pop("holdout", None)
    ds = MovingMNIST("eval", length=args.n, seed=0, verbose=False, **kwargs)
    items = [ds[i] for i in range(args.n)]
    z0 = pipe.encode(torch.stack([it["video"] for it in items]))  # (n, c_z, f, h/d, w/d)
    ms = [captions.meanings_of_item(it)[0] for it in items]
    M, T = captions.Meaning, captions.TRAIN_TEMPLATES[0]
    variants = {
        "true": [captions.caption(m, T) for m in ms],
        "wrong motion": [captions.caption(M(m.digit, OTHER_MOTION[m.motion], None, m.style), T) for m in ms],
        "reversed direction": [captions.caption(M(m.digit, m.motion, REVERSED[m.direction], m.style), T) for m in ms],
        "digit and style only": [captions.caption(M(m.digit, style=m.style), T) for m in ms],
        "wrong digit": [captions.caption(M((m.digit + 1) % 10, m.motion, m.direction, m.style), T) for m in ms],
        "empty prompt": [""] * args.n,
    }
    print(f"{args.weights}: v-loss of {args.n} real clips, same noise for every variant\n")
    print("| t | " + " | ".join(variants) + " |\n|---:|" + "---:|" * len(variants))
    for t in (int(x) for x in args.timesteps.split(",")):
        noise = torch.randn(z0.shape, generator=torch.Generator().manual_seed(t))
        row = []
        for prompts in variants.values():
            with torch.no_grad():
                loss = diffusion_loss(pipe.unet, pipe.schedule, z0, pipe.encode_condition(prompts=prompts),
                                      cfg.train.prediction, None, None, torch.full((args.n,), t), noise)
            row.append(f"{float(loss):.4f}")
        print(f"| {t} | " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
