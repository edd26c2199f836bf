"""Errors that mean "the user's input is wrong": the CLI prints them on one line, exit code 2."""


class UserError(Exception):
    """Bad input (a missing path, an unparsable file, conflicting options...)."""


class MissingColumn(UserError):
    """An input set without a column the command needs (``what``: question, solution, explanation)."""

    def __init__(self, message: str, what: str):
        super().__init__(message)
        self.what = what


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none): for one-line errors."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class Stopped(Exception):
    """A stop asked for (SIGUSR1: a scheduler's time limit is near) and done after the chunk in
    flight: nothing is lost, and rerunning the same command resumes (exit code 75, EX_TEMPFAIL)."""

    exit_code = 75


def os_error(exc: OSError) -> str:
    """An operating-system error as one line naming the file and what to do (a full disk, a folder
    without write permission): the run resumes when rerun."""
    import errno

    where = exc.filename or ""
    reason = exc.strerror or type(exc).__name__
    hint = {errno.ENOSPC: "free some space and rerun the same command (it resumes)",
            errno.EDQUOT: "free some space and rerun the same command (it resumes)",
            errno.EACCES: "choose a folder you can write, or fix its permissions",
            errno.EROFS: "choose a folder on a writable file system"}.get(exc.errno, "check the path and rerun")
    return f"{where}: {reason}: {hint}" if where else f"{reason}: {hint}"
