"""UNet3D: the denoiser. Predicts the noise in a (latent) video, given the timestep and the conditions.

The U-Net of DDPM (Ho et al. 2020) grown to video as in Video Diffusion Models (Ho et al. 2022): the same
down path / middle / up path with skip connections, where every convolution is one of the three
``time_mixing`` modes of ``blocks.py`` and some levels add spatial, temporal and cross attention.

    x (b, c_in, f, h, w) ─conv_in─► level 0 ─down─► level 1 ─► ... ─► middle ─► ... ─up─► level 0 ─conv_out─► ε̂
                                       └─────────── skip connections (concatenated) ───────────┘
    t (b,), labels (b, slots) ─► emb (b, emb_dim) ─► every residual block (FiLM)
    context (b, L, d) ─► cross-attention (and, with pooled_context, its mean ─► emb)
    frames (b, cond_channels, f, h, w), structure (b, structure_channels, f, h, w) ─► concatenated to x

    cfg = UNetConfig.smoke() if SMOKE else ExperimentConfig.preset("gpu").unet   # presets.py holds the recipes
    unet = UNet3D(cfg)
    eps_hat = unet(x_t, t, {"labels": labels})   # same shape as x_t (with out_channels channels)

Notebooks 03 and 04 assemble it piece by piece; ``print(unet.shape_table(f, h, w))`` shows every level.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .attention import CrossAttention, SpatialAttention, TemporalAttention, masked_mean
from .blocks import TIME_MIXING, Downsample, FrameGroupNorm, ResBlock3d, SpatialConv, Upsample, num_groups, zero_init_
from .embeddings import LabelEmbedding, TimestepEmbedding, check_labels
from .utils import count_parameters

# ----------------------------------------------------------------------------- config


@dataclass
class UNetConfig:
    in_channels: int = 4  # channels of the video the network denoises (4 for the autoencoder's latents, 1 for pixels)
    out_channels: int = 4  # channels it predicts (the noise ε, or v): usually in_channels
    base_channels: int = 64  # width of the first U-Net level
    channel_mults: tuple[int, ...] = (1, 2)  # width of level i is base_channels · channel_mults[i]; each level halves h, w
    num_res_blocks: int = 1  # residual blocks per level on the way down (the way up has one more)
    spatial_attn_levels: tuple[int, ...] = ()  # levels (0 = full resolution) with self-attention within each frame;
    #                                            the middle block sits at the deepest level and has that level's attention
    temporal_attn_levels: tuple[int, ...] = (1,)  # levels with self-attention across frames
    cross_attn_levels: tuple[int, ...] | None = None  # levels with cross-attention to context; None: the temporal ones
    temporal_downsample_levels: tuple[int, ...] = ()  # levels whose downsampling also halves the frames
    time_mixing: str = "factorized"  # "full3d" (3×3×3), "factorized" (1×3×3 then 3×1×1) or "spatial" (1×3×3 only)
    dropout: float = 0.0  # in every residual block
    norm_groups: int = 8  # GroupNorm groups (fewer when a layer has fewer channels)
    num_heads: int = 4  # attention heads
    head_dim: int = 32  # width of each head
    max_frames: int = 32  # frames the relative-position table covers; longer clips raise an error
    num_classes: int = 10  # digit classes; label value num_classes is the null token ("no label")
    num_label_slots: int = 1  # digits per clip the labels describe; 0 = no label conditioning
    context_dim: int | None = None  # width of context tokens for cross-attention (text); None = no cross-attention
    pooled_context: bool = False  # also add the mean of the real context tokens, projected, to the timestep
    #                               embedding: every block then knows the whole prompt (Imagen, Saharia et al. 2022)
    cond_channels: int = 0  # extra input channels concatenated to x (conditioning frames and their mask)
    structure_channels: int = 0  # more input channels for an input video's structure maps (structure.py, Gen-1)
    emb_mult: int = 4  # width of the timestep/label embedding: emb_mult · base_channels

    def __post_init__(self):
        self.channel_mults = tuple(self.channel_mults)
        for name in ("spatial_attn_levels", "temporal_attn_levels", "temporal_downsample_levels"):
            setattr(self, name, tuple(getattr(self, name)))
        if self.cross_attn_levels is not None:
            self.cross_attn_levels = tuple(self.cross_attn_levels)
        if self.time_mixing not in TIME_MIXING:
            raise ValueError(f"time_mixing must be one of {TIME_MIXING}; got {self.time_mixing!r}")
        num_levels = len(self.channel_mults)
        if num_levels < 1:
            raise ValueError("channel_mults needs at least one level, e.g. (1, 2)")
        for name in ("spatial_attn_levels", "temporal_attn_levels", "temporal_downsample_levels", "cross_attn_levels"):
            levels = getattr(self, name) or ()
            if any(not 0 <= lv < num_levels for lv in levels):
                raise ValueError(f"{name}={levels} names a level outside 0..{num_levels - 1} "
                                 f"(channel_mults has {num_levels} levels)")
        if any(lv == num_levels - 1 for lv in self.temporal_downsample_levels):
            raise ValueError(f"temporal_downsample_levels={self.temporal_downsample_levels}: "
                             f"the last level ({num_levels - 1}) has no downsampling")
        if self.num_label_slots < 0 or self.num_classes < 1:
            raise ValueError(f"need num_label_slots >= 0 and num_classes >= 1; "
                             f"got {self.num_label_slots}, {self.num_classes}")
        if self.max_frames < 1:
            raise ValueError(f"max_frames must be >= 1, got {self.max_frames}")
        if self.pooled_context and self.context_dim is None:
            raise ValueError("pooled_context=True pools the context tokens, but context_dim=None (no context); "
                             "set UNetConfig(context_dim=...) or pooled_context=False")

    @property
    def num_levels(self) -> int:
        return len(self.channel_mults)

    @property
    def downsample_factor(self) -> int:
        """How much h and w shrink at the deepest level: h and w must be multiples of it."""
        return 2 ** (self.num_levels - 1)

    @property
    def frame_factor(self) -> int:
        """How much the frame count shrinks at the deepest level: f must be a multiple of it."""
        return 2 ** len(self.temporal_downsample_levels)

    @property
    def attn_cross_levels(self) -> tuple[int, ...]:
        if self.context_dim is None:
            return ()
        return self.temporal_attn_levels if self.cross_attn_levels is None else self.cross_attn_levels

    @classmethod
    def smoke(cls, **overrides) -> "UNetConfig":
        """Tiny (~60 k parameters): runs in milliseconds; for tests and CI. The U-Nets the presets train are in
        ``presets.py``: ``ExperimentConfig.preset("cpu").unet`` (1.10 M parameters), ``.preset("gpu").unet``."""
        cfg = dict(base_channels=8, channel_mults=(1, 2), num_res_blocks=1, temporal_attn_levels=(1,),
                   num_heads=2, head_dim=8, norm_groups=4, max_frames=32, emb_mult=4)
        return cls(**{**cfg, **overrides})


# ----------------------------------------------------------------------------- one residual block and its attention


class UNetBlock(nn.Module):
    """A ``ResBlock3d`` followed by whichever attention its level has: spatial, then temporal, then cross."""

    def __init__(self, in_ch: int, out_ch: int, cfg: UNetConfig, spatial: bool = False, temporal: bool = False,
                 cross: bool = False):
        super().__init__()
        heads = dict(num_heads=cfg.num_heads, head_dim=cfg.head_dim)
        emb_dim = cfg.base_channels * cfg.emb_mult
        self.res = ResBlock3d(in_ch, out_ch, emb_dim, cfg.time_mixing, cfg.dropout, cfg.norm_groups)
        self.spatial_attn = SpatialAttention(out_ch, norm_groups=cfg.norm_groups, **heads) if spatial else None
        self.temporal_attn = TemporalAttention(out_ch, max_frames=cfg.max_frames, **heads) if temporal else None
        self.cross_attn = CrossAttention(out_ch, cfg.context_dim, norm_groups=cfg.norm_groups, **heads) if cross else None

    def forward(self, x, emb, context=None, context_mask=None):
        x = self.res(x, emb)  # (b, out_ch, f, h, w)
        if self.spatial_attn is not None:
            x = self.spatial_attn(x)
        if self.temporal_attn is not None:
            x = self.temporal_attn(x)
        if self.cross_attn is not None and context is not None:
            x = self.cross_attn(x, context, context_mask)
        return x


# ----------------------------------------------------------------------------- the U-Net


def _extra_channels(cond: dict, key: str, field: str, channels: int, x: torch.Tensor, what: str):
    """``cond[key]``, the ``channels`` input channels concatenated to ``x (b, c, f, h, w)``, checked: zeros when
    missing (nothing given), an error naming ``UNetConfig.<field>`` when the model has no such channels."""
    value = cond.get(key)
    if value is not None and channels == 0:
        raise ValueError(f"cond has {key!r} but the model was built with {field}=0; use UNetConfig({field}=...) to "
                         f"condition on {what}")
    if not channels:
        return None
    b, _, f, h, w = x.shape
    if value is None:
        return x.new_zeros(b, channels, f, h, w)
    if value.shape != (b, channels, f, h, w):
        raise ValueError(f"cond[{key!r}] must have shape (b, {field}, f, h, w) = {(b, channels, f, h, w)}, got "
                         f"{tuple(value.shape)}")
    return value


class UNet3D(nn.Module):
    """The video denoiser: ``forward(x (b, c_in, f, h, w), t (b,), cond=None) -> (b, c_out, f, h, w)``.

    ``cond`` is ``None`` or a dict with any of
        ``labels``        long ``(b, num_label_slots)`` in ``[0, num_classes]``; ``num_classes`` = dropped (null token);
                          missing = every label dropped (the unconditional branch of guidance)
        ``context``       ``(b, L, context_dim)`` tokens for cross-attention; missing = no cross-attention
        ``context_mask``  bool ``(b, L)``, False marks padding tokens
        ``frames``        ``(b, cond_channels, f, h, w)`` concatenated to x (e.g. known frames and their mask);
                          missing = zeros
        ``structure``     ``(b, structure_channels, f, h, w)`` concatenated after them (an input video's
                          structure maps, ``structure.py``); missing = zeros, "no structure"
    """

    COND_KEYS = ("labels", "context", "context_mask", "frames", "structure")

    def __init__(self, cfg: UNetConfig | None = None, verbose: bool = False):
        super().__init__()
        cfg = cfg or UNetConfig()
        self.cfg = cfg
        chans = [cfg.base_channels * m for m in cfg.channel_mults]  # width of each level
        emb_dim = cfg.base_channels * cfg.emb_mult
        last = cfg.num_levels - 1

        def block(in_ch, out_ch, level):
            return UNetBlock(in_ch, out_ch, cfg, spatial=level in cfg.spatial_attn_levels,
                             temporal=level in cfg.temporal_attn_levels, cross=level in cfg.attn_cross_levels)

        # 1. embeddings: timestep (+ labels) -> emb (b, emb_dim)
        self.time_embed = TimestepEmbedding(cfg.base_channels, emb_dim)
        self.label_embed = LabelEmbedding(cfg.num_classes, cfg.num_label_slots, emb_dim) if cfg.num_label_slots else None
        self.context_embed = nn.Linear(cfg.context_dim, emb_dim) if cfg.pooled_context else None  # pooled prompt -> emb

        # 2. down path: num_res_blocks blocks per level, then a downsample; every output is kept for a skip
        self.conv_in = SpatialConv(cfg.in_channels + cfg.cond_channels + cfg.structure_channels, chans[0])
        with torch.no_grad():  # condition channels start silent: the network first acts as if nothing were given
            self.conv_in.conv.weight[:, cfg.in_channels:].zero_()  # (as InstructPix2Pix does, Brooks et al. 2023)
        self.down_blocks, self.downsamples = nn.ModuleList(), nn.ModuleList()
        skip_chans, ch = [chans[0]], chans[0]
        for level, level_ch in enumerate(chans):
            blocks = nn.ModuleList()
            for _ in range(cfg.num_res_blocks):
                blocks.append(block(ch, level_ch, level))
                ch = level_ch
                skip_chans.append(ch)
            self.down_blocks.append(blocks)
            if level < last:
                self.downsamples.append(Downsample(ch, temporal=level in cfg.temporal_downsample_levels))
                skip_chans.append(ch)

        # 3. middle, at the deepest level and with that level's attention: block + attention, block
        self.mid_blocks = nn.ModuleList([block(ch, ch, last), UNetBlock(ch, ch, cfg)])

        # 4. up path: num_res_blocks + 1 blocks per level, each eating one skip, then an upsample
        self.up_blocks, self.upsamples = nn.ModuleList(), nn.ModuleList()
        for level in reversed(range(cfg.num_levels)):
            blocks = nn.ModuleList()
            for _ in range(cfg.num_res_blocks + 1):
                blocks.append(block(ch + skip_chans.pop(), chans[level], level))
                ch = chans[level]
            self.up_blocks.append(blocks)
            if level > 0:
                self.upsamples.append(Upsample(ch, temporal=(level - 1) in cfg.temporal_downsample_levels))

        # 5. output: norm, SiLU, conv to out_channels, zero-initialised (the network starts by predicting 0)
        self.norm_out = FrameGroupNorm(num_groups(ch, cfg.norm_groups), ch)
        self.conv_out = zero_init_(SpatialConv(ch, cfg.out_channels))

        if verbose:
            print(f"UNet3D: {self.num_parameters() / 1e6:.2f} M parameters")

    # ------------------------------------------------------------------------- forward

    def forward(self, x: torch.Tensor, t, cond: dict | None = None) -> torch.Tensor:
        t, labels, context, context_mask, frames, structure = self._check_inputs(x, t, cond)
        b = x.shape[0]

        # 1. embedding of timestep and labels
        emb = self.time_embed(t)  # (b, emb_dim)
        if self.label_embed is not None:
            emb = emb + self.label_embed(labels)  # (b, emb_dim)
        if self.context_embed is not None and context is not None:
            emb = emb + self.context_embed(masked_mean(context, context_mask))  # (b, emb_dim)

        # 2. down path
        if self.cfg.cond_channels:
            x = torch.cat([x, frames], dim=1)  # (b, c_in + cond_channels, f, h, w)
        if self.cfg.structure_channels:
            x = torch.cat([x, structure], dim=1)  # (b, c_in + cond_channels + structure_channels, f, h, w)
        h = self.conv_in(x)  # (b, c0, f, h, w)
        skips = [h]
        for level, blocks in enumerate(self.down_blocks):
            for blk in blocks:
                h = blk(h, emb, context, context_mask)  # (b, c_level, f_level, h/2^level, w/2^level)
                skips.append(h)
            if level < len(self.downsamples):
                h = self.downsamples[level](h)  # (b, c_level, f_level or f_level/2, h/2^(level+1), w/2^(level+1))
                skips.append(h)

        # 3. middle
        for blk in self.mid_blocks:
            h = blk(h, emb, context, context_mask)

        # 4. up path: concatenate the matching skip before every block
        for i, blocks in enumerate(self.up_blocks):
            for blk in blocks:
                h = blk(torch.cat([h, skips.pop()], dim=1), emb, context, context_mask)  # (b, c_level, ...)
            if i < len(self.upsamples):
                h = self.upsamples[i](h)  # (b, c_level, ..., 2h, 2w)

        # 5. output
        out = self.conv_out(F.silu(self.norm_out(h)))  # (b, c_out, f, h, w)
        assert out.shape[0] == b
        return out.contiguous()

    # ------------------------------------------------------------------------- input checks that teach

    def _check_inputs(self, x, t, cond):
        cfg = self.cfg
        if not isinstance(x, torch.Tensor) or x.ndim != 5:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(
                f"UNet3D expects x of shape (b, c, f, h, w), got {shape}; for a single clip (c, f, h, w) use x[None], "
                f"for frames without a channel axis (b, f, h, w) use rearrange(x, 'b f h w -> b 1 f h w')"
            )
        b, c, f, h, w = x.shape
        if c != cfg.in_channels:
            raise ValueError(
                f"UNet3D was built for in_channels={cfg.in_channels} but x has {c} channels (shape {tuple(x.shape)}); "
                f"axes are (b, c, f, h, w): pass UNetConfig(in_channels={c}) or check the axis order"
            )
        factor = cfg.downsample_factor
        if h % factor or w % factor:
            raise ValueError(
                f"h and w must be multiples of {factor} (the U-Net halves them {cfg.num_levels - 1} time(s)); "
                f"got h={h}, w={w}. "
                f"Crop or pad the clip, or use fewer levels in channel_mults"
            )
        if f > cfg.max_frames:
            raise ValueError(
                f"x has {f} frames but the relative-position table covers max_frames={cfg.max_frames}; "
                f"use UNetConfig(max_frames={f}) or shorter clips"
            )
        if f % cfg.frame_factor:
            raise ValueError(
                f"the frame count must be a multiple of {cfg.frame_factor} (temporal_downsample_levels="
                f"{cfg.temporal_downsample_levels} halve it); got f={f}"
            )
        # the timestep: a python number, a 0-d tensor or a (b,) tensor
        if not isinstance(t, torch.Tensor):
            t = torch.tensor(t)
        if t.ndim == 0:
            t = t.expand(b)
        if t.shape != (b,):
            raise ValueError(
                f"t must be a number, a 0-d tensor or have shape (b,) = ({b},), got {tuple(t.shape)}; "
                f"one timestep per clip, e.g. t = torch.randint(0, 1000, ({b},))"
            )
        t = t.to(x.device)
        cond = {} if cond is None else cond
        if not isinstance(cond, dict):
            raise TypeError(f"cond must be None or a dict with keys among {self.COND_KEYS}, got {type(cond).__name__}")
        unknown = set(cond) - set(self.COND_KEYS)
        if unknown:
            raise ValueError(f"unknown cond keys {sorted(unknown)}; UNet3D understands {self.COND_KEYS}")
        # labels
        labels = cond.get("labels")
        if labels is not None and self.label_embed is None:
            raise ValueError("cond has 'labels' but the model was built with num_label_slots=0; "
                             "use UNetConfig(num_label_slots=...) to condition on digits")
        if self.label_embed is not None:
            if labels is None:
                labels = self.label_embed.null_labels(b, x.device)
            check_labels(labels, cfg.num_classes, cfg.num_label_slots, where="cond['labels']", batch_size=b)
        # context tokens
        context, context_mask = cond.get("context"), cond.get("context_mask")
        if context is not None:
            if cfg.context_dim is None:
                raise ValueError("cond has 'context' but the model was built with context_dim=None; "
                                 "use UNetConfig(context_dim=...) to add cross-attention")
            if context.ndim != 3 or context.shape[0] != b or context.shape[2] != cfg.context_dim:
                raise ValueError(f"cond['context'] must have shape (b, L, context_dim) = ({b}, L, {cfg.context_dim}), "
                                 f"got {tuple(context.shape)}")
            if context_mask is not None and context_mask.shape != context.shape[:2]:
                raise ValueError(f"cond['context_mask'] must have shape (b, L) = {tuple(context.shape[:2])}, "
                                 f"got {tuple(context_mask.shape)}")
        elif context_mask is not None:
            raise ValueError("cond has 'context_mask' but no 'context'")
        # channels concatenated to x: given frames, the structure maps of an input video
        frames = _extra_channels(cond, "frames", "cond_channels", cfg.cond_channels, x, "frames")
        structure = _extra_channels(cond, "structure", "structure_channels", cfg.structure_channels, x,
                                    "an input video's structure")
        return t, labels, context, context_mask, frames, structure

    # ------------------------------------------------------------------------- helpers for learners

    def num_parameters(self) -> int:
        """Every parameter, frozen or not: the size of the network, the same for an EMA copy (whose weights do not
        take gradients) or a U-Net with its temporal attention frozen. ``count_parameters`` counts the trainable ones."""
        return count_parameters(self, trainable_only=False)

    def _example_input(self, f: int, h: int, w: int):
        cfg = self.cfg
        p = next(self.parameters())
        x = torch.zeros(1, cfg.in_channels, f, h, w, device=p.device, dtype=p.dtype)
        cond = {}
        if cfg.context_dim is not None:
            cond["context"] = torch.zeros(1, 8, cfg.context_dim, device=p.device, dtype=p.dtype)
        return x, torch.zeros(1, dtype=torch.long, device=p.device), cond

    def _run_example(self, hooks: list, f: int, h: int, w: int) -> torch.Tensor:
        """Run one example clip ``(1, in_channels, f, h, w)`` through the network without gradients, so the forward
        ``hooks`` see every layer; then remove the hooks (also on an error). Returns the example input."""
        try:
            with torch.no_grad():
                x, t, cond = self._example_input(f, h, w)
                self(x, t, cond)
        finally:
            for hook in hooks:
                hook.remove()
        return x

    def shape_table(self, f: int = 8, h: int = 32, w: int = 32) -> str:
        """A printable table: every stage of the network, its output shape ``(c, f, h, w)`` and its parameters."""
        rows = []

        def record(name):
            def hook(module, inputs, output):
                rows.append((name, tuple(output.shape[1:]), count_parameters(module, trainable_only=False)))
            return hook

        stages = [("conv_in", self.conv_in)]
        for level, blocks in enumerate(self.down_blocks):
            stages += [(f"down[{level}].{i} {_describe(blk)}", blk) for i, blk in enumerate(blocks)]
            if level < len(self.downsamples):
                stages.append((f"down[{level}] downsample", self.downsamples[level]))
        stages += [(f"mid.{i} {_describe(blk)}", blk) for i, blk in enumerate(self.mid_blocks)]
        for i, blocks in enumerate(self.up_blocks):
            level = self.cfg.num_levels - 1 - i
            stages += [(f"up[{level}].{j} {_describe(blk)}", blk) for j, blk in enumerate(blocks)]
            if i < len(self.upsamples):
                stages.append((f"up[{level}] upsample", self.upsamples[i]))
        stages.append(("conv_out", self.conv_out))
        x = self._run_example([m.register_forward_hook(record(name)) for name, m in stages], f, h, w)
        width = max(len(r[0]) for r in rows)
        lines = [f"{'stage':<{width}}  {'output (c, f, h, w)':<22} {'params':>10}", "-" * (width + 35)]
        lines.append(f"{'input':<{width}}  {str(tuple(x.shape[1:])):<22} {'':>10}")
        lines += [f"{name:<{width}}  {str(shape):<22} {params:>10,}" for name, shape, params in rows]
        lines.append("-" * (width + 35))
        lines.append(f"{'total':<{width}}  {'':<22} {self.num_parameters():>10,}")
        return "\n".join(lines)

    def flops_per_clip(self, f: int = 8, h: int = 32, w: int = 32, by_kind: bool = False) -> int | dict[str, int]:
        """Estimated forward-pass FLOPs for one clip (2 × multiply-adds of convs, linears and attention).

        Counted with forward hooks on one example clip; GroupNorm, activations and additions are left out
        (a few percent). A training step (forward + backward) costs about 3 times this. ``by_kind=True`` returns
        them split: ``{"conv", "linear", "spatial attention", "temporal attention", "cross attention"}`` (the
        attention entries count its two products, q·kᵀ and weights·v; its projections are linears).
        """
        macs = dict.fromkeys(("conv", "linear", "spatial attention", "temporal attention", "cross attention"), 0)

        def conv_hook(module, inputs, output):
            k = module.weight[0].numel()  # in_ch/groups · kernel elements
            macs["conv"] += output.numel() * k

        def linear_hook(module, inputs, output):
            macs["linear"] += output.numel() * module.in_features

        def attn_hook(module, inputs, output):
            x = inputs[0]
            b, c, fr, hh, ww = x.shape
            inner = module.to_out.weight.shape[1]  # heads · head_dim
            if isinstance(module, SpatialAttention):
                macs["spatial attention"] += 2 * b * fr * (hh * ww) ** 2 * inner  # q·kᵀ and weights·v
            elif isinstance(module, TemporalAttention):
                macs["temporal attention"] += 2 * b * hh * ww * fr**2 * inner
            elif isinstance(module, CrossAttention):
                macs["cross attention"] += 2 * b * fr * hh * ww * inputs[1].shape[1] * inner

        handles = []
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Conv3d)):
                handles.append(m.register_forward_hook(conv_hook))
            elif isinstance(m, nn.Linear):
                handles.append(m.register_forward_hook(linear_hook))
            elif isinstance(m, (SpatialAttention, TemporalAttention, CrossAttention)):
                handles.append(m.register_forward_hook(attn_hook))
        self._run_example(handles, f, h, w)
        if by_kind:
            return {kind: 2 * n for kind, n in macs.items()}
        return 2 * sum(macs.values())


def _describe(blk: UNetBlock) -> str:
    parts = ["res"] + [name for name, m in (("spatial", blk.spatial_attn), ("temporal", blk.temporal_attn),
                                            ("cross", blk.cross_attn)) if m is not None]
    return "+".join(parts)
