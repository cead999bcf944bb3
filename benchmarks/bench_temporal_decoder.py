"""Benchmark of the temporally fine-tuned decoder (issue 11 §3): less flicker, the same frames?

    VDIFF_MNIST_DIR=/path/to/mnist python benchmarks/bench_temporal_decoder.py --weights cpu-v2v --n 200 --steps 300

Fine-tunes the temporal layers of a copy of the model's decoder (``autoencoder.finetune_temporal_decoder``: the
encoder and the per-frame decoder frozen) on real training clips, then measures, before (the per-frame decoder)
and after:

    PSNR       of real test clips' reconstructions, per frame (dB): decoded as clips, and frame by frame alone
    flicker    of those reconstructions, and of generated clips: the same sampled latents (``pipe.edit``, one seed)
               decoded by each decoder (``metrics.flicker``; real clips ≈ 0)

With ``--save DIR`` the pipeline with the fine-tuned decoder is written there (``save_pretrained``).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from vdiff_edu import captions
from vdiff_edu.autoencoder import finetune_temporal_decoder, with_temporal_decoder
from vdiff_edu.eval.metrics import flicker
from vdiff_edu.moving_mnist import MovingMNIST
from vdiff_edu.pipeline import LatentVideoPipeline
from vdiff_edu.similarity import psnr
from vdiff_edu.train import fetch_batch
from vdiff_edu.utils import to_uint8


def clips_of(cfg, split: str, n: int, seed: int) -> torch.Tensor:
    kwargs = cfg.dataset_kwargs()
    kwargs.pop("holdout", None)
    ds = MovingMNIST(split, length=n, seed=seed, verbose=False, **kwargs)
    return fetch_batch(ds, torch.arange(n))["video"]  # (n, 1, f, h, w)


@torch.no_grad()
def reconstruction(ae, clips: torch.Tensor, temporal: bool, one_frame: bool = False) -> torch.Tensor:
    z = ae.encode(clips)  # (n, c_z, f, h/d, w/d)
    if one_frame:  # every frame alone, as a one-frame clip
        f = z.shape[2]
        return torch.cat([ae.decode(z[:, :, k:k + 1], temporal) for k in range(f)], dim=2)
    return ae.decode(z, temporal)


def scores(ae, clips: torch.Tensor, temporal: bool) -> dict:
    clip = reconstruction(ae, clips, temporal)
    alone = reconstruction(ae, clips, temporal, one_frame=True)
    return {"psnr clips": float(psnr(clip, clips).mean()), "psnr frames alone": float(psnr(alone, clips).mean()),
            "flicker": flicker(to_uint8(clip[:, 0]).numpy())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", default="cpu-v2v")
    ap.add_argument("--n", type=int, default=200, help="test clips (real, and generated)")
    ap.add_argument("--train-clips", type=int, default=2000)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--latent-noise", type=float, default=0.1)
    ap.add_argument("--sample-steps", type=int, default=None)
    ap.add_argument("--save", default=None, help="write the pipeline with the fine-tuned decoder here")
    ap.add_argument("--out", default="runs/bench_temporal_decoder")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pipe = LatentVideoPipeline.from_pretrained(args.weights)
    cfg = pipe.config
    per_frame = pipe.autoencoder
    video_ae = with_temporal_decoder(per_frame)
    train = clips_of(cfg, "train", args.train_clips, 7)  # (n, 1, f, h, w)
    start = time.perf_counter()
    losses = finetune_temporal_decoder(video_ae, train, args.steps, args.batch, latent_noise=args.latent_noise,
                                       progress=True)
    seconds = time.perf_counter() - start
    real = clips_of(cfg, "eval", args.n, 0)
    results = {"machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}",
               "weights": args.weights, "n": args.n, "steps": args.steps, "batch": args.batch,
               "latent_noise": args.latent_noise, "finetune seconds": seconds, "loss first/last": [losses[0], losses[-1]],
               "real": {"per-frame decoder": scores(per_frame, real, False),
                        "temporal decoder": scores(video_ae, real, True)},
               "real clips themselves": {"flicker": flicker(to_uint8(real[:, 0]).numpy())}}
    if pipe.reads_structure:  # generated: the same latents, decoded twice
        rng = np.random.default_rng(0)
        prompts = [captions.caption(captions.Meaning(int(rng.integers(10)), style=captions.STYLES[rng.integers(3)]),
                                    rng=rng) for _ in range(args.n)]
        z = pipe.edit(real, prompts=prompts, seed=1, steps=args.sample_steps, return_latents=True)
        with torch.no_grad():
            made = {name: {"flicker": flicker(to_uint8(ae.decode(z, temporal)[:, 0].clamp(-1, 1)).numpy())}
                    for name, ae, temporal in (("per-frame decoder", per_frame, False),
                                               ("temporal decoder", video_ae, True))}
        results["generated (edits at the default level)"] = made
    (out / "results.json").write_text(json.dumps(results, indent=1))
    print(json.dumps(results, indent=1))
    if args.save:
        pipe.autoencoder = video_ae
        print(pipe.save_pretrained(args.save, metadata={"temporal_decoder": {k: results[k] for k in (
            "steps", "batch", "latent_noise", "finetune seconds")}}))


if __name__ == "__main__":
    main()
