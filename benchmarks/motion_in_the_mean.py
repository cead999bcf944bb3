"""How much of a clip does its caption's motion predict on its own? The fraction of the pixel variance of real
clips that the mean clip of each caption group explains, for groups by digit, by digit and style, and by digit,
style, motion and direction (issue 10: why the cpu-text model ignores its motion words).

    VDIFF_MNIST_DIR=/path/to/mnist python benchmarks/motion_in_the_mean.py --clips 4000 --weights cpu-text

At the noisiest step of diffusion (t → T, x_t pure noise) the MSE-optimal prediction of a clip is its conditional
mean E[x₀ | caption], so the loss a caption can save there is the variance its group means explain:

    explained(group) = 1 − Σ_i ‖x_i − mean_{group(i)}‖² / Σ_i ‖x_i − mean_all‖²

With n clips in G groups the group means overfit by about (G − 1)/n of the variance even for a meaningless
grouping, so each row is printed beside the same grouping with its keys shuffled across clips (chance). With
``--weights``, the same in the latent space of that model's autoencoder (scaled latents, what its U-Net denoises).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from vdiff_edu.captions import meanings_of_item
from vdiff_edu.moving_mnist import MovingMNIST
from vdiff_edu.pipeline import LatentVideoPipeline


def explained(x: np.ndarray, keys: list[tuple]) -> float:
    """1 − (within-group sum of squares) / (total sum of squares) of ``x (n, d)`` grouped by ``keys``."""
    total = ((x - x.mean(0)) ** 2).sum()
    within = 0.0
    for key in set(keys):
        rows = np.array([k == key for k in keys])
        within += ((x[rows] - x[rows].mean(0)) ** 2).sum()
    return 1.0 - within / total


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--clips", type=int, default=4000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--weights", default=None, help="also in this model's latent space, e.g. cpu-text")
    args = p.parse_args()
    ds = MovingMNIST("train", length=args.clips, seed=args.seed, verbose=False, image_size=32, num_frames=8,
                     num_digits=1, digit_size=20, styles=("thin", "regular", "bold"))
    items = [ds[i] for i in range(args.clips)]
    video = torch.stack([it["video"] for it in items])  # (n, 1, 8, 32, 32) in [-1, 1]
    spaces = {"pixels": video.flatten(1).numpy().astype(np.float64)}  # (n, 1·8·32·32)
    if args.weights:
        pipe = LatentVideoPipeline.from_pretrained(args.weights, device="cpu")
        with torch.no_grad():
            z = torch.cat([pipe.encode(video[i:i + 256]) for i in range(0, len(video), 256)])  # (n, 4, 8, 8, 8)
        spaces[f"{args.weights} latents"] = z.flatten(1).numpy().astype(np.float64)
    meanings = [meanings_of_item(it)[0] for it in items]
    groupings = {
        "digit": [(m.digit,) for m in meanings],
        "digit, style": [(m.digit, m.style) for m in meanings],
        "digit, style, motion": [(m.digit, m.style, m.motion) for m in meanings],
        "digit, style, motion, direction": [(m.digit, m.style, m.motion, m.direction) for m in meanings],
    }
    rng = np.random.default_rng(args.seed)
    print(f"{args.clips} clips (8 × 32 × 32, one 20-px digit, three styles, deterministic rule); digits: {ds.source}\n")
    order = rng.permutation(len(items))
    print("| caption says | groups | " + " | ".join(f"variance explained, {s} (keys shuffled)" for s in spaces) + " |")
    print("|---|---:|" + "---:|" * len(spaces))
    for name, keys in groupings.items():
        shuffled = [keys[i] for i in order]
        cells = [f"{explained(x, keys):.4f} ({explained(x, shuffled):.4f})" for x in spaces.values()]
        print(f"| {name} | {len(set(keys))} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
