"""The user-error type."""


class UsageError(Exception):
    """A problem with the user's input (a file, a value): a command prints it as one `error:` line and exits 2."""
