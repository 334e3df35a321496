"""Triton's python backend running the bundled model, for make bench-serve and the README snippet's
check against a real Triton: the only backend the Triton binary that nvidia-pytriton ships has (its
onnxruntime backend comes in NGC containers only). Triton itself checks the shapes, applies the
labels' reshape ([N, 1] -> [N]) and batches (the repository's config.pbtxt, `backend: "python"`)."""

import os
import sys

# The backend's stub embeds the system's Python and ignores PYTHONPATH: the venv's packages by hand.
sys.path.insert(0, os.environ["CGAN_SITE_PACKAGES"])

import numpy as np  # noqa: E402
import triton_python_backend_utils as pb_utils  # noqa: E402

from cgan_runtime import DigitGenerator  # noqa: E402


class TritonPythonModel:
    def initialize(self, args):
        path = os.path.join(args["model_repository"], args["model_version"], "model.onnx")
        self.generator = DigitGenerator(path, device="cpu", one_shot=True)

    def execute(self, requests):
        """Triton's dynamic batcher hands over several requests: one onnxruntime call for them all."""
        noise, labels = [], []
        for request in requests:
            noise.append(pb_utils.get_input_tensor_by_name(request, "z").as_numpy())
            labels.append(pb_utils.get_input_tensor_by_name(request, "labels").as_numpy().reshape(-1))
        images = self.generator.generate(np.concatenate(noise), np.concatenate(labels))
        responses, start = [], 0
        for part in noise:
            stop = start + len(part)
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("images", images[start:stop])]))
            start = stop
        return responses
