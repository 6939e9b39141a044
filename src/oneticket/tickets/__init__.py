"""Tickets: the IMP run spec, the ticket file format, iterative magnitude pruning."""

from oneticket.tickets.imp import (
    EpochDone,
    Event,
    ImpRun,
    LevelFinished,
    LevelStarted,
    RunStarted,
    StepDone,
    find_tickets,
)
from oneticket.tickets.rundir import LevelResult, RunDir, runs_root
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

__all__ = [
    "EpochDone",
    "Event",
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
