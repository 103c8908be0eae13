"""The reference MNIST classifier: the measuring instrument of FID and the inception score.

It is the same on every machine and in every run mode: seeded before its weights are drawn,
trained once on the CPU in float32 (about 40 s on two cores, >= 99% test accuracy), cached in the
checkpoint folders, and identified by a hash of its weights that helpers.evaluate stores with
every result. Every metric runs it on the CPU, whatever device the samples come from.
"""

import copy
import hashlib
import json
import warnings
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

from . import checkpoints, data, train

CLASSIFIER = dict(channels=(16, 32), hidden=128, epochs=4, batch_size=128, lr=3e-3, seed=0,
                  trained_on="cpu, float32")
CPU = torch.device("cpu")


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


def _train_classifier(model) -> dict:
    cfg = CLASSIFIER
    x, y = data.load("mnist", "train", device=CPU)
    steps = cfg["epochs"] * len(x) // cfg["batch_size"]
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg["lr"], total_steps=steps)
    shifts = torch.Generator().manual_seed(cfg["seed"])

    def loss_fn(model, batch):
        xb, yb = batch
        dx, dy = torch.randint(-2, 3, (2,), generator=shifts).tolist()  # shift up to 2 pixels
        return F.cross_entropy(model(torch.roll(xb, (dx, dy), dims=(2, 3))), yb)

    batches = data.batches(x, y, batch_size=cfg["batch_size"], seed=cfg["seed"])
    return train.fit(model, loss_fn, batches, steps, optimizer=opt, scheduler=sched,
                     desc="reference classifier", log_every=50)


def _weights_hash(model: nn.Module) -> str:
    """A short hash of the weights: two copies of the instrument are the same iff it matches."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode() + tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:12]


_INSTRUMENT: dict = {}  # the classifier's weights hash and test accuracy, once it is loaded


def measured_by() -> dict:
    """The instrument's identity if a metric has used it in this process, else {}."""
    return dict(_INSTRUMENT)


def instrument() -> dict:
    """Which reference classifier measured: its weights hash and test accuracy (`record` stores
    them with every result, so figures from different machines can be compared)."""
    on_cpu()
    return dict(_INSTRUMENT)


@lru_cache(maxsize=1)
def on_cpu() -> Classifier:
    """The reference classifier, loaded from the cache or trained once on the CPU in float32."""
    digest = hashlib.sha1(json.dumps(CLASSIFIER, sort_keys=True).encode()).hexdigest()[:10]
    filename = f"evaluate-classifier-{digest}.pt"
    path = checkpoints.find(filename)
    with torch.random.fork_rng(devices=[]):  # the notebook's random stream is left untouched
        torch.manual_seed(CLASSIFIER["seed"])  # before the weights are drawn: the same every time
        model = Classifier(CLASSIFIER["channels"], CLASSIFIER["hidden"])
        if path is not None:
            try:
                saved = checkpoints.load(path)
                model.load_state_dict(saved["model"])
                return _measuring(model.eval(), saved["metrics"]["test_accuracy"])
            except Exception as err:
                reason = str(err).splitlines()[0][:200]
                warnings.warn(f"could not load the reference classifier ({path}: {reason}); "
                              "training it again", stacklevel=2)
                torch.manual_seed(CLASSIFIER["seed"])  # not from weights half loaded
                model = Classifier(CLASSIFIER["channels"], CLASSIFIER["hidden"])
        print("Training the reference MNIST classifier once on the CPU (cached afterwards)...")
        history = _train_classifier(model)
    model.eval()
    xt, yt = data.load("mnist", "test", device=CPU)
    accuracy = float((predict(model, xt).argmax(1) == yt).float().mean())
    checkpoints.store(filename, {"model": model.state_dict(), "config": CLASSIFIER,
                                 "history": history, "metrics": {"test_accuracy": accuracy}})
    return _measuring(model, accuracy)


def _measuring(model: Classifier, accuracy: float) -> Classifier:
    _INSTRUMENT.update(classifier=_weights_hash(model), classifier_test_accuracy=accuracy)
    print(f"reference classifier {_INSTRUMENT['classifier']} (test accuracy {accuracy:.2%}): the "
          "instrument of FID and the inception score")
    return model.requires_grad_(False)


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
