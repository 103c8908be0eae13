"""`python -m tools.fetch_data fetch NAME... [--mirror DIR]` (`make data`): make each dataset
whole in the data folder (helpers.datafiles.fetch), from a local mirror or by downloading."""

import argparse
import sys

from helpers.datafiles import DATASETS, DataError, fetch


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Fetch the course datasets into the data folder.")
    parser.add_argument("command", choices=["fetch"])
    parser.add_argument("names", nargs="+", choices=sorted(DATASETS))
    parser.add_argument("--mirror", help="a local folder in torchvision's layout (or holding the "
                        "dataset's official archive) to copy from")
    args = parser.parse_args(argv)
    try:
        for name in args.names:
            fetch(name, args.mirror)
    except DataError as err:
        print(f"data: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
