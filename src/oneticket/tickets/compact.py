"""The compact ticket layout: only what a ticket holds.

Per masked weight ``W``: ``bits.W``, its mask bit-packed into uint8 (bit ``i`` of byte ``j`` is
element ``8j + i`` of the flattened mask, True = kept; the last byte padded with 0 bits), and
``kept.W``, its surviving values in row-major order, in the weight's dtype. Every other tensor
(biases, BatchNorm, unmasked layers) as ``state.<name>``. The masked weights' shapes are metadata.
Values at pruned positions are not stored: they load as 0.0, which is what a masked model holds.
"""

from __future__ import annotations

import torch

BITS_PREFIX, KEPT_PREFIX, STATE_PREFIX = "bits.", "kept.", "state."
_BIT_WEIGHTS = torch.tensor([1 << i for i in range(8)], dtype=torch.int32)


def pack_bits(mask: torch.Tensor) -> torch.Tensor:
    """A bool tensor as ``ceil(n / 8)`` uint8 bytes (little-endian bit order)."""
    flat = mask.detach().cpu().reshape(-1).to(torch.int32)
    flat = torch.cat([flat, flat.new_zeros(-flat.numel() % 8)])
    return (flat.view(-1, 8) * _BIT_WEIGHTS).sum(dim=1).to(torch.uint8)


def unpack_bits(packed: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """The bool tensor of ``shape`` that :func:`pack_bits` packed; ``ValueError`` when the sizes disagree
    or padding bits are set."""
    count = 1
    for size in shape:
        count *= size
    if packed.dtype != torch.uint8 or packed.dim() != 1 or packed.numel() != -(-count // 8):
        raise ValueError(f"{packed.numel()} packed bytes ({packed.dtype}) do not hold a mask of shape {tuple(shape)}")
    bits = (packed.to(torch.int32).unsqueeze(1) & _BIT_WEIGHTS).ne(0).reshape(-1)
    if bits[count:].any():
        raise ValueError("padding bits are set")
    return bits[:count].reshape(shape)


def compact_tensors(mask: dict[str, torch.Tensor], state: dict[str, torch.Tensor]
                    ) -> tuple[dict[str, torch.Tensor], dict[str, list[int]]]:
    """The tensors of the compact layout (bits first, then the state in model order) and the masked
    weights' shapes."""
    tensors = {BITS_PREFIX + name: pack_bits(keep) for name, keep in mask.items()}
    for name, value in state.items():
        if name in mask:
            tensors[KEPT_PREFIX + name] = value.detach().cpu()[mask[name].cpu()].contiguous()
        else:
            tensors[STATE_PREFIX + name] = value
    return tensors, {name: list(keep.shape) for name, keep in mask.items()}


def expand_tensors(tensors: dict[str, torch.Tensor], shapes: dict[str, list[int]]
                   ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """``(mask, state)`` from the compact layout's tensors (in stored order); ``ValueError`` naming the
    first inconsistency."""
    mask: dict[str, torch.Tensor] = {}
    for name, packed in tensors.items():
        if name.startswith(BITS_PREFIX):
            weight = name[len(BITS_PREFIX):]
            if weight not in shapes:
                raise ValueError(f"no shape recorded for the mask of {weight}")
            try:
                mask[weight] = unpack_bits(packed, tuple(shapes[weight]))
            except ValueError as exc:
                raise ValueError(f"mask of {weight}: {exc}") from None
    state: dict[str, torch.Tensor] = {}
    for name, value in tensors.items():
        if name.startswith(KEPT_PREFIX):
            weight = name[len(KEPT_PREFIX):]
            if weight not in mask:
                raise ValueError(f"surviving values of {weight} without its mask")
            keep = mask[weight]
            if value.dim() != 1 or value.numel() != int(keep.sum()):
                raise ValueError(f"{weight}: {value.numel()} surviving values for a mask that keeps {int(keep.sum())}")
            state[weight] = torch.zeros(keep.shape, dtype=value.dtype).masked_scatter_(keep, value)
        elif name.startswith(STATE_PREFIX):
            if name[len(STATE_PREFIX):] in mask:
                raise ValueError(f"{name[len(STATE_PREFIX):]} is masked but stored whole")
            state[name[len(STATE_PREFIX):]] = value
    missing = sorted(set(mask) - set(state))
    if missing:
        raise ValueError(f"masks without surviving values: {missing[:3]}")
    return mask, state
