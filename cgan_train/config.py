"""The one config object of a training run: its fields are the CLI flags and go into every checkpoint."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields


@dataclass(frozen=True)
class TrainConfig:
    # The network (see models.DESIGNS) and the shape of its interface.
    design: str = "mlp"
    latent_dim: int = 100
    num_classes: int = 10
    image_size: int = 28
    embed_dim: int = 10
    # The seed recipe: 50 epochs, batch 100, Adam 1e-4, binary cross-entropy.
    epochs: int = 50
    batch_size: int = 100
    lr: float = 1e-4
    beta1: float = 0.5
    beta2: float = 0.999
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("latent_dim", "num_classes", "image_size", "embed_dim", "epochs", "batch_size"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        known = {field.name for field in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown config fields: {', '.join(sorted(unknown))}")
        return cls(**values)
