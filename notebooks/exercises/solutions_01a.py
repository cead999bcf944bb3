"""Instructor solutions for the exercises of notebook 01a (diffusion on 2-D points). Try them yourself first!"""

from __future__ import annotations


def predict_x0(x_t, t, eps_hat, alpha_bar):
    """Exercise 1. DDPM eq. 4 solved for x₀: x̂₀ = (x_t − √(1−ᾱ_t)·ε̂) / √ᾱ_t."""
    a = alpha_bar[t]
    return (x_t - (1 - a).sqrt() * eps_hat) / a.sqrt()


def gaussian_eps(x_t, t, alpha_bar):
    """Exercise 2. For x₀ ~ N(0, I): x_t ~ N(0, I) and Cov(ε, x_t) = √(1−ᾱ_t)·I, so E[ε | x_t] = √(1−ᾱ_t)·x_t."""
    return (1 - alpha_bar[t]).sqrt() * x_t


no_noise_guess = "smaller"  # Exercise 3, for a trained model: the means alone pull the points together
