"""Checks for the 02_autoregressive exercises: NADE's logits, MADE masks, the Bernoulli NLL, the
sampling loop.

The references: which outputs a one-hidden-layer net with the masks can connect to which inputs,
torch.distributions (value and gradient), and the exact probabilities of small autoregressive
models enumerated over all their images.
"""

import itertools

import torch
from torch.distributions import Bernoulli

from .core import UNSTABLE, Exercise, ok

_MASK_RULE = ("hidden unit k may see input j when m(k) >= m(j) (>=); output d may see hidden "
              "unit k only when m(d) > m(k), strictly (>)")


def _mask_differences(ex, got, want, name, rows, cols, row_degrees, col_degrees) -> None:
    """Fail with the first connection that `got` adds to or drops from the MADE mask `want`."""
    for found, verb in ((got & ~want, "allows"), (want & ~got, "drops")):
        if found.any():
            r, c = (int(i) for i in found.nonzero()[0])
            ex.fail(f"{name} {verb} {int(found.sum())} connection(s) that MADE "
                    f"{'forbids' if verb == 'allows' else 'keeps'}", f"for example {rows} {r} "
                    f"(degree {int(row_degrees[r])}) and {cols} {c} (degree "
                    f"{int(col_degrees[c])})", hint=_MASK_RULE)


def check_made_masks(made_masks) -> None:
    """made_masks(input_degrees (D,), hidden_degrees (H,)) -> (mask_hidden (H, D), mask_out (D, H))
    """
    ex = Exercise(made_masks, "made_masks", _MASK_RULE)
    gen = torch.Generator().manual_seed(1)
    for num_inputs, hidden in [(5, 12), (16, 40), (3, 2), (784, 500)]:  # the last: the notebook's
        order = torch.randperm(num_inputs, generator=gen)
        input_degrees = order.argsort() + 1  # variable order[k] is the (k+1)-th in the order
        hidden_degrees = torch.randint(1, num_inputs, (hidden,), generator=gen)
        out = ex.parts(ex.call(input_degrees, hidden_degrees), ("mask_hidden", "mask_out"))
        like = [input_degrees]
        mask_hidden = ex.tensor(out[0], (hidden, num_inputs), "mask_hidden", like=like,
                                binary=True).bool()  # floats: they multiply float weights
        mask_out = ex.tensor(out[1], (num_inputs, hidden), "mask_out", like=like,
                             binary=True).bool()
        for mask, name in zip(out, ("mask_hidden", "mask_out"), strict=True):
            if mask.dtype != torch.float32:
                ex.fail(f"{name} has dtype {mask.dtype}; the float32 weights it multiplies need "
                        "float32", hint=".float() turns a comparison into a 0/1 float32 mask")
        paths = (mask_out.double() @ mask_hidden.double()) > 0  # (D, D): output d reaches input j
        allowed = input_degrees[:, None] > input_degrees[None, :]  # output d may see input j
        leaks = paths & ~allowed
        if leaks.any():
            d, j = (int(i) for i in leaks.nonzero()[0])
            ex.fail(f"output {d} (degree {int(input_degrees[d])}) depends on input {j} (degree "
                    f"{int(input_degrees[j])})", "the model would see the pixel it predicts or a "
                    "later one")
        _mask_differences(ex, mask_hidden, torch.ge(hidden_degrees.view(-1, 1),
                                                    input_degrees.view(1, -1)),
                          "mask_hidden", "hidden unit", "input", hidden_degrees, input_degrees)
        _mask_differences(ex, mask_out, torch.gt(input_degrees.view(-1, 1),
                                                 hidden_degrees.view(1, -1)),
                          "mask_out", "output", "hidden unit", input_degrees, hidden_degrees)
    ok("made_masks: no output sees its own or a later input, and every allowed connection is kept")


def _nll(logits, x):
    return -Bernoulli(logits=logits.double()).log_prob(x.double()).flatten(1).sum(1)


def check_bernoulli_nll(bernoulli_nll) -> None:
    """bernoulli_nll(logits (B, ...), x (B, ...) in {0, 1}) -> -log p(x) in nats, (B,)."""
    ex = Exercise(bernoulli_nll, "bernoulli_nll", "-log p(x) of one pixel is the binary "
                  "cross-entropy between its logit and x; torch has a stable form that takes "
                  "logits. Sum over all pixels of each image")
    gen = torch.Generator().manual_seed(2)
    for shape in [(8, 1, 5, 5), (6, 7), (3, 2, 4, 4), (4, 1, 28, 28)]:  # the last: the notebook's
        logits = (2 * torch.randn(shape, generator=gen)).requires_grad_()
        x = torch.bernoulli(torch.full(shape, 0.5), generator=gen)
        confident = len(shape) == 4 and shape[-1] == 28
        if confident:  # a trained model's logits: sure, sometimes wrong, beyond +-100
            with torch.no_grad():
                logits[:, 0, 0, :4] = torch.tensor([120.0, -120.0, 120.0, -120.0])
            x[:, 0, 0, :4] = torch.tensor([0.0, 1.0, 1.0, 0.0])  # wrong, wrong, right, right
        want = _nll(logits, x)
        pixels = x[0].numel()
        known = [(-want, "that is log p(x); the NLL is its negative"),
                 (want / pixels, "sum over the pixels of each image, not the mean")]
        got = ex.call(logits, x)
        value = ex.tensor(got, (shape[0],), like=[logits, x], known=known, grad=True,
                          finite_hint=UNSTABLE if confident else None)
        ex.compare(value, want, rtol=1e-5, known=known, hint=UNSTABLE if confident else None,
                   what=f"bernoulli_nll on {tuple(shape)}" + (" with confident logits (+-120)"
                                                              if confident else ""))
        ex.gradients(got, {"logits": logits}, lambda logits, x=x: _nll(logits, x),
                     atol=1e-4)
    ok("bernoulli_nll agrees with torch.distributions.Bernoulli in value and gradient, on any "
       "image shape and for confident logits")


def _model(order, seed):
    """An autoregressive model over len(order) pixels visited in `order`: each logit is a bias
    plus a weighted sum of the pixels before it in the order; returns logits_fn and the exact
    probability of every image (in itertools.product order)."""
    gen = torch.Generator().manual_seed(seed)
    n = len(order)
    before = torch.zeros(n, n)
    for a, i in enumerate(order):
        before[i, list(order[:a])] = 1.0  # pixel i sees the pixels visited before it
    weight, bias = 2.5 * torch.randn(n, n, generator=gen) * before, torch.randn(n, generator=gen)

    def logits_fn(x):  # (B, n) -> (B, n), on x's device (the notebook's answer uses rt.device)
        return bias.to(x.device) + x.float() @ weight.T.to(x.device)

    patterns = torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)))  # (2^n, n)
    probs = Bernoulli(logits=logits_fn(patterns)).log_prob(patterns).sum(1).exp()  # (2^n,)
    return logits_fn, probs


def check_sample_autoregressive(sample_autoregressive) -> None:
    """sample_autoregressive(logits_fn, num_samples, num_pixels, order) -> (N, num_pixels)."""
    ex = Exercise(sample_autoregressive, "sample_autoregressive", "visit the pixels in `order`; "
                  "for each, call logits_fn on the partial images and draw that pixel from "
                  "Bernoulli(sigmoid(logit)); never draw all pixels from one call")
    torch.manual_seed(3)
    for order, seed in (([2, 0, 1], 4), ([3, 0, 4, 1, 2], 5)):
        n = len(order)
        logits_fn, probs = _model(order, seed)
        calls = []
        counted = lambda x, f=logits_fn, calls=calls: calls.append(1) or f(x)  # noqa: E731
        draws = [ex.tensor(ex.call(counted, 40_000, n, order), shape=(40_000, n), binary=True)
                 for _ in range(2)]
        codes = (draws[0] * 2.0 ** torch.arange(n - 1, -1, -1)).sum(1).long()
        freq = torch.bincount(codes, minlength=2**n).double() / len(codes)
        ex.compare(freq, probs, what=f"the frequencies of the {2**n} possible images of "
                   f"{n} pixels", atol=0.012)
        ex.fresh(*draws, "samples")
        first, second = draws[0][:20_000], draws[0][20_000:]  # two halves of one batch
        spread = (first - draws[0].mean(0)) * (second - draws[0].mean(0))
        if (first.mean(0) - second.mean(0)).abs().max() > 0.03 or abs(
                float(spread.mean() / draws[0].var(0).mean())) > 0.05:
            ex.fail("the samples of one batch are not independent of each other",
                    hint="draw every sample's pixel with its own randomness (torch.bernoulli of "
                         "the probabilities): no uniforms shared, paired or sorted in a batch")
        if len(calls) != 2 * n:
            ex.fail(f"logits_fn was called {len(calls) // 2} times for {n} pixels",
                    hint="autoregressive sampling needs one call per pixel: the logit of a "
                         "pixel depends on the pixels drawn before it")
    order = torch.randperm(784).tolist()  # the notebook's size, with confident logits
    sure = lambda x: torch.where(torch.arange(784, device=x.device) % 2 == 0, 120.0,
                                 -120.0).expand(len(x), 784)
    images = ex.tensor(ex.call(sure, 3, 784, order), shape=(3, 784), binary=True)
    ex.compare(images[0], torch.arange(784) % 2 == 0, what="28 x 28 samples of a model sure "
               "of every pixel (logits +-120)")
    ok("sample_autoregressive draws from the exact joint, one pixel per network call, afresh "
       "each time")


def _nade_reference(x, W, c, V, b):
    """NADE's logits computed one conditional at a time, from scratch: the O(n^2 d) way."""
    logits = []
    for i in range(x.shape[1]):
        h = torch.sigmoid(c + x[:, :i] @ W[:, :i].T)  # (B, d): reads the pixels before i only
        logits.append(b[i] + h @ V[i])
    return torch.stack(logits, 1)  # (B, n)


def check_nade_logits(nade_logits) -> None:
    """nade_logits(x (B, n), W (d, n), c (d,), V (n, d), b (n,)) -> logits (B, n)."""
    ex = Exercise(nade_logits, "nade_logits", "the running activation a_i = c + sum over j < i "
                  "of W[:, j] x_j (a cumulative sum over the pixels, without pixel i itself); "
                  "logit_i = b_i + V_i . sigmoid(a_i)", errors=[(RuntimeError, "must match the "
                  "size", "x is (B, D), W (d, D), V (D, d): the running activation is (B, D, d), "
                  "and each logit sums over the last dimension, the hidden units")])
    gen = torch.Generator().manual_seed(6)
    for batch, n, d in [(5, 6, 3), (3, 10, 7), (2, 784, 50)]:  # the last: the notebook's images
        x = torch.bernoulli(torch.full((batch, n), 0.5), generator=gen)
        W, V = (torch.randn(d, n, generator=gen), torch.randn(n, d, generator=gen))
        c, b = torch.randn(d, generator=gen), torch.randn(n, generator=gen)
        params = {"W": W, "c": c, "V": V, "b": b}
        for p in params.values():
            p.requires_grad_()
        got = ex.call(x, W, c, V, b)
        value = ex.tensor(got, (batch, n), like=[x, W], grad=True)
        if n == 6:  # logit i may depend on the pixels before i only
            x_in = x[:1].clone().requires_grad_()
            one = ex.call(x_in, *(p.detach() for p in params.values()))
            ex.tensor(one, (1, n), like=[x, W])
            with ex.guard("differentiating your logits with respect to x"):
                rows = [torch.autograd.grad(one[0, i], x_in, retain_graph=True,
                                            allow_unused=True)[0] if one.requires_grad else None
                        for i in range(n)]
            jac = torch.stack([torch.zeros(1, n) if r is None else r for r in rows])[:, 0]
            seen = jac.abs() > 1e-3 * jac.abs().max()  # rounding aside, (n, n)
            seen &= ~torch.ones(n, n, dtype=torch.bool).tril(-1)
            if seen.any():
                i, j = (int(k) for k in seen.nonzero()[0])
                ex.fail(f"logit {i} depends on pixel {j}: it may read the pixels before it only",
                        hint="exclude pixel i from its own running activation: the sum runs "
                             "over j < i (cumsum minus the pixel's own term, or shifted by one)")
        want = _nade_reference(x.double(), *(p.detach().double() for p in params.values()))
        ex.compare(value, want, what=f"the logits of {batch} images of {n} pixels, {d} hidden "
                   "units", rtol=1e-4, atol=1e-4)
        ex.gradients(got, params, lambda *p, x=x: _nade_reference(x.double(), *p), atol=1e-4)
    ok("nade_logits: every conditional from the running activation, reading only earlier pixels,"
       " with the reference's gradients")
