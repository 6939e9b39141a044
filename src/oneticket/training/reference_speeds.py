"""Measured seconds per training epoch on reference GPUs, for planning (plain data).

One entry: seconds for one epoch of 50,000 CIFAR-shaped images (training steps, plus the
evaluation of 10,000 test images and the checkpoint, each divided by the epochs between two of
them: every 2nd epoch and every ~20 epochs, the defaults), with the default execution options
(channels-last, no compile), 79% of the prunable weights pruned (the cost does not depend on it).

Measured on 2026-11-24 on one NVIDIA H100 80GB HBM3 (16 Xeon cores; torch 2.11.0+cu130) with
``python benchmarks/epoch_time.py --device cuda`` (random uint8 images). ResNet50: one run,
``--epochs 3 --models resnet50 --configs fp32 bf16``, its "epoch" column. VGG19: steps and
checkpoint from ``--epochs 2 --models vgg19 --configs fp32 bf16`` (1.139 s + 0.301 s / 21;
1.099 s + 0.291 s / 23), evaluation from a 3-epoch run (0.063 s and 0.042 s, every 2nd epoch),
as a 2-epoch run's evaluation includes cuDNN's one-time tuning. Runs of the same row differed by
up to 10%.
"""

from __future__ import annotations

REFERENCE_EPOCH_SECONDS: dict[str, dict[tuple[str, float, int, str], float]] = {
    "H100": {
        ("vgg19", 1.0, 512, "fp32"): 1.19,
        ("vgg19", 1.0, 512, "bf16"): 1.13,
        ("resnet50", 1.0, 512, "fp32"): 2.11,
        ("resnet50", 1.0, 512, "bf16"): 2.03,
    },
}


def reference_epoch_seconds(device_name: str, model: str, width: float, batch_size: int, precision: str) -> float | None:
    """Seconds per epoch of 50,000 images, or ``None`` where nothing was measured.

    ``device_name`` may be a full name as ``torch.cuda.get_device_name()`` gives it
    ("NVIDIA H100 80GB HBM3"): the first reference device whose name it contains is used.
    Scale by ``train images / 50,000`` for other training-set sizes.
    """
    for name, table in REFERENCE_EPOCH_SECONDS.items():
        if name.lower() in device_name.lower():
            return table.get((model, float(width), batch_size, precision))
    return None
