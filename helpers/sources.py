"""The notebook code that a training run depends on, as a fingerprint for the checkpoint cache.

Starting from the training function and the model, it follows every function and class defined
in the notebook (the training function's module) that their code names, closes over or is built
from: the loss, the training step, the student's exercise answers, the model's class; and it
notes the shape of every tensor they use (the training data). A change in any of them (not in
comments or spacing) changes the fingerprint, so the model trains again.
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
    """(name, value) of what a function refers to: its globals, closure variables and defaults;
    for a class, its methods."""
    if inspect.isclass(obj):
        return [(k, v) for k, v in vars(obj).items() if inspect.isfunction(v)]
    code = obj.__code__
    found = [(n, obj.__globals__[n]) for n in _names(code) if n in obj.__globals__]
    found += [(n, cell.cell_contents) for n, cell in zip(code.co_freevars, obj.__closure__ or (),
                                                          strict=True) if _filled(cell)]
    return found + [("default", v) for v in obj.__defaults__ or ()]


def _filled(cell) -> bool:
    try:
        return cell.cell_contents is not cell  # always true, once the variable is assigned
    except ValueError:  # a closure variable not assigned yet
        return False


def notebook_code(train, model: torch.nn.Module | None = None) -> dict[str, str]:
    """{name: digest} of the notebook's functions and classes that `train` and `model` reach,
    and {name: shape and dtype} of the tensors they use (the data: a subset trains again)."""
    home = getattr(train, "__module__", None)
    todo = [("train", train), *(("model", type(m)) for m in (model.modules() if model else ()))]
    found: dict[str, str] = {}
    seen: set[int] = set()
    while todo:
        name, obj = todo.pop()
        if isinstance(obj, torch.Tensor):
            found[f"{name} (data)"] = f"{tuple(obj.shape)} {obj.dtype}"
            continue
        if isinstance(obj, torch.nn.Module):
            todo += [("model", type(m)) for m in obj.modules()]
            continue
        obj = getattr(obj, "__func__", obj)  # a bound method: its function
        if id(obj) in seen or not (inspect.isfunction(obj) or inspect.isclass(obj)) \
                or obj.__module__ != home:
            continue
        seen.add(id(obj))
        key = obj.__qualname__ if "<lambda>" not in obj.__qualname__ else \
            f"{obj.__qualname__}:{obj.__code__.co_firstlineno}"
        found[key] = hashlib.sha1(_source(obj).encode()).hexdigest()[:12]
        todo += _reached(obj)
    return dict(sorted(found.items()))


def shown(digests: dict[str, str]) -> str:
    """The names a student sees in the notebook: `Net` for Net.forward, `train_dcgan` for the
    function defined inside it; bare lambdas are left out."""
    names = dict.fromkeys(n.split(".")[0] for n in digests
                          if not n.startswith("<") and not n.endswith("(data)"))
    return ", ".join(f"`{n}`" for n in names)
