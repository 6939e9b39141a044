"""A dataset held on the training device, serving augmented, normalized batches.

The uint8 images live on the device (training images padded once); a batch is one gather for the
crop and flip, one cast and one fused multiply-add for normalization. Data order and augmentation
draws come from CPU generators, one draw per epoch, so every device sees the same batches.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from oneticket.data.augment import PAD, CropFlip, crop_flip, pad_images
from oneticket.data.dataset import ImageDataset


def batch_slices(n: int, batch_size: int) -> list[slice]:
    """Consecutive batches covering ``n`` samples; a last batch of a single sample is dropped
    (BatchNorm cannot train on one sample)."""
    slices = [slice(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]
    if len(slices) > 1 and slices[-1].stop - slices[-1].start == 1:
        slices.pop()
    return slices


class DeviceData:
    """Training and test tensors of an :class:`ImageDataset` on ``device``."""

    def __init__(self, dataset: ImageDataset, device: torch.device | str, batch_size: int):
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.num_classes = dataset.num_classes
        self.train_padded = pad_images(dataset.train_images).to(self.device)
        self.train_labels = dataset.train_labels.to(self.device)
        self.test_images = dataset.test_images.to(self.device)
        self.test_labels = dataset.test_labels.to(self.device)
        mean = torch.tensor(dataset.mean, dtype=torch.float32)
        std = torch.tensor(dataset.std, dtype=torch.float32)
        # x_normalized = (x / 255 - mean) / std = x * scale + shift
        self.scale = (1.0 / (255.0 * std)).view(1, 3, 1, 1).to(self.device)
        self.shift = (-mean / std).view(1, 3, 1, 1).to(self.device)
        self._slices = batch_slices(len(self.train_labels), batch_size)

    @property
    def train_size(self) -> int:
        return len(self.train_labels)

    @property
    def images_per_epoch(self) -> int:
        """Training images each epoch goes through (a lone last image is dropped)."""
        return sum(part.stop - part.start for part in self._slices)

    @property
    def steps_per_epoch(self) -> int:
        return len(self._slices)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 images -> float32, normalized per channel."""
        return torch.addcmul(self.shift, images.float(), self.scale)

    def train_batches(self, order: torch.Generator, augment: torch.Generator,
                      augmentation: str = "crop-flip") -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One epoch of (images, labels) batches: shuffled with ``order``, augmented with ``augment``
        under the ``augmentation`` policy (``crop-flip``, ``crop`` or ``none``)."""
        n = self.train_size
        permutation = torch.randperm(n, generator=order).to(self.device)
        draws = CropFlip.draw(n, augment).only(augmentation).to(self.device)
        for part in self._slices:
            index = permutation[part]
            images = crop_flip(self.train_padded, index, draws[part])
            yield self.normalize(images), self.train_labels[index]

    def test_batches(self, batch_size: int = 1000) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for start in range(0, len(self.test_labels), batch_size):
            stop = start + batch_size
            yield self.normalize(self.test_images[start:stop]), self.test_labels[start:stop]

    def sample_batches(self, per_class: int, seed: int, batch_size: int = 250) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """``per_class`` training images of every class (a seeded choice), not augmented, normalized,
        in batches: what saliency scores (SNIP, GraSP) are computed on."""
        gen = torch.Generator().manual_seed(seed)
        labels = self.train_labels.cpu()
        chosen = []
        for cls in range(self.num_classes):
            members = torch.nonzero(labels == cls).flatten()
            chosen.append(members[torch.randperm(len(members), generator=gen)[:per_class]])
        index = torch.cat(chosen).to(self.device)
        images = self.train_padded[index][:, :, PAD:-PAD, PAD:-PAD]
        return [(self.normalize(images[i:i + batch_size]), self.train_labels[index[i:i + batch_size]])
                for i in range(0, len(index), batch_size)]
