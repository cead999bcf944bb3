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
--train-feature-nets`` (``training.train_feature_nets``); the card is ``vdiff_edu/weights/FEATURE_NETS.md``
(``report.feature_net_card``).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from ..checkpoint import load_weights, read_weights_metadata
from ..config import WEIGHTS_DIR
from ..digits import load_digits
from ..moving_mnist import MovingMNIST
from ..utils import from_uint8, get_device, to_uint8

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
        x = from_uint8(x)[:, None]  # (n, 1, f, h, w) in [-1, 1]
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


class TemporalConvBNReLU(nn.Sequential):
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
            TemporalConvBNReLU(4 * c, 8 * c, 2),  # (b, 8c, F/2, S/8, S/8)
            TemporalConvBNReLU(8 * c, 8 * c, 2),  # (b, 8c, F/4, S/8, S/8)
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
    digit_split = "train" if split == "train" else "test"
    key = (digit_split, str(mnist_dir), os.environ.get("VDIFF_MNIST_DIR"))
    if key not in _DIGITS:
        _DIGITS[key] = load_digits(digit_split, mnist_dir)
    return MovingMNIST(split=split, seed=seed, length=length, digits=_DIGITS[key], verbose=False, **spec)


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
        batch = ds.batch(range(num_clips))  # video (n, 1, f, h, w), labels, velocities, bounces, ...
        target = video_targets(batch)  # (n, 19)
        clips = to_uint8(batch["video"][:, 0])  # (n, f, h, w)
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
        batch = moving_mnist("test", spec, seed, num_clips, mnist_dir).batch(range(num_clips))
        clips = to_uint8(batch["video"][:, 0])  # (n, f, h, w)
        video.append(nets.video_outputs(clips)[1].flatten() * nets.video_scale)  # undo any scaling
        frame.append(nets.frame_outputs(clips)[1].flatten() * nets.frame_scale)
    rms = lambda parts: float(torch.cat(parts).pow(2).mean().sqrt())  # noqa: E731
    return {"video": rms(video), "frame": rms(frame)}
