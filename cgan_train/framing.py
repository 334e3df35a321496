"""How MNIST frames every digit, and a penalty on generated digits framed otherwise.

MNIST fitted each digit into a 20x20 box and then moved it so that its centre of mass falls on
the middle of the 28x28 field (LeCun et al. 1998). In the training set every digit's centre of
mass lies within half a pixel of the middle, and its anti-aliased edge spans the same length in
its longer direction. A discriminator of two strided convolutions does not hold generated digits
to either: their centres wander about twice as far and their sizes vary
(docs/experiments.md). The penalty is zero inside the range the real training digits span and
grows with the square of the distance outside it, so it asks for the data's framing and nothing
narrower.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# The anti-aliased edge: ink at 5% of full. Measured softly (a sigmoid this wide around it) so that
# the generator learns from rows and columns just outside the edge as well as on it.
EDGE_LEVEL = 0.05
EDGE_SOFTNESS = 0.05
# The real digits' band: from the 0.5th to the 99.5th percentile of each figure.
BAND_QUANTILE = 0.005


def framing(images: torch.Tensor) -> torch.Tensor:
    """[B, 3]: each image's centre of mass (row, column, in pixels from the top left pixel's centre)
    and its soft extent (rows or columns reaching the edge level, the longer direction) for images
    [B, 1, H, W] in the generator's [-1, 1]."""
    ink = (images[:, 0] + 1) / 2
    positions = torch.arange(ink.shape[-1], dtype=ink.dtype, device=ink.device)
    row_mass = ink.sum(dim=2)
    column_mass = ink.sum(dim=1)
    mass = row_mass.sum(dim=1).clamp_min(1e-6)  # a blank image has no centre: call it the corner
    centre_row = (row_mass * positions).sum(dim=1) / mass
    centre_column = (column_mass * positions).sum(dim=1) / mass
    rows = torch.sigmoid((ink.amax(dim=2) - EDGE_LEVEL) / EDGE_SOFTNESS).sum(dim=1)
    columns = torch.sigmoid((ink.amax(dim=1) - EDGE_LEVEL) / EDGE_SOFTNESS).sum(dim=1)
    return torch.stack([centre_row, centre_column, torch.maximum(rows, columns)], dim=1)


@dataclass(frozen=True)
class FramingBand:
    """The range of every framing figure over real digits: low and high, [3] each."""

    low: torch.Tensor
    high: torch.Tensor

    @classmethod
    def of_real(cls, images: torch.Tensor, chunk: int = 10_000) -> FramingBand:
        """The band of uint8 images [N, H, W] (the training set)."""
        figures = torch.cat(
            [framing(part.unsqueeze(1).float().div(127.5).sub(1.0)) for part in images.split(chunk)]
        )
        low = torch.quantile(figures, BAND_QUANTILE, dim=0)
        high = torch.quantile(figures, 1 - BAND_QUANTILE, dim=0)
        return cls(low, high)

    def to(self, device: torch.device) -> FramingBand:
        return FramingBand(self.low.to(device), self.high.to(device))


def framing_penalty(images: torch.Tensor, band: FramingBand, weights=(1.0, 1.0, 1.0)) -> torch.Tensor:
    """The mean over images of the squared distance by which each image's framing falls outside
    band, weighted figure by figure (centre row, centre column, extent) and summed (0 for every
    image inside it)."""
    figures = framing(images)
    outside = torch.relu(band.low - figures) + torch.relu(figures - band.high)
    return (
        (outside.square() * torch.tensor(weights, dtype=figures.dtype, device=figures.device))
        .sum(dim=1)
        .mean()
    )
