"""ImageNet-1k from the user's own copy: class folders, the val reorganisation, subsets.

Layout read by ``imagenet``: ``root/train/<wnid>/*.JPEG`` and ``root/val/<wnid>/*.JPEG``.
The official validation archive unpacks flat; ``val_to_class_folders`` sorts it with a
label file. ``make_subset`` builds a small deterministic subset of symlinks for CPU-scale
experiments.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

from torchvision.datasets import ImageFolder

from f8lab.data.paths import DataError

VAL_SCRIPT = "data_scripts/imagenet_val_to_folders.py"
SUBSET_SCRIPT = "data_scripts/imagenet_subset.py"
IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png"}


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _classes(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir())


def read_val_labels(labels_file: Path) -> dict[str, str]:
    """``{image stem: wnid}`` from ``LOC_val_solution.csv`` (ImageId,PredictionString) or
    from a text file of ``<image> <wnid>`` lines."""
    labels_file = Path(labels_file)
    text = labels_file.read_text()
    if text.startswith("ImageId,"):
        rows = csv.DictReader(text.splitlines())
        return {row["ImageId"]: row["PredictionString"].split()[0] for row in rows}
    labels = {}
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            fields = line.split()
            if len(fields) != 2:
                raise DataError(f"{labels_file}:{number}: expected '<image> <wnid>', got {line!r}")
            labels[Path(fields[0]).stem] = fields[1]
    return labels


def val_to_class_folders(val_dir: Path, labels_file: Path) -> int:
    """Move every image of a flat val folder into ``val_dir/<wnid>/``.

    Images already in class folders stay where they are, so a second run does nothing.

    Returns:
        The number of images moved.
    """
    val_dir = Path(val_dir)
    labels = read_val_labels(labels_file)
    flat = _images(val_dir)
    unlabelled = [p.name for p in flat if p.stem not in labels]
    if unlabelled:
        raise DataError(
            f"{len(unlabelled)} image(s) in {val_dir} have no label in {labels_file} "
            f"(first: {unlabelled[0]}); is this the right label file?"
        )
    for image in flat:
        target = val_dir / labels[image.stem]
        target.mkdir(exist_ok=True)
        image.rename(target / image.name)
    return len(flat)


def make_subset(
    source: Path, dest: Path, classes: int, images: int, seed: int = 0, val_images: int | None = None
) -> dict[str, int]:
    """Symlink ``classes`` x ``images`` images of each split of ``source`` into ``dest``.

    The classes are drawn once (seeded) and used for every split; within a class the
    images are drawn from the sorted file list, so the subset depends only on the seed.

    Args:
        source: an ImageNet root with train/ and/or val/ class folders.
        dest: where to create the subset (same layout, symlinks).
        classes: how many classes.
        images: images per class in train/.
        seed: the draw.
        val_images: images per class in val/ (default: all of them).

    Returns:
        ``{split: number of images linked}``.
    """
    source, dest = Path(source), Path(dest)
    splits = [s for s in ("train", "val") if (source / s).is_dir()]
    if not splits:
        raise DataError(f"{source} has no train/ or val/ folder of class folders")
    available = _classes(source / splits[0])
    if not 0 < classes <= len(available):
        raise DataError(f"asked for {classes} classes, {source / splits[0]} has {len(available)}")
    rng = random.Random(seed)
    chosen = sorted(rng.sample(available, classes))
    counts = {}
    for split in splits:
        per_class = images if split == "train" else val_images
        linked = 0
        for wnid in chosen:
            files = _images(source / split / wnid)
            picked = (
                files
                if per_class is None or per_class >= len(files)
                else sorted(rng.sample(files, per_class))
            )
            (dest / split / wnid).mkdir(parents=True, exist_ok=True)
            for file in picked:
                link = dest / split / wnid / file.name
                if not link.is_symlink():
                    link.symlink_to(file.resolve())
            linked += len(picked)
        counts[split] = linked
    return counts


def imagenet(split: str = "train", root: str | Path | None = None, transform=None) -> ImageFolder:
    """An ImageNet split (or a subset made by ``make_subset``) as an ImageFolder."""
    if root is None:
        raise DataError("ImageNet is not shipped: pass root=<your ImageNet folder with train/ and val/>")
    folder = Path(root) / split
    if not folder.is_dir():
        raise DataError(f"no ImageNet split at {folder}; expected class folders under it")
    if not _classes(folder):
        hint = f"; sort it with `python {VAL_SCRIPT}`" if _images(folder) else ""
        raise DataError(f"{folder} has no class folders{hint}")
    return ImageFolder(str(folder), transform=transform)
