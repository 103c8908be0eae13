"""Checks for the 05_gan exercises: the discriminator loss, the non-saturating generator loss and
the optimal discriminator, against manual formulas and numerical integration of known densities.
Each loss is tried on moderate logits first, then in float32 on the confident logits (+-120) that
a real discriminator produces, where log(sigmoid(l)) is log(0).
"""


import torch
import torch.nn.functional as F
from torch.distributions import Normal

from .core import UNSTABLE, Exercise, ok

_CASES = [((6,), (6,), False), ((6,), (10,), False), ((5, 1), (5, 1), False),
          ((64,), (64,), True)]  # (real, fake) logit shapes; confident: the notebook's batch


def _logits(seed, real_shape, fake_shape, confident):
    """Real and fake logits, float32, that take gradients; with `confident`, a discriminator
    that is sure and wrong about one of each (+-120) and sure and right about another."""
    gen = torch.Generator().manual_seed(seed)
    real, fake = 3 * torch.randn(real_shape, generator=gen), 3 * torch.randn(fake_shape,
                                                                               generator=gen)
    if confident:
        real[:2], fake[:2] = torch.tensor([-120.0, 120.0]), torch.tensor([120.0, -120.0])
    return real.requires_grad_(), fake.requires_grad_()


def _log_d(a):
    """log D = log sigmoid(a), in float64 and stable."""
    return F.logsigmoid(a.double())


def _d_loss(real, fake):
    return -(_log_d(real).mean() + _log_d(-fake).mean())  # log(1 - sigmoid(a)) = log sigmoid(-a)


def check_discriminator_loss(discriminator_loss) -> None:
    """discriminator_loss(real_logits (B,), fake_logits (B',)) -> -E[log D(x)] - E[log(1 - D(G(z)))]
    """
    ex = Exercise(discriminator_loss, "discriminator_loss", "the discriminator maximises "
                  "E[log D(x)] + E[log(1 - D(G(z)))]; its loss is the negative: for each batch, "
                  "the binary cross-entropy whose label makes it that batch's term, averaged "
                  "over the batch")
    for real_shape, fake_shape, confident in _CASES:
        real, fake = _logits(0, real_shape, fake_shape, confident)
        got = ex.call(real, fake)
        value = ex.tensor(got, (), like=[real, fake], finite_hint=UNSTABLE, grad=True)
        r, f = real.detach(), fake.detach()
        together = -(_log_d(r).sum() + _log_d(-f).sum()) / (r.numel() + f.numel())
        ex.compare(value, _d_loss(r, f), rtol=1e-4, hint=UNSTABLE if confident else None,
                   what=f"discriminator_loss on {r.numel()} real and {f.numel()} fake logits"
                   + (" (some confident, +-120)" if confident else ""), known=[
            (-(_log_d(-r).mean() + _log_d(f).mean()), "the labels are swapped: real images have "
                                                      "label 1, fakes label 0"),
            (-(_log_d(r).sum() + _log_d(-f).sum()), "average over each batch, not the sum"),
            (-_log_d(r).mean(), "the fakes' term -E[log(1 - D(G(z)))] is missing"),
            (together, "that is one average over both batches together: average each batch "
                       "on its own, then add the two terms")])
        ex.gradients(got, {"real_logits": real, "fake_logits": fake},
                     lambda real_logits, fake_logits: _d_loss(real_logits, fake_logits))
    ok("discriminator_loss matches -E[log D(x)] - E[log(1 - D(G(z)))] in value and gradient, for "
       "batches of any size and confident logits")


def check_generator_loss(generator_loss) -> None:
    """generator_loss(fake_logits (B,)) -> scalar: the non-saturating loss -E[log D(G(z))]."""
    ex = Exercise(generator_loss, "generator_loss", "the non-saturating loss is -E[log D(G(z))]: "
                  "the binary cross-entropy of the fakes' logits with the label 'real'")
    for _, shape, confident in _CASES[1:]:
        fake = _logits(1, shape, shape, confident)[1]
        got = ex.call(fake)
        value = ex.tensor(got, (), like=[fake], finite_hint=UNSTABLE, grad=True)
        want = -_log_d(fake.detach()).mean()
        ex.compare(value, want, what=f"generator_loss on {tuple(shape)} logits" + (
            " (some confident, +-120)" if confident else ""), rtol=1e-4, known=[
                (_log_d(-fake.detach()).mean(), "that is the saturating loss E[log(1 - D(G(z)))]:"
                 " it has no gradient when D rejects the fakes; minimise -E[log D(G(z))] instead"),
                (-want, "mind the sign: minimise -E[log D(G(z))]")],
            hint=UNSTABLE if confident else None)
        ex.gradients(got, {"fake_logits": fake}, lambda fake_logits: -_log_d(fake_logits).mean())
    confident = torch.tensor([-8.0], requires_grad=True)  # D(G(z)) ~ 0.0003
    with ex.guard("differentiating your loss"):
        (g_conf,) = torch.autograd.grad(ex.call(confident), confident)
    if g_conf.abs() < 0.5:
        ex.fail(f"when D confidently rejects a fake (logit -8), your loss gives a gradient of only "
                f"{float(g_conf):.2g}: it saturates", hint="minimise -log D(G(z)), not "
                "log(1 - D(G(z)))")
    ok("generator_loss is -E[log D(G(z))] in value and gradient: strong, finite gradients even "
       "when D rejects the fakes")


def check_optimal_discriminator(optimal_discriminator) -> None:
    """optimal_discriminator(p_data (N,), p_g (N,)) -> D*(x) on the same grid."""
    ex = Exercise(optimal_discriminator, "optimal_discriminator", "for each x, maximise "
                  "p_data(x) log D + p_g(x) log(1 - D) over D in (0, 1): set the derivative to 0")
    for x, tiny in ((torch.linspace(-10, 10, 2001, dtype=torch.float64), 1.0),  # a grid,
                    (torch.linspace(-4, 6, 150, dtype=torch.float64).view(3, 50), 1e-20),  # a
                    (torch.linspace(-10, 10, 401), 1.0)):  # batch of densities as small as in
        p_data = tiny * (0.3 * Normal(-1.0, 0.8).log_prob(x).exp()  # many dimensions, and
                         + 0.7 * Normal(3.0, 0.5).log_prob(x).exp())  # float32, whose tails
        p_g = tiny * Normal(1.0, 2.0).log_prob(x).exp()  # underflow to 0
        d_star = ex.tensor(ex.call(p_data, p_g), x.shape, like=[p_data, p_g])
        want = p_data.double() / (p_data.double() + p_g.double())  # the density ratio as a
        ex.compare(d_star, want, atol=1e-6, known=[  # probability
            (1 - want, "that is 1 - D*: D* is the probability that x is real, so p_data is in "
                       "the numerator"),
            (p_data.double() / p_g.double(), "that is the density ratio p_data / p_G; D* is a "
                                             "probability: p_data / (p_data + p_G)")],
            what=f"D* on a {tuple(x.shape)} {x.dtype} grid")
    ok("optimal_discriminator: D*(x) = p_data(x) / (p_data(x) + p_G(x)) on a test mixture")
