"""Errors a user can fix. The CLI prints them as one line and exits non-zero."""


class UserError(Exception):
    """A mistake in the input (flags, files, environment) with a message that says how to fix it."""


class DataNotFoundError(UserError):
    """Dataset files are absent and could not be downloaded."""


class TicketFileError(UserError):
    """A ticket file is damaged, tampered with, or does not fit the model it is loaded into."""
