"""The checkpoint cache's key, in one sentence: the code of every function and class, of the
notebook or of helpers/, that the training function and the model reach, and every value they
reach.

In detail: starting from the training function and the model's modules, it follows what their
code names as a global, closes over, takes as a default or is defined inside (a nested function:
the function around it), and, for a helpers module named in the code (`train.fit`), the attributes
it uses. Code counts by its syntax tree (comments and spacing do not); values by kind: numbers,
strings, and tuples, lists and dicts of them exactly; tensors by shape, dtype and a summary of
their values; optimizers and schedulers by their settings; other models (CLIP for 07's prior) by
their weights; the model's own buffers (MADE's orders and masks). Not covered: code of other
libraries (torch), files the code reads, and values reached only through an object's attributes
(`self.something` set outside the code).
"""

import ast
import inspect
import textwrap
import types

import torch

from . import places


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


def _ours(obj, home: str) -> bool:
    """A function or class of the notebook (module `home`) or of helpers/: not of a library."""
    return (inspect.isfunction(obj) or inspect.isclass(obj)) and (
        obj.__module__ == home or obj.__module__.startswith("helpers."))


def _reached(obj, home: str) -> list[tuple[str, object]]:
    """(name, value) of what a function refers to: its globals, closure variables, defaults and,
    for a nested function, the function it is defined in; the attributes it uses of a helpers
    module; for a class, its methods."""
    if inspect.isclass(obj):
        return [(k, v) for k, v in vars(obj).items() if inspect.isfunction(v)]
    code = obj.__code__
    names = sorted(_names(code))  # one order in every process (a set's order is not)
    found = [(n, obj.__globals__[n]) for n in names
             if n in obj.__globals__ and not n.startswith("__")]  # not a module's __name__ etc.
    found += [(f"{module.__name__}.{n}", getattr(module, n)) for _, module in list(found)
              if inspect.ismodule(module) and module.__name__.startswith("helpers")
              for n in names if _ours(getattr(module, n, None), home)]
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
    """A number, a string, or a tuple, list or dict of them (nested)."""
    if isinstance(value, (tuple, list)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(_plain(k) and _plain(v) for k, v in value.items())
    return isinstance(value, PLAIN)


def _value(value) -> str:
    """A plain value as the key holds it: its repr, or the digest of a long one."""
    text = repr(value)
    return text if len(text) <= 200 else f"digest {places.digest(text)[:16]}"


def _summary(t: torch.Tensor) -> str:
    """Shape, dtype and what up to 100,000 evenly spaced values hold: integers and booleans (orders,
    masks, labels) exactly; floats by their mean, spread and an order-weighted mean at 4 digits,
    which another subset of the data, another order or embeddings from another model change, and
    rounding noise of the device does not."""
    flat = t.detach().flatten()
    sample = flat[::max(1, flat.numel() // 100_000)].cpu()
    if not sample.is_floating_point():
        values = places.digest(sample.numpy().tobytes().hex())[:12]
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
    return f"{type(obj).__name__} {sorted((k, repr(v)) for k, v in state.items() if _plain(v))}"


def fingerprint(train, model: torch.nn.Module | None = None) -> dict[str, str]:
    """What `train` and `model` depend on, as {kind:name: digest or value}: code:Name for the
    notebook's functions and classes (code:helpers.module.Name for the course's), value:name for
    numbers, strings, their tuples, lists and dicts, optimizers and schedulers,
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
            found[f"value:{name}"] = _value(obj)
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
            if id(obj) in seen or not _ours(obj, home):
                continue
            seen.add(id(obj))
            key = obj.__qualname__ if "<lambda>" not in obj.__qualname__ else \
                f"{obj.__qualname__}:{obj.__code__.co_firstlineno}"
            if obj.__module__.startswith("helpers."):  # the course's own code: named by module
                key = f"{obj.__module__}.{key}"
            found[f"code:{key}"] = places.digest(_source(obj))[:12]
            todo += _reached(obj, home)
    return dict(sorted(found.items()))


def shown(fingerprint: dict[str, str], kinds=("code", "value", "data", "weights"),
          course: bool = True) -> str:
    """The names a student sees in the notebook, of the given kinds: `Net` for Net.forward,
    `train_dcgan` for the function defined inside it, `lr` for a value, `train.fit` for the
    course's own code (left out when not `course`); lambdas left out."""
    names = dict.fromkeys(_shown_name(key.split(":", 1)[1]) for key in fingerprint
                          if key.split(":", 1)[0] in kinds
                          and (course or not key.startswith("code:helpers.")))
    return ", ".join(f"`{n}`" for n in names if not n.startswith("<"))


def _shown_name(name: str) -> str:
    """`train.fit` for helpers.train.fit; `Net` for Net.forward; `lr` for lr(...)."""
    if name.startswith("helpers."):
        return ".".join(name.split(".")[1:3]).split("(")[0]
    return name.split(".")[0].split("(")[0]


def show(*functions) -> None:
    """Show the code of helper functions in the notebook that teaches them, as a highlighted
    block: the helper is their only copy, and the notebook still shows what it runs."""
    from IPython.display import Markdown, display

    code = "\n\n".join(textwrap.dedent(inspect.getsource(f)).strip() for f in functions)
    display(Markdown(f"```python\n{code}\n```"))
