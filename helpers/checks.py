"""Exercise checks: each calls the student's function on test cases and compares the answer with an
independent reference (torch.distributions, brute-force enumeration or a closed form).

A check prints one success line, or raises ExerciseError saying what was expected, what came back
and a hint. Wrong types, shapes, dtypes and NaNs get a plain message instead of a deep traceback.
"""

import itertools
import math

import torch
from torch.distributions import Bernoulli, Categorical, Normal, kl_divergence


class ExerciseError(AssertionError):
    """The answer to an exercise is not right yet; the message says why."""


def _answer(value, name: str, shape: tuple | None = None, floating: bool = True) -> torch.Tensor:
    """Validate an answer: a tensor of the given shape and kind, free of NaN and inf."""
    if value is None:
        raise ExerciseError(f"{name} returned None: did you forget `return`?")
    if not isinstance(value, torch.Tensor):
        raise ExerciseError(f"{name} should return a torch.Tensor, got {type(value).__name__}")
    if shape is not None and tuple(value.shape) != tuple(shape):
        raise ExerciseError(f"{name} returned shape {tuple(value.shape)}, expected {tuple(shape)}")
    if floating and not value.is_floating_point():
        raise ExerciseError(f"{name} returned dtype {value.dtype}, expected a floating-point "
                            "tensor (probabilities and log-probabilities are real numbers)")
    if floating and not torch.isfinite(value).all():
        bad = int((~torch.isfinite(value)).sum())
        raise ExerciseError(f"{name} returned {bad} NaN or infinite value(s): {value.flatten()[:6]}"
                            " ... Look for log(0), 0/0 or a division by a zero count.")
    return value.detach()


def _close(got, want, name: str, hint: str, atol: float = 1e-5, rtol: float = 1e-4) -> None:
    got, want = torch.as_tensor(got).double(), torch.as_tensor(want).double()
    if not torch.allclose(got, want, atol=atol, rtol=rtol):
        diff = float((got - want).abs().max())
        raise ExerciseError(f"{name} is not right yet.\n  expected: {want.flatten()[:6].tolist()}"
                            f"\n  got:      {got.flatten()[:6].tolist()}\n  max difference "
                            f"{diff:.3g}\n  hint: {hint}")


def _ok(message: str) -> None:
    print(f"✓ {message}")


# ---------------------------------------------------------------- 01_distributions


def check_categorical_mle(categorical_mle) -> None:
    """categorical_mle(samples (N,) int64 in [0, m), m) -> probabilities (m,)."""
    gen = torch.Generator().manual_seed(1)
    for m, n in [(6, 1000), (4, 7), (10, 50)]:
        samples = torch.randint(0, m - 1, (n,), generator=gen)  # the last face never shows up
        got = _answer(categorical_mle(samples, m), "categorical_mle", shape=(m,))
        want = torch.tensor([sum(int(s) == k for s in samples) / n for k in range(m)])
        _close(got, want, "categorical_mle", "the MLE of a categorical is count(k) / N for every "
               "face k, including faces that never appear (torch.bincount(..., minlength=m))")
    _ok("categorical_mle: the MLE is the vector of relative frequencies (m entries, sums to 1)")


def _markov_reference(x, p_first, p_next):
    """log p(x) of a first-order Markov chain, one conditional Bernoulli at a time."""
    logp = Bernoulli(probs=p_first).log_prob(x[:, 0])
    for i in range(1, x.shape[1]):
        prev = x[:, i - 1].long()
        logp = logp + Bernoulli(probs=p_next[i - 1, prev]).log_prob(x[:, i])
    return logp


def check_markov_log_likelihood(markov_log_likelihood) -> None:
    """markov_log_likelihood(x (B, n) in {0,1}, p_first (), p_next (n-1, 2)) -> log p(x) (B,)."""
    gen = torch.Generator().manual_seed(2)
    for n, batch in [(4, 16), (30, 64)]:
        p_first = torch.rand((), generator=gen) * 0.8 + 0.1
        p_next = torch.rand(n - 1, 2, generator=gen) * 0.8 + 0.1
        x = torch.bernoulli(torch.full((batch, n), 0.5), generator=gen)
        got = _answer(markov_log_likelihood(x, p_first, p_next), "markov_log_likelihood",
                      shape=(batch,))
        _close(got, _markov_reference(x, p_first, p_next), "markov_log_likelihood",
               "log p(x) = log P(x_1) + sum_i log P(x_i | x_(i-1)); P(x_i = 1 | x_(i-1) = b) is "
               "p_next[i-1, b], and P(x_i = 0 | ...) is one minus it. Sum over pixels, not images.")
    every = torch.tensor(list(itertools.product([0.0, 1.0], repeat=4)))  # all 16 sequences
    total = markov_log_likelihood(every, torch.tensor(0.3), torch.rand(3, 2, generator=gen))
    _close(_answer(total, "markov_log_likelihood", shape=(16,)).exp().sum(), 1.0,
           "the probabilities of all 2^4 sequences", "they must add up to 1")
    _ok("markov_log_likelihood matches the conditional-by-conditional reference and sums to 1")


def check_markov_order_k_params(num_params) -> None:
    """num_params(n, k) -> free parameters of an order-k Markov chain over n binary variables."""
    for n, k in [(1, 0), (5, 0), (5, 1), (6, 2), (6, 5), (6, 9), (10, 3), (784, 1)]:
        # Enumerate real tables: variable i has one P(X_i = 1 | parents) per parent assignment.
        tables = [torch.empty((2,) * min(i, k)) for i in range(min(n, 12))]
        want = sum(t.numel() for t in tables) + (n - len(tables)) * 2 ** k
        got = num_params(n, k)
        if not isinstance(got, int | torch.Tensor) or int(got) != want:
            raise ExerciseError(
                f"num_params({n}, {k}) returned {got!r}, expected {want}.\n  hint: variable i "
                f"(0-based) has min(i, k) parents, so its table has 2^min(i, k) entries; "
                f"k = 0 gives n, k = 1 gives 2n - 1 and k >= n - 1 gives 2^n - 1.")
    _ok("num_params: independent (k=0) n, Markov (k=1) 2n-1, full chain rule 2^n-1, and between")


# ---------------------------------------------------------------- 03_mle_kl


def _categorical_pairs():
    gen = torch.Generator().manual_seed(3)
    p = torch.rand(5, 4, generator=gen).softmax(-1)
    q = (3 * torch.randn(5, 4, generator=gen)).softmax(-1)
    p[0] = torch.tensor([0.5, 0.5, 0.0, 0.0])  # zeros in p: 0 log 0 counts as 0
    return p.double(), q.double()


def check_kl_categorical(kl_categorical) -> None:
    """kl_categorical(p (..., K), q (..., K)) -> KL(p || q) in nats (...)."""
    p, q = _categorical_pairs()
    got = _answer(kl_categorical(p, q), "kl_categorical", shape=(5,))
    want = kl_divergence(Categorical(probs=p), Categorical(probs=q))
    _close(got, want, "kl_categorical", "KL(p || q) = sum_k p_k (log p_k - log q_k), natural log, "
           "summed over the last dimension; the expectation is under p, the first argument.")
    _ok("kl_categorical agrees with torch.distributions.kl_divergence (zeros in p included)")


def check_kl_gaussian(kl_gaussian) -> None:
    """kl_gaussian(mu1, sigma1, mu2, sigma2) -> KL(N(mu1, sigma1^2) || N(mu2, sigma2^2))."""
    mu1 = torch.tensor([0.0, 1.0, -2.0, 0.5], dtype=torch.float64)
    s1 = torch.tensor([1.0, 0.5, 2.0, 3.0], dtype=torch.float64)
    mu2 = torch.tensor([0.0, 0.0, 1.0, 0.5], dtype=torch.float64)
    s2 = torch.tensor([1.0, 2.0, 0.7, 1.0], dtype=torch.float64)
    got = _answer(kl_gaussian(mu1, s1, mu2, s2), "kl_gaussian", shape=(4,))
    want = kl_divergence(Normal(mu1, s1), Normal(mu2, s2))
    _close(got, want, "kl_gaussian", "log(sigma2 / sigma1) + (sigma1^2 + (mu1 - mu2)^2) / "
           "(2 sigma2^2) - 1/2: the arguments are standard deviations, square them.")
    _ok("kl_gaussian agrees with torch.distributions (and is 0 for identical Gaussians)")


def check_jsd(jsd) -> None:
    """jsd(p (..., K), q (..., K)) -> Jensen-Shannon divergence in nats (...)."""
    p, q = _categorical_pairs()
    got = _answer(jsd(p, q), "jsd", shape=(5,))
    m = Categorical(probs=(p + q) / 2)
    want = (kl_divergence(Categorical(probs=p), m) + kl_divergence(Categorical(probs=q), m)) / 2
    _close(got, want, "jsd", "JSD(p, q) = KL(p || m) / 2 + KL(q || m) / 2 with m = (p + q) / 2.")
    _close(_answer(jsd(q, p), "jsd", shape=(5,)), got, "jsd(q, p) vs jsd(p, q)",
           "the Jensen-Shannon divergence is symmetric")
    disjoint = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    _close(_answer(jsd(disjoint[:1], disjoint[1:]), "jsd", shape=(1,)), [math.log(2)],
           "jsd of two distributions with disjoint supports", "it reaches its maximum, log 2")
    _ok("jsd matches the mixture definition, is symmetric and reaches log 2 on disjoint supports")
