"""A time limit on the student's function inside a check: an answer that never returns is stopped
and told so, instead of hanging the notebook."""

import contextlib
import signal
import threading

SECONDS = 60.0  # that one call of the student's function may take inside a check


class TooSlow(BaseException):  # not an Exception: a student's `except Exception` cannot hide it
    pass


@contextlib.contextmanager
def limit():
    """Interrupt the block after SECONDS (SIGALRM, in the kernel's main thread; where there is
    no such signal, as on Windows, the block runs unlimited)."""
    if not hasattr(signal, "setitimer") or threading.current_thread() is not \
            threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise TooSlow

    before = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, SECONDS)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, before)
