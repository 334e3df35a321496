"""The runtime library: everything comes from the model's metadata, and torch is never imported."""

import os
import subprocess
import sys
from dataclasses import replace

import numpy as np
import onnx
import onnxruntime
import pytest

from cgan_runtime import DeviceError, DigitGenerator, ModelError
from cgan_runtime.generator import default_model_path
from cgan_runtime.providers import physical_cores
from cgan_train.config import TrainConfig
from tests.conftest import BUNDLED_MODEL, export_untrained


def test_bundled_model_is_the_shipped_model():
    assert default_model_path().read_bytes() == BUNDLED_MODEL.read_bytes()


def test_sample_gives_uint8_images_of_the_model_size():
    images = DigitGenerator(device="cpu").sample(digit=5, count=6, seed=0)
    assert images.shape == (6, 28, 28) and images.dtype == np.uint8
    assert np.array_equal(images, DigitGenerator(device="cpu").sample(5, 6, seed=0))


def test_shape_and_latent_size_come_from_the_metadata(tmp_path):
    config = replace(TrainConfig(), latent_dim=12, num_classes=4, image_size=14)
    export_untrained(config, tmp_path / "small.onnx")
    generator = DigitGenerator(tmp_path / "small.onnx", device="cpu")
    assert (generator.info.latent_dim, generator.info.num_classes, generator.info.image_size) == (12, 4, 14)
    assert generator.sample(digit=3, count=2, seed=1).shape == (2, 14, 14)
    with pytest.raises(ValueError, match="in 0-3, got 4"):
        generator.sample(digit=4, count=1)


def test_negative_labels_never_reach_onnxruntime():
    generator = DigitGenerator(device="cpu")
    with pytest.raises(ValueError, match="in 0-9, got -1"):
        generator.sample(digit=-1, count=1)
    with pytest.raises(ValueError, match="digits must be in 0-9"):
        generator.generate(np.zeros((2, 100), np.float32), np.array([3, -1]))


def test_model_without_the_interface_is_refused_naming_the_interface(tmp_path):
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["x"], ["y"])],
        "other",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 4])],
    )
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 18)])
    onnx.helper.set_model_props(
        model,
        {
            "latent_dim": "4",
            "num_classes": "10",
            "image_size": "28",
            "output_range": "[-1, 1]",
            "model_version": "x",
        },
    )
    onnx.save_model(model, tmp_path / "other.onnx")
    with pytest.raises(ModelError, match="z is missing; expected a cgan generator: inputs z float32"):
        DigitGenerator(tmp_path / "other.onnx", device="cpu")


def test_model_without_metadata_is_refused(tmp_path):
    model = onnx.load(str(BUNDLED_MODEL))
    del model.metadata_props[:]
    onnx.save_model(model, tmp_path / "bare.onnx")
    with pytest.raises(ModelError, match="metadata lacks latent_dim, num_classes"):
        DigitGenerator(tmp_path / "bare.onnx", device="cpu")


def test_cpu_device_really_runs_on_the_cpu():
    assert DigitGenerator(device="cpu").providers == ["CPUExecutionProvider"]


@pytest.mark.skipif(
    "CUDAExecutionProvider" in onnxruntime.get_available_providers(),
    reason="this onnxruntime has a CUDA provider",
)
def test_cuda_without_a_cuda_provider_is_a_clear_error():
    with pytest.raises(DeviceError, match="no CUDA provider; replace it with onnxruntime-gpu"):
        DigitGenerator(device="cuda")


@pytest.mark.skipif(
    "CUDAExecutionProvider" in onnxruntime.get_available_providers(),
    reason="this onnxruntime has a CUDA provider",
)
def test_auto_device_falls_back_to_the_cpu():
    assert DigitGenerator(device="auto").providers == ["CPUExecutionProvider"]


def test_the_runtime_never_imports_torch(tmp_path):
    program = (
        "import sys\n"
        "import cgan_runtime.cli, cgan_runtime.dataset_cli, cgan_runtime.draw_digits\n"
        "import cgan_runtime.draw_text\n"
        "from cgan_runtime import DigitGenerator\n"
        "from cgan_runtime.datasets import write_dataset\n"
        "generator = DigitGenerator(device='cpu')\n"
        "generator.sample(1, 2, seed=0), generator.text('12', style=0)\n"
        f"write_dataset(generator, {str(tmp_path / 'set.npz')!r}, 'npz', per_digit=1, seed=0)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision', 'cgan_train')))\n"
    )
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_the_session_uses_one_thread_per_physical_core():
    cores = physical_cores()
    assert 1 <= cores <= len(os.sched_getaffinity(0))
    options = DigitGenerator(device="cpu").session.get_session_options()
    assert options.intra_op_num_threads == cores


def test_a_one_shot_session_does_not_spin():
    options = DigitGenerator(device="cpu", one_shot=True).session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
