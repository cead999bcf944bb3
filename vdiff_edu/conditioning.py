"""Every kind of condition in one place: what to draw (a digit label now; a caption, given frames, the structure
of an input video next), and everything the rest of the toolkit needs to know about it.

A **condition kind** says, for one kind of condition:

    name        the key it is stored under, in a batch and in the latent cache (e.g. "labels")
    route       how it enters the U-Net: "embedding" (added to the timestep embedding, FiLM in every block),
                "cross_attention" (context tokens every position reads) or "channels" (concatenated to x)
    unet_keys   the entries of the U-Net's ``cond`` dict it fills (``UNet3D.COND_KEYS``)
    drop_prob   how often training replaces it by its null value, so that classifier-free guidance
                (Ho & Salimans 2022) can compare "with it" and "without it"; 0 = always given, never guided
    from_batch  a batch (collated dataset items, or rows of the latent cache) → its U-Net entries
    null        its "no condition" value, shaped for a batch

and a ``Conditioning`` is the ordered set of kinds one model is trained with. The Trainer, the samplers, the
pipeline and the latent cache use only this module, so a new kind plugs in by being defined here (or in a
notebook, or a test) and passed in, without editing any of them:

    conditioning = Conditioning.for_unet(unet.cfg, drop_prob=0.1)    # DigitLabels for a label U-Net
    cond = conditioning.from_batch(batch, device)                    # {"labels": (b, slots)}
    cond = conditioning.drop(cond, conditioning.draw_drops(b, g))    # training: some rows nulled
    null = conditioning.null(cond)                                   # sampling: the unconditional branch

Guidance with one scale per kind is in ``sampling.guided_prediction``.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from .embeddings import check_labels

ROUTES = ("embedding", "cross_attention", "channels")

# ----------------------------------------------------------------------------- one kind of condition


class ConditionKind:
    """The interface every kind follows; subclasses fill in ``from_batch`` and ``null``.

    ``drop`` (classifier-free dropout) is the same for every kind: where ``drop[i]`` is True, row ``i`` of each of
    the kind's entries becomes the null value.
    """

    name: str = ""
    route: str = ""
    unet_keys: tuple[str, ...] = ()

    def __init__(self, drop_prob: float = 0.1):
        if not 0.0 <= drop_prob < 1.0:
            raise ValueError(f"{type(self).__name__}: drop_prob must be in [0, 1) (0 = always given); got {drop_prob}")
        if self.route not in ROUTES:
            raise ValueError(f"{type(self).__name__}.route must be one of {ROUTES}; got {self.route!r}")
        self.drop_prob = drop_prob

    @property
    def guidable(self) -> bool:
        """Trained with dropout, so the model knows "without it" and guidance may push towards it."""
        return self.drop_prob > 0

    def from_batch(self, batch: dict, device: torch.device | str | None = None) -> dict[str, Tensor]:
        raise NotImplementedError

    def null(self, entries: dict[str, Tensor]) -> dict[str, Tensor]:
        raise NotImplementedError

    def drop(self, entries: dict[str, Tensor], drop: Tensor) -> dict[str, Tensor]:
        null = self.null(entries)
        out = {}
        for key, value in entries.items():
            mask = drop.reshape(-1, *([1] * (value.ndim - 1))).to(value.device)  # (b, 1, ...)
            out[key] = torch.where(mask, null[key], value)
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(route={self.route!r}, drop_prob={self.drop_prob:g})"


class DigitLabels(ConditionKind):
    """The digit(s) in a clip: long ``(b, num_slots)`` in ``[0, num_classes]``, where ``num_classes`` is the
    null token ("any digit"). Enters through ``LabelEmbedding``, added to the timestep embedding."""

    name = "labels"
    route = "embedding"
    unet_keys = ("labels",)

    def __init__(self, num_classes: int = 10, num_slots: int = 1, drop_prob: float = 0.1):
        super().__init__(drop_prob)
        self.num_classes, self.num_slots = num_classes, num_slots
        self.null_index = num_classes

    def from_batch(self, batch: dict, device: torch.device | str | None = None) -> dict[str, Tensor]:
        if "labels" not in batch:
            raise KeyError(f"a label-conditioned model needs 'labels' in every batch; the batch has {sorted(batch)}")
        labels = torch.as_tensor(batch["labels"]).long().to(device)  # (b, slots)
        check_labels(labels, self.num_classes, self.num_slots, where="labels")
        return {"labels": labels}

    def null(self, entries: dict[str, Tensor]) -> dict[str, Tensor]:
        return {"labels": torch.full_like(entries["labels"], self.null_index)}  # (b, slots)


# ----------------------------------------------------------------------------- the set a model is trained with


class Conditioning:
    """The ordered kinds of condition of one model. Order matters only for guidance with several scales
    (``sampling.guided_prediction``), which adds one kind at a time in this order."""

    def __init__(self, kinds: Sequence[ConditionKind] = ()):
        self.kinds = list(kinds)
        names = [k.name for k in self.kinds]
        keys = [key for k in self.kinds for key in k.unet_keys]
        if len(set(names)) != len(names) or len(set(keys)) != len(keys):
            raise ValueError(f"each kind of condition may appear once and fill its own U-Net entries; got {self.kinds}")

    @classmethod
    def for_unet(cls, unet_cfg, drop_prob: float = 0.1) -> "Conditioning":
        """The conditions a ``UNetConfig`` was built for that need nothing but the config: digit labels when
        ``num_label_slots > 0``. (Captions, frames and structure maps come with their own encoders and are
        added by the recipes that train them.)"""
        kinds = []
        if unet_cfg.num_label_slots > 0:
            kinds.append(DigitLabels(unet_cfg.num_classes, unet_cfg.num_label_slots, drop_prob))
        return cls(kinds)

    def __repr__(self) -> str:
        return f"Conditioning({self.kinds})"

    def __bool__(self) -> bool:
        return bool(self.kinds)

    @property
    def names(self) -> list[str]:
        return [k.name for k in self.kinds]

    def kind(self, name: str) -> ConditionKind:
        for k in self.kinds:
            if k.name == name:
                return k
        raise KeyError(f"no condition {name!r}; this model is conditioned on {self.names or 'nothing'}")

    # ------------------------------------------------------------ batches

    def from_batch(self, batch: dict, device: torch.device | str | None = None) -> dict[str, Tensor] | None:
        """A batch (dataset items collated by ``train.fetch_batch``, or rows of the latent cache) → the U-Net's
        ``cond`` dict; None for an unconditional model."""
        if not self.kinds:
            return None
        cond: dict[str, Tensor] = {}
        for k in self.kinds:
            cond.update(k.from_batch(batch, device))
        return cond

    def cache_entries(self, batch: dict) -> dict[str, Tensor]:
        """What the latent cache stores beside the latents for these clips: each kind's entries, on the CPU."""
        return {key: value.cpu() for key, value in (self.from_batch(batch) or {}).items()}

    # ------------------------------------------------------------ dropout and the null condition

    def draw_drops(self, batch_size: int, generator: torch.Generator | None = None,
                   device: torch.device | str | None = None, rows: slice = slice(None)) -> dict[str, Tensor]:
        """One dropout mask ``(b,)`` per kind, drawn for the whole (global) batch of ``batch_size`` in the kinds'
        order, then cut to ``rows`` (this process's share): every process draws the same numbers."""
        drops = {}
        for k in self.kinds:
            u = torch.rand((batch_size,), generator=generator, device=device)[rows]  # (b,)
            drops[k.name] = u < k.drop_prob
        return drops

    def drop(self, cond: dict | None, drops: dict[str, Tensor]) -> dict | None:
        """Classifier-free dropout: each kind's rows where its mask is True take its null value."""
        if cond is None:
            return None
        out = dict(cond)
        for k in self.kinds:
            if k.name in drops:
                out.update(k.drop({key: cond[key] for key in k.unet_keys}, drops[k.name]))
        return out

    def null(self, cond: dict | None, names: Sequence[str] | None = None) -> dict | None:
        """``cond`` with the kinds ``names`` (default: every guidable kind) set to their null value; the others
        (e.g. given frames, which are never dropped) are kept."""
        if cond is None:
            return None
        names = [k.name for k in self.kinds if k.guidable] if names is None else list(names)
        out = dict(cond)
        for name in names:
            k = self.kind(name)
            out.update(k.null({key: cond[key] for key in k.unet_keys}))
        return out


def cat_conditions(conds: Sequence[dict | None]) -> dict | None:
    """Stack condition dicts along the batch axis (guidance runs every branch in one forward pass)."""
    if conds[0] is None:
        return None
    keys = set(conds[0])
    for c in conds[1:]:
        if set(c) != keys:
            raise ValueError(f"condition dicts to stack must have the same keys; got {sorted(keys)} and {sorted(c)}")
    return {key: torch.cat([c[key] for c in conds]) for key in conds[0]}
