"""Checks for the 06_diffusion exercises: q_sample, the simple loss, a DDPM and a DDIM reverse
step, against the closed forms (the posterior q(x_{t-1} | x_t, x_0) for DDPM) written out here.
"""


import torch

from ..diffusion import cosine_alpha_bar
from .core import Exercise, ok


def _schedule(T, dtype):
    return cosine_alpha_bar(T).to(dtype)  # (T,): 06 trains and samples with a float32 copy


# (shape of x, T, dtype): points, images, several channels, and 06's own images and schedule
_CASES = [((5, 2), 50, torch.float64), ((5, 1, 4, 4), 50, torch.float64),
          ((3, 3, 2, 2), 50, torch.float64), ((4, 1, 28, 28), 1000, torch.float32)]


def _per_example(values, x):
    return values.view(-1, *[1] * (x.dim() - 1))  # (B,) -> (B, 1, ...)


def check_q_sample(q_sample) -> None:
    """q_sample(x0, t (B,), noise, alpha_bar (T,)) -> sqrt(ab_t) x0 + sqrt(1 - ab_t) noise."""
    ex = Exercise(q_sample, "q_sample", "unroll the one-step process: "
                  "independent Gaussian noises add their variances; alpha_bar[t] reshaped to "
                  "(B, 1, ...) so that each example uses its own t")
    gen = torch.Generator().manual_seed(0)
    for shape, T, dtype in _CASES:
        alpha_bar = _schedule(T, dtype)
        x0, noise = torch.randn(2, *shape, generator=gen, dtype=dtype)
        t = torch.linspace(0, T - 1, shape[0]).long()  # a different step for every example
        got = ex.tensor(ex.call(x0, t, noise, alpha_bar), shape, like=[x0, noise])
        x0, noise = x0.double(), noise.double()
        ab = _per_example(alpha_bar[t].double(), x0)  # (B, 1, ...)
        first = alpha_bar[t[0]].double()
        ex.compare(got, ab.sqrt() * x0 + (1 - ab).sqrt() * noise, atol=1e-5,
                   what=f"q_sample on {shape}, T = {T}, {dtype}", known=[
            (ab * x0 + (1 - ab) * noise, "the weights are square roots, sqrt(alpha_bar) and "
                                         "sqrt(1 - alpha_bar): variances add, not standard "
                                         "deviations"),
            ((1 - ab).sqrt() * x0 + ab.sqrt() * noise, "x0 and the noise have swapped roles"),
            (first.sqrt() * x0 + (1 - first).sqrt() * noise, "every example has its own step: "
                                                             "index alpha_bar with the whole t")])
    ok("q_sample matches sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps, one t per example, "
       "on points and images")


class _Recorder(torch.nn.Module):
    """A stand-in noise predictor with one weight, that remembers what it was called with."""

    def __init__(self, dtype):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(0.5, dtype=dtype))
        self.calls = []

    def forward(self, x_t, t):
        self.calls.append((x_t.detach(), t))
        return self.predict(self.scale, x_t, t)

    @staticmethod
    def predict(scale, x_t, t):
        return scale * x_t + 0.01 * _per_example(t, x_t).to(x_t.dtype)


def check_diffusion_loss(diffusion_loss) -> None:
    """diffusion_loss(eps_model, x0 (B, ...), alpha_bar (T,)) -> the simple loss, a scalar."""
    ex = Exercise(diffusion_loss, "diffusion_loss", "draw one step t per example uniformly from "
                  "0..T-1 and noise eps ~ N(0, I), make x_t with your q_sample, and return the "
                  "mean squared error between eps_model(x_t, t) and eps",
                  errors=[(IndexError, "out of bounds", "t indexes alpha_bar, whose indices run "
                           "from 0 to T-1 (the paper's steps 1..T); torch.randint excludes its "
                           "upper bound")])
    gen = torch.Generator().manual_seed(1)
    for shape, T, dtype in [((8192, 2), 50, torch.float64), ((2048, 3, 2, 2), 50, torch.float64),
                            ((256, 1, 8, 8), 1000, torch.float32)]:  # the last: 06's T, dtype
        alpha_bar, x0 = _schedule(T, dtype), torch.randn(shape, generator=gen, dtype=dtype)
        model = _Recorder(dtype)
        losses = [ex.call(model, x0, alpha_bar) for _ in range(2)]
        loss = ex.tensor(losses[0], (), like=[x0], grad=True)
        if len(model.calls) != 2:
            ex.fail(f"eps_model(x_t, t) was called {len(model.calls) // 2} times per loss, "
                    "not once", hint="one call of the model on the whole noised batch")
        (x_t, t), (_, t_again) = model.calls
        t = ex.tensor(t, (shape[0],), "the step t that the model got", floating=False,
                      integer=True)
        counts = torch.bincount(t.clamp(0, T), minlength=T + 1)[:T]
        spread = 5 * T / (12 * len(t)) ** 0.5  # five standard deviations of the mean of t
        if t.min() < 0 or t.max() >= T or abs(float(t.double().mean()) - (T - 1) / 2) > spread \
                or (T <= 50 and ((counts == 0).any() or counts.max() > 2 * len(t) / T)):
            ex.fail(f"t should be uniform over the indices 0..T-1 = 0..{T - 1}",
                    f"got values from {int(t.min())} to {int(t.max())}, {int((counts > 0).sum())}"
                    " distinct", hint="give the model the same t that indexes alpha_bar, drawn "
                    "from 0..T-1 (the paper's steps 1..T); torch.randint's upper bound is excluded")
        ex.fresh(t, t_again, "steps t")
        x0_, x_t_ = x0.double(), x_t.double()
        ab = _per_example(alpha_bar[t].double(), x0_)
        noise = (x_t_ - ab.sqrt() * x0_) / (1 - ab).sqrt()  # the noise that made x_t
        ex.standard_normal(noise, "the noise eps inside x_t")
        pred = _Recorder.predict(model.scale.detach().double(), x_t_, t)
        ex.compare(loss, (pred - noise).pow(2).mean(), rtol=1e-4, what=f"the loss on a batch of "
                   f"{tuple(shape)}, T = {T}", known=[
            ((pred - x0_).pow(2).mean(), "the target is the noise eps that made x_t, not x0"),
            ((pred - noise).pow(2).sum(), "average over all elements (the mean), not the sum"),
            ((pred - noise).pow(2).flatten(1).sum(1).mean(), "average over all elements, the "
                                                            "dimensions of an example too")])
        ex.gradients(losses[0], {"the model's weight": model.scale}, lambda scale, x_t=x_t_, t=t,
                     noise=noise: (_Recorder.predict(scale, x_t, t) - noise).pow(2).mean())
    ok("diffusion_loss: fresh t ~ U{0..T-1} and eps ~ N(0, I) at every call, x_t = q_sample(x0, "
       "t, eps), loss = mean |eps - eps_theta|^2, and its gradient reaches the model")


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
    ex = Exercise(ddpm_step, "ddpm_step", "the posterior's mean with x0_hat for "
                  "x0, plus sigma_t * noise with sigma_t^2 its variance (precisions add), except at"
                  " t = 0; alpha_t = alpha_bar[t] / alpha_bar[t-1] (alpha_bar before step 0 is 1)")
    gen = torch.Generator().manual_seed(2)
    for shape, T, dtype in _CASES[::-1][:3]:  # 06's images and schedule in float32 first
        alpha_bar = _schedule(T, dtype)
        x_t, eps, noise = torch.randn(3, *shape, generator=gen, dtype=dtype)
        for t in (T - 1, T // 2, 5, 1, 0):
            got = ex.tensor(ex.call(x_t, t, eps, alpha_bar, noise), x_t.shape, like=[x_t])
            ab, x, e, z = alpha_bar.double(), x_t.double(), eps.double(), noise.double()
            ab_prev = ab[t - 1] if t > 0 else torch.tensor(1.0, dtype=torch.float64)
            mean, variance, beta = _posterior(x, ab[t], ab_prev, e)
            want = mean + variance.sqrt() * z if t > 0 else mean
            known = [(mean, "add sigma_t * noise at every step but the last (t = 0)"),
                     (mean + variance * z, "sigma_t is the square root of the variance "
                                           "beta-tilde_t"),
                     (mean + beta.sqrt() * z, "that is sigma_t^2 = beta_t; this exercise uses "
                                              "the posterior variance beta-tilde_t")]
            if t == 0:
                known = [(_posterior(x, ab[0], ab[-1], e)[0], "at t = 0, alpha_bar[t - 1] is "
                          "alpha_bar[-1], the last entry: before the first step alpha_bar is 1")]
            ex.compare(got, want, what=f"ddpm_step at t = {t} of T = {T} on {shape}, {dtype}",
                       atol=1e-4 if dtype == torch.float32 else 1e-8, known=known)
    ok("ddpm_step equals a draw from the posterior q(x_{t-1} | x_t, x0_hat), noise-free at t = 0")


def check_ddim_step(ddim_step) -> None:
    """ddim_step(x_t, eps_pred, ab_t, ab_prev) -> x at the earlier level ab_prev (eta = 0)."""
    ex = Exercise(ddim_step, "ddim_step", "estimate x0 from x_t and eps, then noise it again to "
                  "the level ab_prev with the same eps (no fresh noise): DDIM with eta = 0")
    gen = torch.Generator().manual_seed(3)
    steps = [(0.1, 0.5), (0.01, 0.9), (0.5, 1.0)]
    cosine = _schedule(1000, torch.float32)
    for (shape, _, dtype), pairs in zip(_CASES, [steps, steps[:1], steps[1:2], [
            (cosine[900], cosine[880]), (cosine[20], torch.tensor(1.0)),
            (cosine[999], cosine[979])]], strict=True):  # the first step of 06's sampler
        x0, eps = torch.randn(2, *shape, generator=gen, dtype=dtype)
        for ab_t, ab_prev in pairs:  # 0-d tensors, as 06 passes ab[t]
            ab_t, ab_prev = (torch.as_tensor(v, dtype=dtype) for v in (ab_t, ab_prev))
            x_t = ab_t.sqrt() * x0 + (1 - ab_t).sqrt() * eps
            got = ex.tensor(ex.call(x_t, eps, ab_t, ab_prev), x_t.shape, like=[x_t, eps])
            a, a_prev = ab_t.double(), ab_prev.double()
            x0_hat = (x_t.double() - (1 - a).sqrt() * eps.double()) / a.sqrt()
            ex.compare(got, a_prev.sqrt() * x0_hat + (1 - a_prev).sqrt() * eps.double(),
                       what=f"ddim_step on {shape} from ab_t = {float(ab_t):.3g} to "
                       f"{float(ab_prev):.3g}", atol=1e-4 if dtype == torch.float32 else 1e-8,
                       known=[(x0_hat, "that is the estimate of x0: noise it again to the level "
                                       "ab_prev with the same eps")])
    ok("ddim_step moves x_t to the earlier noise level along the same (x0, eps): deterministic")
