"""Errors that mean "the user's input is wrong": the CLI prints them on one line, exit code 2."""


class UserError(Exception):
    """Bad input (a missing path, an unparsable file, conflicting options...)."""
