"""JupyterLab as `make lab` starts it, and as the browser test (tests/test_lab_ui.py) starts it."""

c = get_config()  # noqa: F821 - provided by Jupyter when it loads this file

# Open on the student copies. LabApp's setting, not the server's: JupyterLab's own default URL
# would override ServerApp.default_url.
c.LabApp.default_url = "/lab/tree/student"


def _save_as_committed(model, path, **kwargs):
    """The reference notebooks (notebooks/) are saved as git holds them, without outputs or run
    metadata (tools.student.strip_node): running one never changes a tracked file."""
    if model.get("type") == "notebook" and path.replace("\\", "/").startswith("notebooks/"):
        import nbformat

        from tools.student import strip_node

        model["content"] = strip_node(nbformat.from_dict(model["content"]))


c.FileContentsManager.pre_save_hook = _save_as_committed
