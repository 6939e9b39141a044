"""Sparsity: masks over prunable weights, magnitude pruning, random permutations, sparsity reports."""

from oneticket.sparsity.mask import LayerSparsity, Mask, MaskedWeights, prunable_weights
from oneticket.sparsity.permute import permute_mask
from oneticket.sparsity.pruning import magnitude_prune

__all__ = ["LayerSparsity", "Mask", "MaskedWeights", "magnitude_prune", "permute_mask", "prunable_weights"]
