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
    for m, n in [(6, 1000), (4, 7), (10, 50), (6, 100_000)]:  # the last: the notebook's die
        samples = torch.randint(0, m - 1, (n,), generator=gen)  # the last face never shows up
        if m == 10:  # ... or, here, face 1 only
            samples = torch.where(samples == 1, m - 1, samples)
        got = ex.tensor(ex.call(samples, m), shape=(m,), like=[samples])
        counts = (samples[:, None] == torch.arange(m)).sum(0).double()  # (m,)
        ex.compare(got, counts / n, what=f"the MLE from {n} rolls of {m} faces", known=[
            (counts, "these are the counts N_k: divide by N to get probabilities"),
            (counts / m, "divide the counts by the number of samples N, not by m"),
            ((counts + 1) / (n + m), "that is add-one (Laplace) smoothing; the MLE is the plain "
                                     "relative frequency N_k / N")])
    ok("categorical_mle: the MLE is the vector of relative frequencies (m entries, sums to 1)")


def _markov_reference(x, p_first, p_next, parent=1):
    """log p(x) of a first-order Markov chain, one conditional Bernoulli at a time (in float64);
    `parent` = 0 conditions variable i on itself, a known mistake."""
    x, p_first, p_next = x.double(), p_first.double(), p_next.double()
    logp = Bernoulli(probs=p_first).log_prob(x[:, 0])
    for i in range(1, x.shape[1]):
        prev = x[:, i - parent].long()
        logp = logp + Bernoulli(probs=p_next[i - 1, prev]).log_prob(x[:, i])
    return logp


def check_markov_log_likelihood(markov_log_likelihood) -> None:
    """markov_log_likelihood(x (B, n) in {0,1}, p_first (), p_next (n-1, 2)) -> log p(x) (B,)."""
    ex = Exercise(markov_log_likelihood, "markov_log_likelihood",
                  "log p(x) = log P(x_1) + sum over i >= 2 of log P(x_i | x_(i-1)), where "
                  "P(x_i = 1 | x_(i-1) = b) is p_next[i-1, b] and P(x_i = 0 | ...) is one minus "
                  "it; sum over the variables of each sequence",
                  errors=[(IndexError, "out of bounds", "p_next has n - 1 rows: the transition "
                           "into variable i (0-based, i >= 1) is row i - 1")])
    gen = torch.Generator().manual_seed(2)
    underflow = ("a product of n probabilities underflows to 0 for n = 784 (MNIST's pixels): add "
                 "the log-probabilities instead of multiplying probabilities")
    for n, batch in [(4, 16), (30, 64), (5, 1), (784, 8)]:  # the last: the notebook's images
        p_first = torch.rand((), generator=gen) * 0.8 + 0.1
        p_next = torch.rand(n - 1, 2, generator=gen) * 0.8 + 0.1
        if n == 784:  # smoothed counts of pixels that are almost never (or always) on
            p_next[::7, 0], p_next[3::7, 1] = 1e-6, 1 - 1e-6
        x = torch.bernoulli(torch.full((batch, n), 0.5), generator=gen)
        got = ex.tensor(ex.call(x, p_first, p_next), shape=(batch,), like=[x],
                        finite_hint=underflow if n > 100 else None)
        rows = torch.arange(n - 1)
        ones_only = (x * torch.cat([p_first.expand(batch, 1), p_next[
            rows, x[:, :-1].long()]], 1).log()).sum(1)
        ex.compare(got, _markov_reference(x, p_first, p_next), what=f"log p(x) of {batch} "
                   f"sequence(s) of {n} variables", known=[
            (ones_only, "a variable that is 0 has probability 1 - P(x_i = 1 | ...): both cases "
                        "count"),
            (_markov_reference(x, p_first, p_next.flip(1)), "column b of p_next is the case "
             "x_(i-1) = b: index it with the previous value itself"),
            (_markov_reference(x, p_first, p_next, parent=0), "the parent of variable i is the "
             "variable before it, x_(i-1), not x_i itself")])
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
    for n, k in [(1, 0), (5, 0), (5, 1), (6, 2), (6, 5), (6, 9), (10, 3), (784, 1),
                 (784, 8), (784, 20), (64, 40)]:  # the notebook's question, and counts beyond
        # what float32 (2^24) and int32 (2^31) hold exactly
        # The shapes of the real tables: variable i has one P(X_i = 1 | parents) per
        # assignment of its min(i, k) binary parents, a (2, 2, ..., 2) table.
        want = sum(torch.Size((2,) * min(i, k)).numel() for i in range(n))
        got = ex.call(n, k)
        if isinstance(got, torch.Tensor):
            ex.fail(f"for n = {n}, k = {k} it returned a tensor ({got.dtype}); expected a Python "
                    "int", hint="count with Python ints (2 ** k, sum(...)): they never overflow "
                    "or round, where an int32 tensor overflows past 2^31 and float32 past 2^24")
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
