"""Where the course keeps its files: in the clone it runs from, or, for the course installed as a
package (Colab, Kaggle, a hub) or a clone that cannot be written (a class's shared read-only
folder), in the user's own ~/dgm-course. The data folder is a setting (helpers.config: DGM_DATA)."""

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

from . import config
from .errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
# A clone of the course (its own environment, an editable install), or the course installed as a
# package on a hosted Jupyter or a hub (Colab, Kaggle; REPO is then site-packages).
CHECKOUT = (REPO / "notebooks").is_dir() and (REPO / "pyproject.toml").is_file()


def home() -> Path:
    """The course's own folder, where trained models, results and student copies go by default:
    the clone, or ~/dgm-course where the course is an installed package (Colab, Kaggle, a class
    hub) or the clone cannot be written (a class's shared read-only course folder)."""
    return REPO if CHECKOUT and os.access(REPO, os.W_OK) else Path.home() / "dgm-course"


def from_repo(path) -> Path:
    """A path from a setting: relative ones count from home(), so that `make` (run in the
    repository) and a notebook's kernel (run in notebooks/) mean the same folder."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else home() / path


def data_root() -> Path:
    """The data setting (DGM_DATA), else the clone's data/ (read-only or not), else
    <home()>/data."""
    setting = config.current().data
    root = from_repo(setting or (REPO / "data" if CHECKOUT else "data"))
    if root.exists() and not root.is_dir():
        raise ConfigError(f"DGM_DATA={setting!r} is a file, not a folder: set "
                          "DGM_DATA to the folder that holds MNIST/ (or unset it).")
    return root


def where() -> str:
    """One line: how the course was found (a clone, or an installed package) and its data folder."""
    if CHECKOUT and home() != REPO:
        return (f"course: the repository at {REPO}, read-only · data in {data_root()} · what the "
                f"notebook writes goes to {home()}")
    if CHECKOUT:
        return f"course: the repository at {REPO} · data in {data_root()}"
    return f"course: the installed package (a hosted Jupyter or a hub) · data in {data_root()}"


def digest(value) -> str:
    """The content hash of the course (hex sha256): of a string's text, or of any other value
    as sorted JSON (values JSON cannot hold by their str)."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """`write(tmp)` to a temporary file beside `path`, then rename it to `path`: a crash or a full
    disk never leaves half a file under the real name. Temporary files of earlier writes whose
    process is gone are removed first; one of a write in progress elsewhere is left alone."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for old in path.parent.glob(f".{path.name}.*.tmp"):
        pid = old.name[len(path.name) + 2:-len(".tmp")]
        if pid.isdigit() and not _running(int(pid)):
            old.unlink(missing_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except OSError:  # it exists but belongs to someone else
        return True
    return True
