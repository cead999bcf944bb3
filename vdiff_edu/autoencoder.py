"""The autoencoder of the latent space: a small per-frame convolutional VAE (KL-regularised autoencoder).

Latent diffusion (Rombach et al. 2022, "High-Resolution Image Synthesis with Latent Diffusion Models") does not
denoise pixels. It first trains an autoencoder that squeezes each frame into a smaller latent image, then trains
the diffusion model on latents and decodes its samples back to pixels. Here every frame is encoded on its own
(frames are folded into the batch), so a clip ``(b, 1, f, 32, 32)`` becomes a latent clip ``(b, 4, f, 8, 8)``:
16× fewer numbers per frame, and a U-Net that runs much faster.

    cfg = ExperimentConfig.preset("cpu").autoencoder      # from vdiff_edu.presets
    ae = FrameAutoencoder(cfg)
    history = train_autoencoder(ae, clips, steps=cfg.train_steps)   # clips: (n, 1, f, 32, 32) in [-1, 1]
    estimate_scale_factor(ae, clips)                                # latents get unit standard deviation
    z = ae.encode(video)                                            # (b, 4, f, 8, 8)
    video_hat = ae.decode(z)                                        # (b, 1, f, 32, 32)

The pieces, bottom-up: ``DiagonalGaussian`` (the encoder's output distribution) → ``ResBlock2d``, ``Downsample2d``,
``Upsample2d`` → ``Encoder``, ``Decoder`` → ``AutoencoderConfig`` → ``FrameAutoencoder`` → training, scale factor.

Two choices, and why:

* **Loss: L1 reconstruction + kl_weight · KL.** L1 (mean absolute error) is what the LDM autoencoders use for
  pixels; on Moving MNIST it keeps strokes sharper than MSE, which averages an uncertain edge into grey. The KL
  term only keeps the latent space tame (small values, no holes); its weight is small, so this is closer to a
  regularised autoencoder than to a VAE that generates on its own. The diffusion model does the generating.
* **Output: tanh.** Decoded pixels must be in [-1, 1] like the data, including when the decoder gets an imperfect
  latent from a diffusion sampler. ``tanh`` bounds the output smoothly and still passes a gradient everywhere;
  a hard clamp would pass no gradient to a pixel stuck on the wrong side of the range, and Moving MNIST pixels
  sit mostly at the two ends (−1 background, +1 stroke), exactly where tanh saturates.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterable, Iterator

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn
from tqdm.auto import tqdm

from .checkpoint import load_weights, read_weights_metadata, save_weights
from .optim import adamw_with_decay_groups, warmup_cosine_scheduler
from .similarity import psnr
from .utils import count_parameters, get_device

# ---------------------------------------------------------------- the posterior q(z | x) ----


class DiagonalGaussian:
    """The encoder's output: a Gaussian q(z|x) = N(mean, diag(exp(logvar))) for every latent element.

    ``mean`` and ``logvar`` have the latent's shape, e.g. ``(b, c_z, f, h/d, w/d)``.
    """

    def __init__(self, mean: torch.Tensor, logvar: torch.Tensor):
        self.mean = mean
        # clamp as in the LDM code: keeps exp(logvar) finite while the encoder is still wild
        self.logvar = logvar.clamp(-30.0, 20.0)
        self.std = torch.exp(0.5 * self.logvar)

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """Reparameterised sample z = mean + std · ε, ε ~ N(0, I) (Kingma & Welling 2014); gradients flow
        through mean and std. ``generator`` (on any device) makes it repeatable."""
        device = generator.device if generator is not None else self.mean.device
        eps = torch.randn(self.mean.shape, generator=generator, device=device, dtype=self.mean.dtype)
        return self.mean + self.std * eps.to(self.mean.device)

    def mode(self) -> torch.Tensor:
        """The most likely latent: the mean. Deterministic, what ``encode(x)`` returns by default."""
        return self.mean

    def kl(self) -> torch.Tensor:
        """KL(q(z|x) ‖ N(0, I)) per item, averaged over latent elements (nats per element), shape ``(b,)``.

        For one element: KL = ½ (μ² + σ² − 1 − log σ²)   (Kingma & Welling 2014, appendix B).
        """
        kl = 0.5 * (self.mean**2 + self.logvar.exp() - 1.0 - self.logvar)  # same shape as mean
        return kl.flatten(1).mean(dim=1)  # (b,)

    def __repr__(self) -> str:
        return f"DiagonalGaussian(shape={tuple(self.mean.shape)}, mean std={self.std.mean().item():.3g})"


# ---------------------------------------------------------------- blocks (2-D, one frame at a time) ----


def _group_norm(channels: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(groups, channels), channels)  # fall back to fewer groups for odd widths


class ResBlock2d(nn.Module):
    """GroupNorm → SiLU → 3×3 conv, twice, plus a skip connection (1×1 conv when the width changes)."""

    def __init__(self, in_ch: int, out_ch: int, groups: int = 8):
        super().__init__()
        self.norm1 = _group_norm(in_ch, groups)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.norm2 = _group_norm(out_ch, groups)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (n, in_ch, h, w)
        h = self.conv1(F.silu(self.norm1(x)))  # (n, out_ch, h, w)
        h = self.conv2(F.silu(self.norm2(h)))  # (n, out_ch, h, w)
        return self.skip(x) + h


class Downsample2d(nn.Module):
    """Halve h and w with a learned 3×3 convolution of stride 2."""

    def __init__(self, ch: int):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)  # (n, ch, h/2, w/2)


class Upsample2d(nn.Module):
    """Double h and w: nearest-neighbour copy, then a 3×3 convolution (no checkerboard artefacts)."""

    def __init__(self, ch: int):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")  # (n, ch, 2h, 2w)
        return self.conv(x)


# ---------------------------------------------------------------- encoder and decoder ----


class Encoder(nn.Module):
    """Frames ``(n, in_ch, h, w)`` → mean and log-variance of the latent, ``(n, 2·c_z, h/d, w/d)``."""

    def __init__(self, cfg: "AutoencoderConfig"):
        super().__init__()
        widths = [cfg.base_channels * m for m in cfg.channel_mults]
        self.conv_in = nn.Conv2d(cfg.in_channels, widths[0], 3, padding=1)
        layers: list[nn.Module] = []
        ch = widths[0]
        for level, width in enumerate(widths):
            for _ in range(cfg.num_res_blocks):
                layers.append(ResBlock2d(ch, width, cfg.groups))
                ch = width
            if level < len(widths) - 1:
                layers.append(Downsample2d(ch))  # every level but the last halves the frame
        self.down = nn.Sequential(*layers)
        self.mid = ResBlock2d(ch, ch, cfg.groups)
        self.norm_out = _group_norm(ch, cfg.groups)
        self.conv_out = nn.Conv2d(ch, 2 * cfg.latent_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (n, in_ch, h, w)
        h = self.conv_in(x)  # (n, widths[0], h, w)
        h = self.down(h)  # (n, widths[-1], h/d, w/d)
        h = self.mid(h)
        return self.conv_out(F.silu(self.norm_out(h)))  # (n, 2·c_z, h/d, w/d)


class TemporalMix(nn.Module):
    """h + conv(SiLU(GroupNorm(h))) where conv is 3×1×1 along the frames: each pixel mixes with the same pixel one
    frame before and after. Zero-initialised, so a decoder that gains these layers first decodes exactly as before.
    ``(b·f, c, h, w) -> (b·f, c, h, w)``."""

    def __init__(self, channels: int, groups: int = 8):
        super().__init__()
        self.norm = _group_norm(channels, groups)
        self.conv = nn.Conv2d(channels, channels, (3, 1), padding=(1, 0))  # over the (f, h·w) plane
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)

    def forward(self, h: torch.Tensor, num_frames: int) -> torch.Tensor:
        y = rearrange(F.silu(self.norm(h)), "(b f) c h w -> b c f (h w)", f=num_frames)  # (b, c, f, h·w)
        y = rearrange(self.conv(y), "b c f (h w) -> (b f) c h w", h=h.shape[-2])  # (b·f, c, h, w)
        return h + y


class Decoder(nn.Module):
    """Latent frames ``(n, c_z, h/d, w/d)`` → pixels ``(n, in_ch, h, w)`` in (−1, 1) (tanh, see the module doc)."""

    def __init__(self, cfg: "AutoencoderConfig"):
        super().__init__()
        widths = [cfg.base_channels * m for m in cfg.channel_mults]
        ch = widths[-1]
        self.conv_in = nn.Conv2d(cfg.latent_channels, ch, 3, padding=1)
        self.mid = ResBlock2d(ch, ch, cfg.groups)
        layers: list[nn.Module] = []
        for level in reversed(range(len(widths))):  # mirror of the encoder, deepest level first
            for _ in range(cfg.num_res_blocks):
                layers.append(ResBlock2d(ch, widths[level], cfg.groups))
                ch = widths[level]
            if level > 0:
                layers.append(Upsample2d(ch))
        self.up = nn.Sequential(*layers)
        self.norm_out = _group_norm(ch, cfg.groups)
        self.conv_out = nn.Conv2d(ch, cfg.in_channels, 3, padding=1)
        # optional: frames mix after the middle block (latent resolution) and before the output (full resolution)
        self.temporal = (nn.ModuleList([TemporalMix(widths[-1], cfg.groups), TemporalMix(ch, cfg.groups)])
                         if cfg.temporal_decoder else None)

    def forward(self, z: torch.Tensor, num_frames: int | None = None) -> torch.Tensor:  # z: (n, c_z, h/d, w/d)
        """With ``num_frames`` (z holds clips of that many frames, ``n = b·f``) and temporal layers, neighbouring
        frames mix; otherwise every frame is decoded on its own (the per-frame decoder, exactly)."""
        mix = self.temporal is not None and num_frames is not None
        h = self.conv_in(z)  # (n, widths[-1], h/d, w/d)
        h = self.mid(h)
        if mix:
            h = self.temporal[0](h, num_frames)
        h = self.up(h)  # (n, widths[0], h, w)
        if mix:
            h = self.temporal[1](h, num_frames)
        return torch.tanh(self.conv_out(F.silu(self.norm_out(h))))  # (n, in_ch, h, w) in (-1, 1)


# ---------------------------------------------------------------- config ----


@dataclass
class AutoencoderConfig:
    """Everything that shapes the autoencoder and its training. ``smoke()`` is a test size; the recipes are in
    ``presets.py`` (``ExperimentConfig.preset("cpu").autoencoder``)."""

    in_channels: int = 1  # grey Moving MNIST frames
    latent_channels: int = 4  # c_z, channels of the latent image (Stable Diffusion also uses 4)
    base_channels: int = 16  # width of the first (full-resolution) level
    channel_mults: tuple[int, ...] = (1, 2, 2)  # width of each level = base · mult; d = 2**(levels − 1) = 4
    num_res_blocks: int = 1  # residual blocks per level, in the encoder and (mirrored) in the decoder
    groups: int = 8  # GroupNorm groups
    image_size: int = 32  # frame side the presets are made for (any multiple of d works)
    kl_weight: float = 1e-3  # weight of the KL term (nats per latent element) against L1 (per pixel)
    temporal_decoder: bool = False  # temporal layers in the decoder, mixing neighbouring frames (Video LDM,
                                    # Blattmann et al. 2023): fine-tuned on clips with everything else frozen
                                    # (finetune_temporal_decoder); False = every frame decoded on its own
    # training defaults, used by train_autoencoder when not given
    train_steps: int = 500
    batch_size: int = 64  # frames per step (frames, not clips: the autoencoder sees one frame at a time)
    lr: float = 2e-3

    def __post_init__(self):
        self.channel_mults = tuple(self.channel_mults)  # a list from JSON metadata becomes a tuple again
        if len(self.channel_mults) < 1:
            raise ValueError("channel_mults needs at least one level, e.g. (1, 2, 2) for a downsampling of 4")
        for name in ("in_channels", "latent_channels", "base_channels", "num_res_blocks", "groups"):
            value = getattr(self, name)
            if value < (0 if name == "num_res_blocks" else 1):
                raise ValueError(f"AutoencoderConfig.{name} must be a positive integer; got {value}")
        if self.image_size % self.downsample:
            raise ValueError(f"AutoencoderConfig.image_size={self.image_size} must be divisible by the downsampling "
                             f"factor {self.downsample} (= 2**(len(channel_mults) - 1)); use a multiple of it")

    @property
    def downsample(self) -> int:
        """d: how many pixels of a frame side one latent pixel covers (each level but the last halves the frame)."""
        return 2 ** (len(self.channel_mults) - 1)

    @property
    def latent_size(self) -> int:
        return self.image_size // self.downsample

    @classmethod
    def smoke(cls) -> "AutoencoderConfig":
        """Tiny and quick, for tests: 16×16 frames → 4×4×4 latents. The autoencoders the presets train are in
        ``presets.py``: ``ExperimentConfig.preset("cpu").autoencoder``."""
        return cls(base_channels=8, channel_mults=(1, 2, 2), num_res_blocks=1, groups=4, image_size=16,
                   train_steps=300, batch_size=32, lr=3e-3)


# ---------------------------------------------------------------- the autoencoder ----


class FrameAutoencoder(nn.Module):
    """Per-frame KL autoencoder: video ``(b, 1, f, h, w)`` ↔ scaled latent video ``(b, c_z, f, h/d, w/d)``.

    ``encode`` multiplies latents by the buffer ``scale_factor`` and ``decode`` divides by it, so a diffusion
    model on ``encode(x)`` sees latents of about unit standard deviation (set it with ``estimate_scale_factor``).
    ``posterior`` and ``forward`` work with unscaled latents, the autoencoder's own.
    """

    def __init__(self, cfg: AutoencoderConfig | None = None):
        super().__init__()
        self.cfg = cfg or AutoencoderConfig()
        self.encoder = Encoder(self.cfg)
        self.decoder = Decoder(self.cfg)
        # Rombach et al. 2022, sec. 4.3.2 / appendix: z is multiplied by 1/std(z) before diffusion
        self.register_buffer("scale_factor", torch.tensor(1.0))

    # ---- shapes and checks

    @property
    def downsample(self) -> int:
        return self.cfg.downsample

    def latent_shape(self, video_shape: tuple[int, ...]) -> tuple[int, ...]:
        """``(b, 1, f, h, w)`` → ``(b, c_z, f, h/d, w/d)``."""
        b, _, f, h, w = video_shape
        return (b, self.cfg.latent_channels, f, h // self.downsample, w // self.downsample)

    def _check_video(self, x: torch.Tensor) -> None:
        if x.dim() != 5:
            hint = ("add a frame axis with rearrange(x, 'b c h w -> b c 1 h w')" if x.dim() == 4
                    else "add batch and channel axes with rearrange(x, 'f h w -> 1 1 f h w')" if x.dim() == 3
                    else "pass a batch of clips")
            raise ValueError(f"FrameAutoencoder expects a video batch (b, c, f, h, w); got shape {tuple(x.shape)}: {hint}")
        if x.shape[1] != self.cfg.in_channels:
            raise ValueError(f"FrameAutoencoder was built for in_channels={self.cfg.in_channels}; got a video with "
                             f"{x.shape[1]} channels, shape {tuple(x.shape)}. Moving MNIST clips are (b, 1, f, h, w); "
                             f"if the channel sits elsewhere, move it with rearrange(x, 'b f c h w -> b c f h w')")
        h, w = x.shape[-2:]
        d = self.downsample
        if h % d or w % d:
            raise ValueError(f"frame size {h}×{w} must be divisible by the downsampling factor {d} "
                             f"(2**(len(channel_mults) - 1)); resize or crop frames to a multiple of {d}, "
                             f"e.g. MovingMNIST(image_size={max(d, h // d * d)})")

    def _check_latent(self, z: torch.Tensor) -> None:
        if z.dim() != 5 or z.shape[1] != self.cfg.latent_channels:
            raise ValueError(f"decode expects latents (b, {self.cfg.latent_channels}, f, h/d, w/d) as returned by encode; "
                             f"got shape {tuple(z.shape)}")

    # ---- the three directions: posterior, encode, decode

    def posterior(self, x: torch.Tensor) -> DiagonalGaussian:
        """q(z|x) for every frame of ``x`` ``(b, c, f, h, w)``; its mean has shape ``(b, c_z, f, h/d, w/d)`` (unscaled)."""
        self._check_video(x)
        b = x.shape[0]
        frames = rearrange(x, "b c f h w -> (b f) c h w")  # every frame on its own
        moments = self.encoder(frames)  # (b·f, 2·c_z, h/d, w/d)
        moments = rearrange(moments, "(b f) c h w -> b c f h w", b=b)  # (b, 2·c_z, f, h/d, w/d)
        mean, logvar = moments.chunk(2, dim=1)  # (b, c_z, f, h/d, w/d) each
        return DiagonalGaussian(mean, logvar)

    def encode(self, x: torch.Tensor, sample: bool = False, generator: torch.Generator | None = None) -> torch.Tensor:
        """Video ``(b, c, f, h, w)`` → scaled latent ``(b, c_z, f, h/d, w/d)``: the posterior's mean (``sample=False``,
        deterministic) or a draw from it (``sample=True``), times ``scale_factor``."""
        q = self.posterior(x)
        z = q.sample(generator) if sample else q.mode()  # (b, c_z, f, h/d, w/d)
        return z * self.scale_factor

    def decode(self, z: torch.Tensor, temporal: bool = True) -> torch.Tensor:
        """Scaled latent ``(b, c_z, f, h', w')`` → video ``(b, c, f, h'·d, w'·d)`` in (−1, 1). ``temporal=False``
        decodes every frame on its own even when the decoder has temporal layers (the per-frame decoder)."""
        self._check_latent(z)
        return self._decode_unscaled(z / self.scale_factor, temporal)

    def _decode_unscaled(self, z: torch.Tensor, temporal: bool = True) -> torch.Tensor:
        b, f = z.shape[0], z.shape[2]
        frames = rearrange(z, "b c f h w -> (b f) c h w")  # (b·f, c_z, h', w')
        x = self.decoder(frames, f if temporal else None)  # (b·f, c, h, w)
        return rearrange(x, "(b f) c h w -> b c f h w", b=b)  # (b, c, f, h, w)

    def forward(self, x: torch.Tensor, sample_posterior: bool = True,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, DiagonalGaussian]:
        """Reconstruct ``x``: returns ``(recon (b, c, f, h, w), posterior)``. Training samples the posterior;
        pass ``sample_posterior=False`` for the deterministic reconstruction."""
        q = self.posterior(x)
        z = q.sample(generator) if sample_posterior else q.mode()  # unscaled
        return self._decode_unscaled(z), q

    # ---- saving and loading (safetensors, the config in the metadata)

    def save(self, path: str | os.PathLike, extra_metadata: dict | None = None):
        """Write weights (and ``scale_factor``) to a ``.safetensors`` file with the config in its metadata."""
        meta = {"model": "FrameAutoencoder", "config": asdict(self.cfg),
                "scale_factor": float(self.scale_factor), **(extra_metadata or {})}
        return save_weights(path, self, meta)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | torch.device = "cpu") -> "FrameAutoencoder":
        """Rebuild the model from the config stored in ``path`` and load its weights; returns it in eval mode."""
        meta = read_weights_metadata(path)
        if meta.get("model") != "FrameAutoencoder" or "config" not in meta:
            raise ValueError(f"{path} does not hold a FrameAutoencoder (its metadata says model={meta.get('model')!r}); "
                             f"save one with FrameAutoencoder.save(path)")
        model = cls(AutoencoderConfig(**meta["config"]))
        load_weights(path, model, device=device)
        return model.to(device).eval()

    def extra_repr(self) -> str:
        c = self.cfg
        return (f"frames {c.in_channels}×H×W → latents {c.latent_channels}×H/{c.downsample}×W/{c.downsample}, "
                f"{count_parameters(self) / 1e6:.2f} M parameters, scale_factor={float(self.scale_factor):.4g}")


# ---------------------------------------------------------------- data: batches of single frames ----


def _video_of(item: Any) -> torch.Tensor:
    """The video tensor of a dataset item or loader batch: a dict with 'video', a tuple/list (first entry), or a tensor."""
    if isinstance(item, dict):
        return item["video"]
    if isinstance(item, (tuple, list)):
        return item[0]
    return item


def _as_frames(x: torch.Tensor) -> torch.Tensor:
    """Clips ``(b, c, f, h, w)`` or ``(c, f, h, w)`` → frames ``(n, c, h, w)``; frames pass through."""
    if x.dim() == 4 and x.shape[0] == 1:  # one clip (1, f, h, w), as MovingMNIST's ds[i]["video"]
        x = x.unsqueeze(0)  # (1, 1, f, h, w)
    if x.dim() == 5:
        return rearrange(x, "b c f h w -> (b f) c h w")  # (b·f, c, h, w)
    if x.dim() == 4:
        return x  # already frames (n, c, h, w)
    raise ValueError(f"expected clips (b, c, f, h, w) or frames (n, c, h, w); got shape {tuple(x.shape)}")


def _frame_batches(data, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Yield batches of frames ``(n, c, h, w)`` forever, from a tensor, a Dataset, or a DataLoader (any iterable).

    * tensor of clips or frames: ``batch_size`` frames drawn at random (with replacement) each step;
    * map-style dataset (``len`` and ``[i]``, e.g. ``MovingMNIST``): random clips, all their frames, cut to ``batch_size``;
    * any other iterable (a ``DataLoader``): its batches, every frame of them, cycling through it.
    """
    if isinstance(data, torch.Tensor):
        frames = _as_frames(data)  # (N, c, h, w)
        while True:
            idx = torch.randint(len(frames), (batch_size,), generator=generator)
            yield frames[idx]
    elif hasattr(data, "__getitem__") and hasattr(data, "__len__"):
        first = _as_frames(_video_of(data[0]))
        clips_per_batch = max(1, math.ceil(batch_size / len(first)))
        while True:
            idx = torch.randint(len(data), (clips_per_batch,), generator=generator).tolist()
            frames = torch.cat([_as_frames(_video_of(data[i])) for i in idx])  # (clips·f, c, h, w)
            perm = torch.randperm(len(frames), generator=generator)[:batch_size]
            yield frames[perm]
    elif isinstance(data, Iterable):
        while True:
            empty = True
            for batch in data:
                empty = False
                yield _as_frames(_video_of(batch))
            if empty:
                raise ValueError("the data loader yielded no batches; check the dataset is not empty")
    else:
        raise TypeError(f"train_autoencoder takes a tensor of clips, a Dataset or a DataLoader; got {type(data).__name__}")


# ---------------------------------------------------------------- training ----


def autoencoder_loss(model: FrameAutoencoder, frames: torch.Tensor, generator: torch.Generator | None = None):
    """One training loss on frames ``(n, c, h, w)``: L1(x̂, x) + kl_weight · KL(q(z|x) ‖ N(0, I)).

    Returns ``(loss, recon_l1, kl, x_hat)``; x̂ decodes a *sample* of the posterior (the VAE's reparameterisation).
    """
    x = rearrange(frames, "n c h w -> n c 1 h w")  # each frame as a one-frame clip
    x_hat, q = model(x, sample_posterior=True, generator=generator)  # (n, c, 1, h, w)
    recon = (x_hat - x).abs().mean()  # L1, per pixel
    kl = q.kl().mean()  # nats per latent element
    return recon + model.cfg.kl_weight * kl, recon, kl, x_hat


def train_autoencoder(model: FrameAutoencoder, data, steps: int | None = None, lr: float | None = None,
                      batch_size: int | None = None, device: str | torch.device | None = None,
                      log_every: int = 50, progress: bool = True,
                      callback: Callable[[int, dict], None] | None = None, seed: int = 0) -> list[dict]:
    """Train ``model`` on single frames of ``data`` (clips ``(n, 1, f, h, w)`` in [-1, 1], a Dataset, or a DataLoader).

    AdamW at ``lr`` with a short warm-up and a cosine decay to lr/10; ``steps``, ``lr`` and ``batch_size`` (frames
    per step) default to the model's config. Every ``log_every`` steps (and at the last) a record
    ``{"step", "loss", "recon", "kl", "psnr", "seconds"}`` of the current batch is appended to the returned history
    and passed to ``callback(step, record)``. PSNR (dB) is of the deterministic reconstruction (posterior mean).
    """
    cfg = model.cfg
    steps = cfg.train_steps if steps is None else steps
    lr = cfg.lr if lr is None else lr
    batch_size = cfg.batch_size if batch_size is None else batch_size
    if steps < 1 or batch_size < 1 or lr <= 0:
        raise ValueError(f"train_autoencoder needs steps >= 1, batch_size >= 1 and lr > 0; got steps={steps}, "
                         f"batch_size={batch_size}, lr={lr}")
    device = get_device(device) if not isinstance(device, torch.device) else device
    model.to(device).train()
    generator = torch.Generator().manual_seed(seed)  # CPU: which frames, and the posterior noise
    batches = _frame_batches(data, batch_size, generator)
    opt = adamw_with_decay_groups(model, lr, weight_decay=0.0)
    # linear warm-up over the first 10 % of the steps (at most 100), then a cosine down to lr/10 (optim.py)
    scheduler = warmup_cosine_scheduler(opt, warmup=max(1, min(100, steps // 10)), total=steps, min_ratio=0.1)

    history: list[dict] = []
    start = time.perf_counter()
    bar = tqdm(range(steps), desc="autoencoder", disable=not progress)
    for step in bar:
        frames = next(batches).to(device, non_blocking=True)  # (n, c, h, w)
        loss, recon, kl, _ = autoencoder_loss(model, frames, generator)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        scheduler.step()
        if (step + 1) % log_every == 0 or step + 1 == steps:
            with torch.no_grad():
                x = rearrange(frames, "n c h w -> n c 1 h w")
                x_det, _ = model(x, sample_posterior=False)
                record = {"step": step + 1, "loss": loss.item(), "recon": recon.item(), "kl": kl.item(),
                          "psnr": psnr(x_det, x).mean().item(), "seconds": time.perf_counter() - start}
            history.append(record)
            bar.set_postfix(loss=f"{record['loss']:.4f}", psnr=f"{record['psnr']:.1f}dB")
            if callback is not None:
                callback(step + 1, record)
    model.eval()
    return history


# ---------------------------------------------------------------- the latent scale factor ----


@torch.no_grad()
def estimate_scale_factor(model: FrameAutoencoder, data, max_clips: int = 256, sample: bool = False,
                          device: str | torch.device | None = None, set_it: bool = True) -> float:
    """1 / std of the unscaled latents of ``data`` (Rombach et al. 2022: "we rescale the latents by the
    component-wise standard deviation" so the diffusion model sees roughly unit variance). Sets
    ``model.scale_factor`` to it (unless ``set_it=False``) and returns it.

    ``data``: clips ``(n, c, f, h, w)``, a Dataset or a DataLoader; up to ``max_clips`` clips are used.
    ``sample`` chooses posterior samples or means; match how the diffusion model's latents are made
    (``encode(x)`` uses means by default).
    """
    device = next(model.parameters()).device if device is None else torch.device(device)
    was_training = model.training
    model.eval()
    latents: list[torch.Tensor] = []
    seen = 0
    generator = torch.Generator().manual_seed(0)
    for clips in _clip_batches(data, max_clips):
        clips = clips.to(device)
        q = model.posterior(clips)
        latents.append((q.sample(generator) if sample else q.mode()).float().flatten().cpu())
        seen += len(clips)
        if seen >= max_clips:
            break
    if not latents:
        raise ValueError("estimate_scale_factor got no clips; pass a tensor (n, c, f, h, w), a Dataset or a DataLoader")
    std = torch.cat(latents).std().item()  # one number over every element, channel and frame
    scale = 1.0 / max(std, 1e-8)
    if set_it:
        model.scale_factor.fill_(scale)
    model.train(was_training)
    return scale


def _clip_batches(data, max_clips: int, batch: int = 32) -> Iterator[torch.Tensor]:
    """Batches of clips ``(b, c, f, h, w)`` from a tensor, a Dataset or an iterable of batches."""
    if isinstance(data, torch.Tensor):
        clips = data if data.dim() == 5 else rearrange(data, "n c h w -> n c 1 h w")  # frames as one-frame clips
        for i in range(0, min(len(clips), max_clips), batch):
            yield clips[i:i + batch]
    elif hasattr(data, "__getitem__") and hasattr(data, "__len__"):
        n = min(len(data), max_clips)
        for i in range(0, n, batch):
            yield torch.stack([_video_of(data[j]) for j in range(i, min(i + batch, n))])
    else:
        for item in data:
            yield _video_of(item)


@torch.no_grad()
def reconstruct(model: FrameAutoencoder, video: torch.Tensor, sample: bool = False) -> torch.Tensor:
    """``decode(encode(video))`` in eval mode, without gradients: ``(b, c, f, h, w)`` → same shape."""
    was_training = model.training
    model.eval()
    out = model.decode(model.encode(video, sample=sample))
    model.train(was_training)
    return out


__all__ = [
    "DiagonalGaussian", "ResBlock2d", "Downsample2d", "Upsample2d", "Encoder", "Decoder", "AutoencoderConfig",
    "FrameAutoencoder", "autoencoder_loss", "train_autoencoder", "estimate_scale_factor", "reconstruct",
]


# ---------------------------------------------------------------- temporal fine-tuning of the decoder ----


def with_temporal_decoder(model: FrameAutoencoder) -> FrameAutoencoder:
    """A copy of ``model`` whose decoder has temporal layers (zero-initialised: it decodes exactly as ``model``)."""
    cfg = AutoencoderConfig(**{**asdict(model.cfg), "temporal_decoder": True})
    out = FrameAutoencoder(cfg).to(next(model.parameters()).device)
    missing, unexpected = out.load_state_dict(model.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("decoder.temporal.") for k in missing), (missing, unexpected)
    return out


def finetune_temporal_decoder(model: FrameAutoencoder, clips: torch.Tensor, steps: int = 300, batch_size: int = 16,
                              lr: float = 1e-3, latent_noise: float = 0.1, seed: int = 0,
                              progress: bool = False) -> list[float]:
    """Train only the decoder's temporal layers on ``clips`` ``(n, 1, f, h, w)`` in [-1, 1], everything else frozen
    (Video LDM, Blattmann et al. 2023, section 3.1, with an L1 loss instead of their video discriminator).

    Each step decodes the posterior means of ``batch_size`` clips, each frame's latent jittered by independent
    Gaussian noise of ``latent_noise`` × the latents' std: a sampler's latents differ a little from frame to frame
    in just this way, and that difference is what flickers. Returns the loss of every step."""
    if model.decoder.temporal is None:
        raise ValueError("this autoencoder's decoder has no temporal layers; fine-tune with_temporal_decoder(model)")
    device = next(model.parameters()).device
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith("decoder.temporal."))
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        std = float(model.posterior(clips[:64].to(device)).mean.std())
    losses = []
    model.train()
    for _ in tqdm(range(steps), desc="temporal decoder", disable=not progress):
        idx = torch.randint(0, len(clips), (batch_size,), generator=generator)
        x = clips[idx].to(device)  # (b, 1, f, h, w)
        with torch.no_grad():
            z = model.posterior(x).mean  # (b, c_z, f, h/d, w/d), unscaled
            z = z + latent_noise * std * torch.randn(z.shape, generator=generator).to(device)
        loss = (model._decode_unscaled(z) - x).abs().mean()  # L1 per pixel
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    model.eval()
    for p in model.parameters():
        p.requires_grad_(True)
    return losses
