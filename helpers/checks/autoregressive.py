"""Checks for the 02_autoregressive exercises: MADE masks, the Bernoulli NLL, the sampling loop.

The references: a dependency test through autograd, torch.distributions, and exact probabilities
of a 3-pixel autoregressive model enumerated over all 8 images.
"""

import itertools

import torch
import torch.nn.functional as F
from torch.distributions import Bernoulli

from .core import UNSTABLE, Exercise, ok


def _made_jacobian(mask_hidden, mask_out, num_inputs, hidden):
    """d output / d input of a one-hidden-layer MADE with random weights and the given masks."""
    gen = torch.Generator().manual_seed(0)
    w1 = torch.randn(hidden, num_inputs, generator=gen, dtype=torch.float64)
    w2 = torch.randn(num_inputs, hidden, generator=gen, dtype=torch.float64)
    x = torch.rand(num_inputs, generator=gen, dtype=torch.float64)
    net = lambda v: F.linear(torch.tanh(F.linear(v, w1 * mask_hidden)), w2 * mask_out)
    return torch.autograd.functional.jacobian(net, x)  # (outputs, inputs)


def check_made_masks(made_masks) -> None:
    """made_masks(input_degrees (D,), hidden_degrees (H,)) -> (mask_hidden (H, D), mask_out (D, H))
    """
    rule = ("hidden unit k may see input j when m(k) >= m(j); output d may see hidden unit k "
            "only when m(d) > m(k), strictly")
    ex = Exercise(made_masks, "made_masks", rule)
    gen = torch.Generator().manual_seed(1)
    for num_inputs, hidden in [(5, 12), (16, 40)]:
        order = torch.randperm(num_inputs, generator=gen)
        input_degrees = order.argsort() + 1  # variable order[k] is the (k+1)-th in the order
        hidden_degrees = torch.randint(1, num_inputs, (hidden,), generator=gen)
        out = ex.parts(ex.call(input_degrees, hidden_degrees), ("mask_hidden", "mask_out"))
        like = [input_degrees]
        mask_hidden = ex.tensor(out[0], (hidden, num_inputs), "mask_hidden", False, like)
        mask_out = ex.tensor(out[1], (num_inputs, hidden), "mask_out", False, like)
        jac = _made_jacobian(mask_hidden.double(), mask_out.double(), num_inputs, hidden)
        allowed = input_degrees[:, None] > input_degrees[None, :]  # output d may see input j
        leaks = (jac.abs() > 0) & ~allowed
        if leaks.any():
            d, j = (int(i) for i in leaks.nonzero()[0])
            ex.fail(f"output {d} (degree {int(input_degrees[d])}) depends on input {j} (degree "
                    f"{int(input_degrees[j])})", "the model would see the pixel it predicts or a "
                    "later one")
        want = (torch.tensor([[int(k) >= int(j) for j in input_degrees] for k in hidden_degrees]),
                torch.tensor([[int(d) > int(k) for k in hidden_degrees] for d in input_degrees]))
        for got, ref, name in zip((mask_hidden, mask_out), want, ("mask_hidden", "mask_out"),
                                  strict=True):
            if not torch.equal(got.bool(), ref):
                ex.fail(f"{name} is safe but drops {int((ref & ~got.bool()).sum())} connections "
                        "that MADE allows", hint="use >= for the hidden layer and > for the "
                        "output layer")
    ok("made_masks: no output sees its own or a later input, and every allowed connection is kept")


def check_bernoulli_nll(bernoulli_nll) -> None:
    """bernoulli_nll(logits (B, ...), x (B, ...) in {0, 1}) -> -log p(x) in nats, (B,)."""
    ex = Exercise(bernoulli_nll, "bernoulli_nll", "-log p(x) of one pixel is the binary "
                  "cross-entropy between its logit and x; torch has a stable form that takes "
                  "logits. Sum over all pixels of each image")
    gen = torch.Generator().manual_seed(2)
    logits = 2 * torch.randn(8, 1, 5, 5, generator=gen)
    x = torch.bernoulli(torch.full((8, 1, 5, 5), 0.5), generator=gen)
    want = -Bernoulli(logits=logits.double()).log_prob(x.double()).flatten(1).sum(1)
    known = [(-want, "that is log p(x); the NLL is its negative"),
             (want / 25, "sum over the pixels of each image, not the mean")]
    ex.compare(ex.tensor(ex.call(logits, x), (8,), like=[logits, x], known=known), want,
               known=known, rtol=1e-5)
    logits[0, 0, 0, :2] = torch.tensor([60.0, -60.0])  # confident: sigmoid rounds to 1 and 0
    x[0, 0, 0, :2] = torch.tensor([0.0, 1.0])  # ... and wrong
    want = -Bernoulli(logits=logits.double()).log_prob(x.double()).flatten(1).sum(1)
    got = ex.tensor(ex.call(logits, x), (8,), like=[logits, x], finite_hint=UNSTABLE)
    ex.compare(got, want, what="bernoulli_nll with a confident, wrong logit (+-60)", rtol=1e-5,
               hint=UNSTABLE)
    ok("bernoulli_nll agrees with torch.distributions.Bernoulli, also for confident wrong logits")


def _three_pixel_model():
    """An autoregressive model over 3 pixels in the order (2, 0, 1), and its exact joint."""
    order = [2, 0, 1]

    def logits_fn(x):  # (B, 3) -> (B, 3); logit i may use only the pixels before i in the order
        l2 = torch.full_like(x[:, 2], 0.8)
        l0 = -1.5 + 3.0 * x[:, 2]
        l1 = 1.0 - 2.0 * x[:, 2] - 1.5 * x[:, 0] + 2.5 * x[:, 2] * x[:, 0]
        return torch.stack([l0, l1, l2], 1)

    patterns = torch.tensor(list(itertools.product([0.0, 1.0], repeat=3)))  # (8, 3)
    probs = Bernoulli(logits=logits_fn(patterns)).log_prob(patterns).sum(1).exp()  # (8,)
    return order, logits_fn, patterns, probs


def check_sample_autoregressive(sample_autoregressive) -> None:
    """sample_autoregressive(logits_fn, num_samples, num_pixels, order) -> (N, num_pixels)."""
    ex = Exercise(sample_autoregressive, "sample_autoregressive", "visit the pixels in `order`; "
                  "for each, call logits_fn on the partial images and draw that pixel from "
                  "Bernoulli(sigmoid(logit)); never draw all pixels from one call")
    order, logits_fn, patterns, probs = _three_pixel_model()
    calls = []
    counted = lambda x: calls.append(1) or logits_fn(x.float())
    torch.manual_seed(3)
    samples = ex.tensor(ex.call(counted, 40_000, 3, order), shape=(40_000, 3))
    if not ((samples == 0) | (samples == 1)).all():
        ex.fail("the samples must be 0 or 1", f"got: {samples.unique()[:6].tolist()}",
                hint="draw each pixel with torch.bernoulli(probabilities)")
    codes = (samples * torch.tensor([4.0, 2.0, 1.0])).sum(1).long()  # the same order as patterns
    freq = torch.bincount(codes, minlength=8).double() / len(samples)
    ex.compare(freq, probs, what="the frequencies of the 8 possible images", atol=0.012)
    if len(calls) != 3:
        ex.fail(f"logits_fn was called {len(calls)} times for 3 pixels", hint="autoregressive "
                "sampling needs one call per pixel: the logit of a pixel depends on the pixels "
                "drawn before it")
    ok("sample_autoregressive draws from the exact joint, one pixel per network call")
