"""Tickets: the IMP run spec, the ticket file format, iterative magnitude pruning, transfer, random tickets."""

from oneticket.tickets.imp import (
    EpochDone,
    Event,
    EventSink,
    ImpRun,
    LevelFinished,
    LevelStarted,
    RunStarted,
    StepDone,
    find_tickets,
    ignore_event,
)
from oneticket.tickets.random_ticket import random_mask
from oneticket.tickets.rundir import LevelResult, RunDir, find_ticket_file, imported_root, runs_root
from oneticket.tickets.spec import ImpSpec, parse_rewind
from oneticket.tickets.ticket import (
    Ticket,
    TicketInfo,
    check_ticket_fits,
    describe_model,
    load_state_into,
    load_ticket,
    load_weights,
    save_ticket,
    save_weights,
)
from oneticket.tickets.transfer import KINDS, VARIANTS, TrainingDir, TrainSpec, ticket_model, train_ticket, trainings_root, variant

__all__ = [
    "KINDS",
    "VARIANTS",
    "TrainSpec",
    "TrainingDir",
    "find_ticket_file",
    "ignore_event",
    "imported_root",
    "random_mask",
    "ticket_model",
    "train_ticket",
    "trainings_root",
    "variant",
    "EpochDone",
    "Event",
    "EventSink",
    "ImpRun",
    "ImpSpec",
    "LevelFinished",
    "LevelResult",
    "LevelStarted",
    "RunDir",
    "RunStarted",
    "StepDone",
    "Ticket",
    "TicketInfo",
    "check_ticket_fits",
    "describe_model",
    "find_tickets",
    "load_state_into",
    "load_ticket",
    "load_weights",
    "parse_rewind",
    "runs_root",
    "save_ticket",
    "save_weights",
]
