"""Exercise checks: each calls the student's function on test cases and compares the answer with an
independent reference (torch.distributions, brute-force enumeration, a closed form or numerical
integration). A check prints one success line, or raises ExerciseError saying what was expected,
what came back and a hint; wrong types, shapes, dtypes and NaNs get a plain message.
"""

from .adversarial import (
    check_discriminator_loss,
    check_generator_loss,
    check_optimal_discriminator,
)
from .autoregressive import check_bernoulli_nll, check_made_masks, check_sample_autoregressive
from .core import ExerciseError
from .counting import (
    check_categorical_mle,
    check_markov_log_likelihood,
    check_markov_order_k_params,
)
from .diffusion import check_ddim_step, check_ddpm_step, check_diffusion_loss, check_q_sample
from .divergences import check_jsd, check_kl_categorical, check_kl_gaussian
from .multimodal import check_contrastive_loss, check_guided_eps, check_inpaint_step
from .variational import (
    check_elbo,
    check_iwae_bound,
    check_kl_standard_normal,
    check_reparameterize,
)

__all__ = ["ExerciseError", "check_categorical_mle", "check_jsd", "check_kl_categorical",
           "check_kl_gaussian", "check_markov_log_likelihood", "check_markov_order_k_params",
           "check_reparameterize", "check_kl_standard_normal", "check_elbo", "check_iwae_bound",
           "check_made_masks", "check_bernoulli_nll", "check_sample_autoregressive",
           "check_discriminator_loss", "check_generator_loss", "check_optimal_discriminator",
           "check_q_sample", "check_diffusion_loss", "check_ddpm_step", "check_ddim_step",
           "check_contrastive_loss", "check_guided_eps", "check_inpaint_step"]
