"""The shared helpers: the one pixel conversion to and from uint8, the one Gaussian blur, the argument checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vdiff_edu.similarity import gaussian_window
from vdiff_edu.utils import check_choice, check_int, from_uint8, gaussian_blur, gaussian_kernel, to_uint8

# ---------------------------------------------------------------- to_uint8 / from_uint8 ----

# (x + 1) · 127.5 for x = -2, -1, -0.5, 0, 0.5, 1, 3 is -127.5, 0, 63.75, 127.5, 191.25, 255, 510: rounded, clipped
FLOATS = [-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0]
BYTES = [0, 0, 64, 128, 191, 255, 255]


def test_to_uint8_hand_computed_for_tensors_arrays_and_lists():
    t = to_uint8(torch.tensor(FLOATS))
    assert isinstance(t, torch.Tensor) and t.dtype == torch.uint8 and t.tolist() == BYTES
    a = to_uint8(np.array(FLOATS))
    assert isinstance(a, np.ndarray) and a.dtype == np.uint8 and a.tolist() == BYTES
    assert to_uint8(FLOATS).tolist() == BYTES  # anything array-like gives numpy


def test_to_uint8_keeps_shape_and_ignores_the_float_type_it_gets():
    x = torch.rand(2, 1, 3, 4, 5, generator=torch.Generator().manual_seed(0)) * 2 - 1
    out = to_uint8(x)
    assert out.shape == x.shape
    assert torch.equal(to_uint8(x.double()), out) and torch.equal(to_uint8(x.requires_grad_()), out)
    np.testing.assert_array_equal(to_uint8(x.detach().numpy()), out.numpy())  # tensor and numpy paths agree


def test_from_uint8_hand_computed_and_refuses_floats():
    t = from_uint8(torch.tensor([0, 255, 51], dtype=torch.uint8))
    assert t.dtype == torch.float32
    torch.testing.assert_close(t, torch.tensor([-1.0, 1.0, 51 / 127.5 - 1]))
    a = from_uint8(np.array([0, 255], np.uint8))
    assert a.dtype == np.float32 and a.tolist() == [-1.0, 1.0]
    with pytest.raises(TypeError, match="uint8"):
        from_uint8(torch.zeros(3))


@pytest.mark.parametrize("kind", [np.asarray, torch.from_numpy])
def test_every_byte_survives_the_round_trip(kind):
    u = kind(np.arange(256, dtype=np.uint8))
    back = to_uint8(from_uint8(u))
    assert type(back) is type(u) and back.tolist() == list(range(256))


# ---------------------------------------------------------------- the Gaussian ----


def test_gaussian_kernel_hand_computed():
    e = math.exp(-0.5)  # exp(−1² / 2·1²)
    expected = torch.tensor([e, 1.0, e], dtype=torch.float64) / (1 + 2 * e)  # 0.2741, 0.4519, 0.2741
    torch.testing.assert_close(gaussian_kernel(1.0, 1, torch.float64), expected, rtol=0, atol=1e-15)
    g = gaussian_kernel(0.7, 4)
    assert g.shape == (9,) and g.dtype == torch.float32
    assert torch.equal(g, g.flip(0)) and g.argmax() == 4 and abs(g.sum().item() - 1) < 1e-6
    with pytest.raises(ValueError, match="sigma"):
        gaussian_kernel(0.0, 3)


def test_the_ssim_window_is_the_same_kernel():
    for size, sigma in ((11, 1.5), (7, 1.5), (3, 1.0)):
        expected = gaussian_kernel(sigma, size // 2, torch.float64)
        assert torch.equal(gaussian_window(size, sigma, torch.float64), expected)
        assert torch.equal(gaussian_window(size, sigma), expected.float())


def test_blur_of_an_impulse_is_the_outer_product_of_the_kernel():
    x = torch.zeros(1, 1, 11, 11)
    x[0, 0, 5, 5] = 1.0
    g = gaussian_kernel(1.0, 3)  # (7,) radius ⌈3σ⌉ = 3
    out = gaussian_blur(x, 1.0)
    assert out.shape == x.shape
    torch.testing.assert_close(out[0, 0, 2:9, 2:9], g[:, None] * g[None, :])
    assert out[0, 0, :2].abs().max() == 0  # nothing beyond the radius
    torch.testing.assert_close(out.sum(), torch.tensor(1.0))  # a normalised kernel keeps the ink


def test_blur_keeps_a_constant_image_and_repeats_the_edges():
    flat = torch.full((2, 1, 6, 5), 0.3)
    torch.testing.assert_close(gaussian_blur(flat, 2.0), flat)  # replicated edges: no dark border
    step = torch.zeros(1, 1, 8, 8)
    step[..., 4:] = 1.0  # left half 0, right half 1
    out = gaussian_blur(step, 0.8, radius=2)
    assert torch.equal(out[..., 0], torch.zeros(1, 1, 8)) and torch.allclose(out[..., -1], torch.ones(1, 1, 8))
    assert (out[0, 0, 0].diff() >= 0).all()  # still a monotone edge, now soft


def test_blur_refuses_frames_with_channels():
    with pytest.raises(ValueError, match=r"\(n, 1, h, w\)"):
        gaussian_blur(torch.zeros(2, 3, 8, 8), 1.0)


# ---------------------------------------------------------------- argument checks ----


def test_checks_name_the_argument_its_value_and_the_range():
    check_int("n", 3, 1, 5)
    check_int("n", np.int64(7), 1)
    for bad in (0, 6, 2.0, True, "3"):
        with pytest.raises(ValueError, match=r"n must be an integer \[1, 5\]"):
            check_int("n", bad, 1, 5, "hint")
    with pytest.raises(ValueError, match=r">= 1; got -2\. use a positive n"):
        check_int("n", -2, 1, None, "use a positive n")
    check_choice("rule", "a", ("a", "b"))
    with pytest.raises(ValueError, match=r"rule must be one of \('a', 'b'\); got 'c'"):
        check_choice("rule", "c", ("a", "b"))
