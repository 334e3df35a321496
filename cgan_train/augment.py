"""Differentiable augmentation (DiffAugment, Zhao et al. 2020): the discriminator sees real and
generated digits through the same random transformations, and the generator's gradient flows
through them, so the discriminator cannot memorise the training images' exact placement.

Images are in [-1, 1] with -1 the background: what is shifted in or cut out is background, not the
grey that DiffAugment's zero would be here.
"""

from __future__ import annotations

import torch

BACKGROUND = -1.0


def augment(images: torch.Tensor, policy: str) -> torch.Tensor:
    """images [B, 1, H, W] through each of the comma-separated policies, fresh randomness per image."""
    for name in filter(None, policy.split(",")):
        images = POLICIES[name](images)
    return images


def translate(images: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to ratio of its size, rounded (4 pixels of 28), in each direction."""
    batch, _, height, width = images.shape
    reach_y, reach_x = int(height * ratio + 0.5), int(width * ratio + 0.5)
    device = images.device
    shift_y = torch.randint(-reach_y, reach_y + 1, (batch, 1, 1), device=device)
    shift_x = torch.randint(-reach_x, reach_x + 1, (batch, 1, 1), device=device)
    rows = torch.arange(height, device=device).view(1, height, 1) - shift_y  # where each pixel comes from
    columns = torch.arange(width, device=device).view(1, 1, width) - shift_x
    inside = (rows >= 0) & (rows < height) & (columns >= 0) & (columns < width)
    index = rows.clamp(0, height - 1) * width + columns.clamp(0, width - 1)
    moved = images.flatten(2).gather(2, index.view(batch, 1, -1)).view_as(images)
    return torch.where(inside.unsqueeze(1), moved, torch.full_like(moved, BACKGROUND))


def cutout(images: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Blank one square of half the image's size at a random place in each image."""
    batch, _, height, width = images.shape
    size_y, size_x = int(height * ratio + 0.5), int(width * ratio + 0.5)
    device = images.device
    top = torch.randint(0, height + (1 - size_y % 2), (batch, 1, 1), device=device) - size_y // 2
    left = torch.randint(0, width + (1 - size_x % 2), (batch, 1, 1), device=device) - size_x // 2
    rows = torch.arange(height, device=device).view(1, height, 1)
    columns = torch.arange(width, device=device).view(1, 1, width)
    cut = (rows >= top) & (rows < top + size_y) & (columns >= left) & (columns < left + size_x)
    return torch.where(cut.unsqueeze(1), torch.full_like(images, BACKGROUND), images)


POLICIES = {"translation": translate, "cutout": cutout}
