"""cgan-train triton-repository: a Triton model repository whose config.pbtxt parses with Triton's
own model-config protobuf (the one tritonclient ships) and agrees with the ONNX graph it serves."""

from __future__ import annotations

import subprocess

import onnx
import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from tests.conftest import FP32_MODEL, INT8_MODEL, REPO_ROOT
from tests.helpers import CGAN_TRAIN

ONNX_TO_TRITON = {onnx.TensorProto.FLOAT: "TYPE_FP32", onnx.TensorProto.INT64: "TYPE_INT64"}


def write(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CGAN_TRAIN, "triton-repository", "--models", str(REPO_ROOT / "models"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


@pytest.fixture(scope="module")
def repository(tmp_path_factory):
    folder = tmp_path_factory.mktemp("triton") / "repository"
    result = write("--out", str(folder), cwd=folder.parent)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{folder}: cgan, cgan_fp32"
    return folder


def parsed(config_path) -> model_config_pb2.ModelConfig:
    return text_format.Parse(config_path.read_text(), model_config_pb2.ModelConfig())


@pytest.mark.parametrize("name, model_file", [("cgan", INT8_MODEL), ("cgan_fp32", FP32_MODEL)])
def test_each_model_is_its_file_and_a_config_triton_parses(repository, name, model_file):
    assert (repository / name / "1" / "model.onnx").read_bytes() == model_file.read_bytes()
    config = parsed(repository / name / "config.pbtxt")
    assert config.name == name and config.platform == "onnxruntime_onnx"
    assert config.max_batch_size == 256
    assert (
        config.HasField("dynamic_batching")
        and config.dynamic_batching.default_queue_policy.max_queue_size == 128
    )
    assert [group.kind for group in config.instance_group] == [model_config_pb2.ModelInstanceGroup.KIND_CPU]


@pytest.mark.parametrize("name, model_file", [("cgan", INT8_MODEL), ("cgan_fp32", FP32_MODEL)])
def test_the_config_agrees_with_the_onnx_graph(repository, name, model_file):
    config = parsed(repository / name / "config.pbtxt")
    graph = onnx.load(str(model_file)).graph
    declared = {tensor.name: tensor for tensor in [*config.input, *config.output]}
    assert [t.name for t in config.input] == [t.name for t in graph.input]
    assert [t.name for t in config.output] == [t.name for t in graph.output]
    for tensor in [*graph.input, *graph.output]:
        entry = declared[tensor.name]
        shape = tensor.type.tensor_type.shape.dim
        assert shape[0].dim_param and not shape[0].dim_value  # the batch dimension, left to Triton
        assert (
            model_config_pb2.DataType.Name(entry.data_type)
            == ONNX_TO_TRITON[tensor.type.tensor_type.elem_type]
        )
        rest = [dim.dim_value for dim in shape[1:]]
        if rest:
            assert list(entry.dims) == rest and not entry.HasField("reshape")
        else:  # a tensor of the batch dimension alone: dims [1], reshaped to [] for the model
            assert list(entry.dims) == [1] and list(entry.reshape.shape) == []


def test_an_unknown_field_would_not_parse():
    # The check above is worth something: Triton's protobuf refuses what Triton would refuse.
    with pytest.raises(text_format.ParseError, match="max_queue_delay_ms"):
        text_format.Parse("dynamic_batching { max_queue_delay_ms: 2 }", model_config_pb2.ModelConfig())


def test_an_existing_folder_is_kept_unless_forced_and_only_a_repository_is_replaced(repository, tmp_path):
    again = write("--out", str(repository), cwd=tmp_path)
    assert again.returncode == 2 and "exists; add --force" in again.stderr
    forced = write("--out", str(repository), "--force", "--max-batch-size", "64", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert parsed(repository / "cgan" / "config.pbtxt").max_batch_size == 64
    other = tmp_path / "photos"
    other.mkdir()
    (other / "keep.png").write_bytes(b"x")
    refused = write("--out", str(other), "--force", cwd=tmp_path)
    assert refused.returncode == 2 and "not a repository this command wrote" in refused.stderr
    assert (other / "keep.png").read_bytes() == b"x"
    write("--out", str(repository), "--force", cwd=tmp_path)  # as the module's other tests expect it


def test_a_models_folder_without_the_models_is_one_line_and_writes_nothing(tmp_path):
    result = subprocess.run(
        [CGAN_TRAIN, "triton-repository", "--models", str(tmp_path), "--out", str(tmp_path / "repo")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("Error: model file ")
    assert not (tmp_path / "repo").exists()
