"""The networks, selectable by name: each design is a generator and a discriminator."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from cgan_train.config import TrainConfig


class Judgement(NamedTuple):
    """What a discriminator says of a batch of (image, label) pairs.

    score: the logits the adversarial loss reads, [B]; for the two-network design the realness
    network's, which never sees the label. match: the match network's logits, [B], whether the
    image's embedding and the label agree (two-network design only). classes: the auxiliary
    classifier's digit logits [B, num_classes], or None. twin: the twin classifier's digit logits
    [B, num_classes] (it learns the digits of generated images: TAC-GAN), or None.
    """

    score: torch.Tensor
    match: torch.Tensor | None
    classes: torch.Tensor | None
    twin: torch.Tensor | None = None


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

    def __init__(self, num_classes: int, image_size: int, embed_dim: int, dropout: float):
        super().__init__()
        self.label_embedding = nn.Embedding(num_classes, embed_dim)
        self.net = nn.Sequential(
            *_mlp_layers(image_size * image_size + embed_dim, dropout), nn.Linear(MLP_FEATURES, 1)
        )

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        features = torch.cat([images.flatten(1), self.label_embedding(labels)], dim=1)
        return self.net(features).squeeze(1)  # logits: BCE-with-logits is the stable form of BCE

    def judge(self, images: torch.Tensor, labels: torch.Tensor) -> Judgement:
        return Judgement(self(images, labels), None, None)


MLP_FEATURES = 256  # the width of the seed discriminator's last hidden layer


def _mlp_layers(inputs: int, dropout: float) -> list[nn.Module]:
    """The seed discriminator's hidden layers: 1024 -> 512 -> 256, LeakyReLU(0.2) and dropout."""
    layers: list[nn.Module] = []
    for width_in, width_out in ((inputs, 1024), (1024, 512), (512, MLP_FEATURES)):
        layers += [nn.Linear(width_in, width_out), nn.LeakyReLU(0.2), nn.Dropout(dropout)]
    return layers


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
        self,
        num_classes: int,
        image_size: int,
        embed_dim: int,
        width: int = 64,
        classify: bool = False,
        minibatch_std: int = 0,
        twin_classifier: bool = False,
    ):
        super().__init__()
        sn = nn.utils.parametrizations.spectral_norm
        feature_size = _conv_feature_size(image_size, width, minibatch_std)
        self.body = _conv_layers(width, minibatch_std)
        self.linear = sn(nn.Linear(feature_size, 1))
        self.label_projection = sn(nn.Embedding(num_classes, feature_size))
        self.classifier = nn.Linear(feature_size, num_classes) if classify else None
        self.twin = nn.Linear(feature_size, num_classes) if twin_classifier else None

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.judge(images, labels).score

    def judge(self, images: torch.Tensor, labels: torch.Tensor) -> Judgement:
        """The real/fake logits [B], and the digit logits [B, num_classes] with a classifier."""
        features = self.body(images)
        projection = (self.label_projection(labels) * features).sum(dim=1)
        logits = self.linear(features).squeeze(1) + projection
        classes = self.classifier(features) if self.classifier is not None else None
        twin = self.twin(features) if self.twin is not None else None
        return Judgement(logits, None, classes, twin)


def _conv_feature_size(image_size: int, width: int, minibatch_std: int = 0) -> int:
    return (image_size // 4) ** 2 * (2 * width + int(minibatch_std > 0))


def _conv_layers(width: int, minibatch_std: int = 0) -> nn.Sequential:
    """The conv discriminator's body: two spectrally normalised stride-2 convolutions, flattened
    (with minibatch_std, the spread of the batch (1) or of groups of N images (N) as one more
    channel before flattening)."""
    sn = nn.utils.parametrizations.spectral_norm
    return nn.Sequential(
        sn(nn.Conv2d(1, width, 4, stride=2, padding=1)),
        nn.LeakyReLU(0.1),
        sn(nn.Conv2d(width, 2 * width, 4, stride=2, padding=1)),
        nn.LeakyReLU(0.1),
        *([MinibatchStd(minibatch_std)] if minibatch_std else []),
        nn.Flatten(),
    )


class MinibatchStd(nn.Module):
    """Appends one channel holding the mean standard deviation of every feature over a group of
    images: a group of look-alike fakes scores differently from a varied real one, so the generator
    pays for collapsing (Karras et al. 2018). group_size 1: the whole batch is one group (a group
    of one image has no spread), a single figure for all of it; N: groups of N images, each image
    told its own group's spread (StyleGAN uses 4), a signal every image carries. Real and generated
    batches reach the discriminator separately, so no group mixes them."""

    def __init__(self, group_size: int = 1):
        super().__init__()
        self.group_size = group_size

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        count = features.shape[0]
        # A short last batch keeps groups as large as divide it (the config makes N divide the batch);
        # one that only 1 divides is a single group, never groups of one image, which have no spread.
        group = math.gcd(count, self.group_size)
        group = count if group == 1 else group
        # Image i falls in group i % (count // group).
        grouped = features.reshape(group, count // group, *features.shape[1:])
        # The variance written out: torch's var over the leading dimension of this 5-d view is many
        # times slower here, forward and backward, enough to slow the whole training step.
        variance = (grouped - grouped.mean(dim=0)).square().mean(dim=0)
        # + eps inside the root: a feature equal across the group has an infinite gradient otherwise
        # (a combined recipe diverged to NaN on the GPU without it).
        spread = (variance + 1e-8).sqrt().flatten(1).mean(dim=1)
        channel = spread.repeat(group).view(count, 1, 1, 1).expand(count, 1, *features.shape[2:])
        return torch.cat([features, channel], dim=1)


class TwoNetDiscriminator(nn.Module):
    """Two networks (the seed tutorial's section 5.3.5): one judges only whether an image is real
    and emits an embedding of it; the other judges whether that embedding and the label match.

    The body is the design's own discriminator body without the label; the match network is a
    small MLP on the embedding beside an embedding of the label. Both scores reach the generator,
    weighted (--match-weight), so it learns whether it lost for realism or for the digit.
    """

    def __init__(
        self,
        body: nn.Module,
        feature_size: int,
        num_classes: int,
        embed_dim: int,
        spectral_norm: bool,
        classify: bool = False,
    ):
        super().__init__()
        norm = nn.utils.parametrizations.spectral_norm if spectral_norm else (lambda layer: layer)
        self.body = body
        self.realness = norm(nn.Linear(feature_size, 1))
        self.label_embedding = nn.Embedding(num_classes, embed_dim)
        self.embed_image = nn.Sequential(norm(nn.Linear(feature_size, MATCH_WIDTH)), nn.LeakyReLU(0.2))
        self.match = nn.Sequential(
            norm(nn.Linear(MATCH_WIDTH + embed_dim, MATCH_WIDTH)),
            nn.LeakyReLU(0.2),
            norm(nn.Linear(MATCH_WIDTH, 1)),
        )
        self.classifier = nn.Linear(feature_size, num_classes) if classify else None

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The realness logits (the label is not used: see judge())."""
        return self.judge(images, labels).score

    def judge(self, images: torch.Tensor, labels: torch.Tensor) -> Judgement:
        features = self.body(images)
        pair = torch.cat([self.embed_image(features), self.label_embedding(labels)], dim=1)
        classes = self.classifier(features) if self.classifier is not None else None
        return Judgement(self.realness(features).squeeze(1), self.match(pair).squeeze(1), classes)


MATCH_WIDTH = 256  # the match network's hidden width: small beside the image networks


DESIGNS = {
    "mlp": (MlpGenerator, MlpDiscriminator),
    "conv": (ConvGenerator, ProjectionDiscriminator),
}


def build_generator(config: TrainConfig) -> nn.Module:
    generator_class, _ = _design(config.design)
    if generator_class is ConvGenerator:
        return ConvGenerator(
            config.latent_dim, config.num_classes, config.image_size, config.embed_dim, config.generator_width
        )
    return generator_class(config.latent_dim, config.num_classes, config.image_size, config.embed_dim)


def build_discriminator(config: TrainConfig) -> nn.Module:
    _, discriminator_class = _design(config.design)
    classify = config.class_loss_weight > 0
    if classify and discriminator_class is not ProjectionDiscriminator:
        raise ValueError(f"the {config.design} design has no auxiliary classifier; use --class-loss-weight 0")
    if config.discriminator == "two-net":
        if config.design == "mlp":
            body = nn.Sequential(nn.Flatten(), *_mlp_layers(config.image_size**2, config.dropout))
            return TwoNetDiscriminator(body, MLP_FEATURES, config.num_classes, config.embed_dim, False)
        width = config.discriminator_width
        return TwoNetDiscriminator(
            _conv_layers(width),
            _conv_feature_size(config.image_size, width),
            config.num_classes,
            config.embed_dim,
            spectral_norm=True,
            classify=classify,
        )
    if config.design == "mlp":
        return MlpDiscriminator(config.num_classes, config.image_size, config.embed_dim, config.dropout)
    return ProjectionDiscriminator(
        config.num_classes,
        config.image_size,
        config.embed_dim,
        width=config.discriminator_width,
        classify=classify,
        minibatch_std=config.minibatch_std,
        twin_classifier=bool(config.twin_classifier),
    )


def _design(name: str) -> tuple[type[nn.Module], type[nn.Module]]:
    if name not in DESIGNS:
        raise ValueError(f"unknown model design {name!r}; choose from {', '.join(DESIGNS)}")
    return DESIGNS[name]
