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


class ConditionalBatchNorm2d(nn.Module):
    """Batch norm whose scale and shift are looked up per label (the generator's conditioning)."""

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.scale = nn.Embedding(num_classes, channels)
        self.shift = nn.Embedding(num_classes, channels)
        nn.init.ones_(self.scale.weight)
        nn.init.zeros_(self.shift.weight)

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        scale = self.scale(labels)[:, :, None, None]
        shift = self.shift(labels)[:, :, None, None]
        return self.norm(features) * scale + shift


class ConvGenerator(nn.Module):
    """z + label -> 7x7 features -> two stride-2 transposed convolutions -> tanh image.

    The label enters twice: embedded beside z, and as the scale and shift of every batch norm.
    """

    def __init__(self, latent_dim: int, num_classes: int, image_size: int, embed_dim: int, width: int = 64):
        super().__init__()
        if image_size % 4:
            raise ValueError(f"the conv design needs an image size divisible by 4, got {image_size}")
        self.start_size = image_size // 4
        self.start_channels = 2 * width
        self.label_embedding = nn.Embedding(num_classes, embed_dim)
        self.project = nn.Linear(latent_dim + embed_dim, self.start_channels * self.start_size**2, bias=False)
        self.norm_start = ConditionalBatchNorm2d(self.start_channels, num_classes)
        self.up_half = nn.ConvTranspose2d(self.start_channels, width, 4, stride=2, padding=1, bias=False)
        self.norm_half = ConditionalBatchNorm2d(width, num_classes)
        self.up_full = nn.ConvTranspose2d(width, 1, 4, stride=2, padding=1)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        features = self.project(torch.cat([z, self.label_embedding(labels)], dim=1))
        features = features.view(-1, self.start_channels, self.start_size, self.start_size)
        features = torch.relu(self.norm_start(features, labels))
        features = torch.relu(self.norm_half(self.up_half(features), labels))
        return torch.tanh(self.up_full(features))


class ProjectionDiscriminator(nn.Module):
    """Spectrally normalised convolutions; the label enters by projection (Miyato & Koyama 2018).

    Output = linear(h) + <embedding(label), h> for the image features h: one logit per image.
    With `classify`, a head on h also predicts the digit (the auxiliary classifier of AC-GAN,
    Odena et al. 2017), which the generator is then trained to satisfy.
    """

    def __init__(
        self, num_classes: int, image_size: int, embed_dim: int, width: int = 64, classify: bool = False
    ):
        super().__init__()
        sn = nn.utils.parametrizations.spectral_norm
        feature_size = (image_size // 4) ** 2 * 2 * width
        self.body = nn.Sequential(
            sn(nn.Conv2d(1, width, 4, stride=2, padding=1)),
            nn.LeakyReLU(0.1),
            sn(nn.Conv2d(width, 2 * width, 4, stride=2, padding=1)),
            nn.LeakyReLU(0.1),
            nn.Flatten(),
        )
        self.linear = sn(nn.Linear(feature_size, 1))
        self.label_projection = sn(nn.Embedding(num_classes, feature_size))
        self.classifier = nn.Linear(feature_size, num_classes) if classify else None

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.forward_with_classes(images, labels)[0]

    def forward_with_classes(
        self, images: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(real/fake logits [B], digit logits [B, num_classes] or None without a classifier)."""
        features = self.body(images)
        projection = (self.label_projection(labels) * features).sum(dim=1)
        logits = self.linear(features).squeeze(1) + projection
        return logits, self.classifier(features) if self.classifier is not None else None


DESIGNS = {
    "mlp": (MlpGenerator, MlpDiscriminator),
    "conv": (ConvGenerator, ProjectionDiscriminator),
}


def build_generator(config: TrainConfig) -> nn.Module:
    generator_class, _ = _design(config.design)
    return generator_class(config.latent_dim, config.num_classes, config.image_size, config.embed_dim)


def build_discriminator(config: TrainConfig) -> nn.Module:
    _, discriminator_class = _design(config.design)
    if config.class_loss_weight:
        if discriminator_class is not ProjectionDiscriminator:
            raise ValueError(
                f"the {config.design} design has no auxiliary classifier; use --class-loss-weight 0"
            )
        return discriminator_class(config.num_classes, config.image_size, config.embed_dim, classify=True)
    return discriminator_class(config.num_classes, config.image_size, config.embed_dim)


def _design(name: str) -> tuple[type[nn.Module], type[nn.Module]]:
    if name not in DESIGNS:
        raise ValueError(f"unknown model design {name!r}; choose from {', '.join(DESIGNS)}")
    return DESIGNS[name]
