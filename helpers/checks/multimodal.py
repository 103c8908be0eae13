"""Checks for the 07_text_to_image exercises: the symmetric contrastive (CLIP) loss against a
manual log-softmax in both directions, classifier-free guidance, and the inpainting step.
"""

import torch

from .core import ExerciseError, answer, call, close, ok


def _manual_clip_loss(img, txt, log_scale):
    img, txt = img / img.norm(dim=1, keepdim=True), txt / txt.norm(dim=1, keepdim=True)
    logits = log_scale.exp() * img @ txt.T  # (B, B): image i against caption j
    diag = logits.diagonal()
    image_to_text = (logits.logsumexp(1) - diag).mean()  # each image picks its caption
    text_to_image = (logits.logsumexp(0) - diag).mean()  # each caption picks its image
    return (image_to_text + text_to_image) / 2


def check_contrastive_loss(contrastive_loss) -> None:
    """contrastive_loss(img_emb (B, D), txt_emb (B, D), log_scale ()) -> the symmetric CLIP loss."""
    gen = torch.Generator().manual_seed(0)
    img, txt = torch.randn(2, 6, 5, generator=gen, dtype=torch.float64)
    txt[:3] += 2 * img[:3]  # some pairs agree, so the two directions differ
    img[0] *= 4  # embeddings of different lengths: the loss must normalise them
    log_scale = torch.tensor(1.5, dtype=torch.float64, requires_grad=True)
    got = call(contrastive_loss, "contrastive_loss", img, txt, log_scale)
    value = answer(got, "contrastive_loss", shape=())
    hint = ("normalise both embeddings to unit length, logits = exp(log_scale) * img @ txt.T, and "
            "average the cross-entropy with targets arange(B) over rows (image -> text) and over "
            "columns (text -> image)")
    close(value, _manual_clip_loss(img, txt, log_scale.detach()), "contrastive_loss", hint)
    swapped = answer(call(contrastive_loss, "contrastive_loss", txt, img, log_scale),
                     "contrastive_loss", shape=())
    close(swapped, value, "contrastive_loss with images and captions swapped", "the loss should "
          "be symmetric: average both directions", atol=1e-9)
    if got.grad_fn is None or torch.autograd.grad(got, log_scale)[0] == 0:
        raise ExerciseError("contrastive_loss must be differentiable in log_scale: the temperature"
                            " is learned")
    ok("contrastive_loss matches the manual symmetric InfoNCE, with a learnable temperature")


def check_guided_eps(guided_eps) -> None:
    """guided_eps(eps_cond, eps_uncond, scale) -> eps_uncond + scale * (eps_cond - eps_uncond)."""
    gen = torch.Generator().manual_seed(1)
    eps_c, eps_u = torch.randn(2, 3, 1, 4, 4, generator=gen, dtype=torch.float64)
    for scale in (0.0, 1.0, 3.0):
        got = answer(call(guided_eps, "guided_eps", eps_c, eps_u, scale), "guided_eps",
                     eps_c.shape)
        close(got, eps_u + scale * (eps_c - eps_u), f"guided_eps with scale {scale}",
              "scale 0 must give the unconditional prediction, scale 1 the conditional one, and "
              "larger scales move further in the direction eps_cond - eps_uncond", atol=1e-9)
    ok("guided_eps: 0 = unconditional, 1 = conditional, > 1 extrapolates towards the condition")


def check_inpaint_step(inpaint_step) -> None:
    """inpaint_step(x, x0_known, mask, ab_prev, noise) -> x with the known region re-imposed."""
    gen = torch.Generator().manual_seed(2)
    x, x0, noise = torch.randn(3, 2, 1, 4, 4, generator=gen, dtype=torch.float64)
    mask = torch.zeros(2, 1, 4, 4, dtype=torch.float64)
    mask[..., :2] = 1  # 1 where the pixel is known (the left half)
    for ab_prev in (0.3, 0.9, 1.0):
        ab = torch.tensor(ab_prev, dtype=torch.float64)
        got = answer(call(inpaint_step, "inpaint_step", x, x0, mask, ab, noise), "inpaint_step",
                     x.shape)
        want = mask * (ab.sqrt() * x0 + (1 - ab).sqrt() * noise) + (1 - mask) * x
        close(got, want, f"inpaint_step at alpha_bar = {ab_prev}", "where mask = 1, replace x by "
              "the known image noised to the same level (q_sample with ab_prev); where mask = 0, "
              "keep the generated x", atol=1e-9)
    ok("inpaint_step: the known region is the known image at the current noise level, exact at the"
       " end")
