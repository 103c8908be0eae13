"""Where the course keeps its files: in the clone it runs from, or, for the course installed as a
package (Colab, Kaggle, a hub) or a clone that cannot be written (a class's shared read-only
folder), in the user's own ~/dgm-course. Settings: DGM_DATA (the data folder)."""

import os
from pathlib import Path

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
    """$DGM_DATA, else the clone's data/ (read-only or not), else <home()>/data."""
    root = from_repo(os.environ.get("DGM_DATA") or (REPO / "data" if CHECKOUT else "data"))
    if root.exists() and not root.is_dir():
        raise ConfigError(f"DGM_DATA={os.environ.get('DGM_DATA')!r} is a file, not a folder: set "
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
