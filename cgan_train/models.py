"""The networks, selectable by name: each design is a generator and a discriminator."""

from __future__ import annotations

import torch
from torch import nn

from cgan_train.config import TrainConfig


class MlpGenerator(nn.Module):
    """Seed design: label embedding concatenated with z -> MLP -> tanh image."""

    def __init__(self, latent_dim: int, num_classes: int, image_size: int, embed_dim: int):
        super().__init__()
        self.image_size = image_size
        self.label_embedding = nn.Embedding(num_classes, embed_dim)
        self.net = nn.Sequential(
            nn.Linear(latent_dim + embed_dim, 256),
            nn.LeakyReLU(0.2),
            nn.Linear(256, 512),
            nn.LeakyReLU(0.2),
            nn.Linear(512, 1024),
            nn.LeakyReLU(0.2),
            nn.Linear(1024, image_size * image_size),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        features = torch.cat([z, self.label_embedding(labels)], dim=1)
        return self.net(features).view(-1, 1, self.image_size, self.image_size)


class MlpDiscriminator(nn.Module):
    """Seed design: flattened image concatenated with a label embedding -> MLP -> one logit."""

    def __init__(self, num_classes: int, image_size: int, embed_dim: int):
        super().__init__()
        self.label_embedding = nn.Embedding(num_classes, embed_dim)
        self.net = nn.Sequential(
            nn.Linear(image_size * image_size + embed_dim, 1024),
            nn.LeakyReLU(0.2),
            nn.Dropout(0.3),
            nn.Linear(1024, 512),
            nn.LeakyReLU(0.2),
            nn.Dropout(0.3),
            nn.Linear(512, 256),
            nn.LeakyReLU(0.2),
            nn.Dropout(0.3),
            nn.Linear(256, 1),
        )

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        features = torch.cat([images.flatten(1), self.label_embedding(labels)], dim=1)
        return self.net(features).squeeze(1)  # logits: BCE-with-logits is the stable form of BCE


DESIGNS = {"mlp": (MlpGenerator, MlpDiscriminator)}


def build_generator(config: TrainConfig) -> nn.Module:
    generator_class, _ = _design(config.design)
    return generator_class(config.latent_dim, config.num_classes, config.image_size, config.embed_dim)


def build_discriminator(config: TrainConfig) -> nn.Module:
    _, discriminator_class = _design(config.design)
    return discriminator_class(config.num_classes, config.image_size, config.embed_dim)


def _design(name: str) -> tuple[type[nn.Module], type[nn.Module]]:
    if name not in DESIGNS:
        raise ValueError(f"unknown model design {name!r}; choose from {', '.join(DESIGNS)}")
    return DESIGNS[name]
