"""The one config object of a training run: its fields are the CLI flags and go into every checkpoint."""

from __future__ import annotations

import math
import reprlib
from dataclasses import asdict, dataclass, fields

from cgan_runtime.noise import MAX_SEED

LOSSES = ("bce", "hinge")
DISCRIMINATORS = ("joint", "two-net")  # models.build_discriminator: one network, or two
AUGMENTATIONS = ("translation", "cutout")  # augment.py: DiffAugment's policies that suit digits
# Beyond this a width's weights alone take gigabytes (the generator's transposed convolution has
# 32 x width^2 of them), and the allocator's failure would be a traceback, not a refusal.
MAX_WIDTH = 1024
# Settings recorded only since a later version, with the value every run had before: a checkpoint
# without them resumes as it started.
BEFORE_RECORDED = {"dropout": 0.3}
# Settings added later, recorded only when they differ from these (their "off"; see to_dict).
RECORDED_WHEN_USED = {
    "r1_gamma": 0.0,
    "augment": "",
    "minibatch_std": 0,
    "mode_seeking_weight": 0.0,
    "twin_classifier": 0,
    "generator_width": 64,
    "discriminator_width": 64,
    "discriminator_lr_scale": 1.0,
    "centring_weight": 0.0,
    "extent_weight": 0.0,
}
# What a field's annotation admits in a checkpoint's config: (types, how to say it).
FIELD_KINDS = {
    "int": (int, "a whole number"),
    "float": ((int, float), "a finite number"),
    "str": (str, "a string"),
}


@dataclass(frozen=True)
class TrainConfig:
    # The network (see models.DESIGNS) and the shape of its interface.
    design: str = "mlp"
    latent_dim: int = 100
    num_classes: int = 10
    image_size: int = 28
    embed_dim: int = 10
    # The seed recipe: 50 epochs, batch 100, Adam 1e-4 with its default betas, binary
    # cross-entropy, dropout 0.4 in the (mlp) discriminator.
    epochs: int = 50
    batch_size: int = 100
    lr: float = 1e-4
    beta1: float = 0.9
    beta2: float = 0.999
    dropout: float = 0.4
    seed: int = 0
    # Beyond the seed recipe: the loss ("bce" or "hinge") and the decay of an exponential moving
    # average of the generator's weights (0 = none). With an average, it is what ships.
    loss: str = "bce"
    ema_decay: float = 0.0
    # The last lr_decay_epochs epochs lower the learning rate linearly towards zero (0 = constant).
    lr_decay_epochs: int = 0
    # Weight of the auxiliary digit-classification loss (AC-GAN); 0 = none. Conv design only.
    class_loss_weight: float = 0.0
    # Generated samples over which the moving average's batch-norm statistics are measured after
    # each epoch (with an average only): enough for stable statistics on MNIST; a small run on a
    # few hundred images can use far fewer.
    norm_stat_samples: int = 10_000
    # The discriminator: "joint" (one network on image and label) or "two-net" (a realness network
    # emitting an embedding, and a network judging whether embedding and label match; the match
    # score weighs match_weight in both networks' losses).
    discriminator: str = "joint"
    match_weight: float = 1.0
    # Weight of the wrong-label term: a real image paired with a wrong label must score low
    # (0 = none).
    mismatch_weight: float = 0.0
    # The discriminator's regularisers (docs/experiments.md: which were kept). r1_gamma: the R1
    # gradient penalty on real images, gamma/2 * E||grad D(x)||^2 (Mescheder et al. 2018; 0 = none).
    # augment: DiffAugment's policies, comma-separated from AUGMENTATIONS, applied alike to the real
    # and generated images the discriminator sees (Zhao et al. 2020; "" = none). minibatch_std: 1
    # gives the discriminator the batch's feature spread as an extra channel (Karras et al. 2018),
    # N >= 2 the spread within groups of N images (a divisor of the batch size).
    r1_gamma: float = 0.0
    augment: str = ""
    minibatch_std: int = 0
    # The generator's diversity term (mode seeking, Mao et al. 2019): two noises for one digit must
    # give images as far apart as the noises are; its weight (0 = none).
    mode_seeking_weight: float = 0.0
    # 1: a twin of the auxiliary classifier learns the digits of generated images, and the generator
    # is trained to make that twin fail as much as it makes the first one succeed (TAC-GAN, Gong et
    # al. 2019). The classifier term alone also rewards the most recognisable form of each digit;
    # the twin's term cancels that pull, leaving the label's. Weighted like the classifier's loss.
    twin_classifier: int = 0
    # The conv design's widths: the generator's channels at 14x14 (twice as many at 7x7), which
    # set the runtime's cost per image (`make bench`), and the discriminator's at 14x14, which
    # cost only training time.
    generator_width: int = 64
    discriminator_width: int = 64
    # The discriminator's learning rate as a multiple of lr (the two time-scale update rule, Heusel
    # et al. 2017), tried for variety: docs/experiments.md has what it moved.
    discriminator_lr_scale: float = 1.0
    # The weights of framing.py's penalty on generated digits whose centre of mass, or extent, falls
    # outside the range of the real training digits' (MNIST's own centring and box; 0 = none).
    centring_weight: float = 0.0
    extent_weight: float = 0.0

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if field.type == "float" and not is_finite_number(value):
                raise ValueError(f"{field.name} must be a finite number, got {reprlib.repr(value)}")
        for name in (
            "latent_dim",
            "num_classes",
            "image_size",
            "embed_dim",
            "epochs",
            "batch_size",
            "norm_stat_samples",
            "generator_width",
            "discriminator_width",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("lr", "discriminator_lr_scale"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        # Adam moves each weight by about the learning rate a step, and weights live near [-1, 1]:
        # a rate above 1 is a slip, and far above it the step overflows float32 inside the
        # optimiser, a traceback rather than a refusal.
        if max(self.lr, self.discriminator_lr) > 1:
            raise ValueError(
                f"the learning rates must be at most 1, got lr {self.lr} and the discriminator's "
                f"{self.discriminator_lr}"
            )
        for name in ("beta1", "beta2"):  # Adam's own range; torch refuses others without naming the file
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if not 0 <= self.seed <= MAX_SEED:
            raise ValueError(f"seed must be in 0-{MAX_SEED}, got {reprlib.repr(self.seed)}")
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {reprlib.repr(self.loss)}; choose from {', '.join(LOSSES)}")
        if self.lr_decay_epochs < 0:
            raise ValueError(f"lr_decay_epochs must not be negative, got {self.lr_decay_epochs}")
        if self.class_loss_weight < 0:
            raise ValueError(f"class_loss_weight must not be negative, got {self.class_loss_weight}")
        if self.discriminator not in DISCRIMINATORS:
            raise ValueError(
                f"unknown discriminator {reprlib.repr(self.discriminator)}; "
                f"choose from {', '.join(DISCRIMINATORS)}"
            )
        for name in ("match_weight", "mismatch_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")
        for name in ("mode_seeking_weight", "centring_weight", "extent_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")
        if self.r1_gamma < 0:
            raise ValueError(f"r1_gamma must not be negative, got {self.r1_gamma}")
        unknown = [name for name in self.augment.split(",") if name and name not in AUGMENTATIONS]
        if unknown:
            raise ValueError(
                f"unknown augmentation {reprlib.repr(unknown[0])}; choose from {', '.join(AUGMENTATIONS)}"
            )
        if self.minibatch_std < 0 or (self.minibatch_std > 1 and self.batch_size % self.minibatch_std):
            raise ValueError(
                f"minibatch_std must be 0, 1 (the whole batch) or a group size that divides the batch "
                f"size {self.batch_size}, got {self.minibatch_std}"
            )
        if self.minibatch_std and self.design != "conv":
            raise ValueError("minibatch_std is for the conv design's discriminator")
        if self.twin_classifier not in (0, 1):
            raise ValueError(f"twin_classifier must be 0 or 1, got {self.twin_classifier}")
        if self.twin_classifier and not (self.class_loss_weight > 0 and self.discriminator == "joint"):
            raise ValueError(
                "twin_classifier needs the joint discriminator's classifier (class_loss_weight above 0); "
                "without the classifier, turn the twin off too (--twin-classifier 0)"
            )
        widths = ("generator_width", "discriminator_width")
        for name in widths:
            if getattr(self, name) > MAX_WIDTH:
                raise ValueError(f"{name} must be at most {MAX_WIDTH}, got {getattr(self, name)}")
        if self.design != "conv" and any(getattr(self, name) != RECORDED_WHEN_USED[name] for name in widths):
            raise ValueError("the widths are the conv design's")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")

    @property
    def discriminator_lr(self) -> float:
        return self.lr * self.discriminator_lr_scale

    def framing_weights(self) -> tuple[float, float, float] | None:
        """framing.py's weights of (centre row, centre column, extent), or None with both off."""
        if not (self.centring_weight or self.extent_weight):
            return None
        return (self.centring_weight, self.centring_weight, self.extent_weight)

    def to_dict(self) -> dict:
        """The settings as recorded (checkpoints, the ONNX metadata, the model card): those added
        after models had shipped only when used, so that a run without them exports the same bytes
        as before they existed."""
        return {
            name: value
            for name, value in asdict(self).items()
            if not (name in RECORDED_WHEN_USED and value == RECORDED_WHEN_USED[name])
        }

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        """The config a checkpoint recorded; ValueError for unknown fields or values of the wrong type."""
        types = {field.name: field.type for field in fields(cls)}
        unknown = set(values) - set(types)
        if unknown:
            raise ValueError(f"unknown config fields: {', '.join(sorted(unknown))}")
        for name, value in values.items():
            kinds, description = FIELD_KINDS[types[name]]
            # bool is an int to Python, and an inf or NaN would pass every range check below.
            if (
                not isinstance(value, kinds)
                or isinstance(value, bool)
                or (isinstance(value, float) and not is_finite_number(value))
            ):
                raise ValueError(f"{name} is {reprlib.repr(value)}, not {description}")
        return cls(**{**BEFORE_RECORDED, **values})


def is_finite_number(value) -> bool:
    """An int or float (not a bool) that is neither infinite nor NaN: what a recorded figure must be."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond any float, such as 10**400 in a crafted file
        return False
