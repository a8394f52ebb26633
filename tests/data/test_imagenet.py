"""ImageNet helpers on a tiny synthetic tree: val reorganisation, subsets, loading."""

import subprocess
import sys
from pathlib import Path

import pytest

from f8lab.data import DataError, imagenet, make_subset, val_to_class_folders
from helpers import write_image

REPO = Path(__file__).resolve().parents[2]
WNIDS = ["n01440764", "n01443537", "n01484850", "n01491361"]


@pytest.fixture
def flat_val(tmp_path):
    val = tmp_path / "val"
    lines = ["ImageId,PredictionString"]
    for i in range(12):
        name = f"ILSVRC2012_val_{i + 1:08d}"
        write_image(val / f"{name}.JPEG")
        lines.append(f"{name},{WNIDS[i % 4]} 1 2 3 4")
    (tmp_path / "LOC_val_solution.csv").write_text("\n".join(lines) + "\n")
    return val


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "imagenet"
    for split, n in (("train", 6), ("val", 3)):
        for wnid in WNIDS:
            for i in range(n):
                write_image(root / split / wnid / f"{wnid}_{i}.JPEG")
    return root


def test_val_to_class_folders_with_csv(flat_val, tmp_path):
    assert val_to_class_folders(flat_val, tmp_path / "LOC_val_solution.csv") == 12
    assert sorted(p.name for p in flat_val.iterdir()) == WNIDS
    assert len(list((flat_val / WNIDS[1]).iterdir())) == 3
    assert val_to_class_folders(flat_val, tmp_path / "LOC_val_solution.csv") == 0
    assert len(imagenet("val", flat_val.parent)) == 12


def test_val_to_class_folders_with_text_labels(flat_val, tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("".join(f"ILSVRC2012_val_{i + 1:08d}.JPEG {WNIDS[i % 2]}\n" for i in range(12)))
    run = subprocess.run(
        [sys.executable, "data_scripts/imagenet_val_to_folders.py", str(flat_val), str(labels)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert "moved 12 images" in run.stdout
    assert sorted(p.name for p in flat_val.iterdir()) == WNIDS[:2]


def test_unlabelled_images_are_refused(flat_val, tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("ILSVRC2012_val_00000001.JPEG n01440764\n")
    with pytest.raises(DataError, match="11 image\\(s\\) .* have no label"):
        val_to_class_folders(flat_val, labels)


def test_flat_val_folder_points_to_the_script(flat_val):
    with pytest.raises(DataError, match="imagenet_val_to_folders.py"):
        imagenet("val", flat_val.parent)


def test_subset_is_deterministic_and_symlinked(tree, tmp_path):
    counts = make_subset(tree, tmp_path / "a", classes=2, images=4, seed=3, val_images=2)
    assert counts == {"train": 8, "val": 4}
    make_subset(tree, tmp_path / "b", classes=2, images=4, seed=3, val_images=2)

    def listing(root):
        return sorted(str(p.relative_to(root)) for p in root.rglob("*.JPEG"))

    assert listing(tmp_path / "a") == listing(tmp_path / "b")
    first = next((tmp_path / "a" / "train").rglob("*.JPEG"))
    assert first.is_symlink()
    assert sorted(p.name for p in (tmp_path / "a" / "val").iterdir()) == sorted(
        p.name for p in (tmp_path / "a" / "train").iterdir()
    )
    dataset = imagenet("train", tmp_path / "a")
    assert len(dataset) == 8 and len(dataset.classes) == 2
    dataset[0]


def test_subset_asks_for_too_many_classes(tree, tmp_path):
    with pytest.raises(DataError, match="asked for 9 classes"):
        make_subset(tree, tmp_path / "c", classes=9, images=1)


def test_missing_imagenet_root():
    with pytest.raises(DataError, match="pass root="):
        imagenet("train")
