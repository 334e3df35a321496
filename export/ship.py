"""The export chain: checkpoint -> ONNX -> checked -> parity-proven -> models/ (nothing written before)."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from cgan_runtime.files import atomic_path
from cgan_runtime.generator import DigitGenerator
from cgan_runtime.images import tile, write_png
from cgan_train.checkpoint import (
    CheckpointError,
    generator_only,
    load_checkpoint,
    save_checkpoint,
    shipped_generator_weights,
)
from cgan_train.models import build_generator
from export.model_card import write_model_card
from export.onnx_export import export_generator, onnx_version
from export.quantize import quantize_int8
from export.verify import ExportVerificationError, check_int8_agreement, check_model, check_parity

ONNX_NAME = "cgan_generator.onnx"  # fp32, proven equal to torch
INT8_NAME = "cgan_generator_int8.onnx"  # its int8 form: the runtime's bundled model
TORCH_NAME = "cgan_generator.pt"  # the same generator for torch users: config + weights
CARD_NAME = "MODEL_CARD.md"
GRID_NAME = "sample_grid.png"
GRID_COLUMNS = 10


@dataclass(frozen=True)
class Shipped:
    onnx_path: Path
    int8_path: Path
    parity: dict[int, float]
    int8_agreement: dict[str, float]
    model_version: str


def ship(checkpoint_path: Path, out_dir: Path) -> Shipped:
    """Export the checkpoint's generator into out_dir, only once every check has passed."""
    state = load_checkpoint(checkpoint_path)
    config = state["config"]
    if state["epoch"] < config.epochs:
        raise CheckpointError(
            f"{checkpoint_path}: training stopped at epoch {state['epoch']} of {config.epochs}; "
            "finish it with cgan-train train --resume before exporting")
    generator = _restore_generator(state, checkpoint_path)
    provenance = {**state["provenance"], "epochs_done": state["epoch"]}
    model = export_generator(generator, config, provenance)
    check_model(model)
    parity = check_parity(generator, model, config.latent_dim, config.num_classes)
    int8 = quantize_int8(model)
    check_model(int8)
    agreement = check_int8_agreement(model, int8, config.latent_dim, config.num_classes)

    with tempfile.TemporaryDirectory() as folder:  # the grid too is drawn before anything is written
        onnx.save_model(int8, Path(folder) / INT8_NAME)
        grid = sample_grid(Path(folder) / INT8_NAME, config.num_classes)

    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path, int8_path = out_dir / ONNX_NAME, out_dir / INT8_NAME
    for path, proto in ((onnx_path, model), (int8_path, int8)):
        with atomic_path(path) as temporary:
            onnx.save_model(proto, temporary)
    torch_path = out_dir / TORCH_NAME
    if Path(checkpoint_path).resolve() != torch_path.resolve():
        save_checkpoint(torch_path, generator_only(state))
    write_png(out_dir / GRID_NAME, grid)
    write_model_card(out_dir / CARD_NAME, state, parity, agreement, (ONNX_NAME, model), (INT8_NAME, int8))
    return Shipped(onnx_path=onnx_path, int8_path=int8_path, parity=parity, int8_agreement=agreement,
                   model_version=onnx_version(model))


def sample_grid(onnx_path: Path, num_classes: int):
    """One row per digit, drawn from an exported file through the runtime (seed = digit)."""
    generator = DigitGenerator(onnx_path, device="cpu")
    rows = [generator.sample(digit, GRID_COLUMNS, seed=digit) for digit in range(num_classes)]
    return tile(np.concatenate(rows), nrow=GRID_COLUMNS)



def _restore_generator(state: dict, checkpoint_path: Path) -> nn.Module:
    generator = build_generator(state["config"])
    try:
        generator.load_state_dict(shipped_generator_weights(state))
    except RuntimeError as error:
        raise CheckpointError(
            f"{checkpoint_path}: weights do not fit the {state['config'].design} design of its config"
        ) from error
    for name, tensor in generator.state_dict().items():
        if not torch.isfinite(tensor).all():
            raise ExportVerificationError(f"{checkpoint_path}: weight {name} holds NaN or Inf")
    return generator.eval()
