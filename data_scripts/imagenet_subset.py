"""Make a deterministic ImageNet subset of symlinks (N classes x M images) for CPU experiments.

python data_scripts/imagenet_subset.py SRC DEST --classes 10 --images 260 [--val-images 50] [--seed 0]
"""

import argparse
from pathlib import Path

from f8lab.data import DataError, make_subset


def main() -> None:
    parser = argparse.ArgumentParser(description="Make a symlinked ImageNet subset.")
    parser.add_argument("source", type=Path, help="ImageNet root with train/ and val/ class folders")
    parser.add_argument("dest", type=Path, help="where to create the subset")
    parser.add_argument("--classes", type=int, required=True, help="number of classes")
    parser.add_argument("--images", type=int, required=True, help="train images per class")
    parser.add_argument("--val-images", type=int, default=None, help="val images per class (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="the draw (default: 0)")
    args = parser.parse_args()
    try:
        counts = make_subset(args.source, args.dest, args.classes, args.images, args.seed, args.val_images)
    except DataError as error:
        raise SystemExit(f"error: {error}") from None
    print(", ".join(f"{split}: {n} images" for split, n in counts.items()) + f" in {args.dest}")


if __name__ == "__main__":
    main()
