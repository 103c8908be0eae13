"""The check of 04's importance-weighted bound, on variational.py's small models: a posterior
equal to the prior with a decoder that ignores z (then the bound equals log p(x | z) exactly), a
proposal much wider than the prior, and log p(x) integrated over a 1-D latent."""

import math

import torch
from torch.distributions import Bernoulli, Normal

from .core import Exercise, ok
from .variational import _binary_batch, _confident_model, _TinyVAE


def _log_px_by_integration(x, vae, n=20001):
    """log p(x) = log of the integral of p(x|z) p(z) over a 1-D z, on a dense grid."""
    z = torch.linspace(-10, 10, n).unsqueeze(1)  # (n, 1)
    log_px_z = Bernoulli(logits=vae.decoder(z)).log_prob(x.unsqueeze(1)).flatten(2).sum(2)  # (B, n)
    log_joint = log_px_z + Normal(0.0, 1.0).log_prob(z).squeeze(1)  # (B, n)
    return torch.logsumexp(log_joint, 1) + math.log(20 / (n - 1))


def check_iwae_bound(iwae_bound) -> None:
    """iwae_bound(x, encoder, decoder, k) -> log (1/k) sum_j p(x, z_j) / q(z_j | x), shape (B,)."""
    hint = ("log w_j = log p(x|z_j) + log p(z_j) - log q(z_j|x) for k samples z_j of q(z|x); the "
            "bound is the log of the mean of the w_j, taken in log space (logsumexp, then - log k)")
    ex = Exercise(iwae_bound, "iwae_bound", hint)
    torch.manual_seed(5)
    underflow = ("exp(log w) is 0 when log w is very negative (here hundreds of nats): average "
                 "the weights in log space, torch.logsumexp(log_w, 0) - log k")
    with torch.no_grad():
        for pixels, latent, k in [((1, 2, 3), 1, 1), ((1, 2, 3), 3, 5), ((1, 28, 28), 32, 100)]:
            x = _binary_batch(6, pixels)
            encoder, decoder, log_px, seen = _confident_model(x, latent)
            got = []
            for _ in range(2):  # z: every sample decoded in each of two calls
                start = len(seen)
                got.append(ex.tensor(ex.call(x, encoder, decoder, k), (6,), f"iwae_bound(k={k})",
                                     like=[x], finite_hint=underflow))
                z = torch.cat([v.reshape(-1, latent) for v in seen[start:]])
            ex.compare(got[0], log_px, what=f"iwae_bound(k={k}) on {pixels} images with q = p(z) "
                       "and a decoder that ignores z", hint=f"then every log w_j is log p(x|z) "
                       f"and so is the bound; {underflow}", atol=1e-2, known=[
                           (log_px + math.log(k), "subtract log k: the bound is a mean of the "
                                                  "k weights, not their sum")])
            if k > 1:
                ex.fresh(seen[0], seen[-1], "samples z")
            if k * latent > 1000:
                ex.standard_normal(z, "your samples z of q(z|x) = N(0, I)")
        # q(z|x) much wider than p(z): log w spreads over thousands of nats across samples.
        x = _binary_batch(6, (1, 28, 28))
        _, decoder, log_px, _ = _confident_model(x, latent=2)
        wide = lambda x: (torch.zeros(len(x), 2), torch.full((len(x), 2), math.log(30.0)))
        got = ex.tensor(ex.call(x, wide, decoder, 50), (6,), "iwae_bound(k=50) with q = N(0, "
                        "30^2 I)", like=[x], finite_hint=underflow)
        if (got > log_px + 2 * math.log(30.0) + 1e-3).any():
            ex.fail("with q = N(0, 30^2 I) and p(z) = N(0, I), no weight p(z) / q(z) exceeds 30^2,"
                    " so the bound cannot exceed log p(x|z) + log 900", hint=hint)
        vae, x = _TinyVAE((1, 2, 3), latent=1), _binary_batch(6)
        log_px = _log_px_by_integration(x, vae)
        bounds = {k: ex.tensor(ex.call(x.repeat(200, 1, 1, 1), vae.encoder, vae.decoder, k),
                               (1200,), f"iwae_bound(k={k})").view(200, 6).mean(0)
                  for k in (1, 1000)}
    if (bounds[1] > log_px + 0.05).any():
        ex.fail("with k = 1 your bound lies above the true log p(x); a lower bound cannot",
                f"log p(x): {log_px.tolist()}", f"got:      {bounds[1].tolist()}")
    ex.compare(bounds[1000], log_px, what="iwae_bound with k = 1000 against log p(x) integrated "
               "numerically", atol=0.05)
    if not (bounds[1] < bounds[1000] - 0.01).any():
        ex.fail(f"k = 1000 should give a tighter (higher) bound than k = 1 ({bounds[1].tolist()})")
    ok("iwae_bound: stable, fresh and N(0, I) in its samples, below log p(x) for k = 1, and within "
       "0.05 nats of it for k = 1000")
