"""Training throughput: oneticket's masked training loop against the same model's dense step.

(a) oneticket: ``oneticket.training.train`` on uint8 images held on the device (gather, batch
    crop + flip, normalize), forward, backward, SGD step, pruned weights re-zeroed (80% pruned).
    Timed from the end of its first step to the end of its last, through the loop's step hook, so
    evaluation and checkpointing after the epoch are outside the window.
(b) dense: the same architecture, no mask, the same optimizer, on normalized float batches made
    before timing (the compute-only bound: forward, backward, step).

Both run in this process, interleaved, several rounds; the median images/s of each is reported
with the ratio (a)/(b). Usage::

    python benchmarks/masked_training.py                      # widths 0.125 and 1, CPU
    python benchmarks/masked_training.py --widths 0.125 --batch-size 512 --steps 20 --device cuda
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from oneticket.data import DeviceData, ImageDataset, load_dataset
from oneticket.models import create_model
from oneticket.sparsity import Mask, magnitude_prune, prunable_weights
from oneticket.training import TrainHooks, TrainSettings, make_optimizer, train

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def images_for(n: int) -> ImageDataset:
    """Real CIFAR-10 images when the shared subset is here, else random uint8 images."""
    try:
        base = load_dataset("cifar10", SHARED, download=False)
        reps = -(-n // base.train_size)
        images, labels = base.train_images.repeat(reps, 1, 1, 1)[:n], base.train_labels.repeat(reps)[:n]
        mean, std = base.mean, base.std
    except Exception:
        gen = torch.Generator().manual_seed(0)
        images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=gen)
        labels = torch.randint(0, 10, (n,), generator=gen)
        mean, std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
    return ImageDataset("bench", 10, images, labels, images[:256], labels[:256], mean, std)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def oneticket_rate(width: float, batch: int, steps: int, device: torch.device) -> float:
    data = DeviceData(images_for(batch * (steps + 1)), device, batch)
    model = create_model("vgg19", 10, width, seed=0).to(device)
    weights = {k: v.detach() for k, v in prunable_weights(model).items()}
    mask = Mask.ones(model)
    for _ in range(7):  # ~79% pruned, like IMP level 7
        mask = magnitude_prune(weights, mask, 0.2)
    marks: list[float] = []

    def on_step(epoch: int, step: int, total: int, loss: float | None) -> None:
        if step in (0, total - 1):
            sync(device)
            marks.append(time.perf_counter())

    train(model, data, TrainSettings("sgd", 1, (), seed=0), mask, hooks=TrainHooks(on_step=on_step))
    return batch * steps / (marks[1] - marks[0])


def dense_rate(width: float, batch: int, steps: int, device: torch.device) -> float:
    model = create_model("vgg19", 10, width, seed=0).to(device).train()
    optimizer = make_optimizer("sgd", model.parameters())
    gen = torch.Generator().manual_seed(0)
    batches = [(torch.randn(batch, 3, 32, 32, generator=gen).to(device), torch.randint(0, 10, (batch,), generator=gen).to(device))
               for _ in range(steps + 1)]

    def step(images: torch.Tensor, labels: torch.Tensor) -> None:
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step(*batches[0])  # warm-up, as (a) excludes its first step
    sync(device)
    began = time.perf_counter()
    for images, labels in batches[1:]:
        step(images, labels)
    sync(device)
    return batch * steps / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--widths", type=float, nargs="+", default=[0.125, 1.0])
    parser.add_argument("--batch-size", type=int, nargs="+", default=None,
                        help="one per width (default: 512 at width < 1, 128 at width 1)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per round (default: 30 at width < 1, 4 at width 1)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    batches = args.batch_size or [512 if w < 1 else 128 for w in args.widths]
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = f", {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""
    print(f"machine: {cpu}{gpu}; torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}")
    print(f"{'model':<18}{'batch':>6}{'oneticket img/s':>17}{'dense img/s':>13}{'ratio':>8}")
    for width, batch in zip(args.widths, batches):
        steps = args.steps or (30 if width < 1 else 4)
        ours, dense = [], []
        for _ in range(args.rounds):
            ours.append(oneticket_rate(width, batch, steps, device))
            dense.append(dense_rate(width, batch, steps, device))
        a, b = statistics.median(ours), statistics.median(dense)
        print(f"{'vgg19 w' + format(width, 'g'):<18}{batch:>6}{a:>17.1f}{b:>13.1f}{a / b:>8.3f}")


if __name__ == "__main__":
    main()
