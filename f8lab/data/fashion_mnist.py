"""Fashion-MNIST: install, verify and load (70,000 28x28 grey images, 10 classes).

Files are laid out where ``torchvision.datasets.FashionMNIST(root, download=False)`` reads
them: ``root/FashionMNIST/raw/*-idx?-ubyte``, decompressed. Sources, in order: Debian's
package ``dataset-fashion-mnist`` (installed with apt-get when running as root), the folder
it installs, then torchvision's downloader (needs internet). Every file is checked for its
size, idx header and MD5 of the decompressed bytes; a bad file is deleted, never used.
Loading checks again: a file whose size or modification time differs from the last
verified one (recorded in ``raw/.verified.json``) is hashed anew, and a damaged one is
refused before any of its values is read.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from torchvision.datasets import FashionMNIST

from f8lab.data.paths import DataError, default_data_root

DEBIAN_PACKAGE = "dataset-fashion-mnist"
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
SCRIPT = "data_scripts/get_fashion_mnist.py"
STAMP = ".verified.json"  # in the raw folder: {name: [size, mtime_ns]} of verified files


@dataclass(frozen=True)
class IdxFile:
    name: str  # file name, without .gz
    magic: int  # idx magic number: 2051 images, 2049 labels
    count: int  # number of items
    size: int  # decompressed size in bytes
    md5: str  # MD5 of the decompressed bytes


FILES = (
    IdxFile("train-images-idx3-ubyte", 2051, 60_000, 47_040_016, "f4a8712d7a061bf5bd6d2ca38dc4d50a"),
    IdxFile("train-labels-idx1-ubyte", 2049, 60_000, 60_008, "9018921c3c673c538a1fc5bad174d6f9"),
    IdxFile("t10k-images-idx3-ubyte", 2051, 10_000, 7_840_016, "8181f5470baa50b63fa0f6fddb340f0a"),
    IdxFile("t10k-labels-idx1-ubyte", 2049, 10_000, 10_008, "15d484375f8d13e6eb1aabb0c3f46965"),
)


def raw_folder(root: Path) -> Path:
    return Path(root) / "FashionMNIST" / "raw"


def check_idx_bytes(data: bytes, spec: IdxFile, origin: str) -> None:
    """Raise DataError unless ``data`` is exactly the expected decompressed idx file."""
    if len(data) != spec.size:
        raise DataError(f"{origin}: {len(data)} bytes, expected {spec.size} (truncated or wrong file)")
    magic, count = int.from_bytes(data[0:4], "big"), int.from_bytes(data[4:8], "big")
    if (magic, count) != (spec.magic, spec.count):
        raise DataError(f"{origin}: idx header ({magic}, {count}), expected ({spec.magic}, {spec.count})")
    digest = hashlib.md5(data).hexdigest()
    if digest != spec.md5:
        raise DataError(f"{origin}: MD5 {digest}, expected {spec.md5} (corrupt file)")


def verify(root: Path | None = None) -> None:
    """Check the four files under ``root``; a damaged file is deleted and reported."""
    folder = raw_folder(root or default_data_root())
    for spec in FILES:
        path = folder / spec.name
        if not path.is_file():
            raise DataError(f"missing {path}; run `python {SCRIPT}` to get Fashion-MNIST")
        try:
            check_idx_bytes(path.read_bytes(), spec, str(path))
        except DataError as error:
            path.unlink()
            raise DataError(f"{error}; deleted it, run `python {SCRIPT}` again") from None


def _copy_from(source: Path, folder: Path) -> None:
    """Decompress and check each ``source/<name>.gz``; write it atomically into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for spec in FILES:
        gz = source / f"{spec.name}.gz"
        try:
            data = gzip.decompress(gz.read_bytes())
        except (OSError, EOFError) as error:
            raise DataError(f"{gz}: cannot be decompressed ({error}); not used") from None
        check_idx_bytes(data, spec, str(gz))
        tmp = folder / f".{spec.name}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, folder / spec.name)


def _apt_install() -> bool:
    """Install Debian's package when running as root; True when its folder now exists."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return False
    install = ["apt-get", "install", "-y", "-qq", DEBIAN_PACKAGE]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True)
        subprocess.run(install, env=env, capture_output=True)
    return DEBIAN_DIR.is_dir()


def install(
    root: Path | None = None, debian_dir: Path = DEBIAN_DIR, use_apt: bool = True, allow_download: bool = True
) -> Path:
    """Get Fashion-MNIST into ``root`` (default: ``default_data_root()``) and verify it.

    Nothing is done when verified files are already there.

    Returns:
        The root to pass to ``torchvision.datasets.FashionMNIST``.
    """
    root = Path(root or default_data_root())
    folder = raw_folder(root)
    try:
        verify(root)
        return root
    except DataError:
        pass
    if not debian_dir.is_dir() and use_apt and debian_dir == DEBIAN_DIR:
        _apt_install()
    if debian_dir.is_dir():
        _copy_from(debian_dir, folder)
    elif allow_download:
        FashionMNIST(root, train=True, download=True)
        FashionMNIST(root, train=False, download=True)
    else:
        raise DataError(
            f"no local copy of Fashion-MNIST in {debian_dir}: install Debian's "
            f"{DEBIAN_PACKAGE} or allow the download"
        )
    verify(root)
    return root


def _signature(path: Path) -> list[int]:
    status = path.stat()
    return [status.st_size, status.st_mtime_ns]


def check_before_loading(root: Path, names: list[str]) -> None:
    """Refuse a missing or damaged file among ``names`` before anything reads it.

    A file is hashed when its size or modification time differs from the one recorded
    when it was last verified; the record is rewritten when it can be (a read-only
    folder is verified on every load).
    """
    folder = raw_folder(root)
    specs = {spec.name: spec for spec in FILES}
    missing = [name for name in names if not (folder / name).is_file()]
    if missing:
        raise DataError(
            f"Fashion-MNIST is not in {folder} (missing {', '.join(missing)}); "
            f"run `python {SCRIPT} --root {root}` (or set F8LAB_DATA)"
        )
    try:
        verified = json.loads((folder / STAMP).read_text())
    except (OSError, ValueError):
        verified = {}
    stale = [name for name in names if verified.get(name) != _signature(folder / name)]
    for name in stale:
        path = folder / name
        try:
            check_idx_bytes(path.read_bytes(), specs[name], str(path))
        except DataError as error:
            raise DataError(f"{error}; not used: run `python {SCRIPT} --root {root}` to replace it") from None
        verified[name] = _signature(path)
    if stale:
        try:
            tmp = folder / f"{STAMP}.tmp"
            tmp.write_text(json.dumps(verified))
            os.replace(tmp, folder / STAMP)
        except OSError:
            pass


def fashion_mnist(train: bool = True, root: str | Path | None = None, transform=None) -> FashionMNIST:
    """The Fashion-MNIST training (60,000) or test (10,000) split, without downloading;
    its two files are verified first (``check_before_loading``)."""
    root = Path(root or default_data_root())
    split = FILES[:2] if train else FILES[2:]
    check_before_loading(root, [spec.name for spec in split])
    return FashionMNIST(str(root), train=train, transform=transform, download=False)
