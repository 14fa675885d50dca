"""The user-error type."""


class UsageError(Exception):
    """A problem with the user's input (a file, a value): a command prints it as one `error:` line and exits 2."""


class Stopped(Exception):
    """A run that stopped on purpose before its end, resumable (a budget reached, batch files left for the user to
    run): a command prints it as one line and exits `code`."""

    code = 1
