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
from einops import rearrange
from torch import Tensor, nn

from .embeddings import check_labels
from .frames import FramesConfig, check_mask, draw_masks, frames_channels
from .structure import (StructureConfig, finest_level, from_channels, maps_of_silhouettes, silhouette,
                        structure_maps)
from .utils import randn_like

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

    def draw(self, batch_size: int, generator: torch.Generator | None = None, device: torch.device | str | None = None,
             shape: tuple[int, ...] | None = None):
        """The random choice training makes for this kind, for a whole (global) batch: by default the dropout mask
        ``(b,)``, True = replaced by the null value. (``ContextFrames`` draws which frames are given instead.)
        ``shape`` is the batch's clean clips ``(b, c, f, h, w)``, for kinds whose draw depends on it."""
        return torch.rand((batch_size,), generator=generator, device=device) < self.drop_prob  # (b,)

    @property
    def guidable(self) -> bool:
        """Trained with dropout, so the model knows "without it" and guidance may push towards it."""
        return self.drop_prob > 0

    def from_batch(self, batch: dict, device: torch.device | str | None = None) -> dict[str, Tensor]:
        raise NotImplementedError

    def null(self, entries: dict[str, Tensor]) -> dict[str, Tensor]:
        raise NotImplementedError

    def cache_entries(self, batch: dict) -> dict[str, Tensor]:
        """What the latent cache keeps of this condition for these clips, on the CPU: by default its U-Net entries;
        a kind whose encoder goes on training keeps its inputs instead (``CaptionTokens`` keeps token ids)."""
        return {key: value.cpu() for key, value in self.from_batch(batch).items()}

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

    def without(self, *names: str) -> "Conditioning":
        """The same kinds but ``names``: e.g. a frames model's label part, ``conditioning.without("frames")``."""
        return Conditioning([k for k in self.kinds if k.name not in names])

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
        """What the latent cache stores beside the latents for these clips: what each kind keeps, on the CPU."""
        entries: dict[str, Tensor] = {}
        for k in self.kinds:
            entries.update(k.cache_entries(batch))
        return entries

    # ------------------------------------------------------------ dropout and the null condition

    def draw_drops(self, batch_size: int, generator: torch.Generator | None = None,
                   device: torch.device | str | None = None, rows: slice = slice(None),
                   shape: tuple[int, ...] | None = None) -> dict:
        """Each kind's random choice (``ConditionKind.draw``: a dropout mask ``(b,)``, or for given frames which
        ones), drawn for the whole (global) batch of ``batch_size`` in the kinds' order, then cut to ``rows`` (this
        process's share): every process draws the same numbers. ``shape``: the global batch's clips."""
        drops = {}
        for k in self.kinds:
            drawn = k.draw(batch_size, generator, device, shape)
            drops[k.name] = ({key: v[rows] for key, v in drawn.items()} if isinstance(drawn, dict) else drawn[rows])
        return drops

    def drop(self, cond: dict | None, drops: dict) -> dict | None:
        """Classifier-free dropout: each kind's rows where its mask is True take its null value (given frames: the
        frames not drawn are hidden, ``ContextFrames.drop``)."""
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


def per_frame(entry: Tensor, num_frames: int) -> Tensor:
    """One clip's condition → the same for each of its ``f`` frames as a one-frame clip: a per-frame entry
    ``(b, c, f, ...)`` (given frames, structure maps) is cut frame by frame, ``(b·f, c, 1, ...)``; any other
    (labels, caption ids, context tokens) is repeated, ``(b·f, ...)``. Row ``i·f + k`` is frame ``k`` of clip ``i``."""
    if entry.ndim == 5 and entry.shape[2] == num_frames:
        return rearrange(entry, "b c f h w -> (b f) c 1 h w")  # (b·f, c, 1, h, w)
    return entry.repeat_interleave(num_frames, dim=0)  # (b·f, ...)


def as_single_frames(x: Tensor, cond: dict | None) -> tuple[Tensor, dict | None]:
    """Clips ``x (b, c, f, h, w)`` and their conditions → ``b·f`` one-frame clips ``(b·f, c, 1, h, w)`` and theirs
    (``per_frame``): what the U-Net sees when it is trained, or asked, as an image model."""
    f = x.shape[2]
    frames = rearrange(x, "b c f h w -> (b f) c 1 h w")  # (b·f, c, 1, h, w)
    return frames, (None if cond is None else {key: per_frame(value, f) for key, value in cond.items()})


# ----------------------------------------------------------------------------- given frames (frames.py), as channels


class ContextFrames(ConditionKind):
    """Given frames: the clean latents of some frames of the clip, and a mask saying which, concatenated to the noisy
    latents as ``2·c_z + 1`` more input channels (``frames.frames_channels``; MCVD, Voleti et al. 2022). The U-Net
    must be built with ``UNetConfig(cond_channels=frames.cond_channels_for(c_z))``.

    Training: ``from_batch`` takes the clean clip itself (``batch[data_key]``, the latents being denoised) as if
    every frame were given; ``draw`` picks, per clip, which frames stay given (``frames.draw_masks``: past, future,
    both ends, or none — "none" is the unconditional model, so this kind is never dropped for guidance), and noise
    for noise augmentation; ``drop`` hides the others. Sampling: ``given(latents, mask)``.
    """

    name = "frames"
    route = "channels"
    unet_keys = ("frames",)

    def __init__(self, latent_channels: int, cfg: FramesConfig | None = None, data_key: str = "latents"):
        super().__init__(drop_prob=0.0)  # not guided: "nothing given" is one of the training tasks
        self.latent_channels, self.cfg, self.data_key = latent_channels, cfg or FramesConfig(), data_key

    def __repr__(self) -> str:
        return f"ContextFrames(task_probs={self.cfg.task_probs}, noise_aug={self.cfg.noise_aug:g})"

    def given(self, latents: Tensor, mask, noise_level: float = 0.0,
              generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """For sampling: ``latents (b, c_z, f, h, w)`` (only the frames where ``mask`` is True are read; the others may
        be anything) and ``mask`` (``(f,)`` or ``(b, f)``, True = given) → ``{"frames": (b, 2·c_z + 1, f, h, w)}``.
        ``noise_level`` > 0 adds Gaussian noise of that std to the given latents (noise augmentation at sampling)."""
        b, c, f = latents.shape[:3]
        if c != self.latent_channels:
            raise ValueError(f"given frames must be latents with {self.latent_channels} channels (b, c_z, f, h, w); "
                             f"got shape {tuple(latents.shape)}: encode pixel frames with the autoencoder first")
        mask = check_mask(mask, b, f).to(latents.device)  # (b, f)
        if noise_level > 0:
            latents = latents + noise_level * randn_like(latents, generator)
        return {"frames": frames_channels(latents, mask)}

    def from_batch(self, batch: dict, device: torch.device | str | None = None) -> dict[str, Tensor]:
        if self.data_key not in batch:
            raise KeyError(f"a frames-conditioned model reads the clean clips in batch[{self.data_key!r}]; the batch "
                           f"has {sorted(batch)}")
        latents = torch.as_tensor(batch[self.data_key]).to(device, torch.float32)  # (b, c_z, f, h, w)
        every = torch.ones(latents.shape[0], latents.shape[2], dtype=torch.bool, device=latents.device)  # (b, f)
        return {"frames": frames_channels(latents, every)}  # every frame given, until ``drop`` hides some

    def cache_entries(self, batch: dict) -> dict[str, Tensor]:
        return {}  # the given frames are the cached latents themselves

    def draw(self, batch_size: int, generator: torch.Generator | None = None, device: torch.device | str | None = None,
             shape: tuple[int, ...] | None = None) -> dict[str, Tensor]:
        """Which frames each clip keeps, ``mask (b, f)``, and the noise augmentation: a std per clip ``level (b,)``
        ~ U(0, noise_aug) and the noise ``(b, c_z, f, h, w)`` (drawn only when noise_aug > 0)."""
        if shape is None:
            raise ValueError("ContextFrames.draw needs the batch's shape (b, c, f, h, w): which frames to give "
                             "depends on f")
        mask = draw_masks(batch_size, shape[2], self.cfg, generator, device)  # (b, f)
        drawn = {"mask": mask}
        if self.cfg.noise_aug > 0:
            drawn["level"] = self.cfg.noise_aug * torch.rand((batch_size,), generator=generator, device=device)  # (b,)
            drawn["noise"] = torch.randn((batch_size, self.latent_channels, *shape[2:]), generator=generator,
                                         device=device)  # (b, c_z, f, h, w)
        return drawn

    def drop(self, entries: dict[str, Tensor], drop: dict[str, Tensor]) -> dict[str, Tensor]:
        """Keep the frames ``drop["mask"]`` says (the others become zeros, their mask 0), noised if drawn so."""
        latents = entries["frames"][:, : self.latent_channels]  # (b, c_z, f, h, w): every frame
        if "noise" in drop:
            level = drop["level"].to(latents.device).reshape(-1, 1, 1, 1, 1)  # (b, 1, 1, 1, 1)
            latents = latents + level * drop["noise"].to(latents.device)
        return {"frames": frames_channels(latents, drop["mask"])}

    def null(self, entries: dict[str, Tensor]) -> dict[str, Tensor]:
        return {"frames": torch.zeros_like(entries["frames"])}  # nothing given


# ----------------------------------------------------------------------------- an input video's structure (structure.py)


class StructureMaps(ConditionKind):
    """The structure of an input video: its silhouette pooled at a level of detail, folded into ``d² + 1`` channels
    concatenated to the noisy latents (``structure.structure_maps``; Gen-1, Esser et al. 2023). The U-Net must be
    built with ``UNetConfig(structure_channels=structure.structure_channels_for(d))``.

    Training: the latent cache keeps each clip's silhouette (``structure_ink``, uint8 ``(n, 1, f, H, W)``);
    ``from_batch`` makes the finest maps from it (or from pixel clips, ``batch["video"]``); ``draw`` picks a level
    per clip (0 = no structure, with ``cfg.drop_prob``, so guidance can compare "with it" and "without it");
    ``drop`` pools each clip's maps to its level. Sampling: ``maps(video, level)``.
    """

    name = "structure"
    route = "channels"
    unet_keys = ("structure",)

    def __init__(self, downsample: int, image_size: int, cfg: StructureConfig | None = None):
        self.cfg = cfg or StructureConfig()
        super().__init__(self.cfg.drop_prob)
        self.downsample, self.image_size = downsample, image_size
        self.levels = self.cfg.levels(image_size)  # what training draws besides 0

    def __repr__(self) -> str:
        return f"StructureMaps(levels={self.levels}, drop_prob={self.drop_prob:g})"

    def maps(self, video: Tensor, level, device: torch.device | str | None = None) -> dict[str, Tensor]:
        """For sampling: pixel clips ``(b, 1, f, H, W)`` in [-1, 1] → ``{"structure": (b, d² + 1, f, h, w)}`` at
        ``level`` (an int from 0, no structure, to ``structure.finest_level(H)``, or one per clip)."""
        video = torch.as_tensor(video, dtype=torch.float32)
        if video.ndim != 5 or video.shape[1] != 1 or video.shape[-1] != self.image_size:
            raise ValueError(f"the structure comes from pixel clips (b, 1, f, {self.image_size}, {self.image_size}) "
                             f"in [-1, 1]; got shape {tuple(video.shape)}")
        return {"structure": structure_maps(video.to(device), level, self.downsample, self.cfg.pooling)}

    def _silhouettes(self, batch: dict, device=None) -> Tensor:
        if "structure_ink" in batch:
            return torch.as_tensor(batch["structure_ink"]).to(device, torch.float32)  # (b, 1, f, H, W)
        if "video" in batch:
            return silhouette(torch.as_tensor(batch["video"]).to(device, torch.float32))  # (b, 1, f, H, W)
        raise KeyError(f"a structure-conditioned model reads each clip's silhouette (batch['structure_ink'], which "
                       f"the latent cache keeps) or its pixels (batch['video']); the batch has {sorted(batch)}")

    def from_batch(self, batch: dict, device: torch.device | str | None = None) -> dict[str, Tensor]:
        sil = self._silhouettes(batch, device)
        return {"structure": maps_of_silhouettes(sil, finest_level(sil.shape[-1]), self.downsample, self.cfg.pooling)}

    def cache_entries(self, batch: dict) -> dict[str, Tensor]:
        return {"structure_ink": self._silhouettes(batch).to(torch.uint8).cpu()}  # (n, 1, f, H, W): 1 byte a pixel

    def draw(self, batch_size: int, generator: torch.Generator | None = None, device: torch.device | str | None = None,
             shape: tuple[int, ...] | None = None) -> Tensor:
        """A level per clip ``(b,)``: 0 (no structure) with ``drop_prob``, else uniform over ``self.levels``."""
        none = torch.rand((batch_size,), generator=generator, device=device) < self.drop_prob  # (b,)
        pick = torch.randint(0, len(self.levels), (batch_size,), generator=generator, device=device)  # (b,)
        levels = torch.as_tensor(self.levels, device=pick.device)[pick]  # (b,)
        return torch.where(none, torch.zeros_like(levels), levels)  # (b,)

    def drop(self, entries: dict[str, Tensor], drop: Tensor) -> dict[str, Tensor]:
        """Pool each clip's finest maps to its drawn level (``drop``: the levels, ``(b,)``; a bool mask, as the
        other kinds take, means level 0 where True and the finest level elsewhere)."""
        finest = from_channels(entries["structure"], self.downsample)  # (b, 1, f, H, W): the silhouettes
        if drop.dtype == torch.bool:
            drop = torch.where(drop.cpu(), 0, finest_level(finest.shape[-1]))
        return {"structure": maps_of_silhouettes(finest, drop, self.downsample, self.cfg.pooling)}

    def null(self, entries: dict[str, Tensor]) -> dict[str, Tensor]:
        return {"structure": torch.zeros_like(entries["structure"])}  # level 0: no structure


# ----------------------------------------------------------------------------- captions (text.py), for cross-attention


class CaptionTokens(ConditionKind):
    """A caption, read word by word by the U-Net's cross-attention: the text encoder's token features
    ``context (b, L, width)`` and ``context_mask (b, L)`` (False = padding). ``UNetConfig.context_dim`` must
    equal the encoder's ``width``.

    ``from_batch`` takes either prompt strings, ``batch["caption"]`` (a list, as ``train.fetch_batch`` collates
    a ``MovingMNIST``'s captions), or token ids, ``batch["caption_ids"]`` and ``batch["caption_mask"]`` (b, L)
    (what a latent cache should store, see ``cache_entries``; the ids win when both are there). The null caption
    is the empty prompt, ``<bos> <eos>``: features the encoder computes, never all padding (see ``text.Tokenizer``).

    ``train_encoder`` chooses: False (frozen text encoder) computes the features under ``torch.no_grad()``;
    True keeps the graph, so a loss on the U-Net also trains the encoder (give its parameters to the optimizer).
    """

    name = "caption"
    route = "cross_attention"
    unet_keys = ("context", "context_mask")

    def __init__(self, tokenizer, text_encoder, max_len: int | None = None, train_encoder: bool = False,
                 drop_prob: float = 0.1, on_unknown: str = "raise"):
        super().__init__(drop_prob)
        self.tokenizer, self.text_encoder = tokenizer, text_encoder
        self.max_len = text_encoder.cfg.max_len if max_len is None else max_len
        if self.max_len > text_encoder.cfg.max_len:
            raise ValueError(f"max_len={self.max_len} is longer than the text encoder's "
                             f"{text_encoder.cfg.max_len} positions; use max_len <= {text_encoder.cfg.max_len}")
        self.train_encoder, self.on_unknown = train_encoder, on_unknown

    def __repr__(self) -> str:
        return (f"CaptionTokens(max_len={self.max_len}, train_encoder={self.train_encoder}, "
                f"drop_prob={self.drop_prob:g})")

    def token_ids(self, batch: dict) -> tuple[Tensor, Tensor]:
        """The batch's captions as ``ids (b, L)`` and ``mask (b, L)`` on the CPU."""
        if "caption_ids" in batch:
            if "caption_mask" not in batch:
                raise KeyError("the batch has 'caption_ids' but no 'caption_mask'; store both (cache_entries does)")
            return torch.as_tensor(batch["caption_ids"]).long(), torch.as_tensor(batch["caption_mask"]).bool()
        if "caption" in batch:
            prompts = batch["caption"]
            prompts = [prompts] if isinstance(prompts, str) else list(prompts)
            return self.tokenizer.encode(prompts, self.max_len, on_unknown=self.on_unknown)
        raise KeyError(f"a caption-conditioned model needs 'caption' (a list of prompts) or 'caption_ids' and "
                       f"'caption_mask' in every batch; the batch has {sorted(batch)}")

    def encode(self, ids: Tensor, mask: Tensor, device: torch.device | str | None = None) -> dict[str, Tensor]:
        """Token ids → the U-Net's entries, on the text encoder's device (which must be ``device`` if given)."""
        home = next(self.text_encoder.parameters()).device
        if device is not None and torch.device(device) != home:
            raise ValueError(f"the text encoder is on {home} but the batch goes to {torch.device(device)}; "
                             f"move it first: text_encoder.to({str(torch.device(device))!r})")
        ids, mask = ids.to(home), mask.to(home)
        with torch.set_grad_enabled(self.train_encoder and torch.is_grad_enabled()):
            tokens, _ = self.text_encoder(ids, mask)  # (b, L, width)
        return {"context": tokens, "context_mask": mask}

    def from_batch(self, batch: dict, device: torch.device | str | None = None) -> dict[str, Tensor]:
        return self.encode(*self.token_ids(batch), device)

    def cache_entries(self, batch: dict) -> dict[str, Tensor]:
        """What a latent cache should store for these clips: the token ids and mask (b, L), not the features, so
        that the text encoder can go on training. (``Conditioning.cache_entries`` still stores ``from_batch``'s
        features: ``Conditioning.cache_entries`` calls this, and ``from_batch`` reads the ids back.)"""
        ids, mask = self.token_ids(batch)
        return {"caption_ids": ids.cpu(), "caption_mask": mask.cpu()}

    def null(self, entries: dict[str, Tensor]) -> dict[str, Tensor]:
        """The empty prompt ``<bos> <eos>``, padded to the batch's L and repeated for each row."""
        b, L = entries["context_mask"].shape
        ids, mask = self.tokenizer.encode([""], L)  # (1, L) each: <bos> <eos> <pad> …
        null = self.encode(ids, mask)
        device = entries["context"].device
        return {"context": null["context"].to(device).expand(b, -1, -1),  # (b, L, width)
                "context_mask": null["context_mask"].to(device).expand(b, -1)}  # (b, L)


# ----------------------------------------------------------------------------- a text encoder trained with the U-Net


class CaptionIds(CaptionTokens):
    """A caption whose text encoder trains *with* the U-Net, inside the model (``TextConditionedDenoiser``): this kind
    hands the model token ids ``caption_ids (b, L)`` and ``caption_mask (b, L)``, and the model encodes them.

    Why not ``CaptionTokens(train_encoder=True)``: there the encoder lives outside the model, so the Trainer's
    optimizer, its EMA copy, its checkpoints and DDP would all miss it, and sampling from ``trainer.ema.model`` would
    read the captions with the raw, not the averaged, encoder. Inside the model it is one set of weights with the
    U-Net. Dropout and the null caption work on ids: a dropped row becomes the empty prompt ``<bos> <eos>``.
    """

    unet_keys = ("caption_ids", "caption_mask")

    def __init__(self, tokenizer, max_len: int, drop_prob: float = 0.1, on_unknown: str = "raise"):
        ConditionKind.__init__(self, drop_prob)
        self.tokenizer, self.text_encoder, self.max_len = tokenizer, None, max_len
        self.train_encoder, self.on_unknown = True, on_unknown

    def __repr__(self) -> str:
        return f"CaptionIds(max_len={self.max_len}, drop_prob={self.drop_prob:g})"

    def from_batch(self, batch: dict, device: torch.device | str | None = None) -> dict[str, Tensor]:
        ids, mask = self.token_ids(batch)  # (b, L) each
        return {"caption_ids": ids.to(device), "caption_mask": mask.to(device)}

    def null(self, entries: dict[str, Tensor]) -> dict[str, Tensor]:
        """The empty prompt ``<bos> <eos>``, padded to the batch's L and repeated for each row."""
        b, L = entries["caption_mask"].shape
        ids, mask = self.tokenizer.encode([""], L)  # (1, L) each
        device = entries["caption_ids"].device
        return {"caption_ids": ids.to(device).expand(b, -1), "caption_mask": mask.to(device).expand(b, -1)}


class CaptionOrReference(CaptionIds):
    """What to draw, from a caption *or* a reference digit image (``reference.py``): "the bold digit 8" or "this 8".
    Both reach the U-Net through the same cross-attention (``TextConditionedDenoiser`` appends the image's tokens to
    the caption's); the entries are the caption's ids and mask, ``reference (b, 1, H, W)`` in [-1, 1] and
    ``reference_given (b,)`` bool (False: the image's tokens are masked out, as if the model had no image encoder).

    Training (``draw``) gives each clip one of the two: its own digit image (its first frame, centred) with
    ``prob``, with the empty prompt as its caption; else its caption, which the usual caption dropout may turn into
    the empty prompt. The null condition, which guidance compares with, is neither: the empty prompt and no image.
    The latent cache keeps the reference as uint8 (1 byte a pixel).
    """

    unet_keys = ("caption_ids", "caption_mask", "reference", "reference_given")

    def __init__(self, tokenizer, max_len: int, image_size: int, prob: float, drop_prob: float = 0.1,
                 on_unknown: str = "raise"):
        super().__init__(tokenizer, max_len, drop_prob, on_unknown)
        if not 0.0 < prob < 1.0 - drop_prob:
            raise ValueError(f"CaptionOrReference: prob (clips shown their digit image) must be in (0, 1 - drop_prob "
                             f"= {1 - drop_prob:g}), so that some clips keep their caption; got {prob}")
        self.image_size, self.prob = image_size, prob

    def __repr__(self) -> str:
        return f"CaptionOrReference(max_len={self.max_len}, prob={self.prob:g}, drop_prob={self.drop_prob:g})"

    def references(self, batch: dict, device: torch.device | str | None = None) -> tuple[Tensor, Tensor]:
        """The batch's reference images ``(b, 1, H, W)`` in [-1, 1] and whether each is given ``(b,)``: stored ones
        (``batch["reference"]``: uint8 from the latent cache, or floats in [-1, 1]), else the clips' own first frames
        (``batch["video"]``), else none given (a prompt alone, as ``pipeline.encode_condition`` asks)."""
        from .reference import reference_of_clips
        from .utils import from_uint8

        if "reference" in batch:
            images = torch.as_tensor(batch["reference"])
            images = from_uint8(images) if images.dtype == torch.uint8 else images.float()  # (b, 1, H, W)
            given = torch.as_tensor(batch.get("reference_given", torch.ones(len(images), dtype=torch.bool)))
        elif "video" in batch:
            images = reference_of_clips(torch.as_tensor(batch["video"]).float())  # (b, 1, H, W)
            given = torch.ones(len(images), dtype=torch.bool)
        else:
            b = len(self.token_ids(batch)[0])
            images = torch.full((b, 1, self.image_size, self.image_size), -1.0)
            given = torch.zeros(b, dtype=torch.bool)
        if images.ndim != 4 or images.shape[1:] != (1, self.image_size, self.image_size):
            raise ValueError(f"reference images must be (b, 1, {self.image_size}, {self.image_size}); got shape "
                             f"{tuple(images.shape)}")
        return images.to(device), given.bool().to(device)

    def from_batch(self, batch: dict, device: torch.device | str | None = None) -> dict[str, Tensor]:
        images, given = self.references(batch, device)
        return {**super().from_batch(batch, device), "reference": images, "reference_given": given}

    def cache_entries(self, batch: dict) -> dict[str, Tensor]:
        from .utils import to_uint8

        images, _ = self.references(batch)
        return {**super().cache_entries(batch), "reference": to_uint8(images).cpu()}  # (n, 1, H, W) uint8

    def draw(self, batch_size: int, generator: torch.Generator | None = None, device: torch.device | str | None = None,
             shape: tuple[int, ...] | None = None) -> dict[str, Tensor]:
        """Per clip, which content stays: ``{"caption": (b,), "reference": (b,)}``, True = dropped. One uniform draw
        each: below ``prob`` the image (the caption dropped), then ``drop_prob`` of neither, the rest the caption."""
        u = torch.rand((batch_size,), generator=generator, device=device)  # (b,)
        image = u < self.prob
        neither = (u >= self.prob) & (u < self.prob + self.drop_prob)
        return {"caption": image | neither, "reference": ~image}

    def drop(self, entries: dict[str, Tensor], drop) -> dict[str, Tensor]:
        """``drop``: ``draw``'s dict, or one bool mask ``(b,)`` that drops both (the null condition where True)."""
        drops = drop if isinstance(drop, dict) else {"caption": drop, "reference": drop}
        caption = {key: entries[key] for key in ("caption_ids", "caption_mask")}
        empty = CaptionIds.null(self, caption)  # the empty prompt
        mask = drops["caption"].to(caption["caption_ids"].device)[:, None]  # (b, 1)
        out = {key: torch.where(mask, empty[key], value) for key, value in caption.items()}  # (b, L) each
        keep = ~drops["reference"].to(entries["reference_given"].device)  # (b,)
        return {**out, "reference": entries["reference"], "reference_given": entries["reference_given"] & keep}

    def null(self, entries: dict[str, Tensor]) -> dict[str, Tensor]:
        """The empty prompt and no image (its tokens masked out)."""
        caption = CaptionIds.null(self, {key: entries[key] for key in ("caption_ids", "caption_mask")})
        return {**caption, "reference": entries["reference"],
                "reference_given": torch.zeros_like(entries["reference_given"])}


class TextConditionedDenoiser(nn.Module):
    """A U-Net and the text encoder it reads, as one model: ``forward(x, t, cond)`` with ``cond["caption_ids"]`` and
    ``cond["caption_mask"]`` (b, L) encodes the caption into ``context (b, L, width)`` and calls the U-Net with it
    (the other entries, e.g. labels, pass through). One module, so the Trainer's optimizer, EMA, checkpoints and
    DDP cover both networks, and the saved pipeline keeps them together (``pipeline.py``).

    ``cfg`` is the U-Net's config (what the Trainer, samplers and pipeline read)."""

    def __init__(self, unet: nn.Module, text_encoder: nn.Module, reference_encoder: nn.Module | None = None):
        super().__init__()
        if unet.cfg.context_dim != text_encoder.cfg.width:
            raise ValueError(f"the U-Net's context_dim={unet.cfg.context_dim} must equal the text encoder's "
                             f"width={text_encoder.cfg.width}: cross-attention reads its token features; build the "
                             f"U-Net with UNetConfig(context_dim={text_encoder.cfg.width})")
        if reference_encoder is not None and reference_encoder.width != text_encoder.cfg.width:
            raise ValueError(f"the reference encoder's width={reference_encoder.width} must equal the text encoder's "
                             f"{text_encoder.cfg.width}: their tokens share the U-Net's cross-attention")
        self.unet, self.text_encoder = unet, text_encoder
        self.reference_encoder = reference_encoder  # None: a text model (prompts only); else "this 8" works too

    @property
    def cfg(self):
        return self.unet.cfg

    @property
    def label_embed(self):
        return self.unet.label_embed

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, x: Tensor, t, cond: dict | None = None) -> Tensor:
        cond = dict(cond or {})
        if "caption_ids" in cond:
            ids, mask = cond.pop("caption_ids"), cond.pop("caption_mask")  # (b, L) each
            tokens, _ = self.text_encoder(ids.long(), mask.bool())  # (b, L, width)
            mask = mask.bool()
            if "reference" in cond:  # a digit image's tokens join the caption's, masked out where none is given
                images, given = cond.pop("reference"), cond.pop("reference_given").bool()  # (b, 1, H, W), (b,)
                if self.reference_encoder is None:
                    raise ValueError("this model reads prompts only (it has no reference encoder); drop "
                                     "'reference' from the condition, or load a model trained with one (cpu-v2v)")
                image_tokens = self.reference_encoder(images.float())  # (b, K, width)
                tokens = torch.cat([tokens, image_tokens], dim=1)  # (b, L + K, width)
                mask = torch.cat([mask, given[:, None].expand(-1, image_tokens.shape[1])], dim=1)  # (b, L + K)
            cond.update(context=tokens, context_mask=mask)
        return self.unet(x, t, cond or None)  # (b, c_out, f, h, w)


def conditioning_for(cfg, drop_prob: float | None = None, single_frames: bool = False) -> Conditioning:
    """The run's conditions, from its ``ExperimentConfig``: ``DigitLabels`` when the U-Net has label slots (dropped
    with ``drop_prob``, default ``cfg.train.cond_drop_prob``), ``CaptionIds`` when ``cfg.text`` is set (dropped with
    ``cfg.caption_drop_prob``; its encoder is in the model, see ``denoiser_for``), ``ContextFrames`` when
    ``cfg.frames`` is set — except for ``single_frames`` (the single-frame stage: a one-frame clip has no other
    frame to be given; the U-Net reads zeros, "nothing given") — and ``StructureMaps`` when ``cfg.structure`` is
    set (an input video's structure, video-to-video)."""
    from .text import Tokenizer  # networks sit above conditioning in the data flow

    drop_prob = cfg.train.cond_drop_prob if drop_prob is None else drop_prob
    kinds = list(Conditioning.for_unet(cfg.unet, drop_prob).kinds)
    text, reference = getattr(cfg, "text", None), getattr(cfg, "reference", None)
    if text is not None and reference is not None:  # content from a caption or a digit image
        kinds.append(CaptionOrReference(Tokenizer(), text.max_len, cfg.image_size, reference.prob,
                                        cfg.caption_drop_prob))
    elif text is not None:
        kinds.append(CaptionIds(Tokenizer(), text.max_len, cfg.caption_drop_prob))
    frames = getattr(cfg, "frames", None)
    if frames is not None and not single_frames:
        kinds.append(ContextFrames(cfg.autoencoder.latent_channels, frames))
    structure = getattr(cfg, "structure", None)
    if structure is not None:  # per frame, so single frames have theirs too
        kinds.append(StructureMaps(cfg.autoencoder.downsample, cfg.image_size, structure))
    return Conditioning(kinds)


def denoiser_for(cfg) -> nn.Module:
    """The run's denoiser, from its ``ExperimentConfig``: a ``UNet3D``, wrapped with a fresh ``TextEncoder`` in a
    ``TextConditionedDenoiser`` when ``cfg.text`` is set (and a fresh ``ReferenceEncoder`` when ``cfg.reference``
    is set too)."""
    from .reference import ReferenceEncoder
    from .text import TextEncoder
    from .unet import UNet3D

    unet = UNet3D(cfg.unet)
    text, reference = getattr(cfg, "text", None), getattr(cfg, "reference", None)
    if text is None:
        return unet
    images = None if reference is None else ReferenceEncoder(cfg.image_size, text.width, reference)
    return TextConditionedDenoiser(unet, TextEncoder(text), images)
