"""What every exercise check shares: one way of calling the student's function, validating and
comparing what it returns, and saying what is wrong in at most five lines, with no traceback."""

import inspect
import sysconfig
import traceback
from pathlib import Path
from typing import NoReturn

import torch

from ..stub import STUB
from . import timelimit

# What a loss computed as log(sigmoid(l)) gets wrong, said by every check of a loss on logits.
UNSTABLE = ("log(sigmoid(l)) is log(0) = -inf once sigmoid rounds to 0 or 1 (a confident logit, "
            "|l| > 17 in float32): compute the log-probabilities from the logits themselves "
            "(F.logsigmoid, or the _with_logits loss)")
_NOT_STUDENT = [Path(__file__).resolve().parents[1],  # helpers/: the checks themselves
                *{Path(sysconfig.get_paths()[k]).resolve() for k in ("stdlib", "purelib",
                                                                     "platlib")}]
_ADVICE = [  # (exception type, words in its message, what that mistake usually is)
    (TypeError, "must be real number, not Tensor",
     "math.log, math.exp, math.sqrt take single numbers: use torch.log, torch.exp, torch.sqrt"),
    (ValueError, "only one element tensors can be converted", "a tensor of several values was "
     "used as one number: math.log / math.exp, float() and `if` take single numbers; on tensors "
     "use torch.log, torch.exp, torch.where"),
    (RuntimeError, "p_in >= 0 && p_in <= 1", "torch.bernoulli takes probabilities in [0, 1]: "
     "turn logits into probabilities with torch.sigmoid first"),
    (RuntimeError, "all elements of input should be between 0 and 1",
     "F.binary_cross_entropy takes probabilities; logits need the _with_logits version"),
    (RuntimeError, "same device", "make every new tensor on the inputs' device: "
     "device=x.device, or torch.zeros_like / torch.randn_like"),
    (RuntimeError, "must match the size of tensor", "the shapes do not broadcast: reshape one "
     "operand, e.g. .view(-1, 1) gives a (B,) tensor the shape (B, 1)"),
    (IndexError, "out of bounds", "an index runs past the end: mind the lengths (n - 1 "
     "transitions for n variables) and that Python counts from 0"),
    (RuntimeError, "does not require grad", "the result lost its gradient: no .item(), "
     ".detach(), .numpy() or torch.no_grad() inside the exercise"),
]


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


def _written_by_student(filename: str) -> bool:
    path = Path(filename).resolve()
    return not filename.startswith("<frozen") and not any(path.is_relative_to(d)
                                                          for d in _NOT_STUDENT)


class Exercise:
    """The check of one exercise: `call` runs the student's function, `tensor` validates what it
    returned, `compare` compares it with the reference; each failure raises an ExerciseError
    that names the exercise and carries `hint` unless a more specific one applies (`errors`:
    what an exception of a given type means in this exercise)."""

    def __init__(self, function, name: str, hint: str, errors: dict | None = None):
        self.function, self.name, self.hint = function, name, hint
        self.errors = errors or {}  # exception type -> what it means in this exercise
        if not callable(function):
            self.fail(f"expected the function {name} itself, got a {type(function).__name__}",
                      hint=f"pass the function without calling it: check_...({name})")

    def fail(self, problem: str, *details: str, hint: str | None = None) -> NoReturn:
        raise ExerciseError(self.name, problem, details, self.hint if hint is None else hint)

    def call(self, *args):
        """The student's function on `args`, which it must not change: an exception inside it
        becomes a short message naming their failing line, the stub says it is not written yet."""
        before = [(i, a.detach().clone()) for i, a in enumerate(args)
                  if isinstance(a, torch.Tensor)]
        try:
            with timelimit.limit():
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
                if _written_by_student(f.filename)]
        where = [f"your line {mine[-1].lineno} (in {mine[-1].name}): {mine[-1].line.strip()}"
                 ] if mine and mine[-1].line else []
        advice = next((text for kind, text in self.errors.items() if isinstance(err, kind)),
                      None) or next((text for kind, words, text in _ADVICE
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
               known=()) -> torch.Tensor:
        """Validate one returned tensor: its type, device and dtype (those of the input tensors
        `like`), `shape`, and (floating) no NaN or inf. Returns it detached, on the CPU and in
        float64 when floating (MPS has no float64: the checks compare on the CPU). `known`:
        (value, hint) pairs of known mistakes, recognised even when they contain NaN or inf."""
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
        inputs = [t for t in like if isinstance(t, torch.Tensor)]
        if inputs and value.device != inputs[0].device:
            self.fail(f"{what} is on the device {value.device}, its inputs on {inputs[0].device}",
                      hint="make new tensors on the inputs' device: device=x.device, or "
                           "torch.zeros_like(x) / torch.randn_like(x)")
        if floating and not value.is_floating_point():
            self.fail(f"{what} has dtype {value.dtype}; expected floating point",
                      hint="an integer division (//) or a missing .float()?")
        real = {t.dtype for t in inputs if t.is_floating_point()}
        if floating and len(real) == 1 and value.dtype not in real:
            self.fail(f"{what} has dtype {value.dtype}, its inputs {real.pop()}",
                      hint="make new tensors with the inputs' dtype: dtype=x.dtype, or "
                           "torch.zeros_like(x): mixing precisions loses digits")
        if shape is not None and tuple(value.shape) != tuple(shape):
            self.fail(f"{what} has shape {tuple(value.shape)}; expected {tuple(shape)}",
                      hint=_shape_advice(tuple(value.shape), tuple(shape)) or None)
        got = value.detach().cpu()
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


def _shape_advice(got: tuple, want: tuple) -> str:
    if got[: len(want)] == want and len(got) > len(want):
        return "reduce over the extra trailing dimension(s): one value per example"
    if not got and want:
        return "one value per example: reduce over every dimension but the batch dimension"
    if not want:
        return "a single number for the batch: average over the batch with .mean()"
    if torch.Size(got).numel() == torch.Size(want).numel():
        return "the right number of values in another layout: mind the order of the dimensions"
    return ""
