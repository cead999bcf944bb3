"""MSE, PSNR and SSIM against values computed by hand."""

import math

import pytest
import torch

from vdiff_edu.similarity import gaussian_window, mse, psnr, ssim, summarize

# ---------------------------------------------------------------- MSE and PSNR ----


def test_mse_and_psnr_by_hand():
    x = torch.zeros(4, 4)
    y = torch.full((4, 4), 0.1)
    # every pixel is off by 0.1 → MSE = 0.01; PSNR = 10·log10(2² / 0.01) = 10·log10(400) = 26.0206 dB
    assert mse(x, y).item() == pytest.approx(0.01, rel=1e-6)
    assert psnr(x, y).item() == pytest.approx(10 * math.log10(400), rel=1e-6)
    assert psnr(x, y, data_range=1.0).item() == pytest.approx(20.0, rel=1e-6)  # 10·log10(1 / 0.01)
    # half the pixels off by 1, half exact → MSE = 0.5, PSNR = 10·log10(4 / 0.5) = 9.0309 dB
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert psnr(torch.zeros(2, 2), z).item() == pytest.approx(10 * math.log10(8), rel=1e-6)


def test_per_image_over_leading_axes():
    x = torch.zeros(2, 1, 3, 8, 8)  # (b, c, f, h, w): a video batch
    y = x.clone()
    y[1, 0, 2] += 0.5  # only one frame of the second clip differs
    m = mse(x, y)
    assert m.shape == (2, 1, 3)
    assert m[1, 0, 2].item() == pytest.approx(0.25)
    assert torch.count_nonzero(m).item() == 1
    assert torch.isinf(psnr(x, y)[0]).all()  # identical frames: PSNR is +inf
    assert ssim(x, y, window=7).shape == (2, 1, 3)


def test_psnr_rejects_bad_arguments():
    with pytest.raises(ValueError, match="same shape"):
        psnr(torch.zeros(4, 4), torch.zeros(4, 5))
    with pytest.raises(ValueError, match="data_range"):
        psnr(torch.zeros(4, 4), torch.ones(4, 4), data_range=0)
    with pytest.raises(ValueError, match=r"\(\.\.\., h, w\)"):
        mse(torch.zeros(4), torch.zeros(4))


# ---------------------------------------------------------------- SSIM ----


def test_gaussian_window():
    g = gaussian_window(11, 1.5)
    assert g.shape == (11,)
    assert g.sum().item() == pytest.approx(1.0, abs=1e-6)
    torch.testing.assert_close(g, g.flip(0))  # symmetric
    assert g.argmax().item() == 5  # peaked at the centre
    # neighbour over centre = exp(-1 / (2·1.5²))
    assert (g[6] / g[5]).item() == pytest.approx(math.exp(-1 / 4.5), rel=1e-6)
    with pytest.raises(ValueError, match="odd"):
        gaussian_window(4)


def test_ssim_identical_is_one():
    x = torch.rand(3, 16, 16) * 2 - 1
    torch.testing.assert_close(ssim(x, x), torch.ones(3))


def test_ssim_of_constant_images_by_hand():
    # Constant images a and b: every local variance and covariance is 0, so the contrast-structure term is
    # (0 + C2) / (0 + C2) = 1 and SSIM = (2ab + C1) / (a² + b² + C1), with C1 = (0.01 · 2)² = 4e-4.
    c1 = (0.01 * 2.0) ** 2
    for a, b in [(0.0, 1.0), (-1.0, 1.0), (0.3, 0.5), (0.5, 0.5)]:
        x = torch.full((12, 12), a, dtype=torch.float64)
        y = torch.full((12, 12), b, dtype=torch.float64)
        expected = (2 * a * b + c1) / (a * a + b * b + c1)
        assert ssim(x, y).item() == pytest.approx(expected, rel=1e-9), (a, b)
    # (-1, 1): a white frame against a black one scores about -1, below zero


def test_ssim_small_case_step_by_step():
    # A 3×3 window on 3×3 images fits exactly once, so SSIM is the formula evaluated at that one position.
    x = [[0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]
    y = [[0.0, 0.0, 0.0], [0.0, 0.5, 0.0], [0.0, 0.0, 0.0]]
    # 1. the window: 1-D Gaussian taps [e, 1, e]/(1 + 2e), e = exp(-1/(2·1.5²)); 2-D weight = product
    e = math.exp(-1 / 4.5)
    g = [e / (1 + 2 * e), 1 / (1 + 2 * e), e / (1 + 2 * e)]
    w = [[g[i] * g[j] for j in range(3)] for i in range(3)]

    def wmean(img):
        return sum(w[i][j] * img[i][j] for i in range(3) for j in range(3))

    # 2. local statistics
    mu_x, mu_y = wmean(x), wmean(y)
    var_x = wmean([[v * v for v in row] for row in x]) - mu_x**2
    var_y = wmean([[v * v for v in row] for row in y]) - mu_y**2
    cov = wmean([[x[i][j] * y[i][j] for j in range(3)] for i in range(3)]) - mu_x * mu_y
    # 3. the formula with C1 = (0.01·2)², C2 = (0.03·2)²
    c1, c2 = 0.02**2, 0.06**2
    expected = (2 * mu_x * mu_y + c1) * (2 * cov + c2) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    # By hand: centre weight wc = 1/(1+2e)² ≈ 0.147760, so μ_x = wc, μ_y = wc/2, σ_x² = wc(1−wc) ≈ 0.125927,
    # σ_y² = σ_x²/4, σ_xy = σ_x²/2; luminance ≈ 0.022233/0.027691 ≈ 0.80290, contrast-structure
    # ≈ 0.129527/0.161009 ≈ 0.80447, SSIM ≈ 0.80290 · 0.80447 ≈ 0.6459
    assert expected == pytest.approx(0.6459, abs=1e-4)
    got = ssim(torch.tensor(x, dtype=torch.float64), torch.tensor(y, dtype=torch.float64), window=3)
    assert got.item() == pytest.approx(expected, rel=1e-9)


def test_ssim_properties():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(4, 20, 20, generator=gen) * 2 - 1
    noise = torch.randn(4, 20, 20, generator=gen)
    y = x + 0.1 * noise
    torch.testing.assert_close(ssim(x, y), ssim(y, x))  # symmetric
    # more noise → lower SSIM, and still below 1
    s_small, s_big = ssim(x, x + 0.05 * noise), ssim(x, x + 0.5 * noise)
    assert (s_small > s_big).all() and (s_small < 1).all()
    # the map has one value per window position ('valid': no padding)
    assert ssim(x, y, window=7, return_map=True).shape == (4, 14, 14)
    # uint8 frames work when told their range, and agree with the same frames scaled to [0, 1]
    # (SSIM is unchanged by a common scale of images and data_range, not by a shift: the luminance term
    # compares absolute means)
    u8 = torch.randint(0, 256, (2, 16, 16), generator=gen, dtype=torch.uint8)
    v8 = (u8.int() + 20).clamp(0, 255).to(torch.uint8)
    torch.testing.assert_close(ssim(u8, v8, data_range=255, window=7),
                               ssim(u8 / 255, v8 / 255, data_range=1.0, window=7), rtol=1e-4, atol=1e-5)


def test_ssim_rejects_a_window_larger_than_the_image():
    with pytest.raises(ValueError, match="window=11 does not fit"):
        ssim(torch.zeros(8, 8), torch.zeros(8, 8))


def test_summarize_shrinks_the_window_for_tiny_frames():
    x = torch.zeros(2, 1, 3, 8, 8)
    out = summarize(x, x)
    assert out["mse"] == 0 and out["ssim"] == pytest.approx(1.0) and math.isinf(out["psnr"])
