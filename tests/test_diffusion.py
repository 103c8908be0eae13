"""The diffusion helpers that 07 reuses: the schedule and the DDIM sampler."""

import torch

from helpers import diffusion


def test_cosine_schedule_decreases_from_one_to_zero():
    ab = diffusion.cosine_alpha_bar(1000)
    assert ab.dtype == torch.float64 and ab.shape == (1000,)
    assert (ab[1:] < ab[:-1]).all() and 0.999 < ab[0] < 1 and ab[-1] < 1e-6
    betas = 1 - ab / torch.cat([torch.ones(1, dtype=ab.dtype), ab[:-1]])
    assert betas.max() <= 0.999 + 1e-12


def test_timesteps_run_from_the_last_step_to_zero():
    assert diffusion.timesteps(1000, 1000) == list(range(999, -1, -1))
    ts = diffusion.timesteps(1000, 50)
    assert len(ts) == 50 and ts[0] == 999 and ts[-1] == 0 and ts == sorted(ts, reverse=True)


def test_ddim_with_the_true_noise_recovers_the_data_and_calls_back():
    ab = diffusion.cosine_alpha_bar(1000)
    x0 = torch.rand(4, 1, 6, 6) * 1.6 - 0.8  # inside the clipping range [-1, 1]
    a = ab.float()
    oracle = lambda x, t: ((x - a[t].view(-1, 1, 1, 1).sqrt() * x0)
                           / (1 - a[t]).view(-1, 1, 1, 1).sqrt())  # the noise that is in x
    seen = []
    out = diffusion.ddim_sample(oracle, torch.randn_like(x0), ab, 10,
                                after_step=lambda x, t_prev: seen.append(t_prev) or x)
    assert torch.allclose(out, x0, atol=1e-4)
    assert len(seen) == 10 and seen[-1] == -1
