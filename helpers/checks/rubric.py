"""The rubric's checks that every exercise check shares (CONTRIBUTING, "Exercise checks"): (b)
gradients against the reference's, (d) fresh draws from the right distribution. `Exercise` has
them as methods."""

import math

import torch

from .messages import FRESH, NO_GRAD


class Rubric:
    """Mixed into `core.Exercise`, whose `fail`, `guard` and `compare` these use."""

    def gradients(self, out: torch.Tensor, inputs: dict, reference, atol: float = 1e-5,
                  rtol: float = 1e-4) -> None:
        """Rubric (b): the gradient of the student's `out` with respect to each tensor in `inputs`
        (named as the message says it) must equal that of `reference(*inputs.values())`, run in
        float64; both are weighted by the same fixed random weights, so that a gradient sent to
        the wrong element shows."""
        names = list(inputs)
        if not out.requires_grad:
            self.fail(f"no gradient reaches {' or '.join(names)} through your result",
                      hint=NO_GRAD)
        weight = torch.rand(out.shape, generator=torch.Generator().manual_seed(0)) + 0.5
        leaves = {n: t.detach().cpu().double().requires_grad_() for n, t in inputs.items()}
        want = torch.autograd.grad((reference(*leaves.values()) * weight.double()).sum(),
                                   list(leaves.values()))  # (a scalar: no grad_outputs, whose
        with self.guard("differentiating your result"):  # first use imports for a second)
            grads = torch.autograd.grad((out * weight.to(out.dtype).to(out.device)).sum(),
                                        [inputs[n] for n in names], allow_unused=True)
        for name, grad, reference_grad in zip(names, grads, want, strict=True):
            if grad is None or (not grad.abs().sum() and reference_grad.abs().sum()):
                self.fail(f"no gradient reaches {name} through your result", hint=NO_GRAD)
            if not torch.isfinite(grad).all():
                self.fail(f"the gradient with respect to {name} has NaN or infinite values",
                          hint="a step on the way overflows or divides by 0 (sqrt(0), log(0), "
                               "x / 0): keep it in log space, e.g. exp(log_sigma) rather than "
                               "sqrt(exp(2 * log_sigma))")
            scale = float(reference_grad.abs().max())  # float32 errors scale with the largest
            near = float((grad.detach().cpu().double() - reference_grad).abs().max()) < 0.01 * scale
            self.compare(grad, reference_grad, what=f"the gradient with respect to {name}",
                         atol=atol + rtol * scale, rtol=rtol, hint=(
                             "close, but not equal: a step in lower precision (.half()) or a "
                             "clamp on the way?") if near else ("the value is right but its "
                         "gradient is not: part of the computation is cut from the graph "
                         "(.detach(), .item(), .data, torch.no_grad()) or replaced by a constant"))

    def fresh(self, first, second, what: str) -> None:
        """Rubric (d): two calls of a random function must not return the same draw."""
        if torch.equal(torch.as_tensor(first), torch.as_tensor(second)):
            self.fail(f"two calls returned the same {what}", hint=FRESH)

    def independent(self, eps: torch.Tensor, what: str) -> None:
        """Rubric (d): the draws in `eps` (N, ...) are not repeated, nor correlated between the
        elements of one example or between examples."""
        e = _rows(eps)
        copies = len(e) - len(torch.unique(e.abs(), dim=0))  # copies, also sign-flipped ones
        if copies > 0.01 * len(e):
            self.fail(f"{what} repeats the same draws: {copies} of its {len(e)} rows are copies "
                      "(or copies with the sign flipped)",
                      hint=_ONE_PER_ELEMENT)
        for axis, pairs in (("the elements of one example", (e[:, :-1], e[:, 1:])),
                            ("different examples", (e[:-1], e[1:]))):
            a, b = (v.flatten() for v in pairs)
            if a.numel() > 100 and abs(float(torch.corrcoef(torch.stack([a, b]))[0, 1])) > 0.1:
                self.fail(f"{what} is correlated between {axis}: one draw is shared",
                          hint=_ONE_PER_ELEMENT)

    def standard_normal(self, eps: torch.Tensor, what: str) -> None:
        """Rubric (d): `eps` (N, ...) holds independent N(0, 1) draws: no copies or correlation,
        then mean, spread and both tails."""
        self.independent(eps, what)
        e = _rows(eps)
        n = e.numel()
        exact = 0.01 / math.sqrt(n)  # what chance gives with probability about 1e-4
        if abs(float(e.mean())) < exact and abs(float(e.std()) - 1) < exact:
            self.fail(f"{what} has exactly mean 0 and std 1: it was standardised, which ties its "
                      "elements together (for two elements, always +-0.71)",
                      hint="use the draws of torch.randn_like as they come")
        tail = [float((e.abs() > k).double().mean()) for k in (2.0, 3.0)]
        expected = [math.erfc(k / math.sqrt(2)) for k in (2.0, 3.0)]  # 0.0455, 0.0027
        if abs(float(e.mean())) > 6 / math.sqrt(n) or abs(float(e.std()) - 1) > 0.05:
            self.fail(f"{what} has mean {float(e.mean()):.3f} and std {float(e.std()):.3f}; "
                      "a standard normal has 0 and 1", hint="draw it with torch.randn_like")
        if any(not 0.6 * x < t < 1.6 * x for t, x in zip(tail, expected, strict=True)):
            self.fail(f"{what} is not standard normal in its tails: {tail[0]:.4f} and {tail[1]:.4f}"
                      f" of it lie beyond 2 and 3 sigma, not {expected[0]:.4f} and "
                      f"{expected[1]:.4f}", hint="draw it with torch.randn_like, unchanged: no "
                      "clamping, no rescaled uniform noise")


_ONE_PER_ELEMENT = ("draw one independent value per element, of the full shape: "
                    "torch.randn_like(mu), not one per row or one for the batch")


def _rows(eps: torch.Tensor) -> torch.Tensor:
    e = eps.detach().cpu().double()
    return e.flatten(1) if e.dim() > 1 else e[:, None]  # (N, M)
