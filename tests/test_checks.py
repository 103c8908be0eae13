"""Every exercise check passes on the notebook's solution, fails on the student stub, and fails
on plausible wrong answers with a message (never a deep traceback) for bad shapes, dtypes, NaNs."""

import math
import re

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Normal

from helpers import checks

NB01, NB03, NB04 = "01_distributions.ipynb", "03_mle_kl.ipynb", "04_vae_elbo.ipynb"
NB02, NB05, NB06 = "02_autoregressive.ipynb", "05_gan.ipynb", "06_diffusion.ipynb"
NB07 = "07_text_to_image.ipynb"
CASES = [  # notebook, function, check
    (NB01, "categorical_mle", checks.check_categorical_mle),
    (NB01, "num_params", checks.check_markov_order_k_params),
    (NB01, "markov_log_likelihood", checks.check_markov_log_likelihood),
    (NB02, "made_masks", checks.check_made_masks),
    (NB02, "bernoulli_nll", checks.check_bernoulli_nll),
    (NB02, "sample_autoregressive", checks.check_sample_autoregressive),
    (NB03, "kl_categorical", checks.check_kl_categorical),
    (NB03, "kl_gaussian", checks.check_kl_gaussian),
    (NB03, "jsd", checks.check_jsd),
    (NB05, "discriminator_loss", checks.check_discriminator_loss),
    (NB05, "generator_loss", checks.check_generator_loss),
    (NB05, "optimal_discriminator", checks.check_optimal_discriminator),
    (NB04, "reparameterize", checks.check_reparameterize),
    (NB04, "kl_to_standard_normal", checks.check_kl_standard_normal),
    (NB04, "elbo", checks.check_elbo),
    (NB04, "iwae_bound", checks.check_iwae_bound),
    (NB06, "q_sample", checks.check_q_sample),
    (NB06, "diffusion_loss", checks.check_diffusion_loss),
    (NB06, "ddpm_step", checks.check_ddpm_step),
    (NB06, "ddim_step", checks.check_ddim_step),
    (NB07, "contrastive_loss", checks.check_contrastive_loss),
    (NB07, "guided_eps", checks.check_guided_eps),
    (NB07, "inpaint_step", checks.check_inpaint_step),
]
IDS = [name for _, name, _ in CASES]


@pytest.mark.parametrize("notebook,name,check", CASES, ids=IDS)
def test_check_passes_on_the_solution(notebook, name, check, solved, capsys):
    function = solved(notebook)[name]
    capsys.readouterr()
    check(function)
    assert capsys.readouterr().out.startswith("✓")


@pytest.mark.parametrize("notebook,name,check", CASES, ids=IDS)
def test_check_fails_on_the_stub_with_its_hint(notebook, name, check, stubs):
    with pytest.raises(NotImplementedError, match="Hint: .{10,}"):
        check(stubs(notebook)[name])


def _xlogy(a, b):
    return torch.xlogy(a, b)


WRONG = {  # plausible mistakes a student makes
    "categorical_mle": [
        lambda s, m: torch.bincount(s).float() / len(s),  # forgets faces that never appear
        lambda s, m: torch.bincount(s, minlength=m).float(),  # counts, not probabilities
        lambda s, m: torch.bincount(s, minlength=m) // len(s),  # integer division
        lambda s, m: torch.bincount(s, minlength=m).float() / m,  # divides by m
    ],
    "num_params": [
        lambda n, k: n * 2 ** k,  # ignores that the first variables have fewer parents
        lambda n, k: 2 ** n - 1 if k else n,  # only the two extremes
        lambda n, k: sum(2 ** min(i, k) for i in range(n)) - 1,  # one too few
    ],
    "markov_log_likelihood": [
        lambda x, p0, pn: (x * torch.cat([p0.expand(len(x), 1), pn[:, 1].expand(len(x), -1)], 1)
                           .log()).sum(1),  # forgets the zeros and the conditioning
        lambda x, p0, pn: -(x * 0 + 1).sum(1),  # a constant
        lambda x, p0, pn: torch.full((len(x),), float("nan")),  # NaN
        lambda x, p0, pn: torch.zeros(len(x), 1),  # wrong shape
    ],
    "kl_categorical": [
        lambda p, q: (_xlogy(q, q) - _xlogy(q, p)).sum(-1),  # arguments swapped
        lambda p, q: (p * (p.log() - q.log())).sum(-1),  # 0 log 0 gives NaN
        lambda p, q: (_xlogy(p, p) - _xlogy(p, q)).sum(-1) / torch.log(torch.tensor(2.0)),  # bits
        lambda p, q: (_xlogy(p, p) - _xlogy(p, q)),  # no sum
    ],
    "kl_gaussian": [
        lambda m1, s1, m2, s2: torch.log(s2 / s1) + (s1 + (m1 - m2) ** 2) / (2 * s2) - 0.5,  # std
        lambda m1, s1, m2, s2: torch.log(s1 / s2) + (s2**2 + (m1 - m2) ** 2) / (2 * s1**2) - 0.5,
        lambda m1, s1, m2, s2: torch.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2),  # +1/2
    ],
    "jsd": [
        lambda p, q: (_xlogy(p, p) - _xlogy(p, (p + q) / 2)).sum(-1),  # only KL(p || m)
        lambda p, q: (_xlogy(p, p) - _xlogy(p, (p + q) / 2) + _xlogy(q, q)
                      - _xlogy(q, (p + q) / 2)).sum(-1),  # forgets the 1/2
        lambda p, q: 0.5 * ((_xlogy(p, p) - _xlogy(p, q)) + (_xlogy(q, q) - _xlogy(q, p))).sum(-1),
    ],
}


def _kl(mu, log_sigma):
    return 0.5 * (mu**2 + (2 * log_sigma).exp() - 1 - 2 * log_sigma).sum(-1)


def _elbo(rec_reduction="sum", sign=-1, sample=True):
    def elbo(x, encoder, decoder):
        mu, log_sigma = encoder(x)
        z = mu + log_sigma.exp() * torch.randn_like(mu) if sample else mu
        bce = F.binary_cross_entropy_with_logits(decoder(z), x, reduction="none").flatten(1)
        rec = -(bce.sum(1) if rec_reduction == "sum" else bce.mean(1))
        kl = _kl(mu, log_sigma)
        return rec + sign * kl, rec, kl
    return elbo


def _iwae(combine="logsumexp", minus_log_k=True, full_weight=True):
    def iwae(x, encoder, decoder, k):
        mu, log_sigma = encoder(x)
        z = mu + log_sigma.exp() * torch.randn(k, *mu.shape)  # (k, B, D)
        logits = decoder(z.flatten(0, 1)).view(k, *x.shape)
        log_w = -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits),
                                                    reduction="none").flatten(2).sum(2)
        if full_weight:
            log_w = log_w + Normal(0.0, 1.0).log_prob(z).sum(2) \
                - Normal(mu, log_sigma.exp()).log_prob(z).sum(2)
        if combine == "mean":
            return log_w.mean(0)
        return torch.logsumexp(log_w, 0) - (math.log(k) if minus_log_k else 0)
    return iwae


def _bce(logits, target, reduction="mean"):
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, float(target)),
                                              reduction=reduction)


def _sampler(mode):
    def sample(logits_fn, num_samples, num_pixels, order):
        x = torch.zeros(num_samples, num_pixels)
        if mode == "one call":  # every pixel from the logits of the empty image
            return torch.bernoulli(torch.sigmoid(logits_fn(x)))
        for i in (range(num_pixels) if mode == "raster" else order):
            p = torch.sigmoid(logits_fn(x)[:, i])
            x[:, i] = (p > 0.5).float() if mode == "threshold" else torch.bernoulli(p)
        return x
    return sample


WRONG |= {
    "made_masks": [
        lambda din, dh: ((dh[:, None] >= din[None, :]).float(),
                         (din[:, None] >= dh[None, :]).float()),  # output sees its own pixel
        lambda din, dh: ((dh[:, None] > din[None, :]).float(),
                         (din[:, None] > dh[None, :]).float()),  # drops allowed connections
        lambda din, dh: ((din[:, None] <= dh[None, :]).float(),
                         (dh[:, None] < din[None, :]).float()),  # transposed
        lambda din, dh: (torch.zeros(len(dh), len(din)), torch.zeros(len(din), len(dh))),
    ],
    "bernoulli_nll": [
        lambda z, x: -(x * torch.sigmoid(z).log() + (1 - x) * (1 - torch.sigmoid(z)).log())
        .flatten(1).sum(1),  # unstable: log(0) for confident logits
        lambda z, x: F.binary_cross_entropy_with_logits(z, x, reduction="none").flatten(1).mean(1),
        lambda z, x: -F.binary_cross_entropy_with_logits(z, x, reduction="none").flatten(1).sum(1),
    ],
    "sample_autoregressive": [_sampler("one call"), _sampler("raster"), _sampler("threshold")],
    "discriminator_loss": [
        lambda r, f: _bce(r, 0) + _bce(f, 1),  # labels swapped
        lambda r, f: -(torch.sigmoid(r).log().mean() + (1 - torch.sigmoid(f)).log().mean()),
        lambda r, f: _bce(r, 1, "sum") + _bce(f, 0, "sum"),  # summed over the batch
        lambda r, f: _bce(r, 1),  # forgets the fakes
    ],
    "generator_loss": [
        lambda f: torch.log1p(-torch.sigmoid(f)).mean(),  # the saturating minimax loss
        lambda f: _bce(f, 1).item(),  # a float: no gradient
        lambda f: -_bce(f, 0),  # the same saturating loss, written with BCE
    ],
    "optimal_discriminator": [
        lambda pd, pg: pg / (pd + pg),  # the two densities swapped
        lambda pd, pg: pd / pg,  # a ratio, not a probability
        lambda pd, pg: torch.full_like(pd, 0.5),  # only right when p_G = p_data
    ],
    "reparameterize": [
        lambda mu, ls: Normal(mu, ls.exp()).sample(),  # no gradient reaches mu
        lambda mu, ls: mu + ls * torch.randn_like(mu),  # log sigma used as sigma
        lambda mu, ls: mu + (2 * ls).exp() * torch.randn_like(mu),  # the variance as std
    ],
    "kl_to_standard_normal": [
        lambda mu, ls: _kl(mu, ls) / mu.shape[-1],  # averaged over dimensions
        lambda mu, ls: 0.5 * (mu**2 + ls.exp() - 1 - ls).sum(-1),  # sigma for sigma^2
        lambda mu, ls: 0.5 * (mu**2 + (2 * ls).exp() - 1 - 2 * ls),  # no sum
    ],
    "elbo": [_elbo(sign=+1), _elbo(rec_reduction="mean"), _elbo(sample=False)],
    "iwae_bound": [_iwae(combine="mean"), _iwae(minus_log_k=False), _iwae(full_weight=False)],
}


def _q_sample(a_fn, s_fn):
    def q_sample(x0, t, noise, alpha_bar):
        a = alpha_bar[t].view(-1, *[1] * (x0.ndim - 1))
        return a_fn(a) * x0 + s_fn(a) * noise
    return q_sample


def _loss(t_fn=lambda B, T: torch.randint(0, T, (B,)), noise_fn=torch.randn_like,
          target="eps", reduce=torch.mean):
    def diffusion_loss(eps_model, x0, alpha_bar):
        t, eps = t_fn(len(x0), len(alpha_bar)), noise_fn(x0)
        a = alpha_bar[t].view(-1, 1)
        pred = eps_model(a.sqrt() * x0 + (1 - a).sqrt() * eps, t)
        return reduce((pred - (eps if target == "eps" else x0)).pow(2))
    return diffusion_loss


def _ddpm(variance="posterior", eps_root=True, alpha="step"):
    def ddpm_step(x_t, t, eps, alpha_bar, noise):
        ab_t = alpha_bar[t]
        ab_prev = alpha_bar[t - 1] if t > 0 else torch.ones_like(ab_t)
        a_t = ab_t / ab_prev if alpha == "step" else ab_t
        beta = 1 - a_t
        mean = (x_t - beta / ((1 - ab_t).sqrt() if eps_root else 1 - ab_t) * eps) / a_t.sqrt()
        var = beta * (1 - ab_prev) / (1 - ab_t) if variance == "posterior" else beta
        return mean + (var.sqrt() if variance != "no sqrt" else var) * noise if t > 0 else mean
    return ddpm_step


WRONG |= {
    "q_sample": [
        _q_sample(lambda a: a, lambda a: 1 - a),  # forgets the square roots
        _q_sample(lambda a: (1 - a).sqrt(), lambda a: a.sqrt()),  # roles swapped
        lambda x0, t, noise, ab: ab[t[0]].sqrt() * x0 + (1 - ab[t[0]]).sqrt() * noise,  # one t
        lambda x0, t, noise, ab: ab[t].view(-1, 1, 1, 1).sqrt() * x0,  # images only, no noise
    ],
    "diffusion_loss": [
        _loss(target="x0"),  # regresses the clean data instead of the noise
        _loss(t_fn=lambda B, T: torch.randint(1, T + 1, (B,))),  # paper's 1..T as indices
        _loss(t_fn=lambda B, T: torch.randint(0, T, (1,)).expand(B)),  # one t for the batch
        _loss(noise_fn=torch.rand_like),  # uniform noise
        _loss(reduce=torch.sum),  # sum, not mean
    ],
    "ddpm_step": [_ddpm(variance="beta"), _ddpm(variance="no sqrt"), _ddpm(eps_root=False),
                  _ddpm(alpha="bar")],
    "ddim_step": [
        lambda x_t, eps, a, a_prev: (x_t - (1 - a).sqrt() * eps) / a.sqrt(),  # stops at x0_hat
        lambda x_t, eps, a, a_prev: a_prev.sqrt() * (x_t - (1 - a).sqrt() * eps) / a.sqrt()
        + (1 - a_prev).sqrt() * torch.randn_like(eps),  # fresh noise: that is not DDIM
        lambda x_t, eps, a, a_prev: a_prev * (x_t - (1 - a) * eps) / a + (1 - a_prev) * eps,
    ],
}


def _clip_loss(directions="both", normalise=True, temperature="multiply"):
    def contrastive_loss(img, txt, log_scale):
        if normalise:
            img, txt = F.normalize(img, dim=1), F.normalize(txt, dim=1)
        scale = log_scale.exp() if temperature == "multiply" else 1 / log_scale.exp()
        logits = scale * img @ txt.T
        targets = torch.arange(len(logits))
        one_way = F.cross_entropy(logits, targets)
        other_way = F.cross_entropy(logits.T, targets)
        return one_way if directions == "one" else (one_way + other_way) / 2
    return contrastive_loss


WRONG |= {
    "contrastive_loss": [
        _clip_loss(directions="one"),  # image -> text only
        _clip_loss(normalise=False),  # dot products, not cosines
        _clip_loss(temperature="divide"),  # divides by the learned scale
        lambda img, txt, s: (s.exp() * F.normalize(img, dim=1) @ F.normalize(txt, dim=1).T)
        .diagonal().neg().mean(),  # pulls pairs together, never pushes others apart
    ],
    "guided_eps": [
        lambda c, u, s: c + s * (c - u),  # the (1 + w) convention: scale 1 is not conditional
        lambda c, u, s: u + s * (u - c),  # pushes away from the condition
        lambda c, u, s: s * c + u,  # not a combination that keeps scale
    ],
    "inpaint_step": [
        lambda x, x0, m, a, n: m * x0 + (1 - m) * x,  # the known pixels without their noise
        lambda x, x0, m, a, n: (1 - m) * (a.sqrt() * x0 + (1 - a).sqrt() * n) + m * x,  # flipped
        lambda x, x0, m, a, n: m * (a * x0 + (1 - a) * n) + (1 - m) * x,  # no square roots
    ],
}


@pytest.mark.parametrize("notebook,name,check", CASES, ids=IDS)
def test_check_fails_on_plausible_wrong_answers(notebook, name, check):
    for wrong in WRONG[name]:
        with pytest.raises(checks.ExerciseError):
            check(wrong)


@pytest.mark.parametrize("answer,message", [
    (None, "forget `return`"),
    ([0.5, 0.5], "should return a torch.Tensor"),
    (torch.zeros(3), "shape (3,), expected (6,)"),
    (torch.zeros(6, dtype=torch.long), "dtype torch.int64"),
    (torch.full((6,), float("nan")), "NaN"),
])
def test_bad_answers_get_a_plain_message(answer, message):
    with pytest.raises(checks.ExerciseError, match=re.escape(message)):
        checks.check_categorical_mle(lambda s, m: answer)


def test_an_error_inside_the_answer_becomes_a_plain_message():
    def q_sample(x0, t, noise, alpha_bar):
        return alpha_bar[t] * x0  # (B,) against (B, 2): does not broadcast
    with pytest.raises(checks.ExerciseError, match="q_sample raised RuntimeError"):
        checks.check_q_sample(q_sample)
