"""Self-describing checkpoints: the config travels with the weights, written atomically, and checked
piece by piece when read back, so that a corrupt or hand-edited file is one clear error."""

from __future__ import annotations

import io
import reprlib
from pathlib import Path

import torch

from cgan_runtime.files import atomic_path
from cgan_train.config import TrainConfig, is_finite_number
from cgan_train.models import build_discriminator, build_generator
from cgan_train.torch_files import UnreadableTorchFile, load_verified

FORMAT = "cgan-checkpoint-v1"
# What every checkpoint holds (a training run's, and the generator-only one that ships), and what
# only a training run's holds: the part that resumes it.
SHIPPED_KEYS = ("config", "epoch", "history", "provenance", "generator")
TRAINING_KEYS = ("discriminator", "opt_generator", "opt_discriminator", "rng")
PROVENANCE_KEYS = ("data_sha256", "git_commit", "torch_version")
HISTORY_KEYS = ("d_loss", "g_loss", "d_real", "d_fake", "seconds")
KIND_NAMES = {dict: "a dictionary", list: "a list", int: "a whole number"}


class CheckpointError(Exception):
    """A checkpoint is missing, unreadable, or not one of ours."""


def save_checkpoint(path: Path, state: dict) -> None:
    """Write a checkpoint dict (see Trainer.state) so that a crash leaves the previous file intact."""
    with atomic_path(path) as temporary:
        temporary.write_bytes(checkpoint_bytes(state))


def checkpoint_bytes(state: dict) -> bytes:
    """The checkpoint file of a state: the same state gives the same bytes."""
    # Saved through a file object: given a path, torch names the archive's inner folder after
    # the file, and a temporary file's random name would make the bytes differ each time.
    encoded = io.BytesIO()
    torch.save({"format": FORMAT, **state}, encoded)
    return encoded.getvalue()


def load_checkpoint(path: Path, for_training: bool = False) -> dict:
    """Load and check a checkpoint (no code from it runs); for_training: it must also hold what
    resuming needs (the discriminator, optimisers and random state)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        state = load_verified(path)
    except UnreadableTorchFile as error:
        raise CheckpointError(f"{path}: {error}; not a usable checkpoint") from error
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a cgan checkpoint (expected format {FORMAT})")
    try:
        _check_contents(state, for_training)
    except (KeyError, TypeError, ValueError) as error:
        reason = error.args[0] if error.args else type(error).__name__
        raise CheckpointError(f"{path}: {reason}; not a checkpoint as this code writes them") from error
    return state


def shipped_generator(state: dict) -> torch.nn.Module:
    """The generator that ships from a loaded checkpoint (its moving average, if it keeps one), in
    eval mode: what the export traces, the benchmarks time and the tests compare with."""
    generator = build_generator(state["config"])
    generator.load_state_dict(shipped_generator_weights(state))
    return generator.eval()


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


def _check_contents(state: dict, for_training: bool) -> None:
    """Every piece present and of its type, the weights finite and of the shapes the config's design
    has; state["config"] becomes a TrainConfig. KeyError, TypeError or ValueError say what is wrong."""
    required = SHIPPED_KEYS + (TRAINING_KEYS if for_training else ())
    missing = [key for key in required if key not in state]
    if missing:
        if for_training and not set(TRAINING_KEYS) - set(missing):
            raise KeyError(
                "holds a generator only (no discriminator, optimisers or random state), so "
                "training cannot resume from it"
            )
        raise KeyError(f"lacks {', '.join(missing)}")
    config = state["config"] = TrainConfig.from_dict(_of_type(state, "config", dict))
    epoch = _of_type(state, "epoch", int)
    if not 0 <= epoch <= config.epochs:
        raise ValueError(f"epoch is {epoch!r}, not a whole number in 0-{config.epochs}")
    history = _of_type(state, "history", list)
    if len(history) != epoch:
        raise ValueError(f"history has {len(history)} epochs, the checkpoint says {epoch}")
    for entry in history:
        if not isinstance(entry, dict) or not all(is_finite_number(entry.get(key)) for key in HISTORY_KEYS):
            raise ValueError(
                f"a history entry is {reprlib.repr(entry)}, not the losses and seconds of an epoch"
            )
    provenance = _of_type(state, "provenance", dict)
    if not all(isinstance(provenance.get(key), str) for key in PROVENANCE_KEYS):
        raise ValueError(
            f"provenance {reprlib.repr(provenance)} lacks one of {', '.join(PROVENANCE_KEYS)} as text"
        )
    networks = {"generator": build_generator}
    if "generator_ema" in state or (for_training and config.ema_decay):
        networks["generator_ema"] = build_generator
    if "discriminator" in state or for_training:
        networks["discriminator"] = build_discriminator
    for name, build in networks.items():
        _check_weights(name, _of_type(state, name, dict), build, config)
    if for_training:
        _check_training_state(state)


def _check_training_state(state: dict) -> None:
    """The optimisers, the random state and a part-done epoch are what they were saved as (their
    fit with the networks is load_state_dict's to check)."""
    for name in ("opt_generator", "opt_discriminator"):
        optimiser = _of_type(state, name, dict)
        if not (isinstance(optimiser.get("state"), dict) and isinstance(optimiser.get("param_groups"), list)):
            raise ValueError(f"{name} is not an optimiser's state")
    rng = _of_type(state, "rng", dict)
    generator_state = rng.get("torch")
    if (
        not isinstance(generator_state, torch.Tensor)
        or generator_state.dtype != torch.uint8
        or not isinstance(rng.get("cuda"), list)
    ):
        raise ValueError("rng is not a random state torch saved")
    if "epoch_progress" in state:
        progress = _of_type(state, "epoch_progress", dict)
        order, step, totals = progress.get("order"), progress.get("step"), progress.get("totals")
        is_order = (
            isinstance(order, torch.Tensor)
            and order.dtype == torch.int64
            and order.dim() == 1
            and torch.equal(order.sort().values, torch.arange(len(order)))
        )
        if (
            not is_order
            or not isinstance(step, int)
            or isinstance(step, bool)
            or step < 1
            or not isinstance(totals, torch.Tensor)
            or totals.shape != (4,)
            or not torch.isfinite(totals).all()
            or not is_finite_number(progress.get("seconds"))
        ):
            raise ValueError("epoch_progress is not a part-done epoch this code saved")


def _check_weights(name: str, weights: dict, build, config: TrainConfig) -> None:
    """The weights are finite tensors of exactly the names and shapes the config's network has,
    checked against a network built on the meta device (nothing allocated, whatever the config says)."""
    with torch.device("meta"):
        expected = {key: tensor.shape for key, tensor in build(config).state_dict().items()}
    if set(weights) != set(expected) or any(
        not isinstance(tensor, torch.Tensor) or tensor.shape != expected[key]
        for key, tensor in weights.items()
    ):
        raise ValueError(f"the {name} weights do not fit the {config.design} design of its config")
    for key, tensor in weights.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise ValueError(f"{name} weight {key} holds NaN or Inf")


def _of_type(state: dict, key: str, kind: type):
    if key not in state:
        raise KeyError(f"lacks {key}")
    value = state[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        shown = repr(value) if isinstance(value, (str, int, float)) else type(value).__name__
        raise TypeError(f"{key} is {shown}, not {KIND_NAMES[kind]}")
    return value
