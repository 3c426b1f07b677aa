"""A Ctrl-C that Python has to drop inside a finaliser is neither printed nor lost."""
from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import os, signal, time
from moodops.orchestrator import interrupts

interrupts.install()

class Finalised:
    def __del__(self):
        os.kill(os.getpid(), signal.SIGINT)  # the handler runs here, inside __del__: unraisable
        for _ in range(1000):
            pass

Finalised()  # collected at once
try:
    interrupts.check()
    print("lost")
except KeyboardInterrupt:
    print("raised by check")
"""


def test_an_interrupt_dropped_in_a_finaliser_is_raised_by_check_and_not_printed():
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "raised by check", proc
    assert "Exception ignored" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_without_install_python_prints_the_dropped_interrupt_and_goes_on():
    """The failure :mod:`interrupts` exists for, shown with Python's own handling."""
    script = SCRIPT.replace("interrupts.install()", "")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "lost"
    assert "Exception ignored" in proc.stderr and "KeyboardInterrupt" in proc.stderr
