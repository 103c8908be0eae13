"""JupyterLab as `make lab` starts it, and as the browser test (tests/test_lab_ui.py) starts it."""

import sys
from pathlib import Path

c = get_config()  # noqa: F821 - provided by Jupyter when it loads this file

# Open on the student copies. LabApp's setting, not the server's: JupyterLab's own default URL
# would override ServerApp.default_url.
c.LabApp.default_url = "/lab/tree/student"


ROOT = str(Path(__file__).resolve().parent)  # the repository


def _save_as_committed(model, path, **kwargs):
    """The reference notebooks (notebooks/) are saved as git holds them, without outputs or run
    metadata (tools.student.strip_node): running one never changes a tracked file. tools/ is not
    installed with the course package: it is imported from the repository this file lies in."""
    if model.get("type") == "notebook" and path.replace("\\", "/").startswith("notebooks/"):
        import nbformat

        if ROOT not in sys.path:
            sys.path.insert(0, ROOT)
        from tools.student import strip_node

        model["content"] = strip_node(nbformat.from_dict(model["content"]))


c.FileContentsManager.pre_save_hook = _save_as_committed
