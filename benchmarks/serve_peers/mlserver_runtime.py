"""The peer in make bench-serve: the bundled model served by MLServer (Seldon), as a user who picks
MLServer would serve it: a custom runtime around the same DigitGenerator (the same onnxruntime
session settings), MLServer's own adaptive batching (model-settings.json), JSON tensors (MLServer's
REST does not take the binary extension)."""

from __future__ import annotations

import asyncio

import numpy as np
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.errors import InferenceError
from mlserver.types import InferenceRequest, InferenceResponse

from cgan_runtime import DigitGenerator


class CganRuntime(MLModel):
    async def load(self) -> bool:
        self.generator = DigitGenerator(device="cpu", one_shot=True)
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        arrays = {tensor.name: NumpyCodec.decode_input(tensor) for tensor in payload.inputs}
        try:
            noise = np.asarray(arrays["z"], dtype=np.float32).reshape(-1, self.generator.info.latent_dim)
            labels = np.asarray(arrays["labels"], dtype=np.int64).reshape(-1)
        except (KeyError, ValueError) as error:
            raise InferenceError(f"bad request: {error}") from None
        # In a thread, so that MLServer's event loop reads the next requests meanwhile (onnxruntime
        # lets go of the GIL): its best throughput and tail latency here.
        images = await asyncio.to_thread(self.generator.generate, noise, labels)
        return InferenceResponse(
            model_name=self.name,
            model_version=self.version,
            id=payload.id,
            outputs=[NumpyCodec.encode_output("images", images)],
        )
