"""What every exercise check shares: one way of calling the student's function, validating and
comparing what it returns, and saying what is wrong in at most five lines, with no traceback.

Every check follows the rubric of CONTRIBUTING ("Exercise checks"): (a) values on three or more
shapes, one the notebook does not use; (b) gradients against the reference's, for what feeds
training; (c) the notebook's own scale, extremes and dtype; (d) for what is random, fresh draws
with the right distribution, tails and independence; (e) exact formats. The tools for each are
here: `call`, `tensor`, `compare`, `gradients`, `fresh`, `standard_normal` and `guard`.
"""

import contextlib
import inspect
import traceback
from typing import NoReturn

import torch

from ..stub import STUB
from . import timelimit, watch
from .messages import ADVICE, NO_GRAD, UNSTABLE, shape_advice
from .rubric import Rubric

__all__ = ["UNSTABLE", "Exercise", "ExerciseError", "ok"]

_HALF = (torch.float16, torch.bfloat16)


class ExerciseError(AssertionError):
    """The answer to an exercise is not right yet. The message says which exercise, what is wrong
    (expected / got) and a hint, in at most five lines; IPython shows it without a traceback."""

    def __init__(self, exercise: str, problem: str, details=(), hint: str | None = None):
        lines = [f"✗ {exercise}: {problem}", *(f"  {d}" for d in details)]
        if hint:
            lines.append(f"  hint: {hint}")
        super().__init__("\n".join(lines))

    def _render_traceback_(self) -> list[str]:  # IPython prints these lines instead of a traceback
        first, *rest = str(self).splitlines()
        return [f"\x1b[31m{first}\x1b[0m", *rest]


def ok(message: str) -> None:
    print(f"✓ {message}")


def _show(values) -> str:
    flat = torch.as_tensor(values).detach().cpu().double().flatten()
    shown = ", ".join(f"{float(v):.5g}" for v in flat[:6])
    return f"[{shown}{', ...' if len(flat) > 6 else ''}]"


def _matches(got: torch.Tensor, want, atol: float, rtol: float) -> bool:
    got, want = (torch.as_tensor(v).detach().cpu().double() for v in (got, want))
    return got.shape == want.shape and torch.allclose(got, want, atol=atol, rtol=rtol,
                                                      equal_nan=True)


class Exercise(Rubric):
    """The check of one exercise: `call` runs the student's function, `tensor` validates what it
    returned, `compare` compares it with the reference; each failure raises an ExerciseError
    that names the exercise and carries `hint` unless a more specific one applies (`errors`:
    (exception type, words in its message, what it means in this exercise), before the advice
    that messages.ADVICE gives for any exercise)."""

    def __init__(self, function, name: str, hint: str, errors=()):
        self.function, self.name, self.hint = function, name, hint
        self.errors = list(errors)  # (exception type, words in its message, what it means here)
        if not callable(function):
            self.fail(f"expected the function {name} itself, got a {type(function).__name__}",
                      hint=f"pass the function without calling it: check_...({name})")

    def fail(self, problem: str, *details: str, hint: str | None = None) -> NoReturn:
        raise ExerciseError(self.name, problem, details, self.hint if hint is None else hint)

    def call(self, *args):
        """The student's function on `args`, which it must not change: an exception inside it
        becomes a short message naming their failing line, the stub says it is not written yet,
        and a call into the checks' own code (their reference answers) is refused."""
        before = [(i, a.detach().clone()) for i, a in enumerate(args)
                  if isinstance(a, torch.Tensor)]
        borrowed: list[str] = []
        try:
            with timelimit.limit(), watch.references(args, borrowed):
                out = self.function(*args)
        except timelimit.TooSlow:
            self.fail(f"your function did not return within {timelimit.SECONDS:g} s on the check's "
                      "small inputs", hint="look for a loop that never ends (a `while` whose "
                      "condition never changes) or one over far more items than it needs")
        except ExerciseError:
            raise
        except NotImplementedError as err:
            if str(err) == STUB:  # the line that `make student` puts in place of the solution
                self.fail("not written yet: replace the `raise NotImplementedError(...)` line "
                          "with your code")
            self._crashed(err)
        except Exception as err:
            self._crashed(err)
        if borrowed:
            self.fail(f"your function calls the check's own code ({borrowed[0]}): the check "
                      "compares your answer with it, so it can prove nothing",
                      hint="write the computation yourself, with torch and the formula above")
        for i, old in before:
            if args[i].shape != old.shape or not torch.equal(args[i].detach(), old):
                self.fail(f"your function changed its input `{self._parameter(i)}` in place",
                          hint="compute a new tensor (x = x + y, not x += y or x.add_(y)): the "
                               "caller still needs the original")
        return out

    def _parameter(self, i: int) -> str:
        try:
            return list(inspect.signature(self.function).parameters)[i]
        except (TypeError, ValueError, IndexError):
            return f"number {i + 1}"

    def _crashed(self, err: Exception) -> NoReturn:
        message = (str(err).strip().splitlines() or [""])[0].split("  (Could this")[0]
        message = message if len(message) <= 150 else message[:147] + "..."
        mine = [f for f in traceback.extract_tb(err.__traceback__)
                if watch.written_by_student(f.filename)]
        where = [f"your line {mine[-1].lineno} (in {mine[-1].name}): {mine[-1].line.strip()}"
                 ] if mine and mine[-1].line else []
        advice = next((text for kind, words, text in [*self.errors, *ADVICE]
                       if isinstance(err, kind) and words in str(err)), None)
        self.fail(f"your code raised {type(err).__name__}: {message}", *where, hint=advice)

    def parts(self, value, names: tuple[str, ...]) -> tuple:
        """Validate that the student returned a tuple (names[0], names[1], ...)."""
        expected = f"a tuple ({', '.join(names)})"
        if value is None:
            self.fail(f"the result is None, expected {expected}: did you forget `return`?", hint="")
        if not isinstance(value, tuple | list) or len(value) != len(names):
            kind = (f"a {type(value).__name__} of {len(value)} values"
                    if isinstance(value, tuple | list) else f"a {type(value).__name__}")
            self.fail(f"the result is {kind}; expected {expected}", hint="")
        return tuple(value)

    def tensor(self, value, shape: tuple | None = None, what: str = "the result",
               floating: bool = True, like=(), finite_hint: str | None = None,
               known=(), integer: bool = False, binary: bool = False,
               grad: bool = False) -> torch.Tensor:
        """Validate one returned tensor: its type, device and dtype (those of the input tensors
        `like`; never half precision unless they are), `shape`, and (floating) no NaN or inf;
        `integer`: int64 exactly; `binary`: every value 0 or 1; `grad`: it takes gradients.
        Returns it detached, on the CPU and in float64 when floating (MPS has no float64: the
        checks compare on the CPU).
        `known`: (value, hint) pairs of known mistakes, recognised even with NaN or inf."""
        if value is None:
            self.fail(f"{what} is None: did you forget `return`?", hint="")
        if isinstance(value, tuple | list):
            self.fail(f"{what} is a {type(value).__name__} of {len(value)} values; expected one "
                      "tensor", hint="")
        if isinstance(value, int | float):
            self.fail(f"{what} is a Python {type(value).__name__} ({value!r}); expected a tensor",
                      hint="keep the computation in torch: no .item(), float() or math.*")
        if not isinstance(value, torch.Tensor):
            self.fail(f"{what} is a {type(value).__name__}; expected a torch.Tensor", hint="")
        if grad and not value.requires_grad:
            self.fail(f"no gradient reaches the inputs through {what}", hint=NO_GRAD)
        inputs = [t for t in like if isinstance(t, torch.Tensor)]
        if inputs and value.device != inputs[0].device:
            self.fail(f"{what} is on the device {value.device}, its inputs on {inputs[0].device}",
                      hint="make new tensors on the inputs' device: device=x.device, or "
                           "torch.zeros_like(x) / torch.randn_like(x)")
        if floating and not value.is_floating_point():
            self.fail(f"{what} has dtype {value.dtype}; expected floating point",
                      hint="an integer division (//) or a missing .float()?")
        real = {t.dtype for t in inputs if t.is_floating_point()}
        if value.dtype in _HALF and value.dtype not in real:
            self.fail(f"{what} has dtype {value.dtype}, half precision: about 3 significant "
                      "digits", hint=f"no .half() / .bfloat16() or autocast in the exercise: "
                      f"compute in {real.pop() if len(real) == 1 else 'float32'}")
        if integer and value.dtype != torch.long:
            self.fail(f"{what} has dtype {value.dtype}; expected torch.int64 (torch.long)",
                      hint="integer indices and counts are int64: torch.randint and "
                           "torch.bincount give it; no .int() or dtype=torch.int32")
        if floating and len(real) == 1 and value.dtype not in real:
            self.fail(f"{what} has dtype {value.dtype}, its inputs {real.pop()}",
                      hint="make new tensors with the inputs' dtype: dtype=x.dtype, or "
                           "torch.zeros_like(x): mixing precisions loses digits")
        if shape is not None and tuple(value.shape) != tuple(shape):
            self.fail(f"{what} has shape {tuple(value.shape)}; expected {tuple(shape)}",
                      hint=shape_advice(tuple(value.shape), tuple(shape)) or None)
        got = value.detach().cpu()
        if binary and not ((got == 0) | (got == 1)).all():
            self.fail(f"{what} has values other than 0 and 1", f"got: {_show(got.unique())}",
                      hint="a mask or a sample is exactly 0 or 1: a comparison (>=, >) turned "
                           "into numbers with .float(), or torch.bernoulli")
        if not floating:
            return got
        got = got.double()
        if not torch.isfinite(got).all():
            for variant, variant_hint in known:
                if _matches(got, variant, 1e-5, 1e-4):
                    self.fail(f"{what} matches a common mistake", f"got: {_show(got)}",
                              hint=variant_hint)
            bad = ~torch.isfinite(got)
            where = tuple(int(i) for i in bad.nonzero()[0])
            self.fail(f"{what} has {int(bad.sum())} NaN or infinite value(s), the first at index "
                      f"{where}", f"got: {_show(got)}", hint=finite_hint or (
                          "look for log(0), 0 * log(0), 0/0 or exp() of a large number: "
                          "compute in log space with the stable torch functions"))
        return got

    def compare(self, got: torch.Tensor, want, what: str | None = None, hint: str | None = None,
                known=(), atol: float = 1e-5, rtol: float = 1e-4) -> None:
        """Fail unless `got` is close to `want`; a match with one of the `known` (value, hint)
        mistakes gets that mistake's hint."""
        got, want = (torch.as_tensor(v).detach().cpu().double() for v in (got, want))
        if _matches(got, want, atol, rtol):
            return
        what = what or "the result"
        for variant, variant_hint in known:
            if _matches(got, variant, atol, rtol):
                self.fail(f"{what} is not right yet: it matches a common mistake",
                          f"expected: {_show(want)}", f"got:      {_show(got)}", hint=variant_hint)
        diff = float((got - want).abs().max()) if got.shape == want.shape else float("nan")
        self.fail(f"{what} is not right yet (max difference {diff:.3g})",
                  f"expected: {_show(want)}", f"got:      {_show(got)}", hint=hint)


    def guard(self, what: str):
        """Turn any error of the check's own computation on the student's result (`what`: say,
        "differentiating your loss") into the plain message."""
        return _Guard(self, what)


class _Guard(contextlib.AbstractContextManager):
    def __init__(self, ex: Exercise, what: str):
        self.ex, self.what = ex, what

    def __exit__(self, kind, err, tb):
        if err is None or isinstance(err, ExerciseError) or not isinstance(err, Exception):
            return False
        message = (str(err).strip().splitlines() or [""])[0][:120]
        hint = next((text for k, words, text in ADVICE
                     if isinstance(err, k) and words in str(err)), None)
        self.ex.fail(f"{self.what} failed: {type(err).__name__}: {message}", hint=hint)


