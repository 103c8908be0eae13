"""Checks for the 07_text_to_image exercises: the symmetric contrastive (CLIP) loss against a
manual log-softmax in both directions, classifier-free guidance, and the inpainting step.
"""

import math

import torch

from .core import Exercise, ok


def _clip_loss(img, txt, log_scale, directions=2, normalise=True):
    if normalise:
        img, txt = img / img.norm(dim=1, keepdim=True), txt / txt.norm(dim=1, keepdim=True)
    scores = torch.exp(log_scale) * (img @ txt.T)  # (B, B): image i against caption j
    diag = scores.diagonal()
    image_to_text = (scores.logsumexp(1) - diag).mean()  # each image picks its caption
    text_to_image = (scores.logsumexp(0) - diag).mean()  # each caption picks its image
    return image_to_text if directions == 1 else (image_to_text + text_to_image) / 2


def _pairs(batch, dim, dtype, seed):
    """Embeddings of `batch` image-caption pairs, some of which agree, of different lengths
    (the loss must normalise them); batch != dim, so that the two cannot be confused."""
    gen = torch.Generator().manual_seed(seed)
    img, txt = torch.randn(2, batch, dim, generator=gen, dtype=torch.float64)
    txt[: batch // 2] += 2 * img[: batch // 2]
    txt[-1] = -img[-1]  # a pair that disagrees: at scale 100 its softmax underflows to 0
    img[0] *= 4
    return img.to(dtype).requires_grad_(), txt.to(dtype).requires_grad_()


def check_contrastive_loss(contrastive_loss) -> None:
    """contrastive_loss(img_emb (B, D), txt_emb (B, D), log_scale ()) -> the symmetric CLIP loss."""
    ex = Exercise(contrastive_loss, "contrastive_loss", "cosine similarities of every image with "
                  "every caption, scaled by exp(log_scale), are the logits; the matching pairs "
                  "lie on the diagonal; average the cross-entropies image -> text and text -> "
                  "image", errors=[(ValueError, "target batch_size", "the targets are the indices "
                                    "of the matching captions, torch.arange(B): one per pair, B "
                                    "the batch size (not the embedding size)")])
    unstable = ("exp(logits) overflows to inf in float32 for logits near 100: compute the "
                "log-softmax in one stable step (F.cross_entropy or torch.logsumexp)")
    for batch, dim, dtype, scale in [(6, 5, torch.float64, 1.5), (3, 16, torch.float64, 0.2),
                                     (256, 64, torch.float32, math.log(100.0))]:  # 07's, at
        img, txt = _pairs(batch, dim, dtype, seed=batch)  # CLIP's largest scale, 100
        log_scale = torch.tensor(scale, dtype=dtype, requires_grad=True)
        got = ex.call(img, txt, log_scale)
        value = ex.tensor(got, (), like=[img, txt], finite_hint=unstable, grad=True)
        i, t, s = img.detach().double(), txt.detach().double(), log_scale.detach().double()
        ex.compare(value, _clip_loss(i, t, s), what=f"the loss of {batch} pairs of size {dim}, "
                   f"exp(log_scale) = {math.exp(scale):.3g}, {dtype}", rtol=1e-4, atol=1e-5,
                   known=[
            (_clip_loss(i, t, s, directions=1), "that is one direction (image -> text); "
             "average it with the other (text -> image)"),
            (_clip_loss(i, t, s, normalise=False), "normalise the embeddings to unit length "
             "first: the logits are cosine similarities"),
            (_clip_loss(i, t, -s), "exp(log_scale) multiplies the similarities (it is "
                                   "1 / temperature)")])
        swapped = ex.tensor(ex.call(txt, img, log_scale), ())
        ex.compare(swapped, value, what="the loss with images and captions swapped",
                   hint="the loss should be symmetric: average both directions", atol=1e-6)
        ex.gradients(got, {"img_emb": img, "txt_emb": txt, "log_scale": log_scale}, _clip_loss,
                     atol=1e-6)
    ok("contrastive_loss matches the symmetric InfoNCE in value and gradient (embeddings and the "
       "learned scale), for any batch and size, stably at scale 100")


def check_guided_eps(guided_eps) -> None:
    """guided_eps(eps_cond, eps_uncond, scale) -> the classifier-free guided prediction."""
    ex = Exercise(guided_eps, "guided_eps", "write grad log p(x_t) + s grad log "
                  "p(c | x_t) with the two noise predictions: scale 0 must give the unconditional "
                  "prediction and scale 1 the conditional one")
    gen = torch.Generator().manual_seed(1)
    scales = (0.0, 1.0, 3.0, 7.5)
    for shape, dtype in [((3, 1, 4, 4), torch.float64), ((2, 5), torch.float64),
                         ((4, 1, 28, 28), torch.float32)]:  # the last: 07's images
        eps_c, eps_u = torch.randn(2, *shape, generator=gen, dtype=dtype)
        got = torch.stack([ex.tensor(ex.call(eps_c, eps_u, scale), shape, like=[eps_c, eps_u])
                           for scale in scales])  # (4, *shape): every scale, compared together
        c, u, w = eps_c.double(), eps_u.double(), torch.tensor(scales).view(-1, *[1] * len(shape))
        ex.compare(got, u + w * (c - u), what=f"guided_eps on {shape} at the scales {scales}",
                   atol=1e-5, known=[
            (c + w * (c - u), "that is the (1 + w) convention, where scale 0 is already "
                              "conditional; here scale 1 is the conditional model"),
            (u - w * (c - u), "that moves away from the condition: go from eps_uncond towards "
                              "eps_cond"),
            ((u + w * c) / (1 + w), "a weighted average stays between the two predictions; "
                                    "guidance goes beyond eps_cond for scales above 1")])
    ok("guided_eps: 0 = unconditional, 1 = conditional, > 1 extrapolates towards the condition")


def check_inpaint_step(inpaint_step) -> None:
    """inpaint_step(x, x0_known, mask, ab_prev, noise) -> x with the known region re-imposed."""
    ex = Exercise(inpaint_step, "inpaint_step", "where mask = 1, x must be the known image at the "
                  "noise level ab_prev (06's forward process, with the given noise); where mask ="
                  " 0, keep the generated x")
    gen = torch.Generator().manual_seed(2)
    for shape, dtype in [((2, 1, 4, 4), torch.float64), ((3, 3, 6, 6), torch.float64),
                         ((2, 1, 28, 28), torch.float32)]:  # the last: 07's images
        x, x0, noise = torch.randn(3, *shape, generator=gen, dtype=dtype)
        mask = torch.zeros(shape, dtype=dtype)
        mask[..., : shape[-1] // 2] = 1  # 1 where the pixel is known (the left half)
        mask[0, ..., -1, :] = 1  # and the bottom row of the first image
        for ab_prev in (0.3, 0.9, 1.0):
            ab = torch.tensor(ab_prev, dtype=dtype)
            got = ex.tensor(ex.call(x, x0, mask, ab, noise), x.shape, like=[x, x0, mask, noise])
            a, x_, x0_, z = (v.double() for v in (ab, x, x0, noise))
            noised = a.sqrt() * x0_ + (1 - a).sqrt() * z
            known = mask > 0
            ex.compare(got, torch.where(known, noised, x_), what=f"inpaint_step on {shape} at "
                       f"alpha_bar = {ab_prev}", atol=1e-5, known=[
                (torch.where(known, x0_, x_), "the known pixels must be noised to the current "
                                              "level ab_prev, like the rest of x"),
                (torch.where(known, x_, noised), "mask = 1 marks the known pixels: replace x "
                                                 "there, keep it elsewhere"),
                (torch.where(known, a * x0_ + (1 - a) * z, x_), "the weights are square roots, "
                                                                "as in q_sample")]
                if ab_prev < 1 else [])
    ok("inpaint_step: the known region is the known image at the current noise level, exact at the"
       " end")
