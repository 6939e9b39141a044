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
    batch_size = 128
    lr_scaling = "linear"   # the seed's rates x 128/512 (default "none": the seed's rates as they are)
    warmup = "1ep"          # linear warm-up (default: none)
    # lr = { sgd = 0.05, adam = 1e-3 }   # base rates per optimizer (default: the seed's)

    [pruning]
    levels = 8         # IMP levels after the dense level 0
    rate = 0.2
    rewind = "1ep"
    train_levels = [0, 2, 4, 6, 8]   # levels whose tickets are transferred (default: all); the own
                                     # ticket shows every level (its IMP run computes them anyway)

Each panel of the result is one (model, target, train optimizer); its lines are the tickets of
each source (trained on the target with the train optimizer), the target's own ticket, and the
random-ticket baselines. A source equal to the panel's (target, optimizer) is the own ticket.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from oneticket.errors import UserError
from oneticket.models import check_options
from oneticket.tickets import VARIANTS
from oneticket.tickets.spec import (
    ImpSpec,
    DEFAULT_ROUNDS,
    Augment,
    DatasetName,
    Finder,
    LrScaling,
    ModelName,
    RewindPoint,
    Sparsities,
    Warmup,
    as_value_error,
)

Optimizer = Literal["sgd", "adam"]
LearningRates = dict[Optimizer, Annotated[float, Field(gt=0, le=10)]]
Baseline = Literal["own", "random", "random-layerwise", "random-mask", "random-weights"]
RANDOM_BASELINES = tuple(k for k in VARIANTS if k != "transfer")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _rates_by_optimizer(value: object) -> object:
    """``lr = 0.05`` is a rate for whichever optimizer trains; a table names one per optimizer."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return {"sgd": value, "adam": value}
    return value


class Scale(Strict):
    """How big each training is, and its learning rates."""

    width: float = Field(1.0, gt=0, le=16)
    train_size: int | None = Field(None, ge=1)
    epochs: int | None = Field(None, ge=1)
    batch_size: int = Field(512, ge=2)
    precision: Literal["fp32", "bf16"] = "fp32"
    lr: LearningRates | None = Field(None, description="base learning rate per optimizer, { sgd = 0.1, adam = 3e-4 } (default: the seed's)")
    lr_scaling: LrScaling = "none"
    warmup: Warmup | None = None
    augment: Augment = "crop-flip"

    @field_validator("lr", mode="before")
    @classmethod
    def _lr_table(cls, value: object) -> object:
        return _rates_by_optimizer(value)

    def lr_for(self, optimizer: str) -> float | None:
        return None if self.lr is None else self.lr.get(optimizer)  # type: ignore[call-overload]


class ModelChoice(Strict):
    """A model, with optional overrides of the experiment's scale."""

    name: ModelName
    stem: str | None = None
    width: float | None = Field(None, gt=0, le=16)
    train_size: int | None = Field(None, ge=1)
    epochs: int | None = Field(None, ge=1)
    batch_size: int | None = Field(None, ge=2)
    precision: Literal["fp32", "bf16"] | None = None
    lr: LearningRates | None = None
    lr_scaling: LrScaling | None = None
    warmup: Warmup | None = None
    augment: Augment | None = None

    @field_validator("lr", mode="before")
    @classmethod
    def _lr_table(cls, value: object) -> object:
        return _rates_by_optimizer(value)

    @model_validator(mode="after")
    def _options_fit(self) -> ModelChoice:
        if self.stem is not None:
            with as_value_error():
                check_options(self.name, {"stem": self.stem})
            if self.stem not in ("imagenet", "cifar"):
                raise ValueError(f"stem must be imagenet or cifar, got {self.stem!r}")
        return self

    def scale(self, base: Scale) -> Scale:
        """``base`` with this entry's settings; a learning-rate table is merged optimizer by optimizer."""
        overrides = {k: v for k, v in self.model_dump(exclude={"name", "stem"}).items() if v is not None}
        if self.lr is not None:
            overrides["lr"] = {**(base.lr or {}), **self.lr}
        return base.model_copy(update=overrides)

    @property
    def label(self) -> str:
        return self.name if self.stem is None else f"{self.name} ({self.stem} stem)"


class Source(Strict):
    """Where tickets are found: a dataset, an optimizer, and how (a finder and its settings)."""

    dataset: DatasetName
    optimizer: Optimizer = "sgd"
    finder: Finder = "imp"
    mask_epochs: int | None = Field(None, ge=1, description="imp: epochs each level trains to pick the next mask")
    score_at: Literal["rewind", "init"] = "rewind"
    rounds: int = Field(DEFAULT_ROUNDS, ge=1, le=10000)

    @property
    def is_plain_imp(self) -> bool:
        return self.finder == "imp" and self.mask_epochs is None

    @property
    def finder_label(self) -> str:
        """``imp``, ``imp, masks from 5 ep``, ``snip``, ``snip at init``, ``synflow, 20 rounds``."""
        return ImpSpec.model_construct(finder=self.finder, mask_epochs=self.mask_epochs, score_at=self.score_at,
                                       rounds=self.rounds).finder_label

    @property
    def label(self) -> str:
        if self.is_plain_imp:
            return f"{self.dataset} ({self.optimizer})"
        return f"{self.dataset} ({self.optimizer}, {self.finder_label})"

    def same_place(self, other: Source) -> bool:
        """Found on the same dataset with the same optimizer (by whatever finder)."""
        return (self.dataset, self.optimizer) == (other.dataset, other.optimizer)


class Pruning(Strict):
    levels: int = Field(30, ge=0, le=200, description="IMP levels after the dense level 0")
    rate: float = Field(0.2, gt=0, lt=1)
    rewind: RewindPoint = "1ep"
    layerwise: bool = False
    prune_output: bool = False
    train_levels: list[int] | None = Field(None, description="levels whose tickets are trained on the targets (default: all)")
    sparsities: Sparsities = Field(None, description="fractions pruned for the finders other than imp, one ticket "
                                   "each (default: where the IMP levels reach)")

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
    compare_at: Sparsities = Field(None, description="sparsities at which the report compares finders by accuracy "
                                   "and compute (default: pruning.sparsities, else up to four IMP levels)")

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

    @model_validator(mode="after")
    def _one_rate_per_optimizer(self) -> ExperimentSpec:
        used = {source.optimizer for source in self.sources} | set(self.train_optimizers)
        for where, lr in [("scale.lr", self.scale.lr)] + [(f"models[{i}].lr", m.lr) for i, m in enumerate(self.models)]:
            if lr is not None and len(used) > 1 and len(set(lr.values())) == 1 and len(lr) > 1:
                raise ValueError(f"{where}: one rate for both SGD and Adam (their defaults differ 300x); "
                                 "give one per optimizer: lr = { sgd = 0.1, adam = 3e-4 }")
        return self

    def comparison_sparsities(self) -> list[float]:
        """Where the report sets finders side by side: ``compare_at``, the finders' sparsities, or
        up to four of the levels IMP trains (spread from the first pruned one to the last)."""
        if self.compare_at is not None:
            return list(self.compare_at)
        if self.pruning.sparsities is not None:
            return list(self.pruning.sparsities)
        levels = [level for level in self.pruning.levels_to_train if level > 0]
        if len(levels) > 4:
            levels = [levels[round(i * (len(levels) - 1) / 3)] for i in range(4)]
        return [1.0 - (1.0 - self.pruning.rate) ** level for level in levels]

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
        raise UserError(f"{path}: no such spec file (built-in specs: {', '.join(builtin_names())})")
    return parse_experiment(path.read_text(), path)


BUILTIN_PACKAGE = "oneticket.experiments"
BUILTIN_FOLDER = "builtin"
DEMO = "demo"
DEMO_SPECS = ("demo_within_distribution", "demo_across_optimizers")  # the order 'oneticket demo' runs them in


def _builtin_files(folder: Traversable, prefix: str = "") -> dict[str, Traversable]:
    """``{"quick/within_distribution": <file>, ...}``: every ``.toml`` under ``folder``, by name."""
    found: dict[str, Traversable] = {}
    for entry in folder.iterdir():
        if entry.is_dir():
            found.update(_builtin_files(entry, f"{prefix}{entry.name}/"))
        elif entry.name.endswith(".toml"):
            found[prefix + entry.name.removesuffix(".toml")] = entry
    return found


def builtin_specs() -> dict[str, Traversable]:
    """The spec files shipped in the package, by name (``demo_within_distribution``, ``paper/across_datasets``)."""
    return dict(sorted(_builtin_files(resources.files(BUILTIN_PACKAGE) / BUILTIN_FOLDER).items()))


def builtin_names() -> list[str]:
    """What ``plan``, ``run``, ``report`` and ``results`` accept besides files: ``demo`` and each built-in spec."""
    return [DEMO, *builtin_specs()]


def is_demo(spec: ExperimentSpec) -> bool:
    """A spec of ``oneticket demo`` (whose runs live in ``<store>/demo``)."""
    return spec.name.startswith("demo_")


def _builtin_key(name: str) -> str:
    """``experiments/quick/within_distribution.toml`` -> ``quick/within_distribution`` (the README's paths
    name the shipped files as the repository's ``experiments/`` folder holds them)."""
    return name.removeprefix("./").removeprefix("experiments/").removesuffix(".toml")


def load_builtin(name: str) -> list[ExperimentSpec]:
    """The built-in spec ``name`` (``demo``: both demo specs); an unknown name is a :class:`UserError`."""
    files = builtin_specs()
    key = _builtin_key(name)
    keys = list(DEMO_SPECS) if key == DEMO else [key]
    if not all(k in files for k in keys):
        raise UserError(f"no spec file or built-in spec {name!r}; built-in: {', '.join(builtin_names())}")
    return [parse_experiment(files[k].read_text(), f"oneticket/experiments/{BUILTIN_FOLDER}/{k}.toml") for k in keys]


def load_specs(names: Iterable[str | Path]) -> list[ExperimentSpec]:
    """Experiment specs from spec files or built-in names: an existing file is read as a file,
    anything else is looked up among the built-in specs (``demo``, ``quick/within_distribution``)."""
    specs: list[ExperimentSpec] = []
    for name in names:
        path = Path(name).expanduser()
        specs.extend([load_experiment(path)] if path.is_file() else load_builtin(str(name)))
    return specs
