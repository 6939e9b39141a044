"""Training augmentation on whole batches, on the training device.

Random 32x32 crop from the image zero-padded by 4 pixels, then a random horizontal flip, as
torchvision's ``RandomCrop(32, padding=4)`` + ``RandomHorizontalFlip()`` do per sample. Here the
whole batch is cropped and flipped by one gather from a dataset that is padded once, up front.

Three policies (:data:`AUGMENTATIONS`): ``crop-flip`` (the seed's, for every dataset of the
paper), ``crop`` (no flip: for data whose classes are not mirror-symmetric, like digits) and
``none``. All three draw the same random numbers, so the crops of ``crop`` are those of ``crop-flip``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

PAD = 4
SIZE = 32
AUGMENTATIONS = ("crop-flip", "crop", "none")


def pad_images(images: torch.Tensor, pad: int = PAD) -> torch.Tensor:
    """Zero-pad uint8 images (N, C, H, W) by ``pad`` pixels on every side."""
    return F.pad(images, (pad, pad, pad, pad))


@dataclass(frozen=True)
class CropFlip:
    """Per-sample crop offsets (0..2*PAD) and flip flags for a whole epoch, drawn at once."""

    dy: torch.Tensor
    dx: torch.Tensor
    flip: torch.Tensor

    @staticmethod
    def draw(n: int, generator: torch.Generator, pad: int = PAD) -> CropFlip:
        offsets = torch.randint(0, 2 * pad + 1, (2, n), generator=generator)
        flip = torch.randint(0, 2, (n,), generator=generator).bool()
        return CropFlip(offsets[0], offsets[1], flip)

    def only(self, augmentation: str) -> CropFlip:
        """These draws under ``augmentation``: flips dropped for ``crop``, everything for ``none``
        (every image at the centre of its padding)."""
        if augmentation == "crop-flip":
            return self
        no_flip = torch.zeros_like(self.flip)
        if augmentation == "crop":
            return CropFlip(self.dy, self.dx, no_flip)
        if augmentation == "none":
            centre = torch.full_like(self.dy, PAD)
            return CropFlip(centre, centre, no_flip)
        raise ValueError(f"unknown augmentation {augmentation!r}; choose one of: {', '.join(AUGMENTATIONS)}")

    def to(self, device: torch.device | str) -> CropFlip:
        return CropFlip(self.dy.to(device), self.dx.to(device), self.flip.to(device))

    def __getitem__(self, index: slice) -> CropFlip:
        return CropFlip(self.dy[index], self.dx[index], self.flip[index])


def crop_flip(padded: torch.Tensor, index: torch.Tensor, params: CropFlip, size: int = SIZE) -> torch.Tensor:
    """Images ``padded[index]`` cropped at (dy, dx) and mirrored where ``flip``: one gather.

    ``padded`` is (N, C, H+2p, W+2p); returns (B, C, size, size) with the dtype of ``padded``.
    """
    n, c, h, w = padded.shape
    steps = torch.arange(size, device=padded.device)
    rows = params.dy[:, None] + steps  # (B, size)
    cols = params.dx[:, None] + torch.where(params.flip[:, None], size - 1 - steps, steps)  # (B, size)
    base = index * (c * h * w)
    flat = (
        base[:, None, None, None]
        + (torch.arange(c, device=padded.device) * (h * w))[None, :, None, None]
        + (rows * w)[:, None, :, None]
        + cols[:, None, None, :]
    )
    return padded.reshape(-1)[flat]
