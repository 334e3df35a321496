"""The export chain: checkpoint -> ONNX -> checked -> parity-proven -> models/, written as one set.

Nothing the set holds depends on the machine that made it: the same weights give the same files
byte for byte on any CPU (export/inference_form.py folds in float64, export/quantize.py calibrates
in float64, the grid is drawn in float64), so re-exporting a shipped model changes no file.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from cgan_export.file_set import publish_set
from cgan_export.float64_reference import Float64Reference
from cgan_export.model_card import model_card
from cgan_export.onnx_export import OUTPUT_RANGE, export_generator, onnx_version
from cgan_export.quantize import quantize_int8
from cgan_export.verify import check_int8_agreement, check_model, check_parity
from cgan_runtime.generator import IMAGES_OUTPUT, LABELS_INPUT, NOISE_INPUT
from cgan_runtime.images import tile, to_uint8
from cgan_train.checkpoint import (
    CheckpointError,
    checkpoint_bytes,
    generator_only,
    load_checkpoint,
    shipped_generator,
)
from cgan_train.train import GRID_COLUMNS  # one grid layout: the training grids' and the card's

ONNX_NAME = "cgan_generator.onnx"  # fp32, proven equal to torch
INT8_NAME = "cgan_generator_int8.onnx"  # the int8 model: bundled once it clears its bar
TORCH_NAME = "cgan_generator.pt"  # the same generator for torch users: config + weights
CARD_NAME = "MODEL_CARD.md"
GRID_NAME = "sample_grid.png"


@dataclass(frozen=True)
class Shipped:
    onnx_path: Path
    int8_path: Path
    parity: dict[int, float]
    int8_agreement: dict[str, float]
    model_version: str
    changed: list[str]  # the files of the set that were written; the others already held the same


def ship(checkpoint_path: Path, out_dir: Path) -> Shipped:
    """Export the checkpoint's generator into out_dir, only once every check has passed."""
    state = load_checkpoint(checkpoint_path)
    config = state["config"]
    if state["epoch"] < config.epochs:
        raise CheckpointError(
            f"{checkpoint_path}: training stopped at epoch {state['epoch']} of {config.epochs}; "
            "finish it with cgan-train train --resume before exporting"
        )
    generator = shipped_generator(state)  # load_checkpoint has checked that the weights fit
    provenance = {**state["provenance"], "epochs_done": state["epoch"]}
    model = export_generator(generator, config, provenance)
    check_model(model)
    parity = check_parity(generator, model, config.latent_dim, config.num_classes)
    int8 = quantize_int8(model)
    check_model(int8)
    agreement = check_int8_agreement(model, int8, config.latent_dim, config.num_classes)

    contents = {
        ONNX_NAME: model.SerializeToString(),  # the bytes onnx.save_model writes
        INT8_NAME: int8.SerializeToString(),
        GRID_NAME: _png(sample_grid(model, config.latent_dim, config.num_classes)),
        CARD_NAME: model_card(state, (ONNX_NAME, model), (INT8_NAME, int8), out_dir).encode(),
    }
    if Path(checkpoint_path).resolve() != (out_dir / TORCH_NAME).resolve():
        contents[TORCH_NAME] = checkpoint_bytes(generator_only(state))
    # Pillow and zlib versions encode the same pixels to other bytes: a grid is as good as its pixels.
    changed = publish_set(out_dir, contents, equivalent={GRID_NAME: _same_pixels})
    return Shipped(
        onnx_path=out_dir / ONNX_NAME,
        int8_path=out_dir / INT8_NAME,
        parity=parity,
        int8_agreement=agreement,
        model_version=onnx_version(model),
        changed=changed,
    )


def sample_grid(model: onnx.ModelProto, latent_dim: int, num_classes: int) -> np.ndarray:
    """One row per digit, with the noise the runtime draws for seed = digit, from the fp32 export
    evaluated in float64: the same pixels on every machine."""
    reference = Float64Reference(model)
    rows = []
    for digit in range(num_classes):
        noise = np.random.default_rng(digit).standard_normal((GRID_COLUMNS, latent_dim), dtype=np.float32)
        labels = np.full(GRID_COLUMNS, digit, dtype=np.int64)
        images = reference.run({NOISE_INPUT: noise, LABELS_INPUT: labels}, [IMAGES_OUTPUT])[IMAGES_OUTPUT]
        rows.append(to_uint8(images, OUTPUT_RANGE))
    return tile(np.concatenate(rows), nrow=GRID_COLUMNS)


def _png(picture: np.ndarray) -> bytes:
    from PIL import Image

    encoded = io.BytesIO()
    Image.fromarray(picture).save(encoded, format="PNG")
    return encoded.getvalue()


def _same_pixels(old: bytes, new: bytes) -> bool:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(old)) as before, Image.open(io.BytesIO(new)) as after:
            return before.mode == after.mode and np.array_equal(np.asarray(before), np.asarray(after))
    except (OSError, UnidentifiedImageError, ValueError):
        return False
