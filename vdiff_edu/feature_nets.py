"""Feature networks that know Moving MNIST, trained by the toolkit itself, for the evaluation suite.

FID and FVD compare the *features* a pretrained network extracts from real and generated samples: Inception-v3
trained on ImageNet for images (Heusel et al. 2017), I3D trained on Kinetics human-action videos for video
(Unterthiner et al. 2018). On 64-pixel grey digits those networks are far outside their domain, their weights
must be downloaded, and I3D is known to reward per-frame quality over motion. So, like published MNIST work,
we train our own small feature networks on the domain:

* ``DigitClassifier`` looks at one frame and says which of the ten digits are present (multi-label: a frame
  holds one to three digits). Its penultimate features give the *frame* Fréchet distance; its decisions give
  identity persistence and condition faithfulness.
* ``VideoEncoder`` is a small (2+1)D convolutional network (Tran et al. 2018: a 2-D spatial convolution
  followed by a 1-D temporal one) that looks at a whole clip and predicts proxy labels: which digits are in it,
  which of eight compass directions they move in, whether any digit bounces. Its penultimate features give FVD-MM.

One pair of networks scores every data geometry in the course (the cpu preset's 32×32 one-digit 8-frame clips
and the gpu preset's 64×64 two-digit 16-20-frame clips): every clip is first brought to a *canonical geometry*
(``canonicalize``: frames resized to 32×32, clips resampled to 16 frames by picking the nearest frames), and the
networks are trained on a mixture of geometries. The canonical geometry is stored in the weights' metadata.

    nets = load_feature_nets()                          # the weights shipped in vdiff_edu/weights/
    feats = nets.video_features(clips_uint8)            # (n, 64) for FVD-MM
    probs, frame_feats = nets.frame_outputs(clips_uint8)  # (n, f, 10), (n, f, 64)

Train them again (reproducibly, a few minutes on 2 CPU cores) with ``python -m vdiff_edu evaluate
--train-feature-nets``; the card is ``vdiff_edu/weights/FEATURE_NETS.md``.
"""

from __future__ import annotations

import math
import os
import re
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from .checkpoint import load_weights, read_weights_metadata, save_weights
from .config import WEIGHTS_DIR
from .utils import atomic_write_bytes, count_parameters, get_device, seed_everything

CLASSIFIER_FILE = "feature_digits.safetensors"
VIDEO_ENCODER_FILE = "feature_video.safetensors"
CARD_FILE = "FEATURE_NETS.md"
NUM_CLASSES = 10  # digits 0-9
NUM_DIRECTIONS = 8  # compass bins of a direction of motion, 45° each
# the video encoder's proxy labels, one multi-hot vector: which digits, which directions of motion, any bounce
VIDEO_HEADS = {"digits": slice(0, 10), "directions": slice(10, 18), "bounce": slice(18, 19)}
NUM_VIDEO_OUTPUTS = 19

# The two data geometries of the course (the cpu and gpu presets of the end-to-end model).
GEOMETRIES = {
    "cpu": dict(image_size=32, num_frames=8, num_digits=1, digit_size=20, rule="deterministic"),
    "gpu": dict(image_size=64, num_frames=20, num_digits=2, digit_size=28, rule="deterministic"),
}


# ---------------------------------------------------------------- config ----


@dataclass
class FeatureNetConfig:
    """Sizes of the two feature networks and how they are trained. ``cpu()`` is what the toolkit ships."""

    image_size: int = 32  # canonical frame size: every frame is resized to image_size × image_size
    num_frames: int = 16  # canonical clip length: every clip is resampled to this many frames
    width: int = 16  # channels of the classifier's first convolution
    video_width: int = 12  # channels of the video encoder's first convolution
    feature_dim: int = 64  # size of the penultimate features the Fréchet distances use
    train_steps: int = 3000  # optimiser steps (both networks step once per batch)
    batch_size: int = 16  # clips per step; the classifier sees frames_per_clip frames of each
    geometries_per_batch: int = 4  # each batch mixes this many draws from the mixture (batch_size clips in all)
    frames_per_clip: int = 8  # frames drawn from each clip for the classifier
    augment: bool = True  # the classifier also learns from blurred / faint / noisy frames (see augment)
    lr: float = 2e-3  # AdamW learning rate, cosine-decayed to zero
    weight_decay: float = 1e-4
    eval_clips: int = 256  # held-out clips per geometry for the accuracy on the card
    seed: int = 0
    # (weight, MovingMNIST keyword arguments): the mixture of geometries the networks learn from
    mixture: list = field(default_factory=lambda: [
        (3, GEOMETRIES["cpu"]),
        (3, GEOMETRIES["gpu"]),
        (1, dict(GEOMETRIES["gpu"], rule="stochastic", num_frames=16)),
        (1, dict(GEOMETRIES["gpu"], num_digits=3, num_frames=16)),
        (1, dict(GEOMETRIES["gpu"], num_digits=1)),
    ])

    @classmethod
    def smoke(cls) -> "FeatureNetConfig":
        return cls(train_steps=6, batch_size=4, geometries_per_batch=2, eval_clips=8)

    @classmethod
    def cpu(cls) -> "FeatureNetConfig":
        return cls()

    @classmethod
    def gpu(cls) -> "FeatureNetConfig":
        return cls(train_steps=8000, batch_size=64, eval_clips=1024)


# ---------------------------------------------------------------- canonical geometry ----


def clips_to_tensor(clips, device: torch.device | str | None = None) -> torch.Tensor:
    """uint8 clips ``(n, f, h, w)`` (0 background, 255 digit) or float videos ``(n, 1, f, h, w)`` in [-1, 1] →
    float32 ``(n, 1, f, h, w)`` in [-1, 1]."""
    x = torch.as_tensor(np.asarray(clips)) if not torch.is_tensor(clips) else clips
    if x.dtype == torch.uint8:
        if x.dim() != 4:
            raise ValueError(f"uint8 clips must have shape (n, f, h, w); got {tuple(x.shape)}. "
                             f"A single clip (f, h, w) needs a batch axis: clips[None]")
        x = x.float().div(127.5).sub(1.0)[:, None]  # (n, 1, f, h, w) in [-1, 1]
    elif x.dim() == 4:
        x = x.float()[:, None]  # (n, 1, f, h, w) a float (n, f, h, w) batch, assumed in [-1, 1]
    if x.dim() != 5 or x.shape[1] != 1:
        raise ValueError(f"expected uint8 clips (n, f, h, w) or float videos (n, 1, f, h, w); got {tuple(x.shape)}")
    return x.to(device or "cpu", torch.float32)


def resample_frames(num_in: int, num_out: int) -> torch.Tensor:
    """Indices of the ``num_out`` frames nearest to evenly spaced times over a clip of ``num_in`` frames.
    8 → 16 repeats every frame twice; 20 → 16 drops 4 frames."""
    return torch.linspace(0, num_in - 1, num_out).round().long()  # (num_out,)


def resize_frames(frames: torch.Tensor, size: int) -> torch.Tensor:
    """(n, c, h, w) → (n, c, size, size): area averaging to shrink (no aliasing), bilinear to enlarge."""
    if frames.shape[-1] == size and frames.shape[-2] == size:
        return frames
    if frames.shape[-1] > size:
        return F.interpolate(frames, size=(size, size), mode="area")
    return F.interpolate(frames, size=(size, size), mode="bilinear", align_corners=False)


def canonicalize(video: torch.Tensor, image_size: int = 32, num_frames: int = 16) -> torch.Tensor:
    """Bring a batch of videos ``(b, 1, f, h, w)`` to the geometry the feature networks expect:
    ``(b, 1, num_frames, image_size, image_size)``."""
    b, c, f, h, w = video.shape
    video = video[:, :, resample_frames(f, num_frames).to(video.device)]  # (b, 1, F, h, w)
    frames = rearrange(video, "b c f h w -> (b f) c h w")
    frames = resize_frames(frames, image_size)  # (b·F, 1, S, S)
    return rearrange(frames, "(b f) c h w -> b c f h w", b=b)  # (b, 1, F, S, S)


# ---------------------------------------------------------------- the digit classifier ----


def conv_bn_relu(c_in: int, c_out: int) -> nn.Sequential:
    """3×3 convolution, batch norm (Ioffe & Szegedy 2015: without it these small nets barely learn on the
    mostly-black frames), ReLU."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())


class DigitClassifier(nn.Module):
    """Which digits are in a frame? Multi-label: ten independent logits, one per digit 0-9 (sigmoid > 0.5 =
    present). Input: frames ``(n, 1, S, S)`` in [-1, 1] at the canonical size S (32).

    A small fully convolutional net whose feature maps are max-pooled over space ("is this pattern anywhere in
    the frame?"): a digit is recognised wherever it is, and two digits light up two sets of channels
    (multiple-instance learning, as in weakly supervised detection, Oquab et al. 2015)."""

    def __init__(self, cfg: FeatureNetConfig):
        super().__init__()
        w = cfg.width
        self.trunk = nn.Sequential(
            conv_bn_relu(1, w), nn.MaxPool2d(2),  # (n, w, S/2, S/2)
            conv_bn_relu(w, 2 * w), nn.MaxPool2d(2),  # (n, 2w, S/4, S/4)
            conv_bn_relu(2 * w, 4 * w), nn.MaxPool2d(2),  # (n, 4w, S/8, S/8)
            conv_bn_relu(4 * w, cfg.feature_dim),  # (n, feature_dim, S/8, S/8) receptive field 38 px
        )
        self.head = nn.Linear(cfg.feature_dim, NUM_CLASSES)

    def feature_maps(self, frames: torch.Tensor) -> torch.Tensor:
        return self.trunk(frames)  # (n, feature_dim, S/8, S/8)

    def features(self, frames: torch.Tensor) -> torch.Tensor:
        """Penultimate features ``(n, feature_dim)`` (spatial max of the feature maps), used by the frame FD."""
        return self.trunk(frames).amax(dim=(2, 3))  # (n, feature_dim)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(frames))  # (n, 10) logits


# ---------------------------------------------------------------- the (2+1)D video encoder ----


class TemporalConv(nn.Sequential):
    """A 3-tap convolution along the frame axis only, at every pixel, then batch norm and a ReLU."""

    def __init__(self, c_in: int, c_out: int, temporal_stride: int = 1):
        super().__init__(
            nn.Conv3d(c_in, c_out, (3, 1, 1), stride=(temporal_stride, 1, 1), padding=(1, 0, 0), bias=False),
            nn.BatchNorm3d(c_out),
            nn.ReLU(),
        )


class VideoEncoder(nn.Module):
    """A clip → proxy labels (digits present, compass directions of motion, any bounce), as 19 logits. Input:
    videos ``(b, 1, F, S, S)`` in [-1, 1] at the canonical geometry (16 frames, 32×32).

    A (2+1)D design (Tran et al. 2018: spatial and temporal convolutions kept apart): first a small 2-D network
    on every frame and its change to the next frame (conv + batch norm + ReLU + max-pool, three times: what is
    where, and which way it moves), then 1-D convolutions along the frame axis (how that evolves), then mean and
    max pooling over frames and space."""

    def __init__(self, cfg: FeatureNetConfig):
        super().__init__()
        c = cfg.video_width
        self.spatial = nn.Sequential(
            conv_bn_relu(2, c), nn.MaxPool2d(2),  # (b·F, c, S/2, S/2)
            conv_bn_relu(c, 2 * c), nn.MaxPool2d(2),  # (b·F, 2c, S/4, S/4)
            conv_bn_relu(2 * c, 4 * c), nn.MaxPool2d(2),  # (b·F, 4c, S/8, S/8)
        )
        self.temporal = nn.Sequential(
            TemporalConv(4 * c, 8 * c, 2),  # (b, 8c, F/2, S/8, S/8)
            TemporalConv(8 * c, 8 * c, 2),  # (b, 8c, F/4, S/8, S/8)
        )
        self.proj = nn.Sequential(nn.Linear(16 * c, cfg.feature_dim), nn.ReLU())
        self.head = nn.Linear(cfg.feature_dim, NUM_VIDEO_OUTPUTS)

    def features(self, video: torch.Tensor) -> torch.Tensor:
        """Penultimate features ``(b, feature_dim)``, used by FVD-MM and KVD-MM."""
        b = video.shape[0]
        # each frame with its change to the next one: the change shows where the ink moves, at full resolution
        # (a cheap stand-in for the optical-flow stream of two-stream networks, Simonyan & Zisserman 2014)
        change = F.pad(video[:, :, 1:] - video[:, :, :-1], (0, 0, 0, 0, 0, 1))  # (b, 1, F, S, S), last frame 0
        x = torch.cat([video, change], dim=1)  # (b, 2, F, S, S)
        h = self.spatial(rearrange(x, "b c f h w -> (b f) c h w"))  # (b·F, 4c, S/8, S/8) every frame alone
        h = rearrange(h, "(b f) c h w -> b c f h w", b=b)  # (b, 4c, F, S/8, S/8)
        h = self.temporal(h)  # (b, 8c, F/4, S/8, S/8)
        h = torch.cat([h.mean(dim=(2, 3, 4)), h.amax(dim=(2, 3, 4))], dim=1)  # (b, 16c)
        return self.proj(h)  # (b, feature_dim)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(video))  # (b, 19) logits


# ---------------------------------------------------------------- proxy labels ----


def direction_bins(velocity: torch.Tensor) -> torch.Tensor:
    """Compass bin 0-7 of velocities ``(..., 2)`` given as (vy, vx) in pixels (y grows downwards):
    0 = right, 1 = up-right, 2 = up, ... 7 = down-right."""
    angle = torch.atan2(-velocity[..., 0], velocity[..., 1])  # (...) counter-clockwise from "right"
    return torch.floor(angle / (2 * math.pi / NUM_DIRECTIONS) + 0.5).long() % NUM_DIRECTIONS


def digit_targets(labels: torch.Tensor) -> torch.Tensor:
    """labels ``(b, num_digits)`` → multi-hot ``(b, 10)``: which digits are present."""
    return F.one_hot(labels.long(), NUM_CLASSES).amax(dim=1).float()  # (b, 10)


def video_targets(items: dict[str, torch.Tensor]) -> torch.Tensor:
    """The proxy labels of a batch of clips (a collated ``MovingMNIST`` batch) as one multi-hot ``(b, 19)``."""
    digits = digit_targets(items["labels"])  # (b, 10)
    # every compass direction any digit moves in during the clip (a bounce adds the reflected direction)
    dirs = F.one_hot(direction_bins(items["velocities"]), NUM_DIRECTIONS).flatten(1, 2).amax(dim=1).float()  # (b, 8)
    bounce = items["bounces"].flatten(1).any(dim=1, keepdim=True).float()  # (b, 1)
    return torch.cat([digits, dirs, bounce], dim=1)  # (b, 19)


# ---------------------------------------------------------------- loading, feature extraction ----


class FeatureNets:
    """The two trained networks plus their metadata, with helpers that take uint8 clips ``(n, f, h, w)``."""

    def __init__(self, classifier: DigitClassifier, video_encoder: VideoEncoder, cfg: FeatureNetConfig,
                 metadata: dict | None = None, device: torch.device | str = "cpu"):
        self.device = torch.device(device)
        self.classifier = classifier.to(self.device).eval()
        self.video_encoder = video_encoder.to(self.device).eval()
        self.cfg = cfg
        self.metadata = metadata or {}
        # typical size (root mean square) of each network's features on real clips, stored at training time:
        # features are returned divided by it, so they are of order 1 whatever the network (as KID's kernel expects)
        rms = self.metadata.get("classifier", {}).get("feature_rms", {})
        self.video_scale, self.frame_scale = float(rms.get("video", 1.0)), float(rms.get("frame", 1.0))

    @torch.no_grad()
    def video_outputs(self, clips, batch_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
        """Sigmoid probabilities ``(n, 19)`` and penultimate features ``(n, feature_dim)`` of every clip (features
        divided by their root mean square on real clips, so of order 1)."""
        x = clips_to_tensor(clips)  # (n, 1, f, h, w)
        probs, feats = [], []
        for chunk in x.split(batch_size):
            v = canonicalize(chunk.to(self.device), self.cfg.image_size, self.cfg.num_frames)  # (b, 1, F, S, S)
            h = self.video_encoder.features(v)  # (b, d)
            probs.append(torch.sigmoid(self.video_encoder.head(h)).cpu())
            feats.append(h.cpu() / self.video_scale)
        return torch.cat(probs), torch.cat(feats)  # (n, 19), (n, d)

    def video_features(self, clips, batch_size: int = 64) -> torch.Tensor:
        return self.video_outputs(clips, batch_size)[1]  # (n, d)

    @torch.no_grad()
    def frame_outputs(self, clips, batch_size: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-frame digit probabilities ``(n, f, 10)`` and classifier features ``(n, f, feature_dim)`` (divided by
        their root mean square on real frames)."""
        x = clips_to_tensor(clips)  # (n, 1, f, h, w)
        n, _, f = x.shape[:3]
        frames = rearrange(x, "n c f h w -> (n f) c h w")
        probs, feats = [], []
        for chunk in frames.split(batch_size):
            h = self.classifier.features(resize_frames(chunk.to(self.device), self.cfg.image_size))  # (m, d)
            probs.append(torch.sigmoid(self.classifier.head(h)).cpu())
            feats.append(h.cpu() / self.frame_scale)
        probs = rearrange(torch.cat(probs), "(n f) k -> n f k", n=n)  # (n, f, 10)
        feats = rearrange(torch.cat(feats), "(n f) d -> n f d", n=n)  # (n, f, d)
        return probs, feats


_CACHE: dict = {}


def load_feature_nets(weights_dir: str | Path | None = None, device: torch.device | str | None = None) -> FeatureNets:
    """Load the shipped feature networks (cached per folder and device)."""
    weights_dir = Path(weights_dir or WEIGHTS_DIR)
    device = torch.device(device) if device is not None else get_device()
    paths = [weights_dir / CLASSIFIER_FILE, weights_dir / VIDEO_ENCODER_FILE]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"feature network weights not found: {[str(p) for p in missing]}. They ship with "
                                f"vdiff_edu; retrain them with `python -m vdiff_edu evaluate --train-feature-nets` "
                                f"(a few minutes on a CPU), or pass weights_dir= the folder that holds them")
    key = (str(weights_dir.resolve()), str(device), tuple(p.stat().st_mtime_ns for p in paths))
    if key not in _CACHE:
        meta = read_weights_metadata(paths[0])
        known = {f.name for f in fields(FeatureNetConfig)} - {"mixture"}
        cfg = FeatureNetConfig(**{k: v for k, v in meta["config"].items() if k in known})
        classifier, meta_c = load_weights(paths[0], DigitClassifier(cfg))
        video_encoder, meta_v = load_weights(paths[1], VideoEncoder(cfg))
        _CACHE[key] = FeatureNets(classifier, video_encoder, cfg, {"classifier": meta_c, "video_encoder": meta_v}, device)
    return _CACHE[key]


# ---------------------------------------------------------------- data for training and evaluation ----


_DIGITS: dict = {}


def moving_mnist(split: str, spec: dict, seed: int, length: int, mnist_dir=None):
    """``MovingMNIST(split, seed, length, **spec)`` sharing one copy of the digits per split (loaded once per
    process, from ``mnist_dir``, else ``VDIFF_MNIST_DIR``, the cache, or the synthetic fallback)."""
    from .digits import load_digits
    from .moving_mnist import MovingMNIST

    digit_split = "train" if split == "train" else "test"
    key = (digit_split, str(mnist_dir), os.environ.get("VDIFF_MNIST_DIR"))
    if key not in _DIGITS:
        _DIGITS[key] = load_digits(digit_split, mnist_dir)
    return MovingMNIST(split=split, seed=seed, length=length, digits=_DIGITS[key], verbose=False, **spec)


def collate(ds, indices) -> dict[str, torch.Tensor]:
    """Stack items ``ds[i]`` into a batch: ``video`` (b, 1, f, h, w), ``labels`` (b, k), ``velocities``, ``bounces``."""
    items = [ds[int(i)] for i in indices]
    return {key: torch.stack([torch.as_tensor(it[key]) for it in items])
            for key in ("video", "labels", "velocities", "bounces", "positions")}


def _spec_name(spec: dict) -> str:
    for name, geo in GEOMETRIES.items():
        if spec == geo:
            return name
    return f"{spec['image_size']}px-{spec['num_frames']}f-{spec['num_digits']}d-{spec['rule']}"


# ---------------------------------------------------------------- accuracy ----


@torch.no_grad()
def evaluate_feature_nets(nets: FeatureNets, num_clips: int = 256, seed: int = 1, specs: dict | None = None,
                          mnist_dir=None) -> dict[str, dict[str, float]]:
    """Held-out accuracy of both networks on ``num_clips`` test-split clips per geometry (``GEOMETRIES``).

    * ``frame_set``: frames whose predicted digit set (sigmoid > 0.5) equals the true set exactly;
    * ``clip_digits`` / ``clip_directions`` / ``clip_bounce``: clips whose video-encoder digit set, set of
      direction bins moved in, and any-bounce flag are exactly right.
    """
    specs = specs or GEOMETRIES
    report = {}
    for name, spec in specs.items():
        ds = moving_mnist("test", spec, seed, num_clips, mnist_dir)
        batch = collate(ds, range(num_clips))
        target = video_targets(batch)  # (n, 19)
        clips = ((batch["video"][:, 0] + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)  # (n, f, h, w)
        probs_v, _ = nets.video_outputs(clips)
        probs_f, _ = nets.frame_outputs(clips)  # (n, f, 10)
        pred_v = probs_v > 0.5
        exact = lambda p, y: (p == y.bool()).all(dim=-1).float().mean().item()  # noqa: E731
        report[name] = {
            "frame_set": exact(probs_f > 0.5, target[:, None, :10].expand_as(probs_f)),
            "clip_digits": exact(pred_v[:, VIDEO_HEADS["digits"]], target[:, VIDEO_HEADS["digits"]]),
            "clip_directions": exact(pred_v[:, VIDEO_HEADS["directions"]], target[:, VIDEO_HEADS["directions"]]),
            "clip_bounce": exact(pred_v[:, VIDEO_HEADS["bounce"]], target[:, VIDEO_HEADS["bounce"]]),
            "num_clips": num_clips,
        }
    return report


@torch.no_grad()
def feature_rms(nets: FeatureNets, num_clips: int = 256, seed: int = 1, mnist_dir=None) -> dict[str, float]:
    """Root mean square of the raw video and frame features on held-out real clips of both course geometries."""
    video, frame = [], []
    for spec in GEOMETRIES.values():
        batch = collate(moving_mnist("test", spec, seed, num_clips, mnist_dir), range(num_clips))
        clips = ((batch["video"][:, 0] + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)  # (n, f, h, w)
        video.append(nets.video_outputs(clips)[1].flatten() * nets.video_scale)  # undo any scaling
        frame.append(nets.frame_outputs(clips)[1].flatten() * nets.frame_scale)
    rms = lambda parts: float(torch.cat(parts).pow(2).mean().sqrt())  # noqa: E731
    return {"video": rms(video), "frame": rms(frame)}


def augment(video: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Degrade training clips ``(b, 1, F, S, S)`` in [-1, 1] the way generated clips are often degraded, so the
    networks still recognise digits in them (without it a blur of half a pixel fools the classifier):

    1. a Gaussian blur of σ ~ U(0.2, 1.2) px on half of the clips;
    2. fainter ink on half: x ← −1 + (x + 1)·U(0.5, 1);
    3. Gaussian noise of σ ~ U(0, 0.15) on half.
    The labels stay what they were."""
    b = video.shape[0]
    out = []
    for clip, (u_blur, u_faint, u_noise), (s_blur, s_faint, s_noise) in zip(
            video, torch.rand(b, 3, generator=gen), torch.rand(b, 3, generator=gen)):
        x = clip.transpose(0, 1)  # (F, 1, S, S) the frames of one clip
        if u_blur < 0.5:
            sigma = 0.2 + float(s_blur)
            k = torch.arange(-3, 4, dtype=x.dtype, device=x.device)
            g = torch.exp(-k**2 / (2 * sigma**2))
            g = g / g.sum()
            x = F.conv2d(F.pad(x, (0, 0, 3, 3), mode="replicate"), g.view(1, 1, 7, 1))
            x = F.conv2d(F.pad(x, (3, 3, 0, 0), mode="replicate"), g.view(1, 1, 1, 7))
        if u_faint < 0.5:
            x = -1 + (x + 1) * (0.5 + 0.5 * float(s_faint))
        if u_noise < 0.5:
            x = x + 0.15 * float(s_noise) * torch.randn(x.shape, generator=gen).to(x.device)
        out.append(x.transpose(0, 1))  # (1, F, S, S)
    return torch.stack(out).clamp(-1, 1)  # (b, 1, F, S, S)


# ---------------------------------------------------------------- training ----


def _digit_source(ds) -> str:
    for obj in (ds, getattr(ds, "digits", None)):
        if obj is not None and getattr(obj, "source", None):
            return str(obj.source)
    return "unknown"


def train_feature_nets(cfg: FeatureNetConfig | None = None, out_dir: str | Path | None = None, device=None,
                       mnist_dir=None, num_threads: int | None = 2, log_every: int = 200) -> FeatureNets:
    """Train both feature networks from scratch on a mixture of Moving MNIST geometries, measure their held-out
    accuracy, and save them (safetensors, config + accuracy + digit source in the metadata) to ``out_dir``
    (default: the package's ``weights/`` folder). Reproducible: same seed, same threads → same weights."""
    cfg = cfg or FeatureNetConfig.cpu()
    device = torch.device(device) if device is not None else get_device()
    if num_threads and device.type == "cpu":
        torch.set_num_threads(num_threads)
    start = time.time()

    # 1. one endless, index-deterministic stream of fresh training clips (train split) per geometry
    gen = seed_everything(cfg.seed)
    weights = torch.tensor([w for w, _ in cfg.mixture], dtype=torch.float)
    streams = [moving_mnist("train", spec, cfg.seed, 10**9, mnist_dir) for _, spec in cfg.mixture]
    cursor = [0] * len(streams)
    source = _digit_source(streams[0])
    print(f"training on a mixture of {len(streams)} geometries, digits: {source}")

    classifier, video_encoder = DigitClassifier(cfg).to(device), VideoEncoder(cfg).to(device)
    print(f"DigitClassifier: {count_parameters(classifier) / 1e6:.3f} M parameters; "
          f"VideoEncoder: {count_parameters(video_encoder) / 1e6:.3f} M parameters")
    params = list(classifier.parameters()) + list(video_encoder.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s / cfg.train_steps, 1.0))))
    for step in range(cfg.train_steps):
        # 2. a batch mixed from several geometries (batch norm then sees the mixture it will be used on): draw
        #    geometries_per_batch of them, take the next clips of each stream, bring them to the canonical geometry
        videos, targets = [], []
        per = cfg.batch_size // cfg.geometries_per_batch
        for g in torch.multinomial(weights, cfg.geometries_per_batch, replacement=True, generator=gen).tolist():
            batch = collate(streams[g], range(cursor[g], cursor[g] + per))
            cursor[g] += per
            videos.append(canonicalize(batch["video"].to(device), cfg.image_size, cfg.num_frames))  # (per, 1, F, S, S)
            targets.append(video_targets(batch).to(device))  # (per, 19)
        video, target = torch.cat(videos), torch.cat(targets)  # (b, 1, F, S, S), (b, 19)

        # 3. the video encoder predicts the proxy labels of the clip
        loss_v = F.binary_cross_entropy_with_logits(video_encoder(video), target)

        # 4. the classifier predicts the digit set of a few frames of each clip, degraded the way generated
        #    frames often are (it must read digits in them; the video encoder, whose features must notice
        #    such degradation, sees the clean clips)
        b, _, f = video.shape[:3]
        seen = augment(video, gen) if cfg.augment else video  # (b, 1, F, S, S)
        pick = torch.randint(0, f, (b, cfg.frames_per_clip), generator=gen).to(device)  # (b, k) frame indices
        frames = seen[:, 0][torch.arange(b, device=device)[:, None], pick]  # (b, k, S, S)
        frames = rearrange(frames, "b k h w -> (b k) 1 h w")  # (b·k, 1, S, S)
        target_c = target[:, :NUM_CLASSES].repeat_interleave(cfg.frames_per_clip, 0)  # (b·k, 10)
        loss_c = F.binary_cross_entropy_with_logits(classifier(frames), target_c)

        opt.zero_grad(set_to_none=True)
        (loss_v + loss_c).backward()
        opt.step()
        sched.step()
        if log_every and (step % log_every == 0 or step == cfg.train_steps - 1):
            print(f"step {step:5d}  video loss {loss_v.item():.4f}  frame loss {loss_c.item():.4f}  "
                  f"({time.time() - start:.0f} s)")
    train_seconds = time.time() - start

    # 5. held-out accuracy on test-split clips of both course geometries
    nets = FeatureNets(classifier, video_encoder, cfg, device=device)
    accuracy = evaluate_feature_nets(nets, cfg.eval_clips, seed=cfg.seed + 1, mnist_dir=mnist_dir)
    for name, acc in accuracy.items():
        print(f"held-out {name}: " + ", ".join(f"{k} {v:.3f}" for k, v in acc.items() if k != "num_clips"))

    # 6. save both, with everything needed to rebuild and judge them
    rms = feature_rms(nets, cfg.eval_clips, seed=cfg.seed + 1, mnist_dir=mnist_dir)
    meta = {"config": asdict(cfg), "accuracy": accuracy, "feature_rms": rms, "digit_source": source,
            "canonical": {"image_size": cfg.image_size, "num_frames": cfg.num_frames}, "geometries": GEOMETRIES,
            "train_seconds": round(train_seconds, 1), "device": str(device), "torch_threads": torch.get_num_threads(),
            "torch_version": torch.__version__}
    out_dir = Path(out_dir or WEIGHTS_DIR)
    save_weights(out_dir / CLASSIFIER_FILE, classifier, dict(meta, network="DigitClassifier"))
    save_weights(out_dir / VIDEO_ENCODER_FILE, video_encoder, dict(meta, network="VideoEncoder"))
    atomic_write_bytes(out_dir / CARD_FILE, feature_net_card(meta, classifier, video_encoder).encode())
    print(f"saved {out_dir / CLASSIFIER_FILE}, {out_dir / VIDEO_ENCODER_FILE} and {out_dir / CARD_FILE} "
          f"({time.time() - start:.0f} s in all)")
    return FeatureNets(classifier, video_encoder, cfg, {"classifier": meta, "video_encoder": meta}, device)


# ---------------------------------------------------------------- the card ----


def feature_net_card(meta: dict, classifier: nn.Module, video_encoder: nn.Module) -> str:
    """The Markdown card shipped beside the weights: what the networks are, how they were trained, and their
    held-out accuracy (the numbers come straight from the training run's metadata)."""
    cfg, acc = meta["config"], meta["accuracy"]
    keys = ("frame_set", "clip_digits", "clip_directions", "clip_bounce")
    rows = [f"| {name} | {a['num_clips']} | " + " | ".join(f"{a[k]:.3f}" for k in keys) + " |" for name, a in acc.items()]
    geos = "\n".join(f"- **{name}**: {g['num_frames']} frames of {g['image_size']}×{g['image_size']}, "
                     f"{g['num_digits']} digit(s) of {g['digit_size']} px, {g['rule']} rule" for name, g in meta["geometries"].items())
    mixture = "\n".join(f"- weight {w}: {g['num_frames']} frames, {g['image_size']} px, {g['num_digits']} digit(s) of "
                        f"{g['digit_size']} px, {g['rule']}" for w, g in cfg["mixture"])
    source = re.sub(r" of /\S+", " of $VDIFF_MNIST_DIR", meta["digit_source"])  # no local paths on the card
    return f"""# Feature networks for evaluating Moving MNIST videos

`{CLASSIFIER_FILE}` (DigitClassifier, {count_parameters(classifier):,} parameters) and `{VIDEO_ENCODER_FILE}`
(VideoEncoder, {count_parameters(video_encoder):,} parameters): the networks behind `vdiff_edu.metrics`. Written by
`python -m vdiff_edu evaluate --train-feature-nets` (`vdiff_edu.feature_nets.train_feature_nets`); this card is
generated by the same run, so its numbers are the run's own.

## What they are

- **DigitClassifier**: a frame → which of the digits 0-9 are present (multi-label, sigmoid > 0.5). Four 3×3
  conv + batch-norm + ReLU layers with max-pooling, then a spatial max over the feature maps ({cfg['feature_dim']}
  features: the frame FD uses them) and a linear layer. Used by `frame_fd`, `identity_persistence`,
  `condition_faithfulness`.
- **VideoEncoder**: a clip → proxy labels: which digits are present (10), which of 8 compass directions the digits
  move in during the clip (8), whether any digit bounces (1). (2+1)D (Tran et al. 2018): a small 2-D network on
  every frame and its difference to the next frame, then two temporal convolutions, mean + max pooling over frames and space, a linear layer to {cfg['feature_dim']} features (FVD-MM and KVD-MM use them), a linear head.

## Input geometry

Features are returned divided by their root mean square on held-out real clips (video {meta.get('feature_rms', {}).get('video', 1.0):.3g},
frame {meta.get('feature_rms', {}).get('frame', 1.0):.3g}), so they are of order 1, as KID's kernel (xᵀy/d + 1)³ expects.

Every clip is brought to the canonical geometry **{meta['canonical']['num_frames']} frames × {meta['canonical']['image_size']}×{meta['canonical']['image_size']}**
before either network sees it (`canonicalize`: area-resize each frame; pick the nearest frame for each of the
canonical times, so 8 frames are each shown twice and 20 lose 4). Pixels in [-1, 1] (uint8 0..255 are converted).
The course's two geometries, both scored by these networks:

{geos}

## Training

Trained from scratch on a mixture of Moving MNIST geometries (train split; the digits: {source}):

{mixture}

{cfg['train_steps']} AdamW steps (lr {cfg['lr']}, cosine to 0, weight decay {cfg['weight_decay']}), {cfg['batch_size']} fresh clips per
step mixed from {cfg['geometries_per_batch']} draws of the mixture (so batch norm sees the mixture it is used on), and
{cfg['frames_per_clip']} frames of each clip for the classifier; {'the classifier sees half of its clips blurred, half with fainter ink and half with noise added (`augment`), so it still reads the digits of slightly degraded generated clips (the video encoder sees clean clips: its features should notice the degradation); ' if cfg.get('augment') else ''}binary cross-entropy; seed {cfg['seed']}. It took
{meta['train_seconds']:.0f} s on {meta['device']} with {meta['torch_threads']} thread(s), torch {meta['torch_version']} (on the
development machine: 2 cores shared with other jobs, so slower than an idle one). Reproduce it with

    VDIFF_MNIST_DIR=/path/to/mnist python -m vdiff_edu evaluate --train-feature-nets --threads {meta['torch_threads']}

Same seed, same digits, same thread count → the same weights (tested on the smoke preset).

## Held-out accuracy

On {acc[next(iter(acc))]['num_clips']} clips per geometry of the *test* split (digit images never seen in training;
`evaluate_feature_nets(nets, num_clips, seed=1)`). Exact-match: every one of the labels must be right.

| geometry | clips | frame_set | clip_digits | clip_directions | clip_bounce |
|---|---:|---:|---:|---:|---:|
{chr(10).join(rows)}

- `frame_set`: frames whose predicted digit set is exactly right (classifier); guessing gets 1 in 10 (one digit)
  or about 1 in 50 (two digits) right;
- `clip_digits`, `clip_directions`, `clip_bounce`: clips whose digit set / set of direction bins moved in /
  any-bounce flag the video encoder gets exactly right. Nearly every clip bounces, so `clip_bounce` mostly
  reflects that base rate. The video encoder's proxy tasks are only a means to useful features: its accuracy
  says its features know digits and motion, not that it is a good classifier.

`benchmarks/bench_feature_nets.py` re-measures these; `tests/test_metrics.py` checks a small sample of them.

## Limits

- Trained on real MNIST digits: on the synthetic fallback digits the classifier is far less accurate, so identity
  and faithfulness scores there are rough. Distances are still comparable between sets scored the same way.
- Two digits at 64×64 are seen at 32×32 (digits of 14 px) and overlapping digits are often confused, which is why
  `identity_persistence` averages over windows of max(3, f/4) frames and takes the clip's m most probable digits;
  even so real two-digit clips do not all score 1 (see the real-vs-real rows in `docs/benchmarks.md`).
  `python -m vdiff_edu evaluate --train-feature-nets --feature-preset gpu` trains longer (for a GPU).
- FVD-MM values are comparable only between runs scored with the same weights, the same n and the same geometry.
"""
