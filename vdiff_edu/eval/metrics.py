"""Measuring what a video model makes, natively on Moving MNIST, always beside real-vs-real and broken baselines.

A good-looking GIF proves little: a model can copy one frame, flicker, swap a 3 for an 8 half-way, or move its
digits in ways no bouncing digit moves. This module measures each failure on its own:

==========================  =========================================================  ========
metric                      what it measures                                           better
==========================  =========================================================  ========
``fvd_mm``                  Fréchet distance of the video encoder's features (FVD-MM)  lower
``kvd_mm``                  kernel (unbiased polynomial MMD²) version, ×1000           lower
``frame_fd``                Fréchet distance of the digit classifier's frame features  lower
``identity_persistence``    clips in which every frame shows the clip's digits         higher
``identity_frames``         frames that show their clip's digits                       higher
``condition_faithfulness``  clips whose detected digit set is the one asked for        higher
``flicker``                 frame-to-frame change that motion does not explain         lower
``motion_plausibility``     digit-track steps that obey the bouncing rules             higher
``dynamic_degree``          how far digits move, px per frame at 64×64                 ≈ real
==========================  =========================================================  ========

plus ``prediction_metrics`` (MSE / PSNR / SSIM against the true future, mean over samples and best of N) when
frames are conditioned on. ``evaluate_clips`` runs them all on generated clips and on the baselines — *real vs
real* (a second real set of the same size: the best score reachable) and *broken* sets (shuffled frames, a
frozen first frame, pure noise: what failure looks like) — and writes a Markdown table and a JSON file
(``report.write_report``).

The feature networks (``feature_nets.py``) are trained by the toolkit on Moving MNIST and ship with it.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..moving_mnist import STYLES, render_clip, resize_digit, stroke_style
from ..similarity import mse, psnr, ssim
from ..utils import from_uint8, gaussian_blur, to_uint8
from .feature_nets import FeatureNets, load_feature_nets, moving_mnist
from .report import format_value, write_report

# ---------------------------------------------------------------- 1. distances between feature sets ----


def _as_float64(x) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x).detach().to("cpu", torch.float64)
    if x.dim() != 2:
        raise ValueError(f"features must be a 2-D array (num_samples, feature_dim); got shape {tuple(x.shape)}. "
                         f"Flatten clips' frame features with features.reshape(-1, features.shape[-1])")
    return x


def sqrtm_psd(m: torch.Tensor) -> torch.Tensor:
    """Square root of a symmetric positive semi-definite matrix via its eigen-decomposition:
    M = V·diag(λ)·Vᵀ  ⇒  M^½ = V·diag(√λ)·Vᵀ (tiny negative λ from round-off are clipped to 0)."""
    m = (m + m.T) / 2  # symmetrise away round-off
    eigvals, eigvecs = torch.linalg.eigh(m)  # (d,), (d, d)
    return (eigvecs * eigvals.clamp(min=0).sqrt()) @ eigvecs.T  # (d, d)


def frechet_distance(x, y) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets ``x (n, d)`` and ``y (m, d)``:

        FD = ‖μ_x − μ_y‖² + Tr(Σ_x + Σ_y − 2·(Σ_x^½ Σ_y Σ_x^½)^½)

    (Dowson & Landau 1982; used as FID by Heusel et al. 2017 and FVD by Unterthiner et al. 2018). The matrix
    square root is taken with symmetric eigen-decompositions in float64: Tr((Σ_xΣ_y)^½) equals
    Tr((Σ_x^½ Σ_y Σ_x^½)^½), whose argument is symmetric PSD, so no scipy and no complex round-off.
    0 for two identical sets; biased upwards for small n (compare scores at equal n only).
    """
    x, y = _as_float64(x), _as_float64(y)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"both feature sets need the same feature_dim; got {x.shape[1]} and {y.shape[1]}")
    if len(x) < 2 or len(y) < 2:
        raise ValueError(f"a covariance needs at least 2 samples per set; got {len(x)} and {len(y)}")
    # 1. means and covariances (unbiased, 1/(n−1))
    mu_x, mu_y = x.mean(0), y.mean(0)  # (d,)
    d = x.shape[1]
    cov_x, cov_y = torch.cov(x.T).reshape(d, d), torch.cov(y.T).reshape(d, d)  # (d, d) also for d = 1
    # 2. Tr((Σ_x^½ Σ_y Σ_x^½)^½) = Σ √eigenvalues of the symmetric PSD product
    root_x = sqrtm_psd(cov_x)  # (d, d)
    middle = root_x @ cov_y @ root_x  # (d, d) symmetric PSD
    tr_covmean = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp(min=0).sqrt().sum()
    # 3. FD = ‖μ_x − μ_y‖² + Tr Σ_x + Tr Σ_y − 2 Tr((Σ_x^½ Σ_y Σ_x^½)^½)
    fd = (mu_x - mu_y).pow(2).sum() + cov_x.trace() + cov_y.trace() - 2 * tr_covmean
    return max(float(fd), 0.0)


def polynomial_kernel(x: torch.Tensor, y: torch.Tensor, degree: int = 3, coef0: float = 1.0) -> torch.Tensor:
    """k(x, y) = (xᵀy / d + coef0)^degree, the kernel of KID (Bińkowski et al. 2018). ``(n, d), (m, d) → (n, m)``."""
    return (x @ y.T / x.shape[1] + coef0) ** degree


def kernel_distance(x, y, num_subsets: int = 100, subset_size: int = 1000, seed: int = 0,
                    return_std: bool = False):
    """Unbiased squared MMD with the polynomial kernel, averaged over random subsets (KID; Bińkowski et al.
    2018, "Demystifying MMD GANs", eq. (3)):

        MMD²_u = 1/(m(m−1)) Σ_{i≠j} k(x_i, x_j) + 1/(m(m−1)) Σ_{i≠j} k(y_i, y_j) − 2/m² Σ_{i,j} k(x_i, y_j)

    on ``num_subsets`` subsets of ``m = min(subset_size, n_x, n_y)`` samples from each set. Unbiased: for two
    sets from the same distribution it scatters around 0 and can be negative; that makes it fairer than FD on
    few samples. Returns the mean (and the standard deviation over subsets with ``return_std``).
    """
    x, y = _as_float64(x), _as_float64(y)
    m = min(subset_size, len(x), len(y))
    if m < 2:
        raise ValueError(f"kernel_distance needs at least 2 samples per set; got {len(x)} and {len(y)}")
    gen = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(num_subsets):
        xs = x[torch.randperm(len(x), generator=gen)[:m]]  # (m, d)
        ys = y[torch.randperm(len(y), generator=gen)[:m]]  # (m, d)
        k_xx, k_yy, k_xy = polynomial_kernel(xs, xs), polynomial_kernel(ys, ys), polynomial_kernel(xs, ys)
        # the diagonals k(x_i, x_i) are left out of the within-set sums: that is what makes it unbiased
        within = (k_xx.sum() - k_xx.diagonal().sum() + k_yy.sum() - k_yy.diagonal().sum()) / (m * (m - 1))
        values.append(float(within - 2 * k_xy.mean()))
    values = np.array(values)
    return (float(values.mean()), float(values.std())) if return_std else float(values.mean())


# ---------------------------------------------------------------- 2. clips in, clips out ----


def _uint8_clips(clips) -> np.ndarray:
    """Accept uint8 ``(n, f, h, w)`` clips (numpy or torch) or float videos ``(n, 1, f, h, w)`` in [-1, 1]."""
    if torch.is_tensor(clips):
        clips = clips.detach().cpu()
        if clips.is_floating_point():
            if clips.dim() == 5:
                clips = clips[:, 0]  # (n, f, h, w)
            clips = to_uint8(clips)  # (n, f, h, w) uint8
        clips = clips.numpy()
    clips = np.asarray(clips)
    if clips.dtype != np.uint8:
        raise TypeError(f"clips must be uint8 (0 background, 255 digit) of shape (n, f, h, w), or float videos "
                        f"(n, 1, f, h, w) in [-1, 1] as torch tensors; got dtype {clips.dtype}. Convert floats "
                        f"with vdiff_edu.utils.to_uint8(video[:, 0])")
    if clips.ndim != 4:
        raise ValueError(f"clips must have shape (n, f, h, w); got {clips.shape}. For a single clip use clips[None]")
    return clips


def _unit(clips: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(clips)).float() / 255.0  # (n, f, h, w) in [0, 1]


def _shift(frames: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Frames ``(f, h, w)`` moved by (dy, dx) px; what moves out is lost, what moves in is background (0)."""
    out = np.zeros_like(frames)
    h, w = frames.shape[-2:]
    out[:, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        frames[:, max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


def corrupt(clips, kind: str, strength: float = 1.0, seed: int = 0) -> np.ndarray:
    """A broken copy of uint8 ``clips (n, f, h, w)``, for baselines and for watching metrics respond:

    * ``"shuffle"``: a random permutation of a ``strength`` fraction of the frames (1 = all frames shuffled);
    * ``"freeze"``: the last ``strength`` fraction of the frames replaced by the first frame (1 = a still image);
    * ``"noise"``: blend towards uniform noise, (1 − s)·clip + s·noise (1 = pure noise);
    * ``"blur"``: a Gaussian blur of σ = 2·strength px on every frame;
    * ``"teleport"``: from the middle frame on, every frame shifted by round(strength · h/3) px on each axis,
      towards the middle of the frame (so the digit stays in view): a digit that jumps once, then moves on as
      before.
    """
    clips = _uint8_clips(clips)
    if not 0 <= strength <= 1:
        raise ValueError(f"strength must be in [0, 1] (0 = untouched, 1 = fully broken); got {strength}")
    rng = np.random.default_rng(seed)
    n, f, h, w = clips.shape
    out = clips.copy()
    if kind == "shuffle":
        k = int(round(strength * f))
        for i in range(n):
            chosen = np.sort(rng.choice(f, size=k, replace=False))  # which frames move
            out[i, chosen] = clips[i, rng.permutation(chosen)]
        return out
    if kind == "freeze":
        start = f - int(round(strength * (f - 1)))  # frames start.. become frame 0
        out[:, start:] = clips[:, :1]
        return out
    if kind == "noise":
        noise = rng.integers(0, 256, size=clips.shape)
        return np.rint((1 - strength) * clips + strength * noise).astype(np.uint8)
    if kind == "blur":
        if strength == 0:
            return out
        x = gaussian_blur(_unit(clips).reshape(n * f, 1, h, w), sigma=2.0 * strength)  # (n·f, 1, h, w) in [0, 1]
        return (x.reshape(n, f, h, w) * 255).round().clamp(0, 255).to(torch.uint8).numpy()  # back from _unit
    if kind == "teleport":
        jump = int(round(strength * h / 3))
        if jump:
            centre = track_digits(clips[:, f // 2:f // 2 + 1], 1)[:, 0, 0].numpy()  # (n, 2) (y, x) at the jump
            for i in range(n):
                dy = jump if centre[i, 0] < h / 2 else -jump  # towards the middle of the frame
                dx = jump if centre[i, 1] < w / 2 else -jump
                out[i, f // 2:] = _shift(clips[i, f // 2:], dy, dx)
        return out
    raise ValueError(f"kind must be one of 'shuffle', 'freeze', 'noise', 'blur', 'teleport'; got {kind!r}")


# ---------------------------------------------------------------- 3. identity from the digit classifier ----

IDENTITY_MARGIN = 0.5  # how much more probable an outside digit must be than a clip digit for a frame to be "off"


def top_m(probs: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """Multi-hot of the ``m`` most probable digits: ``probs (n, ..., 10)``, ``m (n,)`` → bool ``(n, ..., 10)``."""
    rank = probs.argsort(dim=-1, descending=True).argsort(dim=-1)  # 0 = most probable
    return rank < m.view(-1, *[1] * (probs.dim() - 1))


def clip_digit_sets(frame_probs: torch.Tensor, num_digits: int | None = None) -> torch.Tensor:
    """The digits a whole clip shows, multi-hot ``(n, 10)``: the m most probable digits of the classifier's
    probabilities averaged over all frames, m = the number of digits whose average exceeds 0.5 (at least 1, at
    most ``num_digits`` when the clips are known to hold that many)."""
    mean = frame_probs.mean(dim=1)  # (n, 10)
    m = (mean > 0.5).sum(dim=1).clamp(min=1, max=num_digits or 10)  # (n,)
    return top_m(mean, m)  # (n, 10)


def frames_show_clip_digits(frame_probs: torch.Tensor, num_digits: int | None = None,
                            margin: float = IDENTITY_MARGIN) -> torch.Tensor:
    """Does each frame show its clip's digits? bool ``(n, f)``, from the classifier's sigmoid probabilities
    ``frame_probs (n, f, 10)``.

    The rule, per frame f of a clip with digit set C (``clip_digit_sets``):

        weakest(f)   = min_{d ∈ C} p_f(d)        the clip digit this frame shows least
        strongest(f) = max_{d ∉ C} p_f(d)        the most probable digit the clip does not hold
        off(f)       = strongest(f) − weakest(f) > margin

    i.e. the frame's own top-m set differs from the clip's, *and* confidently: an outside digit is read more
    than ``margin`` more probable than one of the clip's. Each frame is judged alone (no window), so one replaced
    frame is seen. Why a margin of 0.5 (measured on cpu-geometry clips, ``benchmarks/bench_identity.py``,
    docs/benchmarks.md): the shipped classifier reads 95 % of real frames right by top-1, and most real frames that
    disagree with their clip are near-ties (an ambiguous 4/9 at 0.6 vs 0.4): 1.6 % of real frames disagree, 0.1 %
    by more than 0.5. With margin 0, 6 % of real clips and 7 % of the shipped
    model's clips have an off frame — the two cannot be told apart; with 0.5, 0.6 % of real clips against 3 % of
    the model's, while a frame whose digit is replaced by another MNIST digit is still caught 96.5 % of the time.
    A frame that shows no digit clearly (every p small) is not off: a floor (p < 0.1 = off) was measured and
    caught no further clip of the shipped model's while failing many real two-digit clips.
    """
    n, f, k = frame_probs.shape
    in_clip = clip_digit_sets(frame_probs, num_digits)[:, None].expand(n, f, k)  # (n, f, 10)
    weakest = torch.where(in_clip, frame_probs, torch.full_like(frame_probs, math.inf)).amin(dim=-1)  # (n, f)
    strongest = torch.where(in_clip, torch.full_like(frame_probs, -math.inf), frame_probs).amax(dim=-1)  # (n, f)
    return ~(strongest - weakest > margin)  # (n, f) True = the frame shows the clip's digits


def _scored_mask(shows: torch.Tensor, scored) -> torch.Tensor:
    """The frames to judge, bool ``(n, f)``: all of them when ``scored`` is None."""
    if scored is None:
        return torch.ones_like(shows)
    scored = torch.as_tensor(scored, dtype=torch.bool)
    if scored.shape != shows.shape:
        raise ValueError(f"scored must be a bool mask (n, f) = {tuple(shows.shape)} of the frames to judge; got "
                         f"{tuple(scored.shape)}. Build it from the clips, e.g. ~metrics.overlapping_frames(tracks, d)")
    return scored


def identity_persistence(frame_probs: torch.Tensor, num_digits: int | None = None, margin: float = IDENTITY_MARGIN,
                         scored: torch.Tensor | None = None) -> float:
    """Fraction of clips in which *every* frame shows the clip's digits (``frames_show_clip_digits``): one frame
    whose 4 is read as a 9 fails its clip. About 1 for real one-digit clips (up to the classifier's confident
    errors). ``scored (n, f)``: only those frames are judged (``evaluate_clips`` leaves out frames where two
    digits overlap, which the classifier cannot read). Blind to content that never changes: a frozen frame, or
    noise the classifier reads the same way throughout, scores 1 (other metrics catch those)."""
    shows = frames_show_clip_digits(frame_probs, num_digits, margin)  # (n, f)
    judged = shows | ~_scored_mask(shows, scored)  # (n, f) a frame left out cannot fail its clip
    return float(judged.all(dim=1).float().mean())


def identity_frames(frame_probs: torch.Tensor, num_digits: int | None = None, margin: float = IDENTITY_MARGIN,
                    scored: torch.Tensor | None = None) -> float:
    """Fraction of (scored) frames that show their clip's digits: the per-frame companion of
    ``identity_persistence``. A set whose clips each lose the digit in one frame of 8 scores 7/8 = 0.875 here but
    0 per clip. NaN when no frame is scored."""
    shows = frames_show_clip_digits(frame_probs, num_digits, margin)  # (n, f)
    mask = _scored_mask(shows, scored)  # (n, f)
    return float(shows[mask].float().mean()) if mask.any() else float("nan")


def identity_by_frame_index(frame_probs: torch.Tensor, num_digits: int | None = None,
                            margin: float = IDENTITY_MARGIN, scored: torch.Tensor | None = None) -> torch.Tensor:
    """``(f,)``: for each frame index, the fraction of clips whose frame there shows the clip's digits (unscored
    frames count as showing them): which frame index fails, e.g. a model that loses the digit at the last
    frames."""
    shows = frames_show_clip_digits(frame_probs, num_digits, margin)  # (n, f)
    return (shows | ~_scored_mask(shows, scored)).float().mean(dim=0)  # (f,)


def overlapping_frames(tracks: torch.Tensor, digit_size: int, closeness: float = 0.5) -> torch.Tensor:
    """bool ``(n, f)``: frames where two tracked digit centres (``track_digits``) are closer than
    ``closeness``·digit_size, so the digits overlap and one frame's digit set cannot be read reliably (the
    classifier gets 71 % of real two-digit frames exactly right, the card says; nearly all its confident
    mistakes fall in such frames). All False for one digit."""
    n, f, k, _ = tracks.shape
    if k < 2:
        return torch.zeros(n, f, dtype=torch.bool)
    gap = (tracks[:, :, :, None] - tracks[:, :, None]).norm(dim=-1)  # (n, f, k, k)
    gap = gap + torch.eye(k, dtype=gap.dtype) * 1e9  # a digit is not close to itself
    return (gap < closeness * digit_size).flatten(2).any(dim=-1)  # (n, f)


def detected_sets(frame_probs: torch.Tensor, window: int | None = None) -> torch.Tensor:
    """The digit set seen in each stretch of a clip, multi-hot ``(n, f − window + 1, 10)`` (the windowed measure,
    ``windowed_identity_persistence``).

    1. how many different digits the clip holds: m = the number of digits whose probability, averaged over the
       whole clip, exceeds 0.5 (at least 1);
    2. the classifier's per-frame probabilities ``(n, f, 10)`` averaged over a sliding window of ``window``
       frames (default max(3, f // 4)): one frame where two digits overlap, or where a stroke is ambiguous, is
       outvoted; a digit that changes for longer is not;
    3. the m most probable digits of each window.
    """
    n, f, _ = frame_probs.shape
    window = max(1, min(window or max(3, f // 4), f))
    m = (frame_probs.mean(dim=1) > 0.5).sum(dim=1).clamp(min=1)  # (n,)
    smoothed = frame_probs.unfold(1, window, 1).mean(-1)  # (n, f − window + 1, 10)
    return top_m(smoothed, m)


def windowed_identity_persistence(frame_probs: torch.Tensor, window: int | None = None) -> float:
    """The identity measure before issue 15 (and the ``identity_persistence`` of older tables in
    docs/benchmarks.md): fraction of clips whose windowed digit set (``detected_sets``) never changes. The window
    outvotes one off frame, so it cannot see a digit that is another digit for one frame; kept to compare with."""
    sets = detected_sets(frame_probs, window)  # (n, f', 10)
    same = (sets == sets[:, :1]).all(dim=2).all(dim=1)  # (n,)
    return float(same.float().mean())


def condition_faithfulness(frame_probs: torch.Tensor, labels) -> float:
    """Fraction of clips whose detected digits — the m most probable after averaging the classifier's
    probabilities over all frames, m = how many different digits were asked for — are the digits asked for
    (``labels (n, num_digits)``). A label outside 0-9
    (the pipeline's null token 10, "any digit") asks for nothing; clips that ask for nothing are left out.
    NaN when no clip asks for a digit."""
    labels = torch.as_tensor(np.asarray(labels)).long()
    if labels.dim() == 1:
        labels = labels[:, None]  # (n, 1) one digit per clip
    if len(labels) != len(frame_probs):
        raise ValueError(f"labels must hold one row per clip: {len(frame_probs)} clips but {len(labels)} label rows")
    valid = (labels >= 0) & (labels < 10)  # (n, k)
    wanted = F.one_hot(torch.where(valid, labels, 10), 11)[..., :10].amax(dim=1).bool()  # (n, 10)
    asked = valid.all(dim=1)  # (n,) clips whose every slot names a digit
    if not asked.any():
        return float("nan")
    detected = top_m(frame_probs.mean(dim=1), wanted.sum(dim=1).clamp(min=1))  # (n, 10) as many as asked for
    return float((detected == wanted).all(dim=1)[asked].float().mean())


# ---------------------------------------------------------------- 4. flicker ----


def default_search_radius(image_size: int) -> int:
    """Largest per-axis step a digit makes, plus one: 4 px/frame at 64×64 (the stochastic rule's top speed)."""
    return int(math.ceil(4 * image_size / 64)) + 1


def motion_compensated_residual(prev: torch.Tensor, nxt: torch.Tensor, block: int, radius: int) -> torch.Tensor:
    """Block matching, as video codecs do: cut ``nxt (m, h, w)`` into ``block``×``block`` blocks, find for each
    the integer shift (|dy|, |dx| ≤ ``radius``) of ``prev`` that matches it best, and return that best mean
    absolute difference per block, ``(m, h // block, w // block)``. What remains is change motion cannot explain."""
    m, h, w = prev.shape
    r = radius
    padded = F.pad(prev, (r, r, r, r))  # (m, h + 2r, w + 2r) zeros = background beyond the frame
    best = None
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            shifted = padded[:, r + dy:r + dy + h, r + dx:r + dx + w]  # (m, h, w) = prev moved by (−dy, −dx)
            err = F.avg_pool2d((nxt - shifted).abs()[:, None], block)[:, 0]  # (m, h/B, w/B)
            best = err if best is None else torch.minimum(best, err)
    return best


def flicker(clips, block: int | None = None, radius: int | None = None, chunk: int = 256) -> float:
    """Mean absolute change between consecutive frames left after the best integer shift of each block
    (``motion_compensated_residual``), in units of the full intensity range [0, 1].

    Digits that translate rigidly leave (almost) nothing: ≈ 0 for real clips. Frames that pop, shimmer, or
    change a digit's shape leave a residual; pure noise leaves about 0.2-0.3. Blocks are h/8 px, the search radius
    covers the fastest digit (``default_search_radius``)."""
    x = _unit(_uint8_clips(clips))  # (n, f, h, w)
    n, f, h, w = x.shape
    if f < 2:
        return float("nan")
    block = block or max(2, h // 8)
    radius = default_search_radius(h) if radius is None else radius
    prev, nxt = x[:, :-1].reshape(-1, h, w), x[:, 1:].reshape(-1, h, w)  # (n·(f−1), h, w) each
    total = sum(motion_compensated_residual(p, q, block, radius).sum().item()
                for p, q in zip(prev.split(chunk), nxt.split(chunk)))
    return total / (prev.shape[0] * (h // block) * (w // block))


# ---------------------------------------------------------------- 5. tracking digits, motion ----


def track_digits(clips, num_digits: int, threshold: float = 0.25, iters: int = 8) -> torch.Tensor:
    """Centre (y, x) in px of each digit in every frame, ``(n, f, num_digits, 2)``.

    Weighted k-means on the ink (pixels brighter than ``threshold``, weighted by brightness): one cluster per
    digit. Frame 0 starts from far-apart ink pixels; every later frame starts from where each digit would be
    at constant velocity, c(t−1) + (c(t−1) − c(t−2)), so cluster k keeps following digit k. With one digit this
    is just the intensity centroid. Overlapping digits blur their centres; ``motion_plausibility`` skips those
    moments."""
    x = _unit(_uint8_clips(clips))  # (n, f, h, w)
    n, f, h, w = x.shape
    k = num_digits
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    coords = torch.stack([yy.flatten(), xx.flatten()], dim=1)  # (h·w, 2)
    ink = torch.where(x > threshold, x, torch.zeros(())).reshape(n, f, h * w)  # (n, f, h·w) weights
    centres = torch.zeros(n, f, k, 2)
    middle = torch.tensor([(h - 1) / 2, (w - 1) / 2])
    for t in range(f):
        wt = ink[:, t]  # (n, h·w)
        mass = wt.sum(1, keepdim=True)  # (n, 1)
        centroid = torch.where(mass > 0, wt @ coords / mass.clamp(min=1e-8), middle)  # (n, 2)
        # 1. where to start the clusters
        if t == 0:
            c = _farthest_points(wt, coords, centroid, k)  # (n, k, 2)
        elif t == 1:
            c = centres[:, 0].clone()
        else:
            c = (2 * centres[:, t - 1] - centres[:, t - 2]).clamp(min=0)  # constant-velocity prediction
            c = torch.minimum(c, torch.tensor([h - 1.0, w - 1.0]))
        # 2. Lloyd iterations: assign each ink pixel to its nearest centre, move centres to weighted means
        for _ in range(iters if k > 1 else 1):
            if k == 1:
                c = centroid[:, None]  # (n, 1, 2)
                break
            # ‖p − c‖² = ‖p‖² − 2 p·c + ‖c‖²; ‖p‖² is the same for every centre, so drop it
            d2 = c.pow(2).sum(-1)[:, None] - 2 * torch.einsum("pd,nkd->npk", coords, c)  # (n, h·w, k)
            member = F.one_hot(d2.argmin(-1), k).float() * wt[..., None]  # (n, h·w, k) weighted assignment
            cluster_mass = member.sum(1)  # (n, k)
            means = torch.einsum("npk,pd->nkd", member, coords) / cluster_mass.clamp(min=1e-8)[..., None]
            c = torch.where(cluster_mass[..., None] > 0, means, c)  # (n, k, 2) an empty cluster stays put
        centres[:, t] = c
    return centres


def _farthest_points(wt: torch.Tensor, coords: torch.Tensor, centroid: torch.Tensor, k: int) -> torch.Tensor:
    """k ink pixels far apart: the one farthest from the centroid, then each next one farthest from those chosen."""
    has_ink = wt > 0  # (n, h·w)
    chosen = [centroid]
    ref = centroid
    nearest = torch.full(wt.shape, float("inf"))
    for j in range(k):
        d = (coords[None] - ref[:, None]).pow(2).sum(-1)  # (n, h·w)
        nearest = d if j == 0 else torch.minimum(nearest, d)
        score = torch.where(has_ink, nearest, torch.full_like(nearest, -1.0))
        ref = coords[score.argmax(1)]  # (n, 2)
        ref = torch.where(has_ink.any(1, keepdim=True), ref, centroid)
        chosen.append(ref)
    return torch.stack(chosen[1:], dim=1)  # (n, k, 2)


def step_speeds(tracks: torch.Tensor) -> torch.Tensor:
    """Distance each tracked centre moves between consecutive frames, ``(n, f − 1, k)`` px."""
    return (tracks[:, 1:] - tracks[:, :-1]).norm(dim=-1)


def dynamic_degree(tracks: torch.Tensor, image_size: int) -> float:
    """How much things move: the mean distance a tracked digit centre moves per frame, in px of a 64×64 frame
    (``tracks`` from ``track_digits``). Real clips move about 3.6; a still image scores 0. Compare it with the
    real-vs-real value: both far less (frozen) and far more (jumping) are wrong."""
    return float(step_speeds(tracks).mean()) * 64 / image_size


def motion_plausibility(tracks: torch.Tensor, image_size: int, digit_size: int, rule: str = "deterministic",
                        speed_range: tuple[float, float] | None = None, tol: float = 1.25) -> float:
    """Fraction of track moments (clip, digit, frame t) whose motion obeys the bouncing rules.

    With steps v₁ = c(t) − c(t−1), v₂ = c(t+1) − c(t) and acceleration a = v₂ − v₁ of a digit's centre:

    1. between bounces a digit moves at constant velocity: |a| ≤ ``tol`` on both axes (``tol`` = 1.25 px
       absorbs the ±0.5 px rounding of positions to pixels);
    2. an axis may break rule 1 only at a wall: the centre lies within 0.1·d + tol of where a digit touching that
       wall would have it (d/2 from the wall: MNIST digits are centred by mass), it is moving towards the wall
       before, and — if it bounced — away from it after. Under the ``deterministic`` rule (Srivastava et al.
       2015) the other axis keeps its velocity; under the ``stochastic`` rule (Denton & Fergus 2018) a bounce
       may change both;
    3. with ``speed_range = (lo, hi)`` (taken from real clips by ``evaluate_clips``), every step away from the
       walls has lo ≤ |v| ≤ hi: a still image (|v| = 0) or a jumping digit is not plausible.

    Moments where two tracked centres are closer than 0.75·d (overlapping digits) are skipped. NaN if none are left.
    """
    if rule not in ("deterministic", "stochastic"):
        raise ValueError(f"rule must be 'deterministic' or 'stochastic'; got {rule!r}")
    n, f, k, _ = tracks.shape
    if f < 3:
        return float("nan")
    c = tracks.double()
    v1, v2 = c[:, 1:-1] - c[:, :-2], c[:, 2:] - c[:, 1:-1]  # (n, f−2, k, 2) each
    a = v2 - v1
    smooth = a.abs() <= tol  # (n, f−2, k, 2) rule 1, per axis

    # rule 2: near a wall at t (bounce) or t+1 (arrival), moving towards it before and away after (if bounced)
    margin = 0.1 * digit_size + tol
    low_at, high_at = digit_size / 2 + margin, image_size - digit_size / 2 - margin
    here, after = c[:, 1:-1], c[:, 2:]  # (n, f−2, k, 2)
    bounce_low = (here <= low_at) & (v1 <= tol) & (v2 >= -tol)
    bounce_high = (here >= high_at) & (v1 >= -tol) & (v2 <= tol)
    arrive_low = (after <= low_at) & (v1 <= tol) & (v2 <= tol)
    arrive_high = (after >= high_at) & (v1 >= -tol) & (v2 >= -tol)
    at_wall = bounce_low | bounce_high | arrive_low | arrive_high  # (n, f−2, k, 2)
    axis_ok = smooth | at_wall
    if rule == "deterministic":
        ok = axis_ok.all(-1)  # each axis smooth, or explained by its own wall
    else:
        ok = axis_ok.all(-1) | (at_wall.any(-1))  # a bounce may redraw both speeds
    wall_moment = (at_wall & ~smooth).any(-1)  # (n, f−2, k) a wall explained an irregular step

    # rule 3: speed away from walls
    if speed_range is not None:
        lo, hi = speed_range
        s1, s2 = v1.norm(dim=-1), v2.norm(dim=-1)  # (n, f−2, k)
        too_fast = (s1 > hi) | (s2 > hi)
        too_slow = ((s1 < lo) | (s2 < lo)) & ~wall_moment
        ok = ok & ~too_fast & ~too_slow

    # skip moments where digits overlap
    scored = torch.ones(n, f - 2, k, dtype=torch.bool)
    if k > 1:
        gap = (c[:, :, :, None] - c[:, :, None]).norm(dim=-1)  # (n, f, k, k)
        gap = gap + torch.eye(k, dtype=gap.dtype) * 1e9
        close = (gap < 0.75 * digit_size).any(-1)  # (n, f, k)
        close = close[:, :-2] | close[:, 1:-1] | close[:, 2:]  # (n, f−2, k)
        scored = ~close
    if not scored.any():
        return float("nan")
    return float(ok[scored].double().mean())


def speed_range_of(tracks: torch.Tensor, slack: float = 1.0) -> tuple[float, float]:
    """The speeds real digits move at, (lo, hi) px/frame: a quarter of the median step of real tracks, and
    the 99.5th percentile plus ``slack`` px."""
    s = step_speeds(tracks).flatten().double()
    return 0.25 * float(s.median()), float(s.quantile(0.995)) + slack


# ---------------------------------------------------------------- 6. prediction ----


def prediction_metrics(generated, target, context_frames: int = 0) -> dict[str, float]:
    """How close predicted frames are to the true ones, for models conditioned on frames.

    ``generated``: uint8 ``(n, f, h, w)``, or ``(n, N, f, h, w)`` with N samples per conditioning clip;
    ``target``: uint8 ``(n, f, h, w)``, the true clips. Only frames ``context_frames ..`` are scored (the context
    frames were given, not predicted). Returns, with MSE on [-1, 1] pixels, PSNR in dB and SSIM from
    ``vdiff_edu.similarity`` (each per frame, averaged over a clip's predicted frames):

    * ``mse_mean``, ``psnr_mean``, ``ssim_mean``: mean over all clips and samples;
    * ``mse_best_of_N``, ``psnr_best_of_N``, ``ssim_best_of_N``: for each clip the best of its N samples, then
      the mean (Babaeizadeh et al. 2018 and Denton & Fergus 2018 report best-of-N for stochastic models; it
      rewards diversity, so always say which one you quote). With N = 1 both agree.
    """
    gen = torch.as_tensor(np.asarray(generated))
    tgt = torch.as_tensor(_uint8_clips(target))
    if gen.dim() == 4:
        gen = gen[:, None]  # (n, 1, f, h, w) one sample per clip
    if gen.dim() != 5 or gen.shape[0] != tgt.shape[0] or gen.shape[2:] != tgt.shape[1:]:
        raise ValueError(f"generated must be (n, f, h, w) or (n, N, f, h, w) matching target (n, f, h, w); got "
                         f"{tuple(gen.shape)} and {tuple(tgt.shape)}")
    f, h = tgt.shape[1], tgt.shape[2]
    if not 0 <= context_frames < f:
        raise ValueError(f"context_frames must be in [0, {f - 1}] (frames given, not predicted); got {context_frames}")
    g = from_uint8(gen[:, :, context_frames:])  # (n, N, f', h, w) in [-1, 1]
    y = from_uint8(tgt[:, None, context_frames:]).expand_as(g)
    window = min(11, h if h % 2 else h - 1)
    per = {
        "mse": mse(g, y).mean(-1),  # (n, N) mean over predicted frames
        "psnr": psnr(g, y).clamp(max=100).mean(-1),  # identical frames (inf dB) capped at 100 dB
        "ssim": ssim(g, y, window=window).mean(-1),
    }
    n_samples = g.shape[1]
    out = {"num_samples_per_clip": n_samples}
    for name, v in per.items():
        out[f"{name}_mean"] = float(v.mean())
        best = v.min(1).values if name == "mse" else v.max(1).values  # (n,)
        out[f"{name}_best_of_{n_samples}"] = float(best.mean())
    return out


def position_errors(generated, target, num_digits: int = 1) -> torch.Tensor:
    """Distance in px between the tracked digit centres of ``generated`` and ``target`` clips, per frame: uint8
    ``(n, f, h, w)``, or ``(n, N, f, h, w)`` with N samples per clip → ``(n, N, f)`` (mean over digits)."""
    gen = torch.as_tensor(np.asarray(generated))
    if gen.dim() == 4:
        gen = gen[:, None]  # (n, 1, f, h, w)
    n, samples, f = gen.shape[:3]
    tracks = track_digits(gen.reshape(n * samples, *gen.shape[2:]).numpy(), num_digits)  # (n·N, f, k, 2)
    truth = track_digits(target, num_digits)  # (n, f, k, 2)
    error = (tracks.reshape(n, samples, f, num_digits, 2) - truth[:, None]).norm(dim=-1)  # (n, N, f, k)
    return error.mean(-1)  # (n, N, f)


def copy_last_frame(context, num_frames: int) -> np.ndarray:
    """The simplest prediction baseline: the last given frame, held. uint8 ``(n, k, h, w)`` → ``(n, num_frames, h,
    w)``, the k given frames first."""
    context = _uint8_clips(context)
    n, k = context.shape[:2]
    held = np.repeat(context[:, -1:], num_frames - k, axis=1)  # (n, f − k, h, w)
    return np.concatenate([context, held], axis=1)


def constant_velocity(context, num_frames: int, num_digits: int = 1) -> np.ndarray:
    """A prediction baseline that knows the deterministic rule: the last given frame slid along the digit's
    velocity (its tracked centre's last step), bouncing off the frame's edges as Moving MNIST's digits do
    (Srivastava et al. 2015). uint8 ``(n, k ≥ 2, h, w)`` → ``(n, num_frames, h, w)``. An oracle for one digit
    moving at constant speed; it cannot know a bounce the context has not shown, and blurs nothing."""
    context = _uint8_clips(context)
    n, k, h, w = context.shape
    if k < 2:
        raise ValueError(f"constant_velocity needs at least 2 given frames to see the motion; got {k}")
    tracks = track_digits(context, num_digits).mean(2)  # (n, k, 2) (y, x), the digits' mean centre
    velocity = (tracks[:, -1] - tracks[:, -2]).numpy()  # (n, 2) px per frame
    out = np.zeros((n, num_frames, h, w), np.uint8)
    out[:, :k] = context
    for i in range(n):
        last = context[i, -1]
        ys, xs = np.nonzero(last > 64)
        if len(ys) == 0:
            out[i, k:] = last
            continue
        box = np.array([[ys.min(), ys.max()], [xs.min(), xs.max()]], dtype=float)  # ink extent per axis
        offset, v = np.zeros(2), velocity[i].copy()
        for t in range(k, num_frames):
            for axis, size in ((0, h), (1, w)):  # bounce: reverse an axis whose step would leave the frame
                lo, hi = box[axis] + offset[axis] + v[axis]
                if lo < 0 or hi > size - 1:
                    v[axis] = -v[axis]
            offset = offset + v
            dy, dx = np.rint(offset).astype(int)
            out[i, t] = _shifted(last, dy, dx)
    return out


def _shifted(frame: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``frame (h, w)`` moved by (dy, dx) pixels, zeros where nothing moved in."""
    h, w = frame.shape
    out = np.zeros_like(frame)
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[yd, xd] = frame[ys, xs]
    return out


def coherence_over_time(videos, labels, nets: FeatureNets, window: int = 8, reference=None,
                        num_digits: int = 1) -> dict[str, np.ndarray]:
    """How a long video holds up: the measures of each stretch of ``window`` frames, for uint8 ``videos (n, L, h,
    w)`` and the ``labels (n, num_digits)`` asked for. Returns arrays of one value per window (L // window), and
    ``start``, each window's first frame:

        identity_persistence     clips whose every frame shows the clip's (the window's) digits
        identity_frames          frames that show them
        label_kept               clips whose window shows the digit asked for (condition faithfulness)
        fvd_mm                   Fréchet distance of the windows' video features to ``reference`` clips
                                 (uint8 (m, window, h, w); omitted when None)
        ink                      mean ink per frame ([0, 1] units), relative to the first window's
        speed                    the tracked digit's mean speed, px per frame

    A model that falls apart shows it here: the identity measures and the kept label drop, FVD-MM grows, ink fades
    or smears, the speed drifts to 0 (a frozen digit) or jumps (a digit that teleports)."""
    videos = _uint8_clips(videos)
    n, length = videos.shape[:2]
    count = length // window
    if count < 1:
        raise ValueError(f"videos of {length} frames hold no window of {window}; make longer videos or a smaller window")
    out = {key: [] for key in ("identity_persistence", "identity_frames", "label_kept", "ink", "speed")}
    if reference is not None:
        out["fvd_mm"] = []
        ref_features = nets.video_features(_checked_clips(reference, "reference"))
    for i in range(count):
        part = videos[:, i * window:(i + 1) * window]  # (n, window, h, w)
        probs = nets.frame_outputs(part)[0]  # (n, window, 10)
        out["identity_persistence"].append(identity_persistence(probs, num_digits=num_digits))
        out["identity_frames"].append(identity_frames(probs, num_digits=num_digits))
        out["label_kept"].append(condition_faithfulness(probs, labels))
        out["ink"].append(float(part.astype(np.float64).mean() / 255))
        out["speed"].append(float(step_speeds(track_digits(part, num_digits)).mean()))
        if reference is not None:
            out["fvd_mm"].append(frechet_distance(nets.video_features(part), ref_features))
    result = {key: np.asarray(v) for key, v in out.items()}
    result["ink"] = result["ink"] / max(result["ink"][0], 1e-8)
    result["start"] = np.arange(count) * window
    return result


# ---------------------------------------------------------------- 7. the suite ----

# name → (better, one-line description); the order of the report
METRICS = {
    "fvd_mm": ("lower", "Fréchet distance of video-encoder features to the reference set (FVD-MM)"),
    "kvd_mm": ("lower", "unbiased polynomial-kernel MMD² of the same features, ×1000 (KVD-MM)"),
    "frame_fd": ("lower", "Fréchet distance of digit-classifier features of single frames"),
    "identity_persistence": ("higher", "fraction of clips in which every frame shows the clip's digits (one off frame "
                                       "fails the clip; frames where digits overlap are not judged)"),
    "identity_frames": ("higher", "fraction of frames that show their clip's digits (per-frame identity_persistence)"),
    "condition_faithfulness": ("higher", "fraction of clips whose detected digits are the labels asked for"),
    "flicker": ("lower", "mean change between frames left after the best block shift, [0, 1] units"),
    "motion_plausibility": ("higher", "fraction of digit-track moments that obey the bouncing rules"),
    "dynamic_degree": ("≈ real", "mean distance a digit centre moves per frame, px at 64×64"),
}
BASELINES = ("real_vs_real", "shuffled", "frozen", "noise")  # the columns beside the generated clips


def default_digit_size(image_size: int) -> int:
    """The digit size of the course's geometries: 20 px at 32×32 (cpu preset), 28 px at 64×64 (gpu preset),
    otherwise the gpu preset's ratio 28/64."""
    return {32: 20, 64: 28}.get(image_size, max(4, round(image_size * 28 / 64)))


def default_num_digits(image_size: int) -> int:
    """One digit at 32×32 and below (cpu preset), two above (gpu preset)."""
    return 1 if image_size <= 32 else 2


def clip_set_measures(clips, nets: FeatureNets, num_digits: int, digit_size: int, rule: str,
                      labels=None, speed_range=None) -> dict:
    """Everything ``evaluate_clips`` needs from one set of uint8 clips: features (for the distances) and the
    reference-free measures."""
    clips = _uint8_clips(clips)
    n, f, h, w = clips.shape
    _, video_feats = nets.video_outputs(clips)  # (n, d)
    frame_probs, frame_feats = nets.frame_outputs(clips)  # (n, f, 10), (n, f, d)
    tracks = track_digits(clips, num_digits)  # (n, f, k, 2)
    scored = ~overlapping_frames(tracks, digit_size)  # (n, f) frames whose digits can be read apart
    identity = dict(num_digits=num_digits, scored=scored)
    return {
        "video_features": video_feats,
        "frame_features": frame_feats.reshape(n * f, -1),
        "tracks": tracks,
        "identity_persistence": identity_persistence(frame_probs, **identity),
        "identity_frames": identity_frames(frame_probs, **identity),
        "identity_by_frame": identity_by_frame_index(frame_probs, **identity).tolist(),  # (f,) which frame fails
        "condition_faithfulness": condition_faithfulness(frame_probs, labels) if labels is not None else None,
        "flicker": flicker(clips),
        "motion_plausibility": motion_plausibility(tracks, h, digit_size, rule, speed_range),
        "dynamic_degree": dynamic_degree(tracks, h),
    }


def distances_to(reference: dict, measured: dict, seed: int = 0) -> dict[str, float]:
    """FVD-MM, KVD-MM (×1000) and frame FD between two ``clip_set_measures`` results."""
    return {
        "fvd_mm": frechet_distance(measured["video_features"], reference["video_features"]),
        "kvd_mm": 1000 * kernel_distance(measured["video_features"], reference["video_features"], seed=seed),
        "frame_fd": frechet_distance(measured["frame_features"], reference["frame_features"]),
    }


MIN_CLIPS_FOR_FD = 128  # 2 × the feature networks' 64 features: below it, FVD-MM and frame FD are mostly noise


def read_npy(path: str | os.PathLike, what: str) -> np.ndarray:
    """A ``.npy`` file someone gave us, read without running any code, with one sentence for each way it can be
    wrong: missing, not a .npy, an .npz archive, or an array of pickled Python objects."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what}: no file at {path}; pass the .npy written by `python -m vdiff_edu sample`")
    with open(path, "rb") as f:
        head = f.read(6)
    if not (head == b"\x93NUMPY" or head.startswith(b"PK")):  # a .npy, or an .npz (a zip archive)
        raise ValueError(f"{what}: {path} is not a .npy file (a .npy starts with \\x93NUMPY; this one with "
                         f"{head!r}); save the clips with np.save(path, clips.astype(np.uint8)), e.g. the samples.npy "
                         f"that `python -m vdiff_edu sample` writes")
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as e:
        if "allow_pickle" in str(e):
            raise ValueError(f"{what}: {path} holds pickled Python objects, not numbers, and was not loaded (it could "
                             f"run code); save a plain numeric array, e.g. np.save(path, clips.astype(np.uint8))") from None
        raise ValueError(f"{what}: {path} is not a .npy file numpy can read ({e}); write it with np.save") from None
    except (OSError, EOFError) as e:
        raise ValueError(f"{what}: {path} is not a .npy file numpy can read ({e}); write it with np.save") from None
    if not isinstance(array, np.ndarray):  # np.load of an .npz gives an archive of arrays
        raise ValueError(f"{what}: {path} is an .npz archive; pass the .npy of the clips itself")
    return array


def check_labels_for(labels, n: int, where: str = "labels") -> np.ndarray:
    """Digit labels for ``n`` clips: integers 0-9, ``(n, digits)`` or ``(n,)``, finite; returned as int64."""
    labels = np.asarray(labels)
    if labels.size == 0 or labels.ndim not in (1, 2):
        raise ValueError(f"{where} must have shape (n, digits) or (n,); got {labels.shape}")
    if len(labels) != n:
        raise ValueError(f"{where} gives labels for {len(labels)} clips but there are {n} clips; give one row per clip "
                         f"(labels.npy written beside samples.npy by `sample` always matches)")
    if not np.issubdtype(labels.dtype, np.integer):
        if not np.issubdtype(labels.dtype, np.floating) or not np.isfinite(labels).all() or \
                (labels != np.round(labels)).any():
            raise ValueError(f"{where} must hold whole digits 0-9; got dtype {labels.dtype}"
                             + (" with NaN or inf" if np.issubdtype(labels.dtype, np.floating) else ""))
    if labels.min() < 0 or labels.max() > 9:
        raise ValueError(f"{where} must hold digits 0-9; got values {labels.min()}..{labels.max()}")
    return labels.astype(np.int64).reshape(n, -1)


def load_clips(source) -> tuple[np.ndarray, np.ndarray | None, Path | None]:
    """Generated clips from an array, a ``.npy`` file, or a run folder holding ``samples.npy`` (and maybe
    ``labels.npy``, picked up automatically, as beside a ``samples.npy`` file). Returns ``(clips, labels,
    folder)`` where folder is where the report goes by default. Anything that is not uint8 clips ``(n, f, h, w)``
    with square frames and at least one clip is refused with a sentence naming the file."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            folder, path = path, path / "samples.npy"
        else:
            folder = path.parent
        if not path.is_file():
            raise FileNotFoundError(f"no clips at {path}: pass a .npy of uint8 clips (n, f, h, w) or a run folder "
                                    f"holding samples.npy (written by `python -m vdiff_edu sample`)")
        clips = _checked_clips(read_npy(path, "clips"), str(path))
        labels_path = path.with_name("labels.npy")
        labels = None
        if path.name == "samples.npy" and labels_path.is_file():
            labels = check_labels_for(read_npy(labels_path, "labels"), len(clips), str(labels_path))
        return clips, labels, folder
    return _checked_clips(source, "clips"), None, None


def _checked_clips(clips, where: str) -> np.ndarray:
    try:
        clips = _uint8_clips(clips)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: {e}") from None
    if len(clips) < 2:
        raise ValueError(f"{where} holds {len(clips)} clip(s) (shape {clips.shape}); the distances need at least 2, "
                         f"and {MIN_CLIPS_FOR_FD} to mean much: sample more with `python -m vdiff_edu sample --n 200`")
    if clips.shape[2] != clips.shape[3] or min(clips.shape[1:]) < 2:
        raise ValueError(f"{where} must hold clips (n, f, h, w) with square frames of at least 2×2 pixels and at "
                         f"least 2 frames; got shape {clips.shape}")
    return clips


def real_clips(n: int, start: int, image_size: int, num_frames: int, num_digits: int, digit_size: int,
               rule: str, seed: int = 0, **overrides) -> tuple[np.ndarray, np.ndarray, str]:
    """Clips ``start .. start + n − 1`` of the fixed evaluation split (test digits, never seen in training) as
    uint8 ``(n, f, h, w)``, with their labels ``(n, num_digits)`` and the digit source."""
    spec = dict(image_size=image_size, num_frames=num_frames, num_digits=num_digits, digit_size=digit_size, rule=rule)
    spec.update(overrides)
    mnist_dir = spec.pop("mnist_dir", None)
    ds = moving_mnist("eval", spec, seed, start + n, mnist_dir)
    batch = ds.batch(range(start, start + n))  # video (n, 1, f, h, w) in [-1, 1], labels (n, num_digits), ...
    return to_uint8(batch["video"][:, 0]).numpy(), batch["labels"].numpy(), ds.source


def replaced_frame_clips(n: int, start: int, image_size: int, num_frames: int, num_digits: int, digit_size: int,
                         rule: str, seed: int = 0, frame: int | None = None, until_end: bool = False,
                         **overrides) -> dict[str, np.ndarray]:
    """Real clips and the same clips with one frame's digit swapped: the defect ``identity_persistence`` must see.

    Clip i of the evaluation split (as ``real_clips``) is rendered again with, in one frame (``frame``, or one
    drawn per clip from ``seed``), the image of its first digit replaced by another test-split MNIST digit of a
    different class, at the same size, stroke style and position; every other frame is left as it was.
    ``until_end=True`` swaps it from that frame to the last: a 3 that turns into an 8 half-way (``frame=f // 2``)
    and stays one. Returns
    uint8 ``clips`` and ``replaced`` ``(n, f, h, w)``, the ``frame`` index of each swap ``(n,)``, and the digits
    ``labels (n, num_digits)`` and ``new_labels (n,)`` (what the replaced frame shows instead of labels[:, 0])."""
    spec = dict(image_size=image_size, num_frames=num_frames, num_digits=num_digits, digit_size=digit_size, rule=rule)
    spec.update(overrides)
    mnist_dir = spec.pop("mnist_dir", None)
    ds = moving_mnist("eval", spec, seed, start + n, mnist_dir)
    rng = np.random.default_rng([seed, 15])  # the swaps' own random numbers: the clips stay those of real_clips
    clips, replaced, frames, labels, new_labels = [], [], [], [], []
    for i in range(start, start + n):
        item = ds[i]
        clip = to_uint8(item["video"][0]).numpy()  # (f, h, w)
        # 1. a digit image of another class than any in the clip
        pool = np.flatnonzero(~np.isin(ds.digits.labels, item["labels"].numpy()))
        k = int(pool[rng.integers(len(pool))])
        j = int(rng.integers(num_frames)) if frame is None else frame
        # 2. the clip's digits as the dataset drew them (size, then stroke style), the first one swapped
        ids = item["digit_ids"].tolist()
        ids[0] = k
        pixels = [stroke_style(resize_digit(ds.digits.images[d], ds.digit_size), STYLES[s])  # num_digits × (d, d)
                  for d, s in zip(ids, item["styles"].tolist())]
        # 3. frame j (to the end, with until_end) rendered again at the same positions, everything else untouched
        end = num_frames if until_end else j + 1
        frames_j = render_clip(pixels, item["positions"][j:end].numpy(), ds.image_size, ds.rule)  # (e, h, w) in [0, 1]
        swapped = clip.copy()
        swapped[j:end] = to_uint8(torch.from_numpy(frames_j * 2 - 1)).numpy()  # (e, h, w) uint8, as MovingMNIST
        clips.append(clip), replaced.append(swapped), frames.append(j)
        labels.append(item["labels"].numpy()), new_labels.append(int(ds.digits.labels[k]))
    return {"clips": np.stack(clips), "replaced": np.stack(replaced), "frame": np.array(frames),
            "labels": np.stack(labels), "new_labels": np.array(new_labels)}


def evaluate_clips(generated=None, labels=None, rule: str = "deterministic", reference: dict | None = None,
                   n_ref: int | None = None, seed: int = 0, out_dir=None, *, targets=None, context_frames: int = 0,
                   image_size: int | None = None, num_frames: int | None = None, num_digits: int | None = None,
                   digit_size: int | None = None, n: int | None = None, weights_dir=None, device=None,
                   verbose: bool = True) -> dict:
    """Score generated Moving MNIST clips with every metric, beside the real-vs-real and broken baselines.

    ``generated``: uint8 clips ``(n, f, h, w)`` (0 background, 255 digit), a path to a ``.npy`` of them, or a
    run folder holding ``samples.npy`` (and ``labels.npy``); or ``(n, N, f, h, w)``, N samples per condition
    (the prediction metrics then also report best of N; the other metrics pool all n·N clips). ``None`` scores the baselines alone (then give the
    geometry: ``image_size``, ``num_frames``, ``num_digits``, ``n``).
    ``labels``: the digits each clip was asked to show, ``(n, num_digits)``, for condition faithfulness.
    ``rule``: the bouncing rule the real data follows ("deterministic" or "stochastic").
    ``reference``: extra ``MovingMNIST`` arguments describing the real data (e.g. ``{"speed": 2.0}`` or
    ``{"mnist_dir": ...}``); its geometry is otherwise read from the generated clips.
    ``n_ref``: size of the real reference set the distances are measured to (default max(n, 256)).
    ``targets``, ``context_frames``: the true clips ``(n, f, h, w)`` when frames were conditioned on; adds
    ``prediction_metrics``.
    ``out_dir``: where ``evaluation.md`` and ``evaluation.json`` go (atomically); a run folder defaults to itself.

    The real sets come from the fixed evaluation split (test digits): a reference set of ``n_ref`` clips, and a
    disjoint real set of the same size as the generated one; the broken baselines are that second set with its
    frames shuffled, its first frame frozen, or replaced by pure noise. Returns the result dict (as in the JSON); its
    ``identity_by_frame`` holds, per set, the ``(f,)`` curve of ``identity_by_frame_index``.
    """
    # 1. the generated clips and the geometry of the real data
    folder, samples = None, None
    if isinstance(generated, np.ndarray) and generated.ndim == 5:  # (n, N, f, h, w): N samples per condition
        samples = generated
        generated = samples.reshape(-1, *samples.shape[2:])  # (n·N, f, h, w)
        if labels is not None:
            labels = np.repeat(np.asarray(labels).reshape(len(samples), -1), samples.shape[1], axis=0)
    if generated is not None:
        generated, found_labels, folder = load_clips(generated)
        labels = found_labels if labels is None else labels
        n, num_frames, image_size = generated.shape[0], generated.shape[1], generated.shape[2]
    elif None in (image_size, num_frames, n):
        raise ValueError("with generated=None (baselines only), pass image_size, num_frames and n")
    if isinstance(labels, (str, os.PathLike)):
        labels = check_labels_for(read_npy(labels, "--labels"), n, str(labels))
    if labels is not None:
        labels = check_labels_for(labels, n)
        num_digits = num_digits or labels.shape[1]
    if n < MIN_CLIPS_FOR_FD:
        print(f"warning: {n} clips are too few for a Fréchet distance to mean anything (its covariances are over 64 "
              f"features, so with fewer clips than that even a frozen video can beat real clips); use at least "
              f"{MIN_CLIPS_FOR_FD} (docs/benchmarks.md reports 200)", file=sys.stderr)
    num_digits = num_digits or default_num_digits(image_size)
    digit_size = digit_size or default_digit_size(image_size)
    n_ref = n_ref or max(n, 256)
    nets = load_feature_nets(weights_dir, device)
    say = print if verbose else (lambda *a, **k: None)

    # 2. the real sets: reference A (n_ref clips) and a disjoint set B of n clips
    geo = dict(image_size=image_size, num_frames=num_frames, num_digits=num_digits, digit_size=digit_size, rule=rule)
    ref_clips, _, source = real_clips(n_ref, 0, seed=seed, **geo, **(reference or {}))
    real_b, labels_b, _ = real_clips(n, n_ref, seed=seed, **geo, **(reference or {}))
    say(f"evaluating {n} clips of {num_frames}×{image_size}×{image_size}, {num_digits} digit(s), rule {rule!r}; "
        f"reference: {n_ref} real clips ({source})")

    # 3. measure every set
    reference_set = clip_set_measures(ref_clips, nets, num_digits, digit_size, rule)
    speed_range = speed_range_of(reference_set["tracks"])
    sets = {"generated": (generated, labels)} if generated is not None else {}
    sets.update({
        "real_vs_real": (real_b, labels_b),
        "shuffled": (corrupt(real_b, "shuffle", 1.0, seed), labels_b),
        "frozen": (corrupt(real_b, "freeze", 1.0, seed), labels_b),
        "noise": (corrupt(real_b, "noise", 1.0, seed), labels_b),
    })
    columns, by_frame = {}, {}
    for name, (clips, lab) in sets.items():
        m = clip_set_measures(clips, nets, num_digits, digit_size, rule, lab, speed_range)
        m.update(distances_to(reference_set, m, seed))
        columns[name] = {key: m[key] for key in METRICS}
        by_frame[name] = m["identity_by_frame"]
        say(f"  {name}: " + ", ".join(f"{k} {format_value(v)}" for k, v in columns[name].items()))

    # 4. prediction metrics, when the true future is known
    prediction = None
    if targets is not None:
        targets = _uint8_clips(np.load(targets, allow_pickle=False) if isinstance(targets, (str, os.PathLike)) else targets)
        predicted = samples if samples is not None else generated
        prediction = {"generated": prediction_metrics(predicted, targets, context_frames) if predicted is not None else None,
                      "real_vs_real": prediction_metrics(real_b[:len(targets)], targets, context_frames),
                      "shuffled": prediction_metrics(corrupt(targets, "shuffle", 1.0, seed), targets, context_frames),
                      "frozen": prediction_metrics(corrupt(targets, "freeze", 1.0, seed), targets, context_frames),
                      "noise": prediction_metrics(corrupt(targets, "noise", 1.0, seed), targets, context_frames)}

    result = {
        "metrics": {key: {col: columns[col][key] for col in columns} for key in METRICS},
        "better": {key: METRICS[key][0] for key in METRICS},
        "descriptions": {key: METRICS[key][1] for key in METRICS},
        "prediction": prediction,
        "identity_by_frame": by_frame,  # set → (f,) fraction of clips whose frame i shows the clip's digits
        "setup": {"n": n, "n_ref": n_ref, "seed": seed, "rule": rule, "digit_source": source,
                  "speed_range_px_per_frame": list(speed_range), **geo, "reference_overrides": reference or {},
                  "feature_nets": {key: nets.metadata.get("classifier", {}).get(key) for key in ("accuracy", "feature_rms")}},
    }
    # 5. write the report next to the clips (or where asked)
    out_dir = out_dir or folder
    if out_dir is not None:
        md, js = write_report(result, out_dir)
        say(f"wrote {md} and {js}")
    return result
