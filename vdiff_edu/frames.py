"""Given frames: which frames of a clip are known, and how a model is told.

One model can predict the future (the first frames given), interpolate (the first and the last given) and generate
(nothing given) if, during training, it is shown clips with a random choice of frames given (MCVD, Voleti et al.
2022, "Masked Conditional Video Diffusion"). Everything about *which* frames are given lives here:

    mask     bool ``(b, f)``: True where frame i of clip b is given. ``past_mask(8, 2)`` = ``[T T F F F F F F]``
    tasks    what training draws for each clip (``draw_masks``):
               "past"    the first k frames, 1 ≤ k ≤ max_given          → prediction
               "future"  the last k frames                              → prediction backwards in time
               "both"    the first k₁ and the last k₂, k₁ + k₂ ≤ max_given → interpolation
               "none"    no frame                                       → unconditional generation
    channels ``frames_channels``: per frame, its clean latents if given (zeros if not), the latents of the nearest
             given frame, and the mask, ``(b, 2·c_z + 1, f, h, w)``, concatenated to the noisy latents at the U-Net's
             input (``UNetConfig.cond_channels = 2·c_z + 1``; the U-Net reads zeros = "nothing given" when no frames
             come)

How it enters training and guidance is ``conditioning.ContextFrames``; long videos by a sliding window are in
``rollout.py``; the other way of conditioning, through the noise ("replacement", Ho et al. 2022), is
``sampling.replace_known``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

TASKS = ("past", "future", "both", "none")


# ----------------------------------------------------------------------------- the recipe's choices


@dataclass
class FramesConfig:
    """How a frames-conditioned model is trained (``ExperimentConfig.frames``)."""

    task_probs: tuple[float, float, float, float] = (0.4, 0.1, 0.3, 0.2)  # how often each of TASKS is drawn:
                                                                           # past, future, both, none
    max_given: int | None = None  # at most this many frames given in a training clip (None: f − 1)
    noise_aug: float = 0.0  # given frames get Gaussian noise of std U(0, noise_aug) in training, so that a model
                            # rolling forward on its own slightly wrong frames has seen imperfect context before
                            # (noise augmentation, GameNGen, Valevski et al. 2024); 0 = clean context only

    def __post_init__(self):
        self.task_probs = tuple(float(p) for p in self.task_probs)
        if len(self.task_probs) != len(TASKS) or min(self.task_probs) < 0 or abs(sum(self.task_probs) - 1) > 1e-6:
            raise ValueError(f"FramesConfig.task_probs gives the probabilities of {TASKS}: four numbers >= 0 that "
                             f"sum to 1; got {self.task_probs}")
        if self.max_given is not None and self.max_given < 1:
            raise ValueError(f"FramesConfig.max_given must be >= 1 or None (f − 1); got {self.max_given}")
        if self.noise_aug < 0:
            raise ValueError(f"FramesConfig.noise_aug is a noise std, >= 0 (0 = off); got {self.noise_aug}")


# ----------------------------------------------------------------------------- masks, by hand


def past_mask(num_frames: int, k: int) -> Tensor:
    """The first ``k`` of ``num_frames`` frames given: prediction. ``past_mask(5, 2)`` = ``[T, T, F, F, F]``."""
    _check_given(num_frames, k)
    return torch.arange(num_frames) < k  # (f,)


def future_mask(num_frames: int, k: int) -> Tensor:
    """The last ``k`` frames given. ``future_mask(5, 2)`` = ``[F, F, F, T, T]``."""
    _check_given(num_frames, k)
    return torch.arange(num_frames) >= num_frames - k  # (f,)


def interpolation_mask(num_frames: int, first: int = 1, last: int = 1) -> Tensor:
    """The first ``first`` and the last ``last`` frames given: fill in between. ``interpolation_mask(5)`` =
    ``[T, F, F, F, T]``."""
    _check_given(num_frames, first + last)
    return past_mask(num_frames, first) | future_mask(num_frames, last)  # (f,)


def _check_given(num_frames: int, k: int) -> None:
    if not 0 <= k < num_frames:
        raise ValueError(f"a clip of {num_frames} frames can be given 0 to {num_frames - 1} of them (at least one is "
                         f"left to generate); asked for {k}. Give fewer frames, or generate longer clips with "
                         f"rollout.rollout")


def check_mask(mask, batch_size: int, num_frames: int) -> Tensor:
    """A mask ``(f,)`` (the same for every clip) or ``(b, f)`` → bool ``(b, f)``, checked: the right length, and
    at least one frame left to generate in every clip."""
    mask = torch.as_tensor(mask).bool().cpu()
    if mask.ndim == 1:
        mask = mask.expand(batch_size, -1)  # (b, f)
    if mask.ndim != 2 or mask.shape != (batch_size, num_frames):
        raise ValueError(f"the mask of given frames must have shape ({num_frames},) or ({batch_size}, {num_frames}) "
                         f"(True = given); got {tuple(mask.shape)}")
    full = mask.all(dim=1)
    if full.any():
        row = int(full.nonzero()[0])
        raise ValueError(f"clip {row}: all {num_frames} frames are given, so nothing is left to generate; give at most "
                         f"{num_frames - 1}")
    return mask


def given_positions(mask: Tensor) -> list[int]:
    """The indices of the given frames of a ``(f,)`` mask, for messages and plot titles."""
    return [int(i) for i in torch.as_tensor(mask).nonzero().flatten()]


# ----------------------------------------------------------------------------- masks, drawn for training


def draw_masks(batch_size: int, num_frames: int, cfg: FramesConfig, generator: torch.Generator | None = None,
               device: torch.device | str | None = None) -> Tensor:
    """One training mask per clip, bool ``(b, f)``: a task drawn with ``cfg.task_probs``, then how many frames.

    Four draws per clip, always (whatever the task), so the random stream does not depend on the tasks drawn:
    u (the task), k (past / future: how many), and k₁, k₂ (both: how many at each end, k₁ + k₂ ≤ max_given).
    A clip of one frame has nothing to give (every task is "none").
    """
    f, b = num_frames, batch_size
    max_given = min(cfg.max_given or f - 1, f - 1)
    u = torch.rand((b, 4), generator=generator, device=device)  # (b, 4): task, k, k₁, k₂
    if max_given < 1:
        return torch.zeros(b, f, dtype=torch.bool, device=u.device)
    cum = torch.tensor(cfg.task_probs, device=u.device).cumsum(0)  # (4,)
    task = torch.searchsorted(cum, u[:, 0].contiguous(), right=True).clamp(max=len(TASKS) - 1)  # (b,) index in TASKS
    k = 1 + (u[:, 1] * max_given).long().clamp(max=max_given - 1)  # (b,) in [1, max_given]
    both_ok = max_given >= 2
    k1 = 1 + (u[:, 2] * (max_given - 1)).long().clamp(max=max(max_given - 2, 0))  # (b,) in [1, max_given − 1]
    k2 = 1 + (u[:, 3] * (max_given - k1)).long()  # (b,) in [1, max_given − k₁]
    pos = torch.arange(f, device=u.device)[None]  # (1, f)
    past = pos < k[:, None]  # (b, f)
    future = pos >= f - k[:, None]
    both = (pos < k1[:, None]) | (pos >= f - k2[:, None])
    if not both_ok:
        both = past  # two frames cannot be given: "both" falls back to "past"
    choices = torch.stack([past, future, both, torch.zeros_like(past)])  # (4, b, f), in the order of TASKS
    return choices[task, torch.arange(b, device=u.device)]  # (b, f)


# ----------------------------------------------------------------------------- what the U-Net reads


def nearest_given(mask: Tensor) -> Tensor:
    """For every frame, the index of the nearest given frame (the earlier one on a tie), ``(b, f)`` long; 0 in a
    clip with no given frame (its channels are zeros anyway). ``nearest_given([[F, T, F, F, T]])`` = ``[[1, 1, 1,
    4, 4]]``."""
    b, f = mask.shape
    pos = torch.arange(f, device=mask.device)
    distance = (pos[:, None] - pos[None, :]).abs().float()  # (f, f): |i − j|
    distance = torch.where(mask[:, None, :], distance, torch.full_like(distance, float("inf")))  # (b, f, f)
    return distance.argmin(dim=-1)  # (b, f): the first j of least distance


def cond_channels_for(latent_channels: int) -> int:
    """How many input channels ``frames_channels`` adds for latents of ``latent_channels``: 2·c_z + 1."""
    return 2 * latent_channels + 1


def frames_channels(latents: Tensor, mask: Tensor) -> Tensor:
    """The U-Net's ``frames`` input, ``(b, 2·c_z + 1, f, h, w)``, three parts per frame i:

        the frame's own latents where it is given, zeros elsewhere          (c_z channels)
        the latents of the nearest given frame (``nearest_given``)          (c_z channels)
        the mask: 1 where frame i is given                                  (1 channel)

    The second part puts a given frame beside every frame to make, at the same place in the image, so the
    first convolution can already see which digit it is and where it was: the network need not carry that across
    frames itself through its temporal layers (which a briefly trained model does poorly). A clip with no given
    frame gets zeros, what the U-Net reads when nothing is given. ``latents (b, c_z, f, h, w)``, ``mask (b, f)``.
    """
    b, c, f, h, w = latents.shape
    mask = mask.to(latents.device)
    m = mask.to(latents.dtype).reshape(b, 1, f, 1, 1)  # (b, 1, f, 1, 1)
    index = nearest_given(mask).reshape(b, 1, f, 1, 1).expand(b, c, f, h, w)  # (b, c_z, f, h, w)
    any_given = mask.any(dim=1).to(latents.dtype).reshape(b, 1, 1, 1, 1)  # (b, 1, 1, 1, 1)
    nearest = latents.gather(2, index) * any_given  # (b, c_z, f, h, w)
    return torch.cat([latents * m, nearest, m.expand(b, 1, f, h, w)], dim=1)  # (b, 2·c_z + 1, f, h, w)


def paste_given(video: Tensor, given: Tensor, mask: Tensor) -> Tensor:
    """``video (b, c, f, h, w)`` with the given frames put back exactly: ``given`` where ``mask (b, f)``."""
    b, _, f = video.shape[:3]
    m = mask.to(video.device).reshape(b, 1, f, 1, 1)  # (b, 1, f, 1, 1)
    return torch.where(m, given.to(video.device, video.dtype), video)  # (b, c, f, h, w)
