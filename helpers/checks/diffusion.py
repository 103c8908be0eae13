"""Checks for the 06_diffusion exercises: q_sample, the simple loss, a DDPM and a DDIM reverse
step, against the closed forms (the posterior q(x_{t-1} | x_t, x_0) for DDPM) written out here.
"""

import math

import torch

from .core import ExerciseError, answer, call, close, ok


def _schedule(T=50):
    f = torch.cos((torch.arange(T + 1, dtype=torch.float64) / T + 0.008) / 1.008 * math.pi / 2) ** 2
    return (f[1:] / f[0]).clamp(min=1e-4)  # (T,) decreasing from ~1 to ~0


def check_q_sample(q_sample) -> None:
    """q_sample(x0, t (B,), noise, alpha_bar (T,)) -> sqrt(ab_t) x0 + sqrt(1 - ab_t) noise."""
    gen = torch.Generator().manual_seed(0)
    alpha_bar = _schedule()
    for shape in [(5, 2), (5, 1, 4, 4)]:  # points and images: t must broadcast over the rest
        x0 = torch.randn(shape, generator=gen, dtype=torch.float64)
        noise = torch.randn(shape, generator=gen, dtype=torch.float64)
        t = torch.tensor([0, 7, 24, 41, 49])  # a different step for every example
        got = answer(call(q_sample, "q_sample", x0, t, noise, alpha_bar), "q_sample", shape)
        ab = alpha_bar[t].view(-1, *[1] * (len(shape) - 1))
        close(got, ab.sqrt() * x0 + (1 - ab).sqrt() * noise, "q_sample",
              "x_t = sqrt(alpha_bar[t]) * x0 + sqrt(1 - alpha_bar[t]) * noise, with alpha_bar[t] "
              "reshaped to (B, 1, ...) so that each example uses its own t", atol=1e-9)
    ok("q_sample matches sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps, one t per example")


class _Recorder(torch.nn.Module):
    """A stand-in noise predictor that remembers what it was called with."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(0.5, dtype=torch.float64))

    def forward(self, x_t, t):
        self.x_t, self.t = x_t.detach(), t
        return self.scale * x_t + 0.01 * t.view(-1, 1).to(x_t.dtype)


def check_diffusion_loss(diffusion_loss) -> None:
    """diffusion_loss(eps_model, x0 (B, D), alpha_bar (T,)) -> the simple loss, a scalar."""
    T, B = 50, 8192
    alpha_bar = _schedule(T)
    x0 = torch.randn(B, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    model = _Recorder()
    loss = answer(call(diffusion_loss, "diffusion_loss", model, x0, alpha_bar), "diffusion_loss",
                  shape=())
    if not hasattr(model, "t"):
        raise ExerciseError("diffusion_loss never called eps_model(x_t, t)")
    t, x_t = model.t, model.x_t
    if t.shape != (B,) or t.dtype != torch.long:
        raise ExerciseError(f"t should be a (B,) = ({B},) tensor of integer steps, one per "
                            f"example; the model got shape {tuple(t.shape)}, dtype {t.dtype}")
    counts = torch.bincount(t, minlength=T)
    if t.min() < 0 or t.max() >= T or (counts == 0).any() or counts.max() > 2 * B / T:
        raise ExerciseError(f"t should be uniform over 0..T-1 = 0..{T - 1}; got values from "
                            f"{int(t.min())} to {int(t.max())}, {int((counts > 0).sum())} distinct."
                            " Hint: torch.randint(0, T, (B,))")
    ab = alpha_bar[t].view(-1, 1)
    noise = (x_t - ab.sqrt() * x0) / (1 - ab).sqrt()  # the noise that made x_t, if x_t = q_sample
    if abs(float(noise.mean())) > 0.05 or abs(float(noise.std()) - 1) > 0.05:
        raise ExerciseError(f"x_t should be q_sample(x0, t, eps, alpha_bar) with eps ~ N(0, I); "
                            f"the noise inside x_t has mean {float(noise.mean()):.3f} and std "
                            f"{float(noise.std()):.3f}, not 0 and 1. Hint: torch.randn_like(x0)")
    want = (model(x_t, t) - noise).pow(2).mean()
    close(loss, want.detach(), "diffusion_loss", "the simple loss is the mean squared error "
          "between eps_model(x_t, t) and the noise eps used to make x_t (not x0), averaged over "
          "all elements", rtol=1e-6)
    ok("diffusion_loss: t ~ U{0..T-1}, x_t = q_sample(x0, t, eps), loss = mean |eps - eps_theta|^2")


def _posterior_step(x_t, t, eps, alpha_bar, noise):
    """x_{t-1} from q(x_{t-1} | x_t, x0_hat), x0_hat the x_0 implied by eps (DDPM eqs. 6-7)."""
    ab_t = alpha_bar[t]
    ab_prev = alpha_bar[t - 1] if t > 0 else torch.ones_like(ab_t)
    beta_t = 1 - ab_t / ab_prev
    x0_hat = (x_t - (1 - ab_t).sqrt() * eps) / ab_t.sqrt()
    mean = (ab_prev.sqrt() * beta_t * x0_hat + (1 - beta_t).sqrt() * (1 - ab_prev) * x_t) \
        / (1 - ab_t)
    variance = beta_t * (1 - ab_prev) / (1 - ab_t)
    return mean + variance.sqrt() * noise if t > 0 else mean


def check_ddpm_step(ddpm_step) -> None:
    """ddpm_step(x_t, t, eps_pred, alpha_bar, noise) -> x_{t-1}, with sigma_t^2 = beta-tilde_t."""
    alpha_bar = _schedule()
    gen = torch.Generator().manual_seed(2)
    x_t, eps, noise = torch.randn(3, 6, 2, generator=gen, dtype=torch.float64)
    for t in (49, 30, 5, 1, 0):
        got = answer(call(ddpm_step, "ddpm_step", x_t, t, eps, alpha_bar, noise), "ddpm_step",
                     x_t.shape)
        close(got, _posterior_step(x_t, t, eps, alpha_bar, noise), f"ddpm_step at t = {t}",
              "mean = (x_t - beta_t / sqrt(1 - alpha_bar_t) * eps) / sqrt(alpha_t), with "
              "alpha_t = alpha_bar[t] / alpha_bar[t-1] (alpha_bar before step 0 is 1), plus "
              "sigma_t * noise with sigma_t^2 = beta_t (1 - alpha_bar[t-1]) / (1 - alpha_bar[t]); "
              "no noise at t = 0", atol=1e-8)
    ok("ddpm_step equals a draw from the posterior q(x_{t-1} | x_t, x0_hat), noise-free at t = 0")


def check_ddim_step(ddim_step) -> None:
    """ddim_step(x_t, eps_pred, ab_t, ab_prev) -> x at the earlier level ab_prev (eta = 0)."""
    gen = torch.Generator().manual_seed(3)
    x0, eps = torch.randn(2, 6, 2, generator=gen, dtype=torch.float64)
    for ab_t, ab_prev in [(0.1, 0.5), (0.01, 0.9), (0.5, 1.0)]:
        ab_t, ab_prev = torch.tensor(ab_t, dtype=torch.float64), torch.tensor(ab_prev).double()
        x_t = ab_t.sqrt() * x0 + (1 - ab_t).sqrt() * eps
        got = answer(call(ddim_step, "ddim_step", x_t, eps, ab_t, ab_prev), "ddim_step",
                     x_t.shape)
        close(got, ab_prev.sqrt() * x0 + (1 - ab_prev).sqrt() * eps, "ddim_step",
              "estimate x0 = (x_t - sqrt(1 - ab_t) eps) / sqrt(ab_t), then return "
              "sqrt(ab_prev) x0 + sqrt(1 - ab_prev) eps: with the true eps this lands exactly on "
              "q_sample(x0, eps) at the earlier level", atol=1e-8)
    ok("ddim_step moves x_t to the earlier noise level along the same (x0, eps): deterministic")
