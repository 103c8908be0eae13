"""JupyterLab as `make lab` starts it, and as the browser test (tests/test_lab_ui.py) starts it."""

c = get_config()  # noqa: F821 - provided by Jupyter when it loads this file

# Open on the student copies. LabApp's setting, not the server's: JupyterLab's own default URL
# would override ServerApp.default_url.
c.LabApp.default_url = "/lab/tree/student"
