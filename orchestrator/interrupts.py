"""Ctrl-C that lands where Python cannot raise it.

Python raises ``KeyboardInterrupt`` in whatever bytecode runs when SIGINT
arrives. Inside a finaliser (a ``__del__`` or weakref callback, such as
SQLAlchemy's instance-state cleanup under MLflow's store) the exception is
*unraisable*: Python prints "Exception ignored in ..." with a traceback and
carries on as if Ctrl-C had not been pressed. :func:`install` (called by the
CLI) remembers every SIGINT as well as raising it, keeps an unraisable
``KeyboardInterrupt`` off the terminal, and :func:`check`, called by the long
waits (the fold and trial loops), raises it there, where it is handled.
"""
from __future__ import annotations

import contextlib
import signal
import sys

_requested = False
_deferring = 0


def _on_sigint(signum, frame) -> None:
    global _requested
    first = not _requested
    _requested = True
    if _deferring and first:
        return  # inside deferred(): check() raises it at the loop's next turn; a second Ctrl-C raises now
    raise KeyboardInterrupt


@contextlib.contextmanager
def deferred():
    """A section (the fold and trial loops, whose callbacks write to the tracking store) where Ctrl-C is
    raised only by :func:`check`, not in the middle of a store transaction: an interrupted SQLite write
    leaves the store locked for the rest of the process, and the runs could not be marked KILLED."""
    global _deferring
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1
    check()


def _quiet_interrupts(previous):
    def hook(unraisable) -> None:
        if isinstance(unraisable.exc_value, KeyboardInterrupt):
            return  # remembered by _on_sigint; check() raises it where it can be handled
        previous(unraisable)

    return hook


def install() -> None:
    """SIGINT remembered and raised; unraisable interrupts kept quiet (only over Python's default handler)."""
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _on_sigint)
        sys.unraisablehook = _quiet_interrupts(sys.unraisablehook)


def check() -> None:
    """Raise ``KeyboardInterrupt`` if SIGINT arrived (even where Python had to drop it)."""
    if _requested:
        raise KeyboardInterrupt
