"""The course's settings: every environment variable it reads, read here and nowhere else, into one
`Config`. `runtime.setup` reads the environment once (the notebook's first cell), keeps the result
as the current configuration, returns it as `rt.settings` and prints the settings that differ from
the defaults. Helpers that need a setting and have no `rt` (the data folder of `data.load`) ask
`current()`, which is that same object.

| variable | field | default |
|---|---|---|
| DGM_MODE | mode: quick, cpu or gpu | gpu on a CUDA GPU with native bf16, else cpu |
| DGM_QUICK | mode quick (1/0): the test suite's smoke sizes; wins over DGM_MODE | off |
| DGM_DEVICE | device: cpu, cuda, mps, ... | CUDA, then Apple MPS, then the CPU |
| DGM_DATA | data: the data folder | the clone's data/, else ~/dgm-course/data |
| DGM_CHECKPOINTS | checkpoints: model folders (os.pathsep between) | <data>/checkpoints |
| DGM_RETRAIN | retrain (1/0): train again instead of loading a saved model | off |
| DGM_CIFAR10 | cifar10 (1/0): the notebooks' optional CIFAR-10 parts | off |
| DGM_MIRROR | mirror: a local folder to copy datasets from (an offline hub) | none |
| DGM_CHECKSUMS | checksums: a JSON file {file: md5} for a course's own data | published md5s |
"""

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields

from .errors import ConfigError

MODES = ("quick", "cpu", "gpu")
_ON, _OFF = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")
_VARIABLES = {"mode": "DGM_MODE", "device": "DGM_DEVICE", "data": "DGM_DATA",
              "checkpoints": "DGM_CHECKPOINTS", "retrain": "DGM_RETRAIN", "cifar10": "DGM_CIFAR10",
              "mirror": "DGM_MIRROR", "checksums": "DGM_CHECKSUMS"}


@dataclass(frozen=True)
class Config:
    mode: str = ""  # '' : chosen by the device
    device: str = ""  # '' : the best one present
    data: str = ""  # '' : the default data folder (helpers.places)
    checkpoints: tuple[str, ...] = ()  # () : <data>/checkpoints
    retrain: bool = False
    cifar10: bool = False
    mirror: str = ""
    checksums: str = ""

    def changed(self) -> str:
        """The settings that differ from the defaults, as `VARIABLE=value` ('' when none)."""
        default = Config()
        shown = []
        for f in fields(self):
            value = getattr(self, f.name)
            if value != getattr(default, f.name):
                text = os.pathsep.join(value) if isinstance(value, tuple) else \
                    str(int(value)) if isinstance(value, bool) else value
                shown.append(f"{_VARIABLES[f.name]}={text}")
        return " · ".join(shown)


def _switch(environ: Mapping[str, str], name: str) -> bool:
    value = environ.get(name, "").strip().lower()
    if value in _ON:
        return True
    if value in _OFF:
        return False
    raise ConfigError(f"{name}={environ[name]!r} is neither on (1, true, yes, on) nor off "
                      f"(0, false, no, off, or unset). Set it to 1 or 0.")


def read(environ: Mapping[str, str] | None = None) -> Config:
    """The settings in `environ` (default: this process's environment), checked: a value that
    cannot be used stops here with a message that names the variable."""
    env = os.environ if environ is None else environ
    text = lambda name: env.get(name, "").strip()
    mode = "quick" if _switch(env, "DGM_QUICK") else text("DGM_MODE").lower()
    if mode and mode not in MODES:
        raise ConfigError(f"DGM_MODE={mode!r} is not a mode: choose quick, cpu or gpu.")
    return Config(mode=mode, device=text("DGM_DEVICE"), data=text("DGM_DATA"),
                  checkpoints=tuple(p for p in text("DGM_CHECKPOINTS").split(os.pathsep)
                                    if p.strip()),
                  retrain=_switch(env, "DGM_RETRAIN"), cifar10=_switch(env, "DGM_CIFAR10"),
                  mirror=text("DGM_MIRROR"), checksums=text("DGM_CHECKSUMS"))


_current: list[Config] = []  # the configuration of this kernel: set by `use`, else read once


def use(config: Config) -> Config:
    """Make `config` the current configuration (runtime.setup does, with what it read)."""
    _current[:] = [config]
    return config


def current() -> Config:
    """The current configuration: the one `runtime.setup` read, else the environment's, read
    now and kept."""
    return _current[0] if _current else use(read())
