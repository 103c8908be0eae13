"""Checks for the exercises of 03_mle_kl: KL divergences of categoricals and Gaussians, and JSD."""

import math

import torch
from torch.distributions import Categorical, Normal, kl_divergence

from .core import Exercise, ok

_CASES = [((5, 4), torch.float64), ((2, 3, 6), torch.float64), ((7,), torch.float64),
          ((10_000, 5), torch.float32)]  # (..., K): a batch, more batch dimensions, one pair,
# and the notebook's 10,000 pairs in float32


def _categorical_pairs(shape, dtype):
    """Pairs of distributions p, q over the last dimension, with zeros in p: 0 log 0 counts as 0.
    """
    gen = torch.Generator().manual_seed(3)
    p = (2 * torch.randn(shape, generator=gen, dtype=torch.float64)).softmax(-1)
    q = (3 * torch.randn(shape, generator=gen, dtype=torch.float64)).softmax(-1)
    flat = p.view(-1, shape[-1])
    flat[0, : shape[-1] // 2] = 0.0  # p never gives the first outcomes
    flat[0] /= flat[0].sum()
    return p.to(dtype), q.to(dtype)


def _kl(p, q):
    return kl_divergence(Categorical(probs=p.double()), Categorical(probs=q.double()))


ZERO_LOG_ZERO = ("0 * log 0 must count as 0 (an outcome that p never gives adds nothing), but in "
                 "floating point it is NaN: torch.xlogy(p, p) computes p log p safely")
LAST_DIM = [(IndexError, "Dimension out of range", "a dimension that this input does not "
             "have: the distributions run along the last dimension (dim=-1), whatever comes "
             "before it")]


def check_kl_categorical(kl_categorical) -> None:
    """kl_categorical(p (..., K), q (..., K)) -> KL(p || q) in nats (...)."""
    ex = Exercise(kl_categorical, "kl_categorical", "KL(p || q) is the expectation under p, the "
                  "first argument, of log p - log q, in natural logarithms, summed over the last "
                  "dimension", errors=LAST_DIM)
    for shape, dtype in _CASES:
        p, q = _categorical_pairs(shape, dtype)
        want = _kl(p, q)
        known = [(_kl(q, p), "you computed KL(q || p): the arguments are swapped; the "
                             "expectation is under p, the first argument"),
                 (want / math.log(2), "that is in bits (log base 2); use the natural log for "
                                      "nats")]
        got = ex.tensor(ex.call(p, q), shape=shape[:-1], like=[p, q], known=known,
                        finite_hint=ZERO_LOG_ZERO)
        ex.compare(got, want, known=known, what=f"kl_categorical on {shape}, {dtype}")
    p = torch.tensor([[0.5, 0.5, 0.0], [0.5, 0.5, 0.0]], dtype=torch.float64)  # 0 log 0 in
    q = torch.tensor([[0.25, 0.75, 0.0], [1.0, 0.0, 0.0]], dtype=torch.float64)  # both; q = 0
    got = ex.call(p, q)  # where p > 0 in the second row: KL(p || q) is +inf there
    right_shape = isinstance(got, torch.Tensor) and got.shape == (2,)
    ex.tensor(got[:1] if right_shape else got, (1,) if right_shape else (2,), like=[p, q],
              finite_hint=ZERO_LOG_ZERO)  # the first row is finite
    if not torch.isposinf(got[1]):
        ex.fail("where q gives 0 to an outcome that p does not, KL(p || q) is +inf",
                f"got: {got[1].item()}",
                hint="no eps, clamp or nan_to_num in the logs: torch.xlogy(p, p) - torch.xlogy(p, "
                     "q) gives inf there exactly")
    ok("kl_categorical agrees with torch.distributions.kl_divergence on any batch shape, with 0 "
       "log 0 = 0 and +inf where q = 0 < p")


def check_kl_gaussian(kl_gaussian) -> None:
    """kl_gaussian(mu1, sigma1, mu2, sigma2) -> KL(N(mu1, sigma1^2) || N(mu2, sigma2^2))."""
    ex = Exercise(kl_gaussian, "kl_gaussian", "start from E_p[log p(x) - log q(x)] with p the "
                  "first Gaussian; under p, E[(x - mu2)^2] = sigma1^2 + (mu1 - mu2)^2")
    gen = torch.Generator().manual_seed(4)
    for shape, dtype in [((4,), torch.float64), ((2, 3), torch.float64), ((), torch.float64),
                         ((6,), torch.float32)]:  # the last: the notebook's dtype, wide sigmas
        mu1, mu2 = 2 * torch.randn(2, *shape, generator=gen, dtype=dtype)
        s1, s2 = torch.rand(2, *shape, generator=gen, dtype=dtype) * 2.5 + 0.2
        if dtype == torch.float32:
            s1 = s1 * torch.tensor([1e-3, 1, 1e3, 1, 30, 1e-25])  # the last: sigma^2 is 0
            s2 = s2 * torch.tensor([1, 1e-2, 1, 1e3, 1, 1])  # in float32
        want = kl_divergence(Normal(mu1.double(), s1.double()), Normal(mu2.double(), s2.double()))
        got = ex.tensor(ex.call(mu1, s1, mu2, s2), shape=shape, like=[mu1, s1, mu2, s2],
                        finite_hint="sigma^2 is 0 in float32 for sigma = 1e-25: write the log of "
                        "the variances' ratio as 2 log(sigma2 / sigma1)")
        s1, s2, mu1, mu2 = s1.double(), s2.double(), mu1.double(), mu2.double()
        ex.compare(got, want, what=f"kl_gaussian on {shape}, {dtype}", known=[
            (kl_divergence(Normal(mu2, s2), Normal(mu1, s1)), "you computed KL(N2 || N1): the "
             "expectation is under the first Gaussian, N(mu1, sigma1^2)"),
            (kl_divergence(Normal(mu1, s1.sqrt()), Normal(mu2, s2.sqrt())), "the arguments are "
             "standard deviations: square them where the formula has variances"),
            ((s2 / s1).log() + (s1 + (mu1 - mu2) ** 2) / (2 * s2) - 0.5, "the arguments are "
             "standard deviations: square them where the formula has variances"),
            (want + 0.5, "the constant term is -1/2"),
            (2 * want, "check the factor 1/2 in front of the squared terms and the log of "
                       "variances")])
    ok("kl_gaussian agrees with torch.distributions elementwise, on any shape, for sigma1 "
       "down to 1e-25 and sigmas up to a few thousand")


def check_jsd(jsd) -> None:
    """jsd(p (..., K), q (..., K)) -> Jensen-Shannon divergence in nats (...)."""
    ex = Exercise(jsd, "jsd", "JSD(p, q) is the average of KL(p || m) and KL(q || m), with the "
                  "mixture m = (p + q) / 2 as the second argument of both", errors=LAST_DIM)
    for shape, dtype in _CASES:
        p, q = _categorical_pairs(shape, dtype)
        m = (p + q) / 2
        want = (_kl(p, m) + _kl(q, m)) / 2
        known = [((_kl(m, p) + _kl(m, q)) / 2, "KL(m || p) is the wrong way round: the mixture "
                                               "m is the second argument of both KLs"),
                 ((_kl(p, q) + _kl(q, p)) / 2, "that is the symmetrised KL between p and q; the "
                                               "JSD compares each of them with the mixture m"),
                 (_kl(p, m), "that is KL(p || m) alone: average it with KL(q || m)"),
                 (2 * want, "average the two KLs (a factor 1/2 each)"),
                 (want / math.log(2), "that is in bits (log base 2); use the natural log")]
        got = ex.tensor(ex.call(p, q), shape=shape[:-1], like=[p, q], known=known,
                        finite_hint=ZERO_LOG_ZERO)
        ex.compare(got, want, known=known, what=f"jsd on {shape}, {dtype}")
        swapped = ex.tensor(ex.call(q, p), shape=shape[:-1])
        ex.compare(swapped, got, what="jsd(q, p) against jsd(p, q)",
                   hint="the Jensen-Shannon divergence is symmetric", atol=1e-6)
    disjoint = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    ex.compare(ex.tensor(ex.call(disjoint[:1], disjoint[1:]), shape=(1,), finite_hint=
                         ZERO_LOG_ZERO), [math.log(2)], what="jsd of two distributions with "
               "disjoint supports", hint="it reaches its maximum, log 2")
    ok("jsd matches the mixture definition on any batch shape, is symmetric and reaches log 2 on "
       "disjoint supports")
