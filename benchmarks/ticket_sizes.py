"""File sizes of a ticket in the dense and the compact layout, for full-width VGG19 and ResNet50.

Each ticket is the model's seeded initialization with a global magnitude mask at the given
fraction pruned (sizes depend on counts, not on which weights survive), written with
``oneticket.tickets.save_ticket`` both ways; the table gives both sizes, their ratio and what the
compact file holds (surviving fp32 values, packed mask bits, unpruned tensors). Each compact file
is checked to load to the same masked model as its dense twin.

    python benchmarks/ticket_sizes.py                    # VGG19 and ResNet50 on CIFAR-10 (10 classes)
    python benchmarks/ticket_sizes.py --json sizes.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch

from oneticket.models import create_model
from oneticket.sparsity import Mask, magnitude_prune, prunable_weights
from oneticket.tickets import Ticket, TicketInfo, load_ticket, save_ticket

FRACTIONS = (0.0, 0.5, 0.9, 0.98, 0.998)


def ticket_at(model_name: str, fraction: float) -> Ticket:
    model = create_model(model_name, 10, 1.0, 0)
    weights = {k: v.detach() for k, v in prunable_weights(model).items()}
    mask = Mask.ones(model) if fraction == 0 else magnitude_prune(weights, Mask.ones(model), fraction)
    info = TicketInfo(model=model_name, width=1.0, model_options={}, num_classes=10, dataset="cifar10", optimizer="sgd",
                      level=1, rate=fraction, layerwise=False, prune_output=False, fraction_pruned=mask.fraction_pruned(),
                      rewind="1ep", test_accuracy=None, run_id="0" * 16)
    return Ticket(info, mask, {k: v.detach().clone() for k, v in model.state_dict().items()})


def same_masked_model(a: Ticket, b: Ticket) -> bool:
    return a.mask.equal(b.mask) and all(
        torch.equal(a.state[k].masked_fill(~a.mask[k], 0.0) if k in a.mask else a.state[k], b.state[k]) for k in a.state)


def measure(model_name: str, fraction: float, folder: Path) -> dict[str, float]:
    ticket = ticket_at(model_name, fraction)
    dense, compact = folder / "dense.safetensors", folder / "compact.safetensors"
    save_ticket(dense, ticket)
    save_ticket(compact, ticket, compact=True)
    if not same_masked_model(load_ticket(dense), load_ticket(compact)):
        raise SystemExit(f"{model_name} at {fraction}: the compact file does not load to the same model")
    mask = ticket.mask
    unmasked = sum(t.numel() * t.element_size() for k, t in ticket.state.items() if k not in mask)
    return {"model": model_name, "fraction_pruned": round(mask.fraction_pruned(), 5), "prunable": mask.total(),
            "kept": mask.alive(), "dense_bytes": dense.stat().st_size, "compact_bytes": compact.stat().st_size,
            "values_bytes": 4 * mask.alive(), "mask_bits_bytes": sum(-(-t.numel() // 8) for t in mask.values()),
            "unmasked_bytes": unmasked}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["vgg19", "resnet50"])
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    rows = []
    print("| model | pruned | kept weights | dense file | compact file | compact/dense | compact: values + mask bits + other tensors |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for model_name in args.models:
            for fraction in FRACTIONS:
                row = measure(model_name, fraction, Path(folder))
                rows.append(row)
                mb = 1e6
                print(f"| {model_name} | {100 * row['fraction_pruned']:.1f}% | {row['kept']:,} | {row['dense_bytes'] / mb:.2f} MB | "
                      f"{row['compact_bytes'] / mb:.2f} MB | {row['compact_bytes'] / row['dense_bytes']:.3f} | "
                      f"{row['values_bytes'] / mb:.2f} + {row['mask_bits_bytes'] / mb:.2f} + {row['unmasked_bytes'] / mb:.2f} MB |",
                      flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
