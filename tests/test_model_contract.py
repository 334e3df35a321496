"""A model proves itself before the runtime trusts it: metadata that disagrees with the graph, and an
output that is not finite or ignores the batch size, are refused at load with one line, by the
library, cgan-run and cgan-train evaluate alike."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

from cgan_runtime import DigitGenerator, ModelError
from cgan_runtime.generator import CHUNK_SIZE
from cgan_train.config import TrainConfig
from tests.conftest import FIXTURE_DATA, REPO_ROOT, export_untrained
from tests.helpers import cgan_run

pytestmark = pytest.mark.faults

SMALL = replace(TrainConfig(), latent_dim=8, num_classes=10, image_size=28)


@pytest.fixture(scope="module")
def small_model(tmp_path_factory) -> onnx.ModelProto:
    path = tmp_path_factory.mktemp("small") / "small.onnx"
    export_untrained(SMALL, path)
    return onnx.load(path)


def _with_metadata(model: onnx.ModelProto, **changes: str) -> onnx.ModelProto:
    edited = onnx.ModelProto()
    edited.CopyFrom(model)
    metadata = {prop.key: prop.value for prop in edited.metadata_props} | changes
    onnx.helper.set_model_props(edited, metadata)
    return edited


def _with_output_through(
    model: onnx.ModelProto, op_type: str, constant: np.ndarray | None = None, **attributes
) -> onnx.ModelProto:
    """model whose images pass through one more node (op_type, with a constant second input)."""
    edited = onnx.ModelProto()
    edited.CopyFrom(model)
    graph = edited.graph
    for node in graph.node:
        node.output[:] = ["raw" if name == "images" else name for name in node.output]
    inputs = ["raw"]
    if constant is not None:
        graph.initializer.append(onnx.numpy_helper.from_array(constant, "extra"))
        inputs.append("extra")
    graph.node.append(onnx.helper.make_node(op_type, inputs, ["images"], **attributes))
    return edited


def _symbolic(model: onnx.ModelProto, value: str, axis: int) -> onnx.ModelProto:
    """model with one dimension of an input or output made symbolic (the graph then decides it)."""
    edited = onnx.ModelProto()
    edited.CopyFrom(model)
    for info in (*edited.graph.input, *edited.graph.output):
        if info.name == value:
            info.type.tensor_type.shape.dim[axis].dim_param = f"{value}_{axis}"
    return edited


def _load(model: onnx.ModelProto, tmp_path: Path) -> DigitGenerator:
    onnx.save_model(model, tmp_path / "m.onnx")
    return DigitGenerator(tmp_path / "m.onnx", device="cpu")


CASES = {
    "latent_dim beside a symbolic z": (
        lambda m: _symbolic(_with_metadata(m, latent_dim="5"), "z", 1),
        "onnxruntime fails on 1 images of digits 9",
    ),
    "num_classes larger than the label table": (
        lambda m: _with_metadata(m, num_classes="12"),
        "onnxruntime fails on 1 images of digits 11",
    ),
    "image_size that disagrees with the graph": (
        lambda m: _with_metadata(m, image_size="32"),
        r"images is tensor\(float\) \['batch', 1, 28, 28\]",
    ),
    "output that ignores the batch size": (
        lambda m: _first_image_only(m),
        r"gives images of shape \[1, 1, 28, 28\] for 3 inputs",
    ),
    "NaN output": (
        lambda m: _with_output_through(m, "Mul", np.array([np.nan], np.float32)),
        "its output holds NaN or infinite values",
    ),
    "infinite output": (
        lambda m: _with_output_through(m, "Div", np.array([0.0], np.float32)),
        "its output holds NaN or infinite values",
    ),
    "latent_dim 0": (lambda m: _with_metadata(m, latent_dim="0"), "metadata latent_dim is 0, not in 1-"),
    "num_classes -3": (lambda m: _with_metadata(m, num_classes="-3"), "metadata num_classes is -3"),
    "latent_dim too large to try": (lambda m: _with_metadata(m, latent_dim=str(10**9)), "not in 1-1,048,576"),
    "output_range of one number": (
        lambda m: _with_metadata(m, output_range="[1]"),
        r"output_range \[1\] is not a list of two numbers",
    ),
    "output_range of equal bounds": (
        lambda m: _with_metadata(m, output_range="[1, 1]"),
        "is not two finite, distinct numbers",
    ),
    "output_range with NaN": (
        lambda m: _with_metadata(m, output_range="[NaN, 1]"),
        "is not two finite, distinct numbers",
    ),
    "output_range with Infinity": (
        lambda m: _with_metadata(m, output_range="[-1, Infinity]"),
        "is not two finite, distinct numbers",
    ),
    "output_range whose scale overflows float32": (
        lambda m: _with_metadata(m, output_range="[1e308, -1e308]"),
        "that float32 maps onto 0-255",
    ),
    "output_range narrower than float32 resolves": (
        lambda m: _with_metadata(m, output_range="[0, 1e-320]"),
        "that float32 maps onto 0-255",
    ),
    "output_range of bounds float32 cannot tell apart": (
        lambda m: _with_metadata(m, output_range="[1, 1.00000001]"),
        "that float32 maps onto 0-255",
    ),
    "output_range with an integer beyond any float": (
        lambda m: _with_metadata(m, output_range="[-1, " + "9" * 400 + "]"),
        "unreadable metadata",
    ),
    "output_range nested too deep for JSON": (
        lambda m: _with_metadata(m, output_range="[" * 100_000 + "]" * 100_000),
        "unreadable metadata",
    ),
    "model_version with a terminal escape": (
        lambda m: _with_metadata(m, model_version="v1\n\x1b[31mred"),
        r"model_version 'v1\\n\\x1b\[31mred' is not 1-256 printable characters",
    ),
    "model_version empty": (lambda m: _with_metadata(m, model_version=""), "is not 1-256 printable"),
    "num_classes beyond the int64 labels": (
        lambda m: _with_metadata(m, num_classes=str(2**70)),
        "not in 1-9,223,372,036,854,775,807",
    ),
    "output_range of text": (
        lambda m: _with_metadata(m, output_range='["a", "b"]'),
        "is not a list of two numbers",
    ),
    "output_range not JSON": (lambda m: _with_metadata(m, output_range="-1..1"), "unreadable metadata"),
    "image_size as a fraction": (lambda m: _with_metadata(m, image_size="28.5"), "unreadable metadata"),
}


def _first_image_only(model: onnx.ModelProto) -> onnx.ModelProto:
    """The output is always the first image alone, whatever N, under a symbolic batch dimension."""
    edited = _with_output_through(model, "Identity")
    graph = edited.graph
    graph.node[-1].op_type = "Slice"
    for name, value in (("starts", 0), ("ends", 1), ("axes", 0)):
        graph.initializer.append(onnx.numpy_helper.from_array(np.array([value], np.int64), name))
    graph.node[-1].input[:] = ["raw", "starts", "ends", "axes"]
    graph.output[0].type.tensor_type.shape.dim[0].dim_param = "anything"
    return edited


def test_metadata_that_is_not_utf8_is_refused_at_load(small_model, tmp_path):
    marked = _with_metadata(small_model, model_version="VERSION-MARK").SerializeToString()
    (tmp_path / "bytes.onnx").write_bytes(marked.replace(b"VERSION-MARK", b"\xff\xfeRSION-MARK"))
    with pytest.raises(ModelError, match="unreadable metadata \\(not UTF-8"):
        DigitGenerator(tmp_path / "bytes.onnx", device="cpu")


@pytest.mark.parametrize("case", list(CASES))
def test_a_model_that_breaks_its_contract_is_refused_at_load(small_model, tmp_path, case):
    edit, message = CASES[case]
    with pytest.raises(ModelError, match=message):
        _load(edit(small_model), tmp_path)


def test_the_refusal_is_one_line_from_cgan_run_and_nothing_is_written(small_model, tmp_path):
    onnx.save_model(
        _with_output_through(small_model, "Mul", np.array([np.nan], np.float32)), tmp_path / "nan.onnx"
    )
    result = cgan_run("--digit", "3", "--model", "nan.onnx", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("Error: nan.onnx: its output holds NaN or infinite values")
    assert len(result.stderr.strip().splitlines()) == 1
    assert [path.name for path in tmp_path.iterdir()] == ["nan.onnx"]


def test_a_model_that_fails_its_trial_run_is_one_line_without_onnxruntimes_own_log(small_model, tmp_path):
    onnx.save_model(_with_metadata(small_model, num_classes="12"), tmp_path / "twelve.onnx")
    result = cgan_run("--digit", "3", "--model", "twelve.onnx", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("Error: twelve.onnx: onnxruntime fails on 1 images of digits 11")
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr  # no "[E:onnxruntime:..." line


def test_evaluate_refuses_a_model_whose_output_is_not_finite(small_model, tmp_path):
    from cgan_train.cli import cli

    onnx.save_model(
        _with_output_through(small_model, "Mul", np.array([np.nan], np.float32)), tmp_path / "nan.onnx"
    )
    result = CliRunner().invoke(
        cli,
        [
            "evaluate",
            str(tmp_path / "nan.onnx"),
            "--judges",
            str(REPO_ROOT / "models" / "judges.json"),
            "--data-dir",
            str(FIXTURE_DATA),
            "--json",
            str(tmp_path / "report.json"),
        ],
    )
    assert result.exit_code == 1
    assert "its output holds NaN or infinite values" in result.output
    assert not (tmp_path / "report.json").exists()


def test_an_output_that_turns_non_finite_mid_run_stops_it(monkeypatch):
    generator = DigitGenerator(device="cpu")
    real_run, calls = generator.session.run, []

    def nan_on_the_second_call(names, feeds, *run_options):
        calls.append(1)
        images = real_run(names, feeds, *run_options)
        return [images[0] * np.nan] if len(calls) == 2 else images

    monkeypatch.setattr(generator.session, "run", nan_on_the_second_call)
    with pytest.raises(ModelError, match="its output holds NaN or infinite values"):
        generator.sample(1, 3 * CHUNK_SIZE, seed=0)


def test_noise_that_is_not_finite_is_refused_as_the_callers_mistake():
    with pytest.raises(ValueError, match="noise must be finite"):
        DigitGenerator(device="cpu").generate(np.full((2, 100), np.inf, np.float32), np.array([1, 2]))
