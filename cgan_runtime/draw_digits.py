"""cgan-run --digit: COUNT images of one digit, as a PNG grid (one image: the bare digit) or npy."""

from __future__ import annotations

from pathlib import Path

import click

from cgan_runtime.cli_output import check_size, check_target, load_generator, output_target, publish

PROGRESS_DELAY_SECONDS = 1.0  # shorter runs show no bar


def draw_digits(
    digit: int,
    count: int,
    seed: int | None,
    out_name: str | None,
    force: bool,
    nrow: int | None,
    output_format: str | None,
    invert: bool,
    model_path: Path | None,
    device: str,
) -> None:
    import numpy as np

    from cgan_runtime.generator import CHUNK_SIZE
    from cgan_runtime.images import default_nrow, digits_picture, inverted, write_npy, write_png
    from cgan_runtime.output_checks import check_output_size

    out_path, output_format = output_target(out_name, output_format, f"digits_{digit}")
    nrow = nrow or default_nrow(count)
    check_target(out_path, force)
    generator = load_generator(model_path, device, one_shot=count <= CHUNK_SIZE)
    last_digit = generator.info.num_classes - 1
    if not 0 <= digit <= last_digit:
        raise click.BadParameter(f"{digit} is not a digit in 0-{last_digit}", param_hint="--digit")
    size = generator.info.image_size
    check_size(lambda: check_output_size(count, size, output_format, nrow, out_path.parent), "--count")
    chunks = generator.sample_chunks(digit, count, seed)
    if count > CHUNK_SIZE:  # one chunk is too quick for a bar, and tqdm's import is not free
        chunks = _with_progress(chunks, count)
    if output_format == "npy":
        if invert:
            chunks = (inverted(chunk) for chunk in chunks)
        publish(out_path, lambda: write_npy(out_path, chunks, count, (size, size), replace=force))
    else:

        def write() -> None:
            write_png(out_path, digits_picture(np.concatenate(list(chunks)), nrow, invert), replace=force)

        publish(out_path, write)


def _with_progress(chunks, count: int):
    """chunks, with a progress bar on stderr once the run has taken more than a second."""
    from tqdm import tqdm

    from cgan_runtime.streams import stderr

    with tqdm(
        total=count,
        unit="img",
        delay=PROGRESS_DELAY_SECONDS,
        mininterval=1.0,
        leave=False,
        file=stderr(),
        dynamic_ncols=True,
    ) as bar:
        for chunk in chunks:
            yield chunk
            bar.update(len(chunk))
