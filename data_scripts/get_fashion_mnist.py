"""Get Fashion-MNIST (Debian's package, its folder, or torchvision's downloader) and verify it.

python data_scripts/get_fashion_mnist.py [--root DIR] [--no-download]
"""

import argparse
from pathlib import Path

from f8lab.data import DataError, default_data_root
from f8lab.data.fashion_mnist import install, raw_folder


def main() -> None:
    parser = argparse.ArgumentParser(description="Get and verify Fashion-MNIST.")
    parser.add_argument(
        "--root",
        type=Path,
        default=default_data_root(),
        help="data root (default: %(default)s; or set F8LAB_DATA)",
    )
    parser.add_argument(
        "--no-download", action="store_true", help="use local copies only, never the internet"
    )
    args = parser.parse_args()
    try:
        root = install(args.root, allow_download=not args.no_download)
    except DataError as error:
        raise SystemExit(f"error: {error}") from None
    print(f"Fashion-MNIST ready and verified in {raw_folder(root)}")


if __name__ == "__main__":
    main()
