"""Batch augmentation on the device and the batches the training loop sees."""

from __future__ import annotations

import torch

from oneticket.data import DeviceData, load_dataset
from oneticket.data.augment import CropFlip, crop_flip, pad_images
from oneticket.data.loader import batch_slices


def reference_crop_flip(image: torch.Tensor, dy: int, dx: int, flip: bool) -> torch.Tensor:
    """torchvision's RandomCrop(32, padding=4) + RandomHorizontalFlip for one image, written plainly."""
    padded = torch.zeros(3, 40, 40, dtype=image.dtype)
    padded[:, 4:36, 4:36] = image
    crop = padded[:, dy : dy + 32, dx : dx + 32]
    return crop.flip(2) if flip else crop


def test_crop_flip_matches_per_sample_reference():
    images = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8)
    params = CropFlip.draw(20, torch.Generator().manual_seed(0))
    index = torch.randperm(64, generator=torch.Generator().manual_seed(1))[:20]
    batch = crop_flip(pad_images(images), index, params)
    assert batch.shape == (20, 3, 32, 32) and batch.dtype == torch.uint8
    for i in range(20):
        expected = reference_crop_flip(images[index[i]], int(params.dy[i]), int(params.dx[i]), bool(params.flip[i]))
        assert torch.equal(batch[i], expected)
    assert params.flip.any() and not params.flip.all()
    assert int(params.dy.min()) >= 0 and int(params.dy.max()) <= 8


def test_extreme_offsets_show_the_zero_padding():
    images = torch.full((1, 3, 32, 32), 200, dtype=torch.uint8)
    zero = torch.zeros(1, dtype=torch.long)
    top_left = CropFlip(zero, zero, torch.zeros(1, dtype=torch.bool))
    out = crop_flip(pad_images(images), zero, top_left)[0]
    assert int(out[:, :4].max()) == 0 and int(out[:, :, :4].max()) == 0 and int(out[:, 4:, 4:].min()) == 200


def test_epoch_batches_cover_every_image_once_and_are_seeded():
    ds = load_dataset("digits", train_size=300, subset_seed=0)
    data = DeviceData(ds, "cpu", batch_size=64)
    assert data.steps_per_epoch == 5

    def epoch(order_seed: int, aug_seed: int):
        return list(data.train_batches(torch.Generator().manual_seed(order_seed), torch.Generator().manual_seed(aug_seed)))

    first = epoch(0, 0)
    labels = torch.cat([y for _, y in first])
    assert torch.equal(labels.sort().values, ds.train_labels.sort().values)
    assert all(torch.equal(a, b) for (a, _), (b, _) in zip(first, epoch(0, 0)))
    assert not torch.equal(first[0][0], epoch(0, 1)[0][0])  # other augmentation
    assert not torch.equal(first[0][1], epoch(1, 0)[0][1])  # other order


def test_normalize_is_per_channel_mean_and_std():
    ds = load_dataset("digits")
    data = DeviceData(ds, "cpu", batch_size=32)
    x = ds.test_images[:8]
    mean = torch.tensor(ds.mean).view(1, 3, 1, 1)
    std = torch.tensor(ds.std).view(1, 3, 1, 1)
    assert torch.allclose(data.normalize(x), (x.float() / 255 - mean) / std, atol=1e-5)
    batch, _ = next(data.test_batches(1000))
    assert abs(batch.mean().item()) < 0.2 and 0.8 < batch.std().item() < 1.2


def test_a_last_batch_of_one_image_is_dropped():
    assert [s.stop - s.start for s in batch_slices(10, 4)] == [4, 4, 2]
    assert [s.stop - s.start for s in batch_slices(9, 4)] == [4, 4]
    assert [s.stop - s.start for s in batch_slices(8, 4)] == [4, 4]
