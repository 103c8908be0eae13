"""The reference MNIST classifier: the measuring instrument of FID and the inception score.

It is shipped with the course (reference_classifier.pt beside this file, under 1 MB, with its
weights hash and test accuracy in reference_classifier.json), so that every machine measures with
the same one: training it again on another CPU, thread count or torch gives other weights. It is
loaded weights-only and verified by its hash; a missing or damaged file stops with one message
(it is never trained inside a metric). `python -m tools.instrument` checks it, and `--retrain`
(for a maintainer who changes it) trains it on the CPU and writes both files. Every metric runs it
on the CPU, whatever device the samples come from; helpers.evaluate stores its hash with every
result.
"""

import copy
import hashlib
import json
from functools import lru_cache
from pathlib import Path

import torch
from torch import nn

from .errors import CourseError

CPU = torch.device("cpu")
WEIGHTS = Path(__file__).with_name("reference_classifier.pt")
IDENTITY = WEIGHTS.with_suffix(".json")  # {"classifier": weights hash, "classifier_test_accuracy"}


class ClassifierError(CourseError):
    """The shipped reference classifier is missing or damaged; the message says how to restore
    it."""


class Classifier(nn.Module):
    """A small LeNet-style CNN; `features` is its 128-d penultimate layer, used by FID."""

    def __init__(self, channels=(16, 32), hidden=128):
        super().__init__()
        c1, c2 = channels
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),   # (B, c1, 14, 14)
            nn.Conv2d(c1, c2, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),  # (B, c2, 7, 7)
            nn.Flatten(), nn.Linear(c2 * 49, hidden), nn.ReLU(),          # (B, hidden)
        )
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(hidden, 10))

    def forward(self, x):
        return self.head(self.features(x))


def weights_hash(model: nn.Module) -> str:
    """A short hash of the weights: two copies of the instrument are the same iff it matches."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode() + tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:12]


@lru_cache(maxsize=1)
def on_cpu() -> Classifier:
    """The shipped reference classifier on the CPU, verified by its weights hash."""
    model = Classifier()
    try:
        identity = json.loads(IDENTITY.read_text())
        model.load_state_dict(torch.load(WEIGHTS, map_location=CPU, weights_only=True))
        found = weights_hash(model)
    except Exception as err:  # missing, unreadable, not a state dict of this network
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
        if "Weights only load failed" in reason:  # not torch's advice to load it unsafely
            reason = "it is not a plain file of weights"
        raise ClassifierError(_restore(f"could not be loaded ({reason})")) from None
    if found != identity["classifier"]:
        raise ClassifierError(_restore(f"has weights {found}, not the course's "
                                       f"{identity['classifier']}"))
    print(f"reference classifier {found} (test accuracy {identity['classifier_test_accuracy']:.2%}"
          "): the instrument of FID and the inception score")
    return model.eval().requires_grad_(False)


def _restore(problem: str) -> str:
    return (f"The reference classifier {WEIGHTS.name} {problem}. It is part of the course: "
            f"restore it with `git checkout -- helpers/{WEIGHTS.name} helpers/{IDENTITY.name}` in "
            "a clone, or reinstall the course (the notebook's first cell, after "
            "`pip uninstall dgm-course`).")


def reference_classifier(device=None) -> Classifier:
    """The reference classifier, as a copy on `device` for a notebook's own use (e.g. reading
    the digit of samples on the GPU); the metrics below always run the CPU original."""
    model = on_cpu()
    if device is None or torch.device(device).type == "cpu":
        return model
    return copy.deepcopy(model).to(device)


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, batch_size: int = 2000) -> torch.Tensor:
    """Class probabilities for images of shape (N, 1, 28, 28) in [0, 1]."""
    return torch.cat([model(b).softmax(1) for b in images.split(batch_size)])
