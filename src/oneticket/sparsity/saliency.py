"""Saliency scores for pruning before training: SNIP, GraSP and SynFlow, as their papers define them.

Each function scores the prunable weights ``names`` of a model as it is (at initialization or at
the rewind point) and returns one score tensor per weight, *higher = keep*; the caller keeps the
top scores globally (:func:`oneticket.sparsity.pruning.keep_top`). Scores are computed on a copy,
so the model (its BatchNorm statistics included) is left as it was. SNIP and GraSP run BatchNorm
in training mode, on the statistics of each scored batch (a choice made by measurement): with the
running statistics of an initialization (mean 0, variance 1) a deep VGG's activations are so far
off scale that GraSP's Hessian term picks masks that do not train (measured: 16% on digits at 50%
pruned, against 98% in training mode). Data come in as ready batches of (normalized images,
labels): this module knows nothing of datasets.

- SNIP (Lee et al. 2019): ``|g * w|`` with ``g`` the gradient of the training loss.
- GraSP (Wang et al. 2020): the paper's score is ``S = -w * (H g)`` (``H`` the Hessian of the
  loss, ``g`` its gradient, logits divided by a temperature of 200) and it removes the weights with
  the *largest* ``S``; the keep score is therefore ``-S = w * (H g)``.
- SynFlow (Tanaka et al. 2020): ``w * dR/dw`` with ``R`` the sum of the outputs of the network
  whose parameters and buffers are replaced by their absolute values, on an all-ones input, in
  double precision; BatchNorm in eval mode with absolute running statistics, as the authors' code
  does. Iterative: pruned to the target over ``rounds`` rounds on an exponential schedule, scores
  recomputed with the weights pruned so far removed.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from oneticket.sparsity.mask import Mask
from oneticket.sparsity.pruning import keep_top, kept_count

Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]
GRASP_TEMPERATURE = 200.0


def _scoring_copy(model: nn.Module) -> nn.Module:
    """A copy in training mode (BatchNorm on batch statistics; the copy's running statistics absorb the updates)."""
    return copy.deepcopy(model).train()


def _weights(model: nn.Module, names: Iterable[str]) -> list[nn.Parameter]:
    params = dict(model.named_parameters())
    return [params[name] for name in names]


def _loss_gradients(model: nn.Module, weights: list[nn.Parameter], batches: Batches, temperature: float = 1.0,
                    create_graph: bool = False) -> Iterator[tuple[torch.Tensor, ...]]:
    """Per batch: the gradient of the summed cross-entropy (over the batch) w.r.t. ``weights``."""
    for images, labels in batches:
        loss = F.cross_entropy(model(images) / temperature, labels, reduction="sum")
        yield torch.autograd.grad(loss, weights, create_graph=create_graph)


def snip_scores(model: nn.Module, names: list[str], batches: Batches) -> dict[str, torch.Tensor]:
    """``|g * w|``, ``g`` the gradient of the loss summed over ``batches``."""
    model = _scoring_copy(model)
    weights = _weights(model, names)
    total = [torch.zeros_like(w) for w in weights]
    for grads in _loss_gradients(model, weights, batches):
        torch._foreach_add_(total, grads)
    return {name: (g * w).detach().abs() for name, g, w in zip(names, total, weights)}


def grasp_scores(model: nn.Module, names: list[str], batches: Batches,
                 temperature: float = GRASP_TEMPERATURE) -> dict[str, torch.Tensor]:
    """The keep score ``w * (H g)`` (GraSP's ``-S``): ``g`` the loss gradient over all batches,
    ``H g`` its Hessian-vector product, both summed over the batches."""
    batches = list(batches)
    model = _scoring_copy(model)
    weights = _weights(model, names)
    g = [torch.zeros_like(w) for w in weights]
    for grads in _loss_gradients(model, weights, batches, temperature):
        torch._foreach_add_(g, grads)
    hg = [torch.zeros_like(w) for w in weights]
    for grads in _loss_gradients(model, weights, batches, temperature, create_graph=True):
        inner = sum((a * b.detach()).sum() for a, b in zip(grads, g))
        torch._foreach_add_(hg, torch.autograd.grad(inner, weights))
    return {name: (w * h).detach() for name, w, h in zip(names, weights, hg)}


def _linearized(model: nn.Module) -> nn.Module:
    """A double-precision copy with every parameter and buffer replaced by its absolute value."""
    linear = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        for tensor in linear.state_dict().values():
            if tensor.is_floating_point():
                tensor.abs_()
    return linear


def synflow_scores(model: nn.Module, names: list[str], input_shape: tuple[int, ...],
                   mask: Mask | None = None) -> dict[str, torch.Tensor]:
    """One round of SynFlow: ``w * dR/dw`` of the linearized network (weights that ``mask``
    prunes set to zero), on a single all-ones input of ``input_shape`` (C, H, W)."""
    linear = _linearized(model)
    return _synflow_round(linear, _weights(linear, names), names, input_shape, mask)


def _synflow_round(linear: nn.Module, weights: list[nn.Parameter], names: list[str], input_shape: tuple[int, ...],
                   mask: Mask | None) -> dict[str, torch.Tensor]:
    if mask is not None:
        with torch.no_grad():
            for name, w in zip(names, weights):
                w.mul_(mask[name].to(w.device, w.dtype))
    device = weights[0].device
    output = linear(torch.ones((1, *input_shape), dtype=torch.float64, device=device)).sum()
    grads = torch.autograd.grad(output, weights)
    return {name: (g * w).detach() for name, g, w in zip(names, grads, weights)}


def synflow_prune(model: nn.Module, mask: Mask, sparsity: float, input_shape: tuple[int, ...], rounds: int = 100,
                  on_round: Callable[[int], None] | None = None) -> Mask:
    """Iterative SynFlow from ``mask`` (normally nothing pruned) to ``sparsity`` of its weights:
    after round ``k`` of ``rounds``, a fraction ``(1 - sparsity) ** (k / rounds)`` is kept."""
    names = list(mask)
    linear = _linearized(model)
    weights = _weights(linear, names)
    originals = [w.detach().clone() for w in weights]
    total = mask.total()
    density = 1.0 - sparsity
    for k in range(1, rounds + 1):
        with torch.no_grad():
            for w, original in zip(weights, originals):
                w.copy_(original)
        scores = _synflow_round(linear, weights, names, input_shape, mask)
        keep = kept_count(total, 1.0 - density ** (k / rounds)) if k < rounds else kept_count(total, sparsity)
        mask = keep_top(scores, mask, keep)
        if on_round is not None:
            on_round(k)
    return mask
