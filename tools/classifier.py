"""`python -m tools.classifier` (`make classifier`): train and cache the reference MNIST classifier
(helpers.classifier) ahead of the notebooks; fails if it misses 99 % test accuracy."""

import sys

from helpers import classifier

if __name__ == "__main__":
    sys.exit(0 if classifier.instrument()["classifier_test_accuracy"] >= 0.99 else 1)
