"""Self-describing checkpoints: the config travels with the weights, written atomically."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import torch

from cgan_runtime.files import atomic_path
from cgan_train.config import TrainConfig

FORMAT = "cgan-checkpoint-v1"


class CheckpointError(Exception):
    """A checkpoint is missing, unreadable, or not one of ours."""


def save_checkpoint(path: Path, state: dict) -> None:
    """Write a checkpoint dict (see Trainer.state) so that a crash leaves the previous file intact."""
    # Saved through a file object: given a path, torch names the archive's inner folder after
    # the (random) temporary file, and the same state would give different bytes each time.
    with atomic_path(path) as temporary, open(temporary, "wb") as handle:
        torch.save({"format": FORMAT, **state}, handle)


def load_checkpoint(path: Path) -> dict:
    """Load a checkpoint without running any code from it (weights_only=True)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(
            f"{path}: holds objects that safe loading (weights_only=True) refuses; not a cgan checkpoint"
        ) from error
    except (RuntimeError, zipfile.BadZipFile, EOFError, OSError) as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise CheckpointError(f"{path}: truncated or corrupt checkpoint ({reason})") from error
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a cgan checkpoint (expected format {FORMAT})")
    try:
        state["config"] = TrainConfig.from_dict(state["config"])
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: invalid model config ({error})") from error
    return state


def shipped_generator_weights(state: dict) -> dict:
    """The generator weights that ship: the moving average when the run kept one."""
    return state.get("generator_ema", state["generator"])


def generator_only(state: dict) -> dict:
    """The part of a training checkpoint that ships: config, generator weights, provenance."""
    keep = ("config", "epoch", "history", "provenance")
    shipped = {key: state[key] for key in keep}
    shipped["generator"] = shipped_generator_weights(state)
    shipped["config"] = shipped["config"].to_dict()
    return shipped
