"""What the student's function may touch while a check runs it: the code that the check hands
over (a model, an encoder, a callback), but never the checks' own reference answers."""

import contextlib
import sys
import sysconfig
from pathlib import Path

import torch

_CHECKS = Path(__file__).resolve().parent
_NOT_STUDENT = [Path(__file__).resolve().parents[1],  # helpers/: the checks themselves
                *{Path(sysconfig.get_paths()[k]).resolve() for k in ("stdlib", "purelib",
                                                                     "platlib")}]


def written_by_student(filename: str) -> bool:
    path = Path(filename).resolve()
    return not filename.startswith("<frozen") and not any(path.is_relative_to(d)
                                                          for d in _NOT_STUDENT)


def handed_over(args) -> set:
    """The code objects a check hands to the student's function (a model, an encoder, a
    callback): the student may call those, but no other function of the checks."""
    functions = []
    for arg in args:
        functions += [arg, getattr(arg, "__func__", None)]
        if isinstance(arg, torch.nn.Module):
            functions += [f for cls in type(arg).__mro__ for f in vars(cls).values()]
    return {f.__code__ for f in functions if hasattr(f, "__code__")}


@contextlib.contextmanager
def references(args, borrowed: list):
    """Note in `borrowed` every function of helpers/checks that the student's own code calls
    while the block runs, other than those in `args` (a profile hook; skipped under a profiler)."""
    if sys.getprofile() is not None:
        yield
        return
    allowed, ours = handed_over(args), {}

    def watch(frame, event, arg):
        code = frame.f_code
        if event != "call" or code in allowed:
            return
        if code not in ours:
            path = Path(code.co_filename).resolve()
            ours[code] = path.parent == _CHECKS and path.name != "timelimit.py"
        caller = frame.f_back
        if ours[code] and caller is not None and written_by_student(caller.f_code.co_filename):
            borrowed.append(f"{Path(code.co_filename).stem}.{code.co_name}")

    sys.setprofile(watch)
    try:
        yield
    finally:
        sys.setprofile(None)
