"""MNIST loading: IDX files, raw or gzip, verified by checksum before use."""

import gzip
import shutil

import pytest
import torch

from cgan_train.data import MNIST_SHA256, DataError, is_official_mnist, load_mnist
from tests.conftest import FIXTURE_DATA


def test_fixture_loads_as_uint8_images_and_int64_labels():
    digits = load_mnist(FIXTURE_DATA, "train")
    assert digits.images.shape == (300, 28, 28)
    assert digits.images.dtype == torch.uint8
    assert digits.labels.dtype == torch.int64
    assert torch.bincount(digits.labels).tolist() == [30] * 10


def test_raw_and_gzip_files_give_the_same_tensors(tmp_path):
    shutil.copytree(FIXTURE_DATA, tmp_path / "data")
    gz = tmp_path / "data" / "train-images-idx3-ubyte.gz"
    (tmp_path / "data" / "train-images-idx3-ubyte").write_bytes(gzip.decompress(gz.read_bytes()))
    gz.unlink()
    assert torch.equal(load_mnist(tmp_path / "data").images, load_mnist(FIXTURE_DATA).images)


@pytest.mark.faults
def test_missing_file_is_named(tmp_path):
    shutil.copytree(FIXTURE_DATA, tmp_path / "data")
    (tmp_path / "data" / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="missing MNIST file: .*train-labels-idx1-ubyte"):
        load_mnist(tmp_path / "data")


@pytest.mark.faults
def test_corrupt_file_is_named_with_the_expected_checksum(tmp_path):
    shutil.copytree(FIXTURE_DATA, tmp_path / "data")
    path = tmp_path / "data" / "train-images-idx3-ubyte.gz"
    raw = bytearray(gzip.decompress(path.read_bytes()))
    raw[5000] ^= 0xFF
    path.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.gz: corrupt.*expected 92578c5b"):
        load_mnist(tmp_path / "data")


def test_full_mnist_is_checked_against_the_official_checksums(tmp_path):
    # Without a SHA256SUMS listing, the folder must hold the official files: the subset fails.
    shutil.copytree(FIXTURE_DATA, tmp_path / "data")
    (tmp_path / "data" / "SHA256SUMS").unlink()
    official = MNIST_SHA256["train-images-idx3-ubyte"]
    with pytest.raises(DataError, match=f"expected {official}"):
        load_mnist(tmp_path / "data")


def test_a_subset_is_not_taken_for_official_mnist():
    assert not is_official_mnist(load_mnist(FIXTURE_DATA).sha256)


@pytest.mark.faults
def test_missing_folder_is_named(tmp_path):
    with pytest.raises(DataError, match="MNIST folder not found"):
        load_mnist(tmp_path / "nowhere")
