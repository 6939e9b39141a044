"""The Ray executor: a job graph's tasks as Ray tasks, on one machine or a cluster.

Ray is the engine: it places each task where its resources are free (one GPU per task where the
cluster has GPUs, a fraction with ``gpus_per_task < 1``; else ``cpus_per_task`` CPUs, which is also
the task's PyTorch thread count: by default the local executor's thread count on this machine, as
CPU results are bit-identical only for the same thread count), moves task inputs and outputs through its object store, and
reruns a task whose worker died (up to ``retries`` times). The driver follows the task graph
(:mod:`oneticket.experiments.tasks`): a task is submitted when the tasks it needs have finished, so
the trainings of level ``l`` run while the IMP run trains level ``l+1``. The driver alone writes
the results index.

Artifacts travel one of two ways (``artifacts``):

- ``shared``: every node sees the store's path (NFS, a cluster filesystem, or one machine).
  Workers read and write the run directories in place; a retried task resumes from the
  checkpoint of the attempt that died, wherever it lands.
- ``object-store``: the driver ships each task the finished files it reads; the worker runs the
  task in a scratch store on its node and returns the files it finished, which the driver writes
  (see :mod:`oneticket.experiments.artifacts`). A retried task resumes from its checkpoint when it
  lands on the node of the attempt that died, and otherwise starts its level again.

``auto`` (the default) picks ``shared`` when a probe task on every node finds a file the driver
just wrote in the store, else ``object-store``.

Only this module imports Ray (the optional extra ``pip install .[ray]``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import secrets
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from oneticket.errors import UserError
from oneticket.experiments.artifacts import Files, clear_task, shipped_ticket_path, task_inputs, task_outputs, unpack
from oneticket.experiments.executor import JobEnded, JobStarted, Summary
from oneticket.experiments.graph import JobGraph, TrainJob
from oneticket.experiments.schedule import Schedule
from oneticket.experiments.store import ResultsIndex
from oneticket.experiments.tasks import Task, TaskEnded, TaskGraph, task_graph
from oneticket.experiments.work import DataCache, run_task
from oneticket.tickets import LevelResult
from oneticket.training import Speed

try:
    import ray
    from ray.exceptions import RayError, RayTaskError
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
except ImportError:  # pragma: no cover - exercised by users without the extra
    raise UserError("the Ray executor needs Ray: pip install 'oneticket[ray]' (from a checkout: pip install -e '.[ray]')") from None

ARTIFACTS = ("auto", "shared", "object-store")
RayEvent = JobStarted | JobEnded | TaskEnded


@dataclass(frozen=True)
class RayOptions:
    address: str | None = None  # None: start a Ray instance on this machine for this run
    cpus_per_task: float | None = None  # None: 1 with GPUs, else this machine's PyTorch threads (as the local executor)
    gpus_per_task: float | None = None  # None: 1 where the cluster has GPUs, else 0
    retries: int = 3  # reruns of a task whose worker died
    artifacts: str = "auto"
    local_cpus: int | None = None  # CPUs of a Ray instance started here (default: all)

    def __post_init__(self) -> None:
        if self.artifacts not in ARTIFACTS:
            raise UserError(f"unknown --artifacts {self.artifacts!r}; choose one of: {', '.join(ARTIFACTS)}")
        if self.cpus_per_task is not None and self.cpus_per_task <= 0:
            raise UserError(f"--cpus-per-task must be positive, got {self.cpus_per_task:g}")
        if self.gpus_per_task is not None and not 0 <= self.gpus_per_task <= 1 and self.gpus_per_task != int(self.gpus_per_task):
            raise UserError(f"--gpus-per-task must be a fraction of one GPU or a whole number, got {self.gpus_per_task:g}")
        if self.retries < 0:
            raise UserError(f"--retries must be 0 or more, got {self.retries}")


# --- the worker side -----------------------------------------------------------------------------

_CACHES: dict[tuple[str, str], DataCache] = {}  # per worker process: datasets stay on the device between tasks


def _worker_cache(data_dir: Path | None, device: torch.device) -> DataCache:
    key = (str(data_dir), str(device))
    if key not in _CACHES:
        _CACHES.clear()  # one device's datasets at a time
        _CACHES[key] = DataCache(data_dir, device, show_progress=False)
    return _CACHES[key]


def scratch_store(driver_key: str) -> Path:
    """This node's scratch store for the driver store ``driver_key``: a task's files stay there
    until it finishes (so a retry on this node resumes from its checkpoint)."""
    return Path(tempfile.gettempdir()) / "oneticket-ray" / driver_key


@dataclass(frozen=True)
class TaskResult:
    results: tuple[LevelResult, ...]  # what the task finished
    failure: str | None
    files: Files  # object-store mode: what the driver must write
    seconds: float
    where: str
    resumed_epoch: int  # the epoch its training resumed after (0: from the start)


def execute_task(task: Task, shared_store: str | None, driver_key: str, inputs: Files, data_dir: str | None,
                 speed: Speed, threads: int) -> TaskResult:
    """Run one task in a Ray worker (called through ``ray.remote``)."""
    began = time.perf_counter()
    torch.set_num_threads(threads)
    device = torch.device("cuda" if ray.get_gpu_ids() else "cpu")
    store = Path(shared_store) if shared_store is not None else scratch_store(driver_key)
    unpack(inputs, store)
    job = task.job
    if isinstance(job, TrainJob) and shared_store is None and inputs:
        job = dataclasses.replace(job, ticket_file=store / shipped_ticket_path(job))
    cache = _worker_cache(Path(data_dir) if data_dir else None, device)
    outcome = run_task(dataclasses.replace(task, job=job), store, cache, speed)
    files: Files = {}
    if shared_store is None:
        files = task_outputs(task, store)
        clear_task(task, store)
    return TaskResult(outcome.results, outcome.failure, files, time.perf_counter() - began,
                      f"{socket.gethostname()} pid {os.getpid()} {device}", outcome.resumed_epoch)


def _sees_marker(path: str, token: str) -> bool:
    try:
        return Path(path).read_text() == token
    except OSError:
        return False


# --- the driver side -----------------------------------------------------------------------------

def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail at once, in one line, when ``HOST:PORT`` (or ``ray://HOST:PORT``) takes no connection;
    Ray itself would keep retrying for minutes."""
    if address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"--address {address}: expected auto, HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise UserError(f"--address {address}: nothing answers there ({exc.strerror or exc}); "
                        "start the head node with 'ray start --head' or check the address") from None


def connect(options: RayOptions) -> bool:
    """Join the cluster at ``options.address`` or start a local instance; True if we started it."""
    if options.address is not None:
        check_reachable(options.address)
    if ray.is_initialized():
        return False
    try:
        if options.address is None:
            logging.getLogger("ray").setLevel(logging.ERROR)  # a private instance: spare the user Ray's notices
            ray.init(num_cpus=options.local_cpus, include_dashboard=False, logging_level="WARNING",
                     log_to_driver=False, configure_logging=False)
            return True
        ray.init(address=options.address, logging_level="WARNING", log_to_driver=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = options.address or "this machine"
        raise UserError(f"cannot start or reach Ray at {where} ({str(exc).splitlines()[0]}); "
                        "check --address (e.g. ray://head:10001 or auto after 'ray start')") from None
    return False


def store_is_shared(store: Path) -> bool:
    """Whether every alive node reads a file the driver has just written in ``store``."""
    store.mkdir(parents=True, exist_ok=True)
    marker = store / f".ray-probe-{secrets.token_hex(4)}"
    token = secrets.token_hex(16)
    marker.write_text(token)
    try:
        probe = ray.remote(num_cpus=0)(_sees_marker)
        nodes = [n["NodeID"] for n in ray.nodes() if n.get("Alive")]
        refs = [probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n, soft=False)).remote(str(marker), token)
                for n in nodes]
        return all(ray.get(refs))
    finally:
        marker.unlink(missing_ok=True)


def _wait_one(refs: list[object]) -> object:
    ready, _ = ray.wait(refs, num_returns=1)
    return ready[0]


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, RayTaskError) and exc.cause is not None:
        exc = exc.cause
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[-1] if text else ''}".strip(": ")


class RayExecutor:
    """Runs a job graph as Ray tasks; same interface and same results as the local executor."""

    def __init__(self, store: Path, data_dir: Path | None = None, options: RayOptions | None = None,
                 on_event: Callable[[RayEvent], None] = lambda _: None, speed: Speed | None = None):
        self.store = Path(store).expanduser()
        self.data_dir = Path(data_dir).expanduser().resolve() if data_dir else None
        self.options = options or RayOptions()
        self.speed = speed or Speed()
        self.emit = on_event
        self.index = ResultsIndex(self.store)
        self.driver_key = hashlib.sha256(f"{socket.gethostname()}:{self.store.resolve()}".encode()).hexdigest()[:16]
        self.shared: bool | None = None  # decided when the run starts
        self._schedule: Schedule | None = None

    def run(self, graph: JobGraph) -> Summary:
        began = time.perf_counter()
        started_here = connect(self.options)
        try:
            summary = self._run(graph)
            summary.seconds = time.perf_counter() - began  # Ray's start-up included
            return summary
        except KeyboardInterrupt:
            for ref in list(self._schedule.in_flight if self._schedule else ()):
                ray.cancel(ref, force=True)
            raise
        finally:
            if started_here:
                ray.shutdown()

    def _resources(self) -> tuple[float, float, int]:
        gpus = self.options.gpus_per_task
        if gpus is None:
            gpus = 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0
        cpus = self.options.cpus_per_task
        if cpus is None:
            largest_node = max((n.get("Resources", {}).get("CPU", 1.0) for n in ray.nodes() if n.get("Alive")), default=1.0)
            cpus = 1.0 if gpus > 0 else float(min(torch.get_num_threads(), largest_node))
        return cpus, gpus, max(1, int(cpus))

    def _run(self, graph: JobGraph) -> Summary:
        for spec in graph.experiments:
            self.index.record_experiment(spec.name, graph.jobs)
        mode = self.options.artifacts
        self.shared = store_is_shared(self.store) if mode == "auto" else mode == "shared"
        cpus, gpus, threads = self._resources()
        remote = ray.remote(execute_task).options(num_cpus=cpus, num_gpus=gpus, max_retries=self.options.retries,
                                                  retry_exceptions=False)

        def submit(task: Task) -> object:
            inputs = {} if self.shared else task_inputs(task, self.store)
            return remote.remote(task, str(self.store.resolve()) if self.shared else None, self.driver_key, inputs,
                                 str(self.data_dir) if self.data_dir else None, self.speed, threads)

        self._schedule = Schedule(graph, task_graph(graph, self.store), self.store, self.index, self.emit, submit)
        return self._schedule.run(_wait_one, self._collect)

    def _collect(self, task: Task, ref: object) -> TaskEnded:
        """The end of a task whose result is ready: its files written (object-store mode), its report."""
        try:
            result: TaskResult = ray.get(ref)
        except RayError as exc:
            return TaskEnded(task, "failed", 0.0, message=_one_line(exc))
        if result.files:
            unpack(result.files, self.store)
        return TaskEnded(task, "failed" if result.failure else "done", result.seconds, result.results, result.failure,
                         result.where, result.resumed_epoch)
