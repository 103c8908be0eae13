"""What every exercise check shares: validating an answer, comparing it, saying what is wrong."""

import torch


class ExerciseError(AssertionError):
    """The answer to an exercise is not right yet; the message says why."""


def answer(value, name: str, shape: tuple | None = None, floating: bool = True) -> torch.Tensor:
    """Validate an answer: a tensor of the given shape and kind, free of NaN and inf. Returns it
    detached and on the CPU, where the checks compare (in float64, which MPS does not have)."""
    if value is None:
        raise ExerciseError(f"{name} returned None: did you forget `return`?")
    if not isinstance(value, torch.Tensor):
        raise ExerciseError(f"{name} should return a torch.Tensor, got {type(value).__name__}")
    if shape is not None and tuple(value.shape) != tuple(shape):
        raise ExerciseError(f"{name} returned shape {tuple(value.shape)}, expected {tuple(shape)}")
    if floating and not value.is_floating_point():
        raise ExerciseError(f"{name} returned dtype {value.dtype}, expected a floating-point "
                            "tensor (probabilities and log-probabilities are real numbers)")
    if floating and not torch.isfinite(value).all():
        bad = int((~torch.isfinite(value)).sum())
        raise ExerciseError(f"{name} returned {bad} NaN or infinite value(s): {value.flatten()[:6]}"
                            " ... Look for log(0), 0/0 or a division by a zero count.")
    return value.detach().cpu()


def close(got, want, name: str, hint: str, atol: float = 1e-5, rtol: float = 1e-4) -> None:
    got, want = (torch.as_tensor(v).detach().cpu().double() for v in (got, want))
    if not torch.allclose(got, want, atol=atol, rtol=rtol):
        diff = float((got - want).abs().max())
        raise ExerciseError(f"{name} is not right yet.\n  expected: {want.flatten()[:6].tolist()}"
                            f"\n  got:      {got.flatten()[:6].tolist()}\n  max difference "
                            f"{diff:.3g}\n  hint: {hint}")


def ok(message: str) -> None:
    print(f"✓ {message}")


def call(function, name: str, *args):
    """Call the student's function; an error inside it becomes a plain message (a stub's
    NotImplementedError, which carries the hint, goes through unchanged)."""
    try:
        return function(*args)
    except (NotImplementedError, ExerciseError):
        raise
    except Exception as err:
        raise ExerciseError(f"{name} raised {type(err).__name__}: {err}") from None
