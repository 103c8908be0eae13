"""Checks for the exercises of 03_mle_kl: KL divergences of categoricals and Gaussians, and JSD."""

import math

import torch
from torch.distributions import Categorical, Normal, kl_divergence

from .core import Exercise, ok


def _categorical_pairs():
    gen = torch.Generator().manual_seed(3)
    p = torch.rand(5, 4, generator=gen).softmax(-1)
    q = (3 * torch.randn(5, 4, generator=gen)).softmax(-1)
    p[0] = torch.tensor([0.5, 0.5, 0.0, 0.0])  # zeros in p: 0 log 0 counts as 0
    return p.double(), q.double()


def _kl(p, q):
    return kl_divergence(Categorical(probs=p), Categorical(probs=q))


ZERO_LOG_ZERO = ("0 * log 0 must count as 0 (an outcome that p never gives adds nothing), but in "
                 "floating point it is NaN: torch.xlogy(p, p) computes p log p safely")


def check_kl_categorical(kl_categorical) -> None:
    """kl_categorical(p (..., K), q (..., K)) -> KL(p || q) in nats (...)."""
    ex = Exercise(kl_categorical, "kl_categorical", "KL(p || q) is the expectation under p, the "
                  "first argument, of log p - log q, in natural logarithms, summed over the last "
                  "dimension")
    p, q = _categorical_pairs()
    want = _kl(p, q)
    known = [(_kl(q, p), "you computed KL(q || p): the arguments are swapped; the expectation "
                         "is under p, the first argument"),
             (want / math.log(2), "that is in bits (log base 2); use the natural log for nats")]
    got = ex.tensor(ex.call(p, q), shape=(5,), like=[p, q], known=known,
                    finite_hint=ZERO_LOG_ZERO)
    ex.compare(got, want, known=known)
    ok("kl_categorical agrees with torch.distributions.kl_divergence (zeros in p included)")


def check_kl_gaussian(kl_gaussian) -> None:
    """kl_gaussian(mu1, sigma1, mu2, sigma2) -> KL(N(mu1, sigma1^2) || N(mu2, sigma2^2))."""
    ex = Exercise(kl_gaussian, "kl_gaussian", "start from E_p[log p(x) - log q(x)] with p the "
                  "first Gaussian; under p, E[(x - mu2)^2] = sigma1^2 + (mu1 - mu2)^2")
    mu1 = torch.tensor([0.0, 1.0, -2.0, 0.5], dtype=torch.float64)
    s1 = torch.tensor([1.0, 0.5, 2.0, 3.0], dtype=torch.float64)
    mu2 = torch.tensor([0.0, 0.0, 1.0, 0.5], dtype=torch.float64)
    s2 = torch.tensor([1.0, 2.0, 0.7, 1.0], dtype=torch.float64)
    want = kl_divergence(Normal(mu1, s1), Normal(mu2, s2))
    got = ex.tensor(ex.call(mu1, s1, mu2, s2), shape=(4,), like=[mu1, s1, mu2, s2])
    ex.compare(got, want, known=[
        (kl_divergence(Normal(mu2, s2), Normal(mu1, s1)), "you computed KL(N2 || N1): the "
         "expectation is under the first Gaussian, N(mu1, sigma1^2)"),
        (kl_divergence(Normal(mu1, s1.sqrt()), Normal(mu2, s2.sqrt())), "the arguments are "
         "standard deviations: square them where the formula has variances"),
        ((s2 / s1).log() + (s1 + (mu1 - mu2) ** 2) / (2 * s2) - 0.5, "the arguments are "
         "standard deviations: square them where the formula has variances"),
        (want + 0.5, "the constant term is -1/2"),
        (2 * want, "check the factor 1/2 in front of the squared terms and the log of variances")])
    ok("kl_gaussian agrees with torch.distributions (and is 0 for identical Gaussians)")


def check_jsd(jsd) -> None:
    """jsd(p (..., K), q (..., K)) -> Jensen-Shannon divergence in nats (...)."""
    ex = Exercise(jsd, "jsd", "JSD(p, q) is the average of KL(p || m) and KL(q || m), with the "
                  "mixture m = (p + q) / 2 as the second argument of both")
    p, q = _categorical_pairs()
    m = (p + q) / 2
    want = (_kl(p, m) + _kl(q, m)) / 2
    known = [((_kl(m, p) + _kl(m, q)) / 2, "KL(m || p) is the wrong way round: the mixture m is "
                                           "the second argument of both KLs"),
             ((_kl(p, q) + _kl(q, p)) / 2, "that is the symmetrised KL between p and q; the JSD "
                                           "compares each of them with the mixture m"),
             (_kl(p, m), "that is KL(p || m) alone: average it with KL(q || m)"),
             (2 * want, "average the two KLs (a factor 1/2 each)")]
    got = ex.tensor(ex.call(p, q), shape=(5,), like=[p, q], known=known, finite_hint=ZERO_LOG_ZERO)
    ex.compare(got, want, known=known)
    swapped = ex.tensor(ex.call(q, p), shape=(5,))
    ex.compare(swapped, got, what="jsd(q, p) against jsd(p, q)",
               hint="the Jensen-Shannon divergence is symmetric", atol=1e-9)
    disjoint = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    ex.compare(ex.tensor(ex.call(disjoint[:1], disjoint[1:]), shape=(1,), finite_hint=
                         ZERO_LOG_ZERO), [math.log(2)], what="jsd of two distributions with "
               "disjoint supports", hint="it reaches its maximum, log 2")
    ok("jsd matches the mixture definition, is symmetric and reaches log 2 on disjoint supports")
