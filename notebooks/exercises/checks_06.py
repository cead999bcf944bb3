"""Checks for the exercises of notebook 06 (training the denoiser).

Each ``check_*`` takes your answer, prints what is right or wrong with a hint, and returns a verdict: true
or false in code, invisible in a notebook (a cell ending with a check shows only its message).
It never raises: an exercise you have not tried yet (``None``, or a function that still raises
``NotImplementedError``) just gets a friendly reminder, so the notebook runs top to bottom.
"""

from __future__ import annotations

import torch
from torch import nn

from vdiff_edu.schedule import NoiseSchedule
from vdiff_edu.train import diffusion_loss, min_snr_weight

from ._checking import NOT_YET, call, close, fail, ok, verdict


class _Conv(nn.Module):
    """A small fixed network with the denoiser's call signature, model(x_t, t, cond)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv3d(1, 1, 3, padding=1)

    def forward(self, x, t, cond=None):
        return self.conv(x) + (t.float() / 1000).view(-1, 1, 1, 1, 1)


# ----------------------------------------------------------------------------------------------------------------
# Exercise 1: the ε-prediction loss


@verdict
def check_eps_loss(fn) -> bool:
    """``fn(model, x0, t, noise, alpha_bar)`` must return the scalar DDPM loss ‖ε − ε_θ(x_t, t)‖² (mean)."""
    name = "Exercise 1 (ε-prediction loss)"
    g = torch.Generator().manual_seed(0)
    schedule, model = NoiseSchedule(), _Conv()
    x0 = torch.rand(3, 1, 4, 6, 6, generator=g) * 2 - 1  # (b, c, f, h, w)
    noise, t = torch.randn(x0.shape, generator=g), torch.tensor([5, 400, 950])
    with torch.no_grad():
        out, msg = call(fn, name, model, x0, t, noise, schedule.alpha_bar)
        if msg:
            print(msg)
            return False
        expected = diffusion_loss(model, schedule, x0, prediction="eps", t=t, noise=noise)
        if not isinstance(out, torch.Tensor) or out.numel() != 1:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            return fail(f"{name}: expected one number (a 0-d tensor), got {shape}.",
                        "average the squared error over every axis: ((pred - noise) ** 2).mean().")
        if close(out.reshape(()), expected):
            return ok(f"{name}: correct: {out.item():.4f}, the same as diffusion_loss(..., prediction='eps').")
        ab = schedule.alpha_bar[t].float().view(-1, 1, 1, 1, 1)
        x_t = ab.sqrt() * x0 + (1 - ab).sqrt() * noise
        if close(out.reshape(()), (model(x_t, t) - x0).pow(2).mean()):
            return fail(f"{name}: you compared the prediction with x₀.", "in ε-prediction the target is the noise.")
        if close(out.reshape(()), (model(ab * x0 + (1 - ab) * noise, t) - noise).pow(2).mean()):
            return fail(f"{name}: x_t is built without square roots.", "x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε (DDPM eq. 4).")
        if close(out.reshape(()), (model(x0, t) - noise).pow(2).mean()):
            return fail(f"{name}: the network saw the clean clip.", "feed it the noised x_t, not x₀.")
    return fail(f"{name}: got {out.item():.4f}, expected {expected.item():.4f}.",
                "reshape alpha_bar[t] to (b, 1, 1, 1, 1), build x_t, then mean((model(x_t, t) − ε)²).")


# ----------------------------------------------------------------------------------------------------------------
# Exercise 2: min-SNR-γ weights for ε-prediction


@verdict
def check_min_snr_eps(fn) -> bool:
    """``fn(snr, gamma)`` must return min(SNR, γ)/SNR, and 1 where SNR = 0 (zero terminal SNR)."""
    name = "Exercise 2 (min-SNR-γ for ε)"
    snr = torch.tensor([0.0, 0.01, 1.0, 5.0, 20.0, 1e4], dtype=torch.float64)
    out, msg = call(fn, name, snr.clone(), 5.0)
    if msg:
        print(msg)
        return False
    expected = min_snr_weight(snr, "eps", 5.0).double()
    if not isinstance(out, torch.Tensor) or out.shape != snr.shape:
        return fail(f"{name}: expected a tensor shaped like snr {tuple(snr.shape)}.", "work elementwise on snr.")
    out = out.double()
    if torch.allclose(out[1:], expected[1:], atol=1e-6) and not torch.isfinite(out[0]):
        return fail(f"{name}: right everywhere except SNR = 0, where you get {out[0].item()}.",
                    "min(0, γ)/0 is 0/0. Write it as min(1, γ/SNR): (gamma / snr).clamp(max=1) gives 1 there.")
    if torch.allclose(out, expected, atol=1e-6):
        return ok(f"{name}: correct: weight 1 for noisy steps, γ/SNR for the almost-clean ones.")
    if torch.allclose(out, snr.clamp(max=5.0), atol=1e-6):
        return fail(f"{name}: that is the x₀-prediction weight min(SNR, γ).",
                    "ε's error is x₀'s error times √SNR, so divide by SNR: min(SNR, γ)/SNR.")
    got, want = [round(v, 4) for v in out.tolist()], [round(v, 4) for v in expected.tolist()]
    return fail(f"{name}: got {got}, expected {want}.", "w = min(SNR, γ) / SNR = min(1, γ / SNR).")


# ----------------------------------------------------------------------------------------------------------------
# Exercise 3: one EMA update


@verdict
def check_ema_update(fn) -> bool:
    """``fn(ema_params, params, decay)`` must update ema_params in place: θ_ema ← d·θ_ema + (1−d)·θ."""
    name = "Exercise 3 (EMA update)"
    g = torch.Generator().manual_seed(0)
    ema = [torch.randn(3, 4, generator=g), torch.randn(4, generator=g)]
    new = [torch.randn(3, 4, generator=g), torch.randn(4, generator=g)]
    before, new_before = [e.clone() for e in ema], [p.clone() for p in new]
    out, msg = call(fn, name, ema, new, 0.9)
    if msg:
        print(msg)
        return False
    expected = [0.9 * b + 0.1 * p for b, p in zip(before, new)]
    result = ema
    if all(torch.equal(e, b) for e, b in zip(ema, before)):
        returned = isinstance(out, (list, tuple)) and len(out) == 2 and all(isinstance(o, torch.Tensor) for o in out)
        if returned and all(close(o, e) for o, e in zip(out, expected)):
            return fail(f"{name}: the values you returned are right, but ema_params did not change: the EMA model "
                        "the Trainer samples from would keep its first weights for ever.",
                        "update each tensor in place, e.mul_(d).add_(p, alpha=1 - d) or e.lerp_(p, 1 - d), "
                        "instead of building new ones.")
        return fail(f"{name}: ema_params did not change.",
                    "update each tensor in place: e.mul_(d).add_(p, alpha=1 - d).")
    if not all(torch.equal(p, b) for p, b in zip(new, new_before)):
        return fail(f"{name}: the model's own weights (params) changed.",
                    "params are only read: write the average into ema_params.")
    if all(close(r, e) for r, e in zip(result, expected)):
        return ok(f"{name}: correct: each step moves the average 10 % of the way to the new weights.")
    if all(close(r, 0.1 * b + 0.9 * p) for r, b, p in zip(result, before, new)):
        return fail(f"{name}: decay and 1 − decay are swapped.",
                    "the OLD average keeps the big share d; the new weights get 1 − d.")
    return fail(f"{name}: the values are off.", "θ_ema ← d·θ_ema + (1 − d)·θ for every tensor.")


# ----------------------------------------------------------------------------------------------------------------
# Exercise 4: guess, then measure the label embedding's starting size

LABEL_GUESSES = ("more", "same", "fewer")


@verdict
def check_label_std_guess(guess, measured: dict | None = None, tolerance: float = 0.05) -> bool:
    """``guess`` is "more", "same" or "fewer"; ``measured`` maps the label embedding's starting std (0.3 and 0.02) to
    the share of frames read as the digit asked for. The measurement decides; the message says why either way."""
    name = "Exercise 4 (guess, then measure)"
    if guess is None or callable(guess):
        print(NOT_YET.format(name=name) + ' Set my_guess to "more", "same" or "fewer".')
        return False
    if guess not in LABEL_GUESSES:
        return fail(f"{name}: my_guess = {guess!r}; expected one of {LABEL_GUESSES}")
    if not measured or not {0.3, 0.02} <= set(measured):
        return fail(f"{name}: need the frames read right for both starting sizes, 0.3 and 0.02; got {measured}",
                    "run the cell with my_guess set: it trains the quiet-label model and measures both")
    diff = float(measured[0.02]) - float(measured[0.3])
    answer = "same" if abs(diff) <= tolerance else ("more" if diff > 0 else "fewer")
    line = (f"measured: {measured[0.3]:.2f} of frames show the asked digit with the label at std 0.3, "
            f"{measured[0.02]:.2f} at std 0.02")
    why = {"fewer": "the label is added to the timestep embedding, of order 1; at 0.02 its signal is 50× smaller, "
                    "its gradient too, and a short run spends most of its steps learning to hear it",
           "more": "this run is unusual: the quiet label caught up within these steps (try another seed, or "
                   "fewer steps, and see whether it holds)",
           "same": "within noise (±0.05) for this many clips and steps: score more clips, or train fewer steps, "
                   "where the start matters most"}[answer]
    if guess == answer:
        return ok(f"{name}: your guess \"{guess}\" matches. {line}. Why: {why}.")
    return fail(f"{name}: you guessed \"{guess}\", the measurement says \"{answer}\". {line}.", f"why: {why}")
