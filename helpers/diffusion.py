"""The diffusion pieces that 06_diffusion teaches and 07_text_to_image reuses: the cosine schedule,
the broadcast gather of a per-step value, the conversions between predicted noise and predicted
x_0, and the DDIM sampler. This is their only copy: 06 shows each where it teaches it
(helpers.sources.show). q_sample and the single sampler steps are 06's exercises and are not here.
"""

import math
from collections.abc import Callable

import torch


def cosine_alpha_bar(T: int, s: float = 0.008) -> torch.Tensor:
    """alpha_bar_t = f(t) / f(0), f(t) = cos^2((t/T + s) / (1 + s) * pi/2), for t = 1..T (index
    0..T-1), float64; betas clipped at 0.999 so that the last step stays invertible (Nichol &
    Dhariwal, 2021, eq. 17). Shape (T,)."""
    f = torch.cos((torch.arange(T + 1, dtype=torch.float64) / T + s) / (1 + s) * math.pi / 2) ** 2
    betas = (1 - f[1:] / f[:-1]).clamp(max=0.999)  # beta_t = 1 - alpha_bar_t / alpha_bar_{t-1}
    return torch.cumprod(1 - betas, 0)


def extract(values: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """values[t] for a batch of steps t (B,), shaped (B, 1, ...) to broadcast over `like`."""
    return values[t].view(-1, *[1] * (like.ndim - 1))


def predict_x0_from_eps(x_t: torch.Tensor, eps: torch.Tensor, ab_t) -> torch.Tensor:
    """The x_0 that the noise eps implies: x_t = sqrt(ab_t) x_0 + sqrt(1 - ab_t) eps, solved."""
    return (x_t - (1 - ab_t).sqrt() * eps) / ab_t.sqrt()


def predict_eps_from_x0(x_t: torch.Tensor, x0: torch.Tensor, ab_t) -> torch.Tensor:
    """The noise that the clean image x0 implies: the same equation solved for eps."""
    return (x_t - ab_t.sqrt() * x0) / (1 - ab_t).sqrt()


def timesteps(T: int, steps: int) -> list[int]:
    """`steps` timesteps from T-1 down to 0, evenly spaced (all of them when steps = T)."""
    return torch.linspace(T - 1, 0, steps).round().long().unique_consecutive().tolist()


@torch.no_grad()
def ddim_sample(eps_fn: Callable, x: torch.Tensor, alpha_bar: torch.Tensor, steps: int,
                clip: bool = True, after_step: Callable | None = None) -> torch.Tensor:
    """Run DDIM from the noise x (B, ...) with `steps` steps. eps_fn(x_t, t (B,)) predicts the
    noise (07 passes a guided predictor); with `clip` the predicted x_0 is kept in [-1, 1], the
    range of images. after_step(x, t_prev), if given, may change x after each step (07's
    inpainting re-imposes the known pixels there); t_prev = -1 after the last step."""
    alpha_bar = alpha_bar.to(x.device, torch.float32)
    ts = timesteps(len(alpha_bar), steps)
    for i, t in enumerate(ts):
        level = alpha_bar[t]  # alpha_bar_t
        t_prev = ts[i + 1] if i + 1 < len(ts) else -1
        level_prev = alpha_bar[t_prev] if t_prev >= 0 else torch.ones_like(level)
        eps = eps_fn(x, torch.full((len(x),), t, device=x.device)).float()
        x0 = predict_x0_from_eps(x, eps, level)
        if clip:
            x0 = x0.clamp(-1, 1)
            eps = predict_eps_from_x0(x, x0, level)  # the noise that matches the clipped x_0
        x = level_prev.sqrt() * x0 + (1 - level_prev).sqrt() * eps  # DDIM eq. 12, eta = 0
        if after_step is not None:
            x = after_step(x, t_prev)
    return x
