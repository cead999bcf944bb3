"""Noise schedules and the forward (noising) process.

A diffusion model destroys a clean clip x₀ in T small steps of Gaussian noise and learns to undo them. The
schedule says how much noise each step adds. Symbols, as in the papers (code name → symbol):

    betas[t]      β_t     variance of the noise added at step t       q(x_t | x_{t-1}) = N(√(1−β_t)·x_{t-1}, β_t·I)
    alphas[t]     α_t     1 − β_t
    alpha_bar[t]  ᾱ_t     ∏_{s≤t} α_s: the share of x₀'s power left   q(x_t | x_0) = N(√ᾱ_t·x_0, (1−ᾱ_t)·I)
    sqrt_alpha_bar[t]            √ᾱ_t   the signal scale (the α_t of Kingma et al. 2021 and DPM-Solver: not ours)
    sqrt_one_minus_alpha_bar[t]  σ_t    √(1 − ᾱ_t), the noise scale; locally ``sigma``
    snr(t)        SNR_t   ᾱ_t / (1 − ᾱ_t): signal power over noise power
    shift         κ       every SNR divided by κ² (``shift_snr``); 1 = the schedule as its kind defines it

The full table, with every symbol the toolkit uses, is in docs/architecture.md ("Notation").

Steps are indexed t = 0 … T−1 in code (the papers count 1 … T): ``alpha_bar[0]`` is the first, lightly noised
step and ``alpha_bar[T-1]`` the last, almost pure noise.

Every method takes a per-sample step ``t`` of shape (b,) (integer) and broadcasts it over however many trailing
axes the data has, so the same code serves images (b, c, h, w) and videos (b, c, f, h, w).

Sources:
    DDPM        Ho, Jain, Abbeel 2020, "Denoising Diffusion Probabilistic Models" (linear schedule, eq. 4, eq. 14)
    iDDPM       Nichol, Dhariwal 2021, "Improved Denoising Diffusion Probabilistic Models" (cosine schedule, eq. 17)
    sigmoid     Jabri, Fleet, Chen 2022, "Scalable Adaptive Computation for Iterative Generation" (RIN);
                Chen 2023, "On the Importance of Noise Scheduling for Diffusion Models" (Algorithm 1)
    v           Salimans, Ho 2022, "Progressive Distillation for Fast Sampling of Diffusion Models" (§4, App. D)
    zero SNR    Lin, Liu, Li, Yang 2024, "Common Diffusion Noise Schedules and Sample Steps are Flawed" (Alg. 1, §3.4)
    shift       Hoogeboom, Heek, Salimans 2023, "simple diffusion: End-to-end diffusion for high resolution images"
                (§3.1, the shifted schedule); Esser et al. 2024 (SD3, §5.3.2, the resolution-dependent shift)
"""

from __future__ import annotations

import math
import numbers

import torch

KINDS = ("linear", "cosine", "sigmoid")
PREDICTIONS = ("eps", "x0", "v")  # what a denoiser can be trained to output; the conversions below link them


# ----------------------------------------------------------------------------------------------------------------
# The three β schedules (float64 tensors of shape (T,))


def linear_betas(num_steps: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """DDPM §4: β rises linearly from 1e-4 to 0.02 over T = 1000 steps.

    For another T the endpoints are scaled by 1000 / T (iDDPM's code) so the total noise stays about the same.
    """
    scale = 1000 / num_steps
    return torch.linspace(scale * beta_start, scale * beta_end, num_steps, dtype=torch.float64)  # (T,)


def cosine_betas(num_steps: int, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """iDDPM eq. (17): ᾱ_t = f(t) / f(0),  f(t) = cos²(((t/T + s) / (1 + s)) · π/2);  β_t = min(1 − ᾱ_t/ᾱ_{t−1}, 0.999).

    The small offset s keeps β tiny near t = 0; the clip at 0.999 avoids a singularity at t = T.
    """
    steps = torch.arange(num_steps + 1, dtype=torch.float64) / num_steps  # (T+1,) times 0, 1/T, ..., 1
    f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2  # (T+1,)
    alpha_bar = f / f[0]  # (T+1,) ᾱ at the paper's t = 0 … T
    betas = 1 - alpha_bar[1:] / alpha_bar[:-1]  # (T,) β_t = 1 − ᾱ_t / ᾱ_{t−1}
    return betas.clamp(max=max_beta)


def sigmoid_betas(
    num_steps: int, start: float = -3.0, end: float = 3.0, tau: float = 1.0, max_beta: float = 0.999
) -> torch.Tensor:
    """Chen 2023, Algorithm 1 (the RIN schedule), with σ the logistic sigmoid:

        ᾱ(τ) = (σ(end/τ') − σ((τ·(end − start) + start)/τ')) / (σ(end/τ') − σ(start/τ'))

    Here τ ∈ [0, 1] is the normalised step and τ' = ``tau`` the temperature; ᾱ is renormalised so ᾱ(0) = 1, then
    turned into β_t = 1 − ᾱ_t/ᾱ_{t−1} (clipped at 0.999) like the cosine schedule. A larger ``tau`` or a wider
    [start, end] spends more steps at high noise, which helps larger images (Chen 2023 §3).
    """
    steps = torch.arange(num_steps + 1, dtype=torch.float64) / num_steps  # (T+1,)
    v_start = torch.sigmoid(torch.tensor(start / tau, dtype=torch.float64))
    v_end = torch.sigmoid(torch.tensor(end / tau, dtype=torch.float64))
    alpha_bar = (v_end - torch.sigmoid((steps * (end - start) + start) / tau)) / (v_end - v_start)  # (T+1,)
    alpha_bar = alpha_bar / alpha_bar[0]
    betas = 1 - alpha_bar[1:] / alpha_bar[:-1]  # (T,)
    return betas.clamp(min=0, max=max_beta)


def check_shift(shift, name: str = "shift") -> float:
    """``shift`` as a float, or a ValueError that says what a shift must be."""
    if isinstance(shift, bool) or not isinstance(shift, numbers.Real) or not shift > 0:
        raise ValueError(f"{name} must be a number > 0 (1 = the schedule as it is; 2–4 shift it towards noise); "
                         f"got {shift!r}")
    return float(shift)


def shift_snr(betas: torch.Tensor, shift: float) -> torch.Tensor:
    """Hoogeboom et al. 2023, §3.1: the same schedule with every step's SNR divided by κ² (κ = ``shift``),

        SNR'_t = SNR_t / κ²,   so   ᾱ'_t = ᾱ_t / (ᾱ_t + κ² · (1 − ᾱ_t)).

    A clip of many pixels and frames says much of its coarse layout even at a low SNR per element, because the
    evidence adds up over every element: the same noise level hides less of a big input than of a small one. A
    κ > 1 keeps more steps where the layout (for a video: where the digit goes) is still undecided; simple
    diffusion shifts by the resolution ratio, SD3 by a measured factor. κ = 1 returns ``betas`` unchanged.
    """
    if shift == 1:
        return betas
    alpha_bar = torch.cumprod(1 - betas, dim=0)  # (T,)
    alpha_bar = alpha_bar / (alpha_bar + shift**2 * (1 - alpha_bar))  # (T,) SNR / shift²
    alphas = torch.cat([alpha_bar[:1], alpha_bar[1:] / alpha_bar[:-1]])  # (T,)
    return 1 - alphas


def rescale_zero_terminal_snr(betas: torch.Tensor) -> torch.Tensor:
    """Lin et al. 2024, Algorithm 1: shift and scale √ᾱ so that ᾱ_{T−1} = 0 exactly while ᾱ_0 is unchanged.

    Common schedules end with a little signal left (SNR_T > 0), yet sampling starts from pure noise: the model
    never sees at training time what it gets at sampling time, and learns to keep, for example, mean brightness.
    With zero terminal SNR the last step is pure noise; predict v (not ε) then, since ε → x₀ divides by √ᾱ = 0.
    """
    # 1. √ᾱ from β
    sqrt_alpha_bar = torch.cumprod(1 - betas, dim=0).sqrt()  # (T,)
    first, last = sqrt_alpha_bar[0].clone(), sqrt_alpha_bar[-1].clone()
    # 2. shift so the last √ᾱ is 0, then scale so the first is what it was
    sqrt_alpha_bar = (sqrt_alpha_bar - last) * first / (first - last)  # (T,)
    # 3. back to α_t = ᾱ_t / ᾱ_{t−1} and β_t = 1 − α_t
    alpha_bar = sqrt_alpha_bar**2  # (T,)
    alphas = torch.cat([alpha_bar[:1], alpha_bar[1:] / alpha_bar[:-1]])  # (T,)
    return 1 - alphas


# ----------------------------------------------------------------------------------------------------------------
# The schedule object


class NoiseSchedule:
    """β, α and ᾱ for ``num_steps`` steps, the forward process q(x_t | x₀), and the ε / x₀ / v conversions.

        schedule = NoiseSchedule("cosine", num_steps=1000)
        t = torch.randint(0, schedule.num_steps, (b,))          # one step per clip
        x_t = schedule.q_sample(x0, t, noise)                    # x0: (b, c, f, h, w) → x_t: (b, c, f, h, w)

    Tables are float64 on the CPU (``to(device)`` moves them); results come back in the data's dtype and device.
    """

    def __init__(
        self,
        kind: str = "cosine",
        num_steps: int = 1000,
        zero_terminal_snr: bool = False,
        *,
        shift: float = 1.0,  # every SNR divided by shift² (shift_snr); > 1 spends more steps at high noise
        beta_start: float = 1e-4,  # linear: first β (at T = 1000)
        beta_end: float = 0.02,  # linear: last β (at T = 1000)
        cosine_s: float = 0.008,  # cosine: offset s that keeps β small near t = 0
        sigmoid_start: float = -3.0,  # sigmoid: left end of the sigmoid's input range
        sigmoid_end: float = 3.0,  # sigmoid: right end
        sigmoid_tau: float = 1.0,  # sigmoid: temperature
        max_beta: float = 0.999,  # cosine and sigmoid: clip for the last β
    ):
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}; got {kind!r}. The default, 'cosine', suits 64×64 clips.")
        if isinstance(num_steps, bool) or int(num_steps) != num_steps or num_steps < 2:
            raise ValueError(f"num_steps must be a whole number ≥ 2 (1000 is usual); got {num_steps!r}")
        num_steps = int(num_steps)
        if kind == "linear":
            if not 0 < beta_start < beta_end < 1 or beta_end * 1000 / num_steps >= 1:
                raise ValueError(
                    f"linear schedule needs 0 < beta_start < beta_end and beta_end·1000/num_steps < 1; got "
                    f"beta_start={beta_start}, beta_end={beta_end}, num_steps={num_steps} "
                    "(use more steps or a smaller beta_end)"
                )
            betas = linear_betas(num_steps, beta_start, beta_end)
        elif kind == "cosine":
            betas = cosine_betas(num_steps, s=cosine_s, max_beta=max_beta)
        else:
            if not sigmoid_start < sigmoid_end or sigmoid_tau <= 0:
                raise ValueError(
                    f"sigmoid schedule needs sigmoid_start < sigmoid_end and sigmoid_tau > 0; got "
                    f"start={sigmoid_start}, end={sigmoid_end}, tau={sigmoid_tau}"
                )
            betas = sigmoid_betas(num_steps, sigmoid_start, sigmoid_end, sigmoid_tau, max_beta=max_beta)
        betas = shift_snr(betas, check_shift(shift))
        if zero_terminal_snr:
            betas = rescale_zero_terminal_snr(betas)

        self.kind = kind
        self.num_steps = num_steps
        self.zero_terminal_snr = bool(zero_terminal_snr)
        self.shift = float(shift)
        self.betas = betas  # (T,) β_t
        self.alphas = 1 - betas  # (T,) α_t = 1 − β_t
        self.alpha_bar = torch.cumprod(self.alphas, dim=0)  # (T,) ᾱ_t = ∏_{s≤t} α_s
        if zero_terminal_snr:
            self.alpha_bar[-1] = 0.0  # exactly 0 (the product of the rescaled α is already 0 up to rounding)
        self.sqrt_alpha_bar = self.alpha_bar.sqrt()  # (T,) √ᾱ_t: how much signal is left
        self.sqrt_one_minus_alpha_bar = (1 - self.alpha_bar).sqrt()  # (T,) √(1−ᾱ_t): how much noise

    # -- bookkeeping -------------------------------------------------------------------------------------------

    def to(self, device: torch.device | str) -> "NoiseSchedule":
        """Move the tables to ``device`` and return self. They stay float64 (on Apple MPS, which has no float64,
        they stay on the CPU; results still come back on the data's device)."""
        device = torch.device(device)
        if device.type == "mps":
            return self
        for name in ("betas", "alphas", "alpha_bar", "sqrt_alpha_bar", "sqrt_one_minus_alpha_bar"):
            setattr(self, name, getattr(self, name).to(device))
        return self

    @property
    def device(self) -> torch.device:
        return self.alpha_bar.device

    def __repr__(self) -> str:
        alpha_bar = self.alpha_bar
        return (
            f"NoiseSchedule(kind={self.kind!r}, num_steps={self.num_steps}, "
            f"zero_terminal_snr={self.zero_terminal_snr}{f', shift={self.shift:g}' if self.shift != 1 else ''}; "
            f"alpha_bar {alpha_bar[0].item():.4f} → {alpha_bar[-1].item():.2e}, "
            f"log-SNR {self._log_snr_table()[0].item():.2f} → {self._log_snr_table()[-1].item():.2f})"
        )

    def _check_t(self, t: torch.Tensor | int, batch: int | None = None) -> torch.Tensor:
        """Validate ``t`` and return it as a long tensor; with ``batch``, as shape (batch,)."""
        if isinstance(t, numbers.Integral) and not isinstance(t, bool):  # a Python or NumPy int
            t = torch.tensor(int(t))
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"t must be an integer tensor of diffusion steps, shape (b,); got {type(t).__name__}")
        if t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool:
            raise TypeError(
                f"t must hold integer steps in [0, {self.num_steps}) (a long tensor); got dtype {t.dtype}. "
                "Use t.long(), or torch.randint(0, schedule.num_steps, (b,)) to draw steps."
            )
        if batch is not None:
            if t.ndim == 0:
                t = t.expand(batch)  # one step for the whole batch
            elif t.shape != (batch,):
                raise ValueError(
                    f"t must have shape (b,) = ({batch},), one step per sample of x's batch axis, or be a single "
                    f"step; got shape {tuple(t.shape)}. Flatten it with t.view(-1) or draw it with "
                    f"torch.randint(0, {self.num_steps}, ({batch},))."
                )
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= self.num_steps):
            raise ValueError(
                f"t must lie in [0, {self.num_steps}) for this {self.num_steps}-step schedule; got values from "
                f"{int(t.min())} to {int(t.max())}. Steps count from 0, so the last one is {self.num_steps - 1}."
            )
        return t.long()

    def _extract(self, a: torch.Tensor, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Gather ``a[t]`` for each sample and shape it (b, 1, 1, ...) to broadcast over x: any number of axes.

        Returned in x's dtype, on x's device. (A helper that reshapes to (b, 1, 1, 1) would break on video.)
        """
        t = self._check_t(t, batch=x.shape[0])  # (b,)
        out = a.gather(0, t.to(a.device))  # (b,) float64
        return out.to(device=x.device, dtype=x.dtype).reshape(x.shape[0], *([1] * (x.ndim - 1)))  # (b, 1, ..., 1)

    def _scales(self, t: torch.Tensor | int, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(√ᾱ_t, σ_t = √(1−ᾱ_t)), each (b, 1, ..., 1) for x: the signal and noise scales (Kingma et al. 2021 write
        the signal scale α_t; here α_t is 1 − β_t, so the code says ``sqrt_alpha_bar``)."""
        return self._extract(self.sqrt_alpha_bar, t, x), self._extract(self.sqrt_one_minus_alpha_bar, t, x)

    # -- signal-to-noise ratio ---------------------------------------------------------------------------------

    def _log_snr_table(self) -> torch.Tensor:
        return self.alpha_bar.log() - torch.log1p(-self.alpha_bar)  # (T,) log ᾱ − log(1 − ᾱ), −∞ where ᾱ = 0

    def snr(self, t: torch.Tensor | int) -> torch.Tensor:
        """SNR_t = ᾱ_t / (1 − ᾱ_t) (Kingma et al. 2021), float64, same shape as ``t``; 0 at a zero-SNR last step."""
        t = self._check_t(t)
        alpha_bar = self.alpha_bar[t.to(self.device)]
        return (alpha_bar / (1 - alpha_bar)).to(t.device)

    def log_snr(self, t: torch.Tensor | int) -> torch.Tensor:
        """log SNR_t = log ᾱ_t − log(1 − ᾱ_t), float64, same shape as ``t`` (−∞ at a zero-SNR last step)."""
        t = self._check_t(t)
        return self._log_snr_table()[t.to(self.device)].to(t.device)

    # -- the forward process -----------------------------------------------------------------------------------

    def q_sample(
        self,
        x0: torch.Tensor,
        t: torch.Tensor | int,
        noise: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Jump straight from x₀ to x_t: DDPM eq. (4), x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε with ε ~ N(0, I).

        ``noise`` (same shape as x0) is drawn with ``generator`` when not given.
        """
        if noise is None:
            noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=x0.device)
        _check_same_shape(x0, noise, "x0", "noise")
        sqrt_alpha_bar, sigma = self._scales(t, x0)  # each (b, 1, ..., 1)
        return sqrt_alpha_bar * x0 + sigma * noise

    # -- conversions between what a network can predict: ε, x₀ or v --------------------------------------------

    def eps_to_x0(self, x_t: torch.Tensor, t: torch.Tensor | int, eps: torch.Tensor) -> torch.Tensor:
        """x₀ = (x_t − √(1−ᾱ_t)·ε) / √ᾱ_t   (DDPM eq. 4 solved for x₀; DDIM eq. 12's "predicted x₀")."""
        _check_same_shape(x_t, eps, "x_t", "eps")
        sqrt_alpha_bar, sigma = self._scales(t, x_t)
        return (x_t - sigma * eps) / sqrt_alpha_bar

    def x0_to_eps(self, x_t: torch.Tensor, t: torch.Tensor | int, x0: torch.Tensor) -> torch.Tensor:
        """ε = (x_t − √ᾱ_t·x₀) / √(1−ᾱ_t)   (DDPM eq. 4 solved for ε)."""
        _check_same_shape(x_t, x0, "x_t", "x0")
        sqrt_alpha_bar, sigma = self._scales(t, x_t)
        return (x_t - sqrt_alpha_bar * x0) / sigma

    def v_target(self, x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor | int) -> torch.Tensor:
        """v = √ᾱ_t·ε − √(1−ᾱ_t)·x₀   (Salimans & Ho 2022, §4, who write α_t for our √ᾱ_t)."""
        _check_same_shape(x0, eps, "x0", "eps")
        sqrt_alpha_bar, sigma = self._scales(t, x0)
        return sqrt_alpha_bar * eps - sigma * x0

    def v_to_x0(self, x_t: torch.Tensor, t: torch.Tensor | int, v: torch.Tensor) -> torch.Tensor:
        """x₀ = √ᾱ_t·x_t − √(1−ᾱ_t)·v   (Salimans & Ho 2022, App. D). Finite even when ᾱ_t = 0."""
        _check_same_shape(x_t, v, "x_t", "v")
        sqrt_alpha_bar, sigma = self._scales(t, x_t)
        return sqrt_alpha_bar * x_t - sigma * v

    def v_to_eps(self, x_t: torch.Tensor, t: torch.Tensor | int, v: torch.Tensor) -> torch.Tensor:
        """ε = √(1−ᾱ_t)·x_t + √ᾱ_t·v   (Salimans & Ho 2022, App. D)."""
        _check_same_shape(x_t, v, "x_t", "v")
        sqrt_alpha_bar, sigma = self._scales(t, x_t)
        return sigma * x_t + sqrt_alpha_bar * v

    # -- the steps a sampler visits ----------------------------------------------------------------------------

    def timesteps(self, n: int) -> torch.Tensor:
        """``n`` evenly spaced steps, descending from T−1: the "trailing" spacing of Lin et al. 2024, Table 2.

        t_k = round(T − k·T/n) − 1 for k = 0 … n−1; e.g. T = 1000, n = 4 → [999, 749, 499, 249]. Starting at
        T−1 (not at 1 + something) makes the sampler begin where training noise is strongest.
        """
        if isinstance(n, bool) or int(n) != n or not 1 <= n <= self.num_steps:
            raise ValueError(f"n (number of sampling steps) must be a whole number in [1, {self.num_steps}]; got {n!r}")
        k = torch.arange(int(n), dtype=torch.float64)  # (n,)
        steps = torch.round(self.num_steps - k * self.num_steps / int(n)) - 1  # (n,) descending
        return steps.long().to(self.device)


def _check_same_shape(a: torch.Tensor, b: torch.Tensor, name_a: str, name_b: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{name_a} and {name_b} must have the same shape; got {tuple(a.shape)} and {tuple(b.shape)}")
