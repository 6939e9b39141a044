"""Training a ticket on a target: transfer, and the random-ticket baselines.

A :class:`TrainSpec` names a ticket (the IMP run that found it and its level) and the target's
training (dataset, optimizer, schedule, seed). What the model starts from:

- ``mask="ticket", weights="ticket"`` -- transfer (METHOD.md): the ticket's mask and rewind-point
  weights. The output layer is replaced by a fresh, seeded one exactly when the target's class
  count differs from the source's; otherwise the source's output layer is kept.
- ``mask="random", weights="random"`` -- the random ticket: a seeded global permutation of the
  ticket's mask and a fresh seeded initialization (``random-layerwise`` permutes per layer).
- ``mask="random", weights="ticket"`` and ``mask="ticket", weights="random"`` -- the half-random
  ablations.

The target's own schedule applies (its epochs, milestones scaled along). A training directory
holds the spec, a checkpoint while it trains, and ``result.json`` when it is done::

    <store>/trainings/<job id>/{spec.json, checkpoint.pt, result.json}
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
import torch
from torch import nn

from oneticket.data import DeviceData
from oneticket.errors import UserError
from oneticket.files import read_record, write_json_atomic
from oneticket.models import create_model, output_layer, replace_output_layer
from oneticket.seeding import derive_seed
from oneticket.sparsity import Mask
from oneticket.tickets.imp import EpochDone, EventSink, LevelFinished, LevelStarted, StepDone, ignore_event
from oneticket.tickets.random_ticket import random_mask
from oneticket.tickets.rundir import LevelResult, read_result_file
from oneticket.tickets.spec import (
    AUGMENT_HELP,
    LR_HELP,
    LR_SCALING_HELP,
    SPEC_VERSION,
    Augment,
    WARMUP_HELP,
    DatasetName,
    LrScaling,
    ModelName,
    Schedule,
    Warmup,
)
from oneticket.tickets.ticket import Ticket, load_state_into
from oneticket.training import Speed, TrainHooks, outcome_compute, train

MaskKind = Literal["ticket", "random", "random-layerwise"]
WeightsKind = Literal["ticket", "random"]

log = logging.getLogger("oneticket")

# (mask, weights) -> the name a series of such trainings goes by
KINDS: dict[tuple[str, str], str] = {
    ("ticket", "ticket"): "transfer",
    ("random", "random"): "random",
    ("random-layerwise", "random"): "random-layerwise",
    ("random", "ticket"): "random-mask",
    ("ticket", "random"): "random-weights",
}
VARIANTS: dict[str, tuple[str, str]] = {kind: pair for pair, kind in KINDS.items()}


class TrainSpec(Schedule, BaseModel):
    """One training of a ticket (transferred or randomized) on a target dataset and optimizer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(..., pattern=r"^[0-9a-f]{16}$", description="run id of the IMP run that found the ticket")
    level: int = Field(..., ge=0, description="the ticket's pruning level")
    ticket: str | None = Field(None, pattern=r"^[0-9a-f]{64}$",
                               description="sha256 of the ticket's tensors, when known up front (a ticket file)")
    model: ModelName = Field(..., description="the ticket's model (fixes the default schedule)")
    dataset: DatasetName = Field(..., description="target dataset")
    optimizer: Literal["sgd", "adam"] = Field("sgd", description="target optimizer")
    epochs: int | None = Field(None, ge=1, description="target epochs (default: the model's paper schedule)")
    batch_size: int = Field(512, ge=2)
    train_size: int | None = Field(None, ge=1)
    seed: int = Field(0, ge=0)
    mask: MaskKind = "ticket"
    weights: WeightsKind = "ticket"
    precision: Literal["fp32", "bf16"] = "fp32"
    lr: float | None = Field(None, gt=0, le=10, description=LR_HELP)
    lr_scaling: LrScaling = Field("none", description=LR_SCALING_HELP)
    warmup: Warmup | None = Field(None, description=WARMUP_HELP)
    augment: Augment = Field("crop-flip", description=AUGMENT_HELP)

    @model_validator(mode="after")
    def _warmup_fits(self) -> TrainSpec:
        self.check_warmup()
        return self

    @property
    def kind(self) -> str:
        return KINDS[(self.mask, self.weights)]

    def seeds(self) -> dict[str, int]:
        return training_seeds(self.seed)

    def hashed(self) -> dict[str, Any]:
        fields = self.model_dump()
        if self.precision == "fp32":
            fields.pop("precision")  # as in ImpSpec: fp32 is the unhashed default
        if self.ticket is None:
            fields.pop("ticket")  # unknown up front (an experiment's own run): checked when trained
        self.hash_recipe(fields)
        fields["epochs"] = self.num_epochs
        fields["kind"] = "train"
        fields["version"] = SPEC_VERSION
        return fields

    def job_id(self) -> str:
        canonical = json.dumps(self.hashed(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def training_seeds(seed: int) -> dict[str, int]:
    """A ticket training's streams: data as an IMP run with this seed has them (same subset, same
    order); the random mask, the fresh initialization and a new output layer get streams of their own."""
    names = {"train": "train", "subset": "subset", "mask": "random-mask", "init": "random-init", "head": "head"}
    return {name: derive_seed(seed, key) for name, key in names.items()}


def variant(kind: str) -> tuple[str, str]:
    """``"random"`` -> ``("random", "random")``: the (mask, weights) of a named training kind."""
    try:
        return VARIANTS[kind]
    except KeyError:
        raise UserError(f"unknown ticket variant {kind!r}; choose one of: {', '.join(VARIANTS)}") from None


def ticket_model(ticket: Ticket, spec: TrainSpec) -> tuple[nn.Module, Mask]:
    """The model and mask a :class:`TrainSpec` starts from (see the module docstring)."""
    if ticket.info.model != spec.model:
        raise UserError(f"the ticket is for {ticket.info.model}, the training spec says {spec.model}")
    return start_model(ticket, spec.num_classes, spec.seeds(), spec.mask, spec.weights)


def start_model(ticket: Ticket, num_classes: int, seeds: dict[str, int], mask_kind: str = "ticket",
                weights_kind: str = "ticket") -> tuple[nn.Module, Mask]:
    """The model (on the CPU) and mask a training with ``num_classes`` outputs starts from: the
    ticket's rewind-point weights, or a fresh init (``seeds["init"]``); a fresh output layer
    (``seeds["head"]``) exactly when the class count differs; the ticket's mask or a permutation of
    it (``seeds["mask"]``)."""
    check_weights_held(ticket, mask_kind, weights_kind)
    info = ticket.info
    if weights_kind == "ticket":
        model = create_model(info.model, info.num_classes, info.width, 0, **info.model_options)
        load_state_into(model, ticket.state, ticket.path or "ticket")
        if num_classes != info.num_classes:
            replace_output_layer(model, num_classes, seeds["head"])
    else:
        model = create_model(info.model, num_classes, info.width, seeds["init"], **info.model_options)
    head_name = output_layer(model)[0] + ".weight"
    head = model.get_parameter(head_name)
    mask = ticket.mask
    if head_name in mask and mask[head_name].shape != head.shape:
        # A pruned output layer cannot follow the ticket to a new class count: the new one is dense.
        mask = Mask({**mask, head_name: torch.ones_like(head, dtype=torch.bool)})
    if mask_kind != "ticket":
        mask = random_mask(mask, seeds["mask"], head_name, layerwise=mask_kind == "random-layerwise")
    return model, mask


def check_weights_held(ticket: Ticket, mask_kind: str, weights_kind: str) -> None:
    """A compact ticket has no weights at pruned positions: a random mask over its weights cannot be made."""
    if ticket.compact and weights_kind == "ticket" and mask_kind != "ticket":
        raise UserError(f"{ticket.path or 'this ticket'} is a compact ticket file: it holds no weights at pruned "
                        f"positions, which a random mask over the ticket's weights (random-mask) needs; use the "
                        "dense ticket file (tickets export without --compact)")


class TrainingDir:
    """``<store>/trainings/<job id>/``."""

    def __init__(self, root: Path):
        self.root = Path(root)

    @classmethod
    def for_spec(cls, store: Path, spec: TrainSpec) -> TrainingDir:
        return cls(trainings_root(store) / spec.job_id())

    @property
    def spec_file(self) -> Path:
        return self.root / "spec.json"

    @property
    def result_file(self) -> Path:
        return self.root / "result.json"

    @property
    def checkpoint_file(self) -> Path:
        return self.root / "checkpoint.pt"

    def read_result(self) -> LevelResult | None:
        return read_result_file(self.result_file, "delete it to train again")

    def write_spec(self, spec: TrainSpec, ticket: Ticket) -> None:
        record = {"job_id": spec.job_id(), "hashed": spec.hashed(), "spec": spec.model_dump(), "kind": spec.kind,
                  "ticket_sha256": ticket.sha256}
        if read_record(self.spec_file).get("hashed", record["hashed"]) != record["hashed"]:
            raise UserError(f"{self.root} holds a different training than this spec; move it away or use another --store")
        write_json_atomic(self.spec_file, record)

    def trained_ticket(self) -> str | None:
        """The sha256 of the ticket this folder trains (None before it started, or when written by
        a oneticket that did not record it)."""
        if not self.spec_file.exists():
            return None
        return read_record(self.spec_file).get("ticket_sha256")

    def set_aside(self) -> Path:
        """Move this folder to ``<trainings>/.superseded/<job id>-<n>`` (kept, out of the way)."""
        parent, n = self.root.parent / ".superseded", 1
        while (parent / f"{self.root.name}-{n}").exists():
            n += 1
        aside = parent / f"{self.root.name}-{n}"
        aside.mkdir(parents=True)
        for path in self.root.iterdir():
            if path.name != ".lock":  # the lock stays with the folder the caller holds
                path.rename(aside / path.name)
        return aside


def trainings_root(store: Path) -> Path:
    return Path(store).expanduser() / "trainings"


def train_ticket(
    spec: TrainSpec,
    ticket: Ticket,
    directory: TrainingDir,
    data: DeviceData,
    on_event: EventSink = ignore_event,
    speed: Speed | None = None,
) -> LevelResult:
    """Train ``ticket`` as ``spec`` says (resuming a checkpoint), or read back a finished result.

    Emits the same events as an IMP level (``level`` = the ticket's level). The caller holds the
    directory's lock and gives ``data`` loaded for ``spec`` (its dataset, subset and batch size).
    """
    recorded = directory.trained_ticket()
    if recorded is not None and recorded != ticket.sha256:  # this result (or checkpoint) is another ticket's
        aside = directory.set_aside()
        log.warning("%s trained another ticket of run %s level %d (sha256 %s..., now %s...); set aside in %s, "
                    "training this one", directory.root, spec.source, spec.level, recorded[:12], ticket.sha256[:12], aside)
    done = directory.read_result()
    if done is not None:
        on_event(LevelFinished(done, skipped=True))
        return done
    if data.num_classes != spec.num_classes:
        raise UserError(f"data for {spec.dataset} has {data.num_classes} classes, expected {spec.num_classes}")
    began = time.perf_counter()
    settings = spec.train_settings(spec.seeds()["train"], data.steps_per_epoch)
    directory.write_spec(spec, ticket)
    model, mask = ticket_model(ticket, spec)
    model = model.to(data.device)
    level = spec.level
    hooks = TrainHooks(
        on_start=lambda epoch: on_event(LevelStarted(level, mask.fraction_pruned(), epoch)),
        on_step=lambda e, s, n, loss: on_event(StepDone(level, e, s, n, loss)),
        on_epoch=lambda record: on_event(EpochDone(level, record)),
    )
    outcome = train(model, data, settings, mask.to(data.device), directory.checkpoint_file, hooks, speed=speed)
    compute = outcome_compute(outcome.history, data.steps_per_epoch, data.images_per_epoch, len(data.test_labels))
    result = LevelResult.of_training(level, mask, outcome, time.perf_counter() - began, data.device,
                                     (data.train_size, len(data.test_labels)), compute)
    result = replace(result, find_compute=ticket.info.find_compute)
    write_json_atomic(directory.result_file, asdict(result))
    directory.checkpoint_file.unlink(missing_ok=True)
    on_event(LevelFinished(result, skipped=False))
    return result
