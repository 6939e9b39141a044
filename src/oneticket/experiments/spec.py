"""Experiment specs: one TOML file describes one experiment of the paper (or a new one).

::

    name = "across_datasets"
    title = "Transfer across datasets"
    models = ["vgg19", { name = "resnet50", stem = "cifar" }]
    sources = [{ dataset = "cifar10", optimizer = "sgd" }, { dataset = "cifar100" }]
    targets = ["cifar10", "cifar100", "svhn", "fashionmnist"]
    train_optimizers = ["sgd"]
    baselines = ["own", "random"]
    seeds = [0, 1, 2]

    [scale]            # applies to every training; a model entry may override any of it
    width = 0.125
    train_size = 5000
    epochs = 15
    batch_size = 512

    [pruning]
    levels = 8         # IMP levels after the dense level 0
    rate = 0.2
    rewind = "1ep"
    train_levels = [0, 2, 4, 6, 8]   # levels whose tickets are transferred (default: all)

Each panel of the result is one (model, target, train optimizer); its lines are the tickets of
each source (trained on the target with the train optimizer), the target's own ticket, and the
random-ticket baselines. A source equal to the panel's (target, optimizer) is the own ticket.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from oneticket.errors import UserError
from oneticket.models import check_options
from oneticket.tickets import VARIANTS
from oneticket.tickets.spec import DatasetName, ModelName, RewindPoint, as_value_error

Optimizer = Literal["sgd", "adam"]
Baseline = Literal["own", "random", "random-layerwise", "random-mask", "random-weights"]
RANDOM_BASELINES = tuple(k for k in VARIANTS if k != "transfer")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)




class Scale(Strict):
    """How big each training is."""

    width: float = Field(1.0, gt=0, le=16)
    train_size: int | None = Field(None, ge=1)
    epochs: int | None = Field(None, ge=1)
    batch_size: int = Field(512, ge=2)
    precision: Literal["fp32", "bf16"] = "fp32"


class ModelChoice(Strict):
    """A model, with optional overrides of the experiment's scale."""

    name: ModelName
    stem: str | None = None
    width: float | None = Field(None, gt=0, le=16)
    train_size: int | None = Field(None, ge=1)
    epochs: int | None = Field(None, ge=1)
    batch_size: int | None = Field(None, ge=2)
    precision: Literal["fp32", "bf16"] | None = None

    @model_validator(mode="after")
    def _options_fit(self) -> ModelChoice:
        if self.stem is not None:
            with as_value_error():
                check_options(self.name, {"stem": self.stem})
            if self.stem not in ("imagenet", "cifar"):
                raise ValueError(f"stem must be imagenet or cifar, got {self.stem!r}")
        return self

    def scale(self, base: Scale) -> Scale:
        overrides = {k: v for k, v in self.model_dump(exclude={"name", "stem"}).items() if v is not None}
        return base.model_copy(update=overrides)

    @property
    def label(self) -> str:
        return self.name if self.stem is None else f"{self.name} ({self.stem} stem)"


class Source(Strict):
    """Where tickets are found: a dataset and an optimizer."""

    dataset: DatasetName
    optimizer: Optimizer = "sgd"

    @property
    def label(self) -> str:
        return f"{self.dataset} ({self.optimizer})"


class Pruning(Strict):
    levels: int = Field(30, ge=0, le=200, description="IMP levels after the dense level 0")
    rate: float = Field(0.2, gt=0, lt=1)
    rewind: RewindPoint = "1ep"
    layerwise: bool = False
    prune_output: bool = False
    train_levels: list[int] | None = Field(None, description="levels whose tickets are trained on the targets (default: all)")

    @model_validator(mode="after")
    def _levels_in_range(self) -> Pruning:
        if self.train_levels is not None:
            if not self.train_levels:
                raise ValueError("train_levels is empty; leave it out to train every level")
            bad = [level for level in self.train_levels if not 0 <= level <= self.levels]
            if bad:
                raise ValueError(f"train_levels {bad} are outside 0..{self.levels} (levels = {self.levels})")
            if len(set(self.train_levels)) != len(self.train_levels):
                raise ValueError("train_levels lists a level twice")
        return self

    @property
    def levels_to_train(self) -> list[int]:
        return sorted(self.train_levels) if self.train_levels is not None else list(range(self.levels + 1))


class ExperimentSpec(Strict):
    """One experiment: sources, targets, optimizers, baselines, seeds, and a scale."""

    name: str = Field(..., pattern=r"^[A-Za-z0-9_.-]+$")
    title: str = ""
    description: str = ""
    models: list[ModelChoice] = Field(..., min_length=1)
    sources: list[Source] = Field(..., min_length=1)
    targets: list[DatasetName] = Field(..., min_length=1)
    train_optimizers: list[Optimizer] = Field(["sgd"], min_length=1)
    baselines: list[Baseline] = ["own", "random"]
    seeds: list[int] = Field([0], min_length=1)
    scale: Scale = Scale()
    pruning: Pruning = Pruning()

    @field_validator("models", mode="before")
    @classmethod
    def _names_as_tables(cls, value: object) -> object:
        if isinstance(value, list):
            return [{"name": v} if isinstance(v, str) else v for v in value]
        return value

    @field_validator("seeds", mode="before")
    @classmethod
    def _count_as_list(cls, value: object) -> object:
        return list(range(value)) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("seeds")
    @classmethod
    def _seeds_valid(cls, value: list[int]) -> list[int]:
        if any(s < 0 for s in value) or len(set(value)) != len(value):
            raise ValueError("seeds must be distinct non-negative integers (or a count: seeds = 6)")
        return value

    @property
    def display_title(self) -> str:
        return self.title or self.name.replace("_", " ")


def _field_path(location: tuple[object, ...], spec: dict) -> str:
    """``("models", 1, "name")`` -> ``models[1].name`` (list entries indexed, tables dotted)."""
    parts: list[str] = []
    for item in location:
        if isinstance(item, int):
            parts[-1:] = [f"{parts[-1]}[{item}]" if parts else f"[{item}]"]
        elif item not in ("function-after", "function-before") and not str(item).startswith(("function-", "literal[")):
            parts.append(str(item))
    return ".".join(parts) or "(top level)"


def experiment_error(path: Path | str, exc: ValidationError, raw: dict) -> UserError:
    """One readable line for the first problem: file, field and why."""
    first = exc.errors()[0]
    field = _field_path(first["loc"], raw)
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown key (check its spelling against the documented keys)"
    elif first["type"] == "missing":
        message = "required key is missing"
    more = f" (and {len(exc.errors()) - 1} more problem(s))" if len(exc.errors()) > 1 else ""
    return UserError(f"{path}: {field}: {message}{more}")


def parse_experiment(text: str, path: Path | str = "<spec>") -> ExperimentSpec:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path} is not valid TOML: {exc}") from None
    try:
        return ExperimentSpec.model_validate(raw)
    except ValidationError as exc:
        raise experiment_error(path, exc, raw) from None


def load_experiment(path: Path | str) -> ExperimentSpec:
    """Read and validate an experiment spec file, with one-line errors that name the field."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such spec file (the shipped ones are under experiments/paper and experiments/quick)")
    return parse_experiment(path.read_text(), path)
