"""Ticket finders other than IMP: a rule that turns the dense run's states into a mask at a sparsity.

Every finder's ticket is a mask plus the rewind-point weights of the dense run, which it shares
with the IMP run of the same settings (that run's level 0). What differs is how the mask is chosen:

- ``oneshot``: magnitudes of the dense run's trained weights, pruned straight to the sparsity;
- ``magnitude-rewind``: magnitudes of the rewind-point weights;
- ``snip``, ``grasp``, ``synflow``: saliency scores (:mod:`oneticket.sparsity.saliency`) of the
  rewind-point weights (or of the initialization, ``score_at = "init"``);
- ``random-layerwise``, ``erk``: seeded random masks with a uniform or Erdos-Renyi-kernel profile.

Each rule returns the mask and the compute it spent beyond the dense run (scoring passes); what
the dense run cost is added by the caller. The names are registered in
:data:`oneticket.tickets.spec.FINDERS`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from oneticket.data import DeviceData
from oneticket.seeding import derive_seed
from oneticket.sparsity import Mask, magnitude_prune
from oneticket.sparsity.profiles import random_profile_mask
from oneticket.sparsity.saliency import grasp_scores, snip_scores, synflow_prune
from oneticket.sparsity.pruning import keep_top, kept_count
from oneticket.tickets.spec import ImpSpec
from oneticket.training import Compute, scoring_compute

SCORE_IMAGES_PER_CLASS = 10  # GraSP's choice (10 per class); SNIP's single minibatch is about that size on CIFAR-10


@dataclass
class FinderInputs:
    """What a finder may look at: the model (its structure; weights are loaded as a rule needs
    them), the unpruned mask, the dense run's states and the source data."""

    spec: ImpSpec
    model: nn.Module
    everything: Mask  # nothing pruned
    init_state: dict[str, torch.Tensor]
    rewind_state: Callable[[], dict[str, torch.Tensor]]
    dense_trained: Callable[[], dict[str, torch.Tensor]]  # level 0's trained weights
    data: DeviceData

    def scored_state(self) -> dict[str, torch.Tensor]:
        return self.init_state if self.spec.score_at == "init" else self.rewind_state()

    def model_at(self, state: dict[str, torch.Tensor]) -> nn.Module:
        self.model.load_state_dict(state)
        return self.model

    def sample(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return self.data.sample_batches(SCORE_IMAGES_PER_CLASS, derive_seed(self.spec.seed, "score-sample"))

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.data.test_images.shape[1:])


FinderRule = Callable[[FinderInputs, float], tuple[Mask, Compute]]


def _oneshot(inputs: FinderInputs, sparsity: float) -> tuple[Mask, Compute]:
    return magnitude_prune(inputs.dense_trained(), inputs.everything, sparsity, inputs.spec.layerwise), Compute()


def _magnitude_rewind(inputs: FinderInputs, sparsity: float) -> tuple[Mask, Compute]:
    return magnitude_prune(inputs.rewind_state(), inputs.everything, sparsity, inputs.spec.layerwise), Compute()


def _timed(passes: Callable[[], tuple[Mask, int, int]]) -> tuple[Mask, Compute]:
    began = time.perf_counter()
    mask, forward, backward = passes()
    return mask, scoring_compute(forward, backward, time.perf_counter() - began)


def _batch_scored(score: Callable[..., dict[str, torch.Tensor]], forward: int, backward: int) -> FinderRule:
    """A rule that scores the weights on the sample images (``forward`` and ``backward`` passes per
    image) and keeps the top scores globally."""
    def rule(inputs: FinderInputs, sparsity: float) -> tuple[Mask, Compute]:
        def passes() -> tuple[Mask, int, int]:
            batches = inputs.sample()
            scores = score(inputs.model_at(inputs.scored_state()), list(inputs.everything), batches)
            n = sum(len(labels) for _, labels in batches)
            return keep_top(scores, inputs.everything, kept_count(inputs.everything.total(), sparsity)), forward * n, backward * n
        return _timed(passes)
    return rule


def _synflow(inputs: FinderInputs, sparsity: float) -> tuple[Mask, Compute]:
    def passes() -> tuple[Mask, int, int]:
        rounds = inputs.spec.rounds
        mask = synflow_prune(inputs.model_at(inputs.scored_state()), inputs.everything, sparsity, inputs.input_shape, rounds)
        return mask, rounds, rounds
    return _timed(passes)


def _random_profile(profile: str) -> FinderRule:
    def rule(inputs: FinderInputs, sparsity: float) -> tuple[Mask, Compute]:
        seed = derive_seed(inputs.spec.seed, "finder-mask", inputs.spec.finder, repr(sparsity))
        return random_profile_mask(inputs.everything, sparsity, profile, seed), Compute()
    return rule


RULES: dict[str, FinderRule] = {
    "oneshot": _oneshot,
    "magnitude-rewind": _magnitude_rewind,
    "snip": _batch_scored(snip_scores, 1, 1),
    "grasp": _batch_scored(grasp_scores, 2, 3),  # gradient, then gradient with its graph and the Hessian-vector product
    "synflow": _synflow,
    "random-layerwise": _random_profile("uniform"),
    "erk": _random_profile("erk"),
}


def finder_mask(inputs: FinderInputs, sparsity: float) -> tuple[Mask, Compute]:
    """The mask ``inputs.spec.finder`` picks at ``sparsity`` and what picking it cost (scoring only)."""
    mask, compute = RULES[inputs.spec.finder](inputs, sparsity)
    return mask.to(inputs.everything[next(iter(inputs.everything))].device), compute
