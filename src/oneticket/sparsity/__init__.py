"""Sparsity: masks over prunable weights, magnitude pruning, random permutations, sparsity reports,
masks enforced in a model for anyone's training loop."""

from oneticket.sparsity.enforced import apply_mask, remove_mask
from oneticket.sparsity.mask import LayerSparsity, Mask, MaskedWeights, prunable_weights
from oneticket.sparsity.permute import permute_mask
from oneticket.sparsity.pruning import magnitude_prune

__all__ = [
    "LayerSparsity", "Mask", "MaskedWeights", "apply_mask", "magnitude_prune", "permute_mask",
    "prunable_weights", "remove_mask",
]
