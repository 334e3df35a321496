"""cgan_runtime: handwritten digits on demand from a cgan ONNX model, through onnxruntime (no torch).

from cgan_runtime import DigitGenerator
images = DigitGenerator().sample(digit=5, count=16, seed=0)  # uint8 [16, image_size, image_size]
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cgan_runtime.generator import DigitGenerator, ModelError, ModelInfo
    from cgan_runtime.providers import DeviceError

__all__ = ["DeviceError", "DigitGenerator", "ModelError", "ModelInfo", "__version__"]
DISTRIBUTION = "cgan-runtime"


def __getattr__(name: str):
    # Lazy: importing the package (for example for its image helpers) does not load onnxruntime.
    if name in ("DigitGenerator", "ModelError", "ModelInfo"):
        from cgan_runtime import generator

        return getattr(generator, name)
    if name == "__version__":  # from the installed distribution's metadata: one place for the number
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version(DISTRIBUTION)
        except PackageNotFoundError:
            return "unknown"
    if name == "DeviceError":
        from cgan_runtime.providers import DeviceError

        return DeviceError
    raise AttributeError(f"module 'cgan_runtime' has no attribute {name!r}")
