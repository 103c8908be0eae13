"""`python -m tools.instrument [--retrain]` (`make classifier`): the shipped reference classifier.

Without flags it loads the shipped instrument (helpers/reference_classifier.pt), verifies its hash,
measures its test accuracy again and fails below 99 %. With --retrain (for a maintainer who changes
the instrument) it trains it on the CPU in float32 from its fixed seed and writes the weights and
their identity beside helpers/classifier.py; commit both, and re-measure the published figures,
which the old instrument measured.
"""

import argparse
import json
import sys

import torch
import torch.nn.functional as F

from helpers import classifier, data, train
from helpers.classifier import CPU, Classifier

TRAINING = dict(epochs=4, batch_size=128, lr=3e-3, seed=0)  # on the CPU, in float32


def fit(model: Classifier, epochs: int = TRAINING["epochs"]) -> dict:
    """Train the classifier as TRAINING says: Adam with a one-cycle rate, shifts of up to two
    pixels as augmentation, seeded batches and shifts (`epochs`: fewer, for a test)."""
    cfg = TRAINING
    x, y = data.load("mnist", "train", device=CPU)
    steps = epochs * len(x) // cfg["batch_size"]
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg["lr"], total_steps=steps)
    shifts = torch.Generator().manual_seed(cfg["seed"])

    def loss_fn(model, batch):
        xb, yb = batch
        dx, dy = torch.randint(-2, 3, (2,), generator=shifts).tolist()  # shift up to 2 pixels
        return F.cross_entropy(model(torch.roll(xb, (dx, dy), dims=(2, 3))), yb)

    batches = data.batches(x, y, batch_size=cfg["batch_size"], seed=cfg["seed"])
    return train.fit(model, loss_fn, batches, steps, optimizer=opt, scheduler=sched,
                     desc="reference classifier", log_every=50, autocast=False)


def trained(epochs: int = TRAINING["epochs"]) -> Classifier:
    """A freshly trained instrument (seeded before its weights are drawn)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TRAINING["seed"])
        model = Classifier()
        fit(model, epochs)
    return model.eval()


def accuracy(model: Classifier) -> float:
    xt, yt = data.load("mnist", "test", device=CPU)
    return float((classifier.predict(model, xt).argmax(1) == yt).float().mean())


def identity() -> dict:
    """The shipped instrument's weights hash and test accuracy, verified (loading it checks the
    hash); the benchmark stores them with every result, so figures from machines compare."""
    classifier.on_cpu()
    return json.loads(classifier.IDENTITY.read_text())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--retrain", action="store_true",
                        help="train it again and overwrite the shipped files (maintainers)")
    args = parser.parse_args(argv)
    if args.retrain:
        model = trained()
        torch.save(model.state_dict(), classifier.WEIGHTS)
        written = {"classifier": classifier.weights_hash(model),
                   "classifier_test_accuracy": round(accuracy(model), 4)}
        classifier.IDENTITY.write_text(json.dumps(written, indent=1) + "\n")
        classifier.on_cpu.cache_clear()
        print(f"classifier: wrote {classifier.WEIGHTS.name} {written}; commit it with its .json")
    try:
        model = classifier.on_cpu()
    except classifier.ClassifierError as err:
        print(f"classifier: {err}", file=sys.stderr)
        return 1
    measured = accuracy(model)
    print(f"classifier: {identity()['classifier']} measures {measured:.2%} on the "
          "MNIST test set")
    return 0 if measured >= 0.99 else 1


if __name__ == "__main__":
    sys.exit(main())
