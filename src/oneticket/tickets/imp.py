"""Iterative magnitude pruning with late resetting, resumable level by level and epoch by epoch.

Level 0 trains the dense network and snapshots the full model state (parameters and BatchNorm
buffers) after the rewind point's iterations. Level L prunes ``rate`` of the weights that survived
level L-1 (by the magnitude of level L-1's trained weights), resets the model to the snapshot, and
trains the full schedule again with a fresh optimizer. Each level writes its ticket (mask +
rewind-point state), its trained weights and its result; a finished level is never recomputed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn

from oneticket.data import DeviceData, load_dataset
from oneticket.errors import TicketFileError, UserError
from oneticket.files import claimed, is_writable, link_or_copy
from oneticket.models import create_model
from oneticket.sparsity import Mask, magnitude_prune
from oneticket.tickets.finders import FinderInputs, finder_mask
from oneticket.tickets.rundir import LevelResult, RunDir, chain_link
from oneticket.tickets.spec import ImpSpec
from oneticket.tickets.ticket import (
    Ticket,
    TicketInfo,
    load_ticket,
    load_weights,
    load_weights_with_info,
    save_ticket,
    save_weights,
    weights_sha256,
)
from oneticket.training import Compute, EpochRecord, Speed, TrainHooks, TrainResult, outcome_compute, train


@dataclass(frozen=True)
class RunStarted:
    spec: ImpSpec
    run_dir: Path
    steps_per_epoch: int
    train_size: int
    device: str
    finished_levels: int


@dataclass(frozen=True)
class LevelStarted:
    level: int
    fraction_pruned: float
    resumed_epoch: int


@dataclass(frozen=True)
class StepDone:
    level: int
    epoch: int  # 0-based
    step: int  # 0-based
    steps: int
    loss: float | None  # running mean over the epoch, when it was read back


@dataclass(frozen=True)
class EpochDone:
    level: int
    record: EpochRecord


@dataclass(frozen=True)
class LevelFinished:
    result: LevelResult
    skipped: bool  # finished by an earlier invocation


Event = RunStarted | LevelStarted | StepDone | EpochDone | LevelFinished
EventSink = Callable[[Event], None]


def ignore_event(_: Event) -> None:
    pass


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


class ImpRun:
    """One IMP run: its spec, its directory, its data and model, driven level by level."""

    def __init__(self, spec: ImpSpec, run_dir: RunDir, data: DeviceData, on_event: EventSink = ignore_event,
                 speed: Speed = Speed()):
        self.spec = spec
        self.speed = speed
        self.dir = run_dir
        self.data = data
        self.emit = on_event
        self.seeds = spec.seeds()
        self.settings = spec.train_settings(self.seeds["train"], data.steps_per_epoch)
        self.rewind_step = spec.rewind_step(data.steps_per_epoch)
        total_steps = spec.num_epochs * data.steps_per_epoch
        if self.rewind_step >= total_steps:
            raise UserError(
                f"rewind point {spec.rewind} is not before the end of training ({spec.num_epochs} epochs of "
                f"{data.steps_per_epoch} steps = {total_steps} steps); choose an earlier --rewind"
            )
        model = create_model(spec.model, data.num_classes, spec.width, self.seeds["init"], **spec.model_options())
        self.model = model.to(data.device)
        self.init_state = _cpu_state(self.model)
        self._rewind_state: dict[str, torch.Tensor] | None = None
        # a finder other than plain IMP shares the dense run (level 0, rewind point) of the IMP run of its settings
        self.dense_dir = RunDir(self.dir.root.parent / spec.dense_spec().run_id()) if spec.shares_dense_run else None

    @property
    def rewind_state(self) -> dict[str, torch.Tensor]:
        """The rewind-point state written by level 0 (read and verified once)."""
        if self._rewind_state is None:
            self._rewind_state = load_weights(self.dir.rewind_file)
        return self._rewind_state

    def run(self) -> list[LevelResult]:
        finished = self.dir.results()
        self.emit(RunStarted(self.spec, self.dir.root, self.data.steps_per_epoch, self.data.train_size,
                             str(self.data.device), len(finished)))
        results: list[LevelResult] = []
        self.check_chain()
        complete = self.dir.finished_results(self.spec) is not None  # nothing to train: check what is there
        for level in range(self.spec.levels + 1):
            done = self.dir.read_result(level)
            if done is None:
                done = self.train_level(level)
            else:
                if complete:
                    self.check_files(done)
                self.emit(LevelFinished(done, skipped=True))
            results.append(done)
            if done.diverged:
                break
        return results

    def check_chain(self) -> None:
        """Every finished level must derive from the level before it as that level is now: a
        finished level after an unfinished one, or one recorded as pruned from other files than
        the previous level's, is a one-line error naming where the chain breaks and the repair."""
        results = [self.dir.read_result(level) for level in range(self.spec.levels + 1)]
        for level in range(1, len(results)):
            done, previous = results[level], results[level - 1]
            if done is None:
                continue
            if previous is None:
                self._broken(level - 1, f"level {level} is finished but level {level - 1}, which it was pruned from, "
                                        "has no result")
            elif done.derived_from is not None and chain_link(previous) is not None and \
                    done.derived_from != chain_link(previous):
                self._broken(level, f"level {level} was pruned from other weights than level {level - 1}'s as they "
                                    "are now (that level was computed again)")

    def _broken(self, first_bad: int, why: str) -> None:
        last = self.spec.levels
        raise UserError(f"run {self.dir.root.name}: {why}. To recompute from level {first_bad}: delete the folders "
                        f"level_{first_bad:02d} to level_{last:02d} in {self.dir.root} and rerun the same command")

    def check_files(self, done: LevelResult) -> None:
        """A finished level's ticket and trained weights must still pass their checksums (checked
        when a finished run is run again; a run that goes on reads and checks the level it derives
        from). A damaged one is a one-line error that says how to make it again."""
        if done.diverged:
            return
        try:
            ticket = load_ticket(self.dir.ticket_file(done.level)).sha256
            trained = weights_sha256(self.dir.trained_file(done.level))
            if done.ticket_sha256 is not None and (ticket, trained) != (done.ticket_sha256, done.trained_sha256):
                raise TicketFileError(f"{self.dir.level_dir(done.level)}: its files are not the ones its result "
                                      "was recorded with (replaced by another run's?)")
        except TicketFileError as exc:
            raise UserError(f"level {done.level} of run {self.dir.root.name} is damaged: {exc}. Delete "
                            f"{self.dir.level_dir(done.level)} and the later level folders, then rerun to make them again") from None

    def level_mask(self, level: int) -> tuple[Mask, Compute | None]:
        """The mask level ``level`` trains, and the compute spent finding it (None where an earlier
        result does not record its compute). Level 0: nothing pruned (its finding compute, the
        rewind point's share of its training, is known after it). IMP level L prunes level L-1's
        survivors by the magnitudes of level L-1's trained weights (or, with ``mask_epochs``, of a
        short training of level L-1's ticket); other finders apply their rule to the dense run's
        states. A mask found for a level is kept in its folder until the level is finished, so a
        resumed level trains the same mask (scores on a GPU are not bitwise reproducible)."""
        if level == 0:
            return Mask.ones(self.model, self.spec.prune_output), Compute()
        path = self.dir.level_dir(level) / "mask.safetensors"
        if path.exists():
            tensors, info = load_weights_with_info(path)
            return Mask(tensors).to(self.data.device), (None if info.get("find_compute") is None else Compute.of(info["find_compute"]))
        mask, spent = self.finder_level_mask(level) if not self.spec.finds_by_imp else self.imp_level_mask(level)
        save_weights(path, dict(mask.to("cpu")), {"run_id": self.spec.run_id(), "level": level,
                                                 "find_compute": None if spent is None else spent.as_dict()})
        return mask, spent

    def imp_level_mask(self, level: int) -> tuple[Mask, Compute | None]:
        before = self.dir.read_result(level - 1)
        assert before is not None  # levels run in order
        previous = load_ticket(self.dir.ticket_file(level - 1)).mask
        if self.spec.mask_epochs is None:
            trained = load_weights(self.dir.trained_file(level - 1))
            spent = total_compute(before.compute, before.find_compute if level > 1 else {})
        else:
            trained, search = self.short_training(level, previous)
            spent = total_compute(before.find_compute, search.as_dict())
        return magnitude_prune(trained, previous, self.spec.rate, self.spec.layerwise), spent

    def finder_level_mask(self, level: int) -> tuple[Mask, Compute | None]:
        dense = self.dir.read_result(0)
        assert dense is not None
        inputs = FinderInputs(self.spec, self.model, Mask.ones(self.model, self.spec.prune_output).to(self.data.device),
                              self.init_state, lambda: self.rewind_state, lambda: load_weights(self.dir.trained_file(0)),
                              self.data)
        mask, scoring = finder_mask(inputs, self.spec.sparsity_targets()[level - 1])
        dense_part = dense.compute if self.spec.finder == "oneshot" else dense.find_compute
        return mask, total_compute(dense_part, scoring.as_dict())

    def short_training(self, level: int, previous: Mask) -> tuple[dict[str, torch.Tensor], Compute]:
        """``previous`` (level L-1's mask) trained ``mask_epochs`` epochs from the rewind point (level 1:
        the dense network from initialization), kept as ``search.safetensors`` in level L's folder."""
        path = self.dir.level_dir(level) / "search.safetensors"
        if path.exists():
            weights, info = load_weights_with_info(path)
            return weights, Compute.of(info.get("compute"))
        short = self.spec.model_copy(update={"epochs": self.spec.mask_epochs})
        try:
            settings = short.train_settings(self.seeds["train"], self.data.steps_per_epoch)
        except UserError as exc:
            raise UserError(f"{exc} (here: the {self.spec.mask_epochs}-epoch trainings that pick the masks; or choose "
                            "more --mask-epochs)") from None
        self.model.load_state_dict(self.init_state if level == 1 else self.rewind_state)
        checkpoint = self.dir.level_dir(level) / "search_checkpoint.pt"
        outcome = train(self.model, self.data, settings, previous.to(self.data.device), checkpoint, speed=self.speed)
        if outcome.diverged:
            raise UserError(f"run {self.dir.root.name}: the {self.spec.mask_epochs}-epoch training that picks level "
                            f"{level}'s mask diverged ({outcome.diverged}); try a lower --lr or a --warmup")
        spent = self.training_compute(outcome)
        save_weights(path, _cpu_state(self.model), {"run_id": self.spec.run_id(), "level": level, "compute": spent.as_dict()})
        checkpoint.unlink(missing_ok=True)
        return load_weights(path), spent

    def training_compute(self, outcome: TrainResult) -> Compute:
        return outcome_compute(outcome.history, self.data.steps_per_epoch, self.data.images_per_epoch, len(self.data.test_labels))

    def adopt_dense_level(self) -> LevelResult:
        """Level 0 of a run that shares the dense run: the IMP run's level 0 (its trained weights
        and rewind point linked, its dense ticket written again under this run's name)."""
        assert self.dense_dir is not None
        dense = self.dense_dir.read_result(0)
        if dense is None:
            raise UserError(f"the {self.spec.finder} finder needs the dense training (level 0) of IMP run "
                            f"{self.dense_dir.root.name}, which is not in this store; run 'oneticket find' with the "
                            "same settings and --levels 0 first (or let 'oneticket run' schedule it)")
        if not dense.diverged:
            link_or_copy(self.dense_dir.rewind_file, self.dir.rewind_file)
            link_or_copy(self.dense_dir.trained_file(0), self.dir.trained_file(0))
            mask = Mask.ones(self.model, self.spec.prune_output)
            save_ticket(self.dir.ticket_file(0), Ticket(self.ticket_info(0, dense), mask, self.rewind_state))
            dense = replace(dense, ticket_sha256=load_ticket(self.dir.ticket_file(0)).sha256)
        self.dir.write_result(dense)
        self.emit(LevelFinished(dense, skipped=True))  # trained by the IMP run, not here
        return dense

    def train_level(self, level: int) -> LevelResult:
        if level == 0 and self.dense_dir is not None:
            return self.adopt_dense_level()
        began = time.perf_counter()
        mask, spent = self.level_mask(level)
        start_state = self.init_state if level == 0 else self.rewind_state
        self.model.load_state_dict(start_state)
        checkpoint = self.dir.checkpoint_file(level)
        hooks = TrainHooks(
            on_start=lambda epoch: self.emit(LevelStarted(level, mask.fraction_pruned(), epoch)),
            on_step=lambda e, s, n, loss: self.emit(StepDone(level, e, s, n, loss)),
            on_epoch=lambda record: self.emit(EpochDone(level, record)),
        )
        if level == 0:
            hooks.snapshot_step = self.rewind_step
            hooks.on_snapshot = lambda model: save_weights(self.dir.rewind_file, _cpu_state(model), {"rewind": self.spec.rewind})
        outcome = train(self.model, self.data, self.settings, mask.to(self.data.device), checkpoint, hooks, speed=self.speed)
        compute = self.training_compute(outcome)
        result = LevelResult.of_training(level, mask, outcome, time.perf_counter() - began, self.data.device,
                                         (self.data.train_size, len(self.data.test_labels)), compute)
        spent = compute.part(self.rewind_step) if level == 0 else spent
        result = replace(result, find_compute=None if spent is None else spent.as_dict())
        if level > 0 and self.spec.finds_by_imp:  # other finders derive every level from the dense run alone
            result = replace(result, derived_from=chain_link(self.dir.read_result(level - 1)))
        if not outcome.diverged:
            result = self._save_level(level, mask, result)
        self.dir.write_result(result)
        checkpoint.unlink(missing_ok=True)
        (self.dir.level_dir(level) / "mask.safetensors").unlink(missing_ok=True)
        self.emit(LevelFinished(result, skipped=False))
        return result

    def _save_level(self, level: int, mask: Mask, result: LevelResult) -> LevelResult:
        ticket_file, trained_file = self.dir.ticket_file(level), self.dir.trained_file(level)
        save_weights(trained_file, _cpu_state(self.model), {"run_id": self.spec.run_id(), "level": level})
        save_ticket(ticket_file, Ticket(self.ticket_info(level, result), mask.to("cpu"), self.rewind_state))
        root = self.dir.root
        return replace(result, ticket=str(ticket_file.relative_to(root)), trained=str(trained_file.relative_to(root)),
                       ticket_sha256=load_ticket(ticket_file).sha256, trained_sha256=weights_sha256(trained_file))

    def ticket_info(self, level: int, result: LevelResult) -> TicketInfo:
        spec = self.spec
        return TicketInfo(
            model=spec.model,
            width=spec.width,
            model_options=spec.resolved_model_options(),
            num_classes=spec.num_classes,
            dataset=spec.dataset,
            optimizer=spec.optimizer,
            level=level,
            rate=spec.rate,
            layerwise=spec.layerwise,
            prune_output=spec.prune_output,
            fraction_pruned=result.fraction_pruned,
            rewind=spec.rewind,
            test_accuracy=result.test_accuracy,
            run_id=spec.run_id(),
            seeds={"seed": spec.seed, **self.seeds},
            train_size=spec.train_size,
            epochs=spec.num_epochs,
            batch_size=spec.batch_size,
            lr=spec.base_lr,
            warmup=spec.warmup,
            augment=spec.augment,
            finder=spec.finder,
            finder_settings=spec.finder_settings(),
            find_compute=result.find_compute,
        )


def total_compute(*records: dict | None) -> Compute | None:
    """The sum of compute records; None when one of them was not recorded (a result of an older oneticket)."""
    if any(record is None for record in records):
        return None
    return sum((Compute.of(record) for record in records), Compute())


def find_tickets(
    spec: ImpSpec,
    store: Path,
    data_dir: Path | None = None,
    device: torch.device | str = "cpu",
    on_event: EventSink = ignore_event,
    show_download_progress: bool = True,
    speed: Speed | None = None,
) -> list[LevelResult]:
    """Run (or resume, or just read back) the IMP run of ``spec`` under ``store``; ``speed``: how (not what)."""
    dense_dir = RunDir.for_spec(store, spec.dense_spec())
    if spec.shares_dense_run and dense_dir.read_result(0) is None:  # the dense run (the IMP run's level 0) first
        dense = find_tickets(spec.dense_spec(), store, data_dir, device, on_event, show_download_progress, speed)
        if dense[-1].diverged:
            return dense
    run_dir = RunDir.for_spec(store, spec)
    finished = run_dir.finished_results(spec)
    if finished is not None and not is_writable(run_dir.root):  # a read-only store: read the results back
        for result in finished:
            on_event(LevelFinished(result, skipped=True))
        return finished
    with claimed(run_dir.root, "run"):
        run_dir.write_or_check_spec(spec)
        dataset = load_dataset(spec.dataset, data_dir, spec.train_size, spec.seeds()["subset"], show_progress=show_download_progress)
        data = DeviceData(dataset, device, spec.batch_size)
        return ImpRun(spec, run_dir, data, on_event, speed or Speed()).run()
