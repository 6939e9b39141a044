"""Compute accounting: what a training (or a scoring pass) cost, in steps, images and passes.

``forward`` and ``backward`` count images through a forward or a backward pass (a training step
of ``B`` images is ``B`` of each; a test-set evaluation is forward only; a Hessian-vector product
is counted as a second backward). ``passes`` = forward + backward is the machine-independent
measure reports plot; ``seconds`` is what it took on its device.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True)
class Compute:
    steps: int = 0  # optimizer steps
    epochs: float = 0.0  # epochs of training (a part of one at a rewind point)
    images: int = 0  # training images through forward and backward
    forward: int = 0  # image forward passes (training, evaluation, scoring)
    backward: int = 0  # image backward passes
    seconds: float = 0.0

    def __add__(self, other: Compute) -> Compute:
        return Compute(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    @property
    def passes(self) -> int:
        return self.forward + self.backward

    def part(self, steps: int) -> Compute:
        """The first ``steps`` optimizer steps of this training (a rewind point), without its
        evaluations; seconds in proportion."""
        if not self.steps:
            return Compute()
        share = min(steps, self.steps) / self.steps
        images = round(self.images * share)
        return Compute(min(steps, self.steps), self.epochs * share, images, images, images, self.seconds * share)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def of(cls, record: dict[str, Any] | None) -> Compute:
        return cls(**{k: v for k, v in (record or {}).items() if k in {f.name for f in fields(cls)}})


def training_compute(epochs: int, steps_per_epoch: int, images_per_epoch: int, evaluations: int, test_images: int,
                     seconds: float) -> Compute:
    """A training of ``epochs`` epochs that evaluated the test set ``evaluations`` times."""
    images = epochs * images_per_epoch
    return Compute(epochs * steps_per_epoch, float(epochs), images, images + evaluations * test_images, images, seconds)


def scoring_compute(forward: int, backward: int, seconds: float) -> Compute:
    """Passes spent scoring weights (no optimizer step)."""
    return Compute(forward=forward, backward=backward, seconds=seconds)


def outcome_compute(history: list[Any], steps_per_epoch: int, images_per_epoch: int, test_images: int) -> Compute:
    """The compute of a finished training from its epoch records (resumed epochs included)."""
    evaluations = sum(1 for record in history if record.test_accuracy is not None)
    seconds = sum(record.seconds for record in history)
    return training_compute(len(history), steps_per_epoch, images_per_epoch, evaluations, test_images, seconds)
