"""Checks for the 01_distributions exercises: MLE by counting, parameter counts, Markov chains."""

import itertools

import torch
from torch.distributions import Bernoulli

from .core import ExerciseError, answer, close, ok


def check_categorical_mle(categorical_mle) -> None:
    """categorical_mle(samples (N,) int64 in [0, m), m) -> probabilities (m,)."""
    gen = torch.Generator().manual_seed(1)
    for m, n in [(6, 1000), (4, 7), (10, 50)]:
        samples = torch.randint(0, m - 1, (n,), generator=gen)  # the last face never shows up
        got = answer(categorical_mle(samples, m), "categorical_mle", shape=(m,))
        want = torch.tensor([sum(int(s) == k for s in samples) / n for k in range(m)])
        close(got, want, "categorical_mle", "the MLE of a categorical is count(k) / N for every "
               "face k, including faces that never appear (torch.bincount(..., minlength=m))")
    ok("categorical_mle: the MLE is the vector of relative frequencies (m entries, sums to 1)")


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
        got = answer(markov_log_likelihood(x, p_first, p_next), "markov_log_likelihood",
                      shape=(batch,))
        close(got, _markov_reference(x, p_first, p_next), "markov_log_likelihood",
               "log p(x) = log P(x_1) + sum_i log P(x_i | x_(i-1)); P(x_i = 1 | x_(i-1) = b) is "
               "p_next[i-1, b], and P(x_i = 0 | ...) is one minus it. Sum over pixels, not images.")
    every = torch.tensor(list(itertools.product([0.0, 1.0], repeat=4)))  # all 16 sequences
    total = markov_log_likelihood(every, torch.tensor(0.3), torch.rand(3, 2, generator=gen))
    close(answer(total, "markov_log_likelihood", shape=(16,)).exp().sum(), 1.0,
           "the probabilities of all 2^4 sequences", "they must add up to 1")
    ok("markov_log_likelihood matches the conditional-by-conditional reference and sums to 1")


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
    ok("num_params: independent (k=0) n, Markov (k=1) 2n-1, full chain rule 2^n-1, and between")
