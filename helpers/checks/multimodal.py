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


def check_contrastive_loss(contrastive_loss) -> None:
    """contrastive_loss(img_emb (B, D), txt_emb (B, D), log_scale ()) -> the symmetric CLIP loss."""
    ex = Exercise(contrastive_loss, "contrastive_loss", "cosine similarities of every image with "
                  "every caption, scaled by exp(log_scale), are the logits; the matching pairs "
                  "lie on the diagonal; average the cross-entropies image -> text and text -> "
                  "image")
    gen = torch.Generator().manual_seed(0)
    img, txt = torch.randn(2, 6, 5, generator=gen, dtype=torch.float64)
    txt[:3] += 2 * img[:3]  # some pairs agree, so the two directions differ
    img[0] *= 4  # embeddings of different lengths: the loss must normalise them
    log_scale = torch.tensor(1.5, dtype=torch.float64, requires_grad=True)
    got = ex.call(img, txt, log_scale)
    value = ex.tensor(got, (), like=[img, txt])
    scale = log_scale.detach()
    ex.compare(value, _clip_loss(img, txt, scale), known=[
        (_clip_loss(img, txt, scale, directions=1), "that is one direction (image -> text); "
         "average it with the other (text -> image)"),
        (_clip_loss(img, txt, scale, normalise=False), "normalise the embeddings "
         "to unit length first: the logits are cosine similarities"),
        (_clip_loss(img, txt, -scale), "exp(log_scale) multiplies the similarities (it is "
                                       "1 / temperature)")])
    swapped = ex.tensor(ex.call(txt, img, log_scale), ())
    ex.compare(swapped, value, what="the loss with images and captions swapped",
               hint="the loss should be symmetric: average both directions", atol=1e-9)
    if got.grad_fn is None or torch.autograd.grad(got, log_scale)[0] == 0:
        ex.fail("the loss is not differentiable in log_scale", hint="the temperature is learned:"
                " use log_scale in the computation, without .item() or .detach()")
    # The largest scale CLIP allows (100) on well-aligned float32 pairs: exp(100) overflows.
    img32, txt32 = img.float(), (txt + 20 * img).float()
    top = torch.tensor(math.log(100.0))
    unstable = ("exp(logits) overflows to inf in float32 for logits near 100: compute the "
                "log-softmax in one stable step (F.cross_entropy or torch.logsumexp)")
    value = ex.tensor(ex.call(img32, txt32, top), (), like=[img32, txt32], finite_hint=unstable)
    ex.compare(value, _clip_loss(img32.double(), txt32.double(), top.double()), what="the loss "
               "at the largest scale, exp(log_scale) = 100, in float32", hint=unstable, rtol=1e-3,
               atol=1e-4)
    ok("contrastive_loss matches the manual symmetric InfoNCE, stably, with a learnable scale")


def check_guided_eps(guided_eps) -> None:
    """guided_eps(eps_cond, eps_uncond, scale) -> the classifier-free guided prediction."""
    ex = Exercise(guided_eps, "guided_eps", "scale 0 gives the unconditional prediction, scale 1 "
                  "the conditional one, and larger scales go further along eps_cond - eps_uncond")
    gen = torch.Generator().manual_seed(1)
    eps_c, eps_u = torch.randn(2, 3, 1, 4, 4, generator=gen, dtype=torch.float64)
    for scale in (0.0, 1.0, 3.0):
        got = ex.tensor(ex.call(eps_c, eps_u, scale), eps_c.shape, like=[eps_c, eps_u])
        direction = eps_c - eps_u
        ex.compare(got, eps_u + scale * direction, what=f"guided_eps with scale {scale}",
                   atol=1e-9, known=[
                       (eps_c + scale * direction, "that is the (1 + w) convention, where "
                        "scale 0 is already conditional; here scale 1 is the conditional model"),
                       (eps_u - scale * direction, "that moves away from the condition: go from "
                                                   "eps_uncond towards eps_cond")])
    ok("guided_eps: 0 = unconditional, 1 = conditional, > 1 extrapolates towards the condition")


def check_inpaint_step(inpaint_step) -> None:
    """inpaint_step(x, x0_known, mask, ab_prev, noise) -> x with the known region re-imposed."""
    ex = Exercise(inpaint_step, "inpaint_step", "where mask = 1, x must be the known image at the "
                  "noise level ab_prev (06's forward process, with the given noise); where mask ="
                  " 0, keep the generated x")
    gen = torch.Generator().manual_seed(2)
    x, x0, noise = torch.randn(3, 2, 1, 4, 4, generator=gen, dtype=torch.float64)
    mask = torch.zeros(2, 1, 4, 4, dtype=torch.float64)
    mask[..., :2] = 1  # 1 where the pixel is known (the left half)
    for ab_prev in (0.3, 0.9, 1.0):
        ab = torch.tensor(ab_prev, dtype=torch.float64)
        got = ex.tensor(ex.call(x, x0, mask, ab, noise), x.shape, like=[x, x0, mask, noise])
        noised = ab.sqrt() * x0 + (1 - ab).sqrt() * noise
        ex.compare(got, torch.where(mask > 0, noised, x), what=f"inpaint_step at alpha_bar = "
                   f"{ab_prev}", atol=1e-9, known=[
                       (torch.where(mask > 0, x0, x), "the known pixels must be noised to the "
                                                      "current level ab_prev, like the rest of x"),
                       (torch.where(mask > 0, x, noised), "mask = 1 marks the known pixels: "
                                                          "replace x there, keep it elsewhere"),
                       (torch.where(mask > 0, ab * x0 + (1 - ab) * noise, x), "the weights are "
                        "square roots, as in q_sample")] if ab_prev < 1 else [])
    ok("inpaint_step: the known region is the known image at the current noise level, exact at the"
       " end")
