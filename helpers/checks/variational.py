"""Checks for the 04_vae_elbo exercises: reparameterised sampling, the Gaussian KL and the ELBO
(the IWAE bound's check is in iwae.py, on the same small models).

The references: sample moments and tails, torch.distributions, a deterministic limit (sigma -> 0),
a posterior equal to the prior with a decoder that ignores z (then the ELBO equals log p(x | z)
exactly), and the ELBO's gradient recomputed with the noise the answer drew.
"""

import math

import torch
from torch.distributions import Bernoulli, Normal, kl_divergence

from .core import UNSTABLE, Exercise, ok


def check_reparameterize(reparameterize) -> None:
    """reparameterize(mu, log_sigma) -> z ~ N(mu, sigma^2), differentiable in mu and log_sigma."""
    ex = Exercise(reparameterize, "reparameterize", "z = mu + sigma * eps with eps = "
                  "torch.randn_like(mu) and sigma = exp(log_sigma)")
    torch.manual_seed(0)
    centre, spread = torch.tensor([0.0, 2.0, -1.0]), torch.tensor([0.0, -1.0, 1.0])
    for shape in [(20_000, 3), (40, 500, 3), (20_000,)]:  # (B, D), 04's (k, B, D), 04's 1-D
        mu = (centre if len(shape) > 1 else centre[:1]).expand(shape).clone().requires_grad_()
        log_sigma = (spread if len(shape) > 1 else spread[:1]).expand(shape).clone()
        log_sigma.requires_grad_()
        draws = [ex.call(mu, log_sigma) for _ in range(2)]
        if isinstance(draws[0], torch.Tensor) and not draws[0].requires_grad:
            ex.fail("no gradient reaches mu and log_sigma through your sample", hint="build it "
                    "as mu + sigma * eps from a standard normal eps; .sample() and torch.normal "
                    "cut the gradient")
        z = ex.tensor(draws[0], shape=shape, like=[mu, log_sigma])
        eps = (z - mu.detach()) / log_sigma.detach().exp()  # the student's standard normal
        ex.independent(eps, "eps = (z - mu) / sigma")
        flat = z.reshape(-1, shape[-1]) if len(shape) > 1 else z[:, None]  # (N, D)
        sigma = log_sigma.detach().double().exp().reshape(flat.shape)
        ex.compare(flat.mean(0), mu.detach().reshape(flat.shape)[0], what="the mean of your "
                   "samples", hint="z should have mean mu", atol=0.06)
        ex.compare(flat.std(0), sigma[0], what="the std of your samples", hint="the std should "
                   "be sigma = exp(log_sigma), not log_sigma or sigma^2", atol=0.06)
        ex.standard_normal(eps, "eps = (z - mu) / sigma")
        ex.fresh(draws[0], draws[1], "sample z")
        ex.gradients(draws[0], {"mu": mu, "log_sigma": log_sigma},
                     lambda mu, log_sigma, eps=eps: mu + log_sigma.exp() * eps, atol=1e-4)
    mu = torch.zeros(4, 3, requires_grad=True)  # a collapsed posterior: sigma = exp(-60),
    log_sigma = torch.full((4, 3), -60.0, requires_grad=True)  # 0 once squared in float32
    z = ex.call(mu, log_sigma)
    ex.compare(ex.tensor(z, (4, 3), "z for log_sigma = -60", like=[mu, log_sigma]), mu.detach(),
               what="z for sigma = exp(-60)", atol=1e-12, hint="sigma = exp(log_sigma) exactly, "
               "however small: no clamping of log_sigma")
    ex.gradients(z, {"mu": mu, "log_sigma": log_sigma}, lambda mu, log_sigma: mu + 0 * log_sigma)
    ok("reparameterize: independent N(mu, sigma^2) draws on any shape, fresh at every call, and "
       "gradients reach mu and log_sigma")


def _kl_reference(mu, log_sigma):
    return kl_divergence(Normal(mu.double(), log_sigma.double().exp()), Normal(0.0, 1.0)).sum(-1)


def check_kl_standard_normal(kl_to_standard_normal) -> None:
    """kl_to_standard_normal(mu (B, D), log_sigma (B, D)) -> KL(N(mu, sigma^2) || N(0, I)) (B,)."""
    ex = Exercise(kl_to_standard_normal, "kl_to_standard_normal", "per dimension, "
                  "E_q[log q - log p] with E_q[(z - mu)^2] = sigma^2 and E_q[z^2] = mu^2 + "
                  "sigma^2, summed over the latent dimensions; write sigma^2 and log sigma^2 with "
                  "log_sigma")
    gen = torch.Generator().manual_seed(1)
    for batch, latent in [(6, 4), (3, 1), (128, 32)]:  # the last: the notebook's batch and z
        mu, log_sigma = torch.randn(2, batch, latent, generator=gen)
        mu[0], log_sigma[0] = 0.0, 0.0  # KL = 0 exactly at the prior
        log_sigma[1, 0] = -60.0  # a collapsed dimension: sigma^2 = exp(-120) is 0 in float32
        mu.requires_grad_(), log_sigma.requires_grad_()
        want = _kl_reference(mu, log_sigma)
        got = ex.call(mu, log_sigma)
        value = ex.tensor(got, shape=(batch,), like=[mu, log_sigma], grad=True, finite_hint=(
            "log(sigma^2) is log(0) for a tiny sigma: log sigma^2 is simply 2 * log_sigma"))
        m, s = mu.detach().double(), log_sigma.detach().double()
        ex.compare(value, want, what=f"the KL of a ({batch}, {latent}) batch", known=[
            (want / latent, "sum over the latent dimensions, not the mean"),
            (0.5 * (m**2 + s.exp() - 1 - s).sum(-1), "sigma^2 = exp(2 log_sigma) and log "
                                                      "sigma^2 = 2 log_sigma: the factor 2 is "
                                                      "missing"),
            (0.5 * (m**2 + s.exp() ** 2 - 1 - s).sum(-1), "log sigma^2 = 2 log_sigma")])
        ex.gradients(got, {"mu": mu, "log_sigma": log_sigma}, _kl_reference, atol=1e-4)
    ok("kl_to_standard_normal agrees with torch.distributions in value and gradient, is 0 at the "
       "prior and stays finite when sigma collapses")


class _TinyVAE:
    """A fixed random linear encoder/decoder pair on binary images of shape `pixels` with a
    `latent`-dimensional z, in float32 (the notebook's dtype); its weights take gradients."""

    def __init__(self, pixels, latent: int, log_sigma: float | None = None):
        gen = torch.Generator().manual_seed(3)
        n = math.prod(pixels)
        self.pixels, self.fixed_log_sigma, self.seen = pixels, log_sigma, []
        self.weights = {  # named as the messages say them
            "the encoder's weights": torch.randn(2 * latent, n, generator=gen) / n**0.5,
            "the decoder's weights": 2 * torch.randn(n, latent, generator=gen) / latent**0.5}
        self.weights = {name: w.requires_grad_() for name, w in self.weights.items()}

    def encoder(self, x, encoder_weight=None):
        weight = self.weights["the encoder's weights"] if encoder_weight is None else encoder_weight
        mu, log_sigma = (x.flatten(1).to(weight.dtype) @ weight.T).chunk(2, -1)
        if self.fixed_log_sigma is not None:
            log_sigma = torch.full_like(log_sigma, self.fixed_log_sigma)
        return mu, log_sigma

    def decoder(self, z, decoder_weight=None):
        weight = self.weights["the decoder's weights"] if decoder_weight is None else decoder_weight
        self.seen.append(z.detach())
        return (z @ weight.T).view(-1, *self.pixels)  # logits, (B, *pixels)

    def elbo_with(self, x, eps, encoder_weight, decoder_weight):
        """The one-sample ELBO with z = mu + sigma * eps (eps = 0: the limit sigma -> 0), in
        float64: the reference whose gradient the student's must match."""
        mu, log_sigma = self.encoder(x, encoder_weight)
        z = mu + log_sigma.exp() * eps
        return _log_px_given_z(x, self.decoder(z, decoder_weight)) - _kl_reference(mu, log_sigma)


def _binary_batch(n, pixels=(1, 2, 3)):
    gen = torch.Generator().manual_seed(4)
    return torch.bernoulli(torch.full((n, *pixels), 0.5), generator=gen)


def _log_px_given_z(x, logits):
    return Bernoulli(logits=logits.double()).log_prob(x.double()).flatten(1).sum(1)


def _confident_model(x, latent=1):
    """q(z|x) = p(z) = N(0, I) and a decoder that ignores z and is confidently wrong about some
    pixels (logits +-120, float32). Then log w = log p(x|z) for every z: each bound equals it."""
    logits = torch.where(x[0] > 0, -120.0, 120.0)  # (C, H, W): wrong about every pixel of x[0]
    logits.view(-1)[: x[0].numel() // 2] = torch.linspace(-2, 2, x[0].numel() // 2)
    seen = []

    def encoder(x):
        return torch.zeros(len(x), latent), torch.zeros(len(x), latent)

    def decoder(z):
        seen.append(z.detach())
        return logits.expand(z.shape[:-1].numel(), *x.shape[1:])

    return encoder, decoder, _log_px_given_z(x, logits.expand(x.shape)), seen


def check_elbo(elbo) -> None:
    """elbo(x, encoder, decoder) -> (elbo, reconstruction, kl), each of shape (B,)."""
    ex = Exercise(elbo, "elbo", "ELBO = log p(x|z) - KL(q(z|x) || p(z)) with one z from "
                  "reparameterize(mu, log_sigma); log p(x|z) sums the Bernoulli log-likelihood of "
                  "every pixel, computed from the decoder's logits")
    names = ("elbo", "reconstruction", "kl")

    def terms(encoder, decoder, batch, finite_hint=UNSTABLE):
        out = ex.parts(ex.call(batch, encoder, decoder), names)
        return out, [ex.tensor(t, (len(batch),), name, like=[batch], finite_hint=finite_hint)
                     for t, name in zip(out, names, strict=True)]

    for pixels, latent in [((1, 2, 3), 2), ((2, 3, 3), 1), ((1, 28, 28), 32)]:  # last: 04's
        # sigma -> 0: z = mu, so the reconstruction term is log p(x | mu) exactly.
        x, sharp = _binary_batch(5, pixels), _TinyVAE(pixels, latent, log_sigma=-12.0)
        out, (value, rec, kl) = terms(sharp.encoder, sharp.decoder, x)
        with torch.no_grad():
            mu, log_sigma = sharp.encoder(x)
            want_rec, want_kl = _log_px_given_z(x, sharp.decoder(mu)), _kl_reference(mu, log_sigma)
        ex.compare(rec, want_rec, what="the reconstruction term", atol=1e-3, rtol=1e-3, known=[
            (want_rec / x[0].numel(), "sum the log-likelihood over the pixels, not the mean"),
            (-want_rec, "the reconstruction term is log p(x|z), a negative number: mind the "
                        "sign of the binary cross-entropy"),
            (want_kl, "that is the KL term: return (elbo, reconstruction, kl) in this order")])
        ex.compare(kl, want_kl, what="the KL term", rtol=1e-4,
                   hint="KL(q(z|x) || p(z)), summed over the latent dimensions")
        ex.compare(value, rec - kl, what="the elbo", atol=1e-4, known=[
            (rec + kl, "ELBO = reconstruction - KL: a minus sign")])
        ex.gradients(out[0], sharp.weights, lambda enc, dec, sharp=sharp, x=x:
                     sharp.elbo_with(x.double(), 0.0, enc, dec), atol=1e-4, rtol=1e-3)
    # A decoder sure of the wrong pixels, on 04's images: log p(x|z) must stay finite.
    x = _binary_batch(5, (1, 28, 28))
    encoder, decoder, log_px, _ = _confident_model(x)
    value = terms(encoder, decoder, x)[1][0]
    ex.compare(value, log_px, what="the elbo with a confident, wrong decoder (logits +-120)",
               hint=UNSTABLE, atol=1e-2)
    # A real sigma: fresh, independent N(0, 1) noise inside z, and the right average.
    x, vae = _binary_batch(5), _TinyVAE((1, 2, 3), latent=3)
    batch = x.repeat(20_000, 1, 1, 1)  # (100000, 1, 2, 3)
    first_call = len(vae.seen)  # the first z decoded by the first of two calls
    got = [terms(vae.encoder, vae.decoder, batch)[1][0] for _ in range(2)]
    with torch.no_grad():
        mu, log_sigma = vae.encoder(batch)
        noise = (vae.seen[first_call] - mu) / log_sigma.exp()  # the noise inside the first z
        if noise.std() < 1e-3:
            ex.fail("your z has no noise in it", hint="decode a sample z = reparameterize(mu, "
                    "log_sigma), not the mean mu")
        ex.standard_normal(noise, "the noise inside your z")
        x_ref = x.repeat(100_000, 1, 1, 1)  # (500000, 1, 2, 3)
        mu, log_sigma = vae.encoder(x_ref)
        z = Normal(mu, log_sigma.exp()).sample()
        ref = _log_px_given_z(x_ref, vae.decoder(z)) - _kl_reference(mu, log_sigma)
        ex.compare(got[0].view(-1, 5).mean(0), ref.view(-1, 5).mean(0), what="the average of "
                   "your ELBO over 20000 samples of z", atol=0.2)
        ex.fresh(*got, "ELBO (so the same z)")
    # A real sigma, with the noise the answer drew: the gradient through mu and log_sigma.
    vae.seen.clear()
    got = terms(vae.encoder, vae.decoder, x)
    ex.compare(got[1][1] - got[1][2], got[1][0], what="your elbo against your reconstruction - "
               "kl", atol=1e-4, hint="compute both terms from the same single z")
    with torch.no_grad():
        mu, log_sigma = vae.encoder(x)
        eps = ((vae.seen[0] - mu) / log_sigma.exp()).double()
    ex.gradients(got[0][0], vae.weights, lambda enc, dec: vae.elbo_with(x.double(), eps, enc, dec),
                 atol=1e-4, rtol=1e-3)
    ok("elbo: reconstruction - KL, each term right on any image and latent size, stable, fresh "
       "and unbiased in z, and the gradient reaches encoder and decoder")
