"""Checks for the exercises of notebook 08 (latent video diffusion).

Each ``check_*`` takes your answer, prints what is right or wrong with a hint, and returns a verdict: true
or false in code, invisible in a notebook (a cell ending with a check shows only its message).
It never raises: an exercise you have not tried yet (``None``, or a function that still raises
``NotImplementedError``) just gets a friendly reminder, so the notebook runs top to bottom.
"""

from __future__ import annotations

import torch

from ._checking import call as _call
from ._checking import fail as _fail
from ._checking import ok as _ok
from ._checking import verdict


def _tiny_pipeline():
    """A smoke-sized pipeline with random (untrained, nudged) weights: enough to compare two ways of sampling."""
    from vdiff_edu.autoencoder import FrameAutoencoder
    from vdiff_edu.pipeline import LatentVideoPipeline
    from vdiff_edu.presets import ExperimentConfig
    from vdiff_edu.schedule import NoiseSchedule
    from vdiff_edu.unet import UNet3D

    cfg = ExperimentConfig.smoke()
    torch.manual_seed(0)
    ae, unet = FrameAutoencoder(cfg.autoencoder), UNet3D(cfg.unet)
    with torch.no_grad():
        for p in unet.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return LatentVideoPipeline(ae, unet, NoiseSchedule(cfg.schedule_kind, cfg.schedule_steps), cfg, device="cpu")


@verdict
def check_compression(compression) -> bool:
    """``compression(image_size, num_frames, downsample, latent_channels)`` → pixels per latent number."""
    cases = [((32, 8, 4, 4), 4.0), ((64, 16, 4, 4), 4.0), ((32, 8, 4, 8), 2.0), ((64, 20, 8, 4), 16.0)]
    for args, want in cases:
        got, msg = _call(compression, "compression", *args)
        if msg:
            print(msg)
            return False
        try:
            got = float(got)
        except (TypeError, ValueError):
            return _fail(f"compression{args} returned {got!r}, not a number", "return a float")
        if abs(got - want) > 1e-6:
            hint = ("the frame count cancels: every frame is encoded on its own" if abs(got - want * args[1]) < 1e-6
                    or abs(got * args[1] - want) < 1e-6 else
                    "each latent frame is (image_size / downsample)² positions × latent_channels numbers; "
                    "each pixel frame is image_size² numbers (one grey channel)")
            return _fail(f"compression{args} = {got}, expected {want}", hint)
    return _ok("right: 4 pixels per latent number for the cpu preset, but 16× fewer positions for the U-Net")


def _watch(pipe) -> list[str]:
    """Make ``pipe`` record the names of the methods called on it (a subclass swapped in); return the record."""
    calls: list[str] = []
    base = type(pipe)

    def recorder(name):
        def method(self, *args, **kwargs):
            calls.append(name)
            return getattr(base, name)(self, *args, **kwargs)
        return method

    names = ("__call__", "encode_condition", "initial_noise", "denoise", "decode")
    pipe.__class__ = type(f"Watched{base.__name__}", (base,), {n: recorder(n) for n in names})
    return calls


@verdict
def check_generate(generate) -> bool:
    """``generate(pipe, labels, seed, steps)`` must equal ``pipe(labels=labels, seed=seed, steps=steps)``."""
    pipe = _tiny_pipeline()
    labels, seed, steps = [2, 5], 4, 3
    want = pipe(labels=labels, seed=seed, steps=steps)
    watched = _watch(pipe)  # records which of the pipeline's methods the answer calls
    got, msg = _call(generate, "generate", pipe, labels, seed, steps)
    if msg:
        print(msg)
        return False
    if "__call__" in watched:
        return _fail("you called the pipeline itself, pipe(...): the exercise is to write the four steps it runs",
                     "cond = pipe.encode_condition(labels); z = pipe.initial_noise(len(labels), generator=g); "
                     "then pipe.denoise and pipe.decode")
    missing = [m for m in ("encode_condition", "initial_noise", "denoise", "decode") if m not in watched]
    if missing:
        return _fail(f"your answer never calls pipe.{missing[0]}", "the four steps: encode_condition, initial_noise, "
                     "denoise, decode")
    if not isinstance(got, torch.Tensor) or got.shape != want.shape:
        shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
        return _fail(f"got {shape}, expected a tensor shaped {tuple(want.shape)}",
                     "end with pipe.decode(z_0): videos (n, 1, f, h, w)")
    if torch.allclose(got, want, atol=1e-5):
        return _ok("your four steps are exactly the pipeline's call")
    g = torch.Generator().manual_seed(seed)
    z = pipe.denoise(pipe.initial_noise(len(labels), g), None, steps=steps, generator=g)
    if torch.allclose(got, pipe.decode(z), atol=1e-5):
        return _fail("you sampled without the labels", "pass cond = pipe.encode_condition(labels) to denoise")
    return _fail("the clips differ from pipe(...)'s",
                 "use ONE generator, torch.Generator().manual_seed(seed), for initial_noise and denoise, "
                 "and pass steps=steps to denoise")


@verdict
def check_guided(guided) -> bool:
    """``guided(out_cond, out_uncond, scale)`` = out_uncond + scale · (out_cond − out_uncond)."""
    g = torch.Generator().manual_seed(0)
    c, u = torch.randn(2, 4, 3, generator=g), torch.randn(2, 4, 3, generator=g)
    for scale in (0.0, 1.0, 3.0):
        got, msg = _call(guided, "guided", c, u, scale)
        if msg:
            print(msg)
            return False
        want = u + scale * (c - u)
        if not isinstance(got, torch.Tensor) or got.shape != want.shape or not torch.allclose(got, want, atol=1e-6):
            if isinstance(got, torch.Tensor) and got.shape == want.shape and torch.allclose(got, c + scale * (u - c)):
                return _fail("conditional and unconditional are swapped",
                             "start from the unconditional prediction and move towards the conditional one")
            return _fail(f"wrong result at scale {scale}",
                         "Ho & Salimans 2022, eq. 6: out_uncond + scale * (out_cond - out_uncond); scale 1 must "
                         "give out_cond, scale 0 out_uncond")
    return _ok("guided matches sampling.guided_prediction's formula")
