"""Checks for the 04_vae_elbo exercises: reparameterised sampling, the Gaussian KL, ELBO and IWAE.

The references do not reuse the student's randomness: sample moments, torch.distributions, a
deterministic limit (sigma -> 0) and log p(x) integrated numerically over a 1-D latent.
"""

import math

import torch
from torch import nn
from torch.distributions import Bernoulli, Normal, kl_divergence

from .core import ExerciseError, answer, close, ok


def check_reparameterize(reparameterize) -> None:
    """reparameterize(mu, log_sigma) -> z ~ N(mu, sigma^2), differentiable in mu and log_sigma."""
    torch.manual_seed(0)
    mu = torch.tensor([0.0, 2.0, -1.0]).repeat(20_000, 1).requires_grad_()  # (20000, 3)
    log_sigma = torch.tensor([0.0, -1.0, 1.0]).repeat(20_000, 1).requires_grad_()
    z = reparameterize(mu, log_sigma)
    if not isinstance(z, torch.Tensor) or z.grad_fn is None:
        raise ExerciseError("no gradient reaches mu and log_sigma through your sample: build it as "
                            "mu + sigma * eps with eps = torch.randn_like(mu), rather than "
                            "sampling from a distribution with .sample() or torch.normal")
    z_val = answer(z, "reparameterize", shape=mu.shape)
    close(z_val.mean(0), [0.0, 2.0, -1.0], "the mean of your samples", "z should have mean mu",
          atol=0.06)
    close(z_val.std(0), [1.0, math.exp(-1), math.e], "the std of your samples",
          "the std should be sigma = exp(log_sigma), not log_sigma or sigma^2", atol=0.06)
    z.sum().backward()
    close(mu.grad, torch.ones_like(mu), "dz/dmu", "z = mu + sigma * eps, so dz/dmu = 1")
    close(log_sigma.grad, (z_val - mu.detach()), "dz/dlog_sigma",
          "dz/dlog_sigma = sigma * eps = z - mu")
    ok("reparameterize: samples have mean mu and std exp(log_sigma), and gradients reach both")


def check_kl_standard_normal(kl_to_standard_normal) -> None:
    """kl_to_standard_normal(mu (B, D), log_sigma (B, D)) -> KL(N(mu, sigma^2) || N(0, I)) (B,)."""
    gen = torch.Generator().manual_seed(1)
    mu, log_sigma = torch.randn(6, 4, generator=gen), torch.randn(6, 4, generator=gen)
    mu[0], log_sigma[0] = 0.0, 0.0  # KL = 0 exactly at the prior
    got = answer(kl_to_standard_normal(mu, log_sigma), "kl_to_standard_normal", shape=(6,))
    want = kl_divergence(Normal(mu, log_sigma.exp()), Normal(0.0, 1.0)).sum(-1)
    close(got, want, "kl_to_standard_normal", "0.5 * (mu^2 + sigma^2 - 1 - log sigma^2), summed "
          "over the latent dimensions (not averaged); sigma^2 = exp(2 log_sigma)")
    ok("kl_to_standard_normal agrees with torch.distributions and is 0 at mu = 0, sigma = 1")


class _TinyVAE(nn.Module):
    """A fixed random encoder/decoder pair on 6 binary pixels with a `latent`-dimensional z."""

    def __init__(self, latent: int, log_sigma: float | None = None):
        super().__init__()
        torch.manual_seed(3)
        self.enc, self.dec = nn.Linear(6, 2 * latent), nn.Linear(latent, 6)
        self.fixed_log_sigma = log_sigma

    def encoder(self, x):
        mu, log_sigma = self.enc(x.flatten(1)).chunk(2, -1)
        if self.fixed_log_sigma is not None:
            log_sigma = torch.full_like(log_sigma, self.fixed_log_sigma)
        return mu, log_sigma

    def decoder(self, z):
        return 3 * self.dec(z).view(-1, 1, 2, 3)  # logits, (B, 1, 2, 3)


def _binary_batch(n):
    gen = torch.Generator().manual_seed(4)
    return torch.bernoulli(torch.full((n, 1, 2, 3), 0.5), generator=gen)


def _log_px_given_z(x, logits):
    return Bernoulli(logits=logits).log_prob(x).flatten(1).sum(1)


def check_elbo(elbo) -> None:
    """elbo(x, encoder, decoder) -> (elbo, reconstruction, kl), each of shape (B,)."""
    x = _binary_batch(5)
    with torch.no_grad():
        # sigma -> 0: z = mu, so the reconstruction term is log p(x | mu) exactly.
        sharp = _TinyVAE(latent=2, log_sigma=-12.0)
        out = elbo(x, sharp.encoder, sharp.decoder)
        if not isinstance(out, tuple) or len(out) != 3:
            raise ExerciseError("elbo should return a tuple (elbo, reconstruction, kl)")
        value, rec, kl = (answer(t, f"elbo's {n}", shape=(5,))
                          for t, n in zip(out, ["elbo", "reconstruction", "kl"], strict=True))
        mu, log_sigma = sharp.encoder(x)
        want_rec = _log_px_given_z(x, sharp.decoder(mu))
        want_kl = kl_divergence(Normal(mu, log_sigma.exp()), Normal(0.0, 1.0)).sum(-1)
        close(rec, want_rec, "the reconstruction term", "log p(x|z) = sum over pixels of the "
              "Bernoulli log-likelihood, e.g. -F.binary_cross_entropy_with_logits(logits, x, "
              "reduction='none') summed over all pixel dimensions", atol=1e-3)
        close(kl, want_kl, "the KL term", "KL(q(z|x) || p(z)) summed over latent dimensions",
              rtol=1e-4)
        close(value, rec - kl, "elbo", "ELBO = reconstruction - KL (a minus sign)", atol=1e-4)
        # A real sigma: the average of many single-sample ELBOs is the expectation.
        vae = _TinyVAE(latent=2)
        got = answer(elbo(x.repeat(20_000, 1, 1, 1), vae.encoder, vae.decoder)[0], "elbo",
                     shape=(100_000,))
        x_ref = x.repeat(100_000, 1, 1, 1)  # (500000, 1, 2, 3)
        mu, log_sigma = vae.encoder(x_ref)
        z = Normal(mu, log_sigma.exp()).sample()
        ref = (_log_px_given_z(x_ref, vae.decoder(z))
               - kl_divergence(Normal(mu, log_sigma.exp()), Normal(0.0, 1.0)).sum(-1))
        close(got.view(-1, 5).mean(0), ref.view(-1, 5).mean(0), "the average of your ELBO over "
              "20000 samples of z", "sample z with your reparameterize(mu, log_sigma)", atol=0.1)
    ok("elbo: reconstruction - KL, each term right, and unbiased over the sampling of z")


def _log_px_by_integration(x, vae, n=20001):
    """log p(x) = log of the integral of p(x|z) p(z) over a 1-D z, on a dense grid."""
    z = torch.linspace(-10, 10, n).unsqueeze(1)  # (n, 1)
    log_px_z = Bernoulli(logits=vae.decoder(z)).log_prob(x.unsqueeze(1)).flatten(2).sum(2)  # (B, n)
    log_joint = log_px_z + Normal(0.0, 1.0).log_prob(z).squeeze(1)  # (B, n)
    return torch.logsumexp(log_joint, 1) + math.log(20 / (n - 1))


def check_iwae_bound(iwae_bound) -> None:
    """iwae_bound(x, encoder, decoder, k) -> log (1/k) sum_j p(x, z_j) / q(z_j | x), shape (B,)."""
    torch.manual_seed(5)
    vae, x = _TinyVAE(latent=1), _binary_batch(6)
    with torch.no_grad():
        log_px = _log_px_by_integration(x, vae)
        bounds = {k: answer(iwae_bound(x.repeat(200, 1, 1, 1), vae.encoder, vae.decoder, k),
                            f"iwae_bound(k={k})", shape=(1200,)).view(200, 6).mean(0)
                  for k in (1, 1000)}
    hint = ("log (1/k) sum_j w_j with log w_j = log p(x|z_j) + log p(z_j) - log q(z_j|x): use "
            "torch.logsumexp over the k samples, then subtract log k")
    if (bounds[1] > log_px + 0.05).any():
        raise ExerciseError(f"with k = 1 your bound {bounds[1].tolist()} lies above the true "
                            f"log p(x) {log_px.tolist()}; a lower bound cannot. Hint: {hint}")
    close(bounds[1000], log_px, "iwae_bound with k = 1000 against log p(x) integrated numerically",
          hint, atol=0.05)
    if not (bounds[1] < bounds[1000] - 0.01).any():
        raise ExerciseError(f"k = 1000 should be tighter than k = 1 ({bounds[1].tolist()}); "
                            f"hint: {hint}")
    ok("iwae_bound: below log p(x) for k = 1, and within 0.05 nats of it for k = 1000")
