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

import signal
import sys

_requested = False


def _on_sigint(signum, frame) -> None:
    global _requested
    _requested = True
    raise KeyboardInterrupt


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
