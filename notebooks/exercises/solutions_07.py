"""Instructor solutions for the exercises of notebook 07 (sampling). Try them yourself first!"""

from __future__ import annotations


def ddim_eps_step(x_t, eps_hat, alpha_bar_t, alpha_bar_prev):
    """Exercise 1. DDIM eq. 12 with η = 0."""
    x0_hat = (x_t - (1 - alpha_bar_t).sqrt() * eps_hat) / alpha_bar_t.sqrt()  # "predicted x₀"
    return alpha_bar_prev.sqrt() * x0_hat + (1 - alpha_bar_prev).sqrt() * eps_hat  # + "direction pointing to x_t"


def guidance(out_cond, out_uncond, scale):
    """Exercise 2. Ho & Salimans 2022, eq. 6."""
    return out_uncond + scale * (out_cond - out_uncond)


def posterior_variance(alpha_bar_t, alpha_bar_prev):
    """Exercise 3. DDPM eq. 7 for a strided step t -> s: β̃ = (1−ᾱ_s)/(1−ᾱ_t)·(1 − ᾱ_t/ᾱ_s)."""
    return (1 - alpha_bar_prev) / (1 - alpha_bar_t) * (1 - alpha_bar_t / alpha_bar_prev)
