"""A mask that stays enforced in a model whoever trains it: one parametrization per masked weight.

:func:`apply_mask` puts ``weight = original.masked_fill(pruned, 0.0)`` in place of each masked
weight (``torch.nn.utils.parametrize``), so every forward pass sees exactly 0.0 at pruned positions
whatever optimizer, learning rate or weight decay steps ``original``; gradients at pruned
positions are zero. The pruned entries of ``original`` are zeroed too. While masked, a weight's
``state_dict`` entry is ``<module>.parametrizations.weight.original`` (the mask itself is not
saved: it is the ticket's), and ``torch.save(model)`` refuses parametrized modules: save the
state dict. :func:`remove_mask` bakes the masked weights in and gives back plain parameters
(``state_dict`` names as before).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn
from torch.nn.utils import parametrize

from oneticket.errors import UserError
from oneticket.sparsity.mask import Mask


class PrunedToZero(nn.Module):
    """The parametrization: pruned entries read as 0.0 (never -0.0), the rest as stored."""

    def __init__(self, keep: torch.Tensor):
        super().__init__()
        self.register_buffer("pruned", ~keep, persistent=False)  # the mask is the ticket's, not the model's state

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight.masked_fill(self.pruned, 0.0)


def _as_mask(mask: Mapping[str, torch.Tensor]) -> Mask:
    try:
        return mask if isinstance(mask, Mask) else Mask(mask)
    except (TypeError, AttributeError) as exc:  # AttributeError: a value that is no tensor at all
        raise UserError(f"not a mask: {exc}; give boolean tensors (True = kept), e.g. load_ticket(path).mask") from None


def _owner(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    module_name, _, attribute = name.rpartition(".")
    return model.get_submodule(module_name), attribute


def is_masked(module: nn.Module, attribute: str = "weight") -> bool:
    """Whether :func:`apply_mask` holds ``module.<attribute>``."""
    return parametrize.is_parametrized(module, attribute) and any(
        isinstance(p, PrunedToZero) for p in module.parametrizations[attribute])


def apply_mask(model: nn.Module, mask: Mapping[str, torch.Tensor]) -> nn.Module:
    """Enforce ``mask`` (weight name -> bool tensor, True = kept) in ``model`` from now on; returns ``model``.

    Raises :class:`UserError` when the mask names a weight the model lacks or has another shape,
    or when a weight is masked already (call :func:`remove_mask` first).
    """
    mask = _as_mask(mask)
    try:
        mask.check_fits(model)
    except ValueError as exc:
        raise UserError(f"the mask does not fit this model: {exc}; use a mask made for this architecture and width") from None
    for name, keep in mask.items():
        module, attribute = _owner(model, name)
        if is_masked(module, attribute):
            raise UserError(f"{name} is masked already; call remove_mask(model) before applying another mask")
    for name, keep in mask.items():
        module, attribute = _owner(model, name)
        weight = getattr(module, attribute)
        keep = keep.to(weight.device)
        with torch.no_grad():
            weight.masked_fill_(~keep, 0.0)
        parametrize.register_parametrization(module, attribute, PrunedToZero(keep))
    return model


def remove_mask(model: nn.Module) -> nn.Module:
    """Bake every mask :func:`apply_mask` put on ``model`` into plain weights (pruned entries 0.0); returns ``model``.

    A weight that also carries parametrizations of your own is an error (removing the mask would remove them too).
    """
    masked = [(name, module, attribute) for name, module in model.named_modules()
              for attribute in list(getattr(module, "parametrizations", {}) or {}) if is_masked(module, attribute)]
    for name, module, attribute in masked:
        if len(module.parametrizations[attribute]) > 1:
            raise UserError(f"{name}.{attribute} has other parametrizations besides the mask; remove them first "
                            "(torch.nn.utils.parametrize.remove_parametrizations), then remove_mask(model)")
    for _, module, attribute in masked:
        parametrize.remove_parametrizations(module, attribute, leave_parametrized=True)
    return model

