"""User-facing errors: caught by the CLI and printed as one clear line, never as a traceback."""


class UserError(Exception):
    """Bad input from the user (a file, a field, an option): the message names it and what was expected."""


class DataError(UserError):
    """A data file that cannot be used (missing, corrupt, wrong shape); the message names the file."""
