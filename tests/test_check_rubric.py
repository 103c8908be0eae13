"""The rubric of CONTRIBUTING ("Exercise checks"), enforced for every exercise: each test takes the
notebook's solution, turns it into an answer that breaks one item of the rubric (or watches how
the check calls it), and fails, naming the exercise and the item, if the check does not notice.

(a) three or more shapes, one the notebook does not use; (b) gradients, for what feeds training;
(c) the notebook's own scale and dtype; (d) fresh, independent, full-tailed randomness; (e) exact
formats; and every check refuses an answer that calls the checks' own code."""

import contextlib
from dataclasses import dataclass, field

import pytest
import torch
from test_checks import CASES, IDS, _rejected

from helpers import checks


@dataclass
class Applies:
    """What of the rubric applies to one exercise, and what the tests need to know for it."""

    notebook_shape: object  # args -> True when a call has the shape the notebook uses
    notebook_scale: object  # args -> True when a call has the notebook's size, dtype, extremes
    cuts: tuple = ()  # (b): (what is cut, args -> args with one path of the gradient cut)
    noise: str | None = None  # (d): the torch function the answer draws with, None: not random
    formats: tuple = ("half",)  # (e): the format mistakes that apply
    extra: dict = field(default_factory=dict)


def _tensors(args):
    return [a for a in args if isinstance(a, torch.Tensor)]


def _first(args):
    return _tensors(args)[0]


def _f32(args, shape=None, at_least=0.0):
    x = _first(args)
    return (x.dtype == torch.float32 and (shape is None or tuple(x.shape[1:]) == shape)
            and float(x.detach().abs().max()) >= at_least)


def _detach(i):
    return lambda args: [a.detach() if j == i else a for j, a in enumerate(args)]


def _wrap(i, wrapper):
    return lambda args: [wrapper(a) if j == i else a for j, a in enumerate(args)]


IMAGE = (1, 28, 28)
RUBRIC = {
    "categorical_mle": Applies(lambda a: a[1] == 6, lambda a: a[1] == 6 and len(a[0]) >= 10**5),
    "num_params": Applies(lambda a: a == (784, 8), lambda a: a == (784, 8), formats=("int",)),
    "markov_log_likelihood": Applies(lambda a: a[0].shape[1] == 784,
                                     lambda a: _f32(a, (784,))),
    "nade_logits": Applies(lambda a: a[0].shape[1] == 784, lambda a: _f32(a, (784,)),
                           cuts=(("W", _detach(1)), ("c", _detach(2)), ("V", _detach(3)),
                                 ("b", _detach(4)))),
    "made_masks": Applies(lambda a: len(a[0]) == 784, lambda a: len(a[0]) == 784,
                          formats=("binary",)),
    "pixelcnn_mask": Applies(lambda a: a[0] in (3, 7), lambda a: a == (7, "A"),
                             formats=("binary",)),
    "bernoulli_nll": Applies(lambda a: a[0].shape[1:] == IMAGE,
                             lambda a: _f32(a, IMAGE, at_least=100),
                             cuts=(("the logits", _detach(0)),)),
    "sample_autoregressive": Applies(lambda a: a[2] == 784, lambda a: a[2] == 784,
                                     noise="bernoulli"),
    "kl_categorical": Applies(lambda a: a[0].shape == (10_000, 5),
                              lambda a: _f32(a) and a[0].shape == (10_000, 5)),
    "kl_gaussian": Applies(lambda a: a[0].shape == (4,), lambda a: _f32(a)),
    "jsd": Applies(lambda a: a[0].shape == (10_000, 5),
                   lambda a: _f32(a) and a[0].shape == (10_000, 5)),
    "reparameterize": Applies(lambda a: a[0].dim() == 1, lambda a: _f32(a) and a[0].dim() == 1,
                              cuts=(("mu", _detach(0)), ("log_sigma", _detach(1))),
                              noise="randn_like"),
    "kl_to_standard_normal": Applies(lambda a: a[0].shape[1] == 32,
                                     lambda a: _f32(a) and a[0].shape[1] == 32 and
                                     float(a[1].detach().min()) <= -60,
                                     cuts=(("mu", _detach(0)), ("log_sigma", _detach(1)))),
    "elbo": Applies(lambda a: a[0].shape[1:] == IMAGE, lambda a: a[0].shape[1:] == IMAGE,
                    cuts=(("the encoder", _wrap(1, lambda enc: lambda x: [
                        v.detach() for v in enc(x)])),
                          ("the sample z", _wrap(2, lambda dec: lambda z: dec(z.detach()))),
                          ("the decoder", _wrap(2, lambda dec: lambda z: dec(z).detach()))),
                    noise="randn_like"),
    "iwae_bound": Applies(lambda a: a[0].shape[1:] == IMAGE, lambda a: a[0].shape[1:] == IMAGE,
                          noise="randn_like"),
    "discriminator_loss": Applies(lambda a: a[0].shape == (64,),
                                  lambda a: _f32(a, at_least=100),
                                  cuts=(("real_logits", _detach(0)),
                                        ("fake_logits", _detach(1)))),
    "generator_loss": Applies(lambda a: a[0].shape == (64,), lambda a: _f32(a, at_least=100),
                              cuts=(("fake_logits", _detach(0)),)),
    "optimal_discriminator": Applies(lambda a: a[0].dim() == 1, lambda a: _f32(a)),
    "q_sample": Applies(lambda a: a[0].shape[1:] == IMAGE,
                        lambda a: _f32(a, IMAGE) and len(a[3]) == 1000),
    "diffusion_loss": Applies(lambda a: a[1].dim() == 4,
                              lambda a: a[1].dtype == torch.float32 and len(a[2]) == 1000,
                              cuts=(("the model", _wrap(0, lambda m: lambda x, t:
                                                        m(x, t).detach())),),
                              noise="randn_like", formats=("half", "index")),
    "ddpm_step": Applies(lambda a: a[0].shape[1:] == IMAGE,
                         lambda a: _f32(a, IMAGE) and len(a[3]) == 1000),
    "ddim_step": Applies(lambda a: a[0].shape[1:] == IMAGE, lambda a: _f32(a, IMAGE)),
    "contrastive_loss": Applies(lambda a: a[0].shape[1] == 64,
                                lambda a: _f32(a) and len(a[0]) >= 256 and
                                float(a[2].detach().exp()) >= 99,
                                cuts=(("img_emb", _detach(0)), ("txt_emb", _detach(1)),
                                      ("log_scale", _detach(2)))),
    "guided_eps": Applies(lambda a: a[0].shape[1:] == IMAGE, lambda a: _f32(a, IMAGE)),
    "inpaint_step": Applies(lambda a: a[0].shape[1:] == IMAGE, lambda a: _f32(a, IMAGE)),
}


def _signature(args) -> tuple:
    return tuple((tuple(a.shape), a.dtype) if isinstance(a, torch.Tensor) else
                 a if isinstance(a, int | float) else type(a).__name__ for a in args)


def _recorded(check, function) -> list:
    calls = []

    def answer(*args):
        calls.append(args)
        return function(*args)
    check(answer)
    return calls


def _outputs(out, change):
    """`change` applied to every tensor of an answer's result (a tensor or a tuple of them)."""
    if isinstance(out, tuple | list):
        return type(out)(_outputs(o, change) for o in out)
    return change(out) if isinstance(out, torch.Tensor) else out


@contextlib.contextmanager
def _patched(name, replacement):
    original = getattr(torch, name)
    setattr(torch, name, replacement(original))
    try:
        yield
    finally:
        setattr(torch, name, original)


def _while(function, name, replacement):
    def answer(*args):
        with _patched(name, replacement):
            return function(*args)
    return answer


def _solution(solved, notebook, name):
    return solved(notebook)[name]


@pytest.mark.parametrize("notebook,name,check", CASES, ids=IDS)
def test_a_shapes_three_or_more_and_one_the_notebook_does_not_use(notebook, name, check, solved):
    calls = _recorded(check, _solution(solved, notebook, name))
    shapes = {_signature(args) for args in calls}
    assert len(shapes) >= 3, f"check_{name} lacks (a): it tries only {len(shapes)} shapes"
    assert any(not RUBRIC[name].notebook_shape(args) for args in calls), \
        f"check_{name} lacks (a): every call has the notebook's shape"


@pytest.mark.parametrize("notebook,name,check", CASES, ids=IDS)
def test_c_the_notebooks_own_scale_and_dtype(notebook, name, check, solved):
    calls = _recorded(check, _solution(solved, notebook, name))
    assert any(RUBRIC[name].notebook_scale(args) for args in calls), \
        f"check_{name} lacks (c): no call at the notebook's size, dtype and extremes"


def _where(item):
    """The CASES to which an item of the rubric applies, with their ids."""
    chosen = [(case, i) for case, i in zip(CASES, IDS, strict=True) if item(RUBRIC[case[1]])]
    return {"argvalues": [c for c, _ in chosen], "ids": [i for _, i in chosen]}


@pytest.mark.parametrize("notebook,name,check", **_where(lambda r: r.cuts))
def test_b_a_right_value_without_its_gradient_is_refused(notebook, name, check, solved):
    solution = _solution(solved, notebook, name)
    detached = lambda *args: _outputs(solution(*args), torch.Tensor.detach)
    no_grad = lambda *args: torch.no_grad()(solution)(*args)
    for what, answer in [("the result detached", detached), ("under torch.no_grad()", no_grad),
                         *[(f"{part} cut off", lambda *a, cut=cut: solution(*cut(list(a))))
                           for part, cut in RUBRIC[name].cuts]]:
        message = _rejected(check, answer)
        assert "gradient" in message, f"check_{name} lacks (b) for {what}:\n{message}"


def _reseeded(function):
    def answer(*args):
        torch.manual_seed(0)  # every call the same draws
        return function(*args)
    return answer


def _truncated(original):  # noise clamped to +-3 sigma (and +-2.5: a rescaled uniform is worse)
    return lambda *a, **k: original(*a, **k).clamp(-3, 3)


def _shared(original):  # one draw per example, the same for all its elements
    def draw(x, **k):
        return original(x[(slice(None),) + (slice(0, 1),) * (x.dim() - 1)], **k).expand_as(x)
    return draw


@pytest.mark.parametrize("notebook,name,check", **_where(lambda r: r.noise))
def test_d_randomness_fresh_independent_and_full_tailed(notebook, name, check, solved):
    solution, noise = _solution(solved, notebook, name), RUBRIC[name].noise
    answers = {"reseeded at every call": (_reseeded(solution), "two calls returned the same")}
    if noise == "randn_like":
        answers |= {"noise truncated to +-3 sigma": (_while(solution, noise, _truncated), "tails"),
                    "one draw per example": (_while(solution, noise, _shared), "same draws")}
    for what, (answer, words) in answers.items():
        message = _rejected(check, answer)
        assert words in message or what == "one draw per example" and "correlated" in message, \
            f"check_{name} lacks (d) for {what}:\n{message}"


def _int32(original):
    return lambda *a, **k: original(*a, **k).int()


FORMATS = {  # mistake -> (a function that makes it in an answer, words its message must have)
    "half": [(lambda f: lambda *a: _outputs(f(*a), torch.Tensor.half), "torch.float16"),
             (lambda f: lambda *a: _outputs(f(*a), torch.Tensor.bfloat16), "torch.bfloat16")],
    "binary": [(lambda f: lambda *a: _outputs(f(*a), lambda m: 2 * m), "other than 0 and 1"),
               (lambda f: lambda *a: _outputs(f(*a), lambda m: m - 0.5), "other than 0 and 1")],
    "int": [(lambda f: lambda *a: float(f(*a)), "a float")],
    "index": [(lambda f: _while(f, "randint", _int32), "torch.int32; expected torch.int64")],
}


@pytest.mark.parametrize("notebook,name,check", CASES, ids=IDS)
def test_e_exact_formats_named_in_the_message(notebook, name, check, solved):
    solution = _solution(solved, notebook, name)
    for kind in RUBRIC[name].formats:
        for mistake, words in FORMATS[kind]:
            message = _rejected(check, mistake(solution))
            assert words in message, f"check_{name} lacks (e) for {kind}:\n{message}"


@pytest.mark.parametrize("notebook,name,check", CASES, ids=IDS)
def test_an_answer_that_calls_the_checks_own_code_is_told_to_write_its_own(notebook, name, check,
                                                                           solved):
    solution = _solution(solved, notebook, name)

    def answer(*args):
        checks.messages.shape_advice((1,), (2,))
        return solution(*args)
    message = _rejected(check, answer)
    assert "calls the check's own code (messages.shape_advice)" in message
