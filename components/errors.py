"""The moodops exception hierarchy.

Every error a user can cause by what they pass in (a path, a name, a value)
is a :class:`MoodopsError`; the CLI turns it into one line and a non-zero exit.
"""
from __future__ import annotations

import difflib
from collections.abc import Iterable


class MoodopsError(Exception):
    """Base class of every error moodops raises on purpose."""


class ConfigError(MoodopsError, ValueError):
    """A configuration value is missing, unknown or out of range."""


class DataError(MoodopsError):
    """A data file is missing, unreadable, malformed or unsafe."""


class Interrupted(Exception):
    """Ctrl-C (SIGINT) stopped a run; the message says what was kept and how to go on. Not a
    :class:`KeyboardInterrupt`, so the CLI layer can print it before exiting with status 130."""


class UnknownNameError(ConfigError, KeyError):
    """A registry name (dataset, model, protocol, …) does not exist."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def did_you_mean(value: str, options: Iterable[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest option, or ``""``."""
    close = difflib.get_close_matches(str(value), list(options), n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""


def invalid_choice(parameter: str, value: object, options: Iterable[str]) -> str:
    """The message for a value outside a fixed set of allowed values."""
    options = list(options)
    allowed = ", ".join(f"'{o}'" for o in options)
    return (
        f"Invalid value for the '{parameter}' parameter. Allowed values are {allowed}, "
        f"but got '{value}' instead.{did_you_mean(str(value), options)}"
    )
