"""The judge: the committed classifier is accurate, and training and loading one work."""

import numpy as np
import pytest
import torch

from cgan_train.data import load_mnist
from cgan_train.judge import FEATURE_DIM, JudgeError, judge_images, load_judge, save_judge, train_judge
from tests.conftest import COMMITTED_JUDGE, FIXTURE_DATA


def test_the_committed_judge_was_measured_at_least_99_3_percent_on_the_whole_mnist_test_set():
    _, record = load_judge(COMMITTED_JUDGE)
    assert record["test_images"] == 10_000
    assert record["test_accuracy"] >= 0.993


def test_the_committed_judge_classifies_real_test_digits():
    judge, _ = load_judge(COMMITTED_JUDGE)
    test = load_mnist(FIXTURE_DATA, "test")
    features, predictions = judge_images(judge, test.images)
    assert features.shape == (len(test), FEATURE_DIM)
    assert (predictions == test.labels.numpy()).mean() >= 0.98


def test_a_trained_judge_saves_and_loads_with_the_same_predictions(tmp_path):
    train, test = load_mnist(FIXTURE_DATA, "train"), load_mnist(FIXTURE_DATA, "test")
    judge, accuracy = train_judge(train, test, epochs=2, batch_size=64, show_progress=False)
    assert 0.0 <= accuracy <= 1.0
    save_judge(tmp_path / "judge.pt", judge, accuracy, train, test)
    loaded, record = load_judge(tmp_path / "judge.pt")
    assert record["test_accuracy"] == accuracy
    assert (record["test_images"], record["test_data_sha256"]) == (len(test), test.sha256)
    np.testing.assert_array_equal(judge_images(judge, test.images)[0], judge_images(loaded, test.images)[0])


def test_a_missing_judge_says_how_to_make_one(tmp_path):
    with pytest.raises(JudgeError, match="cgan-train judge"):
        load_judge(tmp_path / "absent.pt")


@pytest.mark.faults
def test_a_file_that_is_not_a_judge_is_refused(tmp_path):
    (tmp_path / "judge.pt").write_bytes(b"not a judge")
    with pytest.raises(JudgeError, match="not a readable judge file"):
        load_judge(tmp_path / "judge.pt")


@pytest.mark.faults
def test_a_judge_file_with_weights_of_another_network_is_refused(tmp_path):
    state = torch.load(COMMITTED_JUDGE, weights_only=True)
    state["weights"] = {"head.weight": torch.zeros(3, 3)}
    torch.save(state, tmp_path / "judge.pt")
    with pytest.raises(JudgeError, match="weights do not fit the judge's network"):
        load_judge(tmp_path / "judge.pt")


@pytest.mark.faults
def test_a_judge_file_without_its_record_is_refused(tmp_path):
    state = torch.load(COMMITTED_JUDGE, weights_only=True)
    del state["test_accuracy"]
    torch.save(state, tmp_path / "judge.pt")
    with pytest.raises(JudgeError, match="record lacks test_accuracy"):
        load_judge(tmp_path / "judge.pt")
