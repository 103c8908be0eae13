"""Checks for the 06_diffusion exercises: q_sample, the simple loss, a DDPM and a DDIM reverse
step, against the closed forms (the posterior q(x_{t-1} | x_t, x_0) for DDPM) written out here.
"""


import torch

from ..diffusion import cosine_alpha_bar
from .core import Exercise, ok


def check_q_sample(q_sample) -> None:
    """q_sample(x0, t (B,), noise, alpha_bar (T,)) -> sqrt(ab_t) x0 + sqrt(1 - ab_t) noise."""
    ex = Exercise(q_sample, "q_sample", "x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps, "
                  "with alpha_bar[t] reshaped to (B, 1, ...) so that each example uses its own t")
    gen = torch.Generator().manual_seed(0)
    alpha_bar = cosine_alpha_bar(50)
    for shape in [(5, 2), (5, 1, 4, 4)]:  # points and images: t must broadcast over the rest
        x0 = torch.randn(shape, generator=gen, dtype=torch.float64)
        noise = torch.randn(shape, generator=gen, dtype=torch.float64)
        t = torch.tensor([0, 7, 24, 41, 49])  # a different step for every example
        got = ex.tensor(ex.call(x0, t, noise, alpha_bar), shape, like=[x0, noise])
        ab = alpha_bar[t].view(-1, *[1] * (len(shape) - 1))  # (B, 1, ...)
        first = alpha_bar[t[0]]
        ex.compare(got, ab.sqrt() * x0 + (1 - ab).sqrt() * noise, atol=1e-9, known=[
            (ab * x0 + (1 - ab) * noise, "the weights are square roots, sqrt(alpha_bar) and "
                                         "sqrt(1 - alpha_bar): variances add, not standard "
                                         "deviations"),
            ((1 - ab).sqrt() * x0 + ab.sqrt() * noise, "x0 and the noise have swapped roles"),
            (first.sqrt() * x0 + (1 - first).sqrt() * noise, "every example has its own step: "
                                                             "index alpha_bar with the whole t")])
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
    ex = Exercise(diffusion_loss, "diffusion_loss", "draw one step t per example uniformly from "
                  "0..T-1 and noise eps ~ N(0, I), make x_t with your q_sample, and return the "
                  "mean squared error between eps_model(x_t, t) and eps",
                  errors={IndexError: "t indexes alpha_bar, whose indices run from 0 to T-1 "
                                      "(the paper's steps 1..T); torch.randint excludes its "
                                      "upper bound"})
    T, B = 50, 8192
    alpha_bar = cosine_alpha_bar(T)
    x0 = torch.randn(B, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    model = _Recorder()
    loss = ex.tensor(ex.call(model, x0, alpha_bar), (), like=[x0])
    if not hasattr(model, "t"):
        ex.fail("eps_model(x_t, t) was never called")
    t, x_t = model.t, model.x_t
    if t.shape != (B,) or t.dtype != torch.long:
        ex.fail(f"the model got t of shape {tuple(t.shape)} and dtype {t.dtype}",
                f"expected a ({B},) tensor of integer steps, one per example",
                hint="torch.randint(low, high, (B,)) draws B integers")
    counts = torch.bincount(t.clamp(0, T), minlength=T + 1)[:T]
    if t.min() < 0 or t.max() >= T or (counts == 0).any() or counts.max() > 2 * B / T:
        ex.fail(f"t should be uniform over the indices 0..T-1 = 0..{T - 1}",
                f"got values from {int(t.min())} to {int(t.max())}, {int((counts > 0).sum())} "
                "distinct", hint="the paper's steps 1..T are the indices 0..T-1 of alpha_bar; "
                "torch.randint's upper bound is excluded")
    ab = alpha_bar[t].view(-1, 1)
    noise = (x_t - ab.sqrt() * x0) / (1 - ab).sqrt()  # the noise that made x_t, if x_t = q_sample
    if abs(float(noise.mean())) > 0.05 or abs(float(noise.std()) - 1) > 0.05:
        ex.fail("x_t is not q_sample(x0, t, eps) with eps ~ N(0, I)", f"the noise inside x_t has "
                f"mean {float(noise.mean()):.3f} and std {float(noise.std()):.3f}, not 0 and 1",
                hint="eps must be standard normal noise of x0's shape")
    pred = model(x_t, t).detach()
    want = (pred - noise).pow(2).mean()
    ex.compare(loss, want, rtol=1e-6, known=[
        ((pred - x0).pow(2).mean(), "the target is the noise eps that made x_t, not x0"),
        ((pred - noise).pow(2).sum(), "average over all elements (the mean), not the sum"),
        ((pred - noise).pow(2).sum(1).mean(), "average over all elements, the dimensions of an "
                                              "example too")])
    ok("diffusion_loss: t ~ U{0..T-1}, x_t = q_sample(x0, t, eps), loss = mean |eps - eps_theta|^2")


def _posterior(x_t, ab_t, ab_prev, eps):
    """Mean and variance of q(x_{t-1} | x_t, x0_hat), x0_hat the x_0 implied by eps (DDPM eqs.
    6-7), written as a mixture of x0_hat and x_t; and beta_t."""
    beta_t = 1 - ab_t / ab_prev
    x0_hat = (x_t - (1 - ab_t).sqrt() * eps) / ab_t.sqrt()
    mean = (ab_prev.sqrt() * beta_t * x0_hat + (1 - beta_t).sqrt() * (1 - ab_prev) * x_t) \
        / (1 - ab_t)
    return mean, beta_t * (1 - ab_prev) / (1 - ab_t), beta_t


def check_ddpm_step(ddpm_step) -> None:
    """ddpm_step(x_t, t, eps_pred, alpha_bar, noise) -> x_{t-1}, with sigma_t^2 = beta-tilde_t."""
    ex = Exercise(ddpm_step, "ddpm_step", "mean = (x_t - beta_t / sqrt(1 - alpha_bar_t) * eps) / "
                  "sqrt(alpha_t), alpha_t = alpha_bar[t] / alpha_bar[t-1] (alpha_bar before step 0"
                  " is 1); add sigma_t * noise with sigma_t^2 = beta-tilde_t, except at t = 0")
    alpha_bar = cosine_alpha_bar(50)
    gen = torch.Generator().manual_seed(2)
    x_t, eps, noise = torch.randn(3, 6, 2, generator=gen, dtype=torch.float64)
    for t in (49, 30, 5, 1, 0):
        got = ex.tensor(ex.call(x_t, t, eps, alpha_bar, noise), x_t.shape, like=[x_t])
        ab_prev = alpha_bar[t - 1] if t > 0 else torch.tensor(1.0, dtype=torch.float64)
        mean, variance, beta = _posterior(x_t, alpha_bar[t], ab_prev, eps)
        want = mean + variance.sqrt() * noise if t > 0 else mean
        known = [(mean + variance * noise, "sigma_t is the square root of the variance "
                                           "beta-tilde_t"),
                 (mean + beta.sqrt() * noise, "that is sigma_t^2 = beta_t; this exercise uses "
                                              "the posterior variance beta-tilde_t"),
                 (mean, "add sigma_t * noise at every step but the last (t = 0)")]
        if t == 0:
            known = [(_posterior(x_t, alpha_bar[0], alpha_bar[-1], eps)[0], "at t = 0, "
                      "alpha_bar[t - 1] is alpha_bar[-1], the last entry: before the first "
                      "step alpha_bar is 1")]
        ex.compare(got, want, what=f"ddpm_step at t = {t}", atol=1e-8, known=known)
    ok("ddpm_step equals a draw from the posterior q(x_{t-1} | x_t, x0_hat), noise-free at t = 0")


def check_ddim_step(ddim_step) -> None:
    """ddim_step(x_t, eps_pred, ab_t, ab_prev) -> x at the earlier level ab_prev (eta = 0)."""
    ex = Exercise(ddim_step, "ddim_step", "estimate x0 from x_t and eps, then noise it again to "
                  "the level ab_prev with the same eps (no fresh noise): DDIM with eta = 0")
    gen = torch.Generator().manual_seed(3)
    x0, eps = torch.randn(2, 6, 2, generator=gen, dtype=torch.float64)
    for ab_t, ab_prev in [(0.1, 0.5), (0.01, 0.9), (0.5, 1.0)]:
        ab_t, ab_prev = torch.tensor(ab_t, dtype=torch.float64), torch.tensor(ab_prev).double()
        x_t = ab_t.sqrt() * x0 + (1 - ab_t).sqrt() * eps
        got = ex.tensor(ex.call(x_t, eps, ab_t, ab_prev), x_t.shape, like=[x_t, eps])
        ex.compare(got, ab_prev.sqrt() * x0 + (1 - ab_prev).sqrt() * eps,
                   what=f"ddim_step from ab_t = {float(ab_t)} to {float(ab_prev)}",
                   atol=1e-8, known=[(x0, "that is the estimate of x0: noise it again to the "
                                          "level ab_prev with the same eps")])
    ok("ddim_step moves x_t to the earlier noise level along the same (x0, eps): deterministic")
