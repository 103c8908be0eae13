"""Everything a training run depends on, as a fingerprint for the checkpoint cache.

Starting from the training function and the model, it follows every function and class defined
in the notebook (the training function's module) that their code names, closes over or is built
from: the loss, the training step, the student's exercise answers, the model's class. On the way
it notes every value they use: numbers and strings (learning rate, batch size, steps, T), the
settings of optimizers and schedulers, and for each tensor (the training data, embeddings made by
another model) its shape, dtype and a summary of its values. A change in any of them (not in
comments or spacing) changes the fingerprint, so the model trains again: nothing is listed by
hand, so nothing can be forgotten.
"""

import ast
import hashlib
import inspect
import textwrap
import types

import torch


def _source(obj) -> str:
    """The code of a function or class, independent of comments and layout where it parses."""
    try:
        text = textwrap.dedent(inspect.getsource(obj))
    except (OSError, TypeError):  # no source (e.g. typed into a console): its compiled code
        code = getattr(obj, "__code__", None)
        return repr((code.co_code, code.co_consts, code.co_names)) if code else obj.__qualname__
    try:
        return ast.dump(ast.parse(text))
    except SyntaxError:  # a lambda cut out of a longer statement
        return " ".join(text.split())


def _names(code: types.CodeType) -> set[str]:
    """The global names that a code object and the functions nested in it use."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names(const)
    return names


def _reached(obj) -> list[tuple[str, object]]:
    """(name, value) of what a function refers to: its globals, closure variables, defaults and,
    for a nested function, the function it is defined in; for a class, its methods."""
    if inspect.isclass(obj):
        return [(k, v) for k, v in vars(obj).items() if inspect.isfunction(v)]
    code = obj.__code__
    found = [(n, obj.__globals__[n]) for n in _names(code) if n in obj.__globals__]
    found += [(n, cell.cell_contents) for n, cell in zip(code.co_freevars, obj.__closure__ or (),
                                                          strict=True) if _filled(cell)]
    if "<locals>" in obj.__qualname__:  # a nested function: the one it is defined in, whose
        outer = obj.__qualname__.split(".")[0]  # values (ema_decay, lr) it may have been built with
        found += [(outer, obj.__globals__[outer])] if outer in obj.__globals__ else []
    defaults = obj.__defaults__ or ()
    params = code.co_varnames[:code.co_argcount][::-1][:len(defaults)][::-1]  # the last ones
    return found + [(f"{obj.__qualname__}({p}=)", v) for p, v in zip(params, defaults,
                                                                      strict=True)]


def _filled(cell) -> bool:
    try:
        return cell.cell_contents is not cell  # always true, once the variable is assigned
    except ValueError:  # a closure variable not assigned yet
        return False


PLAIN = (int, float, complex, str, bool, type(None))


def _plain(value) -> bool:
    """A number, a string, or a tuple of them. Not a list: a list a cell appends to would give
    another key each time the cell runs."""
    return isinstance(value, PLAIN) or isinstance(value, tuple) and len(value) <= 64 \
        and all(_plain(v) for v in value)


def _summary(t: torch.Tensor) -> str:
    """Shape, dtype and what up to 100,000 evenly spaced values hold: integers and booleans (orders,
    masks, labels) exactly; floats by their mean, spread and an order-weighted mean at 4 digits,
    which another subset of the data, another order or embeddings from another model change, and
    rounding noise of the device does not."""
    flat = t.detach().flatten()
    sample = flat[::max(1, flat.numel() // 100_000)].cpu()
    if not sample.is_floating_point():
        values = hashlib.sha1(sample.numpy().tobytes()).hexdigest()[:12]
    elif sample.numel() > 1:
        sample = sample.double()  # on the CPU: MPS has no float64
        ramp = torch.linspace(-1, 1, len(sample), dtype=sample.dtype)
        values = f"{sample.mean():.4g} {sample.std():.4g} {(sample * ramp).mean():.4g}"
    else:
        values = f"{sample.double().sum():.4g}"
    return f"{tuple(t.shape)} {t.dtype} {values}"


def _setting(obj) -> str | None:
    """The settings of an optimizer or a learning-rate scheduler made outside the training function
    (None for anything else)."""
    if isinstance(obj, torch.optim.Optimizer):
        state = obj.defaults
    elif isinstance(obj, torch.optim.lr_scheduler.LRScheduler):
        state = obj.state_dict()
    else:
        return None
    return f"{type(obj).__name__} {sorted((k, v) for k, v in state.items() if _plain(v))}"


def fingerprint(train, model: torch.nn.Module | None = None) -> dict[str, str]:
    """What `train` and `model` depend on, as {kind:name: digest or value}: code:Name for the
    notebook's functions and classes, value:name for numbers, strings, optimizers and schedulers,
    data:name for tensors, weights:name for other models, buffers:model for the model's own
    (MADE's orders and masks)."""
    home = getattr(train, "__module__", None)
    modules = list(model.modules()) if model else []
    trained = {id(m) for m in modules}
    todo = [("train", train), *(("model", type(m)) for m in modules)]
    found: dict[str, str] = {}
    buffers = [b.detach().flatten().cpu().double() for b in (model.buffers() if model else ())]
    if any(b.numel() for b in buffers):
        found["buffers:model"] = _summary(torch.cat(buffers))
    seen: set[int] = set()
    while todo:
        name, obj = todo.pop()
        if isinstance(obj, torch.Tensor):
            found[f"data:{name}"] = _summary(obj)
        elif _plain(obj):
            found[f"value:{name}"] = repr(obj)
        elif (setting := _setting(obj)) is not None:
            found[f"value:{name}"] = setting
        elif isinstance(obj, torch.nn.Module):
            if id(obj) not in trained:  # another model (CLIP for the prior): its weights count
                weights = [p.detach().flatten()[:1000].cpu().double()
                           for p in obj.state_dict().values() if p.is_floating_point()]
                found[f"weights:{name}"] = _summary(torch.cat(weights)) if weights else ""
            todo += [("model", type(m)) for m in obj.modules()]
        else:
            obj = getattr(obj, "__func__", obj)  # a bound method: its function
            if id(obj) in seen or not (inspect.isfunction(obj) or inspect.isclass(obj)) \
                    or obj.__module__ != home:
                continue
            seen.add(id(obj))
            key = obj.__qualname__ if "<lambda>" not in obj.__qualname__ else \
                f"{obj.__qualname__}:{obj.__code__.co_firstlineno}"
            found[f"code:{key}"] = hashlib.sha1(_source(obj).encode()).hexdigest()[:12]
            todo += _reached(obj)
    return dict(sorted(found.items()))


def shown(fingerprint: dict[str, str], kinds=("code", "value", "data", "weights")) -> str:
    """The names a student sees in the notebook, of the given kinds: `Net` for Net.forward,
    `train_dcgan` for the function defined inside it, `lr` for a value; lambdas left out."""
    names = dict.fromkeys(key.split(":", 1)[1].split(".")[0].split("(")[0]
                          for key in fingerprint if key.split(":", 1)[0] in kinds)
    return ", ".join(f"`{n}`" for n in names if not n.startswith("<"))


def show(*functions) -> None:
    """Show the code of helper functions in the notebook that teaches them, as a highlighted
    block: the helper is their only copy, and the notebook still shows what it runs."""
    from IPython.display import Markdown, display

    code = "\n\n".join(textwrap.dedent(inspect.getsource(f)).strip() for f in functions)
    display(Markdown(f"```python\n{code}\n```"))
