"""The cold-start baseline: the job of `cgan-run --digit 5 --count 16`, done with PyTorch.

The minimal script a PyTorch user would write: load the torch checkpoint of the shipped
generator (models/cgan_generator.pt, the same weights as the ONNX file), sample, write the
same PNG grid. With --timings it prints where its time went, as JSON on stderr.

    python benchmarks/torch_sample.py models/cgan_generator.pt digits.png [--timings]
"""

import time

STARTED = time.perf_counter()

import json  # noqa: E402  (the imports are part of what is timed)
import sys  # noqa: E402

import torch  # noqa: E402
from PIL import Image  # noqa: E402

from cgan_runtime.images import default_nrow, tile, to_uint8  # noqa: E402  (numpy only)
from cgan_train.config import TrainConfig  # noqa: E402
from cgan_train.models import build_generator  # noqa: E402

IMPORTED = time.perf_counter()


def main(checkpoint: str, out_path: str, digit: int = 5, count: int = 16, seed: int = 0) -> dict:
    """Sample and write the grid; returns seconds per phase."""
    started = time.perf_counter()
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    config = TrainConfig.from_dict(state["config"])
    generator = build_generator(config)
    generator.load_state_dict(state["generator"])
    generator.eval()
    loaded = time.perf_counter()
    torch.manual_seed(seed)
    with torch.inference_mode():
        images = generator(torch.randn(count, config.latent_dim), torch.full((count,), digit))
    sampled = time.perf_counter()
    grid = tile(to_uint8(images.numpy(), (-1.0, 1.0)), default_nrow(count))
    Image.fromarray(grid).save(out_path, format="PNG")
    written = time.perf_counter()
    return {
        "imports": IMPORTED - STARTED,
        "load model": loaded - started,
        "inference": sampled - loaded,
        "PNG": written - sampled,
    }


if __name__ == "__main__":
    phases = main(sys.argv[1], sys.argv[2])
    if "--timings" in sys.argv:
        print(json.dumps(phases), file=sys.stderr)
