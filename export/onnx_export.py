"""torch -> ONNX: trace the generator with a dynamic batch and stamp the interface into metadata."""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable

import onnx
import torch
from torch import nn

from cgan_export.inference_form import inference_form
from cgan_runtime.generator import IMAGES_OUTPUT, LABELS_INPUT, NOISE_INPUT
from cgan_train.config import TrainConfig

PRECISION_KEY = "precision"  # fp32 or int8: what the bundle step and the tests read

OPSET = 18  # run by onnxruntime 1.14 and newer
OUTPUT_RANGE = (-1.0, 1.0)  # the generators end in tanh


def export_generator(
    generator: nn.Module,
    config: TrainConfig,
    provenance: dict,
    form: Callable[[nn.Module], nn.Module] = inference_form,
) -> onnx.ModelProto:
    """The generator (in eval mode) as a self-contained ONNX model with cgan's metadata. What is
    traced is form(generator): its inference form (export/inference_form.py), the same function;
    `make bench` also traces the training form, to show what the inference form gains."""
    generator.eval()
    example_noise = torch.zeros(2, config.latent_dim)
    example_labels = torch.zeros(2, dtype=torch.long)
    batch = torch.export.Dim("batch", min=1)
    with warnings.catch_warnings():
        # The exporter warns that z and labels share the batch axis, which is the point.
        warnings.filterwarnings("ignore", message=".*shares the same shape constraints.*")
        program = torch.onnx.export(
            form(generator),
            (example_noise, example_labels),
            dynamo=True,
            verbose=False,
            input_names=[NOISE_INPUT, LABELS_INPUT],
            output_names=[IMAGES_OUTPUT],
            dynamic_shapes={"z": {0: batch}, "labels": {0: batch}},
            opset_version=OPSET,
            external_data=False,
        )
    model = program.model_proto
    _drop_debug_annotations(model.graph)
    onnx.helper.set_model_props(model, _metadata(generator, config, provenance))
    return model


def _drop_debug_annotations(graph: onnx.GraphProto) -> None:
    """Remove the exporter's per-node notes: their stack traces hold this machine's file paths,
    which would leak into the shipped file and make the same weights export to different bytes."""
    for item in (*graph.node, *graph.input, *graph.output, *graph.value_info):
        del item.metadata_props[:]


def _metadata(generator: nn.Module, config: TrainConfig, provenance: dict) -> dict[str, str]:
    return {
        "latent_dim": str(config.latent_dim),
        "num_classes": str(config.num_classes),
        "image_size": str(config.image_size),
        "output_range": json.dumps(list(OUTPUT_RANGE)),
        "model_version": model_version(generator, config.design, provenance["epochs_done"]),
        PRECISION_KEY: "fp32",
        "training_config": json.dumps(config.to_dict(), sort_keys=True),
        "training_epochs_done": str(provenance["epochs_done"]),
        "git_commit": provenance["git_commit"],
        "training_data_sha256": provenance["data_sha256"],
        "torch_version": provenance["torch_version"],
    }


def onnx_version(model: onnx.ModelProto) -> str:
    """The model_version an exported file carries in its metadata."""
    return next(prop.value for prop in model.metadata_props if prop.key == "model_version")


def model_version(generator: nn.Module, design: str, epochs_done: int) -> str:
    """Design, epochs and a digest of the weights: the same version means the same numbers."""
    digest = hashlib.sha256()
    for name, tensor in sorted(generator.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return f"{design}-e{epochs_done}-{digest.hexdigest()[:12]}"
