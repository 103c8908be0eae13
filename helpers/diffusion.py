"""The diffusion pieces that 06_diffusion teaches and 07_text_to_image reuses: the cosine schedule
and the DDIM sampler. 06 writes each one out in the notebook (q_sample and the DDIM step are its
exercises, so they are not offered here) and checks that its own versions agree with these.
"""

import math
from collections.abc import Callable

import torch


def cosine_alpha_bar(T: int, s: float = 0.008) -> torch.Tensor:
    """alpha_bar_t for t = 1..T (index 0..T-1) of Nichol & Dhariwal's cosine schedule, float64;
    each beta_t = 1 - alpha_bar_t / alpha_bar_{t-1} is clipped at 0.999 as in their paper."""
    f = torch.cos((torch.arange(T + 1, dtype=torch.float64) / T + s) / (1 + s) * math.pi / 2) ** 2
    betas = (1 - f[1:] / f[:-1]).clamp(max=0.999)  # (T,)
    return torch.cumprod(1 - betas, 0)


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
        x0 = (x - (1 - level).sqrt() * eps) / level.sqrt()  # the x_0 that eps implies
        if clip:
            x0 = x0.clamp(-1, 1)
            eps = (x - level.sqrt() * x0) / (1 - level).sqrt()  # the noise that matches it
        x = level_prev.sqrt() * x0 + (1 - level_prev).sqrt() * eps  # DDIM eq. 12, eta = 0
        if after_step is not None:
            x = after_step(x, t_prev)
    return x
