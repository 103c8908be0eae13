"""Checks for the exercises of 03_mle_kl: KL divergences of categoricals and Gaussians, and JSD."""

import math

import torch
from torch.distributions import Categorical, Normal, kl_divergence

from .core import answer, close, ok


def _categorical_pairs():
    gen = torch.Generator().manual_seed(3)
    p = torch.rand(5, 4, generator=gen).softmax(-1)
    q = (3 * torch.randn(5, 4, generator=gen)).softmax(-1)
    p[0] = torch.tensor([0.5, 0.5, 0.0, 0.0])  # zeros in p: 0 log 0 counts as 0
    return p.double(), q.double()


def check_kl_categorical(kl_categorical) -> None:
    """kl_categorical(p (..., K), q (..., K)) -> KL(p || q) in nats (...)."""
    p, q = _categorical_pairs()
    got = answer(kl_categorical(p, q), "kl_categorical", shape=(5,))
    want = kl_divergence(Categorical(probs=p), Categorical(probs=q))
    close(got, want, "kl_categorical", "KL(p || q) = sum_k p_k (log p_k - log q_k), natural log, "
           "summed over the last dimension; the expectation is under p, the first argument.")
    ok("kl_categorical agrees with torch.distributions.kl_divergence (zeros in p included)")


def check_kl_gaussian(kl_gaussian) -> None:
    """kl_gaussian(mu1, sigma1, mu2, sigma2) -> KL(N(mu1, sigma1^2) || N(mu2, sigma2^2))."""
    mu1 = torch.tensor([0.0, 1.0, -2.0, 0.5], dtype=torch.float64)
    s1 = torch.tensor([1.0, 0.5, 2.0, 3.0], dtype=torch.float64)
    mu2 = torch.tensor([0.0, 0.0, 1.0, 0.5], dtype=torch.float64)
    s2 = torch.tensor([1.0, 2.0, 0.7, 1.0], dtype=torch.float64)
    got = answer(kl_gaussian(mu1, s1, mu2, s2), "kl_gaussian", shape=(4,))
    want = kl_divergence(Normal(mu1, s1), Normal(mu2, s2))
    close(got, want, "kl_gaussian", "log(sigma2 / sigma1) + (sigma1^2 + (mu1 - mu2)^2) / "
           "(2 sigma2^2) - 1/2: the arguments are standard deviations, square them.")
    ok("kl_gaussian agrees with torch.distributions (and is 0 for identical Gaussians)")


def check_jsd(jsd) -> None:
    """jsd(p (..., K), q (..., K)) -> Jensen-Shannon divergence in nats (...)."""
    p, q = _categorical_pairs()
    got = answer(jsd(p, q), "jsd", shape=(5,))
    m = Categorical(probs=(p + q) / 2)
    want = (kl_divergence(Categorical(probs=p), m) + kl_divergence(Categorical(probs=q), m)) / 2
    close(got, want, "jsd", "JSD(p, q) = KL(p || m) / 2 + KL(q || m) / 2 with m = (p + q) / 2.")
    close(answer(jsd(q, p), "jsd", shape=(5,)), got, "jsd(q, p) vs jsd(p, q)",
           "the Jensen-Shannon divergence is symmetric")
    disjoint = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    close(answer(jsd(disjoint[:1], disjoint[1:]), "jsd", shape=(1,)), [math.log(2)],
           "jsd of two distributions with disjoint supports", "it reaches its maximum, log 2")
    ok("jsd matches the mixture definition, is symmetric and reaches log 2 on disjoint supports")
