"""Checks for the 04_vae_elbo exercises: reparameterised sampling, the Gaussian KL, ELBO and IWAE.

The references do not reuse the student's randomness: sample moments, torch.distributions, a
deterministic limit (sigma -> 0), a posterior equal to the prior with a decoder that ignores z
(then every bound equals log p(x | z) exactly), and log p(x) integrated over a 1-D latent.
"""

import math

import torch
from torch import nn
from torch.distributions import Bernoulli, Normal, kl_divergence

from .core import UNSTABLE, Exercise, ok


def check_reparameterize(reparameterize) -> None:
    """reparameterize(mu, log_sigma) -> z ~ N(mu, sigma^2), differentiable in mu and log_sigma."""
    ex = Exercise(reparameterize, "reparameterize", "z = mu + sigma * eps with eps = "
                  "torch.randn_like(mu) and sigma = exp(log_sigma)")
    torch.manual_seed(0)
    mu = torch.tensor([0.0, 2.0, -1.0]).repeat(20_000, 1).requires_grad_()  # (20000, 3)
    log_sigma = torch.tensor([0.0, -1.0, 1.0]).repeat(20_000, 1).requires_grad_()
    z = ex.call(mu, log_sigma)
    z_val = ex.tensor(z, shape=mu.shape, like=[mu, log_sigma])
    if z.grad_fn is None:
        ex.fail("no gradient reaches mu and log_sigma through your sample", hint="build it as "
                "mu + sigma * eps from a standard normal eps; .sample() and torch.normal cut the "
                "gradient")
    ex.compare(z_val.mean(0), [0.0, 2.0, -1.0], what="the mean of your samples",
               hint="z should have mean mu", atol=0.06)
    ex.compare(z_val.std(0), [1.0, math.exp(-1), math.e], what="the std of your samples",
               hint="the std should be sigma = exp(log_sigma), not log_sigma or sigma^2",
               atol=0.06)
    grad_mu, grad_log_sigma = torch.autograd.grad(z.sum(), (mu, log_sigma), allow_unused=True)
    ex.compare(torch.zeros_like(mu) if grad_mu is None else grad_mu, torch.ones_like(mu),
               what="dz/dmu", hint="z = mu + sigma * eps, so dz/dmu = 1")
    ex.compare(torch.zeros_like(mu) if grad_log_sigma is None else grad_log_sigma,
               z_val - mu.detach(), what="dz/dlog_sigma", hint="dz/dlog_sigma = sigma * eps")
    ok("reparameterize: samples have mean mu and std exp(log_sigma), and gradients reach both")


def check_kl_standard_normal(kl_to_standard_normal) -> None:
    """kl_to_standard_normal(mu (B, D), log_sigma (B, D)) -> KL(N(mu, sigma^2) || N(0, I)) (B,)."""
    ex = Exercise(kl_to_standard_normal, "kl_to_standard_normal", "KL = 0.5 * (mu^2 + sigma^2 - "
                  "1 - log sigma^2) per dimension, summed over the latent dimensions; write "
                  "sigma^2 and log sigma^2 with log_sigma")
    gen = torch.Generator().manual_seed(1)
    mu, log_sigma = torch.randn(6, 4, generator=gen), torch.randn(6, 4, generator=gen)
    mu[0], log_sigma[0] = 0.0, 0.0  # KL = 0 exactly at the prior
    log_sigma[1, 0] = -60.0  # a collapsed dimension: sigma^2 = exp(-120) is 0 in float32
    want = kl_divergence(Normal(mu.double(), log_sigma.double().exp()), Normal(0.0, 1.0)).sum(-1)
    got = ex.tensor(ex.call(mu, log_sigma), shape=(6,), like=[mu, log_sigma], finite_hint=(
        "log(sigma^2) is log(0) for a tiny sigma: log sigma^2 is simply 2 * log_sigma"))
    sigma_for_variance = 0.5 * (mu**2 + log_sigma.exp() - 1 - log_sigma).double().sum(-1)
    ex.compare(got, want, known=[
        (want / 4, "sum over the latent dimensions, not the mean"),
        (sigma_for_variance, "sigma^2 = exp(2 log_sigma) and log sigma^2 = 2 log_sigma: the "
                             "factor 2 is missing")])
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
    return Bernoulli(logits=logits.double()).log_prob(x.double()).flatten(1).sum(1)


def _confident_model(x):
    """q(z|x) = p(z) = N(0, 1) and a decoder that ignores z and is confidently wrong about some
    pixels (logits +-60). Then log w = log p(x|z) for every z: each bound equals it exactly."""
    logits = torch.where(x[0] > 0, -60.0, 60.0)  # (1, 2, 3): wrong about every pixel of x[0]
    logits[0, 1] = torch.tensor([2.0, -1.0, 0.5])

    def encoder(x):
        return torch.zeros(len(x), 1), torch.zeros(len(x), 1)

    def decoder(z):
        return logits.expand(z.shape[:-1].numel(), 1, 2, 3)

    return encoder, decoder, _log_px_given_z(x, logits.expand(len(x), 1, 2, 3))


def check_elbo(elbo) -> None:
    """elbo(x, encoder, decoder) -> (elbo, reconstruction, kl), each of shape (B,)."""
    ex = Exercise(elbo, "elbo", "ELBO = log p(x|z) - KL(q(z|x) || p(z)) with one z from "
                  "reparameterize(mu, log_sigma); log p(x|z) sums the Bernoulli log-likelihood of "
                  "every pixel, computed from the decoder's logits")
    x = _binary_batch(5)
    names = ("elbo", "reconstruction", "kl")

    def terms(encoder, decoder, batch=x, finite_hint=None):
        out = ex.parts(ex.call(batch, encoder, decoder), names)
        return [ex.tensor(t, (len(batch),), name, like=[batch], finite_hint=finite_hint)
                for t, name in zip(out, names, strict=True)]

    with torch.no_grad():
        # sigma -> 0: z = mu, so the reconstruction term is log p(x | mu) exactly.
        sharp = _TinyVAE(latent=2, log_sigma=-12.0)
        value, rec, kl = terms(sharp.encoder, sharp.decoder)
        mu, log_sigma = sharp.encoder(x)
        want_rec = _log_px_given_z(x, sharp.decoder(mu))
        want_kl = kl_divergence(Normal(mu.double(), log_sigma.double().exp()),
                                Normal(0.0, 1.0)).sum(-1)
        ex.compare(rec, want_rec, what="the reconstruction term", atol=1e-3, known=[
            (want_rec / 6, "sum the log-likelihood over the pixels, not the mean"),
            (-want_rec, "the reconstruction term is log p(x|z), a negative number: mind the "
                        "sign of the binary cross-entropy")])
        ex.compare(kl, want_kl, what="the KL term", rtol=1e-4,
                   hint="KL(q(z|x) || p(z)), summed over the latent dimensions")
        ex.compare(value, rec - kl, what="the elbo", atol=1e-4, known=[
            (rec + kl, "ELBO = reconstruction - KL: a minus sign")])
        # A decoder sure of the wrong pixels: log p(x|z) must stay finite (here exactly known).
        encoder, decoder, log_px = _confident_model(x)
        value = terms(encoder, decoder, finite_hint=UNSTABLE)[0]
        ex.compare(value, log_px, what="the elbo with a confident, wrong decoder (logits +-60)",
                   hint=UNSTABLE, atol=1e-3)
        # A real sigma: the average of many single-sample ELBOs is the expectation.
        vae = _TinyVAE(latent=2)
        got = terms(vae.encoder, vae.decoder, x.repeat(20_000, 1, 1, 1))[0]
        x_ref = x.repeat(100_000, 1, 1, 1)  # (500000, 1, 2, 3)
        mu, log_sigma = vae.encoder(x_ref)
        z = Normal(mu, log_sigma.exp()).sample()
        ref = (_log_px_given_z(x_ref, vae.decoder(z))
               - kl_divergence(Normal(mu, log_sigma.exp()), Normal(0.0, 1.0)).sum(-1))
        ex.compare(got.view(-1, 5).mean(0), ref.view(-1, 5).mean(0), what="the average of your "
                   "ELBO over 20000 samples of z", hint="decode a sample z = "
                   "reparameterize(mu, log_sigma), not the mean mu", atol=0.1)
    ok("elbo: reconstruction - KL, each term right, stable, and unbiased over the sampling of z")


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
    vae, x = _TinyVAE(latent=1), _binary_batch(6)
    with torch.no_grad():
        encoder, decoder, log_px = _confident_model(x)
        underflow = ("exp(log w) is 0 when log w is very negative (here about -240 nats): "
                     "average the weights in log space, torch.logsumexp(log_w, 0) - log k")
        for k in (1, 5):
            got = ex.tensor(ex.call(x, encoder, decoder, k), (6,), f"iwae_bound(k={k})", like=[x],
                            finite_hint=underflow)
            ex.compare(got, log_px, what=f"iwae_bound(k={k}) with q = p(z) and a decoder that "
                       "ignores z", hint=f"then every log w_j is log p(x|z) and so is the bound; "
                       f"{underflow}", atol=1e-3, known=[
                           (log_px + math.log(k), "subtract log k: the bound is a mean of the "
                                                  "k weights, not their sum")])
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
    ok("iwae_bound: stable, below log p(x) for k = 1, and within 0.05 nats of it for k = 1000")
