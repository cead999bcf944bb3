"""Telling the network *when* it is (the diffusion timestep) and *what* to draw (the digit labels).

Both become one vector per clip, ``emb`` of shape ``(b, emb_dim)``, that every residual block reads to scale
and shift its features (FiLM, see ``blocks.py``):

    t (b,)              --timestep_embedding-->  (b, dim)  --MLP-->  (b, emb_dim) --+
    labels (b, slots)   --LabelEmbedding---------------------------> (b, emb_dim) --+--> emb (b, emb_dim)

Notebook 03 builds both inline and checks them against this module.
"""

from __future__ import annotations

import math

import torch
from torch import nn

# ----------------------------------------------------------------------------- sinusoidal timestep embedding


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal features of the timestep, ``(b,) -> (b, dim)``.

    Transformer positional encoding (Vaswani et al. 2017, §3.5), used for the timestep by DDPM (Ho et al. 2020):
        freq_i = max_period^(-i / (dim/2)),  i = 0 .. dim/2 - 1
        emb(t) = [cos(t · freq_0), ..., cos(t · freq_{dim/2-1}), sin(t · freq_0), ..., sin(t · freq_{dim/2-1})]
    Nearby timesteps get similar vectors; the low frequencies tell far-apart timesteps apart. ``t`` may be
    fractional (continuous-time samplers call the network between integer steps).
    """
    if dim % 2 != 0:
        raise ValueError(f"timestep_embedding needs an even dim (half cosines, half sines); got dim={dim}")
    if t.ndim != 1:
        raise ValueError(f"timestep_embedding expects t of shape (b,), got {tuple(t.shape)}")
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)  # (dim/2,)
    angles = t.float()[:, None] * freqs[None, :]  # (b, dim/2)
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)  # (b, dim)


class TimestepEmbedding(nn.Module):
    """Sinusoidal features → Linear → SiLU → Linear: ``t (b,) -> (b, emb_dim)``."""

    def __init__(self, dim: int, emb_dim: int):
        super().__init__()
        self.dim = dim
        self.mlp = nn.Sequential(nn.Linear(dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        features = timestep_embedding(t, self.dim).to(self.mlp[0].weight.dtype)  # (b, dim), float32 → model dtype
        return self.mlp(features)  # (b, emb_dim)


# ----------------------------------------------------------------------------- label embedding with a null token


def check_labels(labels, num_slots: int, num_classes: int, batch_size: int | None = None,
                 name: str = "labels") -> None:
    """Refuse anything but int64 class indices ``(b, num_slots)`` in [0, num_classes], ``num_classes`` being the
    null token ("no label"), with a sentence that says what to change. ``batch_size`` also checks b."""
    b = "b" if batch_size is None else batch_size
    if (not isinstance(labels, torch.Tensor) or labels.ndim != 2 or labels.shape[1] != num_slots
            or (batch_size is not None and labels.shape[0] != batch_size)):
        shape = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise ValueError(f"{name} must have shape (b, num_label_slots) = ({b}, {num_slots}), got {shape}; "
                         f"for one digit per clip use labels[:, None]")
    if labels.dtype != torch.long:
        raise TypeError(f"{name} must be int64 (long) class indices, got {labels.dtype}; use labels.long()")
    if labels.numel() and (labels.min() < 0 or labels.max() > num_classes):
        raise ValueError(
            f"{name} must lie in [0, {num_classes}]: classes 0..{num_classes - 1}, and {num_classes} for 'no label' "
            f"(the null token of classifier-free guidance); got values from {labels.min().item()} to "
            f"{labels.max().item()}"
        )


class LabelEmbedding(nn.Module):
    """One learned vector per (digit slot, class), summed over the slots: ``labels (b, num_slots) -> (b, dim)``.

    Each slot (first digit, second digit, ...) has its own table of ``num_classes + 1`` rows, so "a 3 then a 7"
    differs from "a 7 then a 3". Row ``num_classes`` is the learned **null token**: classifier-free guidance
    (Ho & Salimans 2022) trains with some labels replaced by it, and at sampling time compares the prediction
    with the labels to the prediction with every label set to ``null_index``.
    """

    def __init__(self, num_classes: int, num_slots: int, dim: int):
        super().__init__()
        if num_classes < 1 or num_slots < 1:
            raise ValueError(f"LabelEmbedding needs num_classes >= 1 and num_slots >= 1; got {num_classes}, {num_slots}")
        self.num_classes = num_classes
        self.num_slots = num_slots
        self.null_index = num_classes  # the extra row: "no label"
        # all slots' tables stacked into one: row (slot · (num_classes + 1) + label)
        self.table = nn.Embedding(num_slots * (num_classes + 1), dim)
        nn.init.normal_(self.table.weight, std=0.02)
        self.register_buffer("offsets", torch.arange(num_slots) * (num_classes + 1), persistent=False)  # (slots,)

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        check_labels(labels, self.num_slots, self.num_classes)
        return self.table(labels + self.offsets).sum(dim=1)  # (b, slots, dim) -> (b, dim)

    def null_labels(self, batch_size: int, device: torch.device | str | None = None) -> torch.Tensor:
        """Labels that say "no label" in every slot: the unconditional branch of guidance, ``(b, num_slots)``."""
        return torch.full((batch_size, self.num_slots), self.null_index, dtype=torch.long, device=device)
