"""IPython start-up file for notebook kernels: with DGM_EMULATE=cuda or mps, the kernel runs on the
emulated device of fake_device.py (the Makefile puts this file into an IPYTHONDIR of its own)."""

import os
import sys

if os.environ.get("DGM_EMULATE"):
    sys.path.insert(0, os.environ["DGM_TESTS"])
    import fake_device

    fake_device.install(os.environ["DGM_EMULATE"])
    fake_device.audit_training_steps()
    fake_device.track_cells(get_ipython())  # noqa: F821 (IPython's start-up namespace)
