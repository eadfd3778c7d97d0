"""Ctrl-C (SIGINT) during training: finish the step in flight, save the resumable state, then stop.

`deferred_sigint()` replaces the SIGINT handler while a run trains: the first Ctrl-C only sets a flag, which
the training loop reads after each whole step (`requested()`), saves the training state there and raises
`KeyboardInterrupt` (the command line exits 130); a second Ctrl-C interrupts at once, as before. The saved
state is the one a periodic save at that step writes, so `--resume` reaches the same weights bit for bit.

Usage:
    with deferred_sigint():
        trainer.fit()            # the loop calls `if requested(): save(); raise KeyboardInterrupt`
"""

from __future__ import annotations

import contextlib
import signal
import threading

_state = {"requested": False}


def requested() -> bool:
    """True once a Ctrl-C arrived inside `deferred_sigint()`."""
    return _state["requested"]


def _on_sigint(signum, frame) -> None:
    _state["requested"] = True
    signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C stops at once


@contextlib.contextmanager
def deferred_sigint():
    """Defer the first SIGINT to the end of the training step in flight (main thread only; elsewhere a no-op)."""
    _state["requested"] = False
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, _on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _state["requested"] = False
