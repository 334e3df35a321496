"""Named training recipes: `cgan-train train --recipe NAME`, each flag overriding one value.

The recipe a run started from is recorded in its checkpoint's provenance.
"""

from __future__ import annotations

from dataclasses import fields

from cgan_train.config import TrainConfig

DESIGN_NAMES = ("mlp", "conv")  # models.DESIGNS, named here so that the CLI needs no torch to list them

RECIPES: dict[str, dict] = {
    # The model we ship: conv generator, projection discriminator with spectral norm, hinge loss
    # plus the auxiliary classifier (weighted 0.25) and its twin (TAC-GAN), the moving average of
    # the generator exported, the learning rate decaying linearly over the last 116 of 180 epochs
    # (docs/experiments.md: how it was found; 45 epochs without the twin came before it).
    "shipped": {
        "design": "conv",
        "loss": "hinge",
        "class_loss_weight": 0.25,  # at 1.0, fewer kinds of hand (docs/experiments.md)
        "twin_classifier": 1,  # more kinds of hand per digit on every instrument (docs/experiments.md)
        "ema_decay": 0.999,
        "epochs": 180,
        "lr_decay_epochs": 116,
        "batch_size": 64,
        "lr": 2e-4,
        "beta1": 0.5,
        "beta2": 0.999,
    },
    # The seed tutorial's design and recipe, the baseline: an MLP pair, BCE on the discriminator's
    # sigmoid output, Adam(lr 1e-4) with its default betas, dropout 0.4, batch 100, 50 epochs.
    "seed": {
        "design": "mlp",
        "loss": "bce",
        "class_loss_weight": 0.0,
        "ema_decay": 0.0,
        "epochs": 50,
        "lr_decay_epochs": 0,
        "batch_size": 100,
        "lr": 1e-4,
        "beta1": 0.9,
        "beta2": 0.999,
        "dropout": 0.4,
    },
}
DEFAULT_RECIPE = "shipped"


def recipe_settings(name: str, overrides: dict) -> dict:
    """The recipe's settings with the given values in place of its own."""
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; choose from {', '.join(RECIPES)}")
    unknown = set(overrides) - {field.name for field in fields(TrainConfig)}
    if unknown:
        raise ValueError(f"not a recipe setting: {', '.join(sorted(unknown))}")
    return {**RECIPES[name], **overrides}
