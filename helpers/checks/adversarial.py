"""Checks for the 05_gan exercises: the discriminator loss, the non-saturating generator loss and
the optimal discriminator, against manual formulas and numerical integration of known densities.
"""

import math

import torch
from torch.distributions import Normal

from .core import ExerciseError, answer, close, ok


def _logits(n=6, seed=0):
    gen = torch.Generator().manual_seed(seed)
    real, fake = 3 * torch.randn(n, generator=gen), 3 * torch.randn(n, generator=gen)
    real[0], fake[0] = -40.0, 40.0  # a confident, wrong discriminator: log(0) if done naively
    return real.double(), fake.double()


def _log_d(a):
    """log D = log sigmoid(a) = -log(1 + exp(-a)), written stably with logaddexp."""
    return -torch.logaddexp(torch.zeros_like(a), -a)


def check_discriminator_loss(discriminator_loss) -> None:
    """discriminator_loss(real_logits (B,), fake_logits (B,)) -> -E[log D(x)] - E[log(1 - D(G(z)))]
    """
    real, fake = _logits()
    got = answer(discriminator_loss(real, fake), "discriminator_loss", shape=())
    want = -(_log_d(real).mean() + _log_d(-fake).mean())  # log(1 - sigmoid(a)) = log sigmoid(-a)
    close(got, want, "discriminator_loss", "the discriminator maximises E[log D(x)] + "
          "E[log(1 - D(G(z)))]; its loss is the negative, i.e. BCE with target 1 for real and 0 "
          "for fake, averaged over each batch (F.binary_cross_entropy_with_logits)", rtol=1e-4)
    ok("discriminator_loss matches the manual -E[log D(x)] - E[log(1 - D(G(z)))], stably")


def check_generator_loss(generator_loss) -> None:
    """generator_loss(fake_logits (B,)) -> scalar: the non-saturating loss -E[log D(G(z))]."""
    _, fake = _logits(seed=1)
    fake = fake.clone().requires_grad_()
    got = generator_loss(fake)
    value = answer(got, "generator_loss", shape=())
    close(value, -_log_d(fake.detach()).mean(), "generator_loss", "the non-saturating loss is "
          "-E[log D(G(z))] = BCE of the fake logits with target 1 (not +E[log(1 - D(G(z)))], "
          "which saturates)", rtol=1e-4)
    if got.grad_fn is None:
        raise ExerciseError("generator_loss must stay differentiable in the logits (no .item(), "
                            "no torch.no_grad)")
    confident = torch.tensor([-8.0], dtype=torch.float64, requires_grad=True)  # D(G(z)) ~ 0.0003
    (g_conf,) = torch.autograd.grad(generator_loss(confident), confident)
    if g_conf.abs() < 0.5:
        raise ExerciseError(f"when D confidently rejects a fake (logit -8), your loss gives a "
                            f"gradient of only {float(g_conf):.2g}: it saturates. "
                            "Use -log D(G(z)).")
    ok("generator_loss is -E[log D(G(z))]: strong gradients even when D rejects the fakes")


def check_optimal_discriminator(optimal_discriminator) -> None:
    """optimal_discriminator(p_data (N,), p_g (N,)) -> D*(x) on the same grid."""
    x = torch.linspace(-10, 10, 20_001, dtype=torch.float64)
    dx = x[1] - x[0]
    p_data = 0.5 * (Normal(-2.0, 0.6).log_prob(x).exp() + Normal(2.0, 0.6).log_prob(x).exp())
    p_g = Normal(0.5, 1.5).log_prob(x).exp()
    d_star = answer(optimal_discriminator(p_data, p_g), "optimal_discriminator", shape=x.shape)
    close(d_star, p_data / (p_data + p_g), "optimal_discriminator",
          "D*(x) = p_data(x) / (p_data(x) + p_g(x))", atol=1e-9)
    value = ((p_data * d_star.log()).sum() + (p_g * (1 - d_star).log()).sum()) * dx
    m = (p_data + p_g) / 2
    jsd = 0.5 * ((p_data * (p_data / m).log()).sum() + (p_g * (p_g / m).log()).sum()) * dx
    close(value, -math.log(4) + 2 * jsd, "V(G, D*)", "-log 4 + 2 JSD(p_data || p_g)", atol=1e-6)
    ok(f"optimal_discriminator: V(G, D*) = -log 4 + 2 JSD = {float(value):.4f} on this example")
