"""The course's own errors: a missing dataset, a damaged instrument, a setting that cannot be used.
Each says what is wrong, which file or variable, and what to do; IPython shows it in a few lines,
as the exercise checks do, without a traceback."""


class CourseError(RuntimeError):
    """An error of the course's set-up (not of the student's code): shown without a traceback."""

    def _render_traceback_(self) -> list[str]:  # IPython prints these lines instead
        return [f"\x1b[31m{type(self).__name__}\x1b[0m: {self}"]


class ConfigError(CourseError, ValueError):
    """An environment variable (DGM_*) that cannot be used; the message names it."""
