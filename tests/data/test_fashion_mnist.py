"""Fashion-MNIST: installing from a local copy, verification, clear errors."""

import gzip
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from f8lab.data import DataError, default_data_root, fashion_mnist
from f8lab.data.fashion_mnist import DEBIAN_DIR, FILES, install, raw_folder, verify

REPO = Path(__file__).resolve().parents[2]
installed = pytest.mark.skipif(
    not (raw_folder(default_data_root()) / FILES[0].name).is_file(),
    reason="Fashion-MNIST not installed: run `make data`",
)


@pytest.fixture
def local_copy(tmp_path):
    """A folder shaped like Debian's package, made from the installed data."""
    folder = tmp_path / "debian"
    folder.mkdir()
    for spec in FILES:
        source = DEBIAN_DIR / f"{spec.name}.gz"
        if source.is_file():
            shutil.copy(source, folder)
        else:
            data = (raw_folder(default_data_root()) / spec.name).read_bytes()
            (folder / f"{spec.name}.gz").write_bytes(gzip.compress(data, compresslevel=1))
    return folder


@installed
def test_install_from_local_copy_and_load(tmp_path, local_copy):
    root = install(tmp_path / "data", debian_dir=local_copy, use_apt=False, allow_download=False)
    verify(root)
    train, test = fashion_mnist(True, root), fashion_mnist(False, root)
    assert (len(train), len(test)) == (60_000, 10_000)
    image, label = test[0]
    assert image.size == (28, 28) and 0 <= label < 10


@installed
def test_truncated_file_is_refused_and_not_used(tmp_path, local_copy):
    gz = local_copy / f"{FILES[0].name}.gz"
    gz.write_bytes(gz.read_bytes()[:100_000])
    with pytest.raises(DataError, match="cannot be decompressed|expected"):
        install(tmp_path / "data", debian_dir=local_copy, use_apt=False, allow_download=False)
    assert not (raw_folder(tmp_path / "data") / FILES[0].name).exists()


@installed
def test_corrupt_installed_file_is_deleted(tmp_path, local_copy):
    root = install(tmp_path / "data", debian_dir=local_copy, use_apt=False, allow_download=False)
    labels = raw_folder(root) / FILES[1].name
    data = bytearray(labels.read_bytes())
    data[100] ^= 1
    labels.write_bytes(bytes(data))
    with pytest.raises(DataError, match="MD5 .*corrupt file.*deleted it"):
        verify(root)
    assert not labels.exists()


def test_missing_data_names_the_script(tmp_path):
    with pytest.raises(DataError, match="data_scripts/get_fashion_mnist.py"):
        fashion_mnist(root=tmp_path)


def test_no_source_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="no local copy"):
        install(tmp_path, debian_dir=tmp_path / "absent", use_apt=False, allow_download=False)


@installed
def test_script_is_idempotent():
    run = subprocess.run(
        [sys.executable, "data_scripts/get_fashion_mnist.py", "--no-download"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert "ready and verified" in run.stdout
