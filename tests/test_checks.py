"""Every exercise check passes on the notebook's solution and on correct answers written
differently, fails on the student stub, and fails on plausible wrong answers (ours below, and the
independently written ones of tests/wrong_answers.py) with a message aimed at the mistake, of at
most five lines and never a traceback. tests/test_check_rubric.py enforces the rubric."""

import math
import re

import pytest
import torch
import torch.nn.functional as F
import wrong_answers
from torch.distributions import Normal

from helpers import checks

NB01, NB03, NB04 = "01_distributions.ipynb", "03_mle_kl.ipynb", "04_vae_elbo.ipynb"
NB02, NB05, NB06 = "02_autoregressive.ipynb", "05_gan.ipynb", "06_diffusion.ipynb"
NB07 = "07_text_to_image.ipynb"
CASES = [  # notebook, function, check
    (NB01, "categorical_mle", checks.check_categorical_mle),
    (NB01, "num_params", checks.check_markov_order_k_params),
    (NB01, "markov_log_likelihood", checks.check_markov_log_likelihood),
    (NB02, "nade_logits", checks.check_nade_logits),
    (NB02, "made_masks", checks.check_made_masks),
    (NB02, "bernoulli_nll", checks.check_bernoulli_nll),
    (NB02, "pixelcnn_mask", checks.check_pixelcnn_mask),
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


def _rejected(check, answer) -> str:
    """The message with which `check` rejects `answer`; it must fit in five lines, and IPython
    must show exactly those lines, without a traceback."""
    with pytest.raises(checks.ExerciseError) as info:
        check(answer)
    message = str(info.value)
    lines = [re.sub(r"\x1b\[\d+m", "", line) for line in info.value._render_traceback_()]
    assert lines == message.splitlines() and len(lines) <= 5, message
    return message


@pytest.mark.parametrize("notebook,name,check", CASES, ids=IDS)
def test_check_passes_on_the_solution(notebook, name, check, solved, capsys):
    function = solved(notebook)[name]
    capsys.readouterr()
    check(function)
    assert capsys.readouterr().out.startswith("✓")


@pytest.mark.parametrize("notebook,name,check", CASES, ids=IDS)
def test_check_tells_the_stub_it_is_not_written_yet_with_its_hint(notebook, name, check, stubs):
    message = _rejected(check, stubs(notebook)[name])
    assert f"✗ {name}: not written yet" in message
    assert re.search(r"\n  hint: .{20,}", message), message


def _xlogy(a, b):
    return torch.xlogy(a, b)


def _off_by_one_markov(x, p_first, p_next):
    logp = torch.log(torch.where(x[:, 0] > 0, p_first, 1 - p_first))
    for i in range(1, x.shape[1]):
        p = p_next[i, x[:, i - 1].long()]  # p_next has n - 1 rows: i - 1 was meant
        logp = logp + torch.log(torch.where(x[:, i] > 0, p, 1 - p))
    return logp


def _ones_only_markov(x, p_first, p_next):
    p_on = torch.cat([p_first.expand(len(x), 1),
                      p_next[torch.arange(x.shape[1] - 1), x[:, :-1].long()]], 1)
    return (x * p_on.log()).sum(1)


def _mask(k, mask_type):
    mask = torch.ones(k, k)
    mask[k // 2, k // 2 + (mask_type == "B"):] = 0
    mask[k // 2 + 1:] = 0
    return mask


WRONG = {  # plausible mistakes a student makes, each with words its message must contain
    "categorical_mle": [
        (lambda s, m: torch.bincount(s).float() / len(s), "has shape (5,); expected (6,)"),
        (lambda s, m: torch.bincount(s, minlength=m).float(), "these are the counts"),
        (lambda s, m: torch.bincount(s, minlength=m) // len(s), "expected floating point"),
        (lambda s, m: torch.bincount(s, minlength=m).float() / m, "not by m"),
        (lambda s, m: (torch.bincount(s, minlength=m) / len(s)).tolist(), "is a list"),
    ],
    "num_params": [
        (lambda n, k: n * 2 ** k, "expected 9"),  # ignores that the first have fewer parents
        (lambda n, k: 2 ** n - 1 if k else n, "returned 31; expected 9"),  # only the two extremes
        (lambda n, k: sum(2 ** min(i, k) for i in range(n)) - 1, "expected 1"),  # one too few
        (lambda n, k: sum(2.0 ** min(i, k) for i in range(n)), "a float"),
        (lambda n, k: print(n * 2 ** k), "did you forget `return`"),
    ],
    "markov_log_likelihood": [
        (_ones_only_markov, "a variable that is 0"),
        (lambda x, p0, pn: -(x * 0 + 1).sum(1), "not right yet"),  # a constant
        (lambda x, p0, pn: torch.full((len(x),), float("nan")), "NaN"),
        (lambda x, p0, pn: torch.zeros(len(x), 1), "extra dimension of size 1"),
        (_off_by_one_markov, "IndexError"),
        (lambda x, p0, pn: x.sum(1) * math.log(p0) + math.log(pn), "take single numbers"),
    ],
    "kl_categorical": [
        (lambda p, q: (_xlogy(q, q) - _xlogy(q, p)).sum(-1), "arguments are swapped"),
        (lambda p, q: (p * (p.log() - q.log())).sum(-1), "0 * log 0"),
        (lambda p, q: (_xlogy(p, p) - _xlogy(p, q)).sum(-1) / math.log(2), "in bits"),
        (lambda p, q: (_xlogy(p, p) - _xlogy(p, q)), "did a sum over them go missing"),
        (lambda p, q: (p * math.log(p / q)).sum(-1), "take single numbers"),
    ],
    "kl_gaussian": [
        (lambda m1, s1, m2, s2: torch.log(s2 / s1) + (s1 + (m1 - m2) ** 2) / (2 * s2) - 0.5,
         "standard deviations"),
        (lambda m1, s1, m2, s2: torch.log(s1 / s2) + (s2**2 + (m1 - m2) ** 2) / (2 * s1**2) - 0.5,
         "KL(N2 || N1)"),
        (lambda m1, s1, m2, s2: torch.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2),
         "constant term"),
        (lambda m1, s1, m2, s2: math.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5,
         "take single numbers"),
    ],
    "jsd": [
        (lambda p, q: (_xlogy(p, p) - _xlogy(p, (p + q) / 2)).sum(-1), "KL(p || m) alone"),
        (lambda p, q: (_xlogy(p, p) - _xlogy(p, (p + q) / 2) + _xlogy(q, q)
                       - _xlogy(q, (p + q) / 2)).sum(-1), "average the two KLs"),
        (lambda p, q: 0.5 * ((_xlogy(p, p) - _xlogy(p, q))
                             + (_xlogy(q, q) - _xlogy(q, p))).sum(-1), "symmetrised KL"),
        (lambda p, q: 0.5 * (_xlogy((p + q) / 2, (p + q) / 2) - _xlogy((p + q) / 2, p)
                             + _xlogy((p + q) / 2, (p + q) / 2) - _xlogy((p + q) / 2, q)).sum(-1),
         "wrong way round"),
        (lambda p, q: 0.5 * (p * (p / ((p + q) / 2)).log() + q * (q / ((p + q) / 2)).log()).sum(-1),
         "0 * log 0"),
    ],
}


def _kl(mu, log_sigma):
    return 0.5 * (mu**2 + (2 * log_sigma).exp() - 1 - 2 * log_sigma).sum(-1)


def _elbo(rec_reduction="sum", sign=-1, sample=True, log_px=None, parts=True):
    def elbo(x, encoder, decoder):
        mu, log_sigma = encoder(x)
        z = mu + log_sigma.exp() * torch.randn_like(mu) if sample else mu
        logits = decoder(z)
        if log_px is None:
            log_px_z = -F.binary_cross_entropy_with_logits(logits, x, reduction="none")
        else:
            log_px_z = log_px(logits, x)
        rec = log_px_z.flatten(1).sum(1) if rec_reduction == "sum" else log_px_z.flatten(1).mean(1)
        kl = _kl(mu, log_sigma)
        return (rec + sign * kl, rec, kl) if parts else rec + sign * kl
    return elbo


def _log_sigmoid_then_log(logits, x):  # unstable: log(0) once sigmoid rounds to 0 or 1
    p = torch.sigmoid(logits)
    return x * torch.log(p) + (1 - x) * torch.log(1 - p)


def _clamped_bce(logits, x):  # F.binary_cross_entropy clamps log at -100: wrong when confident
    return -F.binary_cross_entropy(torch.sigmoid(logits), x, reduction="none")


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
        if combine == "naive":
            return torch.log(log_w.exp().mean(0))
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
            logits = logits_fn(x)
            if mode == "twice":  # right, but one network call too many per pixel
                logits = logits_fn(x)
            p = logits[:, i] if mode == "no sigmoid" else torch.sigmoid(logits[:, i])
            x[:, i] = (p > 0.5).float() if mode == "threshold" else torch.bernoulli(p)
        return x
    return sample


def _in_place_division(p_data, p_g):
    p_data /= p_data + p_g
    return p_data


def _nade(inclusive=False, hidden=torch.sigmoid, bias=True, out_bias=True):
    def nade_logits(x, W, c, V, b):
        terms = x.unsqueeze(-1) * W.T  # (B, D, d)
        a = terms.cumsum(1) - (0 if inclusive else terms) + (c if bias else 0)
        return (hidden(a) * V).sum(-1) + (b if out_bias else 0)
    return nade_logits


WRONG |= {
    "nade_logits": [
        (_nade(inclusive=True), "logit 0 depends on pixel 0"),
        (_nade(hidden=torch.relu), "the logits of 5 images of 6 pixels"),
        (_nade(bias=False), "the logits of 5 images of 6 pixels"),
        (_nade(out_bias=False), "the logits of 5 images of 6 pixels"),
        (lambda x, W, c, V, b: _nade()(x, W, c, V, b).detach(), "no gradient reaches"),
    ],
    "made_masks": [
        (lambda din, dh: ((dh[:, None] >= din[None, :]).float(),
                          (din[:, None] >= dh[None, :]).float()), "depends on input"),
        (lambda din, dh: ((dh[:, None] > din[None, :]).float(),
                          (din[:, None] > dh[None, :]).float()), "drops"),
        (lambda din, dh: ((din[:, None] <= dh[None, :]).float(),
                          (dh[:, None] < din[None, :]).float()), "has shape (5, 12)"),
        (lambda din, dh: (torch.zeros(len(dh), len(din)), torch.zeros(len(din), len(dh))),
         "drops"),
        (lambda din, dh: (dh[:, None] >= din[None, :]).float(), "expected a tuple"),
    ],
    "pixelcnn_mask": [
        (lambda k, t: _mask(k, "B"), "mask A for k = 3 reads the centre"),
        (lambda k, t: _mask(k, "A"), "mask B for k = 3 hides the centre"),
        (lambda k, t: _mask(k, t).T.contiguous(), "transposed"),
        (lambda k, t: torch.ones(k, k), "in the centre row, right of the centre"),
        (lambda k, t: torch.tril(torch.ones(k, k), -1), "in a row below the centre"),
        (lambda k, t: _mask(k, t)[None, None], "has shape (1, 1, 3, 3); expected (3, 3)"),
    ],
    "bernoulli_nll": [
        (lambda z, x: -_log_sigmoid_then_log(z, x).flatten(1).sum(1), "log(sigmoid(l))"),
        (lambda z, x: -_clamped_bce(z, x).flatten(1).sum(1), "log(sigmoid(l))"),
        (lambda z, x: F.binary_cross_entropy_with_logits(z, x, reduction="none").flatten(1)
         .mean(1), "not the mean"),
        (lambda z, x: -F.binary_cross_entropy_with_logits(z, x, reduction="none").flatten(1)
         .sum(1), "its negative"),
        (lambda z, x: F.binary_cross_entropy(z, x, reduction="none").flatten(1).sum(1),
         "_with_logits"),
    ],
    "sample_autoregressive": [
        (_sampler("one call"), "frequencies"), (_sampler("raster"), "frequencies"),
        (_sampler("threshold"), "frequencies"), (_sampler("no sigmoid"), "torch.sigmoid"),
        (_sampler("twice"), "called 6 times"),
    ],
    "discriminator_loss": [
        (lambda r, f: _bce(r, 0) + _bce(f, 1), "labels are swapped"),
        (lambda r, f: -(torch.sigmoid(r).log().mean() + (1 - torch.sigmoid(f)).log().mean()),
         "log(sigmoid(l))"),
        (lambda r, f: _bce(r, 1, "sum") + _bce(f, 0, "sum"), "not the sum"),
        (lambda r, f: _bce(r, 1), "term -E[log(1 - D(G(z)))] is missing"),
        (lambda r, f: F.binary_cross_entropy(torch.sigmoid(r), torch.ones_like(r))
         + F.binary_cross_entropy(torch.sigmoid(f), torch.zeros_like(f)), "log(sigmoid(l))"),
    ],
    "generator_loss": [
        (lambda f: torch.log1p(-torch.sigmoid(f)).mean(), "saturating loss"),
        (lambda f: _bce(f, 1).item(), "Python float"),
        (lambda f: -_bce(f, 0), "saturating loss"),
        (lambda f: torch.log(1 - torch.sigmoid(f)).mean(), "saturating loss"),
        (lambda f: -torch.log(torch.sigmoid(f)).mean(), "log(sigmoid(l))"),
        (lambda f: -_bce(f, 1), "mind the sign"),
    ],
    "optimal_discriminator": [
        (lambda pd, pg: pg / (pd + pg), "that is 1 - D*"),
        (lambda pd, pg: pd / pg, "not right yet"),  # a ratio, not a probability
        (lambda pd, pg: torch.full_like(pd, 0.5), "not right yet"),  # right only if p_G = p_data
        (_in_place_division, "changed its input `p_data` in place"),
    ],
    "reparameterize": [
        (lambda mu, ls: Normal(mu, ls.exp()).sample(), "no gradient"),
        (lambda mu, ls: mu + ls * torch.randn_like(mu), "std of your samples"),
        (lambda mu, ls: mu + (2 * ls).exp() * torch.randn_like(mu), "std of your samples"),
        (lambda mu, ls: mu + ls.exp() * torch.randn(mu.shape[1]), "repeats the same draws"),
        (lambda mu, ls: print(mu + ls.exp() * torch.randn_like(mu)), "forget `return`"),
    ],
    "kl_to_standard_normal": [
        (lambda mu, ls: _kl(mu, ls) / mu.shape[-1], "not the mean"),
        (lambda mu, ls: 0.5 * (mu**2 + ls.exp() - 1 - ls).sum(-1), "factor 2"),
        (lambda mu, ls: 0.5 * (mu**2 + (2 * ls).exp() - 1 - 2 * ls), "did a sum over them"),
        (lambda mu, ls: 0.5 * (mu**2 + ls.exp() ** 2 - 1 - torch.log(ls.exp() ** 2)).sum(-1),
         "log(0)"),
    ],
    "elbo": [
        (_elbo(sign=+1), "a minus sign"), (_elbo(rec_reduction="mean"), "not the mean"),
        (_elbo(sample=False), "decode a sample"),
        (_elbo(log_px=_log_sigmoid_then_log), "log(sigmoid(l))"),
        (_elbo(log_px=_clamped_bce), "log(sigmoid(l))"),
        (_elbo(parts=False), "expected a tuple (elbo, reconstruction, kl)"),
    ],
    "iwae_bound": [
        (_iwae(combine="mean"), "k = 1000"), (_iwae(minus_log_k=False), "subtract log k"),
        (_iwae(full_weight=False), "iwae_bound"), (_iwae(combine="naive"), "log space"),
    ],
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
        a = alpha_bar[t.long()].view(-1, 1)
        pred = eps_model(a.sqrt() * x0 + (1 - a).sqrt() * eps, t)
        return reduce((pred - (eps if target == "eps" else x0)).pow(2))
    return diffusion_loss


def _ddpm(variance="posterior", eps_root=True, alpha="step", last="mean"):
    def ddpm_step(x_t, t, eps, alpha_bar, noise):
        ab_t = alpha_bar[t]
        ab_prev = alpha_bar[t - 1] if t > 0 or last == "wrap" else torch.ones_like(ab_t)
        a_t = ab_t / ab_prev if alpha == "step" else ab_t
        beta = 1 - a_t
        mean = (x_t - beta / ((1 - ab_t).sqrt() if eps_root else 1 - ab_t) * eps) / a_t.sqrt()
        var = beta * (1 - ab_prev) / (1 - ab_t) if variance != "beta" else beta
        if t == 0:
            return mean
        return mean + (var.sqrt() if variance != "no sqrt" else var) * noise
    return ddpm_step


def _in_place_ddim(x_t, eps, a, a_prev):
    x_t -= (1 - a).sqrt() * eps
    x_t /= a.sqrt()
    return a_prev.sqrt() * x_t + (1 - a_prev).sqrt() * eps


def _q_sample_without_reshape(x0, t, noise, alpha_bar):
    return alpha_bar[t].sqrt() * x0 + (1 - alpha_bar[t]).sqrt() * noise


WRONG |= {
    "q_sample": [
        (_q_sample(lambda a: a, lambda a: 1 - a), "square roots"),
        (_q_sample(lambda a: (1 - a).sqrt(), lambda a: a.sqrt()), "swapped roles"),
        (lambda x0, t, noise, ab: ab[t[0]].sqrt() * x0 + (1 - ab[t[0]]).sqrt() * noise,
         "own step"),
        (lambda x0, t, noise, ab: ab[t].view(-1, 1, 1, 1).sqrt() * x0, "has shape"),
        (_q_sample_without_reshape, "your line"),
    ],
    "diffusion_loss": [
        (_loss(target="x0"), "not x0"),
        (_loss(t_fn=lambda B, T: torch.randint(1, T + 1, (B,))), "indices run from 0 to T-1"),
        (_loss(t_fn=lambda B, T: torch.randint(0, T, (1,)).expand(B)), "uniform"),
        (_loss(noise_fn=torch.rand_like), "standard normal"),
        (_loss(reduce=torch.sum), "not the sum"),
        (_loss(t_fn=lambda B, T: torch.rand(B) * T), "dtype torch.float32; expected torch.int64"),
    ],
    "ddpm_step": [
        (_ddpm(variance="beta"), "sigma_t^2 = beta_t"), (_ddpm(variance="no sqrt"), "square root"),
        (_ddpm(eps_root=False), "not right yet"), (_ddpm(alpha="bar"), "not right yet"),
        (_ddpm(last="wrap"), "alpha_bar[-1], the last entry"),
    ],
    "ddim_step": [
        (lambda x_t, eps, a, a_prev: (x_t - (1 - a).sqrt() * eps) / a.sqrt(), "estimate of x0"),
        (lambda x_t, eps, a, a_prev: a_prev.sqrt() * (x_t - (1 - a).sqrt() * eps) / a.sqrt()
         + (1 - a_prev).sqrt() * torch.randn_like(eps), "not right yet"),  # fresh noise
        (lambda x_t, eps, a, a_prev: a_prev * (x_t - (1 - a) * eps) / a + (1 - a_prev) * eps,
         "not right yet"),
        (_in_place_ddim, "changed its input `x_t` in place"),
    ],
}


def _clip_loss(directions="both", normalise=True, temperature="multiply", stable=True):
    def contrastive_loss(img, txt, log_scale):
        if normalise:
            img, txt = F.normalize(img, dim=1), F.normalize(txt, dim=1)
        scale = log_scale.exp() if temperature == "multiply" else 1 / log_scale.exp()
        logits = scale * img @ txt.T
        targets = torch.arange(len(logits))
        if not stable:  # a softmax by hand: exp(100) is inf in float32
            probs = logits.exp() / logits.exp().sum(1, keepdim=True)
            probs_t = logits.T.exp() / logits.T.exp().sum(1, keepdim=True)
            return -(probs.diagonal().log().mean() + probs_t.diagonal().log().mean()) / 2
        one_way = F.cross_entropy(logits, targets)
        other_way = F.cross_entropy(logits.T, targets)
        return one_way if directions == "one" else (one_way + other_way) / 2
    return contrastive_loss


def _in_place_guidance(eps_cond, eps_uncond, scale):
    eps_uncond += scale * (eps_cond - eps_uncond)
    return eps_uncond


def _in_place_inpaint(x, x0, mask, a, noise):
    known = mask > 0
    x[known] = (a.sqrt() * x0 + (1 - a).sqrt() * noise)[known]
    return x


WRONG |= {
    "contrastive_loss": [
        (_clip_loss(directions="one"), "one direction"),
        (_clip_loss(normalise=False), "normalise the embeddings"),
        (_clip_loss(temperature="divide"), "multiplies the similarities"),
        (lambda img, txt, s: (s.exp() * F.normalize(img, dim=1) @ F.normalize(txt, dim=1).T)
         .diagonal().neg().mean(), "not right yet"),  # pulls pairs together, never pushes apart
        (_clip_loss(stable=False), "overflows"),
    ],
    "guided_eps": [
        (lambda c, u, s: c + s * (c - u), "(1 + w) convention"),
        (lambda c, u, s: u + s * (u - c), "away from the condition"),
        (lambda c, u, s: s * c + u, "not right yet"),
        (_in_place_guidance, "changed its input `eps_uncond` in place"),
    ],
    "inpaint_step": [
        (lambda x, x0, m, a, n: m * x0 + (1 - m) * x, "must be noised"),
        (lambda x, x0, m, a, n: (1 - m) * (a.sqrt() * x0 + (1 - a).sqrt() * n) + m * x,
         "marks the known pixels"),
        (lambda x, x0, m, a, n: m * (a * x0 + (1 - a) * n) + (1 - m) * x, "square roots"),
        (_in_place_inpaint, "changed its input `x` in place"),
    ],
}


BORROWED = "calls the check's own code"
WRONG["kl_categorical"].append((lambda p, q: checks.divergences._kl(p, q).to(p.dtype),
                                f"{BORROWED} (divergences._kl)"))
WRONG["markov_log_likelihood"].append((lambda x, p0, pn: checks.counting._markov_reference(
    x, p0, pn).float(), f"{BORROWED} (counting._markov_reference)"))
WRONG["contrastive_loss"].append((lambda i, t, s: checks.multimodal._clip_loss(i, t, s),
                                  f"{BORROWED} (multimodal._clip_loss)"))
WRONG["discriminator_loss"].append((lambda r, f: checks.adversarial._d_loss(r, f).float(),
                                    f"{BORROWED} (adversarial._d_loss)"))


@pytest.mark.parametrize("notebook,name,check", CASES, ids=IDS)
def test_check_rejects_plausible_wrong_answers_with_a_specific_message(notebook, name, check):
    assert len(WRONG[name]) >= 4
    for wrong, words in WRONG[name]:
        message = _rejected(check, wrong)
        assert words in message, f"expected {words!r} in:\n{message}"


@pytest.mark.parametrize("answer,words", [
    (None, "is None: did you forget `return`?"),
    ([0.5, 0.5], "is a list"),
    ((torch.zeros(6), torch.zeros(6)), "is a tuple of 2 values; expected one tensor"),
    (0.5, "is a Python float"),
    (torch.zeros(3), "has shape (3,); expected (6,)"),
    (torch.zeros(6, dtype=torch.long), "dtype torch.int64; expected floating point"),
    (torch.zeros(6, device="meta"), "is on the device meta, its inputs on cpu"),
    (torch.full((6,), float("nan")), "6 NaN or infinite value(s)"),
])
def test_bad_answers_get_their_own_plain_sentence(answer, words):
    assert words in _rejected(checks.check_categorical_mle, lambda s, m: answer)


def test_a_float_answer_to_float64_inputs_is_told_about_the_dtype():
    kl = lambda p, q: (torch.xlogy(p, p) - torch.xlogy(p, q)).sum(-1).float()
    assert "dtype torch.float32, its inputs torch.float64" in _rejected(checks.check_kl_categorical,
                                                                        kl)


def test_an_error_inside_the_answer_names_the_students_line():
    def q_sample(x0, t, noise, alpha_bar):
        a = alpha_bar[t]
        return a.sqrt() * x0  # (B,) against (B, 2): does not broadcast
    message = _rejected(checks.check_q_sample, q_sample)
    assert "q_sample: your code raised RuntimeError: The size of tensor a (5)" in message
    assert "(in q_sample): return a.sqrt() * x0  # (B,) against (B, 2)" in message
    assert "hint: the shapes do not broadcast" in message
    assert "helpers" not in message and "site-packages" not in message


def test_a_check_asks_for_the_function_itself():
    assert "pass the function without calling it" in _rejected(checks.check_jsd, 0.3)


def test_an_answer_that_never_returns_is_stopped_with_a_message(monkeypatch):
    from helpers.checks import timelimit

    monkeypatch.setattr(timelimit, "SECONDS", 0.3)

    def categorical_mle(samples, num_classes):
        while True:
            try:
                pass
            except Exception:  # a broad except in the student's loop does not hide the limit
                pass
    message = _rejected(checks.check_categorical_mle, categorical_mle)
    assert "did not return within 0.3 s" in message and "a loop that never ends" in message
    assert len(message.splitlines()) <= 5


@pytest.mark.parametrize("notebook,name,check", CASES, ids=IDS)
def test_check_refuses_each_independently_written_wrong_answer_with_its_message(notebook, name,
                                                                               check):
    answers, words = wrong_answers.POOL[name], wrong_answers.MESSAGES[name]
    assert len(answers) == len(words) >= 8
    for (kind, mistake, answer), expected in zip(answers, words, strict=True):
        message = _rejected(check, answer)
        assert expected in message, f"{mistake} ({kind}): expected {expected!r} in:\n{message}"


@pytest.mark.parametrize("notebook,name,check", CASES, ids=IDS)
def test_check_accepts_correct_answers_written_differently(notebook, name, check, capsys):
    assert len(wrong_answers.CORRECT[name]) >= 2
    for form, answer in wrong_answers.CORRECT[name]:
        try:
            check(answer)
        except checks.ExerciseError as err:
            pytest.fail(f"a correct answer ({form}) was refused:\n{err}")
        assert capsys.readouterr().out.startswith("✓")


KINDS = {"shape": ("shape", "broadcast"), "scale": ("scale",), "format": ("format",),
         "gradient": ("gradient",), "random": ("random",)}


def test_every_kind_of_mistake_that_applies_has_two_answers_or_more_per_exercise():
    from test_check_rubric import RUBRIC

    total = sum(len(v) for v in WRONG.values()) + sum(map(len, wrong_answers.POOL.values()))
    assert total >= 200
    for _, name, _ in CASES:
        applies = ["shape", "scale", "format"] + ["gradient"] * bool(RUBRIC[name].cuts) + [
            "random"] * bool(RUBRIC[name].noise)
        kinds = [kind for kind, _, _ in wrong_answers.POOL[name]]
        short = [k for k in applies if sum(kinds.count(x) for x in KINDS[k]) < 2 - (k == "format")]
        assert not short, f"{name}: fewer than two wrong answers of the kind(s) {short}"
