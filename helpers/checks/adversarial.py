"""Checks for the 05_gan exercises: the discriminator loss, the non-saturating generator loss and
the optimal discriminator, against manual formulas and numerical integration of known densities.
Each loss is tried on moderate logits first, then in float32 on the confident logits (+-120) that
a real discriminator produces, where log(sigmoid(l)) is log(0).
"""


import torch
import torch.nn.functional as F
from torch.distributions import Normal

from .core import UNSTABLE, Exercise, ok


def _logits(seed, confident):
    """Real and fake logits (6,), float32; with `confident`, a discriminator that is sure and
    wrong about one of each (+-120), else moderate values only."""
    gen = torch.Generator().manual_seed(seed)
    real, fake = 3 * torch.randn(2, 6, generator=gen)
    if confident:
        real[0], fake[0], real[1], fake[1] = -120.0, 120.0, 120.0, -120.0
    return real, fake


def _log_d(a):
    """log D = log sigmoid(a), in float64 and stable."""
    return F.logsigmoid(a.double())


def check_discriminator_loss(discriminator_loss) -> None:
    """discriminator_loss(real_logits (B,), fake_logits (B,)) -> -E[log D(x)] - E[log(1 - D(G(z)))]
    """
    ex = Exercise(discriminator_loss, "discriminator_loss", "the discriminator maximises "
                  "E[log D(x)] + E[log(1 - D(G(z)))]; its loss is the negative: the binary "
                  "cross-entropy with label 1 for real and 0 for fake, each averaged over its "
                  "batch")
    for confident in (False, True):
        real, fake = _logits(0, confident)
        value = ex.tensor(ex.call(real, fake), (), like=[real, fake], finite_hint=UNSTABLE)
        want = -(_log_d(real).mean() + _log_d(-fake).mean())  # log(1 - sigmoid(a)): a -> -a
        if confident:
            ex.compare(value, want, what="discriminator_loss on confident logits (+-120)",
                       hint=UNSTABLE, rtol=1e-4)
            continue
        ex.compare(value, want, rtol=1e-4, known=[
            (-(_log_d(-real).mean() + _log_d(fake).mean()), "the labels are swapped: real "
             "images have label 1, fakes label 0"),
            (-(_log_d(real).sum() + _log_d(-fake).sum()), "average over each batch, not the sum"),
            (-_log_d(real).mean(), "the fakes' term -E[log(1 - D(G(z)))] is missing")])
    ok("discriminator_loss matches -E[log D(x)] - E[log(1 - D(G(z)))], also on confident logits")


def check_generator_loss(generator_loss) -> None:
    """generator_loss(fake_logits (B,)) -> scalar: the non-saturating loss -E[log D(G(z))]."""
    ex = Exercise(generator_loss, "generator_loss", "the non-saturating loss is -E[log D(G(z))]: "
                  "the binary cross-entropy of the fakes' logits with the label 'real'")
    for confident in (False, True):
        fake = _logits(1, confident)[1].requires_grad_()
        got = ex.call(fake)
        value = ex.tensor(got, (), like=[fake], finite_hint=UNSTABLE)
        if got.grad_fn is None:
            ex.fail("the loss is not differentiable in the logits", hint="no .item(), .detach() "
                    "or torch.no_grad(): the generator learns through this gradient")
        want = -_log_d(fake.detach()).mean()
        ex.compare(value, want, what="generator_loss on confident logits (+-120)" if confident
                   else None, rtol=1e-4, known=[
                       (_log_d(-fake.detach()).mean(), "that is the saturating loss "
                        "E[log(1 - D(G(z)))]: it has no gradient when D rejects the fakes; "
                        "minimise -E[log D(G(z))] instead"),
                       (-want, "mind the sign: minimise -E[log D(G(z))]")],
                   hint=UNSTABLE if confident else None)
        (grad,) = torch.autograd.grad(got, fake)
        if not torch.isfinite(grad).all():
            ex.fail("the gradient is NaN or infinite on confident logits (+-120)", hint=UNSTABLE)
    confident = torch.tensor([-8.0], requires_grad=True)  # D(G(z)) ~ 0.0003
    (g_conf,) = torch.autograd.grad(ex.call(confident), confident)
    if g_conf.abs() < 0.5:
        ex.fail(f"when D confidently rejects a fake (logit -8), your loss gives a gradient of only "
                f"{float(g_conf):.2g}: it saturates", hint="minimise -log D(G(z)), not "
                "log(1 - D(G(z)))")
    ok("generator_loss is -E[log D(G(z))]: strong, finite gradients even when D rejects the fakes")


def check_optimal_discriminator(optimal_discriminator) -> None:
    """optimal_discriminator(p_data (N,), p_g (N,)) -> D*(x) on the same grid."""
    ex = Exercise(optimal_discriminator, "optimal_discriminator", "for each x, maximise "
                  "p_data(x) log D + p_g(x) log(1 - D) over D in (0, 1): set the derivative to 0")
    x = torch.linspace(-10, 10, 2001, dtype=torch.float64)
    p_data = 0.3 * Normal(-1.0, 0.8).log_prob(x).exp() + 0.7 * Normal(3.0, 0.5).log_prob(x).exp()
    p_g = Normal(1.0, 2.0).log_prob(x).exp()
    d_star = ex.tensor(ex.call(p_data, p_g), x.shape, like=[p_data, p_g])
    want = torch.sigmoid(p_data.log() - p_g.log())  # the density ratio as a probability
    ex.compare(d_star, want, atol=1e-9, known=[
        (1 - want, "that is 1 - D*: D* is the probability that x is real, so p_data is in the "
                   "numerator")])
    ok("optimal_discriminator: D*(x) = p_data(x) / (p_data(x) + p_G(x)) on a test mixture")
