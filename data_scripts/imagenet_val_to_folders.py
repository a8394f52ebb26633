"""Sort the official flat ImageNet val folder into class folders.

    python data_scripts/imagenet_val_to_folders.py VAL_DIR LABELS

LABELS is LOC_val_solution.csv (ImageId,PredictionString) or a text file of
"<image> <wnid>" lines. Running it again on a sorted folder does nothing.
"""

import argparse
from pathlib import Path

from f8lab.data import DataError, val_to_class_folders


def main() -> None:
    parser = argparse.ArgumentParser(description="Sort ImageNet val images into class folders.")
    parser.add_argument("val_dir", type=Path, help="the folder of ILSVRC2012_val_*.JPEG files")
    parser.add_argument("labels", type=Path, help="LOC_val_solution.csv or '<image> <wnid>' lines")
    args = parser.parse_args()
    try:
        moved = val_to_class_folders(args.val_dir, args.labels)
    except DataError as error:
        raise SystemExit(f"error: {error}") from None
    print(f"moved {moved} images into class folders under {args.val_dir}")


if __name__ == "__main__":
    main()
