"""How alike are two frames? MSE, PSNR and SSIM, written from scratch.

All three take tensors of shape ``(..., h, w)``: a frame ``(h, w)``, a batch of frames ``(n, 1, h, w)``, or a
batch of clips ``(b, 1, f, h, w)`` alike. They compare each image (the last two axes) on its own and return one
number per image, shape ``(...)``; call ``.mean()`` for a single score. Pixel values live in [-1, 1] inside
the toolkit, so the default ``data_range`` (largest minus smallest possible value) is 2.

    recon = autoencoder.decode(autoencoder.encode(video))   # (b, 1, f, h, w)
    print(psnr(recon, video).mean(), ssim(recon, video).mean())

* MSE counts every pixel the same; PSNR is MSE on a log scale relative to the largest possible error.
* SSIM (Wang et al. 2004) compares local means (luminance), local standard deviations (contrast) and local
  correlation (structure) in a sliding Gaussian window, closer to what an eye notices: a blurred stroke loses
  SSIM faster than its MSE suggests.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .utils import gaussian_kernel


def _check_pair(x: torch.Tensor, y: torch.Tensor, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    if x.shape != y.shape:
        raise ValueError(f"{name} compares images of the same shape; got {tuple(x.shape)} and {tuple(y.shape)}. "
                         f"Compare a reconstruction with its own original, e.g. {name}(model(video)[0], video)")
    if x.dim() < 2:
        raise ValueError(f"{name} expects tensors of shape (..., h, w) with at least 2 axes; got {tuple(x.shape)}")
    if not x.is_floating_point():  # uint8 frames would wrap around when subtracted
        x = x.float()
    if not y.is_floating_point():
        y = y.float()
    return x, y


# ---------------------------------------------------------------- MSE and PSNR ----


def mse(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared error of each image: mean over the last two axes of (x − y)². Shape ``x.shape[:-2]``."""
    x, y = _check_pair(x, y, "mse")
    return (x - y).pow(2).mean(dim=(-2, -1))  # (...)


def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float = 2.0) -> torch.Tensor:
    """Peak signal-to-noise ratio of each image, in decibels. Shape ``x.shape[:-2]``; higher is better.

    PSNR = 10 · log10(L² / MSE), with L = ``data_range`` (2 for pixels in [-1, 1], 255 for uint8, 1 for [0, 1]).
    Identical images give +inf. Every halving of the MSE adds about 3 dB; on Moving MNIST a blank (all
    background) prediction scores about 11-15 dB and a good autoencoder over 25 dB.
    """
    if data_range <= 0:
        raise ValueError(f"data_range is the largest minus the smallest possible pixel value and must be > 0; "
                         f"got {data_range}. Use 2.0 for pixels in [-1, 1], 1.0 for [0, 1], 255 for uint8")
    err = mse(x, y)  # (...)
    return 10.0 * torch.log10(data_range**2 / err)  # (...), +inf where err == 0


# ---------------------------------------------------------------- SSIM ----


def gaussian_window(size: int = 11, sigma: float = 1.5, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A normalised 1-D Gaussian of ``size`` taps, g[k] ∝ exp(−k² / 2σ²) for k = −(size−1)/2 … (size−1)/2.

    The 2-D window of SSIM is its outer product ``g[:, None] * g[None, :]``, so filtering with it is the same as
    filtering the rows with ``g`` and then the columns with ``g`` (a separable filter: 2·size taps, not size²).
    """
    if size < 1 or size % 2 == 0:
        raise ValueError(f"window size must be odd and >= 1 so the window has a centre; got {size}. Try 11 or 7")
    if sigma <= 0:
        raise ValueError(f"sigma is the width of the Gaussian window and must be > 0; got {sigma}. Wang et al. use 1.5")
    return gaussian_kernel(sigma, (size - 1) // 2, torch.float64).to(dtype)  # (size,) sums to 1, made in float64


def _filter(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Weighted local means: filter (n, 1, h, w) with the separable window g, 'valid' (no padding)."""
    k = g.numel()
    x = F.conv2d(x, g.view(1, 1, k, 1))  # (n, 1, h-k+1, w)  columns
    x = F.conv2d(x, g.view(1, 1, 1, k))  # (n, 1, h-k+1, w-k+1)  rows
    return x


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 2.0, window: int = 11, sigma: float = 1.5,
         k1: float = 0.01, k2: float = 0.03, return_map: bool = False) -> torch.Tensor:
    """Structural similarity of each image (Wang, Bovik, Sheikh & Simoncelli 2004). Shape ``x.shape[:-2]``.

    1 means identical; it falls towards 0 (it can go slightly negative) as the images disagree. Local statistics
    are Gaussian-weighted means over a ``window``×``window`` window (σ = ``sigma``) at every position where the
    window fits inside the image ('valid', no padding); the score is the mean of the SSIM map over those
    positions. ``return_map=True`` returns the map itself, shape ``(..., h−window+1, w−window+1)``.
    """
    x, y = _check_pair(x, y, "ssim")
    if data_range <= 0:
        raise ValueError(f"data_range must be > 0; got {data_range}. Use 2.0 for pixels in [-1, 1], 1.0 for [0, 1]")
    *lead, h, w = x.shape
    if window > min(h, w):
        raise ValueError(f"ssim window={window} does not fit in images of {h}×{w}; pass a window <= {min(h, w)} "
                         f"(an odd number, e.g. window=7 or window=3) or compare larger images")
    dtype = torch.promote_types(x.dtype, y.dtype)
    x = x.to(dtype).reshape(-1, 1, h, w)  # (n, 1, h, w) every image of the batch on its own
    y = y.to(dtype).reshape(-1, 1, h, w)  # (n, 1, h, w)
    g = gaussian_window(window, sigma, dtype).to(x.device)  # (window,)

    # 1. stabilising constants, Wang et al. eq. (7) and (9): C1 = (K1·L)², C2 = (K2·L)²
    c1 = (k1 * data_range) ** 2
    c2 = (k2 * data_range) ** 2
    # 2. local means μ = w ∗ x, eq. (14)
    mu_x, mu_y = _filter(x, g), _filter(y, g)  # (n, 1, h', w') each
    # 3. local variances and covariance, eq. (15)-(16): σ² = w ∗ x² − μ², σ_xy = w ∗ (x·y) − μ_x·μ_y
    var_x = _filter(x * x, g) - mu_x**2
    var_y = _filter(y * y, g) - mu_y**2
    cov_xy = _filter(x * y, g) - mu_x * mu_y
    # 4. SSIM map, eq. (13): (2μ_xμ_y + C1)(2σ_xy + C2) / ((μ_x² + μ_y² + C1)(σ_x² + σ_y² + C2))
    luminance = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)
    contrast_structure = (2 * cov_xy + c2) / (var_x + var_y + c2)
    ssim_map = luminance * contrast_structure  # (n, 1, h', w')
    ssim_map = ssim_map.reshape(*lead, *ssim_map.shape[-2:])  # (..., h', w')
    if return_map:
        return ssim_map
    # 5. mean SSIM (MSSIM), eq. (17): the average over window positions
    return ssim_map.mean(dim=(-2, -1))  # (...)


def summarize(x: torch.Tensor, y: torch.Tensor, data_range: float = 2.0, window: int = 11) -> dict[str, float]:
    """MSE, PSNR (dB) and SSIM averaged over every image, as plain floats: ``{"mse": ..., "psnr": ..., "ssim": ...}``."""
    with torch.no_grad():
        side = min(x.shape[-2:])
        window = min(window, side if side % 2 else side - 1)  # shrink the window (kept odd) for tiny frames
        return {
            "mse": mse(x, y).mean().item(),
            "psnr": psnr(x, y, data_range).mean().item(),
            "ssim": ssim(x, y, data_range, window=window).mean().item(),
        }

