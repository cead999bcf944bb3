"""Samplers: turn Gaussian noise into clips by running the denoiser backwards through the noise schedule.

Every sampler here does the same three things at each step, from timestep ``t`` to an earlier ``t_prev``:

    1. ask the network for its prediction (ε, x₀ or v) at x_t, optionally with classifier-free guidance
    2. turn that prediction into an estimate of the clean clip x̂₀ and of the noise ε̂
    3. move x_t to x_{t_prev} with the sampler's rule

The samplers differ only in step 3:

* ``ddpm_step``  ancestral sampling, Ho et al. 2020 ("DDPM") eq. 6-7, generalised to strided steps
* ``ddim_step``  Song et al. 2021 ("DDIM") eq. 12; η=0 is deterministic, η=1 recovers DDPM's variance
* ``DPMSolverPP`` Lu et al. 2022 ("DPM-Solver++"), the 2M multistep solver, Algorithm 2 (data prediction)

and ``sample`` is the short loop that drives any of them, written out so that you can read it in one go.

Notation (shared with ``schedule.py``; the table is in docs/architecture.md, "Notation"): ᾱ_t is
``alpha_bar`` (= ``schedule.alpha_bar[t]``), √ᾱ_t ``sqrt_alpha_bar`` (the signal scale) and σ_t = √(1 − ᾱ_t)
``sigma`` (the noise scale), so x_t = √ᾱ_t·x₀ + σ_t·ε. The papers' own symbols differ (DDIM writes α_t for our
ᾱ_t; DPM-Solver writes α_t for our √ᾱ_t); each step's docstring maps them. The timestep ``t_prev = -1`` means
"the clean data", with ᾱ = 1: the last step of every sampler lands exactly on x̂₀.
"""

from __future__ import annotations

import numbers
from typing import Mapping

import torch
from einops import rearrange
from torch import Tensor, nn
from tqdm.auto import tqdm

from .conditioning import Conditioning, as_single_frames, cat_conditions
from .schedule import PREDICTIONS
from .utils import randn_like

SAMPLERS = ("ddpm", "ddim", "dpmpp")


# ---------------------------------------------------------------- helpers ----


def _alpha_bar(schedule, t: int | Tensor, like: Tensor) -> Tensor:
    """ᾱ_t as a tensor that broadcasts against ``like`` (b, c, f, h, w); ``t < 0`` gives ᾱ = 1 (clean data).

    ``t`` may be an int, a 0-d tensor, or one timestep per sample, shape (b,). It stays float64 (as ᾱ is
    stored): the steps compute their coefficients in float64 and cast only the new x_t to the data's dtype.
    """
    table = schedule.alpha_bar.to(like.device)
    t = torch.as_tensor(t, device=like.device).long()
    alpha_bar = torch.where(t >= 0, table[t.clamp(min=0)], torch.ones((), dtype=table.dtype, device=like.device))
    if alpha_bar.ndim == 1:  # one ᾱ per sample: (b,) -> (b, 1, 1, 1, 1)
        alpha_bar = alpha_bar.reshape(-1, *([1] * (like.ndim - 1)))
    return alpha_bar


def _check_prediction(prediction: str) -> None:
    if prediction not in PREDICTIONS:
        raise ValueError(f"prediction must be one of {PREDICTIONS} (what the network was trained to output); "
                         f"got {prediction!r}. Use the same value as TrainConfig.prediction.")


def predict_x0_eps(schedule, model_out: Tensor, t: int | Tensor, x_t: Tensor, prediction: str = "v",
                   clip_x0: float | None = None) -> tuple[Tensor, Tensor]:
    """Step 2 of every sampler: from the network's output to (x̂₀, ε̂).

    With x_t = √ᾱ_t·x₀ + σ_t·ε (DDPM eq. 4) and v = √ᾱ_t·ε − σ_t·x₀ (Salimans & Ho 2022, section 4), the
    schedule's conversions compute:

        prediction "eps":  x̂₀ = (x_t − σ_t·ε̂) / √ᾱ_t
        prediction "x0" :  ε̂  = (x_t − √ᾱ_t·x̂₀) / σ_t
        prediction "v"  :  x̂₀ = √ᾱ_t·x_t − σ_t·v̂,   ε̂ = σ_t·x_t + √ᾱ_t·v̂

    ``clip_x0`` (e.g. 1.0 for pixels in [-1, 1]; leave None for latents) clamps x̂₀ and recomputes ε̂ from it.
    """
    _check_prediction(prediction)
    if prediction == "eps":
        eps = model_out
        x0 = schedule.eps_to_x0(x_t, t, eps)
    elif prediction == "x0":
        x0 = model_out
        eps = schedule.x0_to_eps(x_t, t, x0)
    else:
        x0, eps = schedule.v_to_x0(x_t, t, model_out), schedule.v_to_eps(x_t, t, model_out)
    if clip_x0 is not None:
        x0 = x0.clamp(-clip_x0, clip_x0)
        eps = schedule.x0_to_eps(x_t, t, x0)  # keep (x̂₀, ε̂) consistent with x_t
    return x0, eps


# ---------------------------------------------------------------- classifier-free guidance ----


def guided_prediction(model: nn.Module, x: Tensor, t: Tensor, cond: dict | None,
                      guidance_scale: float | Mapping[str, float] = 1.0, conditioning: Conditioning | None = None,
                      null_cond: dict | None = None) -> Tensor:
    """The network's prediction with classifier-free guidance (Ho & Salimans 2022, eq. 6):

        out = out(∅) + s · (out(c) − out(∅))

    s = 1 is the plain conditional model (returned exactly, with a single forward pass); s > 1 pushes the sample
    towards its condition. "∅" nulls every condition that was trained with dropout (``conditioning.null``); the
    others, such as given frames, stay in both branches. Both predictions come from ONE forward pass on 2b clips.

    ``guidance_scale`` may also be a dict with one scale per kind of condition, ``{"labels": 3.0, ...}`` (kinds
    left out get 1). The kinds are then added one at a time, in the order of ``conditioning``, as InstructPix2Pix
    (Brooks et al. 2023, eq. 3) and Gen-1 (Esser et al. 2023) do for two conditions:

        out = out(∅) + s₁·(out(c₁) − out(∅)) + s₂·(out(c₁, c₂) − out(c₁)) + ...

    which costs one more forward branch per kind; when every scale is the same it is exactly the first formula.
    ``conditioning`` defaults to ``Conditioning.for_unet(model.cfg)``; ``null_cond`` replaces ∅ by your own.
    """
    if cond is None:
        return model(x, t, cond)
    if conditioning is None:
        conditioning = Conditioning.for_unet(model.cfg)
    guided = [k.name for k in conditioning.kinds if k.guidable and k.name in _names_in(cond, conditioning)]
    scales = _scales_per_kind(guidance_scale, guided)
    if null_cond is not None or len(set(scales.values())) <= 1:
        s = next(iter(scales.values()), 1.0)
        if s == 1.0:
            return model(x, t, cond)
        null_cond = conditioning.null(cond, guided) if null_cond is None else null_cond
        b = x.shape[0]
        out = model(torch.cat([x, x]), torch.cat([t, t]), cat_conditions([cond, null_cond]))  # (2b, c, f, h, w)
        out_cond, out_uncond = out[:b], out[b:]  # (b, c, f, h, w) each
        return out_uncond + s * (out_cond - out_uncond)
    # one branch per prefix of the guided kinds: ∅, (c₁), (c₁, c₂), ...
    branches = [conditioning.null(cond, guided[k:]) for k in range(len(guided) + 1)]
    n = len(branches)
    out = model(torch.cat([x] * n), torch.cat([t] * n), cat_conditions(branches)).chunk(n)  # n × (b, c, f, h, w)
    result = out[0]
    for k, name in enumerate(guided, start=1):
        result = result + scales[name] * (out[k] - out[k - 1])
    return result


def temporal_guided_prediction(model: nn.Module, x: Tensor, t: Tensor, cond: dict | None, temporal_scale: float,
                               guidance_scale: float | Mapping[str, float] = 1.0,
                               conditioning: Conditioning | None = None, null_cond: dict | None = None) -> Tensor:
    """Temporal-consistency guidance (Esser et al. 2023, Gen-1, section 3.3): the video model's prediction pushed
    away from the image model's, the same network run on every frame alone (``conditioning.as_single_frames``;
    its temporal layers then idle):

        out = out_image + ω_t · (out_video − out_image)

    ω_t = 1 is the video model (one branch, returned exactly); ω_t > 1 exaggerates what the temporal layers add
    (smoother, more consistent clips); 0 is the image model, frame by frame; each branch is classifier-free guided
    as ``guided_prediction``. Meaningful for a model trained on single frames too (``TrainConfig.frame_prob``)."""
    video = guided_prediction(model, x, t, cond, guidance_scale, conditioning, null_cond)  # (b, c, f, h, w)
    if temporal_scale == 1.0:
        return video
    b, f = x.shape[0], x.shape[2]
    frames, frame_cond = as_single_frames(x, cond)  # (b·f, c, 1, h, w)
    frame_null = None if null_cond is None else as_single_frames(x, null_cond)[1]
    image = guided_prediction(model, frames, t.repeat_interleave(f), frame_cond, guidance_scale, conditioning,
                              frame_null)  # (b·f, c, 1, h, w)
    image = rearrange(image, "(b f) c 1 h w -> b c f h w", b=b)  # (b, c, f, h, w)
    return image + temporal_scale * (video - image)


def guidance_at(guidance_scale: float | Mapping[str, float], t: int, interval: tuple[int, int] | None):
    """The guidance scale to use at timestep ``t``: ``guidance_scale`` inside ``interval = (lo, hi)``, that is for
    lo < t ≤ hi, and 1 (the conditional model alone, one forward pass) outside it; everywhere when ``interval`` is
    None. Guidance limited to the middle noise levels (Kynkäänniemi et al. 2024, "Applying guidance in a limited
    interval improves sample and distribution quality in diffusion models", §3, in σ: here in t) keeps what
    guidance does to the content and leaves the first, noisiest steps, where the layout is laid down, to the
    plain model."""
    if interval is None or interval[0] < t <= interval[1]:
        return guidance_scale
    return 1.0


def check_guidance_interval(interval, num_steps: int) -> tuple[int, int] | None:
    """``interval`` as a pair of ints (lo, hi) with -1 ≤ lo < hi ≤ T − 1, or None; else one line that says so."""
    if interval is None:
        return None
    whole = isinstance(interval, (tuple, list)) and len(interval) == 2 and all(
        isinstance(v, numbers.Real) and not isinstance(v, bool) and float(v).is_integer() for v in interval)
    lo, hi = (int(v) for v in interval) if whole else (None, None)
    if not whole or not -1 <= lo < hi <= num_steps - 1:
        raise ValueError(f"guidance_interval is (lo, hi), timesteps with -1 <= lo < hi <= {num_steps - 1}: guidance "
                         f"where lo < t <= hi; got {interval!r}. E.g. (-1, 900) leaves out the noisiest tenth")
    return lo, hi


def _names_in(cond: dict, conditioning: Conditioning) -> set[str]:
    """The kinds whose U-Net entries are all present in ``cond``."""
    return {k.name for k in conditioning.kinds if all(key in cond for key in k.unet_keys)}


def _scales_per_kind(guidance_scale: float | Mapping[str, float], names: list[str]) -> dict[str, float]:
    if isinstance(guidance_scale, Mapping):
        unknown = set(guidance_scale) - set(names)
        if unknown:
            raise ValueError(f"guidance_scale names {sorted(unknown)}, but the guidable conditions given are "
                             f"{names or 'none'}; use one scale per condition, e.g. {{'labels': 3.0}}")
        return {name: float(guidance_scale.get(name, 1.0)) for name in names}
    return {name: float(guidance_scale) for name in names}


# ---------------------------------------------------------------- DDPM ----


def ddpm_step(schedule, model_out: Tensor, t: int | Tensor, t_prev: int | Tensor, x_t: Tensor, prediction: str = "v",
              generator: torch.Generator | None = None, clip_x0: float | None = None) -> Tensor:
    """One ancestral step x_t → x_{t_prev}: sample the posterior q(x_{t_prev} | x_t, x̂₀).

    Variables and the paper's symbols (Ho et al. 2020, eq. 6-7, with s = t_prev which may skip steps):
        alpha_bar_t, alpha_bar_s   ᾱ_t, ᾱ_s
        alpha_t_given_s            α_{t|s} = ᾱ_t / ᾱ_s      (for s = t − 1 this is the usual α_t = 1 − β_t)
        beta_t_given_s             β_{t|s} = 1 − α_{t|s}    (for s = t − 1, the usual β_t)
    """
    # 1. look up ᾱ_t and ᾱ_s (ᾱ = 1 at s = -1, the clean data)
    alpha_bar_t, alpha_bar_s = _alpha_bar(schedule, t, x_t), _alpha_bar(schedule, t_prev, x_t)
    alpha_t_given_s = alpha_bar_t / alpha_bar_s
    beta_t_given_s = 1 - alpha_t_given_s
    # 2. predict x̂₀ from the network output
    x0, _ = predict_x0_eps(schedule, model_out, t, x_t, prediction, clip_x0)
    # 3. posterior mean, DDPM eq. 7: μ̃ = √ᾱ_s·β_{t|s}/(1−ᾱ_t)·x̂₀ + √α_{t|s}·(1−ᾱ_s)/(1−ᾱ_t)·x_t
    mean = ((alpha_bar_s.sqrt() * beta_t_given_s / (1 - alpha_bar_t)) * x0.double()
            + (alpha_t_given_s.sqrt() * (1 - alpha_bar_s) / (1 - alpha_bar_t)) * x_t.double())
    # 4. posterior variance, DDPM eq. 7: β̃ = (1−ᾱ_s)/(1−ᾱ_t)·β_{t|s}  (zero at the last step, s = -1)
    var = (1 - alpha_bar_s) / (1 - alpha_bar_t) * beta_t_given_s
    # 5. sample: x_s = μ̃ + √β̃·z,  z ~ N(0, I)
    z = randn_like(x_t, generator).double()
    return (mean + var.sqrt() * z).to(x_t.dtype)


# ---------------------------------------------------------------- DDIM ----


def ddim_step(schedule, model_out: Tensor, t: int | Tensor, t_prev: int | Tensor, x_t: Tensor, prediction: str = "v",
              eta: float = 0.0, generator: torch.Generator | None = None, clip_x0: float | None = None) -> Tensor:
    """One DDIM step x_t → x_{t_prev} (Song et al. 2021, eq. 12).

    Variables and the paper's symbols (the paper writes α_t for our ᾱ_t):
        alpha_bar_t, alpha_bar_s   ᾱ_t, ᾱ_s = ᾱ_{t_prev}     x0, eps   x̂₀ = f_θ(x_t), ε̂ = ε_θ(x_t)
        sigma                      σ_t(η) = η·√((1−ᾱ_s)/(1−ᾱ_t))·√(1 − ᾱ_t/ᾱ_s)   (eq. 16; η = 1 gives DDPM's variance)
    """
    if eta < 0:
        raise ValueError(f"eta must be >= 0 (0 = deterministic DDIM, 1 = DDPM-like noise); got {eta}")
    # 1. look up ᾱ_t and ᾱ_s
    alpha_bar_t, alpha_bar_s = _alpha_bar(schedule, t, x_t), _alpha_bar(schedule, t_prev, x_t)
    # 2. predict x̂₀ and ε̂
    x0, eps = predict_x0_eps(schedule, model_out, t, x_t, prediction, clip_x0)
    # 3. the noise level of this step, eq. 16
    sigma = eta * ((1 - alpha_bar_s) / (1 - alpha_bar_t)).sqrt() * (1 - alpha_bar_t / alpha_bar_s).sqrt()
    # 4. direction pointing to x_t, eq. 12: √(1 − ᾱ_s − σ²)·ε̂
    direction = (1 - alpha_bar_s - sigma**2).clamp(min=0).sqrt() * eps.double()
    # 5. x_s = √ᾱ_s·x̂₀ + direction + σ·z   (no noise drawn when η = 0)
    x_prev = alpha_bar_s.sqrt() * x0.double() + direction
    if eta > 0:
        x_prev = x_prev + sigma * randn_like(x_t, generator).double()
    return x_prev.to(x_t.dtype)


# ---------------------------------------------------------------- DPM-Solver++ (2M) ----


class DPMSolverPP:
    """DPM-Solver++(2M): a second-order multistep solver of the diffusion ODE in its data-prediction form
    (Lu et al. 2022, "DPM-Solver++", Algorithm 2). It reuses the previous step's x̂₀, so each step still costs
    one network call, and gives good clips in 10-25 steps.

    Variables and the paper's symbols (the paper writes α_t for our √ᾱ_t; σ_t = √(1−ᾱ_t) as here):
        lam    λ_t = log(√ᾱ_t / σ_t), half the log-SNR; it grows as t goes to 0
        h      h_i = λ_{t_i} − λ_{t_{i−1}}, the step size in λ
        r      r_i = h_{i−1} / h_i
        D      D_i = (1 + 1/(2r_i))·x̂₀_{i−1} − 1/(2r_i)·x̂₀_{i−2}, a linear extrapolation of x̂₀

    It keeps state between calls: make a new one (or call ``reset()``) for every new sampling run.

        solver = DPMSolverPP(schedule)
        for t, t_prev in pairs:
            x = solver.step(model(x, t, cond), t, t_prev, x, prediction="v")
    """

    def __init__(self, schedule):
        self.schedule = schedule
        self.reset()

    def reset(self) -> None:
        self.prev_x0: Tensor | None = None  # x̂₀ from the previous step
        self.prev_h: Tensor | None = None   # h from the previous step

    def _lambda(self, t, like: Tensor) -> Tensor:
        alpha_bar = _alpha_bar(self.schedule, t, like)
        return 0.5 * (alpha_bar.log() - (1 - alpha_bar).log())  # λ = log(√ᾱ/σ) = ½·log(ᾱ/(1−ᾱ))

    def step(self, model_out: Tensor, t: int | Tensor, t_prev: int | Tensor, x_t: Tensor, prediction: str = "v",
             clip_x0: float | None = None) -> Tensor:
        # 1. predict x̂₀ (the solver works with the data prediction, hence "++")
        x0, _ = predict_x0_eps(self.schedule, model_out, t, x_t, prediction, clip_x0)
        if int(torch.as_tensor(t_prev).max()) < 0:
            # the last step ends at σ = 0 (λ = ∞): the first-order update's limit is x̂₀ itself
            self.reset()
            return x0
        # 2. look up √ᾱ, σ and λ at both ends of the step
        alpha_bar_t, alpha_bar_s = _alpha_bar(self.schedule, t, x_t), _alpha_bar(self.schedule, t_prev, x_t)
        sigma_t, sigma_s, sqrt_alpha_bar_s = (1 - alpha_bar_t).sqrt(), (1 - alpha_bar_s).sqrt(), alpha_bar_s.sqrt()
        h = self._lambda(t_prev, x_t) - self._lambda(t, x_t)
        # 3. D: x̂₀ for the first step and for the step into t = 0 (first order, the solver's "lower order final":
        #    near t = 0 λ grows so fast that extrapolating x̂₀ overshoots); else the 2nd-order extrapolation
        if self.prev_x0 is None or int(torch.as_tensor(t_prev).min()) <= 0:
            D = x0.double()
        else:
            r = self.prev_h / h
            D = (1 + 1 / (2 * r)) * x0.double() - (1 / (2 * r)) * self.prev_x0.double()
        # 4. Algorithm 2: x_s = (σ_s/σ_t)·x_t − √ᾱ_s·(e^{−h} − 1)·D
        x_prev = (sigma_s / sigma_t) * x_t.double() - sqrt_alpha_bar_s * torch.expm1(-h) * D
        self.prev_x0, self.prev_h = x0, h
        return x_prev.to(x_t.dtype)


# ---------------------------------------------------------------- given frames through the noise ----


def replace_known(schedule, x_t: Tensor, t: int, known: Tensor, mask: Tensor,
                  generator: torch.Generator | None = None) -> Tensor:
    """Condition on given frames through the noise instead of input channels: the "replacement" method (Ho et al.
    2022, "Video Diffusion Models", section 3.1, after Song et al. 2021's inpainting). After every step the frames
    where ``mask (b, f)`` is True are overwritten by the ground truth ``known (b, c, f, h, w)`` noised to level t:

        x_t[given] = √ᾱ_t·known + σ_t·ε,   ε ~ N(0, I)      (t = -1: the clean frames themselves)

    Any model can do it, even one never trained with given frames; its weakness (the paper's reason for
    "reconstruction guidance") is that the generated frames see the given ones only through the noisy x_t, so they
    may not follow them closely. ``conditioning.ContextFrames`` is the other way, which needs training.
    """
    alpha_bar = _alpha_bar(schedule, t, x_t)  # () or broadcastable, float64
    noised = alpha_bar.sqrt() * known.double() + (1 - alpha_bar).sqrt() * randn_like(known, generator).double()
    m = mask.to(x_t.device).reshape(mask.shape[0], 1, mask.shape[1], 1, 1)  # (b, 1, f, 1, 1)
    return torch.where(m, noised.to(x_t.dtype), x_t)  # (b, c, f, h, w)


# ---------------------------------------------------------------- the sampling loop ----


def timestep_pairs(schedule, steps: int) -> list[tuple[int, int]]:
    """The (t, t_prev) pairs a sampler visits: ``schedule.timesteps(steps)`` followed by -1 (the clean data)."""
    if not 1 <= steps <= schedule.num_steps:
        raise ValueError(f"steps must be between 1 and the schedule's num_steps={schedule.num_steps}; got {steps}. "
                         f"10-50 is typical (DDPM wants more, DPM-Solver++ fewer).")
    ts = [int(t) for t in schedule.timesteps(steps)]  # descending, e.g. [999, 979, ..., 19] for 50 steps
    return list(zip(ts, ts[1:] + [-1]))


@torch.no_grad()
def sample(model: nn.Module, schedule, shape: tuple[int, ...], cond: dict | None = None, sampler: str = "ddim",
           steps: int = 50, guidance_scale: float = 1.0, eta: float = 0.0, prediction: str = "v",
           generator: torch.Generator | None = None, device: torch.device | str | None = None,
           return_trajectory: bool = False, progress: bool = False, clip_x0: float | None = None,
           x_T: Tensor | None = None, null_cond: dict | None = None, conditioning: Conditioning | None = None,
           known: tuple[Tensor, Tensor] | None = None, temporal_guidance: float = 1.0, strength: float = 1.0,
           guidance_interval: tuple[int, int] | None = None):
    """Draw clips shaped ``shape`` = (b, c, f, h, w) from noise with ``steps`` network calls.

    ``sampler`` is ``"ddim"`` (η = ``eta``), ``"ddpm"`` (ancestral) or ``"dpmpp"`` (DPM-Solver++ 2M);
    ``guidance_scale`` > 1 turns on classifier-free guidance (needs ``cond``; a dict gives one scale per kind of
    condition, see ``guided_prediction``, whose ``conditioning`` says which kinds there are); ``generator`` makes it repeatable;
    ``x_T`` gives the starting noise yourself (then ``shape`` may be None). ``known = (latents, mask)`` gives
    frames through the noise (``replace_known``): ``latents (b, c, f, h, w)``, ``mask (b, f)`` True = given.
    ``temporal_guidance`` ω_t ≠ 1 mixes in the image model's prediction (``temporal_guided_prediction``).
    ``strength`` < 1 runs only the last ``round(strength · steps)`` steps, starting from ``x_T`` taken to be at the
    first of them (``edit_start``): the second half of SDEdit (``sdedit``). ``guidance_interval = (lo, hi)``
    guides only the steps with lo < t ≤ hi (``guidance_at``); the others run the conditional model alone.

    Returns the clips x₀, or with ``return_trajectory=True`` the pair ``(x0, trajectory)`` where
    ``trajectory = {"t": (steps,) long, "x_t": (steps + 1, b, c, f, h, w), "x0_hat": (steps, b, c, f, h, w)}``
    on the CPU: every x_t from the starting noise to the result, and every x̂₀ the network predicted.
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}; got {sampler!r}")
    _check_prediction(prediction)
    was_training = model.training
    device = torch.device(device) if device is not None else next(model.parameters()).device
    if strength != 1.0 and x_T is None:
        raise ValueError("strength < 1 starts part-way, from a given x_T at that step: pass x_T (sdedit does)")
    pairs = timestep_pairs(schedule, steps) if strength == 1.0 else _edit_pairs(schedule, steps, strength)
    guidance_interval = check_guidance_interval(guidance_interval, schedule.num_steps)
    # 1. start from pure Gaussian noise x_T ~ N(0, I)
    x = x_T.to(device) if x_T is not None else randn_like(torch.empty(shape, device=device), generator)
    solver = DPMSolverPP(schedule) if sampler == "dpmpp" else None
    if known is not None:  # given frames through the noise: x_T's given frames noised from the truth, too
        known = (known[0].to(device), known[1].to(device))
        x = replace_known(schedule, x, pairs[0][0], *known, generator)
    xs, x0s = ([x.cpu()] if return_trajectory else []), []
    model.eval()
    for t, t_prev in _maybe_tqdm(pairs, progress, sampler):
        t_batch = torch.full((x.shape[0],), t, device=device, dtype=torch.long)  # (b,)
        # 2. the network's prediction at (x_t, t), guided
        out = temporal_guided_prediction(model, x, t_batch, cond, temporal_guidance,
                                         guidance_at(guidance_scale, t, guidance_interval), conditioning, null_cond)
        if return_trajectory:  # keep x̂₀ for plots (the samplers compute it again inside their step)
            x0s.append(predict_x0_eps(schedule, out, t, x, prediction, clip_x0)[0].cpu())
        # 3. one step of the chosen sampler: x_t -> x_{t_prev}
        if sampler == "ddpm":
            x = ddpm_step(schedule, out, t, t_prev, x, prediction, generator, clip_x0)
        elif sampler == "ddim":
            x = ddim_step(schedule, out, t, t_prev, x, prediction, eta, generator, clip_x0)
        else:
            x = solver.step(out, t, t_prev, x, prediction, clip_x0)
        if known is not None:
            x = replace_known(schedule, x, t_prev, *known, generator)
        if return_trajectory:
            xs.append(x.cpu())
    model.train(was_training)
    if not return_trajectory:
        return x
    ts = torch.tensor([t for t, _ in pairs], dtype=torch.long)
    return x, {"t": ts, "x_t": torch.stack(xs), "x0_hat": torch.stack(x0s)}


# ---------------------------------------------------------------- editing: SDEdit and DDIM inversion ----


def _edit_pairs(schedule, steps: int, strength: float) -> list[tuple[int, int]]:
    """The last ``round(strength · steps)`` (at least one) of the (t, t_prev) pairs a ``steps``-step sampler visits
    (as diffusers' image-to-image pipelines count them)."""
    if not 0 < strength <= 1:
        raise ValueError(f"strength is the fraction of the sampler's steps to run again, in (0, 1]; got {strength}. "
                         f"Small keeps the input, 1 ignores it.")
    pairs = timestep_pairs(schedule, steps)
    return pairs[len(pairs) - max(1, round(strength * steps)):]


def edit_start(schedule, steps: int, strength: float) -> int:
    """The step t₀ an edit of ``strength`` starts from: the first of its ``_edit_pairs``."""
    return _edit_pairs(schedule, steps, strength)[0][0]


@torch.no_grad()
def sdedit(model: nn.Module, schedule, x0: Tensor, strength: float, cond: dict | None = None, steps: int = 50,
           generator: torch.Generator | None = None, **sample_kwargs) -> Tensor:
    """SDEdit (Meng et al. 2022): edit clean clips ``x0 (b, c, f, h, w)`` by noising them part-way and denoising
    from there, with (possibly) another condition.

        1. t₀ = edit_start(schedule, steps, strength)
        2. x_t₀ = √ᾱ_t₀·x₀ + √(1−ᾱ_t₀)·ε                 (DDPM eq. 4: the input, noised to t₀)
        3. the last round(strength · steps) steps of the sampler, from x_t₀

    Small ``strength`` keeps the input's layout and details; ``strength = 1`` starts from (almost) pure noise and
    keeps almost nothing. The other arguments are ``sample``'s.
    """
    t0 = edit_start(schedule, steps, strength)
    x_t0 = schedule.q_sample(x0, torch.full((x0.shape[0],), t0, device=x0.device), randn_like(x0, generator))
    return sample(model, schedule, None, cond, steps=steps, x_T=x_t0, strength=strength, generator=generator,
                  **sample_kwargs)


@torch.no_grad()
def ddim_invert(model: nn.Module, schedule, x0: Tensor, cond: dict | None = None, steps: int = 50,
                prediction: str = "v", guidance_scale: float = 1.0, conditioning: Conditioning | None = None,
                null_cond: dict | None = None) -> Tensor:
    """DDIM inversion (Song et al. 2021, §4.3 and §5.4): run deterministic DDIM (η = 0) backwards,
    from clean clips ``x0`` to the noise ``x_T`` that DDIM with the same ``steps`` and condition maps back to them.

    For each step t_prev → t of the sampler, in reverse (x is at t_prev):
        1. ε̂ from the network at (x, t)                     (x stands in for the unknown x_t)
        2. x̂₀ = (x − √(1−ᾱ_prev)·ε̂) / √ᾱ_prev              (eq. 4 solved for x₀, at t_prev)
        3. x ← √ᾱ_t·x̂₀ + √(1−ᾱ_t)·ε̂                        (DDIM eq. 12 with η = 0, one step up)

    Step 1's stand-in is the only approximation: with enough steps ``sample(..., sampler="ddim", x_T=inverted)``
    gives back ``x0`` closely. Sampling from it with another condition is an edit that keeps the input's noise.
    """
    _check_prediction(prediction)
    pairs = timestep_pairs(schedule, steps)
    was_training = model.training
    model.eval()
    x = x0
    for t, t_prev in reversed(pairs):
        t_batch = torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)  # (b,)
        out = guided_prediction(model, x, t_batch, cond, guidance_scale, conditioning, null_cond)
        _, eps = predict_x0_eps(schedule, out, t, x, prediction)  # 1.
        alpha_bar_t, alpha_bar_prev = _alpha_bar(schedule, t, x), _alpha_bar(schedule, t_prev, x)
        x0_hat = (x.double() - (1 - alpha_bar_prev).sqrt() * eps.double()) / alpha_bar_prev.sqrt()  # 2.
        x = (alpha_bar_t.sqrt() * x0_hat + (1 - alpha_bar_t).sqrt() * eps.double()).to(x0.dtype)  # 3.
    model.train(was_training)
    return x


def _maybe_tqdm(pairs: list, progress: bool, sampler: str):
    if not progress:
        return pairs
    return tqdm(pairs, desc=f"sampling ({sampler})", leave=False)
