"""Errors shared by every layer."""

from __future__ import annotations


class InputError(ValueError):
    """Bad user input (file, column, value); the message is one line naming the bad value.

    The CLI prints it and exits with status 2.
    """
