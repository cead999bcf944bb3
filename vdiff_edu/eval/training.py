"""Training the two feature networks from scratch, reproducibly, and writing their card.

``train_feature_nets`` draws fresh Moving MNIST clips from a mixture of geometries, trains ``DigitClassifier``
(on frames degraded by ``augment``) and ``VideoEncoder`` (on clean clips) side by side, measures their
held-out accuracy, and saves both (safetensors, with the config, the accuracy and the digit source in the
metadata) beside ``FEATURE_NETS.md`` (``report.feature_net_card``). Same seed, same digits, same thread
count → the same weights.

    python -m vdiff_edu evaluate --train-feature-nets            # the cpu preset, into vdiff_edu/weights/
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F
from einops import rearrange

from ..checkpoint import save_weights
from ..config import WEIGHTS_DIR
from ..optim import warmup_cosine_scheduler
from ..utils import atomic_write_bytes, count_parameters, gaussian_blur, get_device, seed_everything
from .feature_nets import (CARD_FILE, CLASSIFIER_FILE, GEOMETRIES, NUM_CLASSES, VIDEO_ENCODER_FILE, DigitClassifier,
                           FeatureNetConfig, FeatureNets, VideoEncoder, canonicalize, evaluate_feature_nets, feature_rms,
                           moving_mnist, video_targets)
from .report import feature_net_card

# ---------------------------------------------------------------- degrading training frames ----


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
            x = gaussian_blur(x, sigma=0.2 + float(s_blur), radius=3)  # (F, 1, S, S) a 7-tap kernel
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
    sched = warmup_cosine_scheduler(opt, warmup=0, total=cfg.train_steps, min_ratio=0.0)  # a cosine to 0 (optim.py)
    for step in range(cfg.train_steps):
        # 2. a batch mixed from several geometries (batch norm then sees the mixture it will be used on): draw
        #    geometries_per_batch of them, take the next clips of each stream, bring them to the canonical geometry
        videos, targets = [], []
        per = cfg.batch_size // cfg.geometries_per_batch
        for g in torch.multinomial(weights, cfg.geometries_per_batch, replacement=True, generator=gen).tolist():
            batch = streams[g].batch(range(cursor[g], cursor[g] + per))  # video (per, 1, f, h, w), labels, ...
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
