"""Checks for the 01_distributions exercises: MLE by counting, parameter counts, Markov chains."""

import itertools

import torch
from torch.distributions import Bernoulli

from .core import Exercise, ok


def check_categorical_mle(categorical_mle) -> None:
    """categorical_mle(samples (N,) int64 in [0, m), m) -> probabilities (m,)."""
    ex = Exercise(categorical_mle, "categorical_mle", "count every face k (torch.bincount with "
                  "minlength=m keeps the faces that never appear) and divide by N")
    gen = torch.Generator().manual_seed(1)
    for m, n in [(6, 1000), (4, 7), (10, 50)]:
        samples = torch.randint(0, m - 1, (n,), generator=gen)  # the last face never shows up
        got = ex.tensor(ex.call(samples, m), shape=(m,), like=[samples])
        counts = torch.tensor([sum(int(s) == k for s in samples) for k in range(m)]).double()
        ex.compare(got, counts / n, known=[
            (counts, "these are the counts N_k: divide by N to get probabilities"),
            (counts / m, "divide the counts by the number of samples N, not by m")])
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
    ex = Exercise(markov_log_likelihood, "markov_log_likelihood",
                  "log p(x) = log P(x_1) + sum over i >= 2 of log P(x_i | x_(i-1)), where "
                  "P(x_i = 1 | x_(i-1) = b) is p_next[i-1, b] and P(x_i = 0 | ...) is one minus "
                  "it; sum over the variables of each sequence",
                  errors={IndexError: "p_next has n - 1 rows: the transition into variable i "
                                      "(0-based, i >= 1) is row i - 1"})
    gen = torch.Generator().manual_seed(2)
    for n, batch in [(4, 16), (30, 64)]:
        p_first = torch.rand((), generator=gen) * 0.8 + 0.1
        p_next = torch.rand(n - 1, 2, generator=gen) * 0.8 + 0.1
        x = torch.bernoulli(torch.full((batch, n), 0.5), generator=gen)
        got = ex.tensor(ex.call(x, p_first, p_next), shape=(batch,), like=[x])
        ones_only = (x * torch.cat([p_first.expand(batch, 1), p_next[
            torch.arange(n - 1), x[:, :-1].long()]], 1).log()).sum(1)
        ex.compare(got, _markov_reference(x, p_first, p_next), known=[
            (ones_only, "a variable that is 0 has probability 1 - P(x_i = 1 | ...): both cases "
                        "count")])
    every = torch.tensor(list(itertools.product([0.0, 1.0], repeat=4)))  # all 16 sequences
    total = ex.tensor(ex.call(every, torch.tensor(0.3), torch.rand(3, 2, generator=gen)),
                      shape=(16,))
    ex.compare(total.exp().sum(), 1.0, what="the sum of the probabilities of all 2^4 sequences",
               hint="they must add up to 1: each variable contributes P(x_i = 1) or 1 - P(x_i = 1)")
    ok("markov_log_likelihood matches the conditional-by-conditional reference and sums to 1")


def check_markov_order_k_params(num_params) -> None:
    """num_params(n, k) -> free parameters of an order-k Markov chain over n binary variables."""
    ex = Exercise(num_params, "num_params", "variable i (0-based) has min(i, k) parents, so its "
                  "table has 2^min(i, k) entries; k = 0 gives n, k = 1 gives 2n - 1 and "
                  "k >= n - 1 gives 2^n - 1")
    for n, k in [(1, 0), (5, 0), (5, 1), (6, 2), (6, 5), (6, 9), (10, 3), (784, 1)]:
        # Enumerate real tables: variable i has one P(X_i = 1 | parents) per parent assignment.
        tables = [torch.empty((2,) * min(i, k)) for i in range(min(n, 12))]
        want = sum(t.numel() for t in tables) + (n - len(tables)) * 2 ** k
        got = ex.call(n, k)
        if isinstance(got, torch.Tensor) and got.numel() == 1 and not got.is_floating_point():
            got = int(got)
        if isinstance(got, float) and got == want:
            ex.fail(f"for n = {n}, k = {k} it returned {got!r}, a float; a count is a whole number",
                    hint="return an int: `/` always makes a float, while +, * and ** of ints "
                         "stay ints")
        if got is None:
            ex.fail(f"for n = {n}, k = {k} it returned None: did you forget `return`?", hint="")
        if isinstance(got, bool) or not isinstance(got, int | float):
            ex.fail(f"for n = {n}, k = {k} it returned a {type(got).__name__}; expected an int",
                    hint="")
        if got != want:
            ex.fail(f"for n = {n}, k = {k} it returned {got!r}; expected {want}")
    ok("num_params: independent (k=0) n, Markov (k=1) 2n-1, full chain rule 2^n-1, and between")
