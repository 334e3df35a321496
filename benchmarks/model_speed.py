"""A candidate generator's speed per image against the bundled int8 model, in one run.

    python -m benchmarks.model_speed CANDIDATE.onnx [--against models/cgan_generator_int8.onnx]

The speed bar for a wider generator (docs/experiments.md): the bundled int8 model must stay at
least as fast per image as today's. Both models run through the runtime (DigitGenerator, CPU, its
default threads), measured in turn over several rounds (bench.interleaved_rates), so that the ratio
holds on a noisy machine even where the absolute figures do not.
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path

import numpy as np

from benchmarks.bench import INT8_MODEL, interleaved_rates
from cgan_runtime.generator import DigitGenerator, ModelError
from cgan_runtime.streams import print_or_exit

COUNTS = (16, 256)  # a request's worth, and a data set's chunk


def positive_seconds(text: str) -> float:
    seconds = float(text)
    if not seconds > 0:  # also NaN: no call would be timed, and the rate would divide by zero
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("candidate", type=Path)
    parser.add_argument("--against", type=Path, default=INT8_MODEL)
    parser.add_argument("--seconds", type=positive_seconds, default=10.0, help="measuring time per count")
    args = parser.parse_args()
    try:
        runtimes = {"candidate": DigitGenerator(args.candidate), "against": DigitGenerator(args.against)}
    except ModelError as error:
        sys.exit(f"model_speed: {error}")
    shapes = {name: (runtime.info.latent_dim, runtime.info.num_classes) for name, runtime in runtimes.items()}
    if shapes["candidate"] != shapes["against"]:
        sys.exit(f"model_speed: the models take different inputs (latent size, digits): {shapes}")
    print_or_exit(f"candidate {args.candidate}\nagainst   {args.against}", "nothing timed yet", "the table")
    for count in COUNTS:
        noise = np.random.default_rng(0).standard_normal(
            (count, runtimes["against"].info.latent_dim), np.float32
        )
        labels = np.arange(count) % 10
        rates = interleaved_rates(
            {name: (partial(runtime.generate, noise, labels), count) for name, runtime in runtimes.items()},
            args.seconds,
        )
        print_or_exit(
            f"{count:>4} images a call: candidate {1e6 / rates['candidate']:.1f} us/image, against "
            f"{1e6 / rates['against']:.1f} us/image: the candidate takes "
            f"{rates['against'] / rates['candidate']:.2f}x the time",
            f"timed {count} images a call",
            "its row",
        )


if __name__ == "__main__":
    main()
