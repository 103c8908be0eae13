"""Plausible wrong answers (and correct alternative forms) for the exercises, written from the
exercise statements and the notebooks' solutions by someone who had not seen the checks, and
tried as a student would (tests/test_checks.py runs them all).

POOL[name]    -> list of (kind, description, function)
CORRECT[name] -> list of (description, function)

Kinds: gradient, shape, scale, random, format, value, broadcast.
Everything is self-contained (torch only); nothing is imported from the repository.
"""

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch.distributions import Bernoulli, Normal, kl_divergence


# ----------------------------------------------------------------------------------------
# small helpers (student-style building blocks, written inline on purpose)
# ----------------------------------------------------------------------------------------
def _reparam(mu, log_sigma):
    return mu + log_sigma.exp() * torch.randn_like(mu)


def _kl_std(mu, log_sigma):
    return 0.5 * (mu**2 + (2 * log_sigma).exp() - 1 - 2 * log_sigma).sum(-1)


def _recon(logits, x):
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)


def _abview(alpha_bar, t, x0):
    return alpha_bar[t].view(-1, *[1] * (x0.ndim - 1))


def _xlogy_kl(p, q):
    return (torch.xlogy(p, p) - torch.xlogy(p, q)).sum(-1)


# ========================================================================================
# 01  categorical_mle
# ========================================================================================
def cat_halfcount(samples, m):
    counts = torch.zeros(m, dtype=torch.float16)
    counts.index_add_(0, samples, torch.ones(len(samples), dtype=torch.float16))
    return counts.float() / len(samples)


def cat_onebased(samples, m):
    faces = torch.arange(1, m + 1)
    return (samples[:, None] == faces[None, :]).float().mean(0)


def cat_loop_list(samples, m):
    return [(samples == j).sum().item() / len(samples) for j in range(m)]


# ========================================================================================
# 01  num_params
# ========================================================================================
def np_closed_form(n, k):
    # first k variables: 1 + 2 + ... + 2^(k-1); the rest 2^k each (assumes k <= n)
    return (2**k - 1) + (n - k) * 2**k


def np_int32(n, k):
    exps = torch.arange(n, dtype=torch.int32).clamp(max=k)
    return int((2**exps).sum())


def np_float32(n, k):
    exps = torch.arange(n).clamp(max=k).float()
    return int((2.0**exps).sum().item())


def np_tensor(n, k):
    return (2 ** torch.arange(n).clamp(max=k)).sum()


# ========================================================================================
# 01  markov_log_likelihood
# ========================================================================================
def _p_on(x, p_first, p_next):
    prev = x[:, :-1].long()
    p_on = p_next.gather(1, prev.T).T
    return torch.cat([p_first.expand(len(x), 1), p_on], 1)


def mll_prod(x, p_first, p_next):
    p_on = _p_on(x, p_first, p_next)
    return torch.where(x == 1, p_on, 1 - p_on).prod(1).log()


def mll_log2(x, p_first, p_next):
    p_on = _p_on(x, p_first, p_next)
    return (x * p_on.log2() + (1 - x) * (1 - p_on).log2()).sum(1)


def mll_no_first(x, p_first, p_next):
    prev = x[:, :-1].long()
    p_on = p_next.gather(1, prev.T).T
    xs = x[:, 1:]
    return (xs * p_on.log() + (1 - xs) * (1 - p_on).log()).sum(1)


def mll_current_not_prev(x, p_first, p_next):
    # conditions on the current pixel instead of the previous one
    cur = x[:, 1:].long()
    p_on = p_next.gather(1, cur.T).T
    p_on = torch.cat([p_first.expand(len(x), 1), p_on], 1)
    return (x * p_on.log() + (1 - x) * (1 - p_on).log()).sum(1)


def mll_swapped_cols(x, p_first, p_next):
    # reads p_next[i-1, 0] as P(x_i = 1 | x_{i-1} = 1)
    prev = 1 - x[:, :-1].long()
    p_on = p_next.gather(1, prev.T).T
    p_on = torch.cat([p_first.expand(len(x), 1), p_on], 1)
    return (x * p_on.log() + (1 - x) * (1 - p_on).log()).sum(1)


def mll_mean(x, p_first, p_next):
    p_on = _p_on(x, p_first, p_next)
    return (x * p_on.log() + (1 - x) * (1 - p_on).log()).mean(1)


def mll_hard783(x, p_first, p_next):
    prev = x[:, :-1].long()
    p_on = p_next[torch.arange(783), prev]  # (B, 783); hard-coded MNIST length
    p_on = torch.cat([p_first.expand(len(x), 1), p_on], 1)
    return (x * p_on.log() + (1 - x) * (1 - p_on).log()).sum(1)


def mll_squeeze(x, p_first, p_next):
    p_on = _p_on(x, p_first, p_next)
    return (x * p_on.log() + (1 - x) * (1 - p_on).log()).sum(1).squeeze()


def mll_clamp(x, p_first, p_next):
    p_on = _p_on(x, p_first, p_next).clamp(1e-4, 1 - 1e-4)
    return (x * p_on.log() + (1 - x) * (1 - p_on).log()).sum(1)


def mll_keepdim_first(x, p_first, p_next):
    first = x[:, :1] * p_first.log() + (1 - x[:, :1]) * (1 - p_first).log()  # (B, 1)
    prev = x[:, :-1].long()
    p_on = p_next.gather(1, prev.T).T
    xs = x[:, 1:]
    rest = (xs * p_on.log() + (1 - xs) * (1 - p_on).log()).sum(1)  # (B,)
    return first + rest


def mll_half(x, p_first, p_next):
    p_on = _p_on(x, p_first, p_next).half()
    xh = x.half()
    return (xh * p_on.log() + (1 - xh) * (1 - p_on).log()).sum(1)


def mll_swap_terms(x, p_first, p_next):
    p_on = _p_on(x, p_first, p_next)
    return (x * (1 - p_on).log() + (1 - x) * p_on.log()).sum(1)


def mll_ok_loop(x, p_first, p_next):
    B, n = x.shape
    out = x[:, 0] * p_first.log() + (1 - x[:, 0]) * (1 - p_first).log()
    for i in range(1, n):
        p = torch.where(x[:, i - 1] == 1, p_next[i - 1, 1], p_next[i - 1, 0])
        out = out + torch.where(x[:, i] == 1, p.log(), (1 - p).log())
    return out


def mll_ok_index(x, p_first, p_next):
    B, n = x.shape
    prev = x[:, :-1].long()
    p_on = p_next[torch.arange(n - 1)[None, :].expand(B, -1), prev]
    p_on = torch.cat([p_first.reshape(1, 1).expand(B, 1), p_on], dim=1)
    return torch.where(x.bool(), p_on.log(), torch.log1p(-p_on)).sum(dim=-1)


# ========================================================================================
# 02  made_masks
# ========================================================================================
def made_strict_hidden(i, h):
    return (h[:, None] > i[None, :]).float(), (i[:, None] > h[None, :]).float()


def made_ge_out(i, h):
    return (h[:, None] >= i[None, :]).float(), (i[:, None] >= h[None, :]).float()


def made_transposed(i, h):
    return (i[:, None] <= h[None, :]).float(), (h[:, None] < i[None, :]).float()


def made_bool(i, h):
    return h[:, None] >= i[None, :], i[:, None] > h[None, :]


def made_long(i, h):
    return (h[:, None] >= i[None, :]).long(), (i[:, None] > h[None, :]).long()


def made_counts(i, h):
    # "number of inputs the unit may see" style: values 0..D, not 0/1
    return (h[:, None] - i[None, :] + 1).clamp(min=0).float(), (i[:, None] - h[None, :]).clamp(
        min=0
    ).float()


def made_natural_order(i, h):
    pos = torch.arange(1, len(i) + 1)  # ignores the given ordering
    return (h[:, None] >= pos[None, :]).float(), (pos[:, None] > h[None, :]).float()


def made_zero_based(i, h):
    return (h[:, None] >= i[None, :] - 1).float(), (i[:, None] - 1 > h[None, :]).float()


def made_half(i, h):
    return (h[:, None] >= i[None, :]).half(), (i[:, None] > h[None, :]).half()


def made_out_transposed(i, h):
    return (h[:, None] >= i[None, :]).float(), (h[:, None] < i[None, :]).float()  # (H, D)


def made_ok_loops(i, h):
    H, D = len(h), len(i)
    mh = torch.zeros(H, D)
    mo = torch.zeros(D, H)
    for a in range(H):
        for b in range(D):
            mh[a, b] = float(h[a] >= i[b])
            mo[b, a] = float(i[b] > h[a])
    return mh, mo


# ========================================================================================
# 02  bernoulli_nll
# ========================================================================================
def bnll_log_sigmoid(logits, x):
    p = torch.sigmoid(logits)
    return -(x * p.log() + (1 - x) * (1 - p).log()).flatten(1).sum(1)


def bnll_clamped(logits, x):
    p = torch.sigmoid(logits).clamp(1e-7, 1 - 1e-7)
    return -(x * p.log() + (1 - x) * (1 - p).log()).flatten(1).sum(1)


def bnll_softplus_naive(logits, x):
    # log(1 + exp(l)) - x*l, overflows for large logits
    return (torch.log(1 + torch.exp(logits)) - x * logits).flatten(1).sum(1)


def bnll_bce_probs(logits, x):
    return F.binary_cross_entropy(torch.sigmoid(logits), x, reduction="none").flatten(1).sum(1)


def bnll_detach(logits, x):
    return (
        F.binary_cross_entropy_with_logits(logits.detach(), x, reduction="none").flatten(1).sum(1)
    )


def bnll_tolist(logits, x):
    loss = F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
    return torch.tensor(loss.tolist())


@torch.no_grad()
def bnll_nograd(logits, x):
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)


def bnll_sum123(logits, x):
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum((1, 2, 3))


def bnll_view784(logits, x):
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").view(-1, 784).sum(1)


def bnll_sum_last(logits, x):
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)


def bnll_keepdim(logits, x):
    sp = F.softplus(logits).flatten(1).sum(1, keepdim=True)  # (B, 1)
    return sp - (x * logits).flatten(1).sum(1)  # (B,) -> (B, B)


def bnll_half(logits, x):
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1).half()


def bnll_ok_softplus(logits, x):
    return (F.softplus(logits) - x * logits).flatten(1).sum(1)


def bnll_ok_bernoulli(logits, x):
    return -Bernoulli(logits=logits).log_prob(x).reshape(len(x), -1).sum(-1)


def bnll_ok_where(logits, x):
    return torch.where(x > 0.5, F.softplus(-logits), F.softplus(logits)).reshape(len(x), -1).sum(-1)


# ========================================================================================
# 02  sample_autoregressive
# ========================================================================================
@torch.no_grad()
def sar_reseed(logits_fn, num_samples, num_pixels, order):
    torch.manual_seed(0)
    x = torch.zeros(num_samples, num_pixels)
    for i in order:
        x[:, i] = torch.bernoulli(torch.sigmoid(logits_fn(x)[:, i]))
    return x


@torch.no_grad()
def sar_threshold(logits_fn, num_samples, num_pixels, order):
    x = torch.zeros(num_samples, num_pixels)
    for i in order:
        x[:, i] = (torch.sigmoid(logits_fn(x)[:, i]) > 0.5).float()
    return x


@torch.no_grad()
def sar_shared_uniform(logits_fn, num_samples, num_pixels, order):
    x = torch.zeros(num_samples, num_pixels)
    for i in order:
        u = torch.rand(1)  # one draw for the whole batch
        x[:, i] = (u < torch.sigmoid(logits_fn(x)[:, i])).float()
    return x


@torch.no_grad()
def sar_gauss_threshold(logits_fn, num_samples, num_pixels, order):
    x = torch.zeros(num_samples, num_pixels)
    for i in order:
        logit = logits_fn(x)[:, i]
        x[:, i] = (logit + torch.randn_like(logit) > 0).float()  # probit, not logistic
    return x


@torch.no_grad()
def sar_one_pass(logits_fn, num_samples, num_pixels, order):
    x = torch.zeros(num_samples, num_pixels)
    return torch.bernoulli(torch.sigmoid(logits_fn(x)))


@torch.no_grad()
def sar_ignore_order(logits_fn, num_samples, num_pixels, order):
    x = torch.zeros(num_samples, num_pixels)
    for i in range(num_pixels):
        x[:, i] = torch.bernoulli(torch.sigmoid(logits_fn(x)[:, i]))
    return x


@torch.no_grad()
def sar_probs(logits_fn, num_samples, num_pixels, order):
    x = torch.zeros(num_samples, num_pixels)
    for i in order:
        x[:, i] = torch.sigmoid(logits_fn(x)[:, i])
    return x


@torch.no_grad()
def sar_784(logits_fn, num_samples, num_pixels, order):
    x = torch.zeros(num_samples, 784)
    for i in order:
        x[:, i] = torch.bernoulli(torch.sigmoid(logits_fn(x)[:, i]))
    return x


@torch.no_grad()
def sar_bool(logits_fn, num_samples, num_pixels, order):
    x = torch.zeros(num_samples, num_pixels)
    for i in order:
        x[:, i] = torch.bernoulli(torch.sigmoid(logits_fn(x)[:, i]))
    return x.bool()


@torch.no_grad()
def sar_long(logits_fn, num_samples, num_pixels, order):
    x = torch.zeros(num_samples, num_pixels)
    for i in order:
        x[:, i] = torch.bernoulli(torch.sigmoid(logits_fn(x)[:, i]))
    return x.long()


@torch.no_grad()
def sar_neg_logits(logits_fn, num_samples, num_pixels, order):
    x = torch.zeros(num_samples, num_pixels)
    for i in order:
        x[:, i] = torch.bernoulli(torch.sigmoid(-logits_fn(x)[:, i]))
    return x


@torch.no_grad()
def sar_ok_pre_uniform(logits_fn, num_samples, num_pixels, order):
    u = torch.rand(num_samples, num_pixels)
    x = torch.zeros(num_samples, num_pixels)
    for i in order:
        x[:, i] = (u[:, i] < torch.sigmoid(logits_fn(x)[:, i])).float()
    return x


@torch.no_grad()
def sar_ok_logistic(logits_fn, num_samples, num_pixels, order):
    x = torch.zeros(num_samples, num_pixels)
    for i in list(order):
        logit = logits_fn(x)[:, i]
        u = torch.rand_like(logit).clamp(1e-12, 1 - 1e-7)
        x[:, i] = (logit + torch.log(u) - torch.log1p(-u) > 0).to(x.dtype)
    return x


@torch.no_grad()
def sar_ok_distribution(logits_fn, num_samples, num_pixels, order):
    x = x_new = torch.zeros(num_samples, num_pixels)
    for i in order:
        x_new = x.clone()
        x_new[:, i] = Bernoulli(logits=logits_fn(x)[:, i]).sample()
        x = x_new
    return x


# ========================================================================================
# 03  kl_categorical / kl_gaussian / jsd
# ========================================================================================
def klc_kl_div_sum(p, q):
    return F.kl_div(q.log(), p, reduction="sum")


def klc_batchmean(p, q):
    return F.kl_div(q.log(), p, reduction="batchmean")


def klc_item(p, q):
    return (torch.xlogy(p, p) - torch.xlogy(p, q)).sum(-1).item()


def klg_kl_mean_last(mu1, sigma1, mu2, sigma2):
    kl = torch.log(sigma2 / sigma1) + (sigma1**2 + (mu1 - mu2) ** 2) / (2 * sigma2**2) - 0.5
    return kl.sum(-1)


def klg_double(mu1, sigma1, mu2, sigma2):
    mu1, sigma1, mu2, sigma2 = (
        torch.as_tensor(a, dtype=torch.float64) for a in (mu1, sigma1, mu2, sigma2)
    )
    return torch.log(sigma2 / sigma1) + (sigma1**2 + (mu1 - mu2) ** 2) / (2 * sigma2**2) - 0.5


def klg_var_squared(mu1, sigma1, mu2, sigma2):
    # log-ratio via squared sigmas: underflows for tiny sigma
    return (
        0.5 * torch.log(sigma2**2)
        - 0.5 * torch.log(sigma1**2)
        + (sigma1**2 + (mu1 - mu2) ** 2) / (2 * sigma2**2)
        - 0.5
    )


def jsd_nan(p, q):
    m = (p + q) / 2
    return 0.5 * (p * (p / m).log()).sum(-1) + 0.5 * (q * (q / m).log()).sum(-1)


def jsd_bits(p, q):
    m = (p + q) / 2
    return (0.5 * _xlogy_kl(p, m) + 0.5 * _xlogy_kl(q, m)) / math.log(2)


def jsd_sqrt(p, q):
    m = (p + q) / 2
    return (0.5 * _xlogy_kl(p, m) + 0.5 * _xlogy_kl(q, m)).sqrt()  # JS *distance* (scipy)


def jsd_ok_entropy(p, q):
    H = lambda r: -torch.xlogy(r, r).sum(-1)
    return H((p + q) / 2) - (H(p) + H(q)) / 2


def jsd_ok_masked(p, q):
    m = 0.5 * (p + q)
    kp = torch.where(p > 0, p * (p.log() - m.log()), torch.zeros_like(p)).sum(-1)
    kq = torch.where(q > 0, q * (q.log() - m.log()), torch.zeros_like(q)).sum(-1)
    return 0.5 * kp + 0.5 * kq


# ========================================================================================
# 04  reparameterize
# ========================================================================================
def rep_reseed(mu, log_sigma):
    torch.manual_seed(0)
    return mu + log_sigma.exp() * torch.randn_like(mu)


@torch.no_grad()
def rep_nograd(mu, log_sigma):
    return mu + log_sigma.exp() * torch.randn_like(mu)


def rep_row_noise(mu, log_sigma):
    eps = torch.randn(*mu.shape[:-1], 1)  # one noise value per row
    return mu + log_sigma.exp() * eps


def rep_shared_batch(mu, log_sigma):
    eps = torch.randn(mu.shape[-1])  # one noise vector for the whole batch
    return mu + log_sigma.exp() * eps


def rep_shared_k(mu, log_sigma):
    eps = torch.randn(mu.shape[-2:]) if mu.ndim >= 2 else torch.randn(mu.shape)
    return mu + log_sigma.exp() * eps  # same draw reused over leading (k) dims


def rep_standardized(mu, log_sigma):
    eps = torch.randn_like(mu)
    eps = (eps - eps.mean()) / eps.std()
    return mu + log_sigma.exp() * eps


def rep_float64(mu, log_sigma):
    eps = torch.randn(mu.shape, dtype=torch.float64)
    return mu + log_sigma.exp() * eps


def rep_randn_2d(mu, log_sigma):
    eps = torch.randn(mu.shape[0], mu.shape[1])  # written for (B, D); raises on 1-D
    return mu + log_sigma.exp() * eps


def rep_ok_rsample(mu, log_sigma):
    return Normal(mu, log_sigma.exp()).rsample()


def rep_ok_addcmul(mu, log_sigma):
    return torch.addcmul(
        mu, torch.exp(log_sigma), torch.randn(mu.shape, dtype=mu.dtype, device=mu.device)
    )


# ========================================================================================
# 04  kl_to_standard_normal
# ========================================================================================
def kls_sigma_sq(mu, log_sigma):
    var = log_sigma.exp() ** 2
    return 0.5 * (mu**2 + var - 1 - torch.log(var)).sum(-1)


def kls_torch_dist(mu, log_sigma):
    return kl_divergence(
        Normal(mu, log_sigma.exp()), Normal(torch.zeros_like(mu), torch.ones_like(mu))
    ).sum(-1)


def kls_tolist(mu, log_sigma):
    return torch.tensor(_kl_std(mu, log_sigma).tolist())


def kls_keepdim(mu, log_sigma):
    return 0.5 * (
        (mu**2).sum(-1) + ((2 * log_sigma).exp() - 1 - 2 * log_sigma).sum(-1, keepdim=True)
    )


def kls_ok_split(mu, log_sigma):
    return 0.5 * (mu.pow(2) + torch.exp(2 * log_sigma) - 1).sum(-1) - log_sigma.sum(-1)


def kls_ok_einsum(mu, log_sigma):
    var = torch.exp(log_sigma * 2)
    return torch.einsum("...d->...", 0.5 * mu * mu + 0.5 * var - 0.5 - log_sigma)


# ========================================================================================
# 04  elbo
# ========================================================================================
def elbo_sample_nograd(x, encoder, decoder):
    mu, log_sigma = encoder(x)
    z = Normal(mu, log_sigma.exp()).sample()
    rec = _recon(decoder(z), x)
    kl = _kl_std(mu, log_sigma)
    return rec - kl, rec, kl


def elbo_normal_fn(x, encoder, decoder):
    mu, log_sigma = encoder(x)
    z = torch.normal(mu, log_sigma.exp())
    rec = _recon(decoder(z), x)
    kl = _kl_std(mu, log_sigma)
    return rec - kl, rec, kl


def elbo_kl_detached(x, encoder, decoder):
    mu, log_sigma = encoder(x)
    z = _reparam(mu, log_sigma)
    rec = _recon(decoder(z), x)
    kl = _kl_std(mu.detach(), log_sigma.detach())
    return rec - kl, rec, kl


def elbo_z_detached(x, encoder, decoder):
    mu, log_sigma = encoder(x)
    z = _reparam(mu, log_sigma).detach()
    rec = _recon(decoder(z), x)
    kl = _kl_std(mu, log_sigma)
    return rec - kl, rec, kl


def elbo_reseed(x, encoder, decoder):
    torch.manual_seed(0)
    mu, log_sigma = encoder(x)
    z = _reparam(mu, log_sigma)
    rec = _recon(decoder(z), x)
    kl = _kl_std(mu, log_sigma)
    return rec - kl, rec, kl


def elbo_z_mu(x, encoder, decoder):
    mu, log_sigma = encoder(x)
    rec = _recon(decoder(mu), x)  # no sampling at all
    kl = _kl_std(mu, log_sigma)
    return rec - kl, rec, kl


def elbo_shared_eps(x, encoder, decoder):
    mu, log_sigma = encoder(x)
    z = mu + log_sigma.exp() * torch.randn(mu.shape[-1])
    rec = _recon(decoder(z), x)
    kl = _kl_std(mu, log_sigma)
    return rec - kl, rec, kl


def elbo_plus_kl(x, encoder, decoder):
    mu, log_sigma = encoder(x)
    rec = _recon(decoder(_reparam(mu, log_sigma)), x)
    kl = _kl_std(mu, log_sigma)
    return rec + kl, rec, kl


def elbo_bce_sign(x, encoder, decoder):
    mu, log_sigma = encoder(x)
    logits = decoder(_reparam(mu, log_sigma))
    rec = F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
    kl = _kl_std(mu, log_sigma)
    return rec - kl, rec, kl


def elbo_mean_pixels(x, encoder, decoder):
    mu, log_sigma = encoder(x)
    logits = decoder(_reparam(mu, log_sigma))
    rec = -F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).mean(1)
    kl = _kl_std(mu, log_sigma)
    return rec - kl, rec, kl


def elbo_logvar_kl(x, encoder, decoder):
    mu, log_sigma = encoder(x)
    rec = _recon(decoder(_reparam(mu, log_sigma)), x)
    kl = 0.5 * (mu**2 + log_sigma.exp() - 1 - log_sigma).sum(-1)  # treats log_sigma as log-variance
    return rec - kl, rec, kl


def elbo_log_sigmoid(x, encoder, decoder):
    mu, log_sigma = encoder(x)
    p = torch.sigmoid(decoder(_reparam(mu, log_sigma)))
    rec = (x * p.log() + (1 - x) * (1 - p).log()).flatten(1).sum(1)
    kl = _kl_std(mu, log_sigma)
    return rec - kl, rec, kl


def elbo_view784(x, encoder, decoder):
    mu, log_sigma = encoder(x)
    logits = decoder(_reparam(mu, log_sigma))
    rec = -F.binary_cross_entropy_with_logits(logits, x, reduction="none").view(-1, 784).sum(1)
    kl = _kl_std(mu, log_sigma)
    return rec - kl, rec, kl


def elbo_keepdim(x, encoder, decoder):
    mu, log_sigma = encoder(x)
    rec = _recon(decoder(_reparam(mu, log_sigma)), x)
    kl = 0.5 * (mu**2 + (2 * log_sigma).exp() - 1 - 2 * log_sigma).sum(-1, keepdim=True)
    return rec - kl, rec, kl


def elbo_means(x, encoder, decoder):
    mu, log_sigma = encoder(x)
    rec = _recon(decoder(_reparam(mu, log_sigma)), x)
    kl = _kl_std(mu, log_sigma)
    return (rec - kl).mean(), rec.mean(), kl.mean()


def elbo_order(x, encoder, decoder):
    mu, log_sigma = encoder(x)
    rec = _recon(decoder(_reparam(mu, log_sigma)), x)
    kl = _kl_std(mu, log_sigma)
    return rec - kl, kl, rec


def elbo_row_eps(x, encoder, decoder):
    mu, log_sigma = encoder(x)
    z = mu + log_sigma.exp() * torch.randn(len(mu), 1)
    rec = _recon(decoder(z), x)
    kl = _kl_std(mu, log_sigma)
    return rec - kl, rec, kl


def elbo_ok_dist(x, encoder, decoder):
    mu, log_sigma = encoder(x)
    q = Normal(mu, log_sigma.exp())
    z = q.rsample()
    rec = Bernoulli(logits=decoder(z)).log_prob(x).reshape(len(x), -1).sum(-1)
    kl = 0.5 * (mu.pow(2) + torch.exp(2 * log_sigma) - 1).sum(-1) - log_sigma.sum(-1)
    return rec - kl, rec, kl


def elbo_ok_softplus(x, encoder, decoder):
    mu, log_sigma = encoder(x)
    eps = torch.randn_like(mu)
    logits = decoder(mu + torch.exp(log_sigma) * eps)
    rec = (x * logits - F.softplus(logits)).flatten(1).sum(-1)
    kl = (0.5 * mu**2 + 0.5 * torch.exp(2 * log_sigma) - 0.5 - log_sigma).sum(-1)
    return rec - kl, rec, kl


# ========================================================================================
# 04  iwae_bound
# ========================================================================================
def _iwae_logw(x, encoder, decoder, k, *, z=None, lq_scale=None, logpx_only=False):
    mu, log_sigma = encoder(x)
    if z is None:
        z = _reparam(mu.expand(k, *mu.shape), log_sigma.expand(k, *mu.shape))
    logits = decoder(z.flatten(0, 1)).view(k, *x.shape)
    log_px_z = -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none")
    lw = log_px_z.flatten(2).sum(2)
    if logpx_only:
        return lw
    scale = log_sigma.exp() if lq_scale is None else lq_scale(log_sigma)
    return lw + Normal(0.0, 1.0).log_prob(z).sum(2) - Normal(mu, scale).log_prob(z).sum(2)


def iwae_naive_exp(x, encoder, decoder, k):
    return torch.log(torch.exp(_iwae_logw(x, encoder, decoder, k)).mean(0))


def iwae_mean_logw(x, encoder, decoder, k):
    return _iwae_logw(x, encoder, decoder, k).mean(0)


def iwae_no_logk(x, encoder, decoder, k):
    return torch.logsumexp(_iwae_logw(x, encoder, decoder, k), 0)


def iwae_logpx_only(x, encoder, decoder, k):
    return torch.logsumexp(_iwae_logw(x, encoder, decoder, k, logpx_only=True), 0) - math.log(k)


def iwae_wrong_dim(x, encoder, decoder, k):
    return torch.logsumexp(_iwae_logw(x, encoder, decoder, k), 1) - math.log(k)


def iwae_same_eps(x, encoder, decoder, k):
    mu, log_sigma = encoder(x)
    z = _reparam(mu, log_sigma).expand(k, *mu.shape)  # k copies of one draw
    return torch.logsumexp(_iwae_logw(x, encoder, decoder, k, z=z), 0) - math.log(k)


def iwae_reseed(x, encoder, decoder, k):
    torch.manual_seed(0)
    return torch.logsumexp(_iwae_logw(x, encoder, decoder, k), 0) - math.log(k)


def iwae_shared_over_batch(x, encoder, decoder, k):
    mu, log_sigma = encoder(x)
    z = mu + log_sigma.exp() * torch.randn(k, 1, mu.shape[-1])  # same eps for every image
    return torch.logsumexp(_iwae_logw(x, encoder, decoder, k, z=z), 0) - math.log(k)


def iwae_logvar_q(x, encoder, decoder, k):
    lw = _iwae_logw(x, encoder, decoder, k, lq_scale=lambda ls: (0.5 * ls).exp())
    return torch.logsumexp(lw, 0) - math.log(k)


def iwae_view28(x, encoder, decoder, k):
    mu, log_sigma = encoder(x)
    z = _reparam(mu.expand(k, *mu.shape), log_sigma.expand(k, *mu.shape))
    logits = decoder(z.flatten(0, 1)).view(k, -1, 1, 28, 28)
    xx = x.view(-1, 1, 28, 28).expand_as(logits)
    lp = -F.binary_cross_entropy_with_logits(logits, xx, reduction="none").flatten(2).sum(2)
    lw = lp + Normal(0.0, 1.0).log_prob(z).sum(2) - Normal(mu, log_sigma.exp()).log_prob(z).sum(2)
    return torch.logsumexp(lw, 0) - math.log(k)


def iwae_keepdim_q(x, encoder, decoder, k):
    mu, log_sigma = encoder(x)
    z = _reparam(mu.expand(k, *mu.shape), log_sigma.expand(k, *mu.shape))
    lp = _iwae_logw(x, encoder, decoder, k, z=z, logpx_only=True)
    lw = (
        lp
        + Normal(0.0, 1.0).log_prob(z).sum(2)
        - Normal(mu, log_sigma.exp()).log_prob(z).sum(2, keepdim=True)
    )
    return torch.logsumexp(lw, 0) - math.log(k)


def iwae_interleave(x, encoder, decoder, k):
    mu, log_sigma = encoder(x)
    z = _reparam(mu.expand(k, *mu.shape), log_sigma.expand(k, *mu.shape))  # (k, B, D)
    logits = decoder(z.flatten(0, 1))  # k-major order
    xx = x.repeat_interleave(k, 0)  # B-major order
    lp = (
        -F.binary_cross_entropy_with_logits(logits, xx, reduction="none")
        .flatten(1)
        .sum(1)
        .view(k, -1)
    )
    lw = lp + Normal(0.0, 1.0).log_prob(z).sum(2) - Normal(mu, log_sigma.exp()).log_prob(z).sum(2)
    return torch.logsumexp(lw, 0) - math.log(k)


def iwae_ok_loop(x, encoder, decoder, k):
    mu, log_sigma = encoder(x)
    sigma = log_sigma.exp()
    ws = []
    for _ in range(k):
        z = mu + sigma * torch.randn_like(mu)
        lp = Bernoulli(logits=decoder(z)).log_prob(x).reshape(len(x), -1).sum(-1)
        lpz = (-0.5 * z**2 - 0.5 * math.log(2 * math.pi)).sum(-1)
        lqz = (-0.5 * ((z - mu) / sigma) ** 2 - log_sigma - 0.5 * math.log(2 * math.pi)).sum(-1)
        ws.append(lp + lpz - lqz)
    lw = torch.stack(ws)
    mx = lw.max(0).values
    return mx + torch.log(torch.exp(lw - mx).mean(0))


def iwae_ok_repeat(x, encoder, decoder, k):
    B = len(x)
    mu, log_sigma = encoder(x)
    q = Normal(mu, log_sigma.exp())
    z = q.rsample((k,))  # (k, B, D)
    logits = decoder(z.reshape(k * B, -1)).reshape(k, B, -1)
    xx = x.reshape(1, B, -1)
    lp = (xx * logits - F.softplus(logits)).sum(-1)
    lw = (
        lp
        + Normal(torch.zeros_like(mu), torch.ones_like(mu)).log_prob(z).sum(-1)
        - q.log_prob(z).sum(-1)
    )
    return torch.logsumexp(lw, dim=0) - torch.log(torch.tensor(float(k)))


# ========================================================================================
# 05  GAN losses
# ========================================================================================
def dl_log_sigmoid(real_logits, fake_logits):
    return (
        -torch.log(torch.sigmoid(real_logits)).mean()
        - torch.log(1 - torch.sigmoid(fake_logits)).mean()
    )


def dl_clamped(real_logits, fake_logits):
    dr = torch.sigmoid(real_logits).clamp(1e-7, 1 - 1e-7)
    df = torch.sigmoid(fake_logits).clamp(1e-7, 1 - 1e-7)
    return -(dr.log().mean() + (1 - df).log().mean())


def dl_naive_softplus(real_logits, fake_logits):
    return (
        torch.log(1 + torch.exp(-real_logits)).mean() + torch.log(1 + torch.exp(fake_logits)).mean()
    )


def dl_detach_fake(real_logits, fake_logits):
    return F.binary_cross_entropy_with_logits(
        real_logits, torch.ones_like(real_logits)
    ) + F.binary_cross_entropy_with_logits(fake_logits.detach(), torch.zeros_like(fake_logits))


def dl_item(real_logits, fake_logits):
    loss = F.binary_cross_entropy_with_logits(
        real_logits, torch.ones_like(real_logits)
    ) + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return torch.tensor(loss.item())


def dl_cat(real_logits, fake_logits):
    logits = torch.cat([real_logits, fake_logits])
    targets = torch.cat([torch.ones_like(real_logits), torch.zeros_like(fake_logits)])
    return F.binary_cross_entropy_with_logits(logits, targets)


def dl_len_real(real_logits, fake_logits):
    n = len(real_logits)
    return F.softplus(-real_logits).sum() / n + F.softplus(fake_logits).sum() / n


def dl_ok_softplus(real_logits, fake_logits):
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def dl_ok_logsigmoid(real_logits, fake_logits):
    return -(F.logsigmoid(real_logits).mean() + F.logsigmoid(-fake_logits).mean())


def gl_log_sigmoid(fake_logits):
    return -torch.log(torch.sigmoid(fake_logits)).mean()


def gl_clamped(fake_logits):
    return -torch.log(torch.sigmoid(fake_logits).clamp(min=1e-7)).mean()


def gl_naive(fake_logits):
    return torch.log(1 + torch.exp(-fake_logits)).mean()


def gl_item(fake_logits):
    return torch.tensor(
        F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits)).item()
    )


@torch.no_grad()
def gl_nograd(fake_logits):
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


# ========================================================================================
# 06  diffusion
# ========================================================================================
def qs_view2(x0, t, noise, alpha_bar):
    a = alpha_bar[t].view(-1, 1)  # fine for points, not for images
    return a.sqrt() * x0 + (1 - a).sqrt() * noise


def qs_view4(x0, t, noise, alpha_bar):
    a = alpha_bar[t].view(-1, 1, 1, 1)  # fine for images, (B,1,B,2) for points
    return a.sqrt() * x0 + (1 - a).sqrt() * noise


def qs_unsq2(x0, t, noise, alpha_bar):
    a = alpha_bar[t].unsqueeze(-1).unsqueeze(-1)  # (B,1,1): broadcasts against the batch of images
    return a.sqrt() * x0 + (1 - a).sqrt() * noise


def qs_no_sqrt(x0, t, noise, alpha_bar):
    a = _abview(alpha_bar, t, x0)
    return a * x0 + (1 - a) * noise


def qs_wrong_noise_coef(x0, t, noise, alpha_bar):
    a = _abview(alpha_bar, t, x0)
    return a.sqrt() * x0 + (1 - a.sqrt()) * noise


def qs_t_minus_1(x0, t, noise, alpha_bar):
    a = _abview(alpha_bar, t - 1, x0)  # thinks t is 1-based
    return a.sqrt() * x0 + (1 - a).sqrt() * noise


def qs_first_t(x0, t, noise, alpha_bar):
    a = alpha_bar[t[0]]  # one t for the whole batch
    return a.sqrt() * x0 + (1 - a).sqrt() * noise


def qs_cumprod(x0, t, noise, alpha_bar):
    a = _abview(alpha_bar.cumprod(0), t, x0)  # treats alpha_bar as alphas
    return a.sqrt() * x0 + (1 - a).sqrt() * noise


def qs_swapped(x0, t, noise, alpha_bar):
    a = _abview(alpha_bar, t, x0)
    return (1 - a).sqrt() * x0 + a.sqrt() * noise


def qs_ok_reshape(x0, t, noise, alpha_bar):
    a = alpha_bar.gather(0, t).reshape(t.shape + (1,) * (x0.dim() - 1))
    return torch.sqrt(a) * x0 + torch.sqrt(1.0 - a) * noise


def qs_ok_einsum(x0, t, noise, alpha_bar):
    a = alpha_bar[t]
    B = len(x0)
    out = a.sqrt()[:, None] * x0.reshape(B, -1) + (1 - a).sqrt()[:, None] * noise.reshape(B, -1)
    return out.reshape(x0.shape)


def _dl(eps_model, x0, alpha_bar, t, eps, *, target=None, coef=None):
    a = _abview(alpha_bar, t, x0)
    if coef is None:
        x_t = a.sqrt() * x0 + (1 - a).sqrt() * eps
    else:
        x_t = coef(a, x0, eps)
    pred = eps_model(x_t, t)
    return (pred - (eps if target is None else target(x0, x_t, eps))).pow(2).mean()


def dfl_reseed(eps_model, x0, alpha_bar):
    torch.manual_seed(0)
    t = torch.randint(0, len(alpha_bar), (len(x0),))
    return _dl(eps_model, x0, alpha_bar, t, torch.randn_like(x0))


def dfl_same_t(eps_model, x0, alpha_bar):
    t = torch.randint(0, len(alpha_bar), (1,)).expand(len(x0))
    return _dl(eps_model, x0, alpha_bar, t, torch.randn_like(x0))


def dfl_t_from_1(eps_model, x0, alpha_bar):
    t = torch.randint(1, len(alpha_bar), (len(x0),))  # never samples t = 0
    return _dl(eps_model, x0, alpha_bar, t, torch.randn_like(x0))


def dfl_t_excl_last(eps_model, x0, alpha_bar):
    t = torch.randint(0, len(alpha_bar) - 1, (len(x0),))  # never samples t = T-1
    return _dl(eps_model, x0, alpha_bar, t, torch.randn_like(x0))


def dfl_uniform_noise(eps_model, x0, alpha_bar):
    t = torch.randint(0, len(alpha_bar), (len(x0),))
    eps = (torch.rand_like(x0) - 0.5) * math.sqrt(12)  # unit variance but not Gaussian
    return _dl(eps_model, x0, alpha_bar, t, eps)


def dfl_truncated(eps_model, x0, alpha_bar):
    t = torch.randint(0, len(alpha_bar), (len(x0),))
    return _dl(eps_model, x0, alpha_bar, t, torch.randn_like(x0).clamp(-3, 3))


def dfl_shared_eps(eps_model, x0, alpha_bar):
    t = torch.randint(0, len(alpha_bar), (len(x0),))
    eps = torch.randn_like(x0[:1]).expand_as(x0)  # one noise image for the batch
    return _dl(eps_model, x0, alpha_bar, t, eps)


def dfl_row_noise(eps_model, x0, alpha_bar):
    t = torch.randint(0, len(alpha_bar), (len(x0),))
    eps = torch.randn(len(x0), *[1] * (x0.ndim - 1))
    return _dl(eps_model, x0, alpha_bar, t, eps)


def dfl_nograd(eps_model, x0, alpha_bar):
    t = torch.randint(0, len(alpha_bar), (len(x0),))
    eps = torch.randn_like(x0)
    a = _abview(alpha_bar, t, x0)
    with torch.no_grad():
        pred = eps_model(a.sqrt() * x0 + (1 - a).sqrt() * eps, t)
    return (eps - pred).pow(2).mean()


def dfl_item(eps_model, x0, alpha_bar):
    t = torch.randint(0, len(alpha_bar), (len(x0),))
    return torch.tensor(_dl(eps_model, x0, alpha_bar, t, torch.randn_like(x0)).item())


def dfl_detach_pred(eps_model, x0, alpha_bar):
    t = torch.randint(0, len(alpha_bar), (len(x0),))
    eps = torch.randn_like(x0)
    a = _abview(alpha_bar, t, x0)
    pred = eps_model(a.sqrt() * x0 + (1 - a).sqrt() * eps, t).detach()
    return F.mse_loss(pred, eps)


def dfl_x0_target(eps_model, x0, alpha_bar):
    t = torch.randint(0, len(alpha_bar), (len(x0),))
    return _dl(eps_model, x0, alpha_bar, t, torch.randn_like(x0), target=lambda x0, xt, e: x0)


def dfl_sum(eps_model, x0, alpha_bar):
    t = torch.randint(0, len(alpha_bar), (len(x0),))
    eps = torch.randn_like(x0)
    a = _abview(alpha_bar, t, x0)
    return (eps - eps_model(a.sqrt() * x0 + (1 - a).sqrt() * eps, t)).pow(2).sum()


def dfl_no_sqrt(eps_model, x0, alpha_bar):
    t = torch.randint(0, len(alpha_bar), (len(x0),))
    return _dl(
        eps_model,
        x0,
        alpha_bar,
        t,
        torch.randn_like(x0),
        coef=lambda a, x0, e: a * x0 + (1 - a) * e,
    )


def dfl_view2(eps_model, x0, alpha_bar):
    t = torch.randint(0, len(alpha_bar), (len(x0),))
    eps = torch.randn_like(x0)
    a = alpha_bar[t].view(-1, 1)  # fine for (B, 2) points only
    x_t = a.sqrt() * x0 + (1 - a).sqrt() * eps
    return (eps - eps_model(x_t, t)).pow(2).mean()


def dfl_float_t(eps_model, x0, alpha_bar):
    t = (torch.rand(len(x0)) * len(alpha_bar)).floor()  # float t handed to the model
    eps = torch.randn_like(x0)
    a = _abview(alpha_bar, t.long(), x0)
    x_t = a.sqrt() * x0 + (1 - a).sqrt() * eps
    return (eps - eps_model(x_t, t)).pow(2).mean()


def dfl_ok_mse(eps_model, x0, alpha_bar):
    T = alpha_bar.shape[0]
    t = torch.randint(T, size=(x0.shape[0],), device=x0.device)
    noise = torch.randn(x0.shape, dtype=x0.dtype, device=x0.device)
    ab = alpha_bar[t].reshape(-1, *([1] * (x0.dim() - 1)))
    x_t = torch.sqrt(ab) * x0 + torch.sqrt(1 - ab) * noise
    return F.mse_loss(eps_model(x_t, t), noise)


def dfl_ok_flat(eps_model, x0, alpha_bar):
    B = len(x0)
    t = torch.randint(0, len(alpha_bar), (B,))
    eps = torch.randn_like(x0)
    a = alpha_bar[t]
    x_t = (
        a.sqrt()[:, None] * x0.reshape(B, -1) + (1 - a).sqrt()[:, None] * eps.reshape(B, -1)
    ).reshape(x0.shape)
    return ((eps_model(x_t, t) - eps) ** 2).reshape(B, -1).mean(1).mean()


def _ddpm_parts(t, alpha_bar):
    ab_t = alpha_bar[t]
    ab_prev = alpha_bar[t - 1] if t > 0 else torch.ones_like(ab_t)
    alpha_t = ab_t / ab_prev
    return ab_t, ab_prev, alpha_t, 1 - alpha_t


def ddpm_var_swapped(x_t, t, eps_pred, alpha_bar, noise):
    ab_t, ab_prev, alpha_t, beta_t = _ddpm_parts(t, alpha_bar)
    mean = (x_t - beta_t / (1 - ab_t).sqrt() * eps_pred) / alpha_t.sqrt()
    if t == 0:
        return mean
    return mean + (beta_t * (1 - ab_t) / (1 - ab_prev)).sqrt() * noise


def ddpm_sigma_beta(x_t, t, eps_pred, alpha_bar, noise):
    ab_t, ab_prev, alpha_t, beta_t = _ddpm_parts(t, alpha_bar)
    mean = (x_t - beta_t / (1 - ab_t).sqrt() * eps_pred) / alpha_t.sqrt()
    if t == 0:
        return mean
    return mean + beta_t.sqrt() * noise


def ddpm_alpha_is_ab(x_t, t, eps_pred, alpha_bar, noise):
    ab_t = alpha_bar[t]
    ab_prev = alpha_bar[t - 1] if t > 0 else torch.ones_like(ab_t)
    alpha_t = ab_t  # confuses alpha_t with alpha_bar_t
    beta_t = 1 - alpha_t
    mean = (x_t - beta_t / (1 - ab_t).sqrt() * eps_pred) / alpha_t.sqrt()
    if t == 0:
        return mean
    return mean + (beta_t * (1 - ab_prev) / (1 - ab_t)).sqrt() * noise


def ddpm_mean_sqrt1mab(x_t, t, eps_pred, alpha_bar, noise):
    ab_t, ab_prev, alpha_t, beta_t = _ddpm_parts(t, alpha_bar)
    mean = (x_t - (1 - ab_t).sqrt() * eps_pred) / alpha_t.sqrt()
    if t == 0:
        return mean
    return mean + (beta_t * (1 - ab_prev) / (1 - ab_t)).sqrt() * noise


def ddpm_wrap_prev(x_t, t, eps_pred, alpha_bar, noise):
    ab_t = alpha_bar[t]
    ab_prev = alpha_bar[t - 1]  # at t = 0 this wraps to alpha_bar[-1]
    alpha_t = ab_t / ab_prev
    beta_t = 1 - alpha_t
    mean = (x_t - beta_t / (1 - ab_t).sqrt() * eps_pred) / alpha_t.sqrt()
    if t == 0:
        return mean
    return mean + (beta_t * (1 - ab_prev) / (1 - ab_t)).sqrt() * noise


def ddpm_one_based_stop(x_t, t, eps_pred, alpha_bar, noise):
    ab_t, ab_prev, alpha_t, beta_t = _ddpm_parts(t, alpha_bar)
    mean = (x_t - beta_t / (1 - ab_t).sqrt() * eps_pred) / alpha_t.sqrt()
    if t == 1:
        return mean
    return mean + (beta_t * (1 - ab_prev) / (1 - ab_t)).sqrt() * noise


def ddpm_eps_sign(x_t, t, eps_pred, alpha_bar, noise):
    ab_t, ab_prev, alpha_t, beta_t = _ddpm_parts(t, alpha_bar)
    mean = (x_t + beta_t / (1 - ab_t).sqrt() * eps_pred) / alpha_t.sqrt()
    if t == 0:
        return mean
    return mean + (beta_t * (1 - ab_prev) / (1 - ab_t)).sqrt() * noise


def ddpm_clip_x0(x_t, t, eps_pred, alpha_bar, noise):
    ab_t, ab_prev, alpha_t, beta_t = _ddpm_parts(t, alpha_bar)
    x0 = ((x_t - (1 - ab_t).sqrt() * eps_pred) / ab_t.sqrt()).clamp(-1, 1)
    mean = (
        ab_prev.sqrt() * beta_t / (1 - ab_t) * x0
        + alpha_t.sqrt() * (1 - ab_prev) / (1 - ab_t) * x_t
    )
    if t == 0:
        return mean
    return mean + (beta_t * (1 - ab_prev) / (1 - ab_t)).sqrt() * noise


def ddpm_var_no_sqrt(x_t, t, eps_pred, alpha_bar, noise):
    ab_t, ab_prev, alpha_t, beta_t = _ddpm_parts(t, alpha_bar)
    mean = (x_t - beta_t / (1 - ab_t).sqrt() * eps_pred) / alpha_t.sqrt()
    if t == 0:
        return mean
    return mean + beta_t * (1 - ab_prev) / (1 - ab_t) * noise  # variance used as std


def ddpm_flat784(x_t, t, eps_pred, alpha_bar, noise):
    ab_t, ab_prev, alpha_t, beta_t = _ddpm_parts(t, alpha_bar)
    x_t, eps_pred, noise = x_t.view(-1, 784), eps_pred.view(-1, 784), noise.view(-1, 784)
    mean = (x_t - beta_t / (1 - ab_t).sqrt() * eps_pred) / alpha_t.sqrt()
    if t == 0:
        return mean
    return mean + (beta_t * (1 - ab_prev) / (1 - ab_t)).sqrt() * noise


def ddpm_double(x_t, t, eps_pred, alpha_bar, noise):
    x_t, eps_pred, noise, alpha_bar = (
        x_t.double(),
        eps_pred.double(),
        noise.double(),
        alpha_bar.double(),
    )
    ab_t, ab_prev, alpha_t, beta_t = _ddpm_parts(t, alpha_bar)
    mean = (x_t - beta_t / (1 - ab_t).sqrt() * eps_pred) / alpha_t.sqrt()
    if t == 0:
        return mean
    return mean + (beta_t * (1 - ab_prev) / (1 - ab_t)).sqrt() * noise


def ddpm_ok_posterior(x_t, t, eps_pred, alpha_bar, noise):
    ab_t, ab_prev, alpha_t, beta_t = _ddpm_parts(t, alpha_bar)
    x0 = (x_t - (1 - ab_t).sqrt() * eps_pred) / ab_t.sqrt()
    mean = (
        ab_prev.sqrt() * beta_t / (1 - ab_t) * x0
        + alpha_t.sqrt() * (1 - ab_prev) / (1 - ab_t) * x_t
    )
    if t == 0:
        return mean
    return mean + (beta_t * (1 - ab_prev) / (1 - ab_t)).sqrt() * noise


def ddpm_ok_betas(x_t, t, eps_pred, alpha_bar, noise):
    alphas = alpha_bar / torch.cat([alpha_bar.new_ones(1), alpha_bar[:-1]])
    betas = 1 - alphas
    mean = (x_t - betas[t] / torch.sqrt(1 - alpha_bar[t]) * eps_pred) / torch.sqrt(alphas[t])
    if t > 0:
        var = betas[t] * (1 - alpha_bar[t - 1]) / (1 - alpha_bar[t])
        mean = mean + torch.sqrt(var) * noise
    return mean


def ddim_swap(x_t, eps_pred, ab_t, ab_prev):
    x0 = (x_t - (1 - ab_prev).sqrt() * eps_pred) / ab_prev.sqrt()
    return ab_t.sqrt() * x0 + (1 - ab_t).sqrt() * eps_pred


def ddim_no_sqrt(x_t, eps_pred, ab_t, ab_prev):
    x0 = (x_t - (1 - ab_t) * eps_pred) / ab_t
    return ab_prev * x0 + (1 - ab_prev) * eps_pred


def ddim_x0(x_t, eps_pred, ab_t, ab_prev):
    return (x_t - (1 - ab_t).sqrt() * eps_pred) / ab_t.sqrt()


def ddim_dir_ab_t(x_t, eps_pred, ab_t, ab_prev):
    x0 = (x_t - (1 - ab_t).sqrt() * eps_pred) / ab_t.sqrt()
    return ab_prev.sqrt() * x0 + (1 - ab_t).sqrt() * eps_pred


def ddim_dir_no_sqrt(x_t, eps_pred, ab_t, ab_prev):
    x0 = (x_t - (1 - ab_t).sqrt() * eps_pred) / ab_t.sqrt()
    return ab_prev.sqrt() * x0 + (1 - ab_prev) * eps_pred


def ddim_ddpm_mean(x_t, eps_pred, ab_t, ab_prev):
    alpha_t = ab_t / ab_prev
    return (x_t - (1 - alpha_t) / (1 - ab_t).sqrt() * eps_pred) / alpha_t.sqrt()


def ddim_clip(x_t, eps_pred, ab_t, ab_prev):
    x0 = ((x_t - (1 - ab_t).sqrt() * eps_pred) / ab_t.sqrt()).clamp(-1, 1)
    return ab_prev.sqrt() * x0 + (1 - ab_prev).sqrt() * eps_pred


def ddim_flat(x_t, eps_pred, ab_t, ab_prev):
    x0 = (x_t - (1 - ab_t).sqrt() * eps_pred) / ab_t.sqrt()
    return (ab_prev.sqrt() * x0 + (1 - ab_prev).sqrt() * eps_pred).flatten(1)


def ddim_sign(x_t, eps_pred, ab_t, ab_prev):
    x0 = (x_t + (1 - ab_t).sqrt() * eps_pred) / ab_t.sqrt()
    return ab_prev.sqrt() * x0 - (1 - ab_prev).sqrt() * eps_pred


def ddim_double(x_t, eps_pred, ab_t, ab_prev):
    x_t, eps_pred = x_t.double(), eps_pred.double()
    x0 = (x_t - (1 - ab_t).sqrt() * eps_pred) / ab_t.sqrt()
    return ab_prev.sqrt() * x0 + (1 - ab_prev).sqrt() * eps_pred


def ddim_ok_ratio(x_t, eps_pred, ab_t, ab_prev):
    r = torch.sqrt(ab_prev / ab_t)
    return r * x_t + (torch.sqrt(1 - ab_prev) - r * torch.sqrt(1 - ab_t)) * eps_pred


def ddim_ok_math(x_t, eps_pred, ab_t, ab_prev):
    a, b = float(ab_t), float(ab_prev)
    x0 = (x_t - math.sqrt(1 - a) * eps_pred) / math.sqrt(a)
    return math.sqrt(b) * x0 + math.sqrt(1 - b) * eps_pred


# ========================================================================================
# 07  text to image
# ========================================================================================
def _clip_logits(img, txt, scale):
    return scale * F.normalize(img, dim=1) @ F.normalize(txt, dim=1).T


def _ce2(logits):
    y = torch.arange(len(logits))
    return (F.cross_entropy(logits, y) + F.cross_entropy(logits.T, y)) / 2


def cl_one_dir(img_emb, txt_emb, log_scale):
    logits = _clip_logits(img_emb, txt_emb, log_scale.exp())
    return F.cross_entropy(logits, torch.arange(len(logits)))


def cl_no_norm(img_emb, txt_emb, log_scale):
    return _ce2(log_scale.exp() * img_emb @ txt_emb.T)


def cl_raw_scale(img_emb, txt_emb, log_scale):
    return _ce2(_clip_logits(img_emb, txt_emb, log_scale))


def cl_div_scale(img_emb, txt_emb, log_scale):
    return _ce2(_clip_logits(img_emb, txt_emb, 1 / log_scale.exp()))


def cl_matrix_norm(img_emb, txt_emb, log_scale):
    img, txt = img_emb / img_emb.norm(), txt_emb / txt_emb.norm()
    return _ce2(log_scale.exp() * img @ txt.T)


def cl_sum_dirs(img_emb, txt_emb, log_scale):
    logits = _clip_logits(img_emb, txt_emb, log_scale.exp())
    y = torch.arange(len(logits))
    return F.cross_entropy(logits, y) + F.cross_entropy(logits.T, y)


def cl_softmax_diag(img_emb, txt_emb, log_scale):
    logits = _clip_logits(img_emb, txt_emb, log_scale.exp())
    return (
        -(
            torch.log(torch.softmax(logits, 1).diag()).mean()
            + torch.log(torch.softmax(logits, 0).diag()).mean()
        )
        / 2
    )


def cl_exp_ratio(img_emb, txt_emb, log_scale):
    e = _clip_logits(img_emb, txt_emb, log_scale.exp()).exp()
    return -(torch.log(e.diag() / e.sum(1)).mean() + torch.log(e.diag() / e.sum(0)).mean()) / 2


def cl_math_exp(img_emb, txt_emb, log_scale):
    return _ce2(_clip_logits(img_emb, txt_emb, math.exp(log_scale)))


def cl_item_scale(img_emb, txt_emb, log_scale):
    return _ce2(_clip_logits(img_emb, txt_emb, torch.tensor(log_scale.item()).exp()))


def cl_detach_txt(img_emb, txt_emb, log_scale):
    return _ce2(_clip_logits(img_emb, txt_emb.detach(), log_scale.exp()))


def cl_targets_D(img_emb, txt_emb, log_scale):
    logits = _clip_logits(img_emb, txt_emb, log_scale.exp())
    y = torch.arange(img_emb.shape[1])  # D instead of B: raises unless B == D
    return (F.cross_entropy(logits, y) + F.cross_entropy(logits.T, y)) / 2


def cl_norm_nokeepdim(img_emb, txt_emb, log_scale):
    img = img_emb / img_emb.norm(dim=1)  # (B, D) / (B,): raises unless B == D, wrong when B == D
    txt = txt_emb / txt_emb.norm(dim=1)
    return _ce2(log_scale.exp() * img @ txt.T)


def cl_normalize_dim0(img_emb, txt_emb, log_scale):
    img, txt = F.normalize(img_emb, dim=0), F.normalize(txt_emb, dim=0)
    return _ce2(log_scale.exp() * img @ txt.T)


def cl_bce_identity(img_emb, txt_emb, log_scale):
    logits = _clip_logits(img_emb, txt_emb, log_scale.exp())
    return F.binary_cross_entropy_with_logits(logits, torch.eye(len(logits)))


def cl_half(img_emb, txt_emb, log_scale):
    img, txt = F.normalize(img_emb, dim=1).half(), F.normalize(txt_emb, dim=1).half()
    return _ce2(log_scale.exp().half() * img @ txt.T)


def cl_ok_cosine(img_emb, txt_emb, log_scale):
    sim = F.cosine_similarity(img_emb[:, None, :], txt_emb[None, :, :], dim=-1)
    logits = sim * torch.exp(log_scale)
    y = torch.arange(img_emb.shape[0])
    return 0.5 * F.cross_entropy(logits, y) + 0.5 * F.cross_entropy(logits.t(), y)


def cl_ok_soft_targets(img_emb, txt_emb, log_scale):
    img = img_emb / img_emb.norm(dim=-1, keepdim=True)
    txt = txt_emb / txt_emb.norm(dim=-1, keepdim=True)
    logits = log_scale.exp() * img @ txt.T
    eye = torch.eye(len(logits))
    li = -(eye * F.log_softmax(logits, 1)).sum(1).mean()
    lt = -(eye * F.log_softmax(logits, 0)).sum(0).mean()
    return (li + lt) / 2


def ge_half(eps_cond, eps_uncond, scale):
    return (eps_uncond + scale * (eps_cond - eps_uncond)).half()


def ip_first_mask(x, x0_known, mask, ab_prev, noise):
    m = mask[0]  # assumes one mask for the whole batch
    known = ab_prev.sqrt() * x0_known + (1 - ab_prev).sqrt() * noise
    return m * known + (1 - m) * x


def ip_fresh_noise(x, x0_known, mask, ab_prev, noise):
    known = ab_prev.sqrt() * x0_known + (1 - ab_prev).sqrt() * torch.randn_like(x0_known)
    return mask * known + (1 - mask) * x


def ip_flat784(x, x0_known, mask, ab_prev, noise):
    known = ab_prev.sqrt() * x0_known + (1 - ab_prev).sqrt() * noise
    return (mask * known + (1 - mask) * x).view(-1, 784)


# ========================================================================================
# The pool
# ========================================================================================
POOL = {
    # ------------------------------------------------------------------ 01
    "categorical_mle": [
        (
            "shape",
            "hard-codes m = 6 (bincount minlength=6)",
            lambda samples, m: torch.bincount(samples, minlength=6).float() / len(samples),
        ),
        (
            "shape",
            "bincount without minlength: too short when the largest categories are unseen",
            lambda samples, m: torch.bincount(samples).float() / len(samples),
        ),
        (
            "value",
            "returns raw counts, not normalised",
            lambda samples, m: torch.bincount(samples, minlength=m).float(),
        ),
        (
            "value",
            "divides by m instead of the number of samples",
            lambda samples, m: torch.bincount(samples, minlength=m).float() / m,
        ),
        (
            "value",
            "Laplace (add-one) smoothing instead of the MLE",
            lambda samples, m: (
                (torch.bincount(samples, minlength=m).float() + 1) / (len(samples) + m)
            ),
        ),
        ("value", "faces taken as 1..m (off by one)", cat_onebased),
        (
            "format",
            "integer division of int64 counts: returns int64 (all zeros)",
            lambda samples, m: torch.bincount(samples, minlength=m) // len(samples),
        ),
        ("format", "returns a Python list", cat_loop_list),
        (
            "format",
            "returns float16",
            lambda samples, m: (torch.bincount(samples, minlength=m).float() / len(samples)).half(),
        ),
        ("scale", "counts accumulated in float16: saturate at 2048 for large N", cat_halfcount),
        (
            "broadcast",
            "compares samples with arange(m)[:, None] and averages over the wrong axis -> (N,)",
            lambda samples, m: (samples == torch.arange(m)[:, None]).float().mean(0),
        ),
        (
            "format",
            "returns a numpy array",
            lambda samples, m: np.bincount(samples.numpy(), minlength=m) / len(samples),
        ),
    ],
    "num_params": [
        (
            "value",
            "off by one: range(1, n + 1)",
            lambda n, k: sum(2 ** min(i, k) for i in range(1, n + 1)),
        ),
        (
            "value",
            "n * 2**k: ignores that the first k variables have fewer parents",
            lambda n, k: n * 2**k,
        ),
        ("shape", "closed form (2^k - 1) + (n - k) 2^k, valid only for k <= n", np_closed_form),
        (
            "value",
            "uses min(i, k - 1): one parent too few",
            lambda n, k: sum(2 ** min(i, k - 1) for i in range(n)),
        ),
        (
            "value",
            "counts the full conditional table 2^(parents+1) per variable",
            lambda n, k: sum(2 ** (min(i, k) + 1) for i in range(n)),
        ),
        (
            "value",
            "subtracts one parameter per variable (2^min(i,k) - 1 each, + 1)",
            lambda n, k: sum(2 ** min(i, k) - 1 for i in range(n)) + 1,
        ),
        (
            "format",
            "returns a float (math.pow)",
            lambda n, k: sum(math.pow(2, min(i, k)) for i in range(n)),
        ),
        ("format", "returns a 0-d torch tensor", np_tensor),
        ("scale", "int32 tensor arithmetic: overflows once k >= 31", np_int32),
        ("scale", "float32 powers: loses exactness above 2^24", np_float32),
        (
            "value",
            "uses max(i, k) instead of min",
            lambda n, k: sum(2 ** max(i, k) for i in range(n)),
        ),
    ],
    "markov_log_likelihood": [
        (
            "scale",
            "multiplies the 784 probabilities then takes the log (underflows to -inf)",
            mll_prod,
        ),
        ("value", "log base 2 (bits)", mll_log2),
        ("value", "drops the first pixel's term", mll_no_first),
        (
            "value",
            "conditions on the current pixel instead of the previous one",
            mll_current_not_prev,
        ),
        ("value", "reads the columns of p_next swapped", mll_swapped_cols),
        ("value", "mean over pixels instead of sum", mll_mean),
        ("value", "x=1 and x=0 log terms swapped", mll_swap_terms),
        ("shape", "hard-codes n = 784 (arange(783))", mll_hard783),
        ("shape", "squeeze(): returns a 0-d tensor when B == 1", mll_squeeze),
        ("scale", "clamps the probabilities to [1e-4, 1 - 1e-4]", mll_clamp),
        ("broadcast", "first-pixel term kept as (B, 1): result is (B, B)", mll_keepdim_first),
        ("format", "computes and returns float16", mll_half),
        (
            "shape",
            "sums over everything: one scalar for the batch",
            lambda x, p_first, p_next: mll_mean(x, p_first, p_next).sum() * x.shape[1],
        ),
    ],
    # ------------------------------------------------------------------ 02
    "made_masks": [
        (
            "value",
            "hidden mask with strict > (hidden unit of degree d cannot see input d)",
            made_strict_hidden,
        ),
        (
            "value",
            "output mask with >= (output d sees hidden units of degree d: leaks x_d)",
            made_ge_out,
        ),
        ("shape", "masks transposed: (D, H) and (H, D)", made_transposed),
        ("format", "returns bool masks", made_bool),
        ("format", "returns int64 masks", made_long),
        ("format", "masks hold degree differences, not 0/1", made_counts),
        ("value", "ignores the input ordering (uses positions 1..D)", made_natural_order),
        ("value", "treats degrees as 0-based (off by one)", made_zero_based),
        ("format", "returns float16 masks", made_half),
        ("shape", "second mask returned as (H, D)", made_out_transposed),
        (
            "value",
            "output mask built from the hidden mask transpose (>= instead of >)",
            lambda i, h: ((h[:, None] >= i[None, :]).float(), (h[:, None] >= i[None, :]).float().T),
        ),
    ],
    "bernoulli_nll": [
        (
            "scale",
            "log(sigmoid(l)) and log(1 - sigmoid(l)): -inf/inf at |l| ~ 20+",
            bnll_log_sigmoid,
        ),
        ("scale", "clamps probabilities to [1e-7, 1 - 1e-7]", bnll_clamped),
        ("scale", "log(1 + exp(l)) overflows for large logits", bnll_softplus_naive),
        (
            "scale",
            "F.binary_cross_entropy on sigmoid(l): log clamped at -100, saturates",
            bnll_bce_probs,
        ),
        ("gradient", "detaches the logits", bnll_detach),
        ("gradient", "rebuilds the result with torch.tensor(loss.tolist())", bnll_tolist),
        ("gradient", "body under torch.no_grad()", bnll_nograd),
        ("shape", "sums over dims (1, 2, 3): only works for 4-D images", bnll_sum123),
        ("shape", "hard-codes 784 pixels per image", bnll_view784),
        ("shape", "sums over the last dim only", bnll_sum_last),
        (
            "shape",
            "default reduction='mean': returns a scalar",
            lambda logits, x: F.binary_cross_entropy_with_logits(logits, x),
        ),
        (
            "value",
            "mean over pixels instead of sum",
            lambda logits, x: (
                F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).mean(1)
            ),
        ),
        (
            "value",
            "returns log p(x) (sign flipped)",
            lambda logits, x: (
                -F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
            ),
        ),
        (
            "value",
            "arguments swapped (target, input)",
            lambda logits, x: (
                F.binary_cross_entropy_with_logits(x, logits, reduction="none").flatten(1).sum(1)
            ),
        ),
        ("broadcast", "softplus term summed with keepdim: (B, 1) - (B,) -> (B, B)", bnll_keepdim),
        ("format", "returns float16", bnll_half),
    ],
    "sample_autoregressive": [
        ("random", "torch.manual_seed(0) inside: every call returns the same images", sar_reseed),
        ("random", "thresholds sigmoid > 0.5 instead of sampling", sar_threshold),
        ("random", "one uniform draw per pixel shared by the whole batch", sar_shared_uniform),
        ("random", "Gaussian instead of logistic threshold noise (probit)", sar_gauss_threshold),
        ("value", "samples all pixels from one pass on zeros (not autoregressive)", sar_one_pass),
        ("value", "ignores `order`, goes 0..num_pixels-1", sar_ignore_order),
        ("value", "stores the probabilities instead of binary samples", sar_probs),
        ("shape", "hard-codes 784 pixels", sar_784),
        ("format", "returns a bool tensor", sar_bool),
        ("format", "returns int64", sar_long),
        ("value", "sigmoid(-logits): samples the complement", sar_neg_logits),
    ],
    # ------------------------------------------------------------------ 03
    "kl_categorical": [
        (
            "scale",
            "p * log(p / q): nan where p has zeros",
            lambda p, q: (p * (p / q).log()).sum(-1),
        ),
        (
            "scale",
            "adds eps = 1e-8 inside the logs: wrong for tiny q",
            lambda p, q: (p * ((p + 1e-8) / (q + 1e-8)).log()).sum(-1),
        ),
        ("value", "direction swapped: KL(q || p)", lambda p, q: _xlogy_kl(q, p)),
        (
            "value",
            "log base 2",
            lambda p, q: (torch.xlogy(p, p) - torch.xlogy(p, q)).sum(-1) / math.log(2),
        ),
        (
            "value",
            "cross-entropy only (drops the entropy term)",
            lambda p, q: -torch.xlogy(p, q).sum(-1),
        ),
        (
            "value",
            "mean over categories instead of sum",
            lambda p, q: (torch.xlogy(p, p) - torch.xlogy(p, q)).mean(-1),
        ),
        ("value", "sign flipped", lambda p, q: (torch.xlogy(p, q) - torch.xlogy(p, p)).sum(-1)),
        (
            "shape",
            "sums over dim 1: wrong for 1-D and 3-D inputs",
            lambda p, q: (torch.xlogy(p, p) - torch.xlogy(p, q)).sum(1),
        ),
        ("shape", "F.kl_div(reduction='sum'): one scalar for the whole batch", klc_kl_div_sum),
        ("shape", "F.kl_div(reduction='batchmean'): averages over the batch", klc_batchmean),
        (
            "shape",
            "keepdim=True: returns (..., 1)",
            lambda p, q: (torch.xlogy(p, p) - torch.xlogy(p, q)).sum(-1, keepdim=True),
        ),
        ("format", ".item(): Python float (raises on batched input)", klc_item),
    ],
    "kl_gaussian": [
        (
            "value",
            "sigmas used as variances",
            lambda mu1, s1, mu2, s2: (
                0.5 * torch.log(s2 / s1) + (s1 + (mu1 - mu2) ** 2) / (2 * s2) - 0.5
            ),
        ),
        (
            "value",
            "direction swapped: KL(q || p)",
            lambda mu1, s1, mu2, s2: (
                torch.log(s1 / s2) + (s2**2 + (mu1 - mu2) ** 2) / (2 * s1**2) - 0.5
            ),
        ),
        (
            "value",
            "missing the -1/2",
            lambda mu1, s1, mu2, s2: torch.log(s2 / s1) + (s1**2 + (mu1 - mu2) ** 2) / (2 * s2**2),
        ),
        (
            "value",
            "log ratio upside down: log(sigma1 / sigma2)",
            lambda mu1, s1, mu2, s2: (
                torch.log(s1 / s2) + (s1**2 + (mu1 - mu2) ** 2) / (2 * s2**2) - 0.5
            ),
        ),
        (
            "value",
            "divides by 2 sigma2 instead of 2 sigma2^2",
            lambda mu1, s1, mu2, s2: (
                torch.log(s2 / s1) + (s1**2 + (mu1 - mu2) ** 2) / (2 * s2) - 0.5
            ),
        ),
        (
            "value",
            "mean difference scaled by sigma1^2 instead of sigma2^2",
            lambda mu1, s1, mu2, s2: (
                torch.log(s2 / s1) + s1**2 / (2 * s2**2) + (mu1 - mu2) ** 2 / (2 * s1**2) - 0.5
            ),
        ),
        (
            "value",
            "log base 2 for the log-ratio",
            lambda mu1, s1, mu2, s2: (
                torch.log2(s2 / s1) + (s1**2 + (mu1 - mu2) ** 2) / (2 * s2**2) - 0.5
            ),
        ),
        (
            "value",
            "mean difference not squared",
            lambda mu1, s1, mu2, s2: (
                torch.log(s2 / s1) + (s1**2 + (mu1 - mu2).abs()) / (2 * s2**2) - 0.5
            ),
        ),
        ("shape", "sums over the last dim", klg_kl_mean_last),
        ("format", "returns float64", klg_double),
        ("scale", "log-ratio via log(sigma^2): -inf/nan for tiny sigmas (~1e-25)", klg_var_squared),
        (
            "scale",
            "torch.distributions kl_divergence: (sigma1/sigma2)^2 underflows for a tiny sigma1",
            lambda mu1, s1, mu2, s2: kl_divergence(Normal(mu1, s1), Normal(mu2, s2)),
        ),
    ],
    "jsd": [
        ("scale", "p * log(p / m): nan where p or q has zeros", jsd_nan),
        ("value", "only KL(p || m) (forgets q's half)", lambda p, q: _xlogy_kl(p, (p + q) / 2)),
        (
            "format",
            "returns float64",
            lambda p, q: (
                0.5 * _xlogy_kl(p.double(), (p.double() + q.double()) / 2)
                + 0.5 * _xlogy_kl(q.double(), (p.double() + q.double()) / 2)
            ),
        ),
        (
            "value",
            "forgets the 1/2 weights",
            lambda p, q: _xlogy_kl(p, (p + q) / 2) + _xlogy_kl(q, (p + q) / 2),
        ),
        (
            "value",
            "KL(m || p) and KL(m || q) (direction swapped)",
            lambda p, q: 0.5 * _xlogy_kl((p + q) / 2, p) + 0.5 * _xlogy_kl((p + q) / 2, q),
        ),
        (
            "value",
            "symmetrised KL(p||q) + KL(q||p) over 2",
            lambda p, q: 0.5 * _xlogy_kl(p, q) + 0.5 * _xlogy_kl(q, p),
        ),
        ("value", "in bits (divides by log 2)", jsd_bits),
        ("value", "square root (Jensen-Shannon distance, as scipy returns)", jsd_sqrt),
        (
            "value",
            "m = p + q (no / 2)",
            lambda p, q: 0.5 * _xlogy_kl(p, p + q) + 0.5 * _xlogy_kl(q, p + q),
        ),
        (
            "shape",
            "sums over dim 1",
            lambda p, q: (
                0.5 * (torch.xlogy(p, p) - torch.xlogy(p, (p + q) / 2))
                + 0.5 * (torch.xlogy(q, q) - torch.xlogy(q, (p + q) / 2))
            ).sum(1),
        ),
        (
            "shape",
            "sums over everything: one scalar",
            lambda p, q: (0.5 * _xlogy_kl(p, (p + q) / 2) + 0.5 * _xlogy_kl(q, (p + q) / 2)).sum(),
        ),
    ],
    # ------------------------------------------------------------------ 04
    "reparameterize": [
        (
            "gradient",
            "Normal(mu, sigma).sample(): no gradient",
            lambda mu, log_sigma: Normal(mu, log_sigma.exp()).sample(),
        ),
        (
            "gradient",
            "torch.normal(mu, sigma): zero gradient to mu and log_sigma",
            lambda mu, log_sigma: torch.normal(mu, log_sigma.exp()),
        ),
        (
            "gradient",
            "sigma detached",
            lambda mu, log_sigma: mu + log_sigma.exp().detach() * torch.randn_like(mu),
        ),
        ("gradient", "body under torch.no_grad()", rep_nograd),
        ("random", "torch.manual_seed(0) inside: the same eps every call", rep_reseed),
        (
            "random",
            "eps truncated to +-3 sigma",
            lambda mu, log_sigma: mu + log_sigma.exp() * torch.randn_like(mu).clamp(-3, 3),
        ),
        (
            "random",
            "uniform noise rescaled to unit variance",
            lambda mu, log_sigma: (
                mu + log_sigma.exp() * (torch.rand_like(mu) - 0.5) * math.sqrt(12)
            ),
        ),
        ("random", "one noise vector shared across the batch", rep_shared_batch),
        ("random", "same draw reused for all k samples of a (k, B, D) call", rep_shared_k),
        (
            "random",
            "standardises the drawn noise (elements no longer independent)",
            rep_standardized,
        ),
        ("shape", "one noise value per row, broadcast over D", rep_row_noise),
        (
            "shape",
            "torch.randn(mu.shape[0], mu.shape[1]): only for 2-D (raises on 1-D and on (k, B, D))",
            rep_randn_2d,
        ),
        (
            "value",
            "uses log_sigma as sigma",
            lambda mu, log_sigma: mu + log_sigma * torch.randn_like(mu),
        ),
        (
            "value",
            "treats log_sigma as log-variance: exp(log_sigma / 2)",
            lambda mu, log_sigma: mu + (0.5 * log_sigma).exp() * torch.randn_like(mu),
        ),
        ("format", "noise drawn in float64: returns float64", rep_float64),
        (
            "scale",
            "sigma = sqrt(exp(2 log_sigma)): exp underflows at log_sigma ~ -60, NaN gradient",
            lambda mu, log_sigma: mu + torch.sqrt(torch.exp(2 * log_sigma)) * torch.randn_like(mu),
        ),
    ],
    "kl_to_standard_normal": [
        (
            "scale",
            "variance as exp(log_sigma)**2 then log(var): inf at log_sigma = -60",
            kls_sigma_sq,
        ),
        (
            "scale",
            "torch.distributions kl_divergence: var ratio underflows to 0 -> inf",
            kls_torch_dist,
        ),
        (
            "gradient",
            "log_sigma detached",
            lambda mu, log_sigma: (
                0.5 * (mu**2 + (2 * log_sigma.detach()).exp() - 1 - 2 * log_sigma.detach()).sum(-1)
            ),
        ),
        ("gradient", "rebuilt with torch.tensor(kl.tolist())", kls_tolist),
        ("gradient", "mu detached", lambda mu, log_sigma: _kl_std(mu.detach(), log_sigma)),
        (
            "value",
            "treats log_sigma as log-variance",
            lambda mu, log_sigma: 0.5 * (mu**2 + log_sigma.exp() - 1 - log_sigma).sum(-1),
        ),
        (
            "value",
            "missing the factor 1/2",
            lambda mu, log_sigma: (mu**2 + (2 * log_sigma).exp() - 1 - 2 * log_sigma).sum(-1),
        ),
        (
            "value",
            "missing the -1",
            lambda mu, log_sigma: 0.5 * (mu**2 + (2 * log_sigma).exp() - 2 * log_sigma).sum(-1),
        ),
        (
            "value",
            "mean over latent dims instead of sum",
            lambda mu, log_sigma: (
                0.5 * (mu**2 + (2 * log_sigma).exp() - 1 - 2 * log_sigma).mean(-1)
            ),
        ),
        (
            "value",
            "sign of the log term flipped",
            lambda mu, log_sigma: 0.5 * (mu**2 + (2 * log_sigma).exp() - 1 + 2 * log_sigma).sum(-1),
        ),
        (
            "shape",
            "sums over dim 0 (the batch): (D,)",
            lambda mu, log_sigma: 0.5 * (mu**2 + (2 * log_sigma).exp() - 1 - 2 * log_sigma).sum(0),
        ),
        (
            "shape",
            "sums over everything: a scalar",
            lambda mu, log_sigma: 0.5 * (mu**2 + (2 * log_sigma).exp() - 1 - 2 * log_sigma).sum(),
        ),
        ("broadcast", "one term summed with keepdim: (B,) + (B, 1) -> (B, B)", kls_keepdim),
        ("format", "returns float64", lambda mu, log_sigma: _kl_std(mu, log_sigma).double()),
    ],
    "elbo": [
        (
            "gradient",
            "z from Normal(...).sample(): no gradient to the encoder through the reconstruction",
            elbo_sample_nograd,
        ),
        ("gradient", "z from torch.normal(mu, sigma): zero pathwise gradient", elbo_normal_fn),
        ("gradient", "z detached before decoding", elbo_z_detached),
        ("gradient", "KL computed on detached mu, log_sigma", elbo_kl_detached),
        ("random", "torch.manual_seed(0) inside", elbo_reseed),
        ("random", "decodes z = mu (no sampling)", elbo_z_mu),
        ("random", "one eps vector shared across the batch", elbo_shared_eps),
        ("value", "elbo = reconstruction + KL", elbo_plus_kl),
        ("value", "reconstruction is the BCE (sign flipped)", elbo_bce_sign),
        ("value", "reconstruction averaged over pixels", elbo_mean_pixels),
        ("value", "KL treats log_sigma as log-variance", elbo_logvar_kl),
        ("scale", "reconstruction via log(sigmoid): -inf for confident logits", elbo_log_sigmoid),
        ("shape", "hard-codes 784 pixels", elbo_view784),
        ("broadcast", "KL with keepdim: elbo becomes (B, B)", elbo_keepdim),
        ("shape", "returns batch means (three scalars)", elbo_means),
        ("value", "returns (elbo, kl, reconstruction): order swapped", elbo_order),
        ("shape", "one noise value per example, shared over latent dims", elbo_row_eps),
    ],
    "iwae_bound": [
        ("scale", "log(mean(exp(log_w))): underflows to -inf", iwae_naive_exp),
        ("value", "mean of log_w (the ELBO), not logsumexp", iwae_mean_logw),
        ("value", "forgets - log k", iwae_no_logk),
        ("value", "weights use log p(x|z) only (no prior / proposal terms)", iwae_logpx_only),
        ("shape", "logsumexp over dim 1 (the batch)", iwae_wrong_dim),
        ("random", "one z repeated k times (all k samples identical)", iwae_same_eps),
        ("random", "torch.manual_seed(0) inside", iwae_reseed),
        ("random", "eps shared by every image in the batch", iwae_shared_over_batch),
        ("value", "log q uses exp(log_sigma / 2) as the scale", iwae_logvar_q),
        ("shape", "hard-codes 1 x 28 x 28 images", iwae_view28),
        (
            "broadcast",
            "log q summed with keepdim: raises unless k == B, then (B, B)",
            iwae_keepdim_q,
        ),
        ("value", "x.repeat_interleave(k): pairs images with the wrong z's", iwae_interleave),
        (
            "format",
            "returns a numpy array (.cpu().numpy())",
            lambda x, enc, dec, k: (
                (torch.logsumexp(_iwae_logw(x, enc, dec, k), 0) - math.log(k)).cpu().numpy()
            ),
        ),
        (
            "shape",
            "averages over the batch: returns a scalar",
            lambda x, enc, dec, k: (
                torch.logsumexp(_iwae_logw(x, enc, dec, k), 0) - math.log(k)
            ).mean(),
        ),
    ],
    # ------------------------------------------------------------------ 05
    "discriminator_loss": [
        ("scale", "log(sigmoid(.)): inf for |logits| ~ 100", dl_log_sigmoid),
        ("scale", "clamps D to [1e-7, 1 - 1e-7]", dl_clamped),
        ("scale", "log(1 + exp(.)) overflows", dl_naive_softplus),
        ("gradient", "fake logits detached", dl_detach_fake),
        ("gradient", "torch.tensor(loss.item())", dl_item),
        (
            "gradient",
            "real logits detached",
            lambda r, f: (
                F.binary_cross_entropy_with_logits(r.detach(), torch.ones_like(r))
                + F.binary_cross_entropy_with_logits(f, torch.zeros_like(f))
            ),
        ),
        (
            "value",
            "labels swapped (real -> 0, fake -> 1)",
            lambda r, f: (
                F.binary_cross_entropy_with_logits(r, torch.zeros_like(r))
                + F.binary_cross_entropy_with_logits(f, torch.ones_like(f))
            ),
        ),
        (
            "value",
            "sum instead of mean",
            lambda r, f: (
                F.binary_cross_entropy_with_logits(r, torch.ones_like(r), reduction="sum")
                + F.binary_cross_entropy_with_logits(f, torch.zeros_like(f), reduction="sum")
            ),
        ),
        (
            "value",
            "one BCE over the concatenated batch (half the loss, wrong weights for unequal sizes)",
            dl_cat,
        ),
        (
            "value",
            "returns the objective E log D + E log(1 - D) (sign flipped)",
            lambda r, f: (
                -(
                    F.binary_cross_entropy_with_logits(r, torch.ones_like(r))
                    + F.binary_cross_entropy_with_logits(f, torch.zeros_like(f))
                )
            ),
        ),
        (
            "shape",
            "both sums divided by len(real_logits): wrong when batch sizes differ",
            dl_len_real,
        ),
        (
            "shape",
            "returns shape (1,)",
            lambda r, f: (F.softplus(-r).mean() + F.softplus(f).mean()).view(1),
        ),
        (
            "format",
            "returns float16",
            lambda r, f: (F.softplus(-r).mean() + F.softplus(f).mean()).half(),
        ),
    ],
    "optimal_discriminator": [
        ("value", "p_g / (p_data + p_g) (swapped)", lambda p_data, p_g: p_g / (p_data + p_g)),
        ("value", "likelihood ratio p_data / p_g", lambda p_data, p_g: p_data / p_g),
        (
            "scale",
            "adds 1e-8 to the denominator: wrong for small densities",
            lambda p_data, p_g: p_data / (p_data + p_g + 1e-8),
        ),
        (
            "scale",
            "computed in float16: underflow for small densities",
            lambda p_data, p_g: (p_data.half() / (p_data.half() + p_g.half())).float(),
        ),
        ("value", "hard decision (p_data > p_g)", lambda p_data, p_g: (p_data > p_g).float()),
        (
            "value",
            "normalises by the total over all points",
            lambda p_data, p_g: p_data / (p_data + p_g).sum(),
        ),
        ("value", "constant 1/2", lambda p_data, p_g: torch.full_like(p_data, 0.5)),
        (
            "value",
            "sigmoid of the density difference",
            lambda p_data, p_g: torch.sigmoid(p_data - p_g),
        ),
        ("shape", "flattens the output", lambda p_data, p_g: (p_data / (p_data + p_g)).view(-1)),
        ("format", "returns a numpy array", lambda p_data, p_g: (p_data / (p_data + p_g)).numpy()),
        ("format", "returns float64", lambda p_data, p_g: (p_data / (p_data + p_g)).double()),
        (
            "scale",
            "clamps the result to [0.01, 0.99]",
            lambda p_data, p_g: (p_data / (p_data + p_g)).clamp(0.01, 0.99),
        ),
    ],
    "generator_loss": [
        (
            "value",
            "saturating loss: E[log(1 - D(G(z)))]",
            lambda f: -F.binary_cross_entropy_with_logits(f, torch.zeros_like(f)),
        ),
        (
            "value",
            "sign flipped",
            lambda f: -F.binary_cross_entropy_with_logits(f, torch.ones_like(f)),
        ),
        (
            "value",
            "sum instead of mean",
            lambda f: F.binary_cross_entropy_with_logits(f, torch.ones_like(f), reduction="sum"),
        ),
        (
            "value",
            "target zeros (the discriminator's fake term)",
            lambda f: F.binary_cross_entropy_with_logits(f, torch.zeros_like(f)),
        ),
        ("value", "Wasserstein-style -mean(logits)", lambda f: -f.mean()),
        ("scale", "-log(sigmoid(l)): inf at l = -120", gl_log_sigmoid),
        ("scale", "clamps D at 1e-7", gl_clamped),
        ("scale", "log(1 + exp(-l)) overflows", gl_naive),
        ("gradient", "torch.tensor(loss.item())", gl_item),
        ("gradient", "under torch.no_grad()", gl_nograd),
        (
            "gradient",
            "logits detached",
            lambda f: F.binary_cross_entropy_with_logits(f.detach(), torch.ones_like(f)),
        ),
        (
            "shape",
            "returns per-example losses (B,)",
            lambda f: F.binary_cross_entropy_with_logits(f, torch.ones_like(f), reduction="none"),
        ),
        (
            "format",
            "returns a Python float",
            lambda f: F.binary_cross_entropy_with_logits(f, torch.ones_like(f)).item(),
        ),
    ],
    # ------------------------------------------------------------------ 06
    "q_sample": [
        ("shape", "alpha_bar[t].view(-1, 1): only for 2-D points (raises on images)", qs_view2),
        (
            "shape",
            "alpha_bar[t].view(-1, 1, 1, 1): only for images ((B,1,B,2) for points)",
            qs_view4,
        ),
        (
            "broadcast",
            "alpha_bar[t] unsqueezed twice: (B,1,1) against (B,1,28,28) -> (B,B,28,28)",
            qs_unsq2,
        ),
        ("value", "alpha_bar not square-rooted", qs_no_sqrt),
        ("value", "noise coefficient 1 - sqrt(ab) instead of sqrt(1 - ab)", qs_wrong_noise_coef),
        ("value", "alpha_bar[t - 1] (thinks t is 1-based)", qs_t_minus_1),
        ("value", "uses the first example's t for the whole batch", qs_first_t),
        ("value", "cumprod of alpha_bar (treats it as alphas)", qs_cumprod),
        ("value", "coefficients swapped", qs_swapped),
        (
            "format",
            "returns float64",
            lambda x0, t, noise, ab: (
                _abview(ab, t, x0).double().sqrt() * x0
                + (1 - _abview(ab, t, x0).double()).sqrt() * noise
            ),
        ),
    ],
    "diffusion_loss": [
        ("random", "torch.manual_seed(0) inside", dfl_reseed),
        ("random", "one t for the whole batch", dfl_same_t),
        ("random", "t drawn from 1..T-1 (never 0)", dfl_t_from_1),
        ("random", "t drawn from 0..T-2 (never T-1)", dfl_t_excl_last),
        ("random", "uniform noise rescaled to unit variance", dfl_uniform_noise),
        ("random", "noise truncated to +-3", dfl_truncated),
        ("random", "one noise image shared across the batch", dfl_shared_eps),
        ("gradient", "model called under torch.no_grad()", dfl_nograd),
        ("gradient", "torch.tensor(loss.item())", dfl_item),
        ("gradient", "prediction detached", dfl_detach_pred),
        ("value", "regresses x0 instead of eps", dfl_x0_target),
        ("value", "sum instead of mean", dfl_sum),
        ("value", "x_t built without square roots", dfl_no_sqrt),
        ("shape", "alpha_bar[t].view(-1, 1): only for 2-D points", dfl_view2),
        (
            "shape",
            "one noise value per example (randn(B, 1, ...)) broadcast over features",
            dfl_row_noise,
        ),
        ("format", "t handed to the model as float", dfl_float_t),
    ],
    "ddpm_step": [
        ("value", "beta-tilde with (1 - ab_t) / (1 - ab_prev) upside down", ddpm_var_swapped),
        ("value", "sigma_t^2 = beta_t instead of beta-tilde", ddpm_sigma_beta),
        ("value", "alpha_t confused with alpha_bar_t", ddpm_alpha_is_ab),
        (
            "value",
            "eps coefficient sqrt(1 - ab_t) instead of beta_t / sqrt(1 - ab_t)",
            ddpm_mean_sqrt1mab,
        ),
        ("value", "alpha_bar[t - 1] at t = 0 wraps to alpha_bar[-1]", ddpm_wrap_prev),
        ("value", "stops adding noise at t == 1 (1-based)", ddpm_one_based_stop),
        ("value", "eps term added instead of subtracted", ddpm_eps_sign),
        ("scale", "clips the x0 prediction to [-1, 1]", ddpm_clip_x0),
        ("value", "variance used as standard deviation", ddpm_var_no_sqrt),
        ("shape", "flattens to (-1, 784)", ddpm_flat784),
        ("format", "casts to float64 for precision: returns float64", ddpm_double),
    ],
    "ddim_step": [
        ("value", "ab_t and ab_prev swapped", ddim_swap),
        ("value", "no square roots", ddim_no_sqrt),
        ("value", "returns the x0 prediction", ddim_x0),
        ("value", "direction term uses sqrt(1 - ab_t)", ddim_dir_ab_t),
        ("value", "direction term 1 - ab_prev without sqrt", ddim_dir_no_sqrt),
        ("value", "DDPM posterior mean instead of DDIM", ddim_ddpm_mean),
        ("scale", "clips the x0 prediction to [-1, 1]", ddim_clip),
        ("shape", "returns flattened (B, -1)", ddim_flat),
        ("value", "signs of the eps terms flipped", ddim_sign),
        ("format", "returns float64", ddim_double),
    ],
    # ------------------------------------------------------------------ 07
    "contrastive_loss": [
        ("value", "only the image-to-text direction", cl_one_dir),
        ("value", "embeddings not normalised", cl_no_norm),
        ("value", "log_scale used as the scale (no exp)", cl_raw_scale),
        ("value", "divides by exp(log_scale) (temperature confusion)", cl_div_scale),
        ("value", "normalises by the whole-matrix norm", cl_matrix_norm),
        ("value", "sums the two directions (no / 2)", cl_sum_dirs),
        ("value", "BCE against the identity matrix", cl_bce_identity),
        ("value", "F.normalize along dim 0", cl_normalize_dim0),
        ("scale", "log(softmax(...).diag()): -inf at scale 100", cl_softmax_diag),
        ("scale", "exp(logits) / sum exp(logits): overflows at scale 100", cl_exp_ratio),
        ("gradient", "math.exp(log_scale): no gradient to log_scale", cl_math_exp),
        ("gradient", "log_scale.item()", cl_item_scale),
        ("gradient", "text embeddings detached", cl_detach_txt),
        ("shape", "targets arange(D): raises unless B == D", cl_targets_D),
        (
            "broadcast",
            "emb / emb.norm(dim=1) without keepdim: raises unless B == D, wrong then",
            cl_norm_nokeepdim,
        ),
        ("format", "similarities in float16: returns float16", cl_half),
    ],
    "guided_eps": [
        (
            "value",
            "eps_cond + s (eps_cond - eps_uncond): s = 0 gives eps_cond",
            lambda c, u, s: c + s * (c - u),
        ),
        (
            "value",
            "(1 + s) eps_cond - s eps_uncond (the other convention)",
            lambda c, u, s: (1 + s) * c - s * u,
        ),
        ("value", "s * eps_cond + eps_uncond", lambda c, u, s: s * c + u),
        ("value", "difference sign flipped", lambda c, u, s: u + s * (u - c)),
        ("value", "renormalised by (1 + s)", lambda c, u, s: (u + s * c) / (1 + s)),
        (
            "scale",
            "clamps the scale to [0, 1]",
            lambda c, u, s: u + min(max(s, 0.0), 1.0) * (c - u),
        ),
        ("value", "int(scale): truncates fractional scales", lambda c, u, s: u + int(s) * (c - u)),
        ("format", "returns float16", ge_half),
        (
            "value",
            "interpolates towards the average: s = 1 gives (eps_cond + eps_uncond) / 2",
            lambda c, u, s: s * (c + u) / 2 + (1 - s) * u,
        ),
        ("format", "returns a nested Python list", lambda c, u, s: (u + s * (c - u)).tolist()),
    ],
    "inpaint_step": [
        (
            "value",
            "mask semantics swapped",
            lambda x, x0, m, ab, n: (1 - m) * (ab.sqrt() * x0 + (1 - ab).sqrt() * n) + m * x,
        ),
        ("value", "pastes x0_known without noising", lambda x, x0, m, ab, n: m * x0 + (1 - m) * x),
        (
            "value",
            "no square roots on ab_prev",
            lambda x, x0, m, ab, n: m * (ab * x0 + (1 - ab) * n) + (1 - m) * x,
        ),
        (
            "value",
            "coefficients swapped",
            lambda x, x0, m, ab, n: m * ((1 - ab).sqrt() * x0 + ab.sqrt() * n) + (1 - m) * x,
        ),
        (
            "value",
            "known part not masked",
            lambda x, x0, m, ab, n: (ab.sqrt() * x0 + (1 - ab).sqrt() * n) + (1 - m) * x,
        ),
        (
            "value",
            "x not zeroed under the mask",
            lambda x, x0, m, ab, n: m * (ab.sqrt() * x0 + (1 - ab).sqrt() * n) + x,
        ),
        ("value", "draws its own noise instead of the given one", ip_fresh_noise),
        (
            "scale",
            "clamps the result to [-1, 1]",
            lambda x, x0, m, ab, n: (
                m * (ab.sqrt() * x0 + (1 - ab).sqrt() * n) + (1 - m) * x
            ).clamp(-1, 1),
        ),
        ("shape", "uses the first example's mask for the whole batch", ip_first_mask),
        ("shape", "flattens to (-1, 784)", ip_flat784),
        (
            "format",
            "returns float64",
            lambda x, x0, m, ab, n: (
                m * (ab.sqrt() * x0 + (1 - ab).sqrt() * n) + (1 - m) * x
            ).double(),
        ),
    ],
}


CORRECT = {
    "categorical_mle": [
        ("one-hot mean", lambda samples, m: F.one_hot(samples, m).float().mean(0)),
        (
            "comparison matrix",
            lambda samples, m: (
                (samples[:, None] == torch.arange(m)[None, :]).sum(0) / samples.numel()
            ),
        ),
    ],
    "num_params": [
        (
            "closed form with k capped at n",
            lambda n, k: (2 ** min(k, n) - 1) + (n - min(k, n)) * 2 ** min(k, n),
        ),
        ("explicit loop", lambda n, k: sum(1 << (i if i < k else k) for i in range(n))),
    ],
    "markov_log_likelihood": [
        ("loop over pixels with torch.where", mll_ok_loop),
        ("advanced indexing + log1p", mll_ok_index),
    ],
    "made_masks": [
        (
            "comparisons written the other way round",
            lambda i, h: (
                (i[None, :] <= h[:, None]).to(torch.float32),
                (h[None, :] < i[:, None]).to(torch.float32),
            ),
        ),
        ("explicit loops", made_ok_loops),
    ],
    "bernoulli_nll": [
        ("softplus(l) - x l", bnll_ok_softplus),
        ("Bernoulli(logits).log_prob", bnll_ok_bernoulli),
        ("torch.where with softplus(-l) / softplus(l)", bnll_ok_where),
    ],
    "sample_autoregressive": [
        ("uniforms drawn up front, compared with sigmoid", sar_ok_pre_uniform),
        ("logistic-noise threshold", sar_ok_logistic),
        ("Bernoulli(logits).sample() with a copy per step", sar_ok_distribution),
    ],
    "kl_categorical": [
        (
            "-entr(p) - xlogy(p, q)",
            lambda p, q: (-torch.special.entr(p) - torch.xlogy(p, q)).sum(-1),
        ),
        (
            "masked torch.where",
            lambda p, q: torch.where(p > 0, p * (p.log() - q.log()), torch.zeros_like(p)).sum(-1),
        ),
    ],
    "kl_gaussian": [
        (
            "log-ratio doubled inside the bracket",
            lambda mu1, s1, mu2, s2: (
                0.5 * (2 * torch.log(s2 / s1) + (s1**2 + (mu1 - mu2) ** 2) / s2**2 - 1)
            ),
        ),
        (
            "ratio form",
            lambda mu1, s1, mu2, s2: (
                0.5 * ((s1 / s2) ** 2 + ((mu1 - mu2) / s2) ** 2 - 1) - torch.log(s1) + torch.log(s2)
            ),
        ),
    ],
    "jsd": [
        ("entropy form H(m) - (H(p) + H(q)) / 2", jsd_ok_entropy),
        ("masked torch.where KLs against m", jsd_ok_masked),
    ],
    "reparameterize": [
        ("Normal(mu, sigma).rsample()", rep_ok_rsample),
        ("torch.addcmul with randn(mu.shape)", rep_ok_addcmul),
    ],
    "kl_to_standard_normal": [
        ("split sum", kls_ok_split),
        ("einsum over the last dim", kls_ok_einsum),
    ],
    "elbo": [
        ("torch.distributions rsample + Bernoulli log_prob", elbo_ok_dist),
        ("softplus form", elbo_ok_softplus),
    ],
    "iwae_bound": [
        ("loop over k with a max-shift log-mean-exp", iwae_ok_loop),
        ("rsample((k,)) + softplus likelihood", iwae_ok_repeat),
    ],
    "discriminator_loss": [
        ("softplus form", dl_ok_softplus),
        ("logsigmoid form", dl_ok_logsigmoid),
    ],
    "optimal_discriminator": [
        ("1 / (1 + p_g / p_data)", lambda p_data, p_g: 1 / (1 + p_g / p_data)),
        (
            "sigmoid of the log-density ratio",
            lambda p_data, p_g: torch.sigmoid(p_data.log() - p_g.log()),
        ),
    ],
    "generator_loss": [
        ("softplus(-l).mean()", lambda f: F.softplus(-f).mean()),
        ("-logsigmoid(l).mean()", lambda f: -F.logsigmoid(f).mean()),
    ],
    "q_sample": [
        ("gather + reshape", qs_ok_reshape),
        ("flatten, combine, reshape back", qs_ok_einsum),
    ],
    "diffusion_loss": [
        ("F.mse_loss with reshape", dfl_ok_mse),
        ("flattened per-example means", dfl_ok_flat),
    ],
    "ddpm_step": [
        ("posterior mean via the x0 prediction", ddpm_ok_posterior),
        ("betas / alphas tables", ddpm_ok_betas),
    ],
    "ddim_step": [
        ("ratio form", ddim_ok_ratio),
        ("math.sqrt on Python floats", ddim_ok_math),
    ],
    "contrastive_loss": [
        ("cosine_similarity matrix", cl_ok_cosine),
        ("soft identity targets with log_softmax", cl_ok_soft_targets),
    ],
    "guided_eps": [
        ("torch.lerp", lambda c, u, s: torch.lerp(u, c, s)),
        ("(1 - s) u + s c", lambda c, u, s: (1 - s) * u + s * c),
    ],
    "inpaint_step": [
        (
            "torch.where on the mask",
            lambda x, x0, m, ab, n: torch.where(m.bool(), ab.sqrt() * x0 + (1 - ab).sqrt() * n, x),
        ),
        (
            "x + mask * (known - x)",
            lambda x, x0, m, ab, n: x + m * (torch.sqrt(ab) * x0 + torch.sqrt(1 - ab) * n - x),
        ),
    ],
}


# ----------------------------------------------------------------------------------------
# Added after review, where the pool had fewer than two answers of a kind that applies:
# mistakes that only the notebook's scale or another shape than the notebook's reveals.
# ----------------------------------------------------------------------------------------
def _sample_clamped(logits_fn, num_samples, num_pixels, order):
    x = torch.zeros(num_samples, num_pixels)
    for i in order:  # "to avoid overflow": a confident pixel is no longer certain
        x[:, i] = torch.bernoulli(torch.sigmoid(logits_fn(x)[:, i].clamp(-5, 5)))
    return x


def _sample_exp_ratio(logits_fn, num_samples, num_pixels, order):
    x = torch.zeros(num_samples, num_pixels)
    for i in order:  # exp(120) / (1 + exp(120)) is inf / inf = nan in float32
        e = logits_fn(x)[:, i].exp()
        x[:, i] = torch.bernoulli(e / (1 + e))
    return x


def _sample_as_images(logits_fn, num_samples, num_pixels, order):
    x = torch.zeros(num_samples, num_pixels)
    for i in order:
        x[:, i] = torch.bernoulli(torch.sigmoid(logits_fn(x)[:, i]))
    return x.view(num_samples, 28, 28)  # MNIST only


def _iwae_global_max(x, encoder, decoder, k):
    mu, log_sigma = encoder(x)
    z = mu + log_sigma.exp() * torch.randn(k, *mu.shape)  # (k, B, D)
    logits = decoder(z.flatten(0, 1)).view(k, *x.shape)
    log_w = (
        -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none")
        .flatten(2)
        .sum(2)
        + Normal(0.0, 1.0).log_prob(z).sum(2)
        - Normal(mu, log_sigma.exp()).log_prob(z).sum(2)
    )
    top = log_w.max()  # one shift for the whole batch, not one per image
    return torch.log((log_w - top).exp().mean(0)) + top


def _diffusion_loss_fixed_t(T_fixed):
    def diffusion_loss(eps_model, x0, alpha_bar):
        t = torch.randint(0, T_fixed, (len(x0),))  # T written out
        eps = torch.randn_like(x0)
        a = alpha_bar[t].view(-1, *[1] * (x0.dim() - 1))
        return (eps - eps_model(a.sqrt() * x0 + (1 - a).sqrt() * eps, t)).pow(2).mean()

    return diffusion_loss


def _ddpm_clamped(x_t, t, eps_pred, alpha_bar, noise):
    ab_t = alpha_bar[t]
    ab_prev = alpha_bar[t - 1] if t > 0 else torch.ones_like(ab_t)
    beta_t = 1 - ab_t / ab_prev
    one_minus = (1 - ab_t).clamp(min=1e-3)  # "to avoid dividing by 0"
    mean = (x_t - beta_t / one_minus.sqrt() * eps_pred) / (1 - beta_t).sqrt()
    if t == 0:
        return mean
    return mean + (beta_t * (1 - ab_prev) / one_minus).sqrt() * noise


def _ddpm_squeezed(x_t, t, eps_pred, alpha_bar, noise):
    ab_t = alpha_bar[t]
    ab_prev = alpha_bar[t - 1] if t > 0 else torch.ones_like(ab_t)
    beta_t = 1 - ab_t / ab_prev
    mean = (x_t - beta_t / (1 - ab_t).sqrt() * eps_pred) / (1 - beta_t).sqrt()
    sigma = (beta_t * (1 - ab_prev) / (1 - ab_t)).sqrt() if t > 0 else 0.0
    return (mean + sigma * noise).squeeze(1)  # drops the channel of grey images


POOL["categorical_mle"] += [
    ("scale", "uses the first 1000 samples only (enough for the quick demo)",
     lambda s, m: torch.bincount(s[:1000], minlength=m).float() / len(s[:1000])),
]
POOL["num_params"] += [
    ("shape", "hard-codes n = 784", lambda n, k: sum(2 ** min(i, k) for i in range(784))),
]
POOL["made_masks"] += [
    ("scale", "degrees stored as uint8: they wrap past 255",
     lambda din, dh: ((dh.to(torch.uint8)[:, None] >= din.to(torch.uint8)[None, :]).float(),
                      (din.to(torch.uint8)[:, None] > dh.to(torch.uint8)[None, :]).float())),
    ("scale", "degrees stored as int8: they wrap past 127",
     lambda din, dh: ((dh.to(torch.int8)[:, None] >= din.to(torch.int8)[None, :]).float(),
                      (din.to(torch.int8)[:, None] > dh.to(torch.int8)[None, :]).float())),
]
POOL["sample_autoregressive"] += [
    ("scale", "clamps the logits to [-5, 5]", _sample_clamped),
    ("scale", "probabilities as exp(l) / (1 + exp(l))", _sample_exp_ratio),
    ("shape", "returns 28 x 28 images", _sample_as_images),
]
POOL["kl_gaussian"] += [
    ("shape", "flattens the result", lambda m1, s1, m2, s2: (
        torch.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5).reshape(-1)),
]
POOL["jsd"] += [
    ("scale", "clamps the probabilities at 1e-3 before the logs", lambda p, q: 0.5 * (
        p * (p.clamp(min=1e-3).log() - ((p + q) / 2).clamp(min=1e-3).log())
        + q * (q.clamp(min=1e-3).log() - ((p + q) / 2).clamp(min=1e-3).log())).sum(-1)),
]
POOL["reparameterize"] += [
    ("scale", "clamps log_sigma to [-10, 10]",
     lambda mu, ls: mu + ls.clamp(-10, 10).exp() * torch.randn_like(mu)),
]
POOL["elbo"] += [
    ("scale", "clamps the decoder's logits to [-20, 20]", lambda x, enc, dec: (
        lambda mu, ls: (lambda rec, kl: (rec - kl, rec, kl))(
            -F.binary_cross_entropy_with_logits(
                dec(mu + ls.exp() * torch.randn_like(mu)).clamp(-20, 20), x, reduction="none"
            ).flatten(1).sum(1),
            0.5 * (mu**2 + (2 * ls).exp() - 1 - 2 * ls).sum(-1)))(*enc(x))),
]
POOL["elbo"] += [
    ("format", "returns the three terms as one (B, 3) tensor", lambda x, enc, dec: torch.stack(
        (lambda mu, ls: (lambda rec, kl: (rec - kl, rec, kl))(
            -F.binary_cross_entropy_with_logits(
                dec(mu + ls.exp() * torch.randn_like(mu)), x, reduction="none").flatten(1).sum(1),
            0.5 * (mu**2 + (2 * ls).exp() - 1 - 2 * ls).sum(-1)))(*enc(x)), 1)),
]
POOL["iwae_bound"] += [
    ("scale", "one max-shift for the whole batch in the log-mean-exp", _iwae_global_max),
]
POOL["optimal_discriminator"] += [
    ("shape", "uses the first row of the densities only", lambda pd, pg: pd[0] / (pd[0] + pg[0])),
]
POOL["generator_loss"] += [
    ("shape", "averages over dim 0 only: (B, 1) logits give (1,)",
     lambda f: F.softplus(-f).mean(0)),
]
POOL["q_sample"] += [
    ("scale", "steps stored as uint8: they wrap past 255", lambda x0, t, n, ab: (
        lambda a: a.sqrt() * x0 + (1 - a).sqrt() * n)(
            ab[t.to(torch.uint8).long()].view(-1, *[1] * (x0.dim() - 1)))),
    ("scale", "alpha_bar in float16: 1 - alpha_bar rounds to 0 at the first steps",
     lambda x0, t, n, ab: (lambda a: a.sqrt() * x0 + (1 - a).sqrt() * n)(
         ab.half()[t].to(x0.dtype).view(-1, *[1] * (x0.dim() - 1)))),
]
POOL["diffusion_loss"] += [
    ("scale", "T = 50 written out", _diffusion_loss_fixed_t(50)),
    ("scale", "T = 1000 written out", _diffusion_loss_fixed_t(1000)),
]
POOL["ddpm_step"] += [
    ("scale", "clamps 1 - alpha_bar at 1e-3", _ddpm_clamped),
    ("shape", "squeezes the channel dimension", _ddpm_squeezed),
]
POOL["ddim_step"] += [
    ("scale", "clamps ab_t at 0.05 before dividing", lambda x_t, e, a, a_prev: (
        a_prev.sqrt() * (x_t - (1 - a).sqrt() * e) / a.clamp(min=0.05).sqrt()
        + (1 - a_prev).sqrt() * e)),
    ("shape", "squeezes the result", lambda x_t, e, a, a_prev: (
        a_prev.sqrt() * (x_t - (1 - a).sqrt() * e) / a.sqrt() + (1 - a_prev).sqrt() * e)
        .squeeze()),
]
POOL["guided_eps"] += [
    ("shape", "scale made a (B, 1, 1, 1) tensor: only for images",
     lambda c, u, s: u + torch.tensor(s, dtype=c.dtype).view(-1, 1, 1, 1) * (c - u)),
    ("shape", "flattens each example", lambda c, u, s: (u + s * (c - u)).flatten(1)),
    ("scale", "clamps the guided prediction to [-3, 3]",
     lambda c, u, s: (u + s * (c - u)).clamp(-3, 3)),
]
POOL["inpaint_step"] += [
    ("scale", "alpha_bar in float16", lambda x, x0, m, a, n: m * (
        a.half().to(x.dtype).sqrt() * x0 + (1 - a.half().to(x.dtype)).sqrt() * n) + (1 - m) * x),
]


MESSAGES = {  # exercise -> words that the check's message must contain, one per POOL entry
    'categorical_mle': [
        'the result has shape (6,); expected (4,)',
        'the result has shape (5,); expected (6,)',
        'these are the counts N_k: divide by N to get',
        'divide the counts by the number of samples N,',
        'that is add-one (Laplace) smoothing; the MLE is',
        'the MLE from 1000 rolls of 6 faces is not right yet',
        'the result has dtype torch.int64; expected floating point',
        'the result is a list of 6 values; expected one tensor',
        'the result has dtype torch.float16, half precision: about 3',
        'the MLE from 100000 rolls of 6 faces is not right yet',
        'the result has shape (1000,); expected (6,)',
        'the result is a ndarray; expected a torch.Tensor',
        'the MLE from 100000 rolls of 6 faces is not right yet',
    ],
    'num_params': [
        'for n = 5, k = 1 it returned 10; expected 9',
        'for n = 5, k = 1 it returned 10; expected 9',
        'for n = 6, k = 9 it returned -1025; expected 63',
        'for n = 1, k = 0 it returned 0.5; expected 1',
        'for n = 1, k = 0 it returned 2; expected 1',
        'for n = 5, k = 0 it returned 1; expected 5',
        'for n = 1, k = 0 it returned 1.0, a float; a count is a whole',
        'for n = 1, k = 0 it returned a tensor (torch.int64); expected a',
        'for n = 64, k = 40 it returned -1; expected 27487790694399',
        'for n = 784, k = 20 it returned 802160576; expected 802160639',
        'for n = 5, k = 0 it returned 31; expected 5',
        'for n = 1, k = 0 it returned 784; expected 1',
    ],
    'markov_log_likelihood': [
        'a product of n probabilities underflows to 0',
        'log p(x) of 16 sequence(s) of 4 variables is not right yet',
        'log p(x) of 16 sequence(s) of 4 variables is not right yet',
        'the parent of variable i is the variable before',
        'column b of p_next is the case x_(i-1) = b:',
        'log p(x) of 16 sequence(s) of 4 variables is not right yet',
        'log p(x) of 16 sequence(s) of 4 variables is not right yet',
        'index tensors of different lengths: a size',
        'the result has shape (); expected (1,)',
        'log p(x) of 8 sequence(s) of 784 variables is not right yet',
        'the result has shape (16, 16); expected (16,)',
        'the result has dtype torch.float16, half precision: about 3',
        'the result has shape (); expected (16,)',
    ],
    'made_masks': [
        'mask_hidden drops 12 connection(s) that MADE keeps',
        'output 0 (degree 1) depends on input 0 (degree 1)',
        'mask_hidden has shape (5, 12); expected (12, 5)',
        'mask_hidden has dtype torch.bool; expected floating point',
        'mask_hidden has dtype torch.int64; expected floating point',
        'mask_hidden has values other than 0 and 1',
        'output 2 (degree 3) depends on input 1 (degree 5)',
        'mask_hidden allows 12 connection(s) that MADE forbids',
        'mask_hidden has dtype torch.float16, half precision: about 3',
        'mask_out has shape (12, 5); expected (5, 12)',
        'output 0 (degree 1) depends on input 0 (degree 1)',
        'output 0 (degree 58) depends on input 3 (degree 290)',
        'output 0 (degree 58) depends on input 1 (degree 760)',
    ],
    'bernoulli_nll': [
        'log(sigmoid(l)) is log(0) = -inf once sigmoid',
        'bernoulli_nll on (4, 1, 28, 28) with confident logits (+-120)',
        'log(sigmoid(l)) is log(0) = -inf once sigmoid',
        'bernoulli_nll on (4, 1, 28, 28) with confident logits (+-120)',
        'no gradient reaches the inputs through the result',
        'no gradient reaches the inputs through the result',
        'no gradient reaches the inputs through the result',
        'a dimension that this input does not have: the',
        'a size written into the code (view / reshape):',
        'the result has shape (8, 1, 5); expected (8,)',
        'the result has shape (); expected (8,)',
        'sum over the pixels of each image, not the',
        'that is log p(x); the NLL is its',
        'bernoulli_nll on (8, 1, 5, 5) is not right yet',
        'the result has shape (8, 8); expected (8,)',
        'the result has dtype torch.float16, half precision: about 3',
    ],
    'sample_autoregressive': [
        'two calls returned the same samples',
        'the frequencies of the 8 possible images of 3 pixels is not',
        'the frequencies of the 8 possible images of 3 pixels is not',
        'the frequencies of the 8 possible images of 3 pixels is not',
        'the frequencies of the 8 possible images of 3 pixels is not',
        'the frequencies of the 8 possible images of 3 pixels is not',
        'the result has values other than 0 and 1',
        'visit the pixels in `order`; for each, call',
        'the result has dtype torch.bool; expected floating point',
        'the result has dtype torch.int64; expected floating point',
        'the frequencies of the 8 possible images of 3 pixels is not',
        '28 x 28 samples of a model sure of every pixel (logits +-120)',
        'torch.bernoulli takes probabilities in [0, 1]:',
        'a size written into the code (view / reshape):',
    ],
    'kl_categorical': [
        '0 * log 0 must count as 0 (an outcome that p',
        'kl_categorical on (10000, 5), torch.float32 is not right yet',
        'you computed KL(q || p): the arguments are',
        'that is in bits (log base 2); use the natural',
        'kl_categorical on (5, 4), torch.float64 is not right yet',
        'kl_categorical on (5, 4), torch.float64 is not right yet',
        'kl_categorical on (5, 4), torch.float64 is not right yet',
        'the result has shape (2, 6); expected (2, 3)',
        'the result has shape (); expected (5,)',
        'the result has shape (); expected (5,)',
        'the result has shape (5, 1); expected (5,)',
        'a tensor of several values was used as one',
    ],
    'kl_gaussian': [
        'the arguments are standard deviations: square',
        'you computed KL(N2 || N1): the expectation is',
        'the constant term is',
        'kl_gaussian on (4,), torch.float64 is not right yet',
        'kl_gaussian on (4,), torch.float64 is not right yet',
        'kl_gaussian on (4,), torch.float64 is not right yet',
        'kl_gaussian on (4,), torch.float64 is not right yet',
        'kl_gaussian on (4,), torch.float64 is not right yet',
        'the result has shape (); expected (4,)',
        'the result has dtype torch.float64, its inputs torch.float32',
        'sigma^2 is 0 in float32 for sigma = 1e-25:',
        'sigma^2 is 0 in float32 for sigma = 1e-25:',
        'the result has shape (6,); expected (2, 3)',
    ],
    'jsd': [
        '0 * log 0 must count as 0 (an outcome that p',
        'that is KL(p || m) alone: average it with KL(q',
        'the result has dtype torch.float64, its inputs torch.float32',
        'average the two KLs (a factor 1/2',
        'KL(m || p) is the wrong way round: the mixture',
        'that is the symmetrised KL between p and q; the',
        'that is in bits (log base 2); use the natural',
        'jsd on (5, 4), torch.float64 is not right yet',
        'jsd on (5, 4), torch.float64 is not right yet',
        'the result has shape (2, 6); expected (2, 3)',
        'the result has shape (); expected (5,)',
        'jsd on (2, 3, 6), torch.float64 is not right yet',
    ],
    'reparameterize': [
        'no gradient reaches mu and log_sigma through your sample',
        'no gradient reaches mu through your result',
        'no gradient reaches log_sigma through your result',
        'no gradient reaches mu and log_sigma through your sample',
        'two calls returned the same sample z',
        'eps = (z - mu) / sigma is not standard normal in its tails:',
        'eps = (z - mu) / sigma is not standard normal in its tails:',
        'eps = (z - mu) / sigma repeats the same draws',
        'eps = (z - mu) / sigma repeats the same draws',
        'eps = (z - mu) / sigma has exactly mean 0 and std 1: it was',
        'eps = (z - mu) / sigma is correlated between the elements of',
        'the shapes do not broadcast: the check also',
        'the std of your samples is not right yet',
        'the std of your samples is not right yet',
        'the result has dtype torch.float64, its inputs torch.float32',
        'a step on the way overflows or divides by 0',
        'z for sigma = exp(-60) is not right yet',
    ],
    'kl_to_standard_normal': [
        'log(sigma^2) is log(0) for a tiny sigma: log',
        'log(sigma^2) is log(0) for a tiny sigma: log',
        'no gradient reaches log_sigma through your result',
        'no gradient reaches the inputs through the result',
        'no gradient reaches mu through your result',
        'sigma^2 = exp(2 log_sigma) and log sigma^2 = 2',
        'the KL of a (6, 4) batch is not right yet',
        'the KL of a (6, 4) batch is not right yet',
        'sum over the latent dimensions, not the',
        'the KL of a (6, 4) batch is not right yet',
        'the result has shape (4,); expected (6,)',
        'the result has shape (); expected (6,)',
        'the result has shape (6, 6); expected (6,)',
        'the result has dtype torch.float64, its inputs torch.float32',
    ],
    'elbo': [
        "the gradient with respect to the encoder's weights is not right",
        "the gradient with respect to the encoder's weights is not right",
        "the gradient with respect to the encoder's weights is not right",
        "the gradient with respect to the encoder's weights is not right",
        'two calls returned the same ELBO (so the same z)',
        'your z has no noise in it',
        'the noise inside your z repeats the same draws',
        'ELBO = reconstruction - KL: a minus',
        'the reconstruction term is log p(x|z), a',
        'sum the log-likelihood over the pixels, not the',
        'the KL term is not right yet',
        'log(sigmoid(l)) is log(0) = -inf once sigmoid',
        'a size written into the code (view / reshape):',
        'elbo has shape (5, 5); expected (5,)',
        'elbo has shape (); expected (5,)',
        'that is the KL term: return (elbo,',
        'the noise inside your z is correlated between the elements of',
        'the elbo with a confident, wrong decoder (logits +-120) is not',
        'the result is a Tensor; expected a tuple (elbo, reconstruction, kl)',
    ],
    'iwae_bound': [
        'exp(log w) is 0 when log w is very negative',
        'iwae_bound with k = 1000 against log p(x) integrated',
        'subtract log k: the bound is a mean of the k',
        'iwae_bound with k = 1000 against log p(x) integrated',
        'iwae_bound(k=1) has shape (1,); expected (6,)',
        'your samples z of q(z|x) = N(0, I) repeats the same draws',
        'two calls returned the same samples z',
        'your samples z of q(z|x) = N(0, I) repeats the same draws',
        'iwae_bound with k = 1000 against log p(x) integrated',
        'a size written into the code (view / reshape):',
        'iwae_bound(k=1) has shape (6, 6); expected (6,)',
        'iwae_bound(k=5) on (1, 2, 3) images with q = p(z) and a decoder',
        'iwae_bound(k=1) is a ndarray; expected a torch.Tensor',
        'iwae_bound(k=1) has shape (); expected (6,)',
        'exp(log w) is 0 when log w is very negative',
    ],
    'discriminator_loss': [
        'log(sigmoid(l)) is log(0) = -inf once sigmoid',
        'discriminator_loss on 64 real and 64 fake logits (some',
        'log(sigmoid(l)) is log(0) = -inf once sigmoid',
        'no gradient reaches fake_logits through your result',
        'no gradient reaches the inputs through the result',
        'no gradient reaches real_logits through your result',
        'the labels are swapped: real images have label',
        'average over each batch, not the',
        'that is one average over both batches together:',
        'discriminator_loss on 6 real and 6 fake logits is not right yet',
        'discriminator_loss on 6 real and 10 fake logits is not right yet',
        'the result has shape (1,); expected ()',
        'the result has dtype torch.float16, half precision: about 3',
    ],
    'optimal_discriminator': [
        'that is 1 - D*: D* is the probability that x is',
        'that is the density ratio p_data / p_G; D* is a',
        'D* on a (3, 50) torch.float64 grid is not right yet',
        'the result has dtype torch.float32, its inputs torch.float64',
        'the result has dtype torch.float32, its inputs torch.float64',
        'D* on a (2001,) torch.float64 grid is not right yet',
        'D* on a (2001,) torch.float64 grid is not right yet',
        'D* on a (2001,) torch.float64 grid is not right yet',
        'the result has shape (150,); expected (3, 50)',
        'the result is a ndarray; expected a torch.Tensor',
        'the result has dtype torch.float64, its inputs torch.float32',
        'D* on a (2001,) torch.float64 grid is not right yet',
        'the result has shape (); expected (2001,)',
    ],
    'generator_loss': [
        'that is the saturating loss E[log(1 -',
        'mind the sign: minimise -E[log',
        'generator_loss on (10,) logits is not right yet',
        'generator_loss on (10,) logits is not right yet',
        'generator_loss on (10,) logits is not right yet',
        'log(sigmoid(l)) is log(0) = -inf once sigmoid',
        'generator_loss on (64,) logits (some confident, +-120) is not',
        'log(sigmoid(l)) is log(0) = -inf once sigmoid',
        'no gradient reaches the inputs through the result',
        'no gradient reaches the inputs through the result',
        'no gradient reaches the inputs through the result',
        'the result has shape (10,); expected ()',
        'the result is a Python float (1.69879150390625); expected a',
        'the result has shape (1,); expected ()',
    ],
    'q_sample': [
        'the shapes do not broadcast: the check also',
        'the result has shape (5, 1, 5, 2); expected (5, 2)',
        'the result has shape (5, 5, 2); expected (5, 2)',
        'the weights are square roots, sqrt(alpha_bar)',
        'q_sample on (5, 2), T = 50, torch.float64 is not right yet',
        'q_sample on (5, 2), T = 50, torch.float64 is not right yet',
        'every example has its own step: index alpha_bar',
        'q_sample on (5, 2), T = 50, torch.float64 is not right yet',
        'x0 and the noise have swapped',
        'the result has dtype torch.float64, its inputs torch.float32',
        'q_sample on (4, 1, 28, 28), T = 1000, torch.float32 is not',
        'q_sample on (5, 2), T = 50, torch.float64 is not right yet',
    ],
    'diffusion_loss': [
        'two calls returned the same steps t',
        't should be uniform over the indices 0..T-1 = 0..49',
        't should be uniform over the indices 0..T-1 = 0..49',
        't should be uniform over the indices 0..T-1 = 0..49',
        'the noise eps inside x_t is not standard normal in its tails:',
        'the noise eps inside x_t is not standard normal in its tails:',
        'the noise eps inside x_t repeats the same draws',
        'no gradient reaches the inputs through the result',
        'no gradient reaches the inputs through the result',
        'no gradient reaches the inputs through the result',
        'the target is the noise eps that made x_t, not',
        'average over all elements (the mean), not the',
        'the noise eps inside x_t has mean',
        'the shapes do not broadcast: the check also',
        'the noise eps inside x_t is correlated between the elements of',
        'the step t that the model got has dtype torch.float32; expected',
        't should be uniform over the indices 0..T-1 = 0..999',
        't indexes alpha_bar, whose indices run from 0',
    ],
    'ddpm_step': [
        'ddpm_step at t = 500 of T = 1000 on (4, 1, 28, 28),',
        'that is sigma_t^2 = beta_t; this exercise uses',
        'ddpm_step at t = 999 of T = 1000 on (4, 1, 28, 28),',
        'ddpm_step at t = 999 of T = 1000 on (4, 1, 28, 28),',
        'at t = 0, alpha_bar[t - 1] is alpha_bar[-1],',
        'add sigma_t * noise at every step but the last',
        'ddpm_step at t = 999 of T = 1000 on (4, 1, 28, 28),',
        'ddpm_step at t = 999 of T = 1000 on (4, 1, 28, 28),',
        'sigma_t is the square root of the variance',
        'the result has shape (4, 784); expected (4, 1, 28, 28)',
        'the result has dtype torch.float64, its inputs torch.float32',
        'ddpm_step at t = 5 of T = 1000 on (4, 1, 28, 28), torch.float32',
        'the result has shape (4, 28, 28); expected (4, 1, 28, 28)',
    ],
    'ddim_step': [
        'ddim_step on (5, 2) from ab_t = 0.1 to 0.5 is not right yet',
        'ddim_step on (5, 2) from ab_t = 0.1 to 0.5 is not right yet',
        'that is the estimate of x0: noise it again to',
        'ddim_step on (5, 2) from ab_t = 0.1 to 0.5 is not right yet',
        'ddim_step on (5, 2) from ab_t = 0.1 to 0.5 is not right yet',
        'ddim_step on (5, 2) from ab_t = 0.1 to 0.5 is not right yet',
        'ddim_step on (5, 2) from ab_t = 0.1 to 0.5 is not right yet',
        'the result has shape (5, 16); expected (5, 1, 4, 4)',
        'ddim_step on (5, 2) from ab_t = 0.1 to 0.5 is not right yet',
        'the result has dtype torch.float64, its inputs torch.float32',
        'ddim_step on (5, 2) from ab_t = 0.01 to 0.9 is not right yet',
        'the result has shape (5, 4, 4); expected (5, 1, 4, 4)',
    ],
    'contrastive_loss': [
        'that is one direction (image -> text); average',
        'normalise the embeddings to unit length first:',
        'the loss of 6 pairs of size 5, exp(log_scale) = 4.48,',
        'exp(log_scale) multiplies the similarities (it',
        'the loss of 6 pairs of size 5, exp(log_scale) = 4.48,',
        'the loss of 6 pairs of size 5, exp(log_scale) = 4.48,',
        'the result has dtype torch.float32, its inputs torch.float64',
        'the loss of 6 pairs of size 5, exp(log_scale) = 4.48,',
        'exp(logits) overflows to inf in float32 for',
        'exp(logits) overflows to inf in float32 for',
        'no gradient reaches log_scale through your result',
        'no gradient reaches log_scale through your result',
        'no gradient reaches txt_emb through your result',
        'the targets are the indices of the matching',
        'the shapes do not broadcast: the check also',
        'the result has dtype torch.float16, half precision: about 3',
    ],
    'guided_eps': [
        'that is the (1 + w) convention, where scale 0',
        'that is the (1 + w) convention, where scale 0',
        'guided_eps on (3, 1, 4, 4) at the scales (0.0, 1.0, 3.0, 7.5)',
        'that moves away from the condition: go from',
        'a weighted average stays between the two',
        'guided_eps on (3, 1, 4, 4) at the scales (0.0, 1.0, 3.0, 7.5)',
        'guided_eps on (3, 1, 4, 4) at the scales (0.0, 1.0, 3.0, 7.5)',
        'the result has dtype torch.float16, half precision: about 3',
        'guided_eps on (3, 1, 4, 4) at the scales (0.0, 1.0, 3.0, 7.5)',
        'the result is a list of 3 values; expected one tensor',
        'the result has shape (1, 1, 2, 5); expected (2, 5)',
        'the result has shape (3, 16); expected (3, 1, 4, 4)',
        'guided_eps on (3, 1, 4, 4) at the scales (0.0, 1.0, 3.0, 7.5)',
    ],
    'inpaint_step': [
        'mask = 1 marks the known pixels: replace x',
        'the known pixels must be noised to the current',
        'the weights are square roots, as in',
        'inpaint_step on (2, 1, 4, 4) at alpha_bar = 0.3 is not right yet',
        'inpaint_step on (2, 1, 4, 4) at alpha_bar = 0.3 is not right yet',
        'inpaint_step on (2, 1, 4, 4) at alpha_bar = 0.3 is not right yet',
        'inpaint_step on (2, 1, 4, 4) at alpha_bar = 0.3 is not right yet',
        'inpaint_step on (2, 1, 4, 4) at alpha_bar = 0.3 is not right yet',
        'inpaint_step on (2, 1, 4, 4) at alpha_bar = 0.3 is not right yet',
        'a size written into the code (view / reshape):',
        'the result has dtype torch.float64, its inputs torch.float32',
        'inpaint_step on (2, 1, 4, 4) at alpha_bar = 0.3 is not right yet',
    ],
}


# ----------------------------------------------------------------------------------------
# NADE's logits (02), added with the exercise.
# ----------------------------------------------------------------------------------------
def _nade_loop(x, W, c, V, b):  # right, one conditional at a time
    a, out = c.expand(len(x), -1), []
    for i in range(x.shape[1]):
        out.append(b[i] + torch.sigmoid(a) @ V[i])
        a = a + x[:, i : i + 1] * W[:, i]
    return torch.stack(out, 1)


def _nade_terms(x, W):
    return x.unsqueeze(-1) * W.T  # (B, D, d)


POOL["nade_logits"] = [
    ("value", "includes pixel i in its own running activation (inclusive cumsum)",
     lambda x, W, c, V, b: (torch.sigmoid(c + _nade_terms(x, W).cumsum(1)) * V).sum(-1) + b),
    ("value", "shifts the cumsum the wrong way (reads the pixels after i)",
     lambda x, W, c, V, b: (torch.sigmoid(c + _nade_terms(x, W).flip(1).cumsum(1).flip(1)
                                          - _nade_terms(x, W)) * V).sum(-1) + b),
    ("value", "no sigmoid on the hidden layer", lambda x, W, c, V, b: (
        (c + _nade_terms(x, W).cumsum(1) - _nade_terms(x, W)) * V).sum(-1) + b),
    ("value", "forgets the hidden bias c", lambda x, W, c, V, b: (
        torch.sigmoid(_nade_terms(x, W).cumsum(1) - _nade_terms(x, W)) * V).sum(-1) + b),
    ("value", "returns probabilities, not logits", lambda x, W, c, V, b: torch.sigmoid(
        (torch.sigmoid(c + _nade_terms(x, W).cumsum(1) - _nade_terms(x, W)) * V).sum(-1) + b)),
    ("shape", "hard-codes D = 784", lambda x, W, c, V, b: (torch.sigmoid(
        c + (x.view(-1, 784, 1) * W.T).cumsum(1) - x.view(-1, 784, 1) * W.T) * V).sum(-1) + b),
    ("shape", "sums over the pixels instead of the hidden units", lambda x, W, c, V, b: (
        torch.sigmoid(c + _nade_terms(x, W).cumsum(1) - _nade_terms(x, W)) * V).sum(1) + b),
    ("broadcast", "bias added as a (D, 1) column", lambda x, W, c, V, b: (torch.sigmoid(
        c + _nade_terms(x, W).cumsum(1) - _nade_terms(x, W)) * V).sum(-1) + b[:, None]),
    ("scale", "running activation in float16", lambda x, W, c, V, b: b + (torch.sigmoid(
        c + _nade_terms(x, W).half().cumsum(1).float() - _nade_terms(x, W)) * V).sum(-1)),
    ("scale", "clamps the pre-activation to [-5, 5]", lambda x, W, c, V, b: (torch.sigmoid(
        (c + _nade_terms(x, W).cumsum(1) - _nade_terms(x, W)).clamp(-5, 5)) * V).sum(-1) + b),
    ("gradient", "W detached", lambda x, W, c, V, b: (torch.sigmoid(
        c + _nade_terms(x, W.detach()).cumsum(1) - _nade_terms(x, W.detach())) * V).sum(-1) + b),
    ("gradient", "computed under torch.no_grad()",
     lambda x, W, c, V, b: torch.no_grad()(_nade_loop)(x, W, c, V, b)),
    ("format", "returns float64", lambda x, W, c, V, b: _nade_loop(x, W, c, V, b).double()),
]
CORRECT["nade_logits"] = [
    ("one conditional at a time, the running activation in a loop", _nade_loop),
    ("the exclusive sum by padding and dropping the last term", lambda x, W, c, V, b: b + (
        torch.sigmoid(c + torch.nn.functional.pad(_nade_terms(x, W), (0, 0, 1, 0))[:, :-1]
                      .cumsum(1)) * V).sum(-1)),
]
MESSAGES["nade_logits"] = [
    "logit 0 depends on pixel 0", "logit 0 depends on pixel 1",
    "the logits of 5 images of 6 pixels, 3 hidden units is not right yet",
    "the logits of 5 images of 6 pixels, 3 hidden units is not right yet",
    "the logits of 5 images of 6 pixels, 3 hidden units is not right yet",
    "is invalid for input of size", "the running activation is (B, D, d)",
    "the running activation is (B, D, d)", "close, but not equal",
    "the logits of 2 images of 784 pixels, 50 hidden units is not right yet",
    "no gradient reaches W", "no gradient reaches the inputs",
    "the result has dtype torch.float64, its inputs torch.float32",
]


# ----------------------------------------------------------------------------------------
# 02  pixelcnn_mask (written with the exercise, after the rest of this file)
# ----------------------------------------------------------------------------------------
def _pm(k, mask_type):
    mask = torch.ones(k, k)
    mask[k // 2, k // 2 + (mask_type == "B"):] = 0
    mask[k // 2 + 1:] = 0
    return mask


def _pm_centre_row_open(k, mask_type):
    mask = _pm(k, mask_type)
    mask[k // 2] = 1
    mask[k // 2, k // 2] = float(mask_type == "B")
    return mask


def _pm_centre_row_closed(k, mask_type):
    mask = _pm(k, mask_type)
    mask[k // 2] = 0
    mask[k // 2, k // 2] = float(mask_type == "B")
    return mask


def _pm_centre_one(k, mask_type):
    mask = torch.ones(k, k)
    mask[1, 1 + (mask_type == "B"):] = 0
    mask[2:] = 0
    return mask


def _pm_raster(k, mask_type):
    index = torch.arange(k * k).view(k, k)  # raster position of every kernel entry
    centre = (k * k) // 2
    return ((index < centre) | ((index == centre) & (mask_type == "B"))).float()


def _pm_loops(k, mask_type):
    mask = torch.zeros(k, k)
    for r in range(k):
        for c in range(k):
            before = r < k // 2 or (r == k // 2 and c < k // 2)
            mask[r, c] = float(before or (mask_type == "B" and r == c == k // 2))
    return mask


POOL["pixelcnn_mask"] = [
    ("value", "mask A keeps the centre (the B rule for both)", lambda k, t: _pm(k, "B")),
    ("value", "mask B hides the centre too", lambda k, t: _pm(k, "A")),
    ("value", "columns instead of rows (transposed)", lambda k, t: _pm(k, t).T.contiguous()),
    ("value", "the whole centre row open", _pm_centre_row_open),
    ("value", "the whole centre row closed", _pm_centre_row_closed),
    ("shape", "returns (1, 1, k, k), ready for the weights", lambda k, t: _pm(k, t)[None, None]),
    ("shape", "flattened to (k * k,)", lambda k, t: _pm(k, t).flatten()),
    ("scale", "the 3 x 3 masks hard-coded", lambda k, t: _pm(3, t)),
    ("scale", "centre index hard-coded to 1 (right for 3 x 3 only)", _pm_centre_one),
    ("format", "a boolean mask", lambda k, t: _pm(k, t).bool()),
    ("format", "float64 masks", lambda k, t: _pm(k, t).double()),
    ("format", "a numpy array", lambda k, t: _pm(k, t).numpy()),
]
MESSAGES["pixelcnn_mask"] = [
    "mask A for k = 3 reads the centre",
    "mask B for k = 3 hides the centre",
    "is the right mask transposed",
    "opens position (1, 2), in the centre row, right of the centre",
    "closes position (1, 0), which comes before the centre",
    "has shape (1, 1, 3, 3); expected (3, 3)",
    "has shape (9,); expected (3, 3)",
    "mask A for k = 7 has shape (3, 3); expected (7, 7)",
    "mask A for k = 7 closes position (1, 1)",
    "has dtype torch.bool; expected floating point",
    "the float32 weights it multiplies need float32",
    "is a ndarray; expected a torch.Tensor",
]
CORRECT["pixelcnn_mask"] = [
    ("raster index below the centre's (B: or equal)", _pm_raster),
    ("nested loops over the kernel", _pm_loops),
]
