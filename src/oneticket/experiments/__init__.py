"""Experiments: TOML specs, the job graph, the planner, the local executor, the results index."""

from oneticket.experiments.executor import JobEnded, JobStarted, LocalExecutor, Summary
from oneticket.experiments.graph import ImpJob, Job, JobGraph, Series, TrainJob, expand, expand_all
from oneticket.experiments.plan import JobStatus, Plan, job_status, make_plan
from oneticket.experiments.results import Line, Row, aggregate, tidy_rows
from oneticket.experiments.spec import ExperimentSpec, builtin_names, is_demo, load_experiment, load_specs, parse_experiment
from oneticket.experiments.store import ResultsIndex
from oneticket.experiments.throughput import MeasuredThroughput

__all__ = [
    "ExperimentSpec",
    "ImpJob",
    "Job",
    "JobEnded",
    "JobGraph",
    "JobStarted",
    "JobStatus",
    "Line",
    "LocalExecutor",
    "MeasuredThroughput",
    "Plan",
    "ResultsIndex",
    "Row",
    "Series",
    "Summary",
    "TrainJob",
    "aggregate",
    "builtin_names",
    "expand",
    "expand_all",
    "is_demo",
    "job_status",
    "load_experiment",
    "load_specs",
    "make_plan",
    "parse_experiment",
    "tidy_rows",
]
