"""Every format read back with the library its users load it with (Hugging Face datasets, pyarrow,
webdataset, torchvision), its images and labels checked against DigitGenerator's for the plan's noise
and labels."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import numpy as np
import pytest
import yaml

from cgan_runtime import DigitGenerator
from cgan_runtime.dataset_plan import Plan
from cgan_runtime.datasets import MANIFEST, write_dataset
from cgan_runtime.images import to_uint8
from tests.conftest import BUNDLED_MODEL

PER_DIGIT, TEST_PER_DIGIT, SEED, SHARD_SIZE = 40, 6, 11, 150  # 400 + 60 images, shards of 150


@pytest.fixture(scope="module")
def generator() -> DigitGenerator:
    return DigitGenerator(BUNDLED_MODEL, device="cpu")


@pytest.fixture(scope="module")
def expected(generator) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each split's (images, labels), drawn straight from DigitGenerator with the plan's inputs."""
    plan = Plan({"train": PER_DIGIT, "test": TEST_PER_DIGIT}, SEED, 10, SHARD_SIZE)
    drawn = {}
    for split in plan.splits:
        size = plan.split_size(split)
        labels = plan.labels(split, 0, size)
        output = generator.generate(plan.noise(split, 0, size, 100), labels.astype(np.int64))
        drawn[split] = (to_uint8(output, generator.info.output_range), labels)
    return drawn


@pytest.fixture(scope="module")
def sets(generator, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("formats")
    for dataset_format in ("idx", "folder", "npz", "parquet", "webdataset"):
        name = "set.npz" if dataset_format == "npz" else dataset_format
        write_dataset(
            generator,
            folder / name,
            dataset_format,
            PER_DIGIT,
            SEED,
            test_per_digit=TEST_PER_DIGIT,
            shard_size=SHARD_SIZE,
        )
    return folder


def test_the_labels_are_balanced_and_shuffled(expected):
    for split, per_digit in (("train", PER_DIGIT), ("test", TEST_PER_DIGIT)):
        labels = expected[split][1]
        assert np.bincount(labels, minlength=10).tolist() == [per_digit] * 10
        assert (np.diff(labels.astype(int)) != 0).mean() > 0.8


def test_parquet_loads_with_hugging_face_datasets(sets, expected, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from datasets import ClassLabel, Image, load_dataset

    loaded = load_dataset("parquet", data_dir=str(sets / "parquet"), cache_dir=str(sets / "hf-cache"))
    assert sorted(loaded) == ["test", "train"]
    features = loaded["train"].features
    assert isinstance(features["image"], Image) and isinstance(features["label"], ClassLabel)
    assert features["label"].names == [str(digit) for digit in range(10)]
    for split, (images, labels) in expected.items():
        rows = loaded[split]
        assert len(rows) == len(labels)
        assert np.array_equal(np.array(rows["label"]), labels)
        assert np.array_equal(np.stack([np.asarray(picture) for picture in rows["image"]]), images)


def test_parquet_reads_with_pyarrow_alone_and_carries_its_features(sets, expected):
    import io

    import pyarrow.parquet as pq
    from PIL import Image

    files = sorted((sets / "parquet" / "data").glob("train-*.parquet"))
    assert [path.name for path in files] == [f"train-0000{k}-of-00003.parquet" for k in range(3)]
    table = pq.read_table(files[1])
    features = json.loads(table.schema.metadata[b"huggingface"])["info"]["features"]
    assert features["image"] == {"_type": "Image"} and features["label"]["_type"] == "ClassLabel"
    images, labels = expected["train"]
    assert table.column("label").to_pylist() == labels[150:300].tolist()
    first = table.column("image")[0].as_py()
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(first["bytes"]))), images[150])


def test_the_dataset_card_describes_the_splits_and_features(sets):
    card = (sets / "parquet" / "README.md").read_text()
    front = yaml.safe_load(card.split("---")[1])
    assert [feature["name"] for feature in front["dataset_info"]["features"]] == ["image", "label"]
    assert {split["name"]: split["num_examples"] for split in front["dataset_info"]["splits"]} == {
        "train": 400,
        "test": 60,
    }
    assert front["configs"][0]["data_files"] == [
        {"split": "train", "path": "data/train-*"},
        {"split": "test", "path": "data/test-*"},
    ]


def test_webdataset_shards_read_with_webdataset(sets, expected):
    import webdataset

    for split, (images, labels) in expected.items():
        shards = sorted(str(path) for path in (sets / "webdataset").glob(f"{split}-*.tar"))
        assert len(shards) == -(-len(labels) // SHARD_SIZE)
        samples = webdataset.WebDataset(shards, shardshuffle=False, empty_check=False).decode("l8")
        seen = 0
        for sample in samples.to_tuple("__key__", "png", "cls"):
            key, image, label = sample
            index = int(key)
            assert label == labels[index] and np.array_equal(image, images[index])
            seen += 1
        assert seen == len(labels)


def test_idx_reads_with_torchvision(sets, expected, tmp_path):
    from torchvision.datasets import MNIST

    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for path in (sets / "idx").glob("*.gz"):
        (raw / path.name.removesuffix(".gz")).write_bytes(gzip.decompress(path.read_bytes()))
    for train, split in ((True, "train"), (False, "test")):
        mnist = MNIST(str(tmp_path), train=train)
        assert np.array_equal(mnist.data.numpy(), expected[split][0])
        assert np.array_equal(mnist.targets.numpy(), expected[split][1])


def test_the_folder_reads_with_torchvision_and_npz_with_numpy(sets, expected):
    from torchvision.datasets import ImageFolder

    for split, (images, labels) in expected.items():
        tree = ImageFolder(str(sets / "folder" / split))
        assert len(tree) == len(labels)
        for path, label in tree.samples[::7]:
            index = int(Path(path).stem)
            assert label == labels[index]
            assert np.array_equal(np.asarray(tree.loader(path).convert("L")), images[index])
    arrays = np.load(sets / "set.npz")
    assert np.array_equal(arrays["x"], expected["train"][0]) and np.array_equal(
        arrays["y"], expected["train"][1]
    )
    assert np.array_equal(arrays["x_test"], expected["test"][0])


def test_every_folder_set_has_a_complete_manifest_and_no_leftovers(sets):
    for name in ("idx", "folder", "parquet", "webdataset"):
        manifest = json.loads((sets / name / MANIFEST).read_text())
        assert manifest["complete"] and manifest["format"] == name
        assert len(manifest["shards"]) == 3 + 1  # 400 train images in 150s, 60 test
        hidden = [entry for entry in os.listdir(sets / name) if entry.startswith(".")]
        assert hidden == []
    assert [entry for entry in os.listdir(sets) if entry.startswith(".")] == []


def test_the_shard_size_changes_no_byte_of_the_single_file_formats(generator, sets, tmp_path):
    write_dataset(
        generator, tmp_path / "idx", "idx", PER_DIGIT, SEED, test_per_digit=TEST_PER_DIGIT, shard_size=7
    )
    for path in (sets / "idx").glob("*.gz"):
        assert (tmp_path / "idx" / path.name).read_bytes() == path.read_bytes()
