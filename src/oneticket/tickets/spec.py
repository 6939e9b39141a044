"""The IMP run spec: hyperparameters as data.

Each field is at once a CLI flag (``--train-size``), its help text (the field's description) and a
component of the run's content hash. The hash covers every field that changes what is computed;
``levels`` is left out so that asking for more levels continues the same run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from oneticket.data import dataset_info, dataset_names
from oneticket.errors import UserError
from oneticket.models import check_options, model_entry, model_names
from oneticket.seeding import derive_seed
from oneticket.training import LR_SCALINGS, TrainSettings, default_lr, duration_steps, parse_duration, scale_milestones, scaled_lr

SPEC_VERSION = 1
NOT_HASHED = frozenset({"levels"})

# The ticket finders (the registry of names; their rules are in oneticket.tickets.finders).
FINDERS: dict[str, str] = {
    "imp": "iterative magnitude pruning and rewinding (the default)",
    "oneshot": "magnitudes of the dense run's trained weights",
    "magnitude-rewind": "magnitudes of the rewind-point weights",
    "snip": "SNIP (Lee et al. 2019): |gradient x weight|",
    "grasp": "GraSP (Wang et al. 2020): keeps w x Hg (gradient flow)",
    "synflow": "SynFlow (Tanaka et al. 2020): data-free, iterative",
    "random-layerwise": "random mask, the same fraction kept in every layer",
    "erk": "random mask, Erdos-Renyi-kernel layer densities",
}
Finder = Literal["imp", "oneshot", "magnitude-rewind", "snip", "grasp", "synflow", "random-layerwise", "erk"]
SCORED_FINDERS = ("snip", "grasp", "synflow")  # scored at the rewind point or at initialization
MAGNITUDE_FINDERS = ("imp", "oneshot", "magnitude-rewind")  # where --layerwise applies
DEFAULT_ROUNDS = 100
FINDER_HELP = "how tickets are found (see Finders above); finders other than imp share the dense run of the IMP run of the same settings"


def parse_sparsities(value: object) -> object:
    """``"0.5,0.8,0.9"`` (a CLI flag) -> ``(0.5, 0.8, 0.9)``; lists pass through."""
    if isinstance(value, str):
        try:
            return tuple(float(part) for part in value.split(",") if part.strip())
        except ValueError:
            raise ValueError("sparsities must be fractions pruned separated by commas, like 0.5,0.9,0.98") from None
    return value


def check_sparsities(value: tuple[float, ...] | None) -> tuple[float, ...] | None:
    if value is None:
        return value
    if not value:
        raise ValueError("sparsities is empty; give at least one fraction pruned, like 0.9")
    if any(not 0.0 < s < 1.0 for s in value):
        raise ValueError("sparsities are fractions pruned, each above 0 and below 1")
    if list(value) != sorted(set(value)):
        raise ValueError("sparsities must increase and not repeat")
    return value


Sparsities = Annotated[tuple[float, ...] | None, BeforeValidator(parse_sparsities), AfterValidator(check_sparsities)]


@contextlib.contextmanager
def as_value_error() -> Iterator[None]:
    """Let pydantic report a registry lookup failure against the field that caused it."""
    try:
        yield
    except UserError as exc:
        raise ValueError(str(exc)) from None


def known_model(value: str) -> str:
    with as_value_error():
        model_entry(value)
    return value


def known_dataset(value: str) -> str:
    with as_value_error():
        dataset_info(value)
    return value


ModelName = Annotated[str, AfterValidator(known_model)]
DatasetName = Annotated[str, AfterValidator(known_dataset)]


def normalized_rewind(text: str) -> str:
    """``" 1ep"`` -> ``"1ep"``; a malformed rewind point is a validation error."""
    count, unit = parse_rewind(text)
    return f"{count}{unit}"


RewindPoint = Annotated[str, AfterValidator(normalized_rewind)]


def normalized_warmup(text: str) -> str:
    count, unit = parse_duration(text, "warm-up")
    return f"{count}{unit}"


Warmup = Annotated[str, AfterValidator(normalized_warmup)]
LrScaling = Literal["none", "linear"]
assert LR_SCALINGS == ("none", "linear")  # the Literal above spells the same choices

LR_HELP = "base learning rate (default: the seed's, sgd 0.1 / adam 3e-4, which belong to batch 512)"
LR_SCALING_HELP = "none, or linear: the learning rate x batch-size / 512 (Goyal et al. 2017), for batches other than the seed's 512"
WARMUP_HELP = "linear learning-rate warm-up at the start of every training: Nep (epochs) or Nit (iterations); default none"
Augment = Literal["crop-flip", "crop", "none"]
AUGMENT_HELP = ("training augmentation: crop-flip (the seed's: random 32x32 crop of the 4-pixel padded image + horizontal flip), "
                "crop (no flip), or none")


class Schedule:
    """What a spec with ``model``, ``dataset`` and ``epochs`` fields derives from them (a mixin for
    pydantic models; it declares no fields itself, so the models keep their own field order)."""

    if TYPE_CHECKING:  # declared as fields by the model class that mixes this in
        model: str
        dataset: str
        epochs: int | None
        optimizer: str
        batch_size: int
        precision: str
        lr: float | None
        lr_scaling: str
        warmup: str | None
        augment: str

    @property
    def num_epochs(self) -> int:
        return self.epochs or model_entry(self.model).epochs

    @property
    def milestones(self) -> tuple[int, ...]:
        entry = model_entry(self.model)
        return scale_milestones(entry.milestones, entry.epochs, self.num_epochs)

    @property
    def num_classes(self) -> int:
        return dataset_info(self.dataset).num_classes

    @property
    def base_lr(self) -> float:
        """The learning rate each training runs at (after any warm-up, before the milestones):
        ``lr`` (or the seed's for the optimizer) under the ``lr_scaling`` rule."""
        return scaled_lr(self.lr if self.lr is not None else default_lr(self.optimizer), self.lr_scaling, self.batch_size)

    def hash_recipe(self, fields: dict[str, Any]) -> None:
        """The training recipe's settings that came after the first runs (learning rate, warm-up,
        augmentation), hashed only where they differ from the seed's recipe, so that specs leaving
        them at their defaults keep the ids they had before these settings existed."""
        self.hash_learning_rate(fields)
        if fields.get("augment") == "crop-flip":
            fields.pop("augment")

    def hash_learning_rate(self, fields: dict[str, Any]) -> None:
        """Put the learning-rate settings into ``fields`` as what they compute: the base rate only
        where it differs from the seed's, the warm-up only where there is one. Specs that leave
        them at their defaults keep the ids they had before these settings existed, and two
        spellings of one rate (``lr = 0.00625`` or the seed's rate scaled to batch 32) are one run."""
        for key in ("lr", "lr_scaling", "warmup"):
            fields.pop(key, None)
        if self.base_lr != default_lr(self.optimizer):
            fields["lr"] = self.base_lr
        if self.warmup is not None and parse_duration(self.warmup)[0] > 0:
            fields["warmup"] = self.warmup

    def check_warmup(self) -> None:
        """A warm-up in epochs longer than training is a mistake we can see before any data is read."""
        if self.warmup is not None:
            count, unit = parse_duration(self.warmup)
            if unit == "ep" and count > self.num_epochs:
                raise ValueError(f"warm-up {self.warmup} is longer than training ({self.num_epochs} epochs); choose a shorter warm-up")

    def train_settings(self, seed: int, steps_per_epoch: int) -> TrainSettings:
        """What the training loop needs: optimizer, schedule, seed, precision, learning rates."""
        warmup = duration_steps(self.warmup, steps_per_epoch)
        total = self.num_epochs * steps_per_epoch
        if warmup > total:
            raise UserError(f"warm-up {self.warmup} is longer than training ({self.num_epochs} epochs of {steps_per_epoch} "
                            f"steps = {total} steps); choose a shorter --warmup")
        return TrainSettings(self.optimizer, self.num_epochs, self.milestones, seed, self.precision, self.base_lr, warmup,
                             self.augment)


def parse_rewind(text: str) -> tuple[int, str]:
    """``"1ep"`` -> ``(1, "ep")``; ``"500it"`` -> ``(500, "it")``."""
    return parse_duration(text, "rewind point")


class ImpSpec(Schedule, BaseModel):
    """Everything that determines an iterative-magnitude-pruning run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: ModelName = Field("vgg19", description=f"model architecture: {', '.join(model_names())}")
    width: float = Field(1.0, gt=0, le=16, description="channel width multiplier (e.g. 0.125 for CPU-scale runs)")
    stem: str | None = Field(None, description="ResNet stem: imagenet (7x7 conv + max-pool, the default) or cifar (3x3 conv)")
    dataset: DatasetName = Field("cifar10", description=f"training dataset: {', '.join(dataset_names())}")
    train_size: int | None = Field(None, ge=1, description="train on a stratified, seeded subset of this many images")
    optimizer: Literal["sgd", "adam"] = Field("sgd", description="sgd (lr 0.1, momentum 0.9) or adam (lr 3e-4); weight decay 1e-4")
    epochs: int | None = Field(None, ge=1, description="epochs per level (default: the paper's, 160 for VGG19, 90 for ResNet50); milestones scale along")
    batch_size: int = Field(512, ge=2, description="training batch size")
    levels: int = Field(30, ge=0, le=200, description="pruning levels after the dense level 0 (0 = dense training only)")
    rate: float = Field(0.2, gt=0, lt=1, description="fraction of the surviving weights pruned at each level (one-shot: --levels 1 --rate 0.9)")
    layerwise: bool = Field(False, description="prune the same fraction in every layer instead of one global threshold")
    prune_output: bool = Field(False, description="also prune the output (classifier) layer")
    rewind: RewindPoint = Field("1ep", description="late-reset point: Nep (epochs) or Nit (iterations) of the dense run; 0it = original init")
    seed: int = Field(0, ge=0, description="seed from which init, data order, augmentation and subset seeds derive")
    precision: Literal["fp32", "bf16"] = Field(
        "fp32", description="fp32, or bf16: mixed precision (autocast to bfloat16), faster on recent CPUs and GPUs; changes results")
    lr: float | None = Field(None, gt=0, le=10, description=LR_HELP)
    lr_scaling: LrScaling = Field("none", description=LR_SCALING_HELP)
    warmup: Warmup | None = Field(None, description=WARMUP_HELP)
    augment: Augment = Field("crop-flip", description=AUGMENT_HELP)
    finder: Finder = Field("imp", description=FINDER_HELP)
    sparsities: Sparsities = Field(None, description="fractions pruned, one ticket each, for finders other than imp: "
                                   "0.5,0.8,0.9 (default: where --levels levels at --rate reach)")
    mask_epochs: int | None = Field(None, ge=1, description="imp only: epochs each level trains to pick the next mask "
                                    "(default: the full schedule); every ticket is still trained in full")
    score_at: Literal["rewind", "init"] = Field("rewind", description="snip, grasp, synflow: score the weights at the "
                                                "rewind point or at initialization (the ticket keeps the rewind-point weights)")
    rounds: int = Field(DEFAULT_ROUNDS, ge=1, le=10000, description="synflow: pruning rounds (exponential schedule)")

    @model_validator(mode="after")
    def _options_fit_model(self) -> ImpSpec:
        with as_value_error():
            check_options(self.model, self.model_options())
        if self.stem is not None and self.stem not in ("imagenet", "cifar"):
            raise ValueError(f"stem must be imagenet or cifar, got {self.stem!r}")
        self.check_warmup()
        self._check_finder_settings()
        if self.finder != "imp":  # one level per sparsity; the list (not the level count) is part of the run
            object.__setattr__(self, "sparsities", self.sparsity_targets())
            object.__setattr__(self, "levels", len(self.sparsities))
        return self

    def _check_finder_settings(self) -> None:
        """A finder setting given to a finder it does not apply to is a mistake, said in one line."""
        finder = self.finder
        if self.sparsities is not None and finder == "imp":
            raise ValueError("sparsities (--sparsities) are for the finders other than imp (IMP's follow from levels and rate)")
        if self.mask_epochs is not None:
            if finder != "imp":
                raise ValueError(f"mask_epochs (--mask-epochs) is a setting of the imp finder, not of {finder}")
            if self.mask_epochs >= self.num_epochs:
                raise ValueError(f"mask_epochs ({self.mask_epochs}) must be fewer than the epochs of training "
                                 f"({self.num_epochs}); leave it out for plain IMP")
            count, unit = parse_duration(self.warmup) if self.warmup is not None else (0, "ep")
            if unit == "ep" and count > self.mask_epochs:
                raise ValueError(f"warm-up {self.warmup} is longer than the {self.mask_epochs}-epoch trainings that pick "
                                 "the masks (mask_epochs); choose more mask_epochs or a shorter warm-up")
        if self.score_at != "rewind" and finder not in SCORED_FINDERS:
            raise ValueError(f"score_at (--score-at) applies to {', '.join(SCORED_FINDERS)}, not to {finder}")
        if self.rounds != DEFAULT_ROUNDS and finder != "synflow":
            raise ValueError(f"rounds (--rounds) is a setting of the synflow finder, not of {finder}")
        if self.layerwise and finder not in MAGNITUDE_FINDERS:
            raise ValueError(f"layerwise (--layerwise) applies to the magnitude finders ({', '.join(MAGNITUDE_FINDERS)}), not to {finder}")
        if finder != "imp" and self.levels == 0 and self.sparsities is None:
            raise ValueError(f"the {finder} finder needs sparsities (or levels above 0)")

    @property
    def finds_by_imp(self) -> bool:
        return self.finder == "imp"

    @property
    def shares_dense_run(self) -> bool:
        """Anything but plain IMP takes its level 0 (dense training, rewind point) from the IMP run of its settings."""
        return self.finder_settings() != {"finder": "imp"}

    def sparsity_targets(self) -> tuple[float, ...]:
        """The fraction pruned each level 1..levels aims at: a finder's sparsities, or where
        ``levels`` IMP levels at ``rate`` reach (IMP's own counts are rounded level by level)."""
        if self.sparsities is not None:
            return self.sparsities
        return tuple(1.0 - (1.0 - self.rate) ** level for level in range(1, self.levels + 1))

    def finder_settings(self) -> dict[str, Any]:
        """The finder and the settings that apply to it (what a ticket records and the run id hashes)."""
        settings: dict[str, Any] = {"finder": self.finder}
        if self.finder == "imp":
            if self.mask_epochs is not None:
                settings["mask_epochs"] = self.mask_epochs
            return settings
        settings["sparsities"] = list(self.sparsity_targets())
        if self.finder in SCORED_FINDERS:
            settings["score_at"] = self.score_at
        if self.finder == "synflow":
            settings["rounds"] = self.rounds
        return settings

    @property
    def finder_label(self) -> str:
        """``imp``, ``imp, masks from 5 ep``, ``snip``, ``snip at init``, ``synflow, 20 rounds``."""
        label = self.finder
        if self.mask_epochs is not None:
            label += f", masks from {self.mask_epochs} ep"
        if self.score_at == "init":
            label += " at init"
        if self.rounds != DEFAULT_ROUNDS:
            label += f", {self.rounds} rounds"
        return label

    def dense_spec(self) -> ImpSpec:
        """The IMP run whose level 0 (dense training, rewind point) every finder of these settings
        shares: this spec with the finder settings at their defaults."""
        return self.model_copy(update={"finder": "imp", "sparsities": None, "mask_epochs": None, "score_at": "rewind",
                                       "rounds": DEFAULT_ROUNDS, "levels": 0})

    def model_options(self) -> dict[str, Any]:
        """Keyword options for the model factory (only those the user set)."""
        return {} if self.stem is None else {"stem": self.stem}

    def resolved_model_options(self) -> dict[str, Any]:
        """Every option of the model, defaults filled in (``{"stem": "imagenet"}`` for ResNet50)."""
        return {**model_entry(self.model).options, **self.model_options()}

    def seeds(self) -> dict[str, int]:
        """The independent random streams of this run."""
        return {name: derive_seed(self.seed, name) for name in ("init", "train", "subset")}

    def rewind_step(self, steps_per_epoch: int) -> int:
        count, unit = parse_rewind(self.rewind)
        return count * steps_per_epoch if unit == "ep" else count

    def hashed(self) -> dict[str, Any]:
        """The fields that define what is computed, with defaults resolved."""
        fields = self.model_dump(exclude=set(NOT_HASHED))
        fields["model_options"] = self.resolved_model_options()
        fields.pop("stem")
        fields["epochs"] = self.num_epochs
        if self.precision == "fp32":
            fields.pop("precision")  # fp32 runs keep the ids they had before precision was a setting
        self.hash_recipe(fields)
        for key in ("finder", "sparsities", "mask_epochs", "score_at", "rounds"):
            fields.pop(key)
        settings = self.finder_settings()
        if settings != {"finder": "imp"}:  # plain IMP keeps the ids it had before finders existed
            fields["finder"] = settings
            if self.finder != "imp":
                fields.pop("rate")  # the sparsities say where the levels are
        fields["kind"] = "imp"
        fields["version"] = SPEC_VERSION
        return fields

    def run_id(self) -> str:
        canonical = json.dumps(self.hashed(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]
