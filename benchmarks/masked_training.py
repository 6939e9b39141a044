"""Training throughput: oneticket's masked training loop against the same model's dense step.

(a) oneticket: ``oneticket.training.train`` on uint8 images held on the device (gather, batch
    crop + flip, normalize), forward, backward, SGD step, pruned weights re-zeroed (79% pruned,
    like IMP level 7). Evaluation and checkpointing after the epoch are outside the timing.
(b) dense: the same architecture, no mask, the same optimizer, on normalized float batches made
    before timing: the compute-only bound (forward, backward, step).

The two are interleaved step by step: from the loop's step hook, (b) takes one step after each step
of (a), and each is timed on its own. A shared or throttled machine therefore slows both alike and
the ratio (a)/(b) stays meaningful. The first step of each is a warm-up and is not counted.

    python benchmarks/masked_training.py                       # widths 1/8 (batch 512) and 1 (batch 128)
    python benchmarks/masked_training.py --widths 0.125 --batch-size 512 --steps 40 --device cuda
"""

from __future__ import annotations

import argparse
import platform
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
        torch.cuda.synchronize(device)


class DenseStep:
    """The compute-only bound: one forward/backward/step of an unmasked model on premade batches."""

    def __init__(self, width: float, batch: int, device: torch.device, count: int = 4):
        self.model = create_model("vgg19", 10, width, seed=0).to(device).train()
        self.optimizer = make_optimizer("sgd", self.model.parameters())
        gen = torch.Generator().manual_seed(1)
        self.batches = [
            (torch.randn(batch, 3, 32, 32, generator=gen).to(device), torch.randint(0, 10, (batch,), generator=gen).to(device))
            for _ in range(count)
        ]
        self.calls = 0

    def __call__(self) -> None:
        images, labels = self.batches[self.calls % len(self.batches)]
        self.calls += 1
        loss = F.cross_entropy(self.model(images), labels)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()


def paired_rates(width: float, batch: int, steps: int, device: torch.device) -> tuple[float, float]:
    """Images/s of (a) oneticket's masked loop and (b) the dense step, interleaved."""
    data = DeviceData(images_for(batch * (steps + 1)), device, batch)
    model = create_model("vgg19", 10, width, seed=0).to(device)
    weights = {k: v.detach() for k, v in prunable_weights(model).items()}
    mask = Mask.ones(model)
    for _ in range(7):
        mask = magnitude_prune(weights, mask, 0.2)
    dense = DenseStep(width, batch, device)
    clock = {"ours": 0.0, "dense": 0.0, "resume": None}

    def on_step(epoch: int, step: int, total: int, loss: float | None) -> None:
        sync(device)
        now = time.perf_counter()
        if clock["resume"] is not None:
            clock["ours"] += now - clock["resume"]
        began = time.perf_counter()
        dense()
        sync(device)
        if step > 0:
            clock["dense"] += time.perf_counter() - began
        clock["resume"] = time.perf_counter()

    train(model, data, TrainSettings("sgd", 1, (), seed=0), mask, hooks=TrainHooks(on_step=on_step))
    return batch * steps / clock["ours"], batch * steps / clock["dense"]


def machine(device: torch.device) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = f", {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""
    return f"{cpu}{gpu}; torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--widths", type=float, nargs="+", default=[0.125, 1.0])
    parser.add_argument("--batch-size", type=int, nargs="+", default=None,
                        help="one per width (default: 512 below width 1, 128 at width 1)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps of each (default: 40 below width 1, 16 at width 1)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    batches = args.batch_size or [512 if w < 1 else 128 for w in args.widths]
    print(f"machine: {machine(device)}")
    print(f"{'model':<16}{'batch':>6}{'steps':>6}{'oneticket img/s':>17}{'dense img/s':>13}{'ratio':>8}")
    for width, batch in zip(args.widths, batches):
        steps = args.steps or (40 if width < 1 else 16)
        ours, dense = paired_rates(width, batch, steps, device)
        print(f"{'vgg19 w' + format(width, 'g'):<16}{batch:>6}{steps:>6}{ours:>17.1f}{dense:>13.1f}{ours / dense:>8.3f}")


if __name__ == "__main__":
    main()
