"""Exercise checks: each calls the student's function on test cases and compares the answer with an
independent reference (torch.distributions, brute-force enumeration, a closed form or numerical
integration). A check prints one success line, or raises ExerciseError saying what was expected,
what came back and a hint; wrong types, shapes, dtypes and NaNs get a plain message.

Every `check_<name>` of every module in this package is exported here, so a new notebook's checks
need only their own module (helpers/checks/<topic>.py).
"""

import importlib
import pkgutil

from .core import ExerciseError

__all__ = ["ExerciseError"]
for _module in pkgutil.iter_modules(__path__):
    _found = importlib.import_module(f"{__name__}.{_module.name}")
    for _name in sorted(vars(_found)):
        if _name.startswith("check_") and callable(getattr(_found, _name)):
            globals()[_name] = getattr(_found, _name)
            __all__.append(_name)
