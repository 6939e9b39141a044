"""The Python API: find, transfer, load and share tickets from a notebook or a script.

    import oneticket as ot
    run = ot.find(model="vgg19", dataset="digits", width=0.125, epochs=4, levels=3, store="runs/")
    trained = ot.transfer(run.ticket(level=3), dataset="digitsb", optimizer="adam", store="runs/")
    model = ot.load_model(run.ticket_file(3))               # nn.Module at the rewind point, mask enforced
    ot.apply_mask(my_model, ot.load_ticket(path).mask)      # pruned weights stay 0.0 while you train

Settings are the CLI's flags as keywords (``train_size=5000`` for ``--train-size 5000``) and are
validated alike: a bad one raises :class:`oneticket.UserError` with the CLI's one-line message,
naming the keyword. The CLI's ``find``, ``transfer``, ``run`` and ``results`` call these functions.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Union

import torch
from torch import nn

from oneticket.data import data_dir_problem
from oneticket.errors import UserError
from oneticket.experiments import (
    ExperimentSpec,
    JobEnded,
    JobGraph,
    LocalExecutor,
    Row,
    Summary,
    TrainJob,
    expand_all,
    is_demo,
    load_specs,
    tidy_rows,
)
from oneticket.experiments.graph import TicketSource
from oneticket.experiments.pool import PoolExecutor
from oneticket.experiments.spec import DEMO
from oneticket.sparsity import apply_mask as enforce_mask_in, remove_mask as bake_mask_in
from oneticket.tickets import (
    ImpSpec,
    LevelFinished,
    LevelResult,
    RunDir,
    Ticket,
    TrainingDir,
    TrainSpec,
    find_tickets,
    imported_root,
    load_ticket as read_ticket,
    runs_root,
    save_ticket as write_ticket_file,
    trainings_root,
    variant,
)
from oneticket.tickets.catalogue import export_tickets as write_export, import_tickets as import_into, publish
from oneticket.tickets.hub import is_hub_uri, remote_problem
from oneticket.tickets.spec import FINDERS
from oneticket.tickets.transfer import check_weights_held, start_model, training_seeds
from oneticket.training import Speed, resolve_device
from oneticket.validation import build_spec, check_known, keyword_name, renamed

__all__ = [
    "Run", "Trained", "apply_mask", "default_store", "export_tickets", "find", "import_tickets", "load_model", "load_ticket",
    "push_tickets", "remove_mask", "results", "run_experiment", "save_ticket", "transfer",
]

STORE_ENV = "ONETICKET_STORE"
TicketLike = Union[Ticket, str, os.PathLike]
SpecLike = Union[str, os.PathLike, ExperimentSpec, JobGraph, Sequence[Union[str, os.PathLike, ExperimentSpec]]]
Sink = Callable[[Any], None]
TICKET_FIELDS = ("source", "level", "ticket", "model", "mask", "weights")  # a training's fields that its ticket and variant fix


def default_store() -> Path:
    """``$ONETICKET_STORE``, else ``~/.oneticket``: where runs are kept unless a call names a store."""
    return Path(os.environ.get(STORE_ENV) or Path.home() / ".oneticket").expanduser().absolute()


def store_path(store: str | os.PathLike | None) -> Path:
    """``store`` as an absolute path (a notebook may change its folder later), else the default store."""
    return _path(store, "store").absolute() if store is not None else default_store()


def print_levels(event: Any) -> None:
    """``find``'s default progress: one line per finished level."""
    if isinstance(event, LevelFinished):
        r = event.result
        accuracy = "diverged" if r.test_accuracy is None else f"test accuracy {100 * r.test_accuracy:.2f}%"
        done = "finished earlier" if event.skipped else f"{r.seconds:.0f} s"
        print(f"level {r.level}: {100 * r.fraction_pruned:.2f}% pruned, {accuracy} ({done})", flush=True)


def print_jobs(event: Any) -> None:
    """The default progress of job graphs (experiments, transfers): one line per finished job."""
    if isinstance(event, JobEnded):
        state = {"skipped": "finished earlier"}.get(event.state, event.state)
        timing = f" ({event.seconds:.0f} s)" if event.state != "skipped" else ""
        print(f"{state}: {event.job.describe()}{timing}" + (f": {event.message}" if event.message else ""), flush=True)


def _sink(progress: bool, on_event: Sink | None, default: Sink) -> Sink:
    if on_event is not None:
        return on_event
    return default if progress else (lambda _: None)


def _device(name: str | torch.device) -> torch.device:
    """``resolve_device``, its errors naming the keyword ``device`` rather than the flag (the CLI
    resolves its ``--device`` itself)."""
    if isinstance(name, torch.device):
        return name
    try:
        return resolve_device(str(name))
    except UserError as exc:
        raise UserError(renamed(str(exc), ["device"], keyword_name)) from None


def _count(name: str, value: Any) -> int | None:
    """``value`` as a count of at least 1 (None stays None), else a one-line error naming ``name``."""
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise UserError(f"{name} must be a whole number of at least 1, got {value!r}")
    return value


def _set_threads(threads: int | None) -> None:
    """Set PyTorch's CPU thread count for this process (it stays set after the call)."""
    if _count("threads", threads) is not None:
        torch.set_num_threads(threads)


def _path(value: Any, what: str) -> Path:
    """A path argument, checked: a str or os.PathLike, not a Hub address."""
    if not isinstance(value, (str, os.PathLike)):
        raise UserError(f"{what} must be a path (a str or pathlib.Path), got {type(value).__name__} {value!r}")
    if is_hub_uri(str(value)):
        raise UserError(f"{value} is on the Hugging Face Hub; import its tickets first, ot.import_tickets('{value}') "
                        "(or oneticket tickets import), then use a file from your store")
    problem = remote_problem(str(value), what)
    if problem is not None:
        raise UserError(problem)
    return Path(value).expanduser()


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise UserError(f"{name} must be True or False, got {value!r}")
    return value


# ---- finding tickets -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Run:
    """A ticket run (IMP or another finder) in a store, and its levels' results."""

    spec: ImpSpec
    store: Path
    results: list[LevelResult]

    @property
    def id(self) -> str:
        return self.spec.run_id()

    @property
    def root(self) -> Path:
        return RunDir.for_spec(self.store, self.spec).root

    @property
    def diverged(self) -> bool:
        return bool(self.results) and self.results[-1].diverged

    @property
    def levels(self) -> list[int]:
        """The levels that have a ticket file."""
        return [r.level for r in self.results if RunDir(self.root).ticket_file(r.level).exists()]

    def ticket_file(self, level: int | None = None) -> Path:
        """The ticket file of ``level`` (default: the last, most pruned)."""
        levels = self.levels
        if not levels:
            raise UserError(f"run {self.id} has no tickets yet; find() it again to continue")
        if level is not None and (not isinstance(level, int) or isinstance(level, bool)):
            raise UserError(f"level must be a whole number, got {level!r}")
        chosen = levels[-1] if level is None else level
        if chosen not in levels:
            raise UserError(f"run {self.id} has no ticket at level {chosen}; its levels: {', '.join(map(str, levels))}")
        return RunDir(self.root).ticket_file(chosen)

    def ticket(self, level: int | None = None) -> Ticket:
        """The ticket of ``level`` (default: the last, most pruned), read and verified."""
        return read_ticket(self.ticket_file(level))

    def rows(self) -> list[dict[str, Any]]:
        """One dict per level: level, fraction_pruned, test_accuracy, seconds (for pandas or csv)."""
        return [{"run": self.id, "level": r.level, "fraction_pruned": r.fraction_pruned, "test_accuracy": r.test_accuracy,
                 "seconds": r.seconds, "status": r.status} for r in self.results]

    def __repr__(self) -> str:
        last = self.results[-1] if self.results else None
        where = f"levels 0-{last.level}, last {100 * last.fraction_pruned:.1f}% pruned" if last else "no levels yet"
        return f"Run({self.id}, {self.spec.model} on {self.spec.dataset}/{self.spec.optimizer}, {where}, {self.root})"


def find(spec: ImpSpec | None = None, *, store: str | os.PathLike | None = None, data_dir: str | os.PathLike | None = None,
         device: str | torch.device = "auto", threads: int | None = None, speed: Speed | None = None, progress: bool = True,
         on_event: Sink | None = None, **settings: Any) -> Run:
    """Find tickets (or resume, or read back a finished run): ``find(model="vgg19", dataset="digits", levels=3)``.

    ``settings`` are ``oneticket find``'s (``finder="snip"``, ``sparsities=(0.5, 0.9)``, ``rate``,
    ``epochs``, ...); or give a built :class:`ImpSpec`. Returns the :class:`Run`; a level that
    diverged ends it (``run.diverged``). ``threads`` sets PyTorch's CPU thread count for this
    process (it stays set); ``progress=False`` prints nothing, ``on_event`` receives every event.
    """
    if spec is None:
        check_known(settings, ImpSpec.model_fields, "find")
        spec = build_spec(ImpSpec, settings, keyword_name)
    elif not isinstance(spec, ImpSpec):
        raise UserError(f"find takes its settings as keywords, find(model='vgg19', dataset='digits', ...), or an "
                        f"ImpSpec; got {spec!r}")
    elif settings:
        raise UserError(f"find: give a spec or settings, not both (got {', '.join(settings)})")
    _set_threads(threads)
    store_dir = store_path(store)
    sink = _sink(progress, on_event, print_levels)
    results = find_tickets(spec, store_dir, _data_dir(data_dir), _device(device), sink,
                           show_download_progress=progress, speed=speed)
    return Run(spec, store_dir, results)


def settings_help(spec_class: type, skip: Sequence[str] = ()) -> str:
    """The settings of a spec, one line each with its default, for a docstring."""
    lines = [f"        {name} = {field.default!r}: {field.description or ''}".rstrip(": ")
             for name, field in spec_class.model_fields.items() if name not in skip]
    if spec_class is ImpSpec:  # the CLI's help lists the finders above its options; here they follow
        lines = [line.replace("(see Finders above)", f"({', '.join(FINDERS)})") for line in lines]
    return "\n\n    Settings (keywords):\n\n" + "\n".join(lines) + "\n"


find.__doc__ = (find.__doc__ or "") + settings_help(ImpSpec)


def _data_dir(data_dir: str | os.PathLike | None) -> Path | None:
    if data_dir is None:
        return None
    path = _path(data_dir, "data_dir")
    problem = data_dir_problem(path)
    if problem is not None:
        raise UserError(f"data_dir {problem}")
    return path


# ---- running job graphs ----------------------------------------------------------------------------

Executor = Union[LocalExecutor, PoolExecutor, Any]  # Any: the Ray executor (an optional extra)


def make_executor(store: Path, data_dir: str | os.PathLike | None = None, device: str | torch.device = "auto", speed: Speed | None = None,
                  threads: int | None = None, workers: int | None = None, ray: Any = None, progress: bool = True) -> Executor:
    """Where a job graph runs: here (``threads``), on ``workers`` processes here, or on Ray (``ray``: RayOptions)."""
    folder = _data_dir(data_dir)
    _count("workers", workers)
    _count("threads", threads)
    if ray is not None:
        if threads is not None or workers is not None:
            raise UserError("with the Ray executor each task uses cpus_per_task threads and Ray decides how many run at "
                            "once; drop threads and workers")
        from oneticket.experiments.ray_executor import RayExecutor  # Ray is an optional extra

        return RayExecutor(store, folder, ray, speed=speed)
    if workers is not None:
        return PoolExecutor(store, folder, _device(device), workers, threads or 1, speed=speed)
    _set_threads(threads)
    return LocalExecutor(store, folder, _device(device), show_download_progress=progress, speed=speed)


def run_graph(graph: JobGraph, executor: Executor, emit: Sink | None = None) -> Summary:
    """Run every unfinished job of ``graph`` on ``executor``; ``emit`` receives its events."""
    if emit is not None:
        executor.emit = emit
    return executor.run(graph)


def experiment_graph(specs: SpecLike) -> JobGraph:
    """The job graph of experiment specs: files, built-in names (``"demo"``, ``"quick/finders"``) or parsed specs."""
    if isinstance(specs, JobGraph):
        return specs
    if not isinstance(specs, (str, os.PathLike, ExperimentSpec, list, tuple)):
        raise UserError(f"give experiment specs as a file, a built-in name ('demo') or a list of them, got {specs!r}")
    items = [specs] if isinstance(specs, (str, os.PathLike, ExperimentSpec)) else list(specs)
    parsed: list[ExperimentSpec] = []
    for item in items:
        parsed.extend([item] if isinstance(item, ExperimentSpec) else load_specs([item]))
    names = [s.name for s in parsed]
    if len(set(names)) != len(names):
        raise UserError(f"two specs have the same name ({', '.join(names)}); give each experiment its own name")
    return expand_all(parsed)


def experiment_store(store: str | os.PathLike | None, graph: JobGraph) -> Path:
    """``store``, else the demo's store when every spec is a demo spec, else the default store."""
    if store is None and all(is_demo(spec) for spec in graph.experiments):
        return demo_store()
    return store_path(store)


def demo_store() -> Path:
    """Where ``oneticket demo`` keeps its runs (and where demo specs are looked up by default)."""
    return default_store() / DEMO


def run_experiment(specs: SpecLike, *, store: str | os.PathLike | None = None, data_dir: str | os.PathLike | None = None,
                   device: str | torch.device = "auto", workers: int | None = None, threads: int | None = None, speed: Speed | None = None,
                   progress: bool = True, on_event: Sink | None = None) -> Summary:
    """Run the unfinished jobs of experiment specs (resumable: call again to continue); the
    :class:`Summary` counts jobs done, skipped and failed. ``results(specs)`` reads the numbers."""
    graph = experiment_graph(specs)
    executor = make_executor(experiment_store(store, graph), data_dir, device, speed, threads, workers, progress=progress)
    return run_graph(graph, executor, _sink(progress, on_event, print_jobs))


def result_rows(specs: SpecLike, store: str | os.PathLike | None = None) -> list[Row]:
    """The finished results of experiment specs, one :class:`Row` per point and seed."""
    graph = experiment_graph(specs)
    return tidy_rows(graph, experiment_store(store, graph))


def results(specs: SpecLike, store: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """The finished results of experiment specs as dicts (one per point and seed; the columns of
    ``oneticket results --csv``): ``pandas.DataFrame(ot.results("demo"))``."""
    return [asdict(row) for row in result_rows(specs, store)]


# ---- transfer --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Trained:
    """One training of a ticket on a target, and its result (None before it finished)."""

    spec: TrainSpec
    directory: Path
    result: LevelResult | None

    @property
    def test_accuracy(self) -> float | None:
        return None if self.result is None else self.result.test_accuracy

    @property
    def fraction_pruned(self) -> float | None:
        return None if self.result is None else self.result.fraction_pruned

    def __repr__(self) -> str:
        accuracy = "-" if self.test_accuracy is None else f"{100 * self.test_accuracy:.2f}%"
        return (f"Trained({self.spec.kind} of run {self.spec.source} level {self.spec.level} -> {self.spec.dataset}/"
                f"{self.spec.optimizer}, test accuracy {accuracy}, {self.directory})")


def store_of(ticket: TicketLike) -> Path | None:
    """The store a ticket file lies in (``<store>/runs/<run>/level_NN/ticket.safetensors`` or
    ``<store>/imported/...``), or None."""
    path = ticket.path if isinstance(ticket, Ticket) else _path(ticket, "the ticket").absolute()
    if path is None or len(path.parents) < 4 or path.parents[2].name not in ("runs", "imported"):
        return None
    return path.parents[3]


def ticket_file_of(ticket: TicketLike, store: Path) -> tuple[Path, Ticket]:
    """A ticket's file and contents: the file a :class:`Ticket` was read from, a path, or (a ticket
    made in memory) the copy imported into ``store``."""
    if isinstance(ticket, Ticket):
        if ticket.path is not None and ticket.path.is_file():
            return ticket.path, ticket
        with tempfile.TemporaryDirectory() as folder:
            staged = Path(folder) / "ticket.safetensors"
            write_ticket_file(staged, ticket, compact=ticket.compact)
            destination = import_into(staged, store)[0][0]
        return destination, read_ticket(destination)
    path = _path(ticket, "the ticket")
    return path, read_ticket(path)


def ticket_files(source: str | os.PathLike, store: Path) -> list[Path]:
    """The ticket files ``source`` names: a ticket file, a run directory, a run id in ``store``, or an exported folder."""
    text = str(source)
    problem = remote_problem(text, "--from")
    if problem is not None:
        raise UserError(problem)
    path = Path(source).expanduser()
    if path.is_file():
        return [path]
    if not path.exists() and "/" not in text:  # a run id (or <run id>-<content> of an imported twin)
        found = [root / text for root in (runs_root(store), imported_root(store)) if (root / text).is_dir()]
        path = found[0] if found else path
    if path.is_dir():
        files = sorted(path.glob("level_*/ticket.safetensors")) or sorted(path.glob("*.safetensors"))
        if files:
            return files
        raise UserError(f"{path} holds no ticket files; give a run directory, a run id, a ticket file or an exported folder")
    raise UserError(f"--from {text}: no such ticket file, run directory, or run id in {store} (runs or imported tickets)")


def transfer_graph(tickets: Sequence[tuple[Path, Ticket]], dataset: str, optimizer: str = "sgd", kind: str = "transfer",
                   naming: Callable[[str], str] = keyword_name, **settings: Any) -> JobGraph:
    """The trainings of ``tickets`` on a target (``kind``: transfer or a random-ticket variant), validated."""
    mask, weights = variant(kind)
    graph = JobGraph()
    for path, ticket in tickets:
        check_weights_held(ticket, mask, weights)
        info = ticket.info
        spec = build_spec(TrainSpec, dict(settings, source=info.run_id, level=info.level, ticket=ticket.sha256, model=info.model,
                                          dataset=dataset, optimizer=optimizer, mask=mask, weights=weights), naming)
        graph.add(TrainJob(spec, TicketSource.of_ticket(info), path))
    return graph


def trainings(graph: JobGraph, store: Path) -> list[Trained]:
    """Each training of ``graph`` with its result so far."""
    found = []
    for job in graph.ordered():
        if isinstance(job, TrainJob):
            directory = TrainingDir(trainings_root(store) / job.spec.job_id())
            found.append(Trained(job.spec, directory.root, directory.read_result()))
    return found


def transfer(ticket: TicketLike, *, dataset: str, optimizer: str = "sgd", variant: str = "transfer",
             store: str | os.PathLike | None = None, data_dir: str | os.PathLike | None = None, device: str | torch.device = "auto",
             threads: int | None = None, speed: Speed | None = None, progress: bool = True, on_event: Sink | None = None,
             **settings: Any) -> Trained:
    """Train a ticket (a :class:`Ticket` or a ticket file) on ``dataset`` with ``optimizer``:
    its mask and rewind-point weights, a fresh seeded output layer when the class count differs.
    ``variant`` trains a random-ticket baseline instead (``random``, ``random-layerwise``,
    ``random-mask``, ``random-weights``); ``settings``: ``oneticket transfer``'s (``epochs``,
    ``seed``, ``lr``, ...). Finished trainings are read back, unfinished ones resume. ``store``:
    where the training is kept; default: the store the ticket file is in (else the default store)."""
    check_known(settings, [f for f in TrainSpec.model_fields if f not in TICKET_FIELDS + ("dataset", "optimizer")], "transfer")
    store_dir = store_path(store) if store is not None else store_of(ticket) or default_store()
    graph = transfer_graph([ticket_file_of(ticket, store_dir)], dataset, optimizer, variant, **settings)
    executor = make_executor(store_dir, data_dir, device, speed, threads, progress=progress)
    summary = run_graph(graph, executor, _sink(progress, on_event, print_jobs))
    trained = trainings(graph, store_dir)[0]
    if trained.result is None:
        why = summary.failed[0][1] if summary.failed else "it did not finish"
        raise UserError(f"the training of run {trained.spec.source} level {trained.spec.level} on {dataset} failed: {why}")
    return trained


transfer.__doc__ = (transfer.__doc__ or "") + settings_help(TrainSpec, TICKET_FIELDS + ("dataset", "optimizer"))


# ---- using tickets in your own code ----------------------------------------------------------------

def load_model(ticket: TicketLike, num_classes: int | None = None, *, seed: int = 0, device: str | torch.device = "cpu",
               enforce_mask: bool = True) -> nn.Module:
    """The ticket's model at its rewind point with its mask: pruned weights are 0.0 and stay 0.0
    through any training (``enforce_mask``; :func:`remove_mask` gives plain weights back).

    ``num_classes`` other than the ticket's puts a fresh output layer in place, seeded by ``seed``
    exactly as ``transfer(..., seed=seed)`` does (a pruned output layer becomes dense then).
    """
    if not isinstance(ticket, Ticket):
        ticket = read_ticket(_path(ticket, "the ticket"))
    classes = ticket.info.num_classes if num_classes is None else num_classes
    if not isinstance(classes, int) or isinstance(classes, bool) or classes < 1:
        raise UserError(f"num_classes must be a whole number of at least 1, got {num_classes!r}")
    if not isinstance(seed, int) or seed < 0:
        raise UserError(f"seed must be a whole number of at least 0, got {seed!r}")
    model, mask = start_model(ticket, classes, training_seeds(seed))
    model = model.to(_device(device))
    enforce_mask_in(model, mask)
    return model if enforce_mask else bake_mask_in(model)



def save_ticket(ticket: Ticket, path: str | os.PathLike, *, compact: bool = False) -> Path:
    """Write ``ticket`` to ``path`` (``.safetensors``): dense, as IMP keeps tickets, or ``compact``
    (a bit-packed mask and the surviving weights only; loads to the same masked model). Returns the path."""
    if not isinstance(ticket, Ticket):
        raise UserError(f"save_ticket(ticket, path) takes a Ticket first (ot.load_ticket(...), run.ticket(level)), got "
                        f"{type(ticket).__name__}")
    _flag("compact", compact)
    target = _path(path, "path")
    if target.is_dir() or not target.name:
        raise UserError(f"{path} is a folder; give the ticket file's name, e.g. {Path(path) / 'ticket.safetensors'}")
    if not target.absolute().parent.is_dir():
        raise UserError(f"{target.parent} does not exist; make the folder first or save elsewhere")
    if target.suffix != ".safetensors":
        raise UserError(f"{target}: ticket files end in .safetensors; name it {target.with_suffix('.safetensors').name}")
    write_ticket_file(target, ticket, compact=compact)
    return target


def load_ticket(path: str | os.PathLike) -> Ticket:
    """Read and verify a ticket file (either layout): ``ticket.mask``, ``ticket.state`` (rewind-point
    weights), ``ticket.info`` (where it came from, how it did), ``ticket.sha256`` (what it is)."""
    return read_ticket(_path(path, "the ticket"))


def apply_mask(model: nn.Module, mask: Ticket | Mapping[str, torch.Tensor] | str | os.PathLike) -> nn.Module:
    """Enforce a ticket's mask in ``model`` (yours or oneticket's; its weight names must be the
    mask's): pruned weights read 0.0 from now on, through any optimizer. ``mask``: a mask
    (``ticket.mask``), a :class:`Ticket` or a ticket file. Returns ``model``; :func:`remove_mask` undoes it."""
    if not isinstance(model, nn.Module):
        raise UserError(f"apply_mask(model, mask) takes a torch.nn.Module first, got {type(model).__name__}")
    if isinstance(mask, Ticket):
        mask = mask.mask
    elif isinstance(mask, (str, os.PathLike)):
        mask = load_ticket(mask).mask
    elif not isinstance(mask, Mapping):
        raise UserError(f"apply_mask needs a mask (ticket.mask), a Ticket or a ticket file, got {type(mask).__name__}")
    return enforce_mask_in(model, mask)


def remove_mask(model: nn.Module) -> nn.Module:
    """Bake the mask :func:`apply_mask` enforces into plain parameters (pruned ones 0.0); returns ``model``."""
    if not isinstance(model, nn.Module):
        raise UserError(f"remove_mask(model) takes a torch.nn.Module, got {type(model).__name__}")
    return bake_mask_in(model)


def import_tickets(source: str | os.PathLike, store: str | os.PathLike | None = None) -> list[Path]:
    """Verify tickets and copy them into ``store`` (what ``oneticket tickets import`` does): a
    ticket file, an exported folder, a ``.zip`` of one, or ``hf://OWNER/REPO[@REVISION]`` (needs
    ``pip install 'oneticket[hub]'``). Returns the ticket files in the store."""
    if not isinstance(source, (str, os.PathLike)):
        raise UserError(f"import_tickets takes a path or hf://OWNER/REPO, got {type(source).__name__}")
    return [path for path, _ in import_into(source, store_path(store))]


def export_tickets(tickets: Run | Sequence[TicketLike], folder: str | os.PathLike, *, compact: bool = False,
                   license: str = "mit") -> list[Path]:
    """Write tickets (a :class:`Run`'s, or ticket files) into a new ``folder`` that is a Hugging Face
    model repo: the files (``compact``: bit-packed masks and surviving weights), ``tickets.json``
    and a card; what ``oneticket tickets export`` writes. Returns the ticket files written."""
    _flag("compact", compact)
    if isinstance(tickets, Run):
        items: list[Any] = [tickets.ticket_file(level) for level in tickets.levels]
    else:
        items = [tickets] if isinstance(tickets, (str, os.PathLike, Ticket)) else list(tickets)
    paths = [t.path if isinstance(t, Ticket) and t.path is not None else _path(t, "a ticket") for t in items]
    return write_export(paths, _path(folder, "folder"), compact=compact, license=license)


def push_tickets(folder: str | os.PathLike, repo: str, *, private: bool = False, revision: str | None = None) -> str:
    """Publish an exported folder to the Hub model repo ``repo`` (``OWNER/NAME``; needs ``pip install
    'oneticket[hub]'`` and a login); returns the commit's URL."""
    if not isinstance(repo, str) or (revision is not None and not isinstance(revision, str)):
        raise UserError(f"repo and revision are strings (repo='OWNER/NAME', revision='main'), got {repo!r} and {revision!r}")
    return publish(_path(folder, "folder"), repo, _flag("private", private), revision)[0]
