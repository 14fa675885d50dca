"""The user-error types."""


class UsageError(Exception):
    """A problem with the user's input (a file, a value): a command prints it as one `error:` line and exits 2."""


class Stopped(Exception):
    """A run that stopped on purpose before its end, resumable (a budget reached, batch files left for the user to
    run): a command prints it as one line and exits `code`."""

    code = 1


class WriteRefused(UsageError):
    """The system refused a write (disk full, quota, read-only, no permission, I/O error): `path` and `why`
    (strerror's words). A run that meets one stops sending requests whose answers it could not keep."""

    def __init__(self, path, why: str):
        super().__init__(f"cannot write {path}: {why}")
        self.path, self.why = path, why
