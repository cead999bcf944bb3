"""Given frames at sampling time: predict the rest of a clip, and roll a clip out far beyond its length.

A model trained on clips of f frames can still make a video of 128 frames and more, by sliding its window:

    window 1   [g g g · · · · ·]   the k₀ frames you give (g), the rest generated (·)
    window 2         [c c · · · · · ·]   the last k generated frames become the next window's given ones (c)
    window 3                 [c c · · · · · ·]   ... until the video is long enough

Each window is one call of ``sampling.sample`` with a mask of given frames (``frames.past_mask``), so every window
costs the same and the video can be as long as you like: the U-Net only ever sees f frames (its ``max_frames``
never limits the length). What can go wrong is that each window trusts frames the model made itself: a small
error in them is copied into the next window, and the next, and can grow ("a perfect 5-second clip can quickly
fall apart into a jumbled mess over 30 seconds"). Two knobs here fight that:

* ``context`` (k): how many frames each window is given. More frames say more about the motion; fewer leave
  more room to drift.
* ``noise_level``: the given frames are noised a little before the model reads them (noise augmentation,
  GameNGen, Valevski et al. 2024). A model trained so (``FramesConfig.noise_aug``) learns not to copy the exact
  values of its context, only what it shows, so its own small errors are not copied on.

and ``method`` chooses how the given frames reach the model: ``"channels"`` (the model was trained with them,
``conditioning.ContextFrames``) or ``"replacement"`` (through the noise, ``sampling.replace_known``; any model).

Everything here works on latents ``(b, c_z, f, h, w)``; ``pipeline.LatentVideoPipeline.predict`` and ``.rollout``
encode the frames you give and decode the result.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from .conditioning import Conditioning, ContextFrames
from .frames import check_mask, past_mask, paste_given
from .sampling import sample

METHODS = ("channels", "replacement")


def window_starts(length: int, num_frames: int, first: int, context: int) -> list[int]:
    """Where each window starts, for a video of ``length`` frames made by windows of ``num_frames``, the first one
    given ``first`` frames and every later one the last ``context`` frames made so far.

    ``window_starts(20, 8, 2, 2)`` = ``[0, 6, 12]``: frames 0–7, then 6–13, then 12–19 (each window adds 6).
    """
    if not 1 <= context < num_frames:
        raise ValueError(f"each window of {num_frames} frames must be given 1 to {num_frames - 1} frames (context); "
                         f"got context={context}")
    if not 1 <= first < num_frames:
        raise ValueError(f"the first window can be given 1 to {num_frames - 1} frames; got {first} first frames")
    if length < num_frames:
        raise ValueError(f"a rollout makes at least one window of {num_frames} frames; asked for length={length}. "
                         f"For a clip of {num_frames} frames or fewer, use predict")
    starts, made = [0], num_frames
    while made < length:
        starts.append(made - context)
        made = starts[-1] + num_frames
    return starts


def _check_method(method: str, conditioning: Conditioning) -> ContextFrames | None:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}")
    if method == "replacement":
        return None
    try:
        kind = conditioning.kind("frames")
    except KeyError:
        raise ValueError("this model was not trained with given frames (its conditioning has no 'frames'), so "
                         "method='channels' cannot give it any; use method='replacement' (on the command line: "
                         "--method replacement; any model), or a frames model such as the cpu-frames preset") from None
    return kind


@torch.no_grad()
def predict(model: nn.Module, schedule, latents: Tensor, mask, conditioning: Conditioning, cond: dict | None = None,
            method: str = "channels", noise_level: float = 0.0, generator: torch.Generator | None = None,
            **sample_kwargs) -> Tensor:
    """One clip's missing frames: ``latents (b, c_z, f, h, w)`` (read only where ``mask`` is True), ``mask`` ``(f,)``
    or ``(b, f)`` (True = given) → the whole clip ``(b, c_z, f, h, w)``, the given frames put back unchanged.

    ``cond``: the other conditions (e.g. ``{"labels": ...}``); ``sample_kwargs`` go to ``sampling.sample``
    (sampler, steps, guidance_scale, prediction). The starting noise comes from ``generator``.
    """
    b, _, f = latents.shape[:3]
    mask = check_mask(mask, b, f)  # (b, f)
    kind = _check_method(method, conditioning)
    cond = dict(cond or {})
    known = None
    if kind is not None:  # through the input channels: what the model was trained with
        cond.update(kind.given(latents, mask, noise_level, generator))
    else:  # through the noise: any model (Ho et al. 2022)
        known = (latents, mask)
    z = sample(model, schedule, tuple(latents.shape), cond or None, generator=generator, known=known,
               conditioning=conditioning, **sample_kwargs)  # (b, c_z, f, h, w)
    return paste_given(z, latents, mask)


@torch.no_grad()
def rollout(model: nn.Module, schedule, first: Tensor, length: int, conditioning: Conditioning,
            cond: dict | None = None, num_frames: int | None = None, context: int = 2, method: str = "channels",
            noise_level: float = 0.0, generator: torch.Generator | None = None, progress: bool = False,
            **sample_kwargs) -> Tensor:
    """A video of ``length`` frames from its first frames ``first (b, c_z, k₀, h, w)``, by windows of
    ``num_frames`` (default: the model's training clips, ``model.cfg``'s ``max_frames`` is not a limit), each
    given the last ``context`` frames made so far (``window_starts``). Returns ``(b, c_z, length, h, w)``, the
    first k₀ frames unchanged.
    """
    b, c, k0, h, w = first.shape
    if num_frames is None:
        raise ValueError("rollout needs num_frames, the clip length the model was trained on (e.g. 8 for cpu-frames)")
    starts = window_starts(length, num_frames, k0, context)
    video = first.new_zeros(b, c, starts[-1] + num_frames, h, w)  # (b, c_z, L', h, w), L' ≥ length
    video[:, :, :k0] = first
    made = k0
    for start in (tqdm(starts, desc="rollout windows", leave=False) if progress else starts):
        given = made - start  # k₀ for the first window, then ``context``
        window = video[:, :, start:start + num_frames]  # (b, c_z, f, h, w): given frames, then zeros
        out = predict(model, schedule, window, past_mask(num_frames, given), conditioning, cond, method,
                      noise_level, generator, **sample_kwargs)  # (b, c_z, f, h, w)
        video[:, :, start + given:start + num_frames] = out[:, :, given:]
        made = start + num_frames
    return video[:, :, :length]

